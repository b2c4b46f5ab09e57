/*
 * http_server.c - the example's routes on beamline/http.h's server.
 */
#define _GNU_SOURCE
#include "http_server.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static const char plain[] = "Hello, World!";
static const char json[] = "{\"message\":\"Hello, World!\"}";

/* Both routes: arg is the body, NUL-terminated; a body sent with the request is dropped. */
static int hello(bl_http_req *req, void *arg)
{
    const char *body = arg;
    bl_http_set_header(req, "Content-Type", body == plain ? "text/plain" : "application/json");
    return bl_http_reply(req, 200, body, strlen(body));
}

static bool timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

int http_server_start(http_server *srv, const http_opts *opts)
{
    http_opts o = opts ? *opts : (http_opts){0};
    if (!srv || o.acceptors < 0 || !timeout_ok(o.idle_ms) || !timeout_ok(o.header_ms) ||
        !timeout_ok(o.body_ms))
        return -EINVAL;
    *srv = (http_server){0};
    int rc = bl_http_router_new(&srv->r);
    if (rc) return rc;
    if ((rc = bl_http_route(srv->r, "GET", "/plaintext", hello, (void *)plain)) ||
        (rc = bl_http_route(srv->r, "GET", "/json", hello, (void *)json))) {
        bl_http_router_free(srv->r);
        return rc;
    }
    bl_http_server_opts so = {
        .router = srv->r,
        .listener = {.host = o.host ? o.host : "127.0.0.1",
                     .port = o.port,
                     .acceptors = (unsigned)o.acceptors,
                     .max_connections = o.max_conns ? o.max_conns : 65536,
                     .backlog = 4096},
        .http = {.max_head = o.max_head,
                 .max_body = o.max_body ? o.max_body : 1 << 20,
                 .header_ms = o.header_ms,
                 .idle_ms = o.idle_ms,
                 .body_ms = o.body_ms},
        .cert_file = o.cert_file,
        .key_file = o.key_file,
    };
    rc = bl_http_start(&srv->s, &so);
    bl_http_server_info i;
    if (!rc && (rc = bl_http_server_info_get(srv->s, &i)) == 0) {
        srv->port = i.listener.port;
        srv->nacceptors = i.listener.acceptors;
    }
    if (rc) {
        if (srv->s) (void)bl_http_stop(srv->s, 0);
        bl_http_router_free(srv->r);
        *srv = (http_server){0};
    }
    return rc;
}

int http_server_shutdown(http_server *srv, int64_t timeout_ms)
{
    if (!srv || !srv->s) return -EINVAL;
    int rc = bl_http_stop(srv->s, timeout_ms);
    if (rc == -EINVAL || rc == -EPERM || rc == -EBUSY) return rc;
    bl_http_router_free(srv->r);
    *srv = (http_server){0};
    return rc;
}

unsigned http_server_connections(const http_server *srv)
{
    bl_http_server_info i;
    return srv->s && bl_http_server_info_get(srv->s, &i) == 0 ? i.connections : 0;
}

unsigned http_server_idle(const http_server *srv)
{
    bl_http_server_info i;
    return srv->s && bl_http_server_info_get(srv->s, &i) == 0 ? i.idle : 0;
}

bl_pid http_server_sup(const http_server *srv)
{
    bl_http_server_info i;
    return srv->s && bl_http_server_info_get(srv->s, &i) == 0 ? i.listener.sup : BL_PID_NONE;
}

bl_pid http_server_child(const http_server *srv, int i)
{
    bl_sup_child kids[2];
    bl_pid sup = http_server_sup(srv);
    if (i < 0 || i > 1 || sup == BL_PID_NONE || bl_supervisor_which_children(sup, kids, 2) != 2 ||
        kids[i].status != BL_CHILD_RUNNING)
        return BL_PID_NONE;
    return kids[i].pid;
}

int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
