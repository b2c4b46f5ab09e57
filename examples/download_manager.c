/*
 * download_manager.c - a download manager: many downloads at once, each in
 * its own process, with a status per download and a live table.
 *
 *   DownloadManager (gen_server: the table of downloads, traps exits)
 *   `-- workers (DynamicSupervisor, linked to the manager)
 *       `-- one temporary worker (gen_server) per running download
 *
 * A worker streams an http:// URL (HTTP/1.1 GET over TCP) or a local file
 * (a path, or a file:// URL) to its destination file, every byte through
 * the scheduler's io_uring (recv, pread, pwrite).  It reports progress to
 * the manager with casts (at most every progress_bytes or progress_ms) and
 * exits when it is done: normally when the download completed, with
 * {shutdown, "what went wrong"} when it failed.  The manager monitors each
 * worker, so it learns every end from the DOWN message, crashes and kills
 * included, and one failing download never disturbs the others.
 *
 * Files.  The worker creates (or truncates) the destination when it starts.
 * A download that does not complete (failed, cancelled, or still running at
 * dm_stop) has its partial file removed by the manager, so a destination
 * file exists only for completed downloads.
 *
 * HTTP.  Responses delimited by Content-Length, by the connection's close,
 * or by chunked transfer encoding; up to five redirects to http:// or
 * absolute-path locations.  Host names are resolved with getaddrinfo on the
 * dirty-work pool (numeric addresses need no lookup); each address is tried
 * in turn.  No https, no proxies, no resumption of partial downloads.
 *
 * Run: download_manager [-j N] DEST_DIR SOURCE...
 *      (exits 0 when every download completed, 1 otherwise, 2 on bad usage)
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the module's API ---- */

#define DM_URL_MAX   1024 /* a source, NUL included */
#define DM_PATH_MAX  1024 /* a destination path, NUL included */
#define DM_NAME_MAX  128  /* a download's display name */
#define DM_ERROR_MAX 256  /* why a download failed */

/* Where a download is.  The last three are final. */
typedef enum dm_state {
    DM_QUEUED = 0,  /* waiting for a free slot (dm_opts.max_active) */
    DM_DOWNLOADING, /* a worker runs it */
    DM_COMPLETED,   /* every byte is in dest */
    DM_FAILED,      /* error says why; the partial file was removed */
    DM_CANCELLED,   /* dm_cancel; the partial file was removed */
} dm_state;

/* One download, as the manager knows it (the seed's Download struct). */
typedef struct dm_download {
    int id;                   /* 1, 2, ... in the order of dm_add */
    dm_state status;          /* see dm_state */
    char name[DM_NAME_MAX];   /* the source's last path segment */
    char src[DM_URL_MAX];     /* as given to dm_add */
    char dest[DM_PATH_MAX];   /* as given to dm_add */
    int64_t size;             /* total bytes, -1 while unknown */
    int64_t bytes_downloaded; /* bytes written to dest so far */
    int percent;              /* 0..100, -1 while the size is unknown */
    int64_t speed;            /* bytes/s, averaged since the worker started */
    int64_t elapsed_ms;       /* since the worker started (0 while queued) */
    char error[DM_ERROR_MAX]; /* DM_FAILED: why; else "" */
    bl_pid pid;               /* the worker while DM_DOWNLOADING, else BL_PID_NONE */
} dm_download;

/* Options; a zeroed struct (or NULL) means the defaults. */
typedef struct dm_opts {
    bl_pid subscriber;      /* gets a DM_EVENT at every status change; NONE = nobody */
    int max_active;         /* downloads running at once, the rest queue; 0 = no limit */
    int64_t timeout_ms;     /* connect and per-receive timeout (0 = 30000) */
    int64_t progress_bytes; /* a worker reports after this many new bytes (0 = 64 KiB) */
    int64_t progress_ms;    /* ... or after this long with new bytes (0 = 100) */
} dm_opts;

/* The subscriber's message: data is a dm_download, the state after the change. */
#define DM_EVENT 0x444d0001u

/* A parsed source. */
typedef enum dm_kind { DM_SRC_HTTP = 1, DM_SRC_FILE = 2 } dm_kind;
typedef struct dm_url {
    dm_kind kind;
    char host[256];        /* http: the host (an IPv6 address without brackets) */
    uint16_t port;         /* http: 80 unless given */
    char path[DM_URL_MAX]; /* http: path and query, "/" at least; file: the file's path */
} dm_url;

/*
 * Parses a source: http://host[:port][/path], file:///path (or
 * file://localhost/path), or a plain path.  0, or -EINVAL (NULL, empty,
 * control characters or spaces, no host, a bad port, credentials in the
 * URL, a relative file:// path), -EPROTONOSUPPORT (any other scheme, https
 * included), -ENAMETOOLONG.
 */
int dm_parse_source(const char *src, dm_url *out);
/* The file name a source suggests ("index.html" for an http path ending in '/'). */
void dm_guess_name(const char *src, char *buf, size_t len);
/* "queued", "downloading", ... */
const char *dm_state_name(dm_state s);

/*
 * Starts a manager (not linked to the caller) with its supervisor of
 * workers.  0, -EINVAL (a negative option), or bl_gen_server_start's errors.
 */
int dm_start(bl_pid *mgr, const dm_opts *opts);
/*
 * Adds a download of src into the file dest (created or overwritten) and
 * returns its id (> 0), or: -EINVAL / -EPROTONOSUPPORT / -ENAMETOOLONG for a
 * source dm_parse_source rejects, -EINVAL for an empty dest, -ENAMETOOLONG
 * for a dest of DM_PATH_MAX bytes or more, or a call error (-ESRCH,
 * -ETIMEDOUT, ...).  Problems found while downloading (an unwritable dest,
 * a refused connection, HTTP 404, ...) make the download DM_FAILED instead.
 */
int dm_add(bl_pid mgr, const char *src, const char *dest);
/* The download id's state into *out.  0, -ENOENT (no such id), or a call error. */
int dm_status(bl_pid mgr, int id, dm_download *out);
/* Copies up to max downloads into out, by id.  Returns how many there are, or a call error. */
int dm_list(bl_pid mgr, dm_download *out, size_t max);
/*
 * Cancels a download: a queued one is dropped, a running one's worker is
 * terminated through the supervisor, and its partial file removed.  Returns
 * once that is done: 0, -ENOENT (no such id), -EALREADY (it had already
 * ended: completed, failed or cancelled), or a call error.
 */
