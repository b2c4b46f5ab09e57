/*
 * http_server.c - the HTTP server (see http_server.h): connection slots,
 * connections, acceptors, the supervision tree and the graceful shutdown.
 *
 * A connection is a handler process whose handle runs the whole loop: one
 * recv into a 16 KiB buffer on its stack, every complete request in it
 * answered in order (pipelining), the answers copied from prebuilt
 * responses (http_response.h) into a second stack buffer and sent with one
 * send.  Nothing is allocated per request.  The release hook closes the
 * socket after the process is gone, whatever ended it.
 *
 * To tell idle connections from busy ones at shutdown, each connection has
 * a slot in a table owned by the server with one atomic state word: BUSY
 * while it has a request in hand, IDLE while it waits for the next one.  A
 * connection going idle stores IDLE and then reads the draining flag;
 * shutdown sets the flag and then claims each IDLE slot by CAS (IDLE ->
 * CLOSING) before sending that connection an exit signal.  Both sides use
 * sequentially consistent operations, so at least one of them sees the
 * other: a connection is either closed by shutdown while idle or notices
 * the flag itself; one that receives bytes while idle claims its slot back
 * (IDLE -> BUSY) and, if shutdown got there first, leaves quietly (its
 * request came after the shutdown began).
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../net/http_parser.h"
#include "http_response.h"
#include "http_server.h"

/* ---- connection slots ---- */

/* Takes a free slot (BUSY) for a new connection: its index, or -1 when all are taken. */
static int64_t slot_claim(http_server *srv)
{
    if (atomic_load_explicit(&srv->live, memory_order_relaxed) >= srv->nslots) return -1;
    /* Relaxed: the hint only spreads searches; the CAS below decides. */
    uint32_t h = atomic_fetch_add_explicit(&srv->hint, 1, memory_order_relaxed);
    for (uint32_t k = 0; k < srv->nslots; k++) {
        http_slot *s = &srv->slots[(h + k) % srv->nslots];
        uint32_t want = HTTP_SLOT_FREE;
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != HTTP_SLOT_FREE) continue;
        /* Acquire: pairs with the release that freed it, after the old owner's last use. */
        if (atomic_compare_exchange_strong_explicit(&s->state, &want, HTTP_SLOT_BUSY,
                                                    memory_order_acquire, memory_order_relaxed)) {
            /* Relaxed: a count for limits and tests; nothing is published by it. */
            atomic_fetch_add_explicit(&srv->live, 1, memory_order_relaxed);
            return (int64_t)(s - srv->slots);
        }
    }
    return -1;
}

/* The caller's last use of srv: shutdown frees the table once live is 0. */
static void slot_free(http_server *srv, uint32_t i)
{
    /* Release: the next owner's acquire sees everything done with it. */
    atomic_store_explicit(&srv->slots[i].state, HTTP_SLOT_FREE, memory_order_release);
    /* Release: shutdown, acquiring 0, knows no release touches the table any more. */
    atomic_fetch_sub_explicit(&srv->live, 1, memory_order_release);
}

/*
 * The connection waits for its next request: false if the server is
 * draining (the connection should close now).  Seq_cst store, then seq_cst
 * load of the flag: shutdown stores the flag and then reads the slots, so
 * one of the two sees the other (see the opening comment).
 */
static bool slot_idle(http_server *srv, http_slot *s)
{
    atomic_store_explicit(&s->state, HTTP_SLOT_IDLE, memory_order_seq_cst);
    return !atomic_load_explicit(&srv->draining, memory_order_seq_cst);
}

/* Bytes arrived while idle: back to BUSY, unless shutdown claimed the slot first. */
static bool slot_busy(http_slot *s)
{
    uint32_t want = HTTP_SLOT_IDLE;
    return atomic_compare_exchange_strong_explicit(&s->state, &want, HTTP_SLOT_BUSY,
                                                   memory_order_seq_cst, memory_order_seq_cst);
}

/* ---- connections ---- */

typedef struct conn {
    http_server *srv; /* the server (outlives every connection) */
    int fd;           /* the socket: the acceptor's in the spec, the process's own copy after */
    uint32_t slot;    /* its slot, claimed by conn_start, freed by release */
} conn;

/* A connection's message to itself: start the loop (init has returned). */
enum { T_GO = 1 };

int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms left until deadline (BL_INFINITY when there is none), never negative. */
static int64_t until(int64_t deadline)
{
    if (deadline < 0) return BL_INFINITY;
    int64_t left = deadline - http_now_ms();
    return left > 0 ? left : 0;
}

