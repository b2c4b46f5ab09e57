/*
 * bench/workloads.c - Beamline implementations of the benchmark workloads.
 *
 * Each workload runs a driver process and waits for it on a semaphore; the
 * driver measures with the monotonic clock around the part that is timed.
 */
#define _GNU_SOURCE
#include "workloads.h"

#include <beamline.h>
#include <math.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

enum { T_GO = 1, T_BALL, T_DONE, T_STOP, T_NOISE, T_REQ, T_REPLY, T_TOKEN };

/* Runs fn as a process and waits for its result. */
static double drive(void (*fn)(driver *d))
{
    return drive_with(fn, 0, -1);
}

static void recv_tag(uint32_t tag)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0) == 0) bl_msg_free(m);
}

/* ---- ctx_switch ---- */

#define SWITCHES 1000000

static void yielder(void *arg)
{
    for (int i = 0; i < SWITCHES; i++) bl_yield();
    bl_send(*(bl_pid *)arg, T_DONE, NULL, 0);
}

static void ctx_switch_drv(driver *d)
{
    bl_pid self = bl_self();
    /* On a one-scheduler runtime with the driver waiting, each yield
     * switches from one yielder to the other. */
    bl_spawn_opts o = {.scheduler = 1};
    uint64_t t0 = now_ns();
    bl_spawn(NULL, yielder, &self, &o);
    bl_spawn(NULL, yielder, &self, &o);
    recv_tag(T_DONE);
    recv_tag(T_DONE);
    d->result = (double)(now_ns() - t0) / (2.0 * SWITCHES);
}

double wl_ctx_switch(void)
{
    return drive(ctx_switch_drv);
}

/* ---- spawn_exit ---- */

#define SPAWNS 100000

static long spawn_n; /* SPAWNS, or BENCH_SIZE */

static void send_done(void *arg)
{
    bl_send(*(bl_pid *)arg, T_DONE, NULL, 0);
}

static void spawn_exit_drv(driver *d)
{
    bl_pid self = bl_self();
    uint64_t t0 = now_ns();
    for (long i = 0; i < spawn_n; i++) bl_spawn(NULL, send_done, &self, NULL);
    for (long i = 0; i < spawn_n; i++) bl_msg_free(bl_receive(BL_INFINITY));
    d->result = (double)(now_ns() - t0) / (double)spawn_n;
}

double wl_spawn_exit(void)
{
    spawn_n = bench_size(SPAWNS);
    return spawn_n < 1 ? NAN : drive(spawn_exit_drv);
}

/* ---- pingpong ---- */

#define ROUNDS 100000

static void ponger(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        bl_pid from = m->from;
        uint32_t tag = m->tag;
        bl_msg_free(m);
        if (tag == T_STOP) return;
        bl_send(from, T_BALL, &tag, sizeof tag);
    }
}

typedef struct ping_arg {
    bl_pid peer, owner;
    double ns;
} ping_arg;

static void pinger(void *arg)
{
    ping_arg *a = arg;
    uint32_t x = 0;
    uint64_t t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        bl_send(a->peer, T_BALL, &x, sizeof x);
        bl_msg_free(bl_receive(BL_INFINITY));
    }
    a->ns = (double)(now_ns() - t0) / ROUNDS;
    bl_send(a->peer, T_STOP, NULL, 0);
    bl_send(a->owner, T_DONE, NULL, 0);
}

static int pp_cross;

static void pingpong_drv(driver *d)
{
    int n = (int)bl_schedulers();
    /* Bound: a wake-up would otherwise bring the pair together (as the BEAM's
     * {scheduler, N} and Go's LockOSThread keep theirs apart). */
    bl_spawn_opts a = {.scheduler = 1, .bound = true},
                  b = {.scheduler = pp_cross && n > 1 ? 2 : 1, .bound = true};
    /* pingpong_any_sched: the runtime places both. */
    if (pp_cross == 2) a = b = (bl_spawn_opts){0};
    ping_arg pa = {.owner = bl_self()};
    bl_spawn(&pa.peer, ponger, NULL, &b);
    bl_spawn(NULL, pinger, &pa, &a);
    recv_tag(T_DONE);
    d->result = pa.ns;
}

