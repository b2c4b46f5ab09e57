/*
 * The download manager example against a loopback HTTP server run by the
 * test itself: concurrent downloads with exact bytes, progress, failures
 * that leave the others alone, a killed worker, cancellation without leaks,
 * local files, bad input, and the chunked decoder on every split; and the
 * same server over TLS for https (a self-signed certificate made here,
 * passed to the manager as its CA).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "examples/download_manager/http_client.h"
#include "examples/download_manager/manager.h"
#include "examples/download_manager/worker.h"

#include "bl_test.h"
#include "net/tls_test.h"

/* ---- content: byte i of an n-byte body ---- */

static char gen(int64_t i, int64_t n)
{
    return (char)((i * 131) ^ (i >> 9) ^ n);
}

static void fill(char *buf, int64_t off, size_t len, int64_t total)
{
    for (size_t i = 0; i < len; i++) buf[i] = gen(off + (int64_t)i, total);
}

/* ---- the loopback HTTP server ---- */

/*
 * Paths it serves (N bytes of gen content, K-byte steps):
 *   /data/N          Content-Length
 *   /close/N         no length: the close ends the body
 *   /chunked/N       chunked, with an extension and a trailer
 *   /short/N         Content-Length N, then half of it, then close
 *   /redirect/N      302 to /data/N;  /redirect-abs/N: 301 to http://127.0.0.1:port/data/N
 *   /loop            302 to itself
 *   /badchunk        a malformed chunked body;  /gzip: an unsupported coding
 *   /step/N/K/tag    Content-Length N; tells the controller (T_HELLO, data: the path),
 *                    then sends K bytes per T_STEP; T_ABORT closes the connection
 *   /hang            tells the controller, sends nothing until T_ABORT
 *   anything else    404
 */
enum { T_HELLO = 101, T_STEP, T_ABORT };

typedef struct server {
    int lfd;
    uint16_t port;
    bl_pid acceptor;
    bl_pid ctl;      /* the test process */
    bl_tls_ctx *tls; /* https: the server's TLS context; NULL: plain http */
} server;

typedef struct conn_arg {
    int fd;
    server *srv;
} conn_arg;

/* A server connection: the socket, and TLS on it for the https server. */
typedef struct sconn {
    int fd;
    bl_tls_conn *tls; /* NULL: plain */
} sconn;

static bool sc_send(sconn *c, const void *p, size_t n)
{
    ssize_t k = c->tls ? bl_tls_write(c->tls, p, n, 10000) : bl_io_send_all(c->fd, p, n, 0, 10000);
    return k == (ssize_t)n;
}

static ssize_t sc_recv(sconn *c, void *p, size_t n)
{
    return c->tls ? bl_tls_read(c->tls, p, n, 10000) : bl_io_recv(c->fd, p, n, 0, 10000);
}

static void sc_close(sconn *c)
{
    if (c->tls)
        bl_tls_close(c->tls);
    else
        bl_io_close(c->fd);
}

static bool send_str(sconn *c, const char *s)
{
    return sc_send(c, s, strlen(s));
}

/* Sends body bytes [off, off + len) of an n-byte body. */
static bool send_body(sconn *c, int64_t off, int64_t len, int64_t n)
{
    char buf[16384];
    while (len > 0) {
        size_t k = len < (int64_t)sizeof buf ? (size_t)len : sizeof buf;
        fill(buf, off, k, n);
        if (!sc_send(c, buf, k)) return false;
        off += (int64_t)k;
        len -= (int64_t)k;
    }
    return true;
}

static bool send_head(sconn *c, const char *status, const char *extra)
{
    char h[512];
    snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%sConnection: close\r\n\r\n", status, extra);
    return send_str(c, h);
}

static bool send_length_head(sconn *c, int64_t n)
{
    char extra[64];
    snprintf(extra, sizeof extra, "Content-Length: %lld\r\n", (long long)n);
    return send_head(c, "200 OK", extra);
}

static void send_chunked(sconn *c, int64_t n)
{
    static const int sizes[] = {1, 7, 1000, 4096, 333, 65536};
    send_head(c, "200 OK", "Transfer-Encoding: chunked\r\n");
    char *buf = malloc(70000);
    for (int64_t off = 0, i = 0; off < n; i++) {
        int64_t k = sizes[i % 6];
        if (k > n - off) k = n - off;
        /* Mixed case hex, and one chunk extension. */
        int h = snprintf(buf, 64, i % 2 ? "%llX%s\r\n" : "%llx%s\r\n", (long long)k,
                         i == 1 ? ";name=value" : "");
        fill(buf + h, off, (size_t)k, n);
        memcpy(buf + h + k, "\r\n", 2);
        if (!sc_send(c, buf, (size_t)(h + k + 2))) break;
        off += k;
    }
    send_str(c, "0\r\nX-Trailer: yes\r\n\r\n");
    free(buf);
}

static bool match_ctl(const bl_msg *m, void *arg)
{
    return m->tag == T_STEP || m->tag == T_ABORT;
}

/* /step and /hang: the controller drives the body. */
static void send_stepped(sconn *c, server *s, const char *path, int64_t n, int64_t k)
{
    if (k > 0 && !send_length_head(c, n)) return;
    bl_send(s->ctl, T_HELLO, path, strlen(path));
    for (int64_t off = 0; off < n || k == 0;) {
        bl_msg *m = NULL;
        if (bl_recv(&m, match_ctl, NULL, 60000, 0) != 0) return;
        bool abort = m->tag == T_ABORT;
        bl_msg_free(m);
        if (abort || k == 0) return;
        int64_t len = k < n - off ? k : n - off;
        if (!send_body(c, off, len, n)) return;
        off += len;
    }
}

