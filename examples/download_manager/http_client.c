/*
 * http_client.c - the worker's HTTP/1.1 client (see http_client.h): name
 * resolution and connecting (TLS for https), the response head, the
 * chunked decoder, and the exchange itself, which streams the body into the
 * worker's destination through dm_worker_write.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "worker.h"

#define DM_HEADER_MAX (16 * 1024)
#define DM_REDIRECTS  5

/* ---- connecting ---- */

typedef struct resolve_job {
    const char *host;                /* the name to resolve */
    uint16_t port;                   /* the port the addresses get */
    struct sockaddr_storage addr[4]; /* the addresses found */
    socklen_t len[4];                /* their lengths */
    int n;                           /* addresses found */
    int gai;                         /* getaddrinfo's error, 0 if none */
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
static int http_connect(dm_worker *w, const dm_url *u)
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
        if (rc < 0) return dm_worker_fail(w, "resolve %s: %s", u->host, strerror(-rc));
        if (j.gai) return dm_worker_fail(w, "resolve %s: %s", u->host, gai_strerror(j.gai));
        if (!j.n) return dm_worker_fail(w, "resolve %s: no address", u->host);
    }
    int rc = 0;
    for (int i = 0; i < j.n; i++) {
        /* Kept in the state before connecting: a kill meanwhile leaves it to release. */
        w->sock = bl_io_socket(j.addr[i].ss_family, SOCK_STREAM, 0);
        if (w->sock < 0) return dm_worker_fail(w, "socket: %s", strerror(-w->sock));
        rc = bl_io_connect(w->sock, (struct sockaddr *)&j.addr[i], j.len[i], w->job.timeout_ms);
        if (rc == 0) return 0;
        dm_close_fd(&w->sock);
    }
    return dm_worker_fail(w, "connect %s:%u: %s", u->host, u->port, strerror(-rc));
}

/* ---- the transport: the plain socket, or TLS on it ---- */

static ssize_t plain_read(void *ctx, void *buf, size_t len, int64_t timeout_ms)
{
    return bl_io_recv(((dm_worker *)ctx)->sock, buf, len, 0, timeout_ms);
}

static ssize_t plain_write(void *ctx, const void *buf, size_t len, int64_t timeout_ms)
{
    ssize_t n = bl_io_send_all(((dm_worker *)ctx)->sock, buf, len, 0, timeout_ms);
    return n < 0 || (size_t)n == len ? n : -EPIPE;
}

/* Connects to u, then runs TLS on the socket for https: w->io is then the connection's. */
static int http_open(dm_worker *w, const dm_url *u)
{
    if (http_connect(w, u) < 0) return -1;
    if (!u->tls) {
        w->io = (dm_transport){plain_read, plain_write, w};
        return 0;
    }
    if (!w->job.tls) {
        /* A redirect from http to https: a context of the worker's own. */
        bl_tls_opts o = {.ca_file = w->job.ca_file[0] ? w->job.ca_file : NULL};
        w->job.tls = bl_tls_client_ctx(&o);
        if (!w->job.tls) return dm_worker_fail(w, "TLS: %s", bl_tls_error(NULL));
    }
    /* The socket is the connection's from here, whatever the handshake gives. */
    int fd = w->sock;
    w->sock = -1;
    int rc = bl_tls_connect(w->job.tls, fd, u->host, w->job.timeout_ms, &w->tls);
    if (rc < 0) return dm_worker_fail(w, "TLS with %s: %s", u->host, bl_tls_error(NULL));
    w->io = (dm_transport){bl_tls_transport_read, bl_tls_transport_write, w->tls};
    return 0;
}

void dm_http_close(dm_worker *w)
{
    bl_tls_conn *c = w->tls;
    /* Cleared first: a kill during the close must not find it again. */
    w->tls = NULL;
    if (c)
        bl_tls_close(c);
    else
        dm_close_fd(&w->sock);
}

/* ---- the response head ---- */

size_t dm_http_head_end(const char *buf, size_t n)
{
    const char *a = memmem(buf, n, "\r\n\r\n", 4), *b = memmem(buf, n, "\n\n", 2);
    if (a && (!b || a < b)) return (size_t)(a - buf) + 4;
    return b ? (size_t)(b - buf) + 2 : 0;
}