double wl_pingpong(int cross)
{
    pp_cross = cross;
    return drive(pingpong_drv);
}

/* ---- ring_1000x1000 ---- */

/* The defaults; BENCH_SIZE sets the ring's size, and the laps keep the hops
 * at RING x LAPS (at least one lap). */
#define RING 1000
#define LAPS 1000

static long ring_n, ring_laps;

typedef struct ring_setup {
    bl_pid next;  /* where tokens go */
    bl_pid owner; /* told when the last node has passed its last token */
    int last;     /* this is the last node */
    long laps;    /* tokens to pass */
} ring_setup;

/* Each node passes the token laps times, then exits. */
static void ring_node(void *arg)
{
    ring_setup rs;
    bl_msg *m = bl_receive(BL_INFINITY);
    memcpy(&rs, m->data, sizeof rs);
    bl_msg_free(m);
    for (long lap = 0; lap < rs.laps; lap++) {
        uint32_t tok = T_TOKEN;
        bl_msg *t = NULL;
        bl_recv(&t, bl_match_tag, &tok, BL_INFINITY, 0);
        bl_msg_free(t);
        bl_send(rs.next, T_TOKEN, NULL, 0);
    }
    if (rs.last) bl_send(rs.owner, T_DONE, NULL, 0);
}

static void ring_drv(driver *d)
{
    bl_pid *nodes = malloc(sizeof(bl_pid) * (size_t)ring_n);
    if (!nodes) {
        d->result = NAN;
        return;
    }
    for (long i = 0; i < ring_n; i++) bl_spawn(&nodes[i], ring_node, NULL, NULL);
    for (long i = 0; i < ring_n; i++) {
        ring_setup rs = {i + 1 < ring_n ? nodes[i + 1] : nodes[0], bl_self(), i == ring_n - 1,
                         ring_laps};
        bl_send(nodes[i], T_GO, &rs, sizeof rs);
    }
    uint64_t t0 = now_ns();
    bl_send(nodes[0], T_TOKEN, NULL, 0);
    recv_tag(T_DONE);
    d->result = (double)(now_ns() - t0) / ((double)ring_n * (double)ring_laps);
    free(nodes);
}

double wl_ring(void)
{
    ring_n = bench_size(RING);
    if (ring_n < 1) return NAN;
    ring_laps = (long)RING * LAPS / ring_n;
    if (ring_laps < 1) ring_laps = 1;
    return drive(ring_drv);
}

/* ---- million_procs and idle_process_bytes (handler processes) ---- */

static int idle_handle(void *state, bl_msg *m)
{
    if (m->tag == T_REQ) { /* sync: answered once everything before it was handled */
        bl_send(m->from, T_REPLY, NULL, 0);
        return 0;
    }
    if (m->tag == T_STOP) {
        bl_send(*(bl_pid *)state, T_DONE, NULL, 0);
        return BL_STOP;
    }
    return 0;
}
static const bl_handler idle_handler = {.init = NULL, .handle = idle_handle, .terminate = NULL};

#define MILLION 1000000

static void million_drv(driver *d)
{
    bl_pid self = bl_self();
    bl_pid *pids = malloc(sizeof(bl_pid) * MILLION);
    uint64_t t0 = now_ns();
    for (int i = 0; i < MILLION; i++) bl_spawn_handler(&pids[i], &idle_handler, &self, NULL);
    for (int i = 0; i < MILLION; i++) bl_send(pids[i], T_STOP, NULL, 0);
    for (int i = 0; i < MILLION; i++) bl_msg_free(bl_receive(BL_INFINITY));
    d->result = (double)(now_ns() - t0) / 1e6;
    free(pids);
}

double wl_million_procs(void)
{
    return drive(million_drv);
}

static int idle_n;

/* Spawns idle_n handler processes, lets each handle one message and park
 * (then it holds no stack), and reports the RSS growth per process. */