static void conn_proc(void *arg)
{
    conn_arg a = *(conn_arg *)arg;
    free(arg);
    sconn sc = {a.fd, NULL}, *c = &sc;
    /* The https server's handshake (bl_tls_accept closes the socket when it fails). */
    if (a.srv->tls && bl_tls_accept(a.srv->tls, a.fd, 10000, &sc.tls) < 0) return;
    char req[4096];
    size_t have = 0;
    while (!memmem(req, have, "\r\n\r\n", 4)) {
        ssize_t n = sc_recv(c, req + have, sizeof req - 1 - have);
        if (n <= 0 || (have += (size_t)n) == sizeof req - 1) {
            sc_close(c);
            return;
        }
    }
    req[have] = 0;
    char path[512];
    long long n = 0, k = 0;
    /* The client's request must be well formed: a path, a Host, Connection: close. */
    if (sscanf(req, "GET %511s HTTP/1.1\r\n", path) != 1 || !strstr(req, "\r\nHost: ") ||
        !strstr(req, "\r\nConnection: close\r\n")) {
        send_head(c, "400 Bad Request", "");
    } else if (sscanf(path, "/data/%lld", &n) == 1) {
        if (send_length_head(c, n)) send_body(c, 0, n, n);
    } else if (sscanf(path, "/close/%lld", &n) == 1) {
        if (send_head(c, "200 OK", "")) send_body(c, 0, n, n);
    } else if (sscanf(path, "/chunked/%lld", &n) == 1) {
        send_chunked(c, n);
    } else if (sscanf(path, "/short/%lld", &n) == 1) {
        if (send_length_head(c, n)) send_body(c, 0, n / 2, n);
    } else if (sscanf(path, "/redirect/%lld", &n) == 1) {
        char loc[64];
        snprintf(loc, sizeof loc, "Location: /data/%lld\r\n", n);
        send_head(c, "302 Found", loc);
    } else if (sscanf(path, "/redirect-abs/%lld", &n) == 1) {
        char loc[80];
        snprintf(loc, sizeof loc, "Location: %s://127.0.0.1:%u/data/%lld\r\n",
                 a.srv->tls ? "https" : "http", a.srv->port, n);
        send_head(c, "301 Moved Permanently", loc);
    } else if (strcmp(path, "/loop") == 0) {
        send_head(c, "302 Found", "Location: /loop\r\n");
    } else if (strcmp(path, "/badchunk") == 0) {
        send_head(c, "200 OK", "Transfer-Encoding: chunked\r\n");
        send_str(c, "5\r\nhello\r\nzz\r\n");
    } else if (strcmp(path, "/gzip") == 0) {
        send_head(c, "200 OK", "Transfer-Encoding: gzip, chunked\r\n");
    } else if (sscanf(path, "/step/%lld/%lld", &n, &k) == 2 && k > 0) {
        send_stepped(c, a.srv, path, n, k);
    } else if (strcmp(path, "/hang") == 0) {
        send_stepped(c, a.srv, path, 0, 0);
    } else {
        send_head(c, "404 Not Found", "Content-Length: 0\r\n");
    }
    sc_close(c);
}

static void acceptor_proc(void *arg)
{
    server *s = arg;
    for (;;) {
        int fd = bl_io_accept(s->lfd, NULL, NULL, BL_INFINITY);
        if (fd < 0) return;
        conn_arg *a = malloc(sizeof *a);
        *a = (conn_arg){fd, s};
        if (bl_spawn(NULL, conn_proc, a, NULL) != 0) {
            free(a);
            bl_io_close(fd);
        }
    }
}

/* Starts the server: https with the context tls, plain http without. */
static void srv_start_tls(server *s, bl_tls_ctx *tls)
{
    memset(s, 0, sizeof *s);
    s->tls = tls;
    s->ctl = bl_self();
    s->lfd = bl_io_listen_tcp("127.0.0.1", 0, 128, &s->port);
    BL_CHECK(s->lfd >= 0);
    BL_CHECK_EQ(bl_spawn(&s->acceptor, acceptor_proc, s, NULL), 0);
}

static void srv_start(server *s)
{
    srv_start_tls(s, NULL);
}

static void srv_stop(server *s)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(s->acceptor, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(s->acceptor, &kill);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    bl_io_close(s->lfd);
}

static bool match_hello(const bl_msg *m, void *arg)
{
    return m->tag == T_HELLO && m->len == strlen(arg) && memcmp(m->data, arg, m->len) == 0;
}

/* The server's process for a /step or /hang request, once it has come. */
static bl_pid wait_hello(const char *path)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, match_hello, (void *)path, 30000, 0) != 0) return BL_PID_NONE;
    bl_pid pid = m->from;
    bl_msg_free(m);
    return pid;
}

/* Ends a server connection and waits until it is gone. */
static void abort_conn(bl_pid conn)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(conn, &ref), 0);
    bl_send(conn, T_ABORT, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
}

/* ---- files and waiting ---- */

static char tmpdir[64];

static const char *in_tmp(char *buf, const char *name)
{
    snprintf(buf, DM_PATH_MAX, "%s/%s", tmpdir, name);
    return buf;
}

static const char *url(char *buf, const server *s, const char *path)
{
    snprintf(buf, DM_URL_MAX, "http://127.0.0.1:%u%s", s->port, path);
    return buf;
}

/* True when path holds exactly the n bytes of gen content. */
static bool file_is(const char *path, int64_t n)
{
    struct statx sx;
    if (bl_io_statx(AT_FDCWD, path, 0, STATX_SIZE, &sx) != 0 || (int64_t)sx.stx_size != n)
        return false;
    int fd = bl_io_open(path, O_RDONLY, 0);
    if (fd < 0) return false;
    char *got = malloc((size_t)n + 1), *want = malloc((size_t)n + 1);
    bool ok = bl_io_pread_all(fd, got, (size_t)n, 0, 10000) == n;
    fill(want, 0, (size_t)n, n);
    ok = ok && memcmp(got, want, (size_t)n) == 0;
    free(got);
    free(want);
    bl_io_close(fd);
    return ok;
}

static bool file_absent(const char *path)
{
    struct statx sx;
    return bl_io_statx(AT_FDCWD, path, 0, STATX_SIZE, &sx) == -ENOENT;
}