int dm_cancel(bl_pid mgr, int id);
/* Stops the manager and every worker (their partial files are removed).  0 or a stop error. */
int dm_stop(bl_pid mgr);

/* ---- sources ---- */

static bool has_bad_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) return true;
    return false;
}

/* The part of an http URL after "http://". */
static int parse_http(const char *p, dm_url *u)
{
    if (has_bad_chars(p)) return -EINVAL;
    size_t alen = strcspn(p, "/?#");
    if (alen == 0 || memchr(p, '@', alen)) return -EINVAL;
    const char *hs = p, *port = NULL;
    size_t hlen;
    if (*p == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close) return -EINVAL;
        hs = p + 1;
        hlen = (size_t)(close - hs);
        if (close + 1 < p + alen) {
            if (close[1] != ':') return -EINVAL;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon ? (size_t)(colon - p) : alen;
        if (colon) port = colon + 1;
        if (colon && memchr(port, ':', (size_t)(p + alen - port))) return -EINVAL;
    }
    if (hlen == 0 || hlen >= sizeof u->host) return -EINVAL;
    memcpy(u->host, hs, hlen);
    u->host[hlen] = 0;
    u->port = 80;
    if (port) {
        size_t plen = (size_t)(p + alen - port);
        long v = 0;
        if (plen == 0 || plen > 5) return -EINVAL;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) return -EINVAL;
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535) return -EINVAL;
        u->port = (uint16_t)v;
    }
    /* The path and query, without the fragment (never sent). */
    const char *path = p + alen;
    size_t plen = strcspn(path, "#");
    int n = snprintf(u->path, sizeof u->path, "%s%.*s", *path == '/' ? "" : "/", (int)plen, path);
    if (n < 0 || (size_t)n >= sizeof u->path) return -ENAMETOOLONG;
    u->kind = DM_SRC_HTTP;
    return 0;
}

int dm_parse_source(const char *src, dm_url *u)
{
    if (!src || !u || !*src) return -EINVAL;
    memset(u, 0, sizeof *u);
    if (strlen(src) >= DM_URL_MAX) return -ENAMETOOLONG;
    /* A scheme is a letter, then letters, digits, '+', '-' or '.', then "://". */
    size_t i = 0;
    if (isalpha((unsigned char)src[0]))
        while (isalnum((unsigned char)src[i]) || src[i] == '+' || src[i] == '-' || src[i] == '.')
            i++;
    if (i > 0 && strncmp(src + i, "://", 3) == 0) {
        if (i == 4 && strncasecmp(src, "http", 4) == 0) return parse_http(src + 7, u);
        if (i != 4 || strncasecmp(src, "file", 4) != 0) return -EPROTONOSUPPORT;
        const char *p = src + 7;
        if (strncasecmp(p, "localhost/", 10) == 0) p += 9;
        if (*p != '/') return -EINVAL;
        src = p;
    }
    for (const char *s = src; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return -EINVAL;
    u->kind = DM_SRC_FILE;
    snprintf(u->path, sizeof u->path, "%s", src);
    return 0;
}

void dm_guess_name(const char *src, char *buf, size_t len)
{
    if (!buf || !len) return;
    dm_url u;
    const char *name = "download";
    size_t n = strlen(name);
    if (dm_parse_source(src, &u) == 0) {
        /* The last segment of the path (before the query, for http). */
        size_t end = u.kind == DM_SRC_HTTP ? strcspn(u.path, "?") : strlen(u.path);
        while (u.kind == DM_SRC_FILE && end > 1 && u.path[end - 1] == '/') end--;
        size_t start = end;
        while (start > 0 && u.path[start - 1] != '/') start--;
        if (end > start) {
            name = u.path + start;
            n = end - start;
        } else if (u.kind == DM_SRC_HTTP) {
            name = "index.html";
            n = strlen(name);
        }
        if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.')) {
            name = "download";
            n = strlen(name);
        }
    }
    snprintf(buf, len, "%.*s", (int)n, name);
}