static void idle_bytes_drv(driver *d)
{
    bl_pid self = bl_self();
    bl_pid *pids = malloc(sizeof(bl_pid) * (size_t)idle_n);
    long before = rss_bytes();
    for (int i = 0; i < idle_n; i++) bl_spawn_handler(&pids[i], &idle_handler, &self, NULL);
    /* One synchronous request each, one at a time (nothing piles up): after
     * its answer a process has run, handled it and parked without a stack. */
    for (int i = 0; i < idle_n; i++) {
        bl_send(pids[i], T_REQ, NULL, 0);
        recv_tag(T_REPLY);
    }
    long after = rss_bytes();
    d->result = (double)(after - before - (long)(sizeof(bl_pid) * (size_t)idle_n)) / idle_n;
    for (int i = 0; i < idle_n; i++) bl_send(pids[i], T_STOP, NULL, 0);
    for (int i = 0; i < idle_n; i++) bl_msg_free(bl_receive(BL_INFINITY));
    free(pids);
}

double wl_idle_process_bytes(void)
{
    idle_n = 100000;
    return drive(idle_bytes_drv);
}

/* ---- processes_snapshot_100k ---- */

#define SNAP_PROCS 100000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* 100,000 idle handler processes (each has run and parked without a stack),
 * then the median time of 5 listings of every process, read from the table
 * (bl_processes_snapshot, what the control socket and bl_print_processes use). */
static void snapshot_drv(driver *d)
{
    bl_pid self = bl_self();
    bl_pid *pids = malloc(sizeof(bl_pid) * SNAP_PROCS);
    bl_proc_snap *snap = malloc(sizeof(bl_proc_snap) * (SNAP_PROCS + 64));
    d->result = NAN;
    if (!pids || !snap) goto out;
    for (int i = 0; i < SNAP_PROCS; i++) bl_spawn_handler(&pids[i], &idle_handler, &self, NULL);
    for (int i = 0; i < SNAP_PROCS; i++) bl_send(pids[i], T_REQ, NULL, 0);
    for (int i = 0; i < SNAP_PROCS; i++) recv_tag(T_REPLY);
    double t[5];
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = now_ns();
        int64_t n = bl_processes_snapshot(snap, SNAP_PROCS + 64);
        t[r] = (double)(now_ns() - t0) / 1e6;
        if (n < SNAP_PROCS) goto stop; /* the listing missed some: a failed run */
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    d->result = t[2];
stop:
    for (int i = 0; i < SNAP_PROCS; i++) bl_send(pids[i], T_STOP, NULL, 0);
    for (int i = 0; i < SNAP_PROCS; i++) bl_msg_free(bl_receive(BL_INFINITY));
out:
    free(snap);
    free(pids);
}

double wl_processes_snapshot_100k(void)
{
    return drive(snapshot_drv);
}

double wl_ten_million_idle_gib(void)
{
    idle_n = 10000000;
    double per = drive(idle_bytes_drv);
    return per * idle_n / (1024.0 * 1024 * 1024);
}

/* ---- send_throughput and mailbox_20_senders ---- */

typedef struct flood_arg {
    bl_pid to;
    int count;
} flood_arg;

static void flooder(void *arg)
{
    flood_arg *a = arg;
    for (int i = 0; i < a->count; i++) bl_send(a->to, T_BALL, &i, sizeof i);
}

typedef struct sink_arg {
    bl_pid owner;
    long expect;
} sink_arg;

static void sink(void *arg)
{
    sink_arg *a = arg;
    for (long i = 0; i < a->expect; i++) bl_msg_free(bl_receive(BL_INFINITY));
    bl_send(a->owner, T_DONE, NULL, 0);
}

static int flood_senders, flood_count;

static void flood_drv(driver *d)
{
    int n = (int)bl_schedulers();
    sink_arg s = {bl_self(), (long)flood_senders * flood_count};
    bl_spawn_opts so = {.scheduler = 1}, fo = {.scheduler = n > 1 ? 2 : 1};
    bl_pid sinkpid;
    bl_spawn(&sinkpid, sink, &s, &so);
    flood_arg f = {sinkpid, flood_count};
    uint64_t t0 = now_ns();
    for (int i = 0; i < flood_senders; i++)
        bl_spawn(NULL, flooder, &f, flood_senders == 1 ? &fo : NULL);
    recv_tag(T_DONE);
    d->result = (double)(now_ns() - t0) / (double)s.expect;
}