static void write_file(const char *path, int64_t n)
{
    int fd = bl_io_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    BL_CHECK(fd >= 0);
    char *buf = malloc((size_t)n + 1);
    fill(buf, 0, (size_t)n, n);
    BL_CHECK_EQ(bl_io_pwrite_all(fd, buf, (size_t)n, 0, 10000), n);
    free(buf);
    bl_io_close(fd);
}

static bool match_final(const bl_msg *m, void *arg)
{
    const dm_download *d = m->data;
    return m->tag == DM_EVENT && m->len == sizeof *d && d->id == *(int *)arg &&
           dm_state_is_final(d->status);
}

/* Waits (bounded) for the subscriber event that says id has ended. */
static dm_download wait_final(int id)
{
    dm_download d = {.status = DM_QUEUED};
    bl_msg *m = NULL;
    if (bl_recv(&m, match_final, &id, 30000, 0) == 0) memcpy(&d, m->data, sizeof d);
    bl_msg_free(m);
    return d;
}

typedef bool (*pred_fn)(const dm_download *d, int64_t arg);

/* Polls id's status until pred holds: bounded by 30 s, yielding between polls. */
static bool poll_until(bl_pid mgr, int id, pred_fn pred, int64_t arg, dm_download *d)
{
    for (int64_t end = dm_now_ms() + 30000; dm_now_ms() < end; bl_yield())
        if (dm_status(mgr, id, d) == 0 && pred(d, arg)) return true;
    return false;
}

static bool has_bytes(const dm_download *d, int64_t n)
{
    return d->status == DM_DOWNLOADING && d->bytes_downloaded == n;
}

static bool has_bytes_above(const dm_download *d, int64_t n)
{
    return d->status == DM_DOWNLOADING && d->bytes_downloaded > n;
}

static bool has_size(const dm_download *d, int64_t n)
{
    return d->status == DM_DOWNLOADING && d->size == n;
}

static void check_completed(const dm_download *d, const char *dest, int64_t n)
{
    BL_CHECK_EQ(d->status, DM_COMPLETED);
    BL_CHECK_EQ(d->size, n);
    BL_CHECK_EQ(d->bytes_downloaded, n);
    BL_CHECK_EQ(d->percent, 100);
    BL_CHECK_EQ(d->pid, BL_PID_NONE);
    BL_CHECK(d->error[0] == 0);
    BL_CHECK(file_is(dest, n));
}

static void check_failed(const dm_download *d, const char *dest, const char *why)
{
    BL_CHECK_EQ(d->status, DM_FAILED);
    if (!strstr(d->error, why))
        fprintf(stderr, "download %d: error \"%s\", expected \"%s\"\n", d->id, d->error, why);
    BL_CHECK(strstr(d->error, why) != NULL);
    BL_CHECK(file_absent(dest));
}

/* Runs fn in a fresh runtime with a fresh directory for the files. */
static void run_in_tmp(bl_entry_fn fn)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bl_dm_XXXXXX");
    cr_assert(mkdtemp(tmpdir) != NULL);
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, fn, NULL);
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[DM_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (unlink(p) < 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
}

/* ---- several downloads at once ---- */

static bool localhost_ok; /* "localhost" resolves to 127.0.0.1 here */

static void concurrent_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self()};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);

    struct {
        const char *path;
        int64_t n;
    } cases[] = {
        {"/data/0", 0},
        {"/data/1", 1},
        {"/data/100000", 100000},
        {"/data/3145728", 3145728},
        {"/close/200001", 200001},
        {"/chunked/150000", 150000},
        {"/redirect/5000", 5000},
        {"/redirect-abs/7000", 7000},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    char u[DM_URL_MAX], dest[N + 1][DM_PATH_MAX];
    int ids[N + 1];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        ids[i] = dm_add(mgr, url(u, &s, cases[i].path), in_tmp(dest[i], name));
        BL_CHECK_EQ(ids[i], i + 1);
    }
    /* A host name, through getaddrinfo on the dirty pool. */
    int n = N;
    if (localhost_ok) {
        snprintf(u, sizeof u, "http://localhost:%u/data/4242", s.port);
        ids[n] = dm_add(mgr, u, in_tmp(dest[n], "local"));
        BL_CHECK_EQ(ids[n], n + 1);
        n++;
    }
    for (int i = 0; i < n; i++) {
        dm_download d = wait_final(ids[i]);
        if (d.status != DM_COMPLETED) fprintf(stderr, "download %d: %s\n", d.id, d.error);
        check_completed(&d, dest[i], i < N ? cases[i].n : 4242);
    }
    /* The list: every download, in id order, as the events said. */
    dm_download all[N + 2];
    BL_CHECK_EQ(dm_list(mgr, all, N + 2), n);
    for (int i = 0; i < n; i++) {
        BL_CHECK_EQ(all[i].id, i + 1);
        BL_CHECK_EQ(all[i].status, DM_COMPLETED);
        BL_CHECK(strcmp(all[i].dest, dest[i]) == 0);
    }
    BL_CHECK(strcmp(all[3].name, "3145728") == 0);
    BL_CHECK(strcmp(all[3].src, url(u, &s, "/data/3145728")) == 0);
    /* A shorter list still says how many there are. */
    BL_CHECK_EQ(dm_list(mgr, all, 1), n);
    BL_CHECK_EQ(dm_list(mgr, NULL, 0), n);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

/* True when "localhost" resolves to 127.0.0.1 here. */
static bool localhost_is_loopback(void)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo("localhost", "80", &hints, &res) != 0) return false;
    struct sockaddr_in *a = (struct sockaddr_in *)res->ai_addr;
    bool ok = a->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    freeaddrinfo(res);
    return ok;
}

Test(download_manager, concurrent, .timeout = 240)
{
    localhost_ok = localhost_is_loopback();
    run_in_tmp(concurrent_main);
}

/* ---- progress ---- */

