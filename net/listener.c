/*
 * net/listener.c - the TCP listener (beamline/listener.h): its socket,
 * connection slots, acceptors, handler processes, supervision tree and
 * control calls.
 *
 *   listener (Supervisor, rest_for_one)
 *   |-- conns      (DynamicSupervisor: one temporary child per connection)
 *   |-- acceptors  (Supervisor, one_for_one: acceptor 0 .. N-1, transient)
 *
 * The accept path.  An acceptor first takes a connection slot, then waits
 * in one bl_io_accept on the shared listening socket, then asks conns to
 * start the handler.  Taking the slot before accepting is what makes
 * max_connections strict and lets connections past it wait in the kernel's
 * backlog: with every slot taken no acceptor is in accept.  A multishot
 * accept (bl_io_accept_stream) cannot pause that way: the kernel keeps
 * accepting into the owner's mailbox until the stream is cancelled, and
 * cancelling it loses what it accepted meanwhile.  A pool of single
 * accepts is as fast: on the 2-core machine, 4 clients connecting and
 * closing 10,000 times, one multishot accept took a median 34k
 * connections/s, two single-accept processes 32k, four 35k (one alone
 * only 7k, hence at least 4 acceptors by default).  The handler processes
 * are started on the scheduler whose ring completed the accept.
 *
 * Ownership of an accepted socket.  Each acceptor has a cell in the
 * listener, and the socket travels through it: the acceptor stores
 * seq << 32 | (fd + 1) there before asking conns, and the start function
 * (in conns) and the acceptor, after the call or in its cleanup handler if
 * it is killed meanwhile, each try to take it by CAS from exactly that
 * value.  Exactly one wins: the start function, whose handler process then
 * owns the socket (its release hook closes it after the process, however
 * it ended), or the acceptor, which closes it.  The sequence number makes
 * a request that conns gets to late (its acceptor long dead, the cell
 * reused by the acceptor's successor) fail its CAS.  The connection's
 * slot goes with the socket.
 *
 * Waking acceptors.  An acceptor that finds no slot, or the listener
 * suspended, sets its bit in `waiting` and looks again before it waits for
 * T_WAKE; whoever frees a slot or resumes changes the count or the state
 * first and then reads `waiting`.  All four accesses are sequentially
 * consistent, so either the acceptor sees the change or the waker sees the
 * bit (a spare T_WAKE only makes an acceptor look again).  Stop waits for
 * the last handler the same way, through an alias of the stopping process.
 *
 * Lifetime.  The listener is reference-counted: bl_listener_stop holds one
 * reference, and so does every process that reads the listener: each
 * handler, the acceptors supervisor (an acceptor's start reads its cell)
 * and each acceptor, which holds two.  Whoever starts such a process takes
 * its reference first, while holding one itself, and the process's release
 * gives it back however it ended, also when it never ran: a process of a
 * tree killed from outside may first run after the stop returned (its
 * scheduler busy meanwhile).  The stop waits instead for the two processes
 * of the tree that hold none: the top supervisor, and conns (it reads the
 * listener only to start a handler an acceptor asks for; the stop waits
 * for the last conns, the one acceptors know of).  An acceptor's second
 * reference is its own, taken as it starts and given back by its cleanup
 * handler, which runs after the release and still reads the listener.  So
 * a handler that outlives its supervisor (it trapped exits) or a kill at
 * any moment never touches freed memory.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "beamline.h"
#include "beamline/listener.h"
#include "otp/supervisor/supervisor_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

/* Messages of the listener's own processes (only they get them, so user tags are safe). */
enum {
    T_WAKE = 1,    /* to an acceptor: a slot was freed or the listener resumed: look again */
    T_DRAINED = 2, /* to a stopping process, through its alias: no handler is left */
};

/* What an acceptor holds, for its cleanup handler. */
enum {
    HOLD_NOTHING,
    HOLD_SLOT,   /* a slot, while it waits in accept */
    HOLD_SOCKET, /* a slot and a socket, in its cell, while conns starts the handler */
};

#define LOW32 0xffffffffull

/* One acceptor's place in the listener (a cache line each: written on every accept). */
typedef struct acc_cell {
    _Atomic uint64_t handoff; /* seq << 32 | (fd + 1) while a socket is handed over; low half 0:
                                 empty */
    _Atomic bl_pid pid;       /* the acceptor running in this place (set as it starts) */
    bl_listener *l;           /* the listener: acceptor_start's argument */
    unsigned idx;             /* this place's number, also its bit in waiting */
} __attribute__((aligned(64))) acc_cell;