static bool name_is(const char *line, size_t nlen, const char *name)
{
    return nlen == strlen(name) && strncasecmp(line, name, nlen) == 0;
}

int dm_http_parse_head(const char *buf, size_t n, dm_response *r)
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

/* ---- chunked bodies ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The end of a size line: data follows, or the trailer after the last chunk. */
static void size_line_done(dm_chunked *c)
{
    c->state = c->left ? DM_CH_DATA : DM_CH_TRAILER;
    c->digits = 0;
}

ssize_t dm_chunked_feed(dm_chunked *c, char *buf, size_t len)
{
    size_t out = 0, i = 0;
    while (i < len && c->state != DM_CH_DONE) {
        char ch = buf[i];
        if (c->state == DM_CH_DATA) {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            memmove(buf + out, buf + i, n);
            out += n;
            i += n;
            c->left -= n;
            if (!c->left) c->state = DM_CH_DATA_CR;
            continue;
        }
        switch (c->state) {
        case DM_CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->digits == 15) return -1; /* 2^60 bytes: nonsense */
                c->left = c->left << 4 | (uint64_t)v;
                c->digits++;
            } else if (!c->digits) {
                return -1;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = DM_CH_EXT;
            } else if (ch == '\r') {
                c->state = DM_CH_SIZE_LF;
            } else if (ch == '\n') {
                size_line_done(c);
            } else {
                return -1;
            }
            break;
        }
        case DM_CH_EXT:
            if (ch == '\r') c->state = DM_CH_SIZE_LF;
            if (ch == '\n') size_line_done(c);
            break;
        case DM_CH_SIZE_LF:
            if (ch != '\n') return -1;
            size_line_done(c);
            break;
        case DM_CH_DATA_CR:
            if (ch == '\r')
                c->state = DM_CH_DATA_LF;
            else if (ch == '\n')
                c->state = DM_CH_SIZE;
            else
                return -1;
            break;
        case DM_CH_DATA_LF:
            if (ch != '\n') return -1;
            c->state = DM_CH_SIZE;
            break;
        case DM_CH_TRAILER:
            c->state = ch == '\r' ? DM_CH_END_LF : ch == '\n' ? DM_CH_DONE : DM_CH_TRAILER_LINE;
            break;
        case DM_CH_TRAILER_LINE:
            if (ch == '\n') c->state = DM_CH_TRAILER;
            break;
        case DM_CH_END_LF:
            if (ch != '\n') return -1;
            c->state = DM_CH_DONE;
            break;
        }
        i++;
    }
    return (ssize_t)out;
}

/* ---- the whole exchange ---- */

static int recv_error(dm_worker *w, ssize_t rc)
{
    if (rc == -ETIMEDOUT)
        return dm_worker_fail(w, "no data from the server for %lld ms",
                              (long long)w->job.timeout_ms);
    if (w->tls) return dm_worker_fail(w, "recv: %s (%s)", strerror((int)-rc), bl_tls_error(w->tls));
    return dm_worker_fail(w, "recv: %s", strerror((int)-rc));
}

/*
 * Receives body bytes, waiting up to the timeout for them.  Bytes not yet
 * reported are reported when their time comes even if the server has gone
 * quiet: the wait is cut at that moment, and resumed after the report.
 */
static ssize_t recv_body(dm_worker *w, char *buf, size_t cap)
{
    int64_t now = dm_now_ms(), deadline = now + w->job.timeout_ms;
    for (;;) {
        int64_t wait = deadline - now;
        bool due = false;
        if (w->bytes != w->rep_bytes && w->rep_ms + w->job.progress_ms - now < wait) {
            wait = w->rep_ms + w->job.progress_ms - now;
            due = true;
        }
        ssize_t n = wait > 0 ? w->io.read(w->io.ctx, buf, cap, wait) : -ETIMEDOUT;
        if (n != -ETIMEDOUT || !due) return n;
        /* A receive cut short loses nothing: the bytes wait in the socket. */
        dm_worker_report(w, true);
        now = dm_now_ms();
    }
}