static void progress_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    /* Every byte reported: each step of the server shows. */
    dm_opts o = {.subscriber = bl_self(), .progress_bytes = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], dest[DM_PATH_MAX];
    int id = dm_add(mgr, url(u, &s, "/step/10000/1000/p"), in_tmp(dest, "p"));
    BL_CHECK_EQ(id, 1);
    bl_pid conn = wait_hello("/step/10000/1000/p");
    BL_CHECK(conn != BL_PID_NONE);

    dm_download d;
    BL_CHECK(poll_until(mgr, id, has_size, 10000, &d));
    BL_CHECK_EQ(d.bytes_downloaded, 0);
    BL_CHECK_EQ(d.percent, 0);
    BL_CHECK(d.pid != BL_PID_NONE && bl_is_alive(d.pid));
    BL_CHECK(strcmp(d.name, "p") == 0);
    for (int k = 1; k < 10; k++) {
        bl_send(conn, T_STEP, NULL, 0);
        BL_CHECK(poll_until(mgr, id, has_bytes, k * 1000, &d));
        BL_CHECK_EQ(d.percent, k * 10);
        BL_CHECK_EQ(d.size, 10000);
        BL_CHECK(d.elapsed_ms >= 0 && d.speed >= 0);
    }
    bl_send(conn, T_STEP, NULL, 0);
    d = wait_final(id);
    check_completed(&d, dest, 10000);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, progress, .timeout = 240)
{
    run_in_tmp(progress_main);
}

/* The throttle: a report per progress_bytes, or after progress_ms with bytes unreported. */
static void throttle_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    char u[DM_URL_MAX], dest[DM_PATH_MAX];
    dm_download d;

    /* By bytes only (the time limit is an hour): the first report comes at 4096 or more. */
    dm_opts o = {.progress_bytes = 4096, .progress_ms = 3600000};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    int id = dm_add(mgr, url(u, &s, "/step/10000/1000/bytes"), in_tmp(dest, "bytes"));
    bl_pid conn = wait_hello("/step/10000/1000/bytes");
    BL_CHECK(poll_until(mgr, id, has_size, 10000, &d));
    for (int k = 0; k < 5; k++) bl_send(conn, T_STEP, NULL, 0);
    /* Steps of 1000 bytes arrive whole: 5000 is the first count of 4096 or more. */
    BL_CHECK(poll_until(mgr, id, has_bytes_above, 0, &d));
    BL_CHECK_EQ(d.bytes_downloaded, 5000);
    abort_conn(conn);
    BL_CHECK_EQ(dm_stop(mgr), 0);

    /*
     * By time: a server gone quiet after 1000 bytes that came soon after the
     * head's report; the worker, waiting in recv, reports them when due.
     */
    o = (dm_opts){.subscriber = bl_self(), .progress_bytes = 1 << 20, .progress_ms = 500};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    id = dm_add(mgr, url(u, &s, "/step/10000/1000/time"), in_tmp(dest, "time"));
    conn = wait_hello("/step/10000/1000/time");
    BL_CHECK(poll_until(mgr, id, has_size, 10000, &d));
    bl_send(conn, T_STEP, NULL, 0);
    BL_CHECK(poll_until(mgr, id, has_bytes, 1000, &d));
    /* The cut wait did not end the download: it goes on to the end. */
    for (int k = 1; k < 10; k++) bl_send(conn, T_STEP, NULL, 0);
    d = wait_final(id);
    check_completed(&d, dest, 10000);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, throttle, .timeout = 240)
{
    run_in_tmp(throttle_main);
}

/* ---- failures: each marked failed, the others go on ---- */

static void failures_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .progress_bytes = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], dest[DM_PATH_MAX], d2[DM_PATH_MAX];

    /* One download that stays in progress through all the failures. */
    int keep = dm_add(mgr, url(u, &s, "/step/50000/10000/keep"), in_tmp(dest, "keep"));
    bl_pid conn = wait_hello("/step/50000/10000/keep");
    bl_send(conn, T_STEP, NULL, 0);
    dm_download d;
    BL_CHECK(poll_until(mgr, keep, has_bytes, 10000, &d));

    /* A port nobody listens on. */
    uint16_t closed;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 1, &closed);
    bl_io_close(lfd);
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%u/x", closed);

    struct {
        const char *src;
        const char *why;
    } cases[] = {
        {"/missing", "HTTP 404 Not Found"},
        {"/short/100000", "connection closed after 50000 of 100000 bytes"},
        {refused, "Connection refused"},
        {"/badchunk", "malformed chunked body"},
        {"/gzip", "unsupported transfer encoding: gzip, chunked"},
        {"/loop", "too many redirects"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *src = cases[i].src[0] == '/' ? url(u, &s, cases[i].src) : cases[i].src;
        int id = dm_add(mgr, src, in_tmp(d2, "bad"));
        BL_CHECK(id > 0);
        d = wait_final(id);
        check_failed(&d, d2, cases[i].why);
        BL_CHECK_EQ(d.pid, BL_PID_NONE);
    }
    /* The one in progress never noticed. */
    BL_CHECK_EQ(dm_status(mgr, keep, &d), 0);
    BL_CHECK_EQ(d.status, DM_DOWNLOADING);
    BL_CHECK_EQ(d.bytes_downloaded, 10000);
    BL_CHECK(bl_is_alive(d.pid));
    for (int k = 0; k < 4; k++) bl_send(conn, T_STEP, NULL, 0);
    d = wait_final(keep);
    check_completed(&d, dest, 50000);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, failures, .timeout = 240)
{
    run_in_tmp(failures_main);
}

/* A server that says nothing: the worker's timeout fails the download. */
static void timeout_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .timeout_ms = 200};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], dest[DM_PATH_MAX];
    int id = dm_add(mgr, url(u, &s, "/hang"), in_tmp(dest, "hang"));
    bl_pid conn = wait_hello("/hang");
    dm_download d = wait_final(id);
    check_failed(&d, dest, "no data from the server for 200 ms");
    abort_conn(conn);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, timeout, .timeout = 240)
{
    run_in_tmp(timeout_main);
}

/* ---- a worker killed ---- */