struct bl_listener {
    /* Set by bl_listener_start, read-only afterwards. */
    bl_listener_handler_fn handler; /* the program's connection function */
    void *arg;                      /* its argument */
    int lfd;                        /* the listening socket (closed by stop) */
    int family;                     /* AF_INET or AF_INET6 */
    uint16_t port;                  /* the bound port */
    bool rebind;                    /* port 0 at start: resume binds port again */
    int backlog;                    /* listen(2) backlog */
    struct sockaddr_storage addr;   /* the bound address, with its port */
    socklen_t addr_len;             /* its length */
    unsigned nacceptors;            /* acceptor processes */
    int64_t idle_ms;                /* told to handlers */
    size_t stack_size;              /* handlers' stacks (0: the runtime's default) */
    bl_pid sup;                     /* the top supervisor */
    bl_child_spec acc_specs[BL_LISTENER_MAX_ACCEPTORS]; /* its children (read at restarts) */
    char acc_ids[BL_LISTENER_MAX_ACCEPTORS][24];        /* their ids */

    /* Written by control calls, read by everyone. */
    _Atomic int state;          /* a bl_listener_state */
    _Atomic bool ctl;           /* a control call (suspend, resume, stop) is running */
    _Atomic uint32_t max_conns; /* slots at most */
    _Atomic bl_pid conns;       /* the connections' supervisor (a new one after a restart) */
    _Atomic bl_pid drain_to;    /* the process stop waits in for the last handler, or none */
    _Atomic bl_ref drain_ref;   /* its alias for T_DRAINED */

    /* Written on every connection, by acceptors and handlers. */
    _Atomic uint32_t claimed __attribute__((aligned(64))); /* slots taken */
    _Atomic uint32_t active;                               /* handler processes alive */
    _Atomic uint64_t waiting;    /* bit i: the acceptor in acc[i] waits for T_WAKE */
    _Atomic uint64_t accepted;   /* connections accepted (the last connection's id) */
    _Atomic uint64_t refused;    /* accepted but closed without a handler */
    _Atomic uint64_t limit_hits; /* waits for a slot */
    _Atomic int refs;            /* references: stop's, each handler's, each acceptor's */

    acc_cell acc[BL_LISTENER_MAX_ACCEPTORS]; /* the acceptors' places */
};

/* ---- time ---- */

/* ms left until deadline (-1: none, BL_INFINITY), never negative. */
static int64_t until(int64_t deadline)
{
    if (deadline < 0) return BL_INFINITY;
    int64_t left = deadline - bl__otp_now_ms();
    return left > 0 ? left : 0;
}

/* ---- references ---- */

static void ref_get(bl_listener *l)
{
    /* Relaxed: the caller holds a reference already (or runs in the tree stop waits for). */
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

/* The caller's last access to l. */
static void ref_put(bl_listener *l)
{
    /* Acq_rel: every holder's accesses happen before the free by the last one. */
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1) free(l);
}

/* ---- slots and waiting acceptors ---- */

/* Takes a slot if fewer than max_conns are taken. */
static bool slot_try(bl_listener *l)
{
    /* Seq_cst: the acceptor's second look after setting its waiting bit (see the top). */
    uint32_t max = atomic_load(&l->max_conns);
    uint32_t n = atomic_load(&l->claimed);
    while (n < max)
        if (atomic_compare_exchange_weak(&l->claimed, &n, n + 1)) return true;
    return false;
}

/* Sends T_WAKE to every acceptor waiting (from any thread, a release hook's included). */
static void wake_acceptors(bl_listener *l)
{
    /* Seq_cst: read after the change that may let them go on (see the top). */
    uint64_t w = atomic_load(&l->waiting);
    while (w) {
        unsigned i = (unsigned)__builtin_ctzll(w);
        w &= w - 1;
        /* Acquire: pairs with the acceptor's release store of its pid, made before its bit. */
        bl_pid pid = atomic_load_explicit(&l->acc[i].pid, memory_order_acquire);
        if (pid != BL_PID_NONE) (void)bl_send(pid, T_WAKE, NULL, 0);
    }
}

