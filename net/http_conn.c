/*
 * net/http_conn.c - the connection loop of bl_http_serve_conn (see
 * beamline/http.h): receive, parse every complete head in the buffer
 * (net/http_parser.h), route, run the handler, finish its response, skip
 * what it left of the body, and go on with the next request.
 *
 * Responses are gathered in the connection's output buffer and sent when
 * the loop is about to wait for more input (bl__http_fill flushes first),
 * so the answers to a pipelined batch leave in one send.  The connection
 * and its buffers are one allocation per connection; nothing is allocated
 * per request unless the handler asks for the whole body.  A cleanup
 * handler frees them (and leaves the group) if the process is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/http_int.h"

int64_t bl__http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bl__http_until(int64_t deadline)
{
    if (deadline < 0) return BL_INFINITY;
    int64_t left = deadline - bl__http_now_ms();
    return left > 0 ? left : 0;
}

/* A deadline ms from now (-1: none, for BL_INFINITY). */
static int64_t deadline_in(int64_t ms)
{
    return ms < 0 ? -1 : bl__http_now_ms() + ms;
}

static ssize_t tp_send(bl__http_conn *c, const void *buf, size_t len, int64_t ms)
{
    if (c->tp) return c->tp->send(c->tp->ctx, buf, len, ms);
    return bl_io_send(c->fd, buf, len, 0, ms);
}

/* The connection cannot go on: remember why, once. */
static int fail(bl__http_conn *c, int err)
{
    if (!c->failed) {
        c->failed = true;
        c->error = err;
    }
    return c->error;
}