const char *dm_state_name(dm_state s)
{
    static const char *const names[] = {"queued", "downloading", "completed", "failed",
                                        "cancelled"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- messages between the manager and its workers ---- */

enum {
    /* calls (the client API) */
    DM_ADD = 1,
    DM_STATUS,
    DM_LIST,
    DM_CANCEL,
    /* a worker's cast: a dm_report */
    DM_PROGRESS,
    /* the manager's plain message to a worker: start now (it is monitored) */
    DM_GO,
};

typedef struct dm_report {
    int id;
    int64_t bytes; /* written so far */
    int64_t size;  /* -1 while unknown */
} dm_report;

typedef struct add_req {
    char src[DM_URL_MAX];
    char dest[DM_PATH_MAX];
} add_req;

/* What the manager hands a worker (copied by the supervisor, then by the worker). */
typedef struct dm_job {
    int id;
    bl_pid manager;
    dm_url url;
    char dest[DM_PATH_MAX];
    int64_t timeout_ms;
    int64_t progress_bytes;
    int64_t progress_ms;
} dm_job;

/* ---- the worker ---- */

/* The receive / copy buffer: on the worker's stack, which outlives any I/O on it. */
#define DM_BUF        (32 * 1024)
#define DM_HEADER_MAX (16 * 1024)
#define DM_REDIRECTS  5

/*
 * A worker's state.  The descriptors live here, not on the stack, so that
 * release closes them whatever ended the process (a kill included).
 */
typedef struct worker {
    dm_job job;
    int sock;                 /* the HTTP connection, or -1 */
    int in;                   /* the local source, or -1 */
    int out;                  /* the destination, or -1 */
    int64_t bytes;            /* written to out */
    int64_t size;             /* expected, -1 while unknown */
    int64_t rep_bytes;        /* bytes at the last report */
    int64_t rep_ms;           /* time of the last report */
    char error[DM_ERROR_MAX]; /* why it failed */
} worker;

__attribute__((format(printf, 2, 3))) static int fail(worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Closes *fd through the ring, clearing the field first: if a kill comes
 * during the close, release must not close the number again (by then it may
 * name another file).
 */
static int close_fd(int *fd)
{
    int f = *fd;
    *fd = -1;
    return f >= 0 ? bl_io_close(f) : 0;
}

/* Tells the manager how far we are: always when forced, else throttled. */
static void report(worker *w, bool force)
{
    int64_t now = now_ms(), fresh = w->bytes - w->rep_bytes;
    if (!force &&
        (fresh == 0 || (fresh < w->job.progress_bytes && now - w->rep_ms < w->job.progress_ms)))
        return;
    dm_report r = {w->job.id, w->bytes, w->size};
    bl_gen_server_cast(w->job.manager, DM_PROGRESS, &r, sizeof r);
    w->rep_bytes = w->bytes;
    w->rep_ms = now;
}

/* Appends n bytes to the destination. */
static int body_data(worker *w, const char *p, size_t n)
{
    if (n == 0) return 0;
    ssize_t rc = bl_io_pwrite_all(w->out, p, n, (off_t)w->bytes, BL_INFINITY);
    if (rc != (ssize_t)n)
        return fail(w, "write %s: %s", w->job.dest, rc < 0 ? strerror((int)-rc) : "short write");
    w->bytes += (int64_t)n;
    report(w, false);
    return 0;
}

/* -- local files -- */

static int file_copy(worker *w, char *buf, size_t cap)
{
    const char *path = w->job.url.path;
    struct statx sx;
    int rc = bl_io_statx(AT_FDCWD, path, 0, STATX_TYPE | STATX_SIZE, &sx);
    if (rc < 0) return fail(w, "%s: %s", path, strerror(-rc));
    if (S_ISDIR(sx.stx_mode)) return fail(w, "%s: %s", path, strerror(EISDIR));
    w->in = bl_io_open(path, O_RDONLY, 0);
    if (w->in < 0) return fail(w, "%s: %s", path, strerror(-w->in));
    w->size = S_ISREG(sx.stx_mode) ? (int64_t)sx.stx_size : -1;
    report(w, true);
    for (;;) {
        ssize_t n = bl_io_pread(w->in, buf, cap, (off_t)w->bytes, BL_INFINITY);
        if (n < 0) return fail(w, "read %s: %s", path, strerror((int)-n));
        if (n == 0) break;
        if (body_data(w, buf, (size_t)n) < 0) return -1;
    }
    /* A file that changed size meanwhile: what was read is the download. */
    w->size = w->bytes;
    return 0;
}

/* -- HTTP: connecting -- */

typedef struct resolve_job {
    const char *host;
    uint16_t port;
    struct sockaddr_storage addr[4];
    socklen_t len[4];
    int n;   /* addresses found */
    int gai; /* getaddrinfo's error, 0 if none */
} resolve_job;

/* Runs on a dirty-work thread: getaddrinfo blocks. */
static long resolve_fn(void *arg)
{
    resolve_job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", j->port);
    hints.ai_flags = AI_NUMERICSERV;
    j->gai = getaddrinfo(j->host, port, &hints, &res);
    if (j->gai) return 0;
    for (ai = res; ai && j->n < 4; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof j->addr[0]) continue;
        memcpy(&j->addr[j->n], ai->ai_addr, ai->ai_addrlen);
        j->len[j->n++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    return 0;
}

/* Connects w->sock to u's host, trying each of its addresses. */
static int http_connect(worker *w, const dm_url *u)
{
    resolve_job j = {.host = u->host, .port = u->port};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&j.addr[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&j.addr[0];
    if (inet_pton(AF_INET, u->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(u->port);
        j.len[j.n++] = sizeof *v4;
    } else if (inet_pton(AF_INET6, u->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(u->port);
        j.len[j.n++] = sizeof *v6;
    } else {
        int rc = bl_dirty_run(resolve_fn, &j, NULL);
        if (rc < 0) return fail(w, "resolve %s: %s", u->host, strerror(-rc));
        if (j.gai) return fail(w, "resolve %s: %s", u->host, gai_strerror(j.gai));
        if (!j.n) return fail(w, "resolve %s: no address", u->host);
    }
    int rc = 0;
    for (int i = 0; i < j.n; i++) {
        /* Kept in the state before connecting: a kill meanwhile leaves it to release. */
        w->sock = bl_io_socket(j.addr[i].ss_family, SOCK_STREAM, 0);
        if (w->sock < 0) return fail(w, "socket: %s", strerror(-w->sock));
        rc = bl_io_connect(w->sock, (struct sockaddr *)&j.addr[i], j.len[i], w->job.timeout_ms);
        if (rc == 0) return 0;
        close_fd(&w->sock);
    }
    return fail(w, "connect %s:%u: %s", u->host, u->port, strerror(-rc));
}

/* -- HTTP: the response head -- */

typedef struct response {
    int status;
    char reason[64];
    int64_t length;            /* Content-Length, -1 if none */
    bool chunked;              /* Transfer-Encoding: chunked */
    char coding[64];           /* another transfer coding, "" if none */
    char location[DM_URL_MAX]; /* Location, "" if none */
} response;

/* Where the head ends (past its blank line) in buf[0..n), or 0 if not yet. */
static size_t head_end(const char *buf, size_t n)
{
    const char *a = memmem(buf, n, "\r\n\r\n", 4), *b = memmem(buf, n, "\n\n", 2);
    if (a && (!b || a < b)) return (size_t)(a - buf) + 4;
    return b ? (size_t)(b - buf) + 2 : 0;
}

static bool name_is(const char *line, size_t nlen, const char *name)
{
    return nlen == strlen(name) && strncasecmp(line, name, nlen) == 0;
}

/* Parses the head buf[0..n): 0, or -1 when it is malformed. */
static int parse_head(const char *buf, size_t n, response *r)
{
    memset(r, 0, sizeof *r);
    r->length = -1;
    const char *p = buf, *end = buf + n;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return -1;
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r') len--;
        if (first) {
            /* HTTP/1.x NNN reason */
            if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) ||
                p[8] != ' ' || !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
                !isdigit((unsigned char)p[11]))
                return -1;
            r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
            if (len > 13) snprintf(r->reason, sizeof r->reason, "%.*s", (int)(len - 13), p + 13);
            first = false;
        } else if (len) {
            const char *colon = memchr(p, ':', len);
            if (!colon || colon == p) return -1;
            size_t nlen = (size_t)(colon - p);
            const char *v = colon + 1, *ve = p + len;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            size_t vlen = (size_t)(ve - v);
            if (name_is(p, nlen, "content-length")) {
                int64_t x = 0;
                if (vlen == 0 || vlen > 18) return -1;
                for (size_t i = 0; i < vlen; i++) {
                    if (!isdigit((unsigned char)v[i])) return -1;
                    x = x * 10 + (v[i] - '0');
                }
                if (r->length >= 0 && r->length != x) return -1; /* two different lengths */
                r->length = x;
            } else if (name_is(p, nlen, "transfer-encoding")) {
                if (vlen == 7 && strncasecmp(v, "chunked", 7) == 0)
                    r->chunked = true;
                else if (!(vlen == 8 && strncasecmp(v, "identity", 8) == 0))
                    snprintf(r->coding, sizeof r->coding, "%.*s", (int)vlen, v);
            } else if (name_is(p, nlen, "location")) {
                if (vlen >= sizeof r->location) return -1;
                memcpy(r->location, v, vlen);
                r->location[vlen] = 0;
            }
        }
        p = nl + 1;
    }
    return first ? -1 : 0;
}

/* -- HTTP: chunked bodies -- */

enum {
    CH_SIZE = 0,     /* hex digits of a chunk's size */
    CH_EXT,          /* a chunk extension, up to the end of the line */
    CH_SIZE_LF,      /* the size line's LF */
    CH_DATA,         /* left bytes of data */
    CH_DATA_CR,      /* the CRLF after the data */
    CH_DATA_LF,      /* ... its LF */
    CH_TRAILER,      /* the start of a trailer line (or of the final blank line) */
    CH_TRAILER_LINE, /* inside a trailer field: skipped */
    CH_END_LF,       /* the final blank line's LF */
    CH_DONE,         /* the body is complete */
};

typedef struct chunked {
    int state;     /* CH_* */
    int digits;    /* of the size read so far */
    uint64_t left; /* the size being read, then the data bytes left */
} chunked;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The end of a size line: data follows, or the trailer after the last chunk. */
static void size_line_done(chunked *c)
{
    c->state = c->left ? CH_DATA : CH_TRAILER;
    c->digits = 0;
}

/*
 * Decodes buf[0..len) in place, in any split of the body: the chunks' data
 * moves to the front.  Returns the data bytes, or -1 for a malformed body.
 * Bytes after the end (c->state == CH_DONE) are ignored.
 */
static ssize_t chunked_feed(chunked *c, char *buf, size_t len)
{
    size_t out = 0, i = 0;
    while (i < len && c->state != CH_DONE) {
        char ch = buf[i];
        if (c->state == CH_DATA) {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            memmove(buf + out, buf + i, n);
            out += n;
            i += n;
            c->left -= n;
            if (!c->left) c->state = CH_DATA_CR;
            continue;
        }
        switch (c->state) {
        case CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->digits == 15) return -1; /* 2^60 bytes: nonsense */
                c->left = c->left << 4 | (uint64_t)v;
                c->digits++;
            } else if (!c->digits) {
                return -1;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                size_line_done(c);
            } else {
                return -1;
            }
            break;
        }
        case CH_EXT:
            if (ch == '\r') c->state = CH_SIZE_LF;
            if (ch == '\n') size_line_done(c);
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return -1;
            size_line_done(c);
            break;
        case CH_DATA_CR:
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                c->state = CH_SIZE;
            else
                return -1;
            break;
        case CH_DATA_LF:
            if (ch != '\n') return -1;
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            c->state = ch == '\r' ? CH_END_LF : ch == '\n' ? CH_DONE : CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n') c->state = CH_TRAILER;
            break;
        case CH_END_LF:
            if (ch != '\n') return -1;
            c->state = CH_DONE;
            break;
        }
        i++;
    }
    return (ssize_t)out;
}

/* -- HTTP: the whole exchange -- */

static int recv_error(worker *w, ssize_t rc)
{
    if (rc == -ETIMEDOUT)
        return fail(w, "no data from the server for %lld ms", (long long)w->job.timeout_ms);
    return fail(w, "recv: %s", strerror((int)-rc));
}

/*
 * Receives body bytes, waiting up to the timeout for them.  Bytes not yet
 * reported are reported when their time comes even if the server has gone
 * quiet: the wait is cut at that moment, and resumed after the report.
 */
static ssize_t recv_body(worker *w, char *buf, size_t cap)
{
    int64_t now = now_ms(), deadline = now + w->job.timeout_ms;
    for (;;) {
        int64_t wait = deadline - now;
        bool due = false;
        if (w->bytes != w->rep_bytes && w->rep_ms + w->job.progress_ms - now < wait) {
            wait = w->rep_ms + w->job.progress_ms - now;
            due = true;
        }
        ssize_t n = wait > 0 ? bl_io_recv(w->sock, buf, cap, 0, wait) : -ETIMEDOUT;
        if (n != -ETIMEDOUT || !due) return n;
        /* A receive cut short loses nothing: the bytes wait in the socket. */
        report(w, true);
        now = now_ms();
    }
}

/* The body, of which buf[0..n) has arrived with the head. */
static int http_body(worker *w, const response *r, char *buf, size_t cap, size_t n)
{
    chunked ch = {0};
    bool by_length = !r->chunked && r->length >= 0;
    for (;;) {
        if (r->chunked) {
            ssize_t d = chunked_feed(&ch, buf, n);
            if (d < 0)
                return fail(w, "malformed chunked body after %lld bytes", (long long)w->bytes);
            if (body_data(w, buf, (size_t)d) < 0) return -1;
            if (ch.state == CH_DONE) return 0;
        } else {
            if (by_length && (int64_t)n > w->size - w->bytes) n = (size_t)(w->size - w->bytes);
            if (body_data(w, buf, n) < 0) return -1;
            if (by_length && w->bytes == w->size) return 0;
        }
        ssize_t got = recv_body(w, buf, cap);
        if (got < 0) return recv_error(w, got);
        if (got == 0) {
            if (r->chunked)
                return fail(w, "connection closed inside the chunked body after %lld bytes",
                            (long long)w->bytes);
            if (by_length)
                return fail(w, "connection closed after %lld of %lld bytes", (long long)w->bytes,
                            (long long)w->size);
            return 0; /* the close ends the body */
        }
        n = (size_t)got;
    }
}

static int http_fetch(worker *w, char *buf, size_t cap)
{
    dm_url u = w->job.url;
    for (int hop = 0;; hop++) {
        if (http_connect(w, &u) < 0) return -1;
        bool v6 = strchr(u.host, ':') != NULL;
        char port[8] = "";
        if (u.port != 80) snprintf(port, sizeof port, ":%u", u.port);
        int len = snprintf(buf, cap,
                           "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\n"
                           "User-Agent: beamline-download-manager\r\nAccept: */*\r\n"
                           "Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
                           u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", port);
        ssize_t rc = bl_io_send_all(w->sock, buf, (size_t)len, 0, w->job.timeout_ms);
        if (rc != len) return fail(w, "send: %s", rc < 0 ? strerror((int)-rc) : "short send");

        /* The head: at most DM_HEADER_MAX bytes; body bytes may follow it. */
        size_t have = 0, hlen;
        while (!(hlen = head_end(buf, have))) {
            if (have == DM_HEADER_MAX) return fail(w, "response head larger than 16 KiB");
            ssize_t n = bl_io_recv(w->sock, buf + have, DM_HEADER_MAX - have, 0, w->job.timeout_ms);
            if (n < 0) return recv_error(w, n);
            if (n == 0) return fail(w, "connection closed before the response");
            have += (size_t)n;
        }
        response r;
        if (parse_head(buf, hlen, &r) < 0) return fail(w, "malformed response");

        bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 ||
                        r.status == 308;
        if (redirect && r.location[0]) {
            if (hop == DM_REDIRECTS) return fail(w, "too many redirects");
            if (r.location[0] == '/') {
                if (has_bad_chars(r.location)) return fail(w, "malformed redirect");
                snprintf(u.path, sizeof u.path, "%s", r.location);
            } else if (dm_parse_source(r.location, &u) != 0 || u.kind != DM_SRC_HTTP) {
                return fail(w, "redirect to an unsupported location: %.100s", r.location);
            }
            close_fd(&w->sock);
            continue;
        }
        if (r.status != 200) return fail(w, "HTTP %d %s", r.status, r.reason);
        if (r.coding[0]) return fail(w, "unsupported transfer encoding: %s", r.coding);
        w->size = r.chunked ? -1 : r.length;
        report(w, true);
        memmove(buf, buf + hlen, have - hlen);
        return http_body(w, &r, buf, cap, have - hlen);
    }
}

/* -- the worker's gen_server -- */

/* init's failure: the errno travels in a {shutdown, errno} reason to worker_start. */
static void stop_errno(bl_gs_result *r, int err)
{
    int e = -err;
    bl_reason why = {.kind = BL_SHUTDOWN, .detail = &e, .detail_len = sizeof e};
    bl_gs_stop(r, &why);
}

static void worker_init(void *arg, void **state, bl_gs_result *r)
{
    const dm_job *job = arg;
    /*
     * The destination first, so that the manager knows it exists once we
     * run.  (Opened before anything is allocated: release does not run for a
     * worker killed during init.)
     */
    int fd = bl_io_open(job->dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        stop_errno(r, fd);
        return;
    }
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        bl_io_close(fd);
        stop_errno(r, -ENOMEM);
        return;
    }
    w->job = *job;
    w->sock = w->in = -1;
    w->out = fd;
    w->size = -1;
    w->rep_ms = now_ms();
    *state = w;
}

/* The download itself, once the manager says go (it monitors us by then). */
static void worker_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    worker *w = *state;
    if (m->tag != DM_GO) return;
    char buf[DM_BUF];
    int rc = w->job.url.kind == DM_SRC_HTTP ? http_fetch(w, buf, sizeof buf)
                                            : file_copy(w, buf, sizeof buf);
    if (rc == 0) {
        int c = close_fd(&w->out);
        if (c < 0) rc = fail(w, "close %s: %s", w->job.dest, strerror(-c));
    }
    report(w, true);
    if (rc == 0) {
        bl_gs_stop(r, NULL);
        return;
    }
    bl_reason why = {.kind = BL_SHUTDOWN, .detail = w->error, .detail_len = strlen(w->error)};
    bl_gs_stop(r, &why);
}

