/*
 * tests/net/http_test.h - what the HTTP tests share: a loopback server (an
 * accept loop spawning one process per connection, which calls
 * bl_http_serve_conn) and a raw-socket client that reads responses framed
 * by Content-Length, by chunks or by the connection's end.
 */
#ifndef BL_TESTS_NET_HTTP_TEST_H
#define BL_TESTS_NET_HTTP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <beamline/http.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_test.h"

/* ---- the server ---- */

typedef struct test_srv {
    int lfd;           /* the listener */
    uint16_t port;     /* its port */
    bl_pid acceptor;   /* the accept loop */
    bl_http_router *r; /* the routes */
    bl_http_group *g;  /* every connection's group */
    bl_http_opts o;    /* the connections' options (o.group = g) */
} test_srv;

static test_srv *srv_now;
/* Connection processes spawned and not yet finished (srv_stop frees only after them). */
static _Atomic int conns_alive;

static void close_fd(void *arg)
{
    close(*(int *)arg);
}

static void conn_proc(void *arg)
{
    int fd = (int)(intptr_t)arg;
    test_srv *s = srv_now;
    bl_cleanup cl;
    bl_cleanup_push(&cl, close_fd, &fd);
    (void)bl_http_serve_conn(fd, s->r, &s->o);
    bl_cleanup_pop(&cl, true);
}

/* The connection process's last act, killed or not: it no longer reads the server. */
static void conn_gone(void *arg)
{
    (void)arg;
    atomic_fetch_sub(&conns_alive, 1);
}

static void conn_entry(void *arg)
{
    bl_cleanup cl;
    bl_cleanup_push(&cl, conn_gone, NULL);
    conn_proc(arg);
    bl_cleanup_pop(&cl, true);
}

static void accept_loop(void *arg)
{
    test_srv *s = arg;
    for (;;) {
        int fd = bl_io_accept(s->lfd, NULL, NULL, BL_INFINITY);
        if (fd == -EINVAL || fd == -EBADF) return; /* the listener was shut down */
        if (fd < 0) continue;
        atomic_fetch_add(&conns_alive, 1);
        if (bl_spawn(NULL, conn_entry, (void *)(intptr_t)fd, NULL) != 0) {
            atomic_fetch_sub(&conns_alive, 1);
            close(fd);
        }
    }
}

/* Starts a server with router r and options o (o->group is set here). */
static __attribute__((unused)) test_srv *srv_start(bl_http_router *r, const bl_http_opts *o)
{
    test_srv *s = calloc(1, sizeof *s);
    s->r = r;
    if (o) s->o = *o;
    BL_CHECK_EQ(bl_http_group_new(&s->g, 0), 0);
    s->o.group = s->g;
    s->lfd = bl_io_listen_tcp("127.0.0.1", 0, 128, &s->port);
    BL_CHECK(s->lfd >= 0);
    srv_now = s;
    BL_CHECK_EQ(bl_spawn(&s->acceptor, accept_loop, s, NULL), 0);
    return s;
}

/* Waits (bounded) until the group has n connections. */
static __attribute__((unused)) bool srv_wait_conns(test_srv *s, unsigned n)
{
    int64_t t0 = bl_test_ms();
    while (bl_http_group_connections(s->g) != n) {
        if (bl_test_ms() - t0 > 10000) return false;
        bl_yield();
    }
    return true;
}

/* Stops accepting, shuts the group down (timeout_ms), frees it all: the shutdown's result. */
static __attribute__((unused)) int srv_stop(test_srv *s, int64_t timeout_ms)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(s->acceptor, &ref), 0);
    (void)bl_io_shutdown(s->lfd, SHUT_RDWR);
    bl_msg *m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    close(s->lfd);
    int rc = bl_http_group_shutdown(s->g, timeout_ms);
    /* Connection processes that never joined (spawned as the shutdown began) still
     * read s: wait for every one to finish before freeing (bounded). */
    int64_t t0 = bl_test_ms();
    while (atomic_load(&conns_alive) != 0 && bl_test_ms() - t0 < 10000) bl_yield();
    BL_CHECK_EQ(atomic_load(&conns_alive), 0);
    BL_CHECK_EQ(bl_http_group_free(s->g), 0);
    bl_http_router_free(s->r);
    free(s);
    return rc;
}

/* ---- the client ---- */

typedef struct client {
    int fd;           /* the socket */
    size_t have;      /* bytes received and not yet taken */
    char buf[262144]; /* received bytes */
} client;

static client *cl_open(uint16_t port)
{
    client *c = calloc(1, sizeof *c);
    c->fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
    BL_CHECK(c->fd >= 0);
    return c;
}