double wl_send_throughput(void)
{
    flood_senders = 1;
    flood_count = 1000000;
    return drive(flood_drv);
}

double wl_mailbox_20_senders(void)
{
    flood_senders = 20;
    flood_count = 100000;
    return drive(flood_drv);
}

/* ---- call_with_500k_queued ---- */

#define QUEUED 500000
#define CALLS  10000

static void echo_server(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        if (m->tag == T_STOP) {
            bl_msg_free(m);
            return;
        }
        bl_send_ref(m->from, T_REPLY, m->ref, m->data, m->len);
        bl_msg_free(m);
    }
}

static void call_drv(driver *d)
{
    bl_pid self = bl_self(), srv;
    bl_spawn(&srv, echo_server, NULL, NULL);
    for (int i = 0; i < QUEUED; i++) bl_send(self, T_NOISE, &i, sizeof i);
    bl_mailbox_len(); /* the noise is in the queue before timing starts */
    uint64_t t0 = now_ns();
    for (int i = 0; i < CALLS; i++) {
        bl_ref ref = bl_make_ref();
        bl_recv_mark();
        bl_send_ref(srv, T_REQ, ref, &i, sizeof i);
        bl_msg *m = NULL;
        bl_recv(&m, bl_match_ref, &ref, 5000, BL_RECV_MARKED);
        bl_msg_free(m);
    }
    d->result = (double)(now_ns() - t0) / CALLS;
    bl_send(srv, T_STOP, NULL, 0);
    bl_msg *m;
    while ((m = bl_receive(0))) bl_msg_free(m);
}

double wl_call_with_500k_queued(void)
{
    return drive(call_drv);
}

/* ---- timers_100k ---- */

#define TIMERS 100000

typedef struct late_arg {
    bl_pid owner;
} late_arg;