/* After the process, whatever ended it: its descriptors go with it. */
static void worker_release(void *state)
{
    worker *w = state;
    if (w->sock >= 0) close(w->sock);
    if (w->in >= 0) close(w->in);
    if (w->out >= 0) close(w->out);
    free(w);
}

static const bl_gen_server worker_callbacks = {
    .init = worker_init,
    .handle_info = worker_info,
    .release = worker_release,
};

/* A bl_start_fn, run by the supervisor: arg is its copy of a dm_job. */
static int worker_start(void *arg, bl_pid *pid)
{
    bl_msg *err = NULL;
    bl_gen_server_opts o = {.error = &err};
    int rc = bl_gen_server_start_link(pid, &worker_callbacks, arg, &o);
    bl_reason why;
    int e;
    if (rc == -ECHILD && err && bl_msg_reason(err, &why) == 0 && why.kind == BL_SHUTDOWN &&
        why.detail_len == sizeof e) {
        memcpy(&e, why.detail, sizeof e);
        rc = -e;
    }
    bl_msg_free(err);
    return rc;
}

/* ---- the manager ---- */

typedef struct entry {
    dm_download d;
    dm_url url;       /* d.src, parsed */
    bl_ref mon;       /* the worker's monitor */
    bool created;     /* the worker created d.dest */
    int64_t start_ms; /* when the worker started */
    int64_t end_ms;   /* when it ended */
} entry;