/* The shorter of two timeouts in ms, either of which may be BL_INFINITY. */
static int64_t shorter(int64_t a, int64_t b)
{
    if (a == BL_INFINITY) return b;
    if (b == BL_INFINITY) return a;
    return a < b ? a : b;
}

/*
 * Closing after an error, or with input left unread: send our FIN first,
 * then read and drop what the client still sends for a while, so that the
 * kernel does not answer it with a reset that could destroy the response
 * before the client has read it.
 */
static void linger_close(conn *c, char *buf, size_t cap)
{
    (void)bl_io_shutdown(c->fd, SHUT_WR);
    int64_t deadline = http_now_ms() + 1000;
    size_t dropped = 0;
    while (dropped < 256 * 1024) {
        int64_t left = until(deadline);
        if (left == 0) break;
        ssize_t n = bl_io_recv(c->fd, buf, cap, 0, left);
        if (n <= 0) break;
        dropped += (size_t)n;
    }
}

static int conn_init(void *arg, void **state)
{
    conn *c = arg;
    *state = c;
    /* Read by shutdown once the slot goes IDLE (published by that store). */
    c->srv->slots[c->slot].pid = bl_self();
    /* The loop runs in handle, once init has returned. */
    bl_send(bl_self(), T_GO, NULL, 0);
    return BL_CONTINUE;
}

/* The connection's life: read, answer every complete request, repeat. */
static int conn_handle(void *state, bl_msg *m)
{
    (void)m;
    conn *c = state;
    http_server *srv = c->srv;
    http_slot *slot = &srv->slots[c->slot];
    char in[HTTP_IN_CAP];
    char out[HTTP_OUT_CAP];
    size_t start = 0, have = 0; /* in[start..have): bytes not consumed yet */
    uint64_t skip = 0;          /* body bytes still to drop */
    bool idle = false;          /* waiting for a request, with nothing in hand */
    /* The head of the request being read must be complete by then (-1: no limit). */
    int64_t deadline = srv->header_ms < 0 ? -1 : http_now_ms() + srv->header_ms;
    /* The body being skipped must be complete by then (-1: no limit). */
    int64_t body_deadline = -1;
    bl_http_parser p;
    bl_http_parser_init(&p, srv->max_head, srv->max_body);
    bl_http_head req = {0}; /* the last request parsed */

    for (;;) {
        int64_t tmo = idle   ? srv->idle_ms
                      : skip ? shorter(srv->idle_ms, until(body_deadline))
                             : until(deadline);
        ssize_t n = tmo == 0 ? -ETIMEDOUT : bl_io_recv(c->fd, in + have, sizeof in - have, 0, tmo);
        if (n <= 0) {
            /* Closed, failed, or timed out.  A head that never completed gets 408. */
            if (n == -ETIMEDOUT && !idle && !skip && have > start) {
                const http_resp *r = &http_responses()->r[HTTP_R_408][HTTP_V_CLOSE];
                memcpy(out, r->text, r->len);
                (void)bl_io_send_all(c->fd, out, r->len, 0, 1000);
            }
            return BL_STOP;
        }
        if (idle) {
            if (!slot_busy(slot)) return BL_STOP; /* shutdown closed us meanwhile */
            idle = false;
        }
        have += (size_t)n;

        /* Answer every complete request in the buffer, in order. */
        size_t olen = 0;
        bool close = false, linger = false;
        /* Relaxed: a late look only delays the Connection: close by one batch. */
        bool draining = atomic_load_explicit(&srv->draining, memory_order_relaxed);
        const http_resp_cache *rc = NULL;
        while (start < have) {
            if (skip) {
                size_t k = have - start < skip ? have - start : (size_t)skip;
                start += k;
                skip -= k;
                continue;
            }
            int r = bl_http_parse(&p, in + start, have - start, &req);
            if (r == BL_HTTP_PARSE_MORE) break;
            /* This server skips bodies by their length: a chunked one it refuses. */
            if (r > 0 && req.chunked) r = BL_HTTP_PARSE_BAD_REQUEST;
            int kind, var;
            bool head = false;
            if (r < 0) {
                kind = http_error_kind(r);
                var = HTTP_V_CLOSE;
                close = linger = true;
            } else {
                start += (size_t)r;
                skip = req.content_length;
                body_deadline = skip && srv->body_ms >= 0 ? http_now_ms() + srv->body_ms : -1;
                bl_http_parser_reset(&p);
                deadline = -1; /* set when the next head starts */
                /* Expect: 100-continue with a body: answer at once and close, so the
                 * client need not send a body we would only drop. */
                bool keep = req.keep_alive && !draining && !(req.expect_continue && skip);
                close = !keep;
                kind = http_route(&req);
                var = !keep ? HTTP_V_CLOSE : req.minor == 0 ? HTTP_V_KEEP : HTTP_V_NONE;
                head = req.method == BL_HTTP_HEAD;
            }
            if (!rc) rc = http_responses();
            const http_resp *rs = &rc->r[kind][var];
            size_t len = head ? (size_t)(rs->len - rs->body) : rs->len;
            if (olen + len > sizeof out) {
                if (bl_io_send_all(c->fd, out, olen, 0, srv->idle_ms) != (ssize_t)olen)
                    return BL_STOP;
                olen = 0;
                /* The send may have moved us to another thread: use its copy. */
                rc = http_responses();
                rs = &rc->r[kind][var];
            }
            memcpy(out + olen, rs->text, len);
            olen += len;
            if (close) break;
        }
        if (olen && bl_io_send_all(c->fd, out, olen, 0, srv->idle_ms) != (ssize_t)olen)
            return BL_STOP;
        if (close) {
            if (linger || start < have || skip) linger_close(c, in, sizeof in);
            return BL_STOP;
        }

        /* Keep the unconsumed part of a request at the front of the buffer. */
        if (start == have) {
            start = have = 0;
        } else if (start > 0) {
            memmove(in, in + start, have - start);
            have -= start;
            start = 0;
        }
        if (have == 0 && skip == 0) {
            if (!slot_idle(srv, slot)) return BL_STOP; /* draining: close now */
            idle = true;
        } else if (deadline < 0 && srv->header_ms >= 0 && !skip) {
            deadline = http_now_ms() + srv->header_ms; /* the next head has begun */
        }
    }
}

