/*
 * net/http_server.c - an HTTP server: a listener whose connection handler
 * runs bl_http_serve_conn, over TLS when asked, and its graceful stop.
 *
 * The listener owns each connection's socket and closes it after the
 * handler's process ends, however it ends; so the TLS handshake borrows
 * the descriptor (bl_tls_accept_borrowed) and bl_tls_close frees the TLS
 * state without closing it.  The stop is three steps, each bounded by the
 * one deadline: the listener stops accepting (suspend), the group closes
 * idle connections and waits for busy ones (killing those left at the
 * deadline), and the listener stops, which waits for handshakes still in
 * progress (they find the group shut and end) and kills what is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "beamline/http.h"
#include "net/http_int.h"

struct bl_http_server {
    const bl_http_router *router;        /* read by every connection */
    bl_http_opts http;                   /* each connection's options, with group set */
    bl_http_group *group;                /* the connections serving HTTP */
    bl_listener *listener;               /* accepts, and owns the sockets */
    bl_tls_ctx *tls;                     /* a reference, or NULL for plain TCP */
    int64_t handshake_ms;                /* the TLS handshake's timeout */
    _Atomic uint64_t handshake_failures; /* handshakes that failed or timed out */
};

/* The TLS transport's receive, with the signature bl_http_transport wants. */
static ssize_t tls_recv(void *conn, void *buf, size_t len, int64_t timeout_ms)
{
    return bl_tls_read(conn, buf, len, timeout_ms);
}

/* The listener's handler: one connection, in its own process; fd stays the listener's. */
static void serve(int fd, const bl_listener_conn *lc, void *arg)
{
    (void)lc;
    bl_http_server *s = arg;
    if (!s->tls) {
        (void)bl_http_serve_conn(fd, s->router, &s->http);
        return;
    }
    bl_tls_conn *c = NULL;
    if (bl_tls_accept_borrowed(s->tls, fd, s->handshake_ms, &c) < 0) {
        atomic_fetch_add_explicit(&s->handshake_failures, 1, memory_order_relaxed);
        return;
    }
    bl_http_transport t = {
        .recv = tls_recv,
        .send = bl_tls_transport_write,
        .ctx = c,
        .fd_is_raw = (bl_tls_ktls(c) & BL_TLS_KTLS_TX) != 0,
    };
    bl_http_opts o = s->http;
    o.transport = &t;
    (void)bl_http_serve_conn(fd, s->router, &o);
    /* close_notify and the TLS state freed; a kill before this frees it by its cleanup. */
    (void)bl_tls_close(c);
}

static void server_free(bl_http_server *s)
{
    (void)bl_http_group_free(s->group);
    bl_tls_ctx_free(s->tls);
    free(s);
}

int bl_http_start(bl_http_server **out, const bl_http_server_opts *o)
{
    if (out) *out = NULL;
    if (!out || !o || !o->router || o->listener.handler || o->listener.arg || o->http.transport ||
        o->http.group || !o->cert_file != !o->key_file || (o->cert_file && o->tls) ||
        !bl__http_timeout_ok(o->handshake_ms) || !bl__http_opts_ok(&o->http))
        return -EINVAL;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    bl_http_server *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->router = o->router;
    s->http = o->http;
    s->handshake_ms = o->handshake_ms ? o->handshake_ms : 10000;
    /* The listener's idle timeout is the connections' unless the HTTP options set one. */
    if (!s->http.idle_ms && o->listener.idle_ms) s->http.idle_ms = o->listener.idle_ms;
    uint32_t max = o->listener.max_connections;
    int rc = bl_http_group_new(&s->group, max && max <= 65536 ? max : (max ? 0 : 1024));
    if (rc) {
        free(s);
        return rc;
    }
    s->http.group = s->group;
    if (o->tls) {
        s->tls = bl_tls_ctx_up_ref(o->tls);
    } else if (o->cert_file) {
        bl_tls_opts to = {.cert_file = o->cert_file, .key_file = o->key_file, .alpn = "http/1.1"};
        s->tls = bl_tls_server_ctx(&to);
        if (!s->tls) {
            rc = errno ? -errno : -EINVAL;
            server_free(s);
            return rc;
        }
    }
    bl_listener_opts lo = o->listener;
    lo.handler = serve;
    lo.arg = s;
    rc = bl_listener_start(&s->listener, &lo);
    if (rc) {
        server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bl_http_stop(bl_http_server *s, int64_t timeout_ms)
{
    if (!s || !bl__http_timeout_ok(timeout_ms)) return -EINVAL;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    int64_t deadline = timeout_ms == BL_INFINITY ? BL_INFINITY : now_ms() + timeout_ms;
    /* No new connection from here: queued ones are reset, new ones refused. */
    int rc = bl_listener_suspend(s->listener);
    if (rc == -EBUSY) return rc;
    rc = bl_http_group_shutdown(s->group, timeout_ms);
    int64_t left = deadline == BL_INFINITY ? BL_INFINITY : deadline - now_ms();
    /* Handshakes in progress find the group shut and end by themselves, or are killed. */
    int killed;
    /* -EBUSY: a suspend or resume of another process is running; it ends in a moment. */
    while ((killed = bl_listener_stop(s->listener, left > 0 || left == BL_INFINITY ? left : 0)) ==
           -EBUSY)
        bl_yield();
    server_free(s);
    return rc == -ETIMEDOUT || killed > 0 ? -ETIMEDOUT : 0;
}

int bl_http_server_info_get(const bl_http_server *s, bl_http_server_info *out)
{
    if (!s || !out) return -EINVAL;
    int rc = bl_listener_info_get(s->listener, &out->listener);
    if (rc) return rc;
    out->connections = bl_http_group_connections(s->group);
    out->idle = bl_http_group_idle(s->group);
    out->handshake_failures =
        atomic_load_explicit(&((bl_http_server *)s)->handshake_failures, memory_order_relaxed);
    return 0;
}

bl_listener *bl_http_server_listener(const bl_http_server *s)
{
    return s ? s->listener : NULL;
}