static void late_waiter(void *arg)
{
    late_arg *a = arg;
    uint64_t t0 = now_ns();
    bl_msg *m = NULL;
    bl_recv(&m, NULL, NULL, 100, 0);
    int64_t late = (int64_t)(now_ns() - t0) - 100000000;
    bl_send(a->owner, T_DONE, &late, sizeof late);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void timers_drv(driver *d)
{
    late_arg a = {bl_self()};
    for (int i = 0; i < TIMERS; i++) bl_spawn(NULL, late_waiter, &a, NULL);
    int64_t *late = malloc(sizeof(int64_t) * TIMERS);
    for (int i = 0; i < TIMERS; i++) {
        bl_msg *m = bl_receive(BL_INFINITY);
        memcpy(&late[i], m->data, sizeof late[i]);
        bl_msg_free(m);
    }
    qsort(late, TIMERS, sizeof late[0], cmp_i64);
    d->result = (double)late[TIMERS * 99 / 100] / 1e6;
    free(late);
}

double wl_timers_100k(void)
{
    return drive(timers_drv);
}

/*
 * The workloads below return NAN when something went wrong (a spawn failed,
 * a reply did not come within WAIT_MS, a DOWN carried the wrong reason);
 * beamline_bench reports that as a benchmark error.
 */

/* ---- link_exit_cascade ---- */

#define CHAIN        10000
#define CASCADE_CODE 42

static bl_pid chain_owner;

/* arg: how many nodes follow this one.  Each node spawns the next, linked to
 * it; the last tells the owner its pid.  Then every node waits forever. */
static void chain_node(void *arg)
{
    uintptr_t left = (uintptr_t)arg;
    if (left == 0) {
        bl_pid me = bl_self();
        bl_send(chain_owner, T_GO, &me, sizeof me);
    } else if (bl_spawn_link(NULL, chain_node, (void *)(left - 1), NULL) != 0) {
        bl_send(chain_owner, T_STOP, NULL, 0); /* the chain cannot be built */
    }
    for (;;) bl_msg_free(bl_receive(BL_INFINITY));
}

static bool is_go_or_stop(const bl_msg *m, void *arg)
{
    (void)arg;
    return m->tag == T_GO || m->tag == T_STOP;
}

static void cascade_drv(driver *d)
{
    d->result = NAN;
    chain_owner = bl_self();
    bl_pid near, far;
    if (bl_spawn(&near, chain_node, (void *)(uintptr_t)(CHAIN - 1), NULL) != 0) return;
    bl_msg *m = NULL;
    if (bl_recv(&m, is_go_or_stop, NULL, WAIT_MS, 0) != 0) return;
    bool built = m->tag == T_GO;
    if (built) memcpy(&far, m->data, sizeof far);
    bl_msg_free(m);
    if (!built) {
        bl_exit_pid(near, &(bl_reason){.kind = BL_KILL}); /* whatever was built */
        return;
    }
    bl_ref ref;
    if (bl_monitor(far, &ref) != 0) return;
    bl_reason why = {.kind = BL_CUSTOM, .code = CASCADE_CODE};
    uint64_t t0 = now_ns();
    bl_exit_pid(near, &why);
    if (bl_recv(&m, bl_match_ref, &ref, WAIT_MS, 0) != 0) return;
    uint64_t t1 = now_ns();
    bl_reason got;
    if (m->tag == BL_TAG_DOWN && bl_msg_reason(m, &got) == 0 && bl_reason_eq(&got, &why))
        d->result = (double)(t1 - t0) / 1e6;
    bl_msg_free(m);
}

double wl_link_exit_cascade(void)
{
    return drive(cascade_drv);
}

/* ---- monitor_down_latency ---- */

#define DOWN_ROUNDS 10000

static void down_child(void *arg)
{
    bl_send(*(bl_pid *)arg, T_GO, NULL, 0); /* ready: about to wait */
    recv_tag(T_STOP);
}

static void monitor_down_drv(driver *d)
{
    d->result = NAN;
    bl_pid self = bl_self();
    uint64_t total = 0;
    for (int i = 0; i < DOWN_ROUNDS; i++) {
        bl_pid child;
        bl_ref ref;
        if (bl_spawn(&child, down_child, &self, NULL) != 0) return;
        if (bl_monitor(child, &ref) != 0) return;
        bl_msg *m = recv_tag_wait(T_GO);
        if (!m) return;
        bl_msg_free(m);
        uint64_t t0 = now_ns();
        bl_send(child, T_STOP, NULL, 0);
        if (bl_recv(&m, bl_match_ref, &ref, WAIT_MS, 0) != 0) return;
        total += now_ns() - t0;
        bool down = m->tag == BL_TAG_DOWN;
        bl_msg_free(m);
        if (!down) return;
    }
    d->result = (double)total / DOWN_ROUNDS;
}

double wl_monitor_down_latency(void)
{
    return drive(monitor_down_drv);
}

/* ---- hibernated_process_bytes ---- */

#define HIBERNATED 100000

/* Started by the first message after bl_hibernate, on a fresh stack. */
static void hib_wake(void *arg)
{
    (void)arg;
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        bl_pid from = m->from;
        uint32_t tag = m->tag;
        bl_msg_free(m);
        if (tag == T_STOP) {
            bl_send(from, T_DONE, NULL, 0);
            return;
        }
    }
}

/* Answers one synchronous request, then hibernates: it gives its stack back
 * and holds only its process control block until the next message. */
static void hib_proc(void *arg)
{
    (void)arg;
    bl_msg *m = NULL;
    uint32_t tag = T_REQ;
    if (bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0) != 0) return;
    bl_send(m->from, T_REPLY, NULL, 0);
    bl_msg_free(m);
    bl_hibernate(hib_wake, NULL);
}