static void slot_put(bl_listener *l)
{
    /* Seq_cst: before the read of waiting in wake_acceptors. */
    atomic_fetch_sub(&l->claimed, 1);
    /* Suspended or stopping, nobody may take it: resume wakes them all anyway. */
    if (atomic_load(&l->state) == BL_LISTENER_RUNNING) wake_acceptors(l);
}

/* A handler is gone (or never started): stop may be waiting for the last one. */
static void active_put(bl_listener *l)
{
    /* Seq_cst, as the read of drain_to after it: stop writes drain_to, then reads active. */
    if (atomic_fetch_sub(&l->active, 1) != 1) return;
    bl_pid to = atomic_load(&l->drain_to);
    /* Relaxed: written before drain_to, whose seq_cst load above ordered it. */
    bl_ref ref = atomic_load_explicit(&l->drain_ref, memory_order_relaxed);
    if (to != BL_PID_NONE) (void)bl_send_alias(to, T_DRAINED, ref, NULL, 0);
}

/* ---- the hand-over cell ---- */

/* Takes the socket out of cell if it still holds word: the socket, or -1 if another took it. */
static int cell_take(acc_cell *cell, uint64_t word)
{
    uint64_t want = word;
    /* Acq_rel: the winner's accesses before (the start function's count of active) are
     * seen by the loser after its failed CAS (acquire), and so by whoever it signals. */
    if (!atomic_compare_exchange_strong_explicit(&cell->handoff, &want, word & ~LOW32,
                                                 memory_order_acq_rel, memory_order_acquire))
        return -1;
    return (int)(word & LOW32) - 1;
}

/* ---- handler processes ---- */

/* What conns's start function gets from an acceptor (copied by the supervisor). */
typedef struct handoff {
    bl_listener *l;               /* the listener */
    unsigned idx;                 /* the acceptor's cell */
    uint64_t word;                /* the cell's value while the socket is in it */
    int sched;                    /* the acceptor's scheduler, where the handler starts */
    uint64_t id;                  /* the connection's number */
    struct sockaddr_storage peer; /* the peer's address */
    socklen_t peer_len;           /* its length */
} handoff;

/* A handler process's state. */
typedef struct conn {
    bl_listener_conn info; /* what the handler function sees */
    int fd;                /* the socket, the process's own */
} conn;

/* The process's whole life: the program's function.  (Its return ends the connection.) */
static int conn_init(void *arg, void **state)
{
    conn *c = arg;
    *state = c;
    bl_listener *l = c->info.listener;
    l->handler(c->fd, &c->info, l->arg);
    return BL_STOP;
}

/* The handle of the listener's handler processes, never called: their init always stops. */
static int init_only_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return BL_STOP;
}

/* After the process, however it ended (also before init ran): socket, slot, count, memory. */
static void conn_release(void *state)
{
    conn *c = state;
    bl_listener *l = c->info.listener;
    close(c->fd);
    slot_put(l);
    active_put(l);
    free(c);
    ref_put(l);
}

static const bl_handler conn_handler = {
    .init = conn_init,
    .handle = init_only_handle,
    .release = conn_release,
};

/* The handler's start function (a bl_start_fn, run by conns): arg is a handoff. */
static int conn_start(void *arg, bl_pid *pid)
{
    const handoff *h = arg;
    bl_listener *l = h->l;
    conn *c = malloc(sizeof *c);
    if (!c) return -ENOMEM; /* the acceptor still owns the socket and closes it */
    /* Counted before the take, so that a stop that saw the acceptor's failed take
     * (through its death) sees the handler too.  Relaxed: the take's CAS publishes it. */
    atomic_fetch_add_explicit(&l->active, 1, memory_order_relaxed);
    int fd = cell_take(&l->acc[h->idx], h->word);
    if (fd < 0) {
        /* Too late: the acceptor took its socket back (it died meanwhile). */
        free(c);
        active_put(l);
        return -ECANCELED;
    }
    ref_get(l);
    c->fd = fd;
    c->info = (bl_listener_conn){.listener = l,
                                 .peer = h->peer,
                                 .peer_len = h->peer_len,
                                 .idle_ms = l->idle_ms,
                                 .id = h->id};
    bl_spawn_opts so = {.stack_size = l->stack_size, .scheduler = h->sched >= 0 ? h->sched + 1 : 0};
    /* Linked from before it runs: if conns dies now, the handler goes with it. */
    int rc = bl__spawn_handler_link(pid, &conn_handler, c, &so);
    if (rc) {
        atomic_fetch_add_explicit(&l->refused, 1, memory_order_relaxed);
        conn_release(c); /* never ran: everything goes back here */
    }
    return rc;
}

