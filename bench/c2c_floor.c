/*
 * bench/c2c_floor.c - the core-to-core floor: how long one cache line takes
 * to go from one core to another.
 *
 *   c2c_floor [--cpus A,B] [--rounds N] [--runs N]
 *
 * Two threads, pinned to CPUs A and B, bounce one 64-bit counter held in a
 * cache line of its own: the pinger writes an odd value and spins until it
 * reads the next even one, the ponger spins until it reads the odd value and
 * writes the next even one.  Each round trip is two one-way hand-offs of the
 * line; a run of N round trips reports its time / (2 N).  After one short
 * warm-up run, --runs runs (default 9) of --rounds round trips (default
 * 200,000); the figures are the minimum (the floor: no run can beat it, and
 * other load on the machine only adds) and the median.
 *
 * Nothing a runtime does to send a message between two schedulers can take
 * less than one such hand-off: bench/run.py reports pingpong_cross_sched as
 * a multiple of the minimum.  By default A is the first CPU this program may
 * run on and B the first one on another physical core (an SMT sibling shares
 * the caches and would give a far lower figure); when there is none, B is a
 * sibling and "same_core" says so.
 *
 * The same threads then measure the floor of a message between two
 * mailboxes of Beamline's kind (core/wait.h), with no runtime around it: a
 * round trip of two messages, each an envelope of one cache line from the
 * sender's own pool, pushed onto the receiver's 16-byte mailbox word by a
 * CAS (top and state together, as the no-lost-wake-up protocol needs), seen
 * by the receiver watching the word, taken by an exchange of the top and
 * read.  Each such message moves the mailbox line twice (the sender's CAS,
 * the receiver's look and exchange) and the envelope's once (and it comes
 * back when the sender reuses it): what any runtime with such mailboxes
 * pays between two cores before it does anything else.  Reported as the
 * round trip, comparable with pingpong_cross_sched.
 *
 * Last, on CPU A alone, the same two messages between two contexts of one
 * thread, switched by the runtime's own switch (core/ctx_*.S, which saves
 * what the ABI has a callee keep): a receiver with an empty inbox parks (a
 * CAS from empty and active to waiting, as core/wait.h's park), the push
 * that finds it waiting makes it the next to run, and the sender, waiting
 * for the answer, parks and switches to it.  Two pushes, two parks, two
 * exchanges and two switches a round trip, with no scheduler, no process
 * and no allocator: what a ping-pong on one core costs a runtime with such
 * mailboxes before it does anything else, comparable with
 * pingpong_same_sched.
 *
 * Prints one JSON object on stdout:
 *   {"cpus": [A, B], "same_core": false, "rounds": N,
 *    "runs_ns": [...], "ns_one_way_min": x, "ns_one_way_median": y,
 *    "mailbox_runs_ns": [...], "mailbox_ns_round_trip_min": m,
 *    "mailbox_ns_round_trip_median": n, "local_runs_ns": [...],
 *    "local_ns_round_trip_min": l, "local_ns_round_trip_median": k}
 * Exits 2 when fewer than two CPUs are available, 1 on any other failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ctx.h"

#define RUNS_MAX 1000

/* What a run measures. */
enum mode { LINE, MAILBOX, LOCAL };

/* The bounced line, alone in its 128 bytes (adjacent-line prefetch pairs lines). */
static struct {
    _Alignas(128) _Atomic uint64_t v;
    char pad[128 - sizeof(uint64_t)];
} line;

static long rounds = 200000;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* ---- the mailbox round trip ---- */

/* An envelope: one line, the link and the payload. */
typedef struct env {
    _Alignas(64) struct env *next;
    uint64_t seq;
    char pad[64 - 2 * sizeof(uint64_t)];
} env;

/* A mailbox word as core/proc.h's bl_box: the newest envelope and the state. */
typedef union box {
    struct {
        env *top;
        uint64_t meta;
    };
    unsigned __int128 word;
} box;

#define POOL 64 /* each side's envelopes, reused in turn */

/* Each side's mailbox word alone in 128 bytes, then its envelopes. */
typedef struct side {
    _Alignas(128) box box;
    char pad[128 - sizeof(box)];
    _Alignas(128) env pool[POOL];
} side;

static side sides[2];