typedef struct manager {
    dm_opts opts;
    bl_pid sup; /* the workers' supervisor */
    entry *v;   /* downloads, v[id - 1] */
    size_t n, cap;
    int active; /* downloads running */
} manager;

static bool is_final(dm_state s)
{
    return s == DM_COMPLETED || s == DM_FAILED || s == DM_CANCELLED;
}

/* The download as a client sees it, speed and percent computed now. */
static void snapshot(const entry *e, dm_download *out)
{
    *out = e->d;
    if (e->start_ms) {
        int64_t end = is_final(e->d.status) ? e->end_ms : now_ms();
        out->elapsed_ms = end - e->start_ms;
        out->speed = out->elapsed_ms > 0 ? e->d.bytes_downloaded * 1000 / out->elapsed_ms : 0;
    }
    if (e->d.status == DM_COMPLETED)
        out->percent = 100;
    else if (e->d.size > 0)
        out->percent = (int)(e->d.bytes_downloaded * 100 / e->d.size);
    else
        out->percent = e->d.size == 0 ? 0 : -1;
}

static void notify(manager *m, const entry *e)
{
    if (!m->opts.subscriber) return;
    dm_download d;
    snapshot(e, &d);
    bl_send(m->opts.subscriber, DM_EVENT, &d, sizeof d);
}