static void cl_close(client *c)
{
    if (c->fd >= 0) bl_io_close(c->fd);
    free(c);
}

static bool cl_send(client *c, const char *s, size_t len)
{
    return bl_io_send_all(c->fd, s, len, 0, 5000) == (ssize_t)len;
}

static bool cl_say(client *c, const char *s)
{
    return cl_send(c, s, strlen(s));
}

/* Receives more: bytes, 0 at the end, -errno. */
static ssize_t cl_more(client *c, int64_t ms)
{
    if (c->have == sizeof c->buf) return -ENOBUFS;
    ssize_t n = bl_io_recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0, ms);
    if (n > 0) c->have += (size_t)n;
    return n;
}

/* A parsed response. */
typedef struct resp {
    int status;      /* the status code */
    char head[4096]; /* the head, NUL-terminated */
    char *body;      /* the body (malloc, NUL-terminated) */
    size_t len;      /* its length */
} resp;

/* The value of header name in r's head (case as written by the server), or NULL. */
static const char *resp_header(const resp *r, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *h = strstr(r->head, key);
    if (!h) return NULL;
    h += strlen(key);
    size_t n = strcspn(h, "\r");
    if (n >= cap) n = cap - 1;
    memcpy(out, h, n);
    out[n] = 0;
    return out;
}

/* Takes n bytes off the front of c's buffer. */
static void cl_take(client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->have - n);
    c->have -= n;
}

/*
 * Reads the next response into *r (free r->body after): its status, 0 if
 * the server closed first, or -errno.  head_only: the answer to a HEAD.
 */
static int cl_response(client *c, resp *r, bool head_only)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(end = memmem(c->buf, c->have, "\r\n\r\n", 4))) {
        ssize_t n = cl_more(c, 10000);
        if (n <= 0) return (int)n;
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head) return -ENOBUFS;
    memcpy(r->head, c->buf, hl);
    r->status = atoi(r->head + 9);
    cl_take(c, hl);
    char v[64];
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (head_only || r->status < 200 || r->status == 204 || r->status == 304) {
        /* no body */
    } else if (resp_header(r, "Content-Length", v, sizeof v)) {
        size_t want = strtoul(v, NULL, 10);
        if (want + 1 > cap) b = realloc(b, cap = want + 1);
        len = c->have < want ? c->have : want;
        memcpy(b, c->buf, len);
        cl_take(c, len);
        /* The rest straight into the body. */
        while (len < want) {
            ssize_t n = bl_io_recv(c->fd, b + len, want - len, 0, 10000);
            if (n <= 0) break;
            len += (size_t)n;
        }
        if (len < want) r->status = -EPIPE;
    } else if (resp_header(r, "Transfer-Encoding", v, sizeof v)) {
        for (;;) {
            char *eol;
            while (!(eol = memmem(c->buf, c->have, "\r\n", 2)))
                if (cl_more(c, 10000) <= 0) goto cut;
            size_t size = strtoul(c->buf, NULL, 16);
            size_t line = (size_t)(eol - c->buf) + 2;
            while (c->have < line + size + 2)
                if (cl_more(c, 10000) <= 0) goto cut;
            if (len + size + 1 > cap) b = realloc(b, cap = (len + size + 1) * 2);
            memcpy(b + len, c->buf + line, size);
            len += size;
            cl_take(c, line + size + 2);
            if (size == 0) break;
        }
    } else {
        /* Until the connection's end. */
        for (;;) {
            if (len + c->have + 1 > cap) b = realloc(b, cap = (len + c->have + 1) * 2);
            memcpy(b + len, c->buf, c->have);
            len += c->have;
            c->have = 0;
            if (cl_more(c, 10000) <= 0) break;
        }
    }
    b[len] = 0;
    r->body = b;
    r->len = len;
    return r->status;
cut:
    b[len] = 0;
    r->body = b;
    r->len = len;
    return r->status = -EPIPE;
}

/* True when the server closes the connection (nothing more to read) within ms. */
static bool cl_sees_eof(client *c, int64_t ms)
{
    if (c->have) return false;
    char b[256];
    ssize_t n = bl_io_recv(c->fd, b, sizeof b, 0, ms);
    return n == 0 || n == -ECONNRESET;
}

/* One request on a fresh connection: the status, the response in *r. */
static inline int one_shot(uint16_t port, const char *req, resp *r)
{
    client *c = cl_open(port);
    BL_CHECK(cl_say(c, req));
    int st = cl_response(c, r, false);
    cl_close(c);
    return st;
}

#endif /* BL_TESTS_NET_HTTP_TEST_H */