/* ---- acceptors ---- */

/* An acceptor's record, on its stack (its cleanup handler reads it). */
typedef struct acceptor {
    acc_cell *cell; /* its place */
    bl_listener *l; /* the listener */
    int hold;       /* HOLD_NOTHING, HOLD_SLOT or HOLD_SOCKET */
    uint64_t word;  /* HOLD_SOCKET: the cell's value */
    bool waiting;   /* its bit is set in l->waiting */
} acceptor;

/* Gives back what a is holding (it died, or is done with it). */
static void acceptor_drop(acceptor *a)
{
    bl_listener *l = a->l;
    if (a->hold == HOLD_SOCKET) {
        int fd = cell_take(a->cell, a->word);
        if (fd >= 0) {
            /* No handler took it: the connection is refused. */
            close(fd);
            atomic_fetch_add_explicit(&l->refused, 1, memory_order_relaxed);
            slot_put(l);
        }
    } else if (a->hold == HOLD_SLOT) {
        slot_put(l);
    }
    a->hold = HOLD_NOTHING;
}

/* The acceptor's death or end (a cleanup handler): everything it holds, then its reference. */
static void acceptor_cleanup(void *arg)
{
    acceptor *a = arg;
    bl_listener *l = a->l;
    /* Relaxed: a late T_WAKE to a dead pid is dropped. */
    if (a->waiting)
        atomic_fetch_and_explicit(&l->waiting, ~(1ull << a->cell->idx), memory_order_relaxed);
    a->waiting = false;
    acceptor_drop(a);
    ref_put(l);
}

/* Takes a slot once the listener runs and one is free: true; false when the listener stops. */
static bool wait_turn(acceptor *a)
{
    bl_listener *l = a->l;
    bool got = false, counted = false;
    for (;;) {
        /* Seq_cst (every access here): see "Waking acceptors" at the top. */
        int st = atomic_load(&l->state);
        if (st == BL_LISTENER_STOPPING) break;
        if (st == BL_LISTENER_RUNNING && slot_try(l)) {
            got = true;
            break;
        }
        if (!a->waiting) {
            /* Announce, then look once more before waiting. */
            atomic_fetch_or(&l->waiting, 1ull << a->cell->idx);
            a->waiting = true;
            continue;
        }
        if (st == BL_LISTENER_RUNNING && !counted) {
            /* Relaxed: a statistic. */
            atomic_fetch_add_explicit(&l->limit_hits, 1, memory_order_relaxed);
            counted = true;
        }
        bl_msg_free(bl_receive(BL_INFINITY)); /* T_WAKE: look again */
    }
    if (a->waiting) {
        atomic_fetch_and(&l->waiting, ~(1ull << a->cell->idx));
        a->waiting = false;
        /* T_WAKEs sent meanwhile would only cost looks later. */
        bl_msg *m;
        while ((m = bl_receive(0))) bl_msg_free(m);
    }
    return got;
}

/* An accept failed with err (the slot is back): wait before the next try if it could repeat. */
static void accept_failed(bl_listener *l, int err)
{
    switch (err) {
    case -EINVAL:
    case -EBADF:
        /* Not listening: suspended or stopping (wait_turn waits), or resumed in between
         * (accept again).  Running still: a stop about to say so, or a broken socket;
         * either way, do not spin. */
        if (atomic_load(&l->state) == BL_LISTENER_RUNNING) bl_sleep(1);
        break;
    case -EMFILE:
    case -ENFILE:
    case -ENOMEM:
    case -ENOBUFS:
    case -EBUSY:
        /* Out of descriptors or memory: let connections end first. */
        bl_sleep(10);
        break;
    default:
        break; /* a connection aborted before it was accepted: the next one */
    }
}