static long unlink_fn(void *arg)
{
    return unlink(arg) < 0 ? -errno : 0;
}

/*
 * Removes what the worker wrote.  unlink may block: it runs on the dirty
 * pool, with the path on this stack, which a kill keeps until unlink returns
 * (the entries may be freed sooner).
 */
static void discard(entry *e)
{
    char path[DM_PATH_MAX];
    memcpy(path, e->d.dest, sizeof path);
    if (e->created) bl_dirty_run(unlink_fn, path, NULL);
    e->created = false;
}

/* Marks e ended, without its worker. */
static void finish(manager *m, entry *e, dm_state st)
{
    if (e->d.status == DM_DOWNLOADING) m->active--;
    e->d.status = st;
    e->d.pid = BL_PID_NONE;
    e->end_ms = now_ms();
    if (st != DM_COMPLETED) discard(e);
    notify(m, e);
}

static void complete(manager *m, entry *e)
{
    if (e->d.size < 0) e->d.size = e->d.bytes_downloaded;
    finish(m, e, DM_COMPLETED);
}

__attribute__((format(printf, 3, 4))) static void failed(manager *m, entry *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->d.error, sizeof e->d.error, fmt, ap);
    va_end(ap);
    finish(m, e, DM_FAILED);
}

/* Starts e's worker under the supervisor, monitors it, then lets it go. */
static void start_worker(manager *m, entry *e)
{
    dm_job job = {.id = e->d.id,
                  .manager = bl_self(),
                  .url = e->url,
                  .timeout_ms = m->opts.timeout_ms,
                  .progress_bytes = m->opts.progress_bytes,
                  .progress_ms = m->opts.progress_ms};
    snprintf(job.dest, sizeof job.dest, "%s", e->d.dest);
    bl_child_spec spec = {.start = worker_start,
                          .arg = &job,
                          .arg_len = sizeof job,
                          .restart = BL_RESTART_TEMPORARY,
                          .shutdown = 2000};
    bl_pid pid = BL_PID_NONE;
    e->start_ms = now_ms();
    int rc = bl_dynamic_supervisor_start_child(m->sup, &spec, &pid);
    if (rc != 0) {
        failed(m, e, "open %s: %s", e->d.dest, strerror(rc < 0 ? -rc : ECHILD));
        return;
    }
    e->created = true;
    rc = bl_monitor(pid, &e->mon);
    if (rc != 0) {
        bl_dynamic_supervisor_terminate_child(m->sup, pid);
        failed(m, e, "monitor: %s", strerror(-rc));
        return;
    }
    e->d.status = DM_DOWNLOADING;
    e->d.pid = pid;
    m->active++;
    bl_send(pid, DM_GO, NULL, 0);
    notify(m, e);
}

/* Fills the free slots with queued downloads, oldest first. */
static void start_queued(manager *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->opts.max_active && m->active >= m->opts.max_active) return;
        if (m->v[i].d.status == DM_QUEUED) start_worker(m, &m->v[i]);
    }
}

static entry *find(manager *m, const bl_msg *req)
{
    int id;
    if (req->len != sizeof id) return NULL;
    memcpy(&id, req->data, sizeof id);
    return id >= 1 && (size_t)id <= m->n ? &m->v[id - 1] : NULL;
}

static bool same_file(const char *a, const char *b)
{
    struct statx x, y;
    return bl_io_statx(AT_FDCWD, a, 0, STATX_INO, &x) == 0 &&
           bl_io_statx(AT_FDCWD, b, 0, STATX_INO, &y) == 0 && x.stx_ino == y.stx_ino &&
           x.stx_dev_major == y.stx_dev_major && x.stx_dev_minor == y.stx_dev_minor;
}

static int add(manager *m, const bl_msg *req)
{
    add_req q;
    if (req->len != sizeof q) return -EINVAL;
    memcpy(&q, req->data, sizeof q);
    q.src[sizeof q.src - 1] = q.dest[sizeof q.dest - 1] = 0;
    if (!q.dest[0]) return -EINVAL;
    dm_url u;
    int rc = dm_parse_source(q.src, &u);
    if (rc) return rc;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        entry *v = realloc(m->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    entry *e = &m->v[m->n++];
    memset(e, 0, sizeof *e);
    e->url = u;
    e->d.id = (int)m->n;
    e->d.size = -1;
    e->d.percent = -1;
    memcpy(e->d.src, q.src, sizeof q.src);
    memcpy(e->d.dest, q.dest, sizeof q.dest);
    dm_guess_name(q.src, e->d.name, sizeof e->d.name);
    notify(m, e);
    /* Copying a file onto itself would truncate it first. */
    if (u.kind == DM_SRC_FILE && same_file(u.path, q.dest))
        failed(m, e, "source and destination are the same file");
    return e->d.id;
}

static int cancel(manager *m, entry *e)
{
    if (!e) return -ENOENT;
    if (is_final(e->d.status)) return -EALREADY;
    if (e->d.status == DM_QUEUED) {
        finish(m, e, DM_CANCELLED);
        return 0;
    }
    /* Terminate the worker, then take its DOWN here: it may have completed meanwhile. */
    bl_pid pid = e->d.pid;
    if (bl_dynamic_supervisor_terminate_child(m->sup, pid) < 0) {
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(pid, &kill);
    }
    bl_msg *down = NULL;
    bl_recv(&down, bl_match_ref, &e->mon, BL_INFINITY, 0);
    bl_reason why;
    bool completed = down && bl_msg_reason(down, &why) == 0 && why.kind == BL_NORMAL;
    bl_msg_free(down);
    if (completed) {
        /* Its last report came before its DOWN: the progress casts are all in. */
        complete(m, e);
        return -EALREADY;
    }
    finish(m, e, DM_CANCELLED);
    return 0;
}

static void mgr_init(void *arg, void **state, bl_gs_result *r)
{
    manager *m = calloc(1, sizeof *m);
    if (!m) {
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN));
        return;
    }
    m->opts = *(const dm_opts *)arg;
    if (!m->opts.timeout_ms) m->opts.timeout_ms = 30000;
    if (!m->opts.progress_bytes) m->opts.progress_bytes = 64 * 1024;
    if (!m->opts.progress_ms) m->opts.progress_ms = 100;
    /* The supervisor's exit comes as a message: the manager then stops with its reason. */
    bl_trap_exit(true);
    if (bl_dynamic_supervisor_start_link(&m->sup, NULL) != 0) {
        free(m);
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN));
        return;
    }
    *state = m;
}