static void killed_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .progress_bytes = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], da[DM_PATH_MAX], db[DM_PATH_MAX];
    int a = dm_add(mgr, url(u, &s, "/step/40000/10000/a"), in_tmp(da, "a"));
    int b = dm_add(mgr, url(u, &s, "/step/40000/10000/b"), in_tmp(db, "b"));
    bl_pid ca = wait_hello("/step/40000/10000/a"), cb = wait_hello("/step/40000/10000/b");
    BL_CHECK(ca && cb);
    bl_send(ca, T_STEP, NULL, 0);
    bl_send(cb, T_STEP, NULL, 0);
    dm_download d, e;
    BL_CHECK(poll_until(mgr, a, has_bytes, 10000, &d));
    BL_CHECK(poll_until(mgr, b, has_bytes, 10000, &e));
    /* Both run at once, each in its own worker. */
    BL_CHECK(d.pid != e.pid && bl_is_alive(d.pid) && bl_is_alive(e.pid));

    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(d.pid, &kill), 0);
    dm_download f = wait_final(a);
    check_failed(&f, da, "killed");
    BL_CHECK_EQ(f.bytes_downloaded, 10000);
    BL_CHECK(!bl_is_alive(d.pid));
    abort_conn(ca);

    /* b goes on. */
    for (int k = 0; k < 3; k++) bl_send(cb, T_STEP, NULL, 0);
    f = wait_final(b);
    check_completed(&f, db, 40000);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, killed_worker, .timeout = 240)
{
    run_in_tmp(killed_main);
}

/* ---- cancel ---- */

static void cancel_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .progress_bytes = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    int fds0 = bl_test_count_fds();
    uint64_t inflight0 = bl_io_inflight();

    char u[DM_URL_MAX], dest[DM_PATH_MAX];
    int id = dm_add(mgr, url(u, &s, "/step/100000/1000/c"), in_tmp(dest, "c"));
    bl_pid conn = wait_hello("/step/100000/1000/c");
    bl_send(conn, T_STEP, NULL, 0);
    dm_download d;
    BL_CHECK(poll_until(mgr, id, has_bytes, 1000, &d));
    BL_CHECK(!file_absent(dest));
    bl_pid worker = d.pid;
    BL_CHECK(bl_is_alive(worker));

    /* The worker is blocked in recv; cancel returns once it is gone. */
    BL_CHECK_EQ(dm_cancel(mgr, id), 0);
    BL_CHECK(!bl_is_alive(worker));
    BL_CHECK_EQ(dm_status(mgr, id, &d), 0);
    BL_CHECK_EQ(d.status, DM_CANCELLED);
    BL_CHECK_EQ(d.pid, BL_PID_NONE);
    BL_CHECK_EQ(d.bytes_downloaded, 1000);
    BL_CHECK(d.error[0] == 0);
    BL_CHECK(file_absent(dest));
    dm_download ev = wait_final(id);
    BL_CHECK_EQ(ev.status, DM_CANCELLED);
    BL_CHECK_EQ(dm_cancel(mgr, id), -EALREADY);
    BL_CHECK_EQ(dm_cancel(mgr, 99), -ENOENT);
    BL_CHECK_EQ(dm_cancel(mgr, 0), -ENOENT);

    /* Nothing left behind: the worker's socket and file, the server's side. */
    abort_conn(conn);
    for (int64_t end = dm_now_ms() + 10000; dm_now_ms() < end && bl_test_count_fds() != fds0;)
        bl_yield();
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
    for (int64_t end = dm_now_ms() + 10000; dm_now_ms() < end && bl_io_inflight() != inflight0;)
        bl_yield();
    BL_CHECK_EQ(bl_io_inflight(), inflight0);

    /* A completed download cannot be cancelled. */
    id = dm_add(mgr, url(u, &s, "/data/10"), in_tmp(dest, "done"));
    d = wait_final(id);
    check_completed(&d, dest, 10);
    BL_CHECK_EQ(dm_cancel(mgr, id), -EALREADY);
    BL_CHECK(file_is(dest, 10));
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, cancel, .timeout = 240)
{
    run_in_tmp(cancel_main);
}

/* One at a time: the others queue, a queued one can be cancelled. */
static void queue_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .max_active = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], da[DM_PATH_MAX], db[DM_PATH_MAX], dc[DM_PATH_MAX];
    int a = dm_add(mgr, url(u, &s, "/step/3000/1000/q"), in_tmp(da, "a"));
    int b = dm_add(mgr, url(u, &s, "/data/2000"), in_tmp(db, "b"));
    int c = dm_add(mgr, url(u, &s, "/data/3000"), in_tmp(dc, "c"));
    bl_pid conn = wait_hello("/step/3000/1000/q");
    dm_download d;
    BL_CHECK_EQ(dm_status(mgr, b, &d), 0);
    BL_CHECK_EQ(d.status, DM_QUEUED);
    BL_CHECK_EQ(d.pid, BL_PID_NONE);
    BL_CHECK_EQ(d.percent, -1);
    BL_CHECK_EQ(d.elapsed_ms, 0);
    BL_CHECK_EQ(dm_cancel(mgr, b), 0);
    BL_CHECK_EQ(wait_final(b).status, DM_CANCELLED);
    BL_CHECK(file_absent(db)); /* never started, never created */
    BL_CHECK_EQ(dm_status(mgr, c, &d), 0);
    BL_CHECK_EQ(d.status, DM_QUEUED);

    /* a ends, c starts. */
    for (int k = 0; k < 3; k++) bl_send(conn, T_STEP, NULL, 0);
    d = wait_final(a);
    check_completed(&d, da, 3000);
    d = wait_final(c);
    check_completed(&d, dc, 3000);
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
}

Test(download_manager, queue, .timeout = 240)
{
    run_in_tmp(queue_main);
}