static bool box_cas(box *b, box *expected, box desired)
{
#if defined(__x86_64__)
    /* As core/proc.h's bl__box_cas: lock cmpxchg16b inline (-mcx16). */
    unsigned __int128 old = __sync_val_compare_and_swap(&b->word, expected->word, desired.word);
    if (old == expected->word) return true;
    expected->word = old;
    return false;
#else
    return __atomic_compare_exchange_n(&b->word, &expected->word, desired.word, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
#endif
}

/* Pushes e onto `to` as bl__box_push does: the top and the state in one
 * CAS, the state set to `active` or, without it, counted up (a change the
 * watching receiver could see).  Returns the state found. */
static inline uint64_t push_env(side *to, env *e, uint64_t active)
{
    box cur = {.word = 0}, want;
    cur.top = __atomic_load_n(&to->box.top, __ATOMIC_RELAXED);
    cur.meta = __atomic_load_n(&to->box.meta, __ATOMIC_RELAXED);
    do {
        e->next = cur.top;
        want.top = e;
        want.meta = active ? active : cur.meta + 1;
    } while (!box_cas(&to->box, &cur, want));
    return cur.meta;
}

static void mb_send(side *to, env *e)
{
    push_env(to, e, 0);
}

/* Watches own's word until an envelope is there, takes it as bl__box_take
 * does (the top alone, exchanged), and returns its sequence number. */
static uint64_t mb_receive(side *own)
{
    while (!__atomic_load_n(&own->box.top, __ATOMIC_RELAXED)) {
    }
    env *e = __atomic_exchange_n(&own->box.top, NULL, __ATOMIC_ACQ_REL);
    return e->seq;
}

/* The ponger's side of n mailbox round trips: answers each message. */
static int mb_pong(long n)
{
    for (long i = 0; i < n; i++) {
        if (mb_receive(&sides[1]) != (uint64_t)i) return -1;
        env *e = &sides[1].pool[i % POOL];
        e->seq = (uint64_t)i;
        mb_send(&sides[0], e);
    }
    return 0;
}

/* The pinger's side: ns per round trip, or -1 on a wrong answer. */
static double mb_ping(long n)
{
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        env *e = &sides[0].pool[i % POOL];
        e->seq = (uint64_t)i;
        mb_send(&sides[1], e);
        if (mb_receive(&sides[0]) != (uint64_t)i) return -1;
    }
    return (double)(now_ns() - t0) / (double)n;
}

/* ---- the one-core round trip ---- */

enum { ST_ACTIVE = 1, ST_WAITING = 2, LOCAL_STACK = 64 * 1024 };

static bl_ctx lctx[2], lmain; /* the two contexts and the measuring thread's own */
static int lnext = -1;        /* the context to run next (woken by a push), or -1 */
static long lrounds;          /* round trips of the current run */
static bool lwrong;           /* a message came out of order */
static _Alignas(16) char lstack[2][LOCAL_STACK];

/* Pushes e onto side `to`'s word; a receiver found waiting runs next. */
static void l_send(int to, env *e)
{
    if (push_env(&sides[to], e, ST_ACTIVE) == ST_WAITING) lnext = to;
}

/* Context me takes its message, parking until there is one. */
static uint64_t l_receive(int me)
{
    for (;;) {
        if (__atomic_load_n(&sides[me].box.top, __ATOMIC_RELAXED)) {
            env *e = __atomic_exchange_n(&sides[me].box.top, NULL, __ATOMIC_ACQ_REL);
            return e->seq;
        }
        box empty = {.top = NULL, .meta = ST_ACTIVE}, waiting = {.top = NULL, .meta = ST_WAITING};
        if (box_cas(&sides[me].box, &empty, waiting)) {
            int n = lnext;
            lnext = -1;
            bl__ctx_jump(&lctx[me], n >= 0 ? &lctx[n] : &lmain, 0);
        }
    }
}

static void l_pinger(void *arg)
{
    (void)arg;
    for (long i = 0; i < lrounds && !lwrong; i++) {
        env *e = &sides[0].pool[i % POOL];
        e->seq = (uint64_t)i;
        l_send(1, e);
        lwrong |= l_receive(0) != (uint64_t)i;
    }
    bl__ctx_jump(&lctx[0], &lmain, 1);
}

/* Answers each message; left parked after the last. */
static void l_ponger(void *arg)
{
    (void)arg;
    for (long i = 0;; i++) {
        uint64_t v = l_receive(1);
        lwrong |= v != (uint64_t)i;
        env *e = &sides[1].pool[i % POOL];
        e->seq = v;
        l_send(0, e);
    }
}

