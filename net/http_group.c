/*
 * net/http_group.c - groups of connections that shut down together.
 *
 * Each connection has a slot with one atomic state word: BUSY while it has
 * a request in hand, IDLE while it waits for the next one.  A connection
 * going idle stores IDLE and then reads the draining flag; the shutdown
 * sets the flag and then claims each IDLE slot by CAS (IDLE -> CLOSING),
 * shuts its socket down (the connection's receive ends) and marks it
 * CLOSED.  Both sides use sequentially consistent operations, so at least
 * one of them sees the other: a connection is either closed by the
 * shutdown while idle or notices the flag itself.  A connection whose wait
 * ends claims its slot back (IDLE -> BUSY); if the shutdown got there
 * first it waits until the shutdown is done with its socket (CLOSED: a few
 * instructions) before leaving, so that the caller cannot close the
 * descriptor (and the number be reused) under the shutdown's shutdown(2).
 *
 * The shutdown waits for the connections without polling.  live counts
 * the connections plus one held by the group itself until its shutdown,
 * which drops it after setting the flag: whoever takes live to 0 then is
 * the last one out.  If that is a connection, it sends the shutdown's
 * process one message tagged with the shutdown's reference (the group's
 * one reference ensured it could not happen earlier), and that message is
 * its last touch of the group, so the group may be freed once it arrived.
 * A connection whose process is killed leaves from its cleanup handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/http_int.h"

/* A slot's states. */
enum { S_FREE = 0, S_BUSY, S_IDLE, S_CLOSING, S_CLOSED };

/* The tag of "a connection left" messages (the reference tells whose shutdown). */
#define T_LEFT 0x48545450u

/* One connection's place (a cache line each: connections on all cores write theirs). */
typedef struct slot {
    _Atomic uint32_t state; /* S_* */
    int fd;                 /* its socket, for the shutdown of an idle connection */
    bl_pid pid;             /* its process, for the kill after the timeout */
} __attribute__((aligned(64))) slot;

struct bl_http_group {
    _Atomic bool draining; /* the shutdown began */
    bl_pid waiter;         /* the shutdown's process (written before draining is set) */
    bl_ref ref;            /* the shutdown's reference (likewise) */
    _Atomic uint32_t live; /* slots in use, plus one until the shutdown */
    _Atomic uint32_t hint; /* where the next slot search starts */
    uint32_t n;            /* slots */
    slot *slots;           /* the table */
};

int bl_http_group_new(bl_http_group **out, uint32_t max_conns)
{
    if (!out) return -EINVAL;
    bl_http_group *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    g->n = max_conns ? max_conns : 65536;
    g->slots = aligned_alloc(64, (size_t)g->n * sizeof *g->slots);
    if (!g->slots) {
        free(g);
        return -ENOMEM;
    }
    memset(g->slots, 0, (size_t)g->n * sizeof *g->slots);
    atomic_init(&g->live, 1); /* the group's own reference, until its shutdown */
    *out = g;
    return 0;
}

int bl_http_group_free(bl_http_group *g)
{
    if (!g) return 0;
    /* Acquire: pairs with the last leave's release; nothing touches the table after it.
     * 1: never shut down, and no connection; 0: shut down, and all gone. */
    uint32_t live = atomic_load_explicit(&g->live, memory_order_acquire);
    bool down = atomic_load_explicit(&g->draining, memory_order_relaxed);
    if (live != (down ? 0u : 1u)) return -EBUSY;
    free(g->slots);
    free(g);
    return 0;
}

bool bl__http_group_draining(const bl_http_group *g)
{
    /* Relaxed: a late look only delays one Connection: close by one request. */
    return atomic_load_explicit(&((bl_http_group *)g)->draining, memory_order_relaxed);
}