static void mgr_call(void **state, const bl_msg *req, bl_gs_result *r)
{
    manager *m = *state;
    int rc;
    switch (req->tag) {
    case DM_ADD:
        rc = add(m, req);
        bl_gs_reply(r, &rc, sizeof rc);
        if (rc > 0) start_queued(m);
        return;
    case DM_STATUS: {
        entry *e = find(m, req);
        dm_download d;
        rc = -ENOENT;
        if (!e) {
            bl_gs_reply(r, &rc, sizeof rc);
            return;
        }
        snapshot(e, &d);
        bl_gs_reply(r, &d, sizeof d);
        return;
    }
    case DM_LIST: {
        dm_download *all = malloc((m->n ? m->n : 1) * sizeof *all);
        if (!all) {
            rc = -ENOMEM;
            bl_gs_reply(r, &rc, sizeof rc);
            return;
        }
        for (size_t i = 0; i < m->n; i++) snapshot(&m->v[i], &all[i]);
        bl_gs_reply(r, all, m->n * sizeof *all);
        free(all);
        return;
    }
    case DM_CANCEL:
        rc = cancel(m, find(m, req));
        bl_gs_reply(r, &rc, sizeof rc);
        start_queued(m);
        return;
    }
}

/* A worker's progress report. */
static void mgr_cast(void **state, const bl_msg *msg, bl_gs_result *r)
{
    manager *m = *state;
    dm_report rep;
    if (msg->tag != DM_PROGRESS || msg->len != sizeof rep) return;
    memcpy(&rep, msg->data, sizeof rep);
    if (rep.id < 1 || (size_t)rep.id > m->n) return;
    entry *e = &m->v[rep.id - 1];
    /* A report that was on its way when the download ended changes nothing. */
    if (e->d.status != DM_DOWNLOADING) return;
    e->d.bytes_downloaded = rep.bytes;
    e->d.size = rep.size;
}

/* A worker's DOWN: how its download ended. */
static void worker_down(manager *m, const bl_msg *msg)
{
    entry *e = NULL;
    for (size_t i = 0; i < m->n && !e; i++)
        if (m->v[i].d.status == DM_DOWNLOADING && m->v[i].mon == msg->ref) e = &m->v[i];
    if (!e) return;
    bl_reason why;
    if (bl_msg_reason(msg, &why) != 0) why = BL_REASON(BL_CUSTOM);
    switch (why.kind) {
    case BL_NORMAL:
        complete(m, e);
        break;
    case BL_SHUTDOWN:
        if (why.detail_len)
            failed(m, e, "%.*s", (int)why.detail_len, (const char *)why.detail);
        else
            failed(m, e, "shut down");
        break;
    case BL_KILLED:
        failed(m, e, "killed");
        break;
    case BL_STACK_OVERFLOW:
        failed(m, e, "stack overflow");
        break;
    default:
        failed(m, e, "crashed (reason %d, code %d)", why.kind, why.code);
        break;
    }
    start_queued(m);
}

static void mgr_info(void **state, const bl_msg *msg, bl_gs_result *r)
{
    manager *m = *state;
    if (msg->tag == BL_TAG_DOWN) {
        worker_down(m, msg);
    } else if (msg->tag == BL_TAG_EXIT && msg->from == m->sup) {
        /* The supervisor is gone, and every worker with it: so are we. */
        bl_reason why;
        if (bl_msg_reason(msg, &why) != 0) why = BL_REASON(BL_SHUTDOWN);
        m->sup = BL_PID_NONE;
        bl_gs_stop(r, &why);
    }
}

static void mgr_terminate(void **state, const bl_reason *reason)
{
    manager *m = *state;
    if (m->sup) bl_supervisor_stop(m->sup, NULL, 10000);
    m->sup = BL_PID_NONE;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].d.status == DM_DOWNLOADING) discard(&m->v[i]);
}

static void mgr_release(void *state)
{
    manager *m = state;
    free(m->v);
    free(m);
}

static const bl_gen_server manager_callbacks = {
    .init = mgr_init,
    .handle_call = mgr_call,
    .handle_cast = mgr_cast,
    .handle_info = mgr_info,
    .terminate = mgr_terminate,
    .release = mgr_release,
};

/* ---- the client functions ---- */

/* Calls may wait behind a cancel, which waits for a worker to go. */
#define DM_CALL_TIMEOUT 30000

int dm_start(bl_pid *mgr, const dm_opts *opts)
{
    dm_opts o = {0};
    if (opts) o = *opts;
    if (o.max_active < 0 || o.timeout_ms < 0 || o.progress_bytes < 0 || o.progress_ms < 0)
        return -EINVAL;
    /* init runs before start returns, so a pointer to a local is fine here. */
    return bl_gen_server_start(mgr, &manager_callbacks, &o, NULL);
}

/* A call whose reply is an int. */
static int call_int(bl_pid mgr, uint32_t tag, const void *data, size_t len)
{
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, tag, data, len, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len == sizeof rc)
            memcpy(&rc, reply->data, sizeof rc);
        else
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

int dm_add(bl_pid mgr, const char *src, const char *dest)
{
    if (!src || !dest || !*src || !*dest) return -EINVAL;
    if (strlen(src) >= DM_URL_MAX || strlen(dest) >= DM_PATH_MAX) return -ENAMETOOLONG;
    add_req *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    strcpy(q->src, src);
    strcpy(q->dest, dest);
    int rc = call_int(mgr, DM_ADD, q, sizeof *q);
    free(q);
    return rc;
}

int dm_status(bl_pid mgr, int id, dm_download *out)
{
    if (!out) return -EINVAL;
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, DM_STATUS, &id, sizeof id, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len == sizeof *out)
            memcpy(out, reply->data, sizeof *out);
        else if (reply->len == sizeof rc)
            memcpy(&rc, reply->data, sizeof rc);
        else
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

int dm_list(bl_pid mgr, dm_download *out, size_t max)
{
    if (!out && max) return -EINVAL;
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, DM_LIST, NULL, 0, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len % sizeof *out == 0) {
            size_t n = reply->len / sizeof *out;
            if (n && max) memcpy(out, reply->data, (n < max ? n : max) * sizeof *out);
            rc = (int)n;
        } else if (reply->len == sizeof rc) {
            memcpy(&rc, reply->data, sizeof rc);
        } else {
            rc = -EPROTO;
        }
    }
    bl_msg_free(reply);
    return rc;
}