/* n round trips on the calling thread: ns per round trip, -1 on a wrong answer. */
static double local_run(long n)
{
    memset(sides, 0, sizeof sides);
    sides[0].box.meta = sides[1].box.meta = ST_ACTIVE;
    lrounds = n;
    lwrong = false;
    lnext = -1;
    bl__ctx_init_thread(&lmain);
    bl__ctx_init(&lctx[0], lstack[0], LOCAL_STACK, l_pinger, NULL);
    bl__ctx_init(&lctx[1], lstack[1], LOCAL_STACK, l_ponger, NULL);
    /* The ponger first: it finds no mail, parks and comes back here. */
    bl__ctx_jump(&lmain, &lctx[1], 0);
    uint64_t t0 = now_ns();
    bl__ctx_jump(&lmain, &lctx[0], 0);
    uint64_t t1 = now_ns();
    if (lwrong) fprintf(stderr, "c2c_floor: a one-core message came out of order\n");
    return lwrong ? -1 : (double)(t1 - t0) / (double)n;
}

typedef struct pong_arg {
    int cpu;      /* where the ponger runs */
    long n;       /* round trips */
    bool mailbox; /* the mailbox round trip instead of the line's */
    int error;    /* pthread_setaffinity_np's result, or -1: a wrong message */
} pong_arg;

/* Answers each odd value v with v + 1 (or each message, with --mailbox). */
static void *ponger(void *arg)
{
    pong_arg *a = arg;
    a->error = pin(a->cpu);
    if (a->mailbox) {
        if (mb_pong(a->n) != 0 && !a->error) a->error = -1;
        return NULL;
    }
    for (long i = 0; i < a->n; i++) {
        uint64_t want = 2 * (uint64_t)i + 1;
        /* relaxed: the counter is the only data handed over; its own
         * coherence order is all the ping-pong needs. */
        while (atomic_load_explicit(&line.v, memory_order_relaxed) != want) {
        }
        /* relaxed: as above, nothing else is published with it. */
        atomic_store_explicit(&line.v, want + 1, memory_order_relaxed);
    }
    return NULL;
}

/* One run of n round trips between the calling thread (on cpu_a) and a
 * ponger on cpu_b: ns per one-way hand-off, or with mailbox ns per mailbox
 * round trip; -1 on failure. */
static double run_once(int cpu_a, int cpu_b, long n, enum mode mode)
{
    if (mode == LOCAL) return local_run(n); /* on cpu_a, where main pinned this thread */
    bool mailbox = mode == MAILBOX;
    /* relaxed: the ponger is not started yet; pthread_create orders this store before it. */
    atomic_store_explicit(&line.v, 0, memory_order_relaxed);
    memset(sides, 0, sizeof sides);
    pong_arg pa = {cpu_b, n, mailbox, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, ponger, &pa) != 0) return -1;
    if (mailbox) {
        double v = mb_ping(n);
        pthread_join(t, NULL);
        if (pa.error > 0)
            fprintf(stderr, "c2c_floor: cannot pin a thread to CPU %d: %s\n", cpu_b,
                    strerror(pa.error));
        else if (pa.error < 0 || v < 0)
            fprintf(stderr, "c2c_floor: a mailbox message came out of order\n");
        return pa.error || v < 0 ? -1 : v;
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        uint64_t v = 2 * (uint64_t)i + 1;
        /* relaxed: see ponger. */
        atomic_store_explicit(&line.v, v, memory_order_relaxed);
        /* relaxed: see ponger. */
        while (atomic_load_explicit(&line.v, memory_order_relaxed) != v + 1) {
        }
    }
    uint64_t t1 = now_ns();
    pthread_join(t, NULL);
    if (pa.error != 0) {
        fprintf(stderr, "c2c_floor: cannot pin a thread to CPU %d: %s\n", cpu_b,
                strerror(pa.error));
        return -1;
    }
    return (double)(t1 - t0) / (2.0 * (double)n);
}

/* The physical core of cpu as "package:core", or -1 when sysfs cannot tell. */
static long core_of(int cpu)
{
    long pkg = 0, core = -1;
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &core) != 1) core = -1;
        fclose(f);
    }
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
        fclose(f);
    }
    return core < 0 ? -1 : pkg * 1000000 + core;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A warm-up run, then `runs` runs into v: their minimum, and *med their
 * median; -1 on failure. */