/* dm_stop with a download running: the worker goes, its partial file too. */
static void stop_main(void *arg)
{
    server s;
    srv_start(&s);
    bl_pid mgr;
    dm_opts o = {.progress_bytes = 1};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char u[DM_URL_MAX], dest[DM_PATH_MAX];
    int id = dm_add(mgr, url(u, &s, "/step/5000/1000/s"), in_tmp(dest, "s"));
    bl_pid conn = wait_hello("/step/5000/1000/s");
    bl_send(conn, T_STEP, NULL, 0);
    dm_download d;
    BL_CHECK(poll_until(mgr, id, has_bytes, 1000, &d));
    BL_CHECK_EQ(dm_stop(mgr), 0);
    BL_CHECK(!bl_is_alive(mgr));
    BL_CHECK(!bl_is_alive(d.pid));
    BL_CHECK(file_absent(dest));
    BL_CHECK_EQ(dm_status(mgr, id, &d), -ESRCH);
    BL_CHECK_EQ(dm_add(mgr, u, dest), -ESRCH);
    abort_conn(conn);
    srv_stop(&s);
}

Test(download_manager, stop, .timeout = 240)
{
    run_in_tmp(stop_main);
}

/* ---- https ---- */

static tls_files tf; /* the https server's certificate (srv), and one nobody trusts (other) */

static void https_main(void *arg)
{
    bl_tls_opts so = {.cert_file = tf.cert, .key_file = tf.key};
    bl_tls_ctx *x = bl_tls_server_ctx(&so);
    BL_CHECK(x != NULL);
    server s, plain;
    srv_start_tls(&s, x);
    srv_start(&plain);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .ca_file = tf.cert};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);

    /* The same exchanges as over http, by address and by name, redirects staying https. */
    struct {
        const char *path;
        int64_t n;
    } cases[] = {
        {"/data/100000", 100000},    {"/data/3145728", 3145728}, {"/close/200001", 200001},
        {"/chunked/150000", 150000}, {"/redirect/5000", 5000},   {"/redirect-abs/7000", 7000},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    char u[DM_URL_MAX], dest[N + 1][DM_PATH_MAX];
    int ids[N + 1], n = N;
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        snprintf(u, sizeof u, "https://127.0.0.1:%u%s", s.port, cases[i].path);
        ids[i] = dm_add(mgr, u, in_tmp(dest[i], name));
        BL_CHECK(ids[i] > 0);
    }
    if (localhost_ok) {
        snprintf(u, sizeof u, "https://localhost:%u/data/4242", s.port);
        ids[n] = dm_add(mgr, u, in_tmp(dest[n], "local"));
        n++;
    }
    for (int i = 0; i < n; i++) {
        dm_download d = wait_final(ids[i]);
        if (d.status != DM_COMPLETED) fprintf(stderr, "download %d: %s\n", d.id, d.error);
        check_completed(&d, dest[i], i < N ? cases[i].n : 4242);
    }

    /* Cancelled while its worker waits in a TLS read: nothing left behind. */
    int fds0 = bl_test_count_fds();
    uint64_t inflight0 = bl_io_inflight();
    snprintf(u, sizeof u, "https://127.0.0.1:%u/step/100000/1000/hc", s.port);
    int id = dm_add(mgr, u, in_tmp(dest[0], "hc"));
    bl_pid conn = wait_hello("/step/100000/1000/hc");
    bl_send(conn, T_STEP, NULL, 0);
    dm_download d;
    BL_CHECK(poll_until(mgr, id, has_bytes, 1000, &d));
    BL_CHECK_EQ(dm_cancel(mgr, id), 0);
    BL_CHECK(!bl_is_alive(d.pid));
    BL_CHECK(file_absent(dest[0]));
    abort_conn(conn);
    for (int64_t end = dm_now_ms() + 10000;
         dm_now_ms() < end && (bl_test_count_fds() != fds0 || bl_io_inflight() != inflight0);)
        bl_yield();
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
    BL_CHECK_EQ(bl_io_inflight(), inflight0);

    /*
     * https to the plain server (which waits for a request's end, never
     * answering a ClientHello: the handshake's timeout), http to the https
     * one: failures, with reasons.
     */
    BL_CHECK_EQ(dm_stop(mgr), 0);
    o.timeout_ms = 300;
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    snprintf(u, sizeof u, "https://127.0.0.1:%u/data/10", plain.port);
    d = wait_final(dm_add(mgr, u, in_tmp(dest[0], "bad1")));
    check_failed(&d, dest[0], "TLS with 127.0.0.1: handshake: timed out");
    snprintf(u, sizeof u, "http://127.0.0.1:%u/data/10", s.port);
    d = wait_final(dm_add(mgr, u, in_tmp(dest[0], "bad2")));
    BL_CHECK_EQ(d.status, DM_FAILED);
    BL_CHECK_EQ(dm_stop(mgr), 0);

    /* A manager trusting another CA: the certificate is refused. */
    char other[DM_PATH_MAX];
    snprintf(other, sizeof other, "%s/other.crt", tf.dir);
    o.ca_file = other;
    o.timeout_ms = 0;
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    snprintf(u, sizeof u, "https://localhost:%u/data/10", s.port);
    d = wait_final(dm_add(mgr, u, in_tmp(dest[0], "bad3")));
    check_failed(&d, dest[0], "certificate verify failed: self-signed certificate");
    /* One whose CA file is missing: the download fails, saying so. */
    BL_CHECK_EQ(dm_stop(mgr), 0);
    o.ca_file = "/nonexistent-bl-dm-ca.pem";
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    d = wait_final(dm_add(mgr, u, in_tmp(dest[0], "bad4")));
    check_failed(&d, dest[0], "TLS: /nonexistent-bl-dm-ca.pem: No such file or directory");
    BL_CHECK_EQ(dm_stop(mgr), 0);
    srv_stop(&s);
    srv_stop(&plain);
    bl_tls_ctx_free(x);
}

Test(download_manager, https, .timeout = 240)
{
    localhost_ok = localhost_is_loopback();
    cr_assert(tls_make_cert(&tf, "other", "other"));
    cr_assert(tls_make_cert(&tf, "srv", "localhost")); /* tf.cert and tf.key: srv's */
    run_in_tmp(https_main);
    tls_files_remove(&tf);
}