int dm_cancel(bl_pid mgr, int id)
{
    return call_int(mgr, DM_CANCEL, &id, sizeof id);
}

int dm_stop(bl_pid mgr)
{
    return bl_gen_server_stop(mgr, NULL, DM_CALL_TIMEOUT);
}

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the program: download everything on the command line ---- */

#include <sys/ioctl.h>

typedef struct cli {
    const char *dir; /* where files go */
    char **srcs;     /* what to download */
    int n;
    int jobs;   /* -j: downloads at once (0 = all) */
    bool tty;   /* stdout is a terminal: a live table */
    int width;  /* its width */
    int failed; /* downloads that did not complete */
} cli;

static void human(int64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (b < 1024) {
        snprintf(buf, len, "%lld B", (long long)b);
        return;
    }
    double v = (double)b / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* One row of the table (a header when d is NULL), cut to the terminal's width. */
static void row(const cli *c, const dm_download *d)
{
    char line[512];
    if (!d) {
        snprintf(line, sizeof line, "%-3s %-24s %-11s %4s  %-21s %-11s %s", "ID", "NAME", "STATUS",
                 "%", "BYTES", "SPEED", "ERROR");
    } else {
        char pct[12] = "-", got[24], size[24], bytes[56], speed[32] = "-";
        if (d->percent >= 0) snprintf(pct, sizeof pct, "%d", d->percent);
        human(d->bytes_downloaded, got, sizeof got);
        human(d->size, size, sizeof size);
        if (d->size >= 0)
            snprintf(bytes, sizeof bytes, "%s / %s", got, size);
        else
            snprintf(bytes, sizeof bytes, "%s", got);
        if (d->elapsed_ms) {
            human(d->speed, speed, sizeof speed - 2);
            strcat(speed, "/s");
        }
        snprintf(line, sizeof line, "%-3d %-24.24s %-11s %4s  %-21s %-11s %s", d->id, d->name,
                 dm_state_name(d->status), pct, bytes, speed, d->error);
    }
    if (c->tty && c->width > 1 && (int)strlen(line) >= c->width) line[c->width - 1] = 0;
    for (size_t n = strlen(line); n && line[n - 1] == ' ';) line[--n] = 0;
    printf("%s%s\n", c->tty ? "\r\033[2K" : "", line);
}

/* Draws the table; on a terminal, over the previous one (cursor up, clear each line). */
static void draw(const cli *c, const dm_download *v, int n, int *drawn)
{
    if (c->tty && *drawn) printf("\033[%dA", *drawn);
    row(c, NULL);
    for (int i = 0; i < n; i++) row(c, &v[i]);
    *drawn = n + 1;
    fflush(stdout);
}

static void run(void *arg)
{
    cli *c = arg;
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .max_active = c->jobs};
    int rc = dm_start(&mgr, &o);
    if (rc) {
        fprintf(stderr, "download_manager: %s\n", strerror(-rc));
        c->failed = c->n;
        return;
    }
    /* Destinations: DIR/name, with a suffix when two sources share a name. */
    char(*names)[DM_NAME_MAX] = calloc((size_t)c->n, sizeof *names);
    dm_download *v = calloc((size_t)c->n, sizeof *v);
    int added = 0;
    for (int i = 0; names && v && i < c->n; i++) {
        char base[DM_NAME_MAX];
        dm_guess_name(c->srcs[i], base, sizeof base);
        snprintf(names[i], sizeof names[i], "%s", base);
        for (int j = 0, k = 1; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                snprintf(names[i], sizeof names[i], "%.100s.%d", base, ++k);
                j = -1; /* check the new name against all again */
            }
        char dest[DM_PATH_MAX];
        bool slash = c->dir[strlen(c->dir) - 1] == '/';
        snprintf(dest, sizeof dest, "%s%s%s", c->dir, slash ? "" : "/", names[i]);
        int id = dm_add(mgr, c->srcs[i], dest);
        if (id < 0) {
            fprintf(stderr, "%s: %s\n", c->srcs[i], strerror(-id));
            c->failed++;
        } else {
            added++;
        }
    }
    if (c->tty) printf("\033[?25l"); /* no cursor flickering over the table */
    int drawn = 0;
    for (;;) {
        int n = dm_list(mgr, v, (size_t)added);
        if (n < 0) break;
        bool done = true;
        for (int i = 0; i < n && i < added; i++) done = done && is_final(v[i].status);
        if (c->tty || done) draw(c, v, n < added ? n : added, &drawn);
        if (done) {
            for (int i = 0; i < n && i < added; i++) c->failed += v[i].status != DM_COMPLETED;
            break;
        }
        /* Redraw four times a second, and at every status change. */
        bl_msg *m = bl_receive(250);
        for (; m; m = bl_receive(0)) {
            if (!c->tty && m->tag == DM_EVENT && m->len == sizeof(dm_download)) {
                const dm_download *d = m->data;
                printf("[%d] %s: %s%s%s\n", d->id, d->name, dm_state_name(d->status),
                       d->error[0] ? ": " : "", d->error);
            }
            bl_msg_free(m);
        }
    }
    if (c->tty) printf("\033[?25h");
    fflush(stdout);
    free(names);
    free(v);
    dm_stop(mgr);
}

int main(int argc, char **argv)
{
    cli c = {0};
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-j") == 0) {
        c.jobs = atoi(argv[i + 1]);
        i += 2;
    }
    if (argc - i < 2 || c.jobs < 0) {
        fprintf(stderr, "usage: download_manager [-j N] DEST_DIR SOURCE...\n"
                        "  SOURCE: http://host[:port]/path, file:///path, or a path\n");
        return 2;
    }
    c.dir = argv[i];
    c.srcs = argv + i + 1;
    c.n = argc - i - 1;
    struct stat st;
    if (mkdir(c.dir, 0755) < 0 && (stat(c.dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "download_manager: %s: %s\n", c.dir, strerror(errno ? errno : ENOTDIR));
        return 2;
    }
    c.tty = isatty(STDOUT_FILENO);
    struct winsize ws;
    c.width = c.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
    int rc = bl_main(NULL, run, &c);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || c.failed ? 1 : 0;
}
#endif