static void hibernated_drv(driver *d)
{
    d->result = NAN;
    bl_pid *pids = malloc(sizeof(bl_pid) * HIBERNATED);
    if (!pids) return;
    long before = rss_bytes();
    /* One at a time: spawn, request, reply.  A plain process holds a stack
     * while it waits in receive, so spawning them all first would have up to
     * N stacks in use at once; this way one stack at a time goes round. */
    int n = 0;
    for (; n < HIBERNATED; n++) {
        if (bl_spawn(&pids[n], hib_proc, NULL, NULL) != 0) break;
        bl_send(pids[n], T_REQ, NULL, 0);
        bl_msg *m = recv_tag_wait(T_REPLY);
        if (!m) break;
        bl_msg_free(m);
    }
    long after = rss_bytes();
    if (n == HIBERNATED)
        d->result = (double)(after - before - (long)(sizeof(bl_pid) * HIBERNATED)) / HIBERNATED;
    for (int i = 0; i < n; i++) bl_send(pids[i], T_STOP, NULL, 0);
    for (int i = 0; i < n; i++) {
        bl_msg *m = recv_tag_wait(T_DONE);
        if (!m) {
            d->result = NAN;
            break;
        }
        bl_msg_free(m);
    }
    free(pids);
}

double wl_hibernated_process_bytes(void)
{
    return drive(hibernated_drv);
}

/* ---- priority_high_latency_under_load ---- */

#define PRIO_ROUNDS 1000
#define PRIO_WARMUP 100

/* A normal-priority process that yields until it receives a message. */
static void spinner(void *arg)
{
    bl_pid owner = *(bl_pid *)arg;
    bl_send(owner, T_GO, NULL, 0);
    for (;;) {
        bl_msg *m = bl_receive(0);
        if (m) {
            bl_msg_free(m);
            break;
        }
        bl_yield();
    }
    bl_send(owner, T_DONE, NULL, 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void prio_drv(driver *d)
{
    d->result = NAN;
    /* The driver is high priority itself: with every scheduler busy with
     * normal work, a normal driver would wait behind the spinners. */
    bl_set_priority(BL_PRIO_HIGH);
    bl_yield(); /* queued, and from now on run, as high */
    bl_pid self = bl_self();
    int n = (int)bl_schedulers();
    bl_pid *spin = malloc(sizeof(bl_pid) * 2 * (size_t)n);
    uint64_t *rt = malloc(sizeof(uint64_t) * PRIO_ROUNDS);
    int nspin = 0;
    bool ok = spin && rt;
    for (int i = 0; ok && i < 2 * n; i++) {
        bl_spawn_opts o = {.scheduler = i % n + 1};
        if (bl_spawn(&spin[nspin], spinner, &self, &o) == 0)
            nspin++;
        else
            ok = false;
    }
    /* Every spinner has run once: all schedulers are busy. */
    for (int i = 0; i < nspin; i++) {
        bl_msg *m = recv_tag_wait(T_GO);
        if (!m) ok = false;
        bl_msg_free(m);
    }
    /* The echo process starts on the driver's scheduler (the caller's) and,
     * being high priority, is never stolen: the runtime places it, as the
     * BEAM does (which keeps both on one scheduler too).  Each round trip
     * has to get past that scheduler's queue of spinners. */
    bl_spawn_opts eo = {.priority = BL_PRIO_HIGH};
    bl_pid echo = BL_PID_NONE;
    if (ok && bl_spawn(&echo, ponger, NULL, &eo) != 0) ok = false;
    for (int i = 0; ok && i < PRIO_WARMUP + PRIO_ROUNDS; i++) {
        uint32_t x = (uint32_t)i;
        uint64_t t0 = now_ns();
        bl_send(echo, T_REQ, &x, sizeof x);
        bl_msg *m = recv_tag_wait(T_BALL);
        uint64_t t1 = now_ns();
        if (!m) ok = false;
        bl_msg_free(m);
        if (i >= PRIO_WARMUP) rt[i - PRIO_WARMUP] = t1 - t0;
    }
    if (echo != BL_PID_NONE) bl_send(echo, T_STOP, NULL, 0);
    for (int i = 0; i < nspin; i++) bl_send(spin[i], T_STOP, NULL, 0);
    for (int i = 0; i < nspin; i++) {
        bl_msg *m = recv_tag_wait(T_DONE);
        if (!m) ok = false;
        bl_msg_free(m);
    }
    if (ok) {
        qsort(rt, PRIO_ROUNDS, sizeof rt[0], cmp_u64);
        d->result = (double)rt[PRIO_ROUNDS / 2];
    }
    free(rt);
    free(spin);
}

double wl_priority_high_latency_under_load(void)
{
    return drive(prio_drv);
}