/* Asks conns to start the handler of the socket in a's cell; takes it back if none did. */
static void hand_over(acceptor *a, handoff *h)
{
    bl_listener *l = a->l;
    h->l = l;
    h->idx = a->cell->idx;
    h->word = a->word;
    h->sched = bl_current_scheduler();
    bl_child_spec spec = {.start = conn_start,
                          .arg = h,
                          .arg_len = sizeof *h,
                          .restart = BL_RESTART_TEMPORARY,
                          .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
    /* Acquire: pairs with conns_start's release (a plain pid; a stale one fails the call). */
    bl_pid conns = atomic_load_explicit(&l->conns, memory_order_acquire);
    (void)bl_dynamic_supervisor_start_child(conns, &spec, NULL);
    acceptor_drop(a);
}

/* The acceptor's body, in its handler process's init (which then stops it): arg is its cell. */
static int acceptor_init(void *arg, void **state)
{
    acc_cell *cell = arg;
    *state = cell;
    bl_listener *l = cell->l;
    acceptor a = {.cell = cell, .l = l, .hold = HOLD_NOTHING};
    ref_get(l); /* its own, for the cleanup (the one its start took goes first) */
    bl_cleanup cl;
    bl_cleanup_push(&cl, acceptor_cleanup, &a);
    /* Seq_cst: before wait_turn's first read of the state, which stop sets before it
     * reads this (step 5): either stop waits for this acceptor, or the acceptor sees
     * the listener stopping and never touches the socket.  Also read by
     * wake_acceptors after it sees this acceptor's bit. */
    atomic_store(&cell->pid, bl_self());
    /* The cell is empty (a predecessor's cleanup or a start function emptied it): go on
     * from its sequence, so that requests still queued for the predecessor fail. */
    uint32_t seq = (uint32_t)(atomic_load_explicit(&cell->handoff, memory_order_relaxed) >> 32);
    while (wait_turn(&a)) {
        a.hold = HOLD_SLOT;
        handoff h;
        h.peer_len = sizeof h.peer;
        int fd = bl_io_accept(l->lfd, (struct sockaddr *)&h.peer, &h.peer_len, BL_INFINITY);
        if (fd < 0) {
            acceptor_drop(&a);
            accept_failed(l, fd);
            continue;
        }
        /* Relaxed: a count; the id only needs to be unique. */
        h.id = atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed) + 1;
        seq++;
        a.word = (uint64_t)seq << 32 | (uint32_t)(fd + 1);
        /* Relaxed: the request to conns, a message, publishes it. */
        atomic_store_explicit(&cell->handoff, a.word, memory_order_relaxed);
        a.hold = HOLD_SOCKET;
        hand_over(&a, &h);
    }
    /* Stopping: nothing is held; the cleanup gives its reference back. */
    bl_cleanup_pop(&cl, true);
    return BL_STOP;
}

/* After the acceptor, however it ended (also before it ran): the reference its start took. */
static void acceptor_release(void *state)
{
    acc_cell *cell = state;
    ref_put(cell->l);
}

static const bl_handler acceptor_handler = {
    .init = acceptor_init,
    .handle = init_only_handle,
    .release = acceptor_release,
};

/* An acceptor's start function (run by the acceptors supervisor, which holds a reference):
 * arg is its cell.  Acceptors spread over the schedulers. */
static int acceptor_start(void *arg, bl_pid *pid)
{
    acc_cell *cell = arg;
    bl_listener *l = cell->l;
    unsigned n = bl_schedulers();
    bl_spawn_opts so = {.scheduler = n ? (int)(cell->idx % n) + 1 : 0};
    ref_get(l);
    /* Linked from before it runs. */
    int rc = bl__spawn_handler_link(pid, &acceptor_handler, cell, &so);
    if (rc) ref_put(l); /* never ran, and no release will run */
    return rc;
}

/* The acceptors supervisor's release hook: its reference. */
static void acceptors_release(void *arg)
{
    ref_put(arg);
}

/* Starts the acceptors supervisor (run by the top supervisor, which stop waits for). */
static int acceptors_start(void *arg, bl_pid *pid)
{
    bl_listener *l = arg;
    ref_get(l);
    /* The hook runs once: after the supervisor is gone, or before this returns if the
     * start failed. */
    return bl__supervisor_start_ext(pid, l->acc_specs, l->nacceptors, NULL, 0, acceptors_release,
                                    l);
}

/* Starts conns and tells the acceptors where it is. */
static int conns_start(void *arg, bl_pid *pid)
{
    bl_listener *l = arg;
    int rc = bl_dynamic_supervisor_start_fn(NULL, pid);
    /* Release: pairs with the acquire in hand_over. */
    if (rc == 0) atomic_store_explicit(&l->conns, *pid, memory_order_release);
    return rc;
}