/* Sends all of data, each send given send_ms: 0 or the failure. */
static int send_all(bl__http_conn *c, const char *data, size_t len)
{
    if (c->failed) return c->error;
    while (len) {
        ssize_t n = tp_send(c, data, len, c->o.send_ms);
        if (n <= 0) return fail(c, n < 0 ? (int)n : -EPIPE);
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int bl__http_flush(bl__http_conn *c)
{
    size_t n = c->out_len;
    c->out_len = 0;
    return n ? send_all(c, c->out, n) : (c->failed ? c->error : 0);
}

int bl__http_write(bl__http_conn *c, const void *data, size_t len)
{
    if (c->failed) return c->error;
    if (len <= sizeof c->out - c->out_len) {
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        return 0;
    }
    int rc = bl__http_flush(c);
    if (rc) return rc;
    /* Large pieces go straight out; small ones start the next batch. */
    if (len > sizeof c->out / 2) return send_all(c, data, len);
    memcpy(c->out, data, len);
    c->out_len = len;
    return 0;
}

/*
 * The kernel receives into a buffer on the process's stack, then the bytes
 * are copied to c->in: a process killed in the receive has its cleanup free
 * c->in at once, while the cancelled receive may still complete into the
 * buffer it was given; the runtime keeps a dead process's stack until its
 * operation completes, not the heap.  (A library transport receives into
 * its own stack buffer already, and copies out synchronously.)
 */
ssize_t bl__http_fill(bl__http_conn *c, int64_t ms)
{
    int rc = bl__http_flush(c);
    if (rc) return rc;
    if (c->have == c->in_cap) return -ENOBUFS;
    size_t room = c->in_cap - c->have;
    if (c->tp) {
        ssize_t n = c->tp->recv(c->tp->ctx, c->in + c->have, room, ms);
        if (n > 0) c->have += (size_t)n;
        return n;
    }
    char bounce[BL__HTTP_IN_EXTRA];
    ssize_t n = bl_io_recv(c->fd, bounce, room < sizeof bounce ? room : sizeof bounce, 0, ms);
    if (n > 0) {
        memcpy(c->in + c->have, bounce, (size_t)n);
        c->have += (size_t)n;
    }
    return n;
}

/*
 * Closing after an error, or with input left unread: send our FIN first,
 * then read and drop what the client still sends for a while (at most a
 * second and 256 KiB), so that the kernel does not answer it with a reset
 * that could destroy the response before the client read it.  Only on the
 * plain socket: a library's transport has its own closing handshake.
 */
static void linger_close(bl__http_conn *c)
{
    if (bl__http_flush(c) || c->tp) return;
    (void)bl_io_shutdown(c->fd, SHUT_WR);
    int64_t deadline = deadline_in(1000);
    char drop[4096]; /* on the stack: see bl__http_fill */
    for (size_t dropped = 0; dropped < 256 * 1024;) {
        int64_t left = bl__http_until(deadline);
        if (left == 0) break;
        ssize_t n = bl_io_recv(c->fd, drop, sizeof drop, 0, left);
        if (n <= 0) break;
        dropped += (size_t)n;
    }
}

/* The status for a parse refusal. */
static int parse_status(int r)
{
    return r == BL_HTTP_PARSE_BAD_REQUEST ? 400 : -r;
}

/*
 * One parsed request, r bytes of head at c->start: route it, run its
 * handler, finish its response and skip the rest of its body.  True when
 * the connection goes on.
 */
static bool handle(bl__http_conn *c, const bl_http_head *h, int r, uint32_t served)
{
    bl_http_req *req = &c->rq;
    /* Everything but the header buffer, which hdr_len empties (the previous request's
     * headers, an Allow of a 405 included, must not reach this response). */
    memset(req, 0, offsetof(bl_http_req, hdr));
    req->hdr_len = 0;
    req->ctype_len = 0;
    req->c = c;
    req->h = *h;
    req->head = c->in + c->start;
    req->nfields = -1;
    req->fields = c->fields;
    c->start += (size_t)r;
    req->base = c->start;
    bl__http_body_init(req);
    c->body_deadline = req->body != BL__HTTP_BODY_NONE ? deadline_in(c->o.body_ms) : -1;
    if (c->o.group && bl__http_group_draining(c->o.group)) c->draining = true;
    req->close =
        !h->keep_alive || c->draining || (c->o.max_requests && served >= c->o.max_requests);
    c->req = req;

    bl_http_handler fn;
    void *arg;
    char allow[128];
    bl__http_route(c->router, req, &fn, &arg, allow, sizeof allow);
    int rc = fn ? fn(req, arg) : bl__http_not_routed(req, allow);
    bl__http_finish(req, fn ? rc : 0);
    free(req->whole);
    req->whole = NULL;
    c->req = NULL;
    if (c->failed) return false;
    if (req->close || !bl__http_body_skip(req)) {
        linger_close(c);
        return false;
    }
    return true;
}

/* The keep-alive loop: 0 when the connection ended in order, else the transport's error. */
static int conn_loop(bl__http_conn *c)
{
    bl_http_parser p;
    bl_http_parser_init(&p, c->o.max_head, c->o.max_body);
    bl_http_parser_limits(&p, c->o.max_target, c->o.max_headers);
    uint32_t served = 0;
    /* The head being read must be complete by then (-1: no limit); from the start. */
    int64_t head_deadline = deadline_in(c->o.header_ms);
    bl_http_head h;
    for (;;) {
        /* A head near the buffer's end would leave its body no room: move it to the front
         * (before parsing, so no pointer into it is held yet). */
        if (c->start > 0 && c->start > c->in_cap - c->o.max_head - 4096) {
            memmove(c->in, c->in + c->start, c->have - c->start);
            c->have -= c->start;
            c->start = 0;
        }
        if (c->start < c->have) {
            int r = bl_http_parse(&p, c->in + c->start, c->have - c->start, &h);
            if (r > 0) {
                if (!handle(c, &h, r, ++served)) return c->failed ? c->error : 0;
                if (c->o.max_requests && served >= c->o.max_requests) return 0;
                bl_http_parser_reset(&p);
                /* The next head's time starts with its first byte. */
                head_deadline = c->start < c->have ? deadline_in(c->o.header_ms) : -1;
                continue;
            }
            if (r < 0) {
                (void)bl__http_error(c, NULL, parse_status(r), true);
                linger_close(c);
                return c->failed ? c->error : 0;
            }
        }
        /* More bytes are needed: keep what is not consumed at the buffer's start. */
        if (c->start > 0) {
            memmove(c->in, c->in + c->start, c->have - c->start);
            c->have -= c->start;
            c->start = 0;
        }
        bool idle = c->have == 0 && served > 0;
        if (idle && c->o.group && !bl__http_group_idle(c->o.group, c->slot)) {
            (void)bl__http_group_busy(c->o.group, c->slot);
            return bl__http_flush(c);
        }
        int64_t ms = idle ? c->o.idle_ms : bl__http_until(head_deadline);
        ssize_t n = ms == 0 ? (bl__http_flush(c) ? c->error : -ETIMEDOUT) : bl__http_fill(c, ms);
        /* Leaving the idle state (whatever ended the wait): the shutdown may own it now. */
        if (idle && c->o.group && !bl__http_group_busy(c->o.group, c->slot)) return 0;
        if (n > 0) {
            if (idle) head_deadline = deadline_in(c->o.header_ms);
            continue;
        }
        if (c->failed) return c->error;
        if (n == 0 || n == -ECONNRESET) return 0;
        if (n == -ETIMEDOUT) {
            /* A head begun and not finished in time gets 408; silence just ends. */
            if (!idle && c->have > 0) {
                (void)bl__http_error(c, NULL, 408, true);
                linger_close(c);
                return c->failed ? c->error : 0;
            }
            return 0;
        }
        return (int)n;
    }
}

bool bl__http_timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

bool bl__http_opts_ok(const bl_http_opts *o)
{
    return bl__http_timeout_ok(o->header_ms) && bl__http_timeout_ok(o->idle_ms) &&
           bl__http_timeout_ok(o->body_ms) && bl__http_timeout_ok(o->send_ms) &&
           o->max_head <= BL_HTTP_PARSE_HEAD_LIMIT &&
           (!o->transport || (o->transport->recv && o->transport->send));
}

/* Frees a connection: on return, or from the cleanup handler of a killed process. */
static void conn_release(void *arg)
{
    bl__http_conn *c = arg;
    free(c->rq.whole);
    if (c->o.group) bl__http_group_leave(c->o.group, c->slot);
    free(c->fields);
    free(c->in);
    free(c);
}

int bl_http_serve_conn(int fd, const bl_http_router *r, const bl_http_opts *o)
{
    static const bl_http_opts none;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    if (!o) o = &none;
    if (fd < 0 || !r || !bl__http_opts_ok(o)) return -EINVAL;
    bl__http_conn *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->fd = fd;
    c->tp = o->transport;
    c->router = r;
    c->o = *o;
    c->o.max_head = o->max_head ? o->max_head : 8192;
    c->o.max_target = o->max_target ? o->max_target : 4096;
    c->o.max_headers = o->max_headers ? o->max_headers : 100;
    c->o.max_body = o->max_body ? o->max_body : 8u << 20;
    c->o.header_ms = o->header_ms ? o->header_ms : 10000;
    c->o.idle_ms = o->idle_ms ? o->idle_ms : 60000;
    c->o.body_ms = o->body_ms ? o->body_ms : 30000;
    c->o.send_ms = o->send_ms ? o->send_ms : 30000;
    c->o.server = o->server ? o->server : "beamline";
    c->in_cap = c->o.max_head + BL__HTTP_IN_EXTRA;
    c->in = malloc(c->in_cap);
    c->fields = malloc(c->o.max_headers * sizeof *c->fields);
    int rc = c->in && c->fields ? 0 : -ENOMEM;
    if (rc == 0 && o->group) rc = bl__http_group_join(o->group, fd, &c->slot);
    if (rc) {
        c->o.group = NULL; /* not joined: nothing to leave */
        conn_release(c);
        return rc;
    }
    bl_cleanup cl;
    bl_cleanup_push(&cl, conn_release, c);
    rc = conn_loop(c);
    bl_cleanup_pop(&cl, true);
    return rc;
}