int bl__http_group_join(bl_http_group *g, int fd, uint32_t *out)
{
    if (atomic_load_explicit(&g->draining, memory_order_seq_cst)) return -ESHUTDOWN;
    if (atomic_load_explicit(&g->live, memory_order_relaxed) > g->n) return -EBUSY;
    /* Relaxed: the hint only spreads searches; the CAS below decides. */
    uint32_t h = atomic_fetch_add_explicit(&g->hint, 1, memory_order_relaxed);
    for (uint32_t k = 0; k < g->n; k++) {
        slot *s = &g->slots[(h + k) % g->n];
        uint32_t want = S_FREE;
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != S_FREE) continue;
        /* Acquire: pairs with the release that freed it, after its last owner's use. */
        if (!atomic_compare_exchange_strong_explicit(&s->state, &want, S_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        s->fd = fd;
        s->pid = bl_self();
        /* Seq_cst: ordered with the shutdown's flag and its drop of the group's reference. */
        atomic_fetch_add_explicit(&g->live, 1, memory_order_seq_cst);
        /* Joined as the shutdown began: leave at once (it may be waiting for live 0). */
        if (atomic_load_explicit(&g->draining, memory_order_seq_cst)) {
            bl__http_group_leave(g, (uint32_t)(s - g->slots));
            return -ESHUTDOWN;
        }
        *out = (uint32_t)(s - g->slots);
        return 0;
    }
    return -EBUSY;
}

bool bl__http_group_idle(bl_http_group *g, uint32_t i)
{
    /* Seq_cst store, then seq_cst load of the flag: see the opening comment. */
    atomic_store_explicit(&g->slots[i].state, S_IDLE, memory_order_seq_cst);
    return !atomic_load_explicit(&g->draining, memory_order_seq_cst);
}

bool bl__http_group_busy(bl_http_group *g, uint32_t i)
{
    slot *s = &g->slots[i];
    uint32_t want = S_IDLE;
    if (atomic_compare_exchange_strong_explicit(&s->state, &want, S_BUSY, memory_order_seq_cst,
                                                memory_order_seq_cst))
        return true;
    /* The shutdown claimed it: wait until it is done with the socket (a few instructions). */
    while (atomic_load_explicit(&s->state, memory_order_acquire) == S_CLOSING) sched_yield();
    return false;
}

void bl__http_group_leave(bl_http_group *g, uint32_t i)
{
    slot *s = &g->slots[i];
    /* Killed while idle, with the shutdown claiming the slot: let it finish first. */
    while (atomic_load_explicit(&s->state, memory_order_acquire) == S_CLOSING) sched_yield();
    /* Release: the next owner's acquire sees everything done with it. */
    atomic_store_explicit(&s->state, S_FREE, memory_order_release);
    /* Seq_cst (a release too, for bl_http_group_free).  Reaching 0 means the shutdown
     * dropped the group's reference first, after writing waiter and ref: this RMW reads
     * from the chain of RMWs after that one, so it sees them. */
    if (atomic_fetch_sub_explicit(&g->live, 1, memory_order_seq_cst) == 1)
        (void)bl_send_ref(g->waiter, T_LEFT, g->ref, NULL, 0);
}

unsigned bl_http_group_connections(const bl_http_group *g)
{
    if (!g) return 0;
    bl_http_group *m = (bl_http_group *)g;
    /* Relaxed: a count for monitoring and tests, less the group's own reference. */
    uint32_t live = atomic_load_explicit(&m->live, memory_order_relaxed);
    bool down = atomic_load_explicit(&m->draining, memory_order_relaxed);
    return down || live == 0 ? live : live - 1;
}

unsigned bl_http_group_idle(const bl_http_group *g)
{
    unsigned n = 0;
    for (uint32_t i = 0; g && i < g->n; i++) /* Relaxed: a snapshot for monitoring and tests. */
        n += atomic_load_explicit(&g->slots[i].state, memory_order_relaxed) == S_IDLE;
    return n;
}

static bool match_left(const bl_msg *m, void *arg)
{
    return m->tag == T_LEFT && m->ref == *(bl_ref *)arg;
}

/* Waits for the last connection's message until the deadline (-1: none): true if it came. */
static bool wait_last(bl_http_group *g, int64_t deadline)
{
    bl_msg *m;
    if (bl_recv(&m, match_left, &g->ref, bl__http_until(deadline), 0) != 0) return false;
    bl_msg_free(m);
    return true;
}

int bl_http_group_shutdown(bl_http_group *g, int64_t timeout_ms)
{
    if (!g || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    if (atomic_load_explicit(&g->draining, memory_order_relaxed)) return -EALREADY;
    int64_t deadline = timeout_ms < 0 ? -1 : bl__http_now_ms() + timeout_ms;
    g->waiter = bl_self();
    g->ref = bl_make_ref();
    /* Seq_cst: see bl__http_group_idle and bl__http_group_leave. */
    atomic_store_explicit(&g->draining, true, memory_order_seq_cst);

    /* Close the connections waiting between requests: their receive ends. */
    for (uint32_t i = 0; i < g->n; i++) {
        slot *s = &g->slots[i];
        uint32_t want = S_IDLE;
        if (atomic_load_explicit(&s->state, memory_order_seq_cst) != S_IDLE) continue;
        if (!atomic_compare_exchange_strong_explicit(&s->state, &want, S_CLOSING,
                                                     memory_order_seq_cst, memory_order_seq_cst))
            continue;
        (void)shutdown(s->fd, SHUT_RDWR); /* never blocks */
        /* Release: the connection, seeing CLOSED, may close the descriptor. */
        atomic_store_explicit(&s->state, S_CLOSED, memory_order_release);
    }

    /* The others answer what they have in hand (with Connection: close) and leave; the
     * group's reference goes now, so the last of them (if any) says so. */
    if (atomic_fetch_sub_explicit(&g->live, 1, memory_order_seq_cst) == 1) return 0;
    int rc = 0;
    if (!wait_last(g, deadline)) {
        rc = -ETIMEDOUT;
        bl_reason kill = BL_REASON(BL_KILL);
        for (uint32_t i = 0; i < g->n; i++) {
            slot *s = &g->slots[i];
            uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
            if (st == S_BUSY || st == S_IDLE) (void)bl_exit_pid(s->pid, &kill);
        }
        /* Killed processes leave from their cleanup handlers, at once. */
        (void)wait_last(g, bl__http_now_ms() + 10000);
    }
    return rc;
}