/* After the process, whatever ended it: the socket and the slot go with it. */
static void conn_release(void *state)
{
    conn *c = state;
    close(c->fd);
    slot_free(c->srv, c->slot);
    free(c);
}

static const bl_handler conn_handler = {
    .init = conn_init,
    .handle = conn_handle,
    .release = conn_release,
};

/*
 * The connection's start function (a bl_start_fn, run by the connections'
 * supervisor): arg is the spec's copy of a conn.  The process gets a conn
 * of its own, with its own slot and its own duplicate of the socket, which
 * release gives back even if the process dies before init.  So every
 * resource has one owner at every instant: the acceptor keeps and closes
 * its descriptor whatever start_child returned, and never has to guess
 * whether a supervisor that died during the call had started the
 * connection.
 */
static int conn_start(void *arg, bl_pid *pid)
{
    conn *c = malloc(sizeof *c);
    if (!c) return -ENOMEM;
    *c = *(conn *)arg;
    int64_t slot = slot_claim(c->srv);
    if (slot < 0) {
        free(c);
        return -EAGAIN; /* max_conns reached: the acceptor closes its descriptor */
    }
    c->slot = (uint32_t)slot;
    c->fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (c->fd < 0) {
        int err = -errno;
        slot_free(c->srv, c->slot);
        free(c);
        return err;
    }
    bl_pid p;
    int rc = bl_spawn_handler(&p, &conn_handler, c, NULL);
    if (rc) {
        close(c->fd);
        slot_free(c->srv, c->slot);
        free(c); /* never ran */
        return rc;
    }
    /* Linked to its supervisor, as a start function must be.  (If even that
     * fails, the process still owns its socket and slot: it frees them.) */
    (void)bl_link(p);
    *pid = p;
    return 0;
}

/* ---- acceptors ---- */

/* A cleanup handler: closes *(int *)arg. */
static void close_fd(void *arg)
{
    close(*(int *)arg);
}