static double measure(int cpu_a, int cpu_b, long runs, enum mode mode, double *v, double *med)
{
    if (run_once(cpu_a, cpu_b, rounds / 10 + 1, mode) < 0) return -1;
    double sorted[RUNS_MAX];
    for (long r = 0; r < runs; r++) {
        v[r] = run_once(cpu_a, cpu_b, rounds, mode);
        if (v[r] < 0) return -1;
        sorted[r] = v[r];
    }
    qsort(sorted, (size_t)runs, sizeof sorted[0], cmp_double);
    *med = runs % 2 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2.0;
    return sorted[0];
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1) {
        fprintf(stderr, "c2c_floor: %s must be a positive integer, not '%s'\n", what, s);
        exit(1);
    }
    return v;
}

/* The figures of the runs, as the items of a JSON list. */
static void print_runs(const double *v, long runs)
{
    for (long r = 0; r < runs; r++) printf("%s%.2f", r ? ", " : "", v[r]);
}

int main(int argc, char **argv)
{
    int cpu_a = -1, cpu_b = -1;
    long runs = 9;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) != 2 || cpu_a < 0 || cpu_b < 0 ||
                cpu_a == cpu_b || cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE) {
                fprintf(stderr, "c2c_floor: --cpus takes two different CPU numbers, A,B\n");
                return 1;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = parse_long(argv[++i], "--rounds");
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = parse_long(argv[++i], "--runs");
            if (runs > RUNS_MAX) runs = RUNS_MAX;
        } else {
            fprintf(stderr, "usage: c2c_floor [--cpus A,B] [--rounds N] [--runs N]\n");
            return 1;
        }
    }

    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        perror("c2c_floor: sched_getaffinity");
        return 1;
    }
    if (cpu_a < 0) {
        for (int c = 0; c < CPU_SETSIZE && cpu_a < 0; c++)
            if (CPU_ISSET(c, &allowed)) cpu_a = c;
        int sibling = -1;
        for (int c = cpu_a + 1; c < CPU_SETSIZE && cpu_a >= 0 && cpu_b < 0; c++) {
            if (!CPU_ISSET(c, &allowed)) continue;
            if (core_of(c) == -1 || core_of(c) != core_of(cpu_a))
                cpu_b = c;
            else if (sibling < 0)
                sibling = c;
        }
        if (cpu_b < 0) cpu_b = sibling;
    }
    if (cpu_a < 0 || cpu_b < 0) {
        fprintf(stderr, "c2c_floor: needs two CPUs; this process may run on %d\n",
                CPU_COUNT(&allowed));
        return 2;
    }
    bool same_core = core_of(cpu_a) != -1 && core_of(cpu_a) == core_of(cpu_b);
    int rc = pin(cpu_a);
    if (rc != 0) {
        fprintf(stderr, "c2c_floor: cannot pin a thread to CPU %d: %s\n", cpu_a, strerror(rc));
        return 1;
    }

    double v[RUNS_MAX], mb[RUNS_MAX], lo[RUNS_MAX], med, mb_med, lo_med;
    double min = measure(cpu_a, cpu_b, runs, LINE, v, &med);
    double mb_min = min < 0 ? -1 : measure(cpu_a, cpu_b, runs, MAILBOX, mb, &mb_med);
    double lo_min = mb_min < 0 ? -1 : measure(cpu_a, cpu_b, runs, LOCAL, lo, &lo_med);
    if (lo_min < 0) return 1;
    printf("{\"cpus\": [%d, %d], \"same_core\": %s, \"rounds\": %ld, \"runs_ns\": [", cpu_a, cpu_b,
           same_core ? "true" : "false", rounds);
    print_runs(v, runs);
    printf("], \"ns_one_way_min\": %.2f, \"ns_one_way_median\": %.2f, \"mailbox_runs_ns\": [", min,
           med);
    print_runs(mb, runs);
    printf("], \"mailbox_ns_round_trip_min\": %.2f, \"mailbox_ns_round_trip_median\": %.2f, "
           "\"local_runs_ns\": [",
           mb_min, mb_med);
    print_runs(lo, runs);
    printf("], \"local_ns_round_trip_min\": %.2f, \"local_ns_round_trip_median\": %.2f}\n", lo_min,
           lo_med);
    return 0;
}