/* The body, of which buf[0..n) has arrived with the head. */
static int http_body(dm_worker *w, const dm_response *r, char *buf, size_t cap, size_t n)
{
    dm_chunked ch = {0};
    bool by_length = !r->chunked && r->length >= 0;
    for (;;) {
        if (r->chunked) {
            ssize_t d = dm_chunked_feed(&ch, buf, n);
            if (d < 0)
                return dm_worker_fail(w, "malformed chunked body after %lld bytes",
                                      (long long)w->bytes);
            if (dm_worker_write(w, buf, (size_t)d) < 0) return -1;
            if (ch.state == DM_CH_DONE) return 0;
        } else {
            if (by_length && (int64_t)n > w->size - w->bytes) n = (size_t)(w->size - w->bytes);
            if (dm_worker_write(w, buf, n) < 0) return -1;
            if (by_length && w->bytes == w->size) return 0;
        }
        ssize_t got = recv_body(w, buf, cap);
        if (got < 0) return recv_error(w, got);
        if (got == 0) {
            if (r->chunked)
                return dm_worker_fail(w,
                                      "connection closed inside the chunked body after %lld bytes",
                                      (long long)w->bytes);
            if (by_length)
                return dm_worker_fail(w, "connection closed after %lld of %lld bytes",
                                      (long long)w->bytes, (long long)w->size);
            return 0; /* the close ends the body */
        }
        n = (size_t)got;
    }
}

int dm_http_fetch(dm_worker *w, char *buf, size_t cap)
{
    dm_url u = w->job.url;
    for (int hop = 0;; hop++) {
        if (http_open(w, &u) < 0) return -1;
        bool v6 = strchr(u.host, ':') != NULL;
        char port[8] = "";
        if (u.port != (u.tls ? 443 : 80)) snprintf(port, sizeof port, ":%u", u.port);
        int len = snprintf(buf, cap,
                           "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\n"
                           "User-Agent: beamline-download-manager\r\nAccept: */*\r\n"
                           "Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
                           u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", port);
        ssize_t rc = w->io.write(w->io.ctx, buf, (size_t)len, w->job.timeout_ms);
        if (rc != len)
            return dm_worker_fail(w, "send: %s", rc < 0 ? strerror((int)-rc) : "short send");

        /* The head: at most DM_HEADER_MAX bytes; body bytes may follow it. */
        size_t have = 0, hlen;
        while (!(hlen = dm_http_head_end(buf, have))) {
            if (have == DM_HEADER_MAX) return dm_worker_fail(w, "response head larger than 16 KiB");
            ssize_t n = w->io.read(w->io.ctx, buf + have, DM_HEADER_MAX - have, w->job.timeout_ms);
            if (n < 0) return recv_error(w, n);
            if (n == 0) return dm_worker_fail(w, "connection closed before the response");
            have += (size_t)n;
        }
        dm_response r;
        if (dm_http_parse_head(buf, hlen, &r) < 0) return dm_worker_fail(w, "malformed response");

        bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 ||
                        r.status == 308;
        if (redirect && r.location[0]) {
            if (hop == DM_REDIRECTS) return dm_worker_fail(w, "too many redirects");
            if (r.location[0] == '/') {
                if (dm_url_has_bad_chars(r.location))
                    return dm_worker_fail(w, "malformed redirect");
                snprintf(u.path, sizeof u.path, "%s", r.location);
            } else if (dm_parse_source(r.location, &u) != 0 || u.kind != DM_SRC_HTTP) {
                return dm_worker_fail(w, "redirect to an unsupported location: %.100s", r.location);
            }
            dm_http_close(w);
            continue;
        }
        if (r.status != 200) return dm_worker_fail(w, "HTTP %d %s", r.status, r.reason);
        if (r.coding[0]) return dm_worker_fail(w, "unsupported transfer encoding: %s", r.coding);
        w->size = r.chunked ? -1 : r.length;
        dm_worker_report(w, true);
        memmove(buf, buf + hlen, have - hlen);
        return http_body(w, &r, buf, cap, have - hlen);
    }
}