static void acceptor(void *arg)
{
    http_server *srv = arg;
    /* Relaxed: shutdown also shuts the listener down, which ends the wait. */
    while (!atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
        int fd = bl_io_accept(srv->lfd, NULL, NULL, BL_INFINITY);
        if (fd == -EINVAL || fd == -EBADF) return; /* the listener was shut down */
        if (fd < 0) {
            /* Out of descriptors or memory: let connections end before trying again. */
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS) bl_sleep(10);
            continue; /* a handshake that failed: go on */
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* max_conns reached: no call at all (conn_start checks again). */
        if (atomic_load_explicit(&srv->live, memory_order_relaxed) >= srv->nslots) {
            close(fd);
            continue;
        }
        conn c = {.srv = srv, .fd = fd};
        bl_child_spec spec = {.start = conn_start,
                              .arg = &c,
                              .arg_len = sizeof c,
                              .restart = BL_RESTART_TEMPORARY,
                              .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
        /* Relaxed: a pid is a plain value, and a stale one only fails the call. */
        bl_pid conns = atomic_load_explicit(&srv->conns, memory_order_relaxed);
        /* Killed while it waits in start_child, the acceptor still closes
         * its descriptor; the connection, if started, has its own copy. */
        bl_cleanup cl;
        bl_cleanup_push(&cl, close_fd, &fd);
        (void)bl_dynamic_supervisor_start_child(conns, &spec, NULL);
        bl_cleanup_pop(&cl, true);
    }
}

static int acceptor_start(void *arg, bl_pid *pid)
{
    return bl_spawn_link(pid, acceptor, arg, NULL);
}

/* Starts the connections' supervisor and tells the acceptors where it is. */
static int conns_start(void *arg, bl_pid *pid)
{
    http_server *srv = arg;
    int rc = bl_dynamic_supervisor_start_fn(NULL, pid);
    if (rc == 0) atomic_store_explicit(&srv->conns, *pid, memory_order_relaxed);
    return rc;
}

/* ---- the tree ---- */

/*
 * Frees the slot table once no connection uses it.  A process that is dying
 * already counts as gone (a monitor set then gets DOWN at once) while its
 * release may still be closing its socket and freeing its slot, so the tree
 * being stopped is not enough: wait for the last release (briefly; if it
 * never comes, the table is left allocated rather than freed under it).
 */
static void free_slots(http_server *srv)
{
    int64_t t0 = http_now_ms();
    for (int i = 0; atomic_load_explicit(&srv->live, memory_order_acquire) != 0; i++) {
        if (http_now_ms() - t0 > 5000) return;
        if (i < 1000)
            bl_yield();
        else
            bl_sleep(1);
    }
    free(srv->slots);
    srv->slots = NULL;
}

static bool timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

int http_server_start(http_server *srv, const http_opts *o)
{
    static const http_opts none;
    if (!srv) return -EINVAL;
    if (!o) o = &none;
    if (!timeout_ok(o->idle_ms) || !timeout_ok(o->header_ms) || !timeout_ok(o->body_ms) ||
        o->max_head > HTTP_IN_CAP || o->acceptors < 0)
        return -EINVAL;
    memset(srv, 0, sizeof *srv);
    srv->idle_ms = o->idle_ms ? o->idle_ms : 60000;
    srv->header_ms = o->header_ms ? o->header_ms : 10000;
    srv->body_ms = o->body_ms ? o->body_ms : 30000;
    srv->max_head = o->max_head ? (uint32_t)o->max_head : 8192;
    srv->max_body = o->max_body ? o->max_body : 1u << 20;
    srv->nslots = o->max_conns ? o->max_conns : 65536;
    srv->slots = aligned_alloc(64, (size_t)srv->nslots * sizeof *srv->slots);
    if (!srv->slots) return -ENOMEM;
    memset(srv->slots, 0, (size_t)srv->nslots * sizeof *srv->slots);
    srv->lfd = bl_io_listen_tcp(o->host ? o->host : "127.0.0.1", o->port, 4096, &srv->port);
    if (srv->lfd < 0) {
        int rc = srv->lfd;
        free(srv->slots);
        srv->slots = NULL;
        return rc;
    }
    int n = o->acceptors ? o->acceptors : (int)bl_schedulers();
    if (n > 64) n = 64;
    srv->nacceptors = n;

    /* conns first: the acceptors need its pid, and go down with it (rest_for_one). */
    bl_child_spec specs[65];
    char ids[65][24];
    specs[0] = (bl_child_spec){
        .id = "conns", .start = conns_start, .arg = srv, .type = BL_CHILD_SUPERVISOR};
    for (int i = 0; i < n; i++) {
        snprintf(ids[i + 1], sizeof ids[i + 1], "acceptor%d", i);
        /* Transient: an acceptor returns when the listener is shut down, and stays down. */
        specs[i + 1] = (bl_child_spec){.id = ids[i + 1],
                                       .start = acceptor_start,
                                       .arg = srv,
                                       .restart = BL_RESTART_TRANSIENT,
                                       .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
    }
    bl_sup_opts so = {.strategy = BL_REST_FOR_ONE};
    int rc = bl_supervisor_start_link(&srv->sup, specs, (size_t)n + 1, &so);
    if (rc) {
        close(srv->lfd);
        free_slots(srv); /* connections accepted meanwhile were shut down */
        srv->sup = BL_PID_NONE;
        return rc;
    }
    return 0;
}

/* Sorted monitor references, to find ours among the caller's messages. */
typedef struct ref_set {
    bl_ref *refs;
    size_t n;
} ref_set;

static int ref_cmp(const void *a, const void *b)
{
    bl_ref x = *(const bl_ref *)a, y = *(const bl_ref *)b;
    return x < y ? -1 : x > y;
}

static bool match_down_in(const bl_msg *m, void *arg)
{
    ref_set *s = arg;
    return m->tag == BL_TAG_DOWN && bsearch(&m->ref, s->refs, s->n, sizeof *s->refs, ref_cmp);
}

/* Monitors pids[0..n) and waits for all of them to exit until deadline: true if they did. */
static bool wait_exits(const bl_pid *pids, size_t n, int64_t deadline)
{
    if (n == 0) return true;
    ref_set s = {malloc(n * sizeof(bl_ref)), 0};
    if (!s.refs) return false;
    for (size_t i = 0; i < n; i++)
        if (bl_monitor(pids[i], &s.refs[s.n]) == 0) s.n++;
    qsort(s.refs, s.n, sizeof *s.refs, ref_cmp);
    size_t downs = 0;
    while (downs < s.n) {
        bl_msg *m;
        if (bl_recv(&m, match_down_in, &s, until(deadline), 0) != 0) break;
        bl_msg_free(m);
        downs++;
    }
    /* Those still alive: drop their monitors and any DOWN already queued. */
    for (size_t i = 0; downs < s.n && i < s.n; i++) bl_demonitor(s.refs[i], BL_DEMONITOR_FLUSH);
    bool all = downs == s.n;
    free(s.refs);
    return all;
}

int http_server_shutdown(http_server *srv, int64_t timeout_ms)
{
    if (!srv || srv->sup == BL_PID_NONE || !timeout_ok(timeout_ms)) return -EINVAL;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    int64_t deadline = timeout_ms < 0 ? -1 : http_now_ms() + timeout_ms;
    bool clean = true;

    /* 1. From now on connections answer with Connection: close and do not wait
     *    for another request.  Seq_cst: see slot_idle. */
    atomic_store_explicit(&srv->draining, true, memory_order_seq_cst);

    /* 2. Stop accepting: shutting the listener down ends every acceptor's
     *    accept (-EINVAL) and refuses new connections; wait for them to go,
     *    so that no connection appears after the walk below. */
    bl_sup_child kids[65];
    int nk = bl_supervisor_which_children(srv->sup, kids, 65);
    bl_pid acc[64];
    size_t na = 0;
    for (int i = 0; i < nk && i < 65; i++)
        if (kids[i].status == BL_CHILD_RUNNING && strncmp(kids[i].id, "acceptor", 8) == 0)
            acc[na++] = kids[i].pid;
    (void)bl_io_shutdown(srv->lfd, SHUT_RDWR);
    /* (They leave at once; if one did not, the tree's stop below kills it.) */
    bool acceptors_gone = wait_exits(acc, na, http_now_ms() + 5000);

    /* 3. Close the connections waiting between requests. */
    for (uint32_t i = 0; i < srv->nslots; i++) {
        http_slot *s = &srv->slots[i];
        uint32_t want = HTTP_SLOT_IDLE;
        if (atomic_load_explicit(&s->state, memory_order_seq_cst) != HTTP_SLOT_IDLE) continue;
        if (atomic_compare_exchange_strong_explicit(&s->state, &want, HTTP_SLOT_CLOSING,
                                                    memory_order_seq_cst, memory_order_seq_cst))
            bl_exit_pid(s->pid, &BL_REASON(BL_SHUTDOWN));
    }

    /* 4. Wait for the others to answer what they have in hand and close. */
    bl_pid conns = atomic_load_explicit(&srv->conns, memory_order_relaxed);
    bl_sup_counts k = {0};
    if (!acceptors_gone) {
        clean = false;
    } else if (bl_dynamic_supervisor_count_children(conns, &k) == 0 && k.active > 0) {
        bl_sup_child *list = malloc(k.active * sizeof *list);
        bl_pid *pids = malloc(k.active * sizeof *pids);
        int got = list && pids ? bl_dynamic_supervisor_which_children(conns, list, k.active) : -1;
        size_t np = 0;
        for (int i = 0; i < got && (size_t)i < k.active; i++) pids[np++] = list[i].pid;
        if (got < 0 || !wait_exits(pids, np, deadline)) clean = false;
        free(list);
        free(pids);
    }

    /* 5. Stop the tree (killing whatever is left), then the listener.  The
     *    supervisor exits with reason normal, which its parent ignores. */
    int rc = bl_supervisor_stop(srv->sup, NULL, 10000);
    close(srv->lfd);
    srv->lfd = -1;
    srv->sup = BL_PID_NONE;
    free_slots(srv);
    if (rc) return rc;
    return clean ? 0 : -ETIMEDOUT;
}