/* ---- the listening socket ---- */

/* Parses host (NULL: any IPv4 address) and port into l->addr: 0 or -EINVAL. */
static int parse_addr(bl_listener *l, const char *host, uint16_t port)
{
    memset(&l->addr, 0, sizeof l->addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&l->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&l->addr;
    if (!host || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if (!host) v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        l->addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        l->addr_len = sizeof *v6;
    } else {
        return -EINVAL;
    }
    l->family = l->addr.ss_family;
    return 0;
}

static int set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

/* The bound port of l->lfd, or -errno. */
static int bound_port(bl_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(l->lfd, (struct sockaddr *)&ss, &len) != 0) return -errno;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * Makes l->lfd: the socket with its options (the per-connection ones are
 * copied by Linux to every accepted socket), bound and listening, and
 * l->port.  0 or -errno (nothing left open).
 */
static int open_socket(bl_listener *l, const bl_listener_opts *o)
{
    int fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    l->lfd = fd;
    int rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o->reuseport) rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* Explicitly either way: the system's default (net.ipv6.bindv6only) may be either. */
    if (rc == 0 && l->family == AF_INET6) rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only);
    if (rc == 0 && !o->nagle) rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (rc == 0 && o->sndbuf) rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf);
    if (rc == 0 && o->rcvbuf) rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf);
    if (rc == 0 && bind(fd, (struct sockaddr *)&l->addr, l->addr_len) != 0) rc = -errno;
    if (rc == 0 && listen(fd, l->backlog) != 0) rc = -errno;
    if (rc == 0) rc = bound_port(l);
    if (rc < 0) {
        close(fd);
        l->lfd = -1;
        return rc;
    }
    l->port = (uint16_t)rc;
    if (l->family == AF_INET6)
        ((struct sockaddr_in6 *)&l->addr)->sin6_port = htons(l->port);
    else
        ((struct sockaddr_in *)&l->addr)->sin_port = htons(l->port);
    return 0;
}

/* ---- start ---- */

static bool timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

static int check_opts(const bl_listener_opts *o)
{
    if (!o->handler || o->backlog < 0 || o->sndbuf < 0 || o->rcvbuf < 0 ||
        o->acceptors > BL_LISTENER_MAX_ACCEPTORS || !timeout_ok(o->idle_ms))
        return -EINVAL;
    return 0;
}