/* ---- local files ---- */

static void local_main(void *arg)
{
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self()};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char src[DM_PATH_MAX], empty[DM_PATH_MAX], u[DM_URL_MAX + 8], dest[3][DM_PATH_MAX];
    int64_t n = (1 << 20) + 1;
    write_file(in_tmp(src, "src.bin"), n);
    write_file(in_tmp(empty, "empty"), 0);
    snprintf(u, sizeof u, "file://%s", src);

    int a = dm_add(mgr, src, in_tmp(dest[0], "copy1"));
    int b = dm_add(mgr, u, in_tmp(dest[1], "copy2"));
    int c = dm_add(mgr, empty, in_tmp(dest[2], "copy3"));
    dm_download d = wait_final(a);
    check_completed(&d, dest[0], n);
    BL_CHECK(strcmp(d.name, "src.bin") == 0);
    d = wait_final(b);
    check_completed(&d, dest[1], n);
    d = wait_final(c);
    check_completed(&d, dest[2], 0);

    /* A missing source, a directory, and a copy onto itself. */
    char missing[DM_PATH_MAX], d4[DM_PATH_MAX], d5[DM_PATH_MAX];
    int id = dm_add(mgr, in_tmp(missing, "missing"), in_tmp(d4, "copy4"));
    d = wait_final(id);
    check_failed(&d, d4, "No such file or directory");
    id = dm_add(mgr, tmpdir, in_tmp(d5, "copy5"));
    d = wait_final(id);
    check_failed(&d, d5, "Is a directory");
    id = dm_add(mgr, src, src);
    d = wait_final(id);
    BL_CHECK_EQ(d.status, DM_FAILED);
    BL_CHECK(strstr(d.error, "same file") != NULL);
    BL_CHECK(file_is(src, n)); /* untouched */
    BL_CHECK_EQ(dm_stop(mgr), 0);
}

Test(download_manager, local_files, .timeout = 240)
{
    run_in_tmp(local_main);
}

/* ---- bad input ---- */

static void bad_input_main(void *arg)
{
    BL_CHECK_EQ(dm_start(NULL, &(dm_opts){.max_active = -1}), -EINVAL);
    BL_CHECK_EQ(dm_start(NULL, &(dm_opts){.timeout_ms = -5}), -EINVAL);
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self()};
    BL_CHECK_EQ(dm_start(&mgr, &o), 0);
    char dest[DM_PATH_MAX];
    in_tmp(dest, "x");
    static const struct {
        const char *src;
        int rc;
    } bad[] = {
        {"", -EINVAL},
        {"ftp://example.com/f", -EPROTONOSUPPORT},
        {"ftps://example.com/f", -EPROTONOSUPPORT},
        {"https://", -EINVAL},
        {"https://user@127.0.0.1/x", -EINVAL},
        {"https://127.0.0.1:99999/x", -EINVAL},
        {"http://", -EINVAL},
        {"http:///path", -EINVAL},
        {"http://127.0.0.1:0/x", -EINVAL},
        {"http://127.0.0.1:65536/x", -EINVAL},
        {"http://127.0.0.1:/x", -EINVAL},
        {"http://127.0.0.1:8x/x", -EINVAL},
        {"http://user@127.0.0.1/x", -EINVAL},
        {"http://127.0.0.1/a b", -EINVAL},
        {"http://[::1/x", -EINVAL},
        {"http://::1/x", -EINVAL},
        {"file://relative/path", -EINVAL},
        {"/tmp/a\nb", -EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = dm_add(mgr, bad[i].src, dest);
        if (rc != bad[i].rc) fprintf(stderr, "dm_add(\"%s\"): %d\n", bad[i].src, rc);
        BL_CHECK_EQ(rc, bad[i].rc);
    }
    BL_CHECK_EQ(dm_add(mgr, NULL, dest), -EINVAL);
    BL_CHECK_EQ(dm_add(mgr, "/tmp/f", NULL), -EINVAL);
    BL_CHECK_EQ(dm_add(mgr, "/tmp/f", ""), -EINVAL);
    char *longs = malloc(DM_URL_MAX + 1);
    memset(longs, 'a', DM_URL_MAX);
    longs[DM_URL_MAX] = 0;
    BL_CHECK_EQ(dm_add(mgr, longs, dest), -ENAMETOOLONG);
    BL_CHECK_EQ(dm_add(mgr, "/tmp/f", longs), -ENAMETOOLONG);
    free(longs);
    /* Nothing was added. */
    dm_download d;
    BL_CHECK_EQ(dm_list(mgr, NULL, 0), 0);
    BL_CHECK_EQ(dm_status(mgr, 1, &d), -ENOENT);
    BL_CHECK_EQ(dm_status(mgr, -1, &d), -ENOENT);
    BL_CHECK_EQ(dm_status(mgr, 1, NULL), -EINVAL);

    /* Destinations that cannot be written: the download fails, the others do not. */
    char src[DM_PATH_MAX], file_dest[DM_PATH_MAX + 8], ok[DM_PATH_MAX];
    write_file(in_tmp(src, "src"), 1000);
    snprintf(file_dest, sizeof file_dest, "%s/x", src); /* under a regular file */
    struct {
        const char *dest;
        const char *why;
    } unwritable[] = {
        {"/nonexistent-bl-dm-dir/f", "No such file or directory"},
        {file_dest, "Not a directory"},
        {tmpdir, "Is a directory"},
    };
    int good = dm_add(mgr, src, in_tmp(ok, "ok"));
    for (size_t i = 0; i < sizeof unwritable / sizeof unwritable[0]; i++) {
        int id = dm_add(mgr, src, unwritable[i].dest);
        BL_CHECK(id > 0);
        d = wait_final(id);
        BL_CHECK_EQ(d.status, DM_FAILED);
        if (!strstr(d.error, unwritable[i].why)) fprintf(stderr, "error: %s\n", d.error);
        BL_CHECK(strstr(d.error, unwritable[i].why) != NULL);
    }
    d = wait_final(good);
    check_completed(&d, ok, 1000);
    BL_CHECK(file_is(src, 1000));
    BL_CHECK_EQ(dm_stop(mgr), 0);
}

Test(download_manager, bad_input, .timeout = 240)
{
    run_in_tmp(bad_input_main);
}

/* ---- the pure parts, outside the runtime ---- */

Test(download_manager, parse_and_names)
{
    dm_url u;
    cr_assert_eq(dm_parse_source("http://[::1]:8080", &u), 0);
    cr_assert_eq(u.kind, DM_SRC_HTTP);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 8080);
    cr_assert_str_eq(u.path, "/");
    cr_assert_eq(dm_parse_source("HTTP://Example.com/a/b?q=1#frag", &u), 0);
    cr_assert_str_eq(u.host, "Example.com");
    cr_assert_eq(u.port, 80);
    cr_assert_str_eq(u.path, "/a/b?q=1");
    cr_assert(!u.tls);
    cr_assert_eq(dm_parse_source("https://Example.com/a", &u), 0);
    cr_assert_eq(u.kind, DM_SRC_HTTP);
    cr_assert(u.tls);
    cr_assert_eq(u.port, 443);
    cr_assert_str_eq(u.host, "Example.com");
    cr_assert_str_eq(u.path, "/a");
    cr_assert_eq(dm_parse_source("HTTPS://[::1]:8443", &u), 0);
    cr_assert(u.tls);
    cr_assert_eq(u.port, 8443);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(dm_parse_source("http://h?x", &u), 0);
    cr_assert_str_eq(u.path, "/?x");
    cr_assert_eq(dm_parse_source("file://localhost/etc/hosts", &u), 0);
    cr_assert_eq(u.kind, DM_SRC_FILE);
    cr_assert_str_eq(u.path, "/etc/hosts");
    cr_assert_eq(dm_parse_source("relative/file name.txt", &u), 0);
    cr_assert_str_eq(u.path, "relative/file name.txt");

    char name[DM_NAME_MAX];
    dm_guess_name("http://h/a/b.iso?x=1", name, sizeof name);
    cr_assert_str_eq(name, "b.iso");
    dm_guess_name("http://h/dir/", name, sizeof name);
    cr_assert_str_eq(name, "index.html");
    dm_guess_name("/tmp/some/dir/", name, sizeof name);
    cr_assert_str_eq(name, "dir");
    dm_guess_name("file:///x/..", name, sizeof name);
    cr_assert_str_eq(name, "download");
    dm_guess_name("gopher://x", name, sizeof name);
    cr_assert_str_eq(name, "download");
    cr_assert_str_eq(dm_state_name(DM_CANCELLED), "cancelled");
}

/* The response head parser, on good and bad heads. */
Test(download_manager, response_head)
{
    dm_response r;
    const char *h = "HTTP/1.1 200 OK\r\ncontent-LENGTH:  42 \r\nX: y\r\n\r\n";
    cr_assert_eq(dm_http_head_end(h, strlen(h)), strlen(h));
    cr_assert_eq(dm_http_parse_head(h, strlen(h), &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.reason, "OK");
    cr_assert_eq(r.length, 42);
    h = "HTTP/1.0 302 Found\nLocation: /x\nTransfer-Encoding: chunked\n\n";
    cr_assert_eq(dm_http_parse_head(h, dm_http_head_end(h, strlen(h)), &r), 0);
    cr_assert_eq(r.status, 302);
    cr_assert(r.chunked);
    cr_assert_str_eq(r.location, "/x");
    cr_assert_eq(dm_http_head_end("HTTP/1.1 200 OK\r\n", 17), 0);
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(dm_http_parse_head(bad[i], strlen(bad[i]), &r), -1, "%s", bad[i]);
}

/* The chunked decoder gives the same bytes however the body is split. */
Test(download_manager, chunked_decoder)
{
    const char body[] = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n1\r\n!\r\n"
                        "0\r\nTrailer: x\r\n\r\nIGNORED";
    const char want[] = "hello0123456789!";
    size_t len = strlen(body);
    char buf[sizeof body], out[sizeof body];
    for (size_t cut1 = 0; cut1 <= len; cut1++)
        for (size_t cut2 = cut1; cut2 <= len; cut2++) {
            dm_chunked c = {0};
            size_t got = 0, cuts[] = {0, cut1, cut2, len};
            for (int p = 0; p < 3; p++) {
                size_t n = cuts[p + 1] - cuts[p];
                memcpy(buf, body + cuts[p], n);
                ssize_t d = dm_chunked_feed(&c, buf, n);
                cr_assert(d >= 0, "cuts %zu %zu", cut1, cut2);
                memcpy(out + got, buf, (size_t)d);
                got += (size_t)d;
            }
            cr_assert_eq(c.state, DM_CH_DONE);
            cr_assert_eq(got, strlen(want));
            cr_assert(memcmp(out, want, got) == 0);
        }
    /* Bare LFs are accepted too. */
    dm_chunked c = {0};
    strcpy(buf, "3\nabc\n0\n\n");
    cr_assert_eq(dm_chunked_feed(&c, buf, strlen(buf)), 3);
    cr_assert_eq(c.state, DM_CH_DONE);
    static const char *const bad[] = {
        "zz\r\n", "\r\n", "5\r\nhelloXX", "5\rX", "1000000000000000\r\n", "3\r\nabc\r\n0\r\n\rX",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dm_chunked b = {0};
        strcpy(buf, bad[i]);
        cr_assert_eq(dm_chunked_feed(&b, buf, strlen(buf)), -1, "%s", bad[i]);
    }
    /* Incomplete is not malformed: it waits for more. */
    dm_chunked p = {0};
    strcpy(buf, "5\r\nhel");
    cr_assert_eq(dm_chunked_feed(&p, buf, strlen(buf)), 3);
    cr_assert_neq(p.state, DM_CH_DONE);
}