/* Fills the acceptors supervisor's specs (kept in l: a restart reads them again). */
static void acceptor_specs(bl_listener *l)
{
    for (unsigned i = 0; i < l->nacceptors; i++) {
        l->acc[i].l = l;
        l->acc[i].idx = i;
        snprintf(l->acc_ids[i], sizeof l->acc_ids[i], "acceptor%u", i);
        /* Transient: an acceptor returns when the listener stops, and stays down. */
        l->acc_specs[i] = (bl_child_spec){.id = l->acc_ids[i],
                                          .start = acceptor_start,
                                          .arg = &l->acc[i],
                                          .restart = BL_RESTART_TRANSIENT,
                                          .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
    }
}

int bl_listener_start(bl_listener **out, const bl_listener_opts *o)
{
    if (!out || !o) return -EINVAL;
    int rc = check_opts(o);
    if (rc) return rc;
    if (bl_self() == BL_PID_NONE) return -EPERM;
    bl_listener *l = aligned_alloc(64, sizeof *l);
    if (!l) return -ENOMEM;
    memset(l, 0, sizeof *l);
    l->lfd = -1;
    rc = parse_addr(l, o->host, o->port);
    if (rc == 0 && o->v6only && l->family != AF_INET6) rc = -EINVAL;
    if (rc) {
        free(l);
        return rc;
    }
    l->handler = o->handler;
    l->arg = o->arg;
    l->rebind = o->port == 0;
    l->backlog = o->backlog ? o->backlog : 1024;
    unsigned n = o->acceptors ? o->acceptors : bl_schedulers();
    if (!o->acceptors && n < 4) n = 4;
    l->nacceptors = n > BL_LISTENER_MAX_ACCEPTORS ? BL_LISTENER_MAX_ACCEPTORS : n;
    l->idle_ms = o->idle_ms ? o->idle_ms : 60000;
    l->stack_size = o->stack_size;
    atomic_init(&l->max_conns, o->max_connections ? o->max_connections : 1024);
    atomic_init(&l->state, BL_LISTENER_RUNNING);
    atomic_init(&l->refs, 1);
    rc = open_socket(l, o);
    if (rc) {
        free(l);
        return rc;
    }
    acceptor_specs(l);

    /* conns first: the acceptors need it, and go down with it (rest_for_one). */
    bl_child_spec top[2] = {
        {.id = "conns", .start = conns_start, .arg = l, .type = BL_CHILD_SUPERVISOR},
        {.id = "acceptors", .start = acceptors_start, .arg = l, .type = BL_CHILD_SUPERVISOR},
    };
    bl_sup_error err = {0};
    bl_sup_opts so = {.strategy = BL_REST_FOR_ONE, .error = &err};
    rc = bl_supervisor_start_link(&l->sup, top, 2, &so);
    if (rc) {
        /* Whatever started was stopped again; a child's own error says more. */
        close(l->lfd);
        ref_put(l);
        return rc == BL_SUP_CHILD_FAILED && err.error < 0 ? err.error : rc;
    }
    /* The listener lives until bl_listener_stop, not as long as its starter. */
    (void)bl_unlink(l->sup);
    *out = l;
    return 0;
}

/* ---- control ---- */

static bool ctl_take(bl_listener *l)
{
    bool no = false;
    /* Acquire: the previous control call's writes (state, socket) are seen. */
    return atomic_compare_exchange_strong_explicit(&l->ctl, &no, true, memory_order_acquire,
                                                   memory_order_relaxed);
}

static void ctl_give(bl_listener *l)
{
    /* Release: pairs with ctl_take. */
    atomic_store_explicit(&l->ctl, false, memory_order_release);
}

int bl_listener_suspend(bl_listener *l)
{
    if (!l) return -EINVAL;
    if (!ctl_take(l)) return -EBUSY;
    int rc = 0;
    if (atomic_load(&l->state) == BL_LISTENER_RUNNING) {
        /* Seq_cst: before the shutdown wakes the acceptors, which then read it. */
        atomic_store(&l->state, BL_LISTENER_SUSPENDED);
        /* Refuses new connections, resets queued ones, and ends every accept (-EINVAL). */
        if (shutdown(l->lfd, SHUT_RDWR) != 0) {
            rc = -errno;
            atomic_store(&l->state, BL_LISTENER_RUNNING);
        }
    }
    ctl_give(l);
    return rc;
}

int bl_listener_resume(bl_listener *l)
{
    if (!l) return -EINVAL;
    if (!ctl_take(l)) return -EBUSY;
    int rc = 0;
    if (atomic_load(&l->state) == BL_LISTENER_SUSPENDED) {
        /* A port the kernel chose is given up by shutdown (getsockname still shows it);
         * one given explicitly stays bound.  (EINVAL: bound still, on another kernel.) */
        if (l->rebind && bind(l->lfd, (struct sockaddr *)&l->addr, l->addr_len) != 0 &&
            errno != EINVAL)
            rc = -errno;
        if (rc == 0 && listen(l->lfd, l->backlog) != 0) rc = -errno;
        if (rc == 0) {
            /* Seq_cst: before the read of waiting (see "Waking acceptors"). */
            atomic_store(&l->state, BL_LISTENER_RUNNING);
            wake_acceptors(l);
        }
    }
    ctl_give(l);
    return rc;
}

int bl_listener_set_max_connections(bl_listener *l, uint32_t n)
{
    if (!l || n == 0) return -EINVAL;
    /* Seq_cst: before the read of waiting, as a freed slot. */
    atomic_store(&l->max_conns, n);
    if (atomic_load(&l->state) == BL_LISTENER_RUNNING) wake_acceptors(l);
    return 0;
}

bl_listener_state bl_listener_state_get(const bl_listener *l)
{
    /* Relaxed: a snapshot; the transitions' own orderings are elsewhere. */
    return l ? (bl_listener_state)atomic_load_explicit(&l->state, memory_order_relaxed)
             : BL_LISTENER_STOPPING;
}

int bl_listener_info_get(const bl_listener *l, bl_listener_info *out)
{
    if (!l || !out) return -EINVAL;
    /* Relaxed throughout: counts of a moment, nothing else is read through them. */
    *out = (bl_listener_info){
        .state = (bl_listener_state)atomic_load_explicit(&l->state, memory_order_relaxed),
        .family = l->family,
        .port = l->port,
        .acceptors = l->nacceptors,
        .max_connections = atomic_load_explicit(&l->max_conns, memory_order_relaxed),
        .active = atomic_load_explicit(&l->active, memory_order_relaxed),
        .accepted = atomic_load_explicit(&l->accepted, memory_order_relaxed),
        .refused = atomic_load_explicit(&l->refused, memory_order_relaxed),
        .limit_hits = atomic_load_explicit(&l->limit_hits, memory_order_relaxed),
        .sup = l->sup,
    };
    return 0;
}

/* Waits until no handler is left or timeout_ms passed: true if none is left. */
static bool drain(bl_listener *l, int64_t timeout_ms)
{
    if (atomic_load(&l->active) == 0) return true;
    bl_ref ref;
    if (timeout_ms == 0 || bl_alias(BL_ALIAS_EXPLICIT, &ref) != 0) return false;
    int64_t deadline = timeout_ms == BL_INFINITY ? -1 : bl__otp_now_ms() + timeout_ms;
    atomic_store_explicit(&l->drain_ref, ref, memory_order_relaxed);
    /* Seq_cst: before the reads of active below (see active_put). */
    atomic_store(&l->drain_to, bl_self());
    bool none;
    while (!(none = atomic_load(&l->active) == 0)) {
        bl_msg *m;
        if (bl_recv(&m, bl_match_ref, &ref, until(deadline), 0) != 0) break;
        bl_msg_free(m);
    }
    atomic_store(&l->drain_to, BL_PID_NONE);
    (void)bl_unalias(ref); /* a late T_DRAINED is dropped, never seen */
    return none;
}

/* Waits for pid's end (a supervisor that is shutting its children down). */
static void wait_exit(bl_pid pid)
{
    bl_ref ref;
    if (pid == BL_PID_NONE || bl_monitor(pid, &ref) != 0) return;
    bl_msg *m;
    if (bl_recv(&m, bl_match_ref, &ref, BL_INFINITY, 0) == 0) bl_msg_free(m);
}

int bl_listener_stop(bl_listener *l, int64_t timeout_ms)
{
    if (!l || !timeout_ok(timeout_ms)) return -EINVAL;
    bl_pid self = bl_self();
    if (self == BL_PID_NONE) return -EPERM;
    if (!ctl_take(l)) return -EBUSY;

    /* 1. Stop accepting: refused first, so that whoever sees the state sees that too.
     *    Acceptors whose accept ends before the state changes wait a moment
     *    (accept_failed).  Seq_cst: before the wake-ups' read of waiting. */
    (void)shutdown(l->lfd, SHUT_RDWR);
    atomic_store(&l->state, BL_LISTENER_STOPPING);
    wake_acceptors(l);

    /* 2. No handler starts after this: every acceptor is gone, its socket (if any)
     *    closed or taken by a handler that is counted. */
    (void)bl_supervisor_terminate_child(l->sup, "acceptors");

    /* 3. Let the handlers finish. */
    uint32_t killed = drain(l, timeout_ms) ? 0 : atomic_load(&l->active);

    /* 4. The tree: conns kills the handlers left, all at once.  If the tree died by
     *    itself, its conns may still be shutting down: wait for it, since it starts
     *    handlers from requests it still has.  The top supervisor first: once it is
     *    gone, it restarts nothing and takes no reference any more, and l->conns is
     *    the last conns. */
    if (bl_supervisor_stop(l->sup, NULL, BL_INFINITY) != 0) {
        wait_exit(l->sup);
        /* Acquire: pairs with conns_start's release. */
        wait_exit(atomic_load_explicit(&l->conns, memory_order_acquire));
    }
    /* 5. The socket's number may be reused once closed: no acceptor may be left to
     *    accept on it (a tree killed from outside takes them down later, by links).
     *    One that has not run yet, or runs from here on, finds the listener stopping
     *    before it looks at the socket. */
    for (unsigned i = 0; i < l->nacceptors; i++) /* Seq_cst: see acceptor_init. */
        wait_exit(atomic_load(&l->acc[i].pid));
    close(l->lfd);
    ref_put(l); /* handlers that outlived conns (they trapped exits) keep it until they end */
    return (int)killed;
}
