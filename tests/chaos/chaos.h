/*
 * tests/chaos/chaos.h - what the chaos suite's driver (chaos.c) and its
 * scenarios share: the run record each scenario fills (work done, faults
 * injected, failures), seeded random numbers, clocks, and the few process
 * helpers every scenario needs (kill and wait, short delays).
 *
 * A scenario is a function run in a process of its own; it must leave
 * nothing behind when it returns: every process it started gone, every
 * descriptor closed, every thread joined.  The driver checks that.
 */
#ifndef CHAOS_H
#define CHAOS_H

#include <beamline.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sanitizer builds run the same scenarios on smaller counts (and slower). */
#if defined(__SANITIZE_THREAD__)
#define CHAOS_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define CHAOS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHAOS_TSAN 1
#elif __has_feature(address_sanitizer)
#define CHAOS_ASAN 1
#endif
#endif

#if defined(CHAOS_TSAN)
#define CHAOS_SCALE(n) ((n) / 8 > 0 ? (n) / 8 : 1)
#elif defined(CHAOS_ASAN)
#define CHAOS_SCALE(n) ((n) / 2 > 0 ? (n) / 2 : 1)
#else
#define CHAOS_SCALE(n) (n)
#endif

/* ---- the run record ---- */

/* What a counter counts: work done, faults injected, or something worth showing. */
typedef enum chaos_kind { CHAOS_WORK, CHAOS_FAULT, CHAOS_INFO } chaos_kind;

#define CHAOS_COUNTERS 24

typedef struct chaos_ctr {
    const char *name;   /* short, printed as name=value */
    chaos_kind kind;    /* which group it is printed in */
    _Atomic uint64_t v; /* the count; any thread adds */
} chaos_ctr;

typedef struct chaos_run {
    const char *name;            /* the scenario's */
    double seconds;              /* its duration (--seconds) */
    uint64_t seed;               /* its own seed, derived from the run's */
    int64_t start_ms, end_ms;    /* its time window, chaos_ms() */
    chaos_ctr c[CHAOS_COUNTERS]; /* its counters */
    int nc;                      /* counters defined */
    _Atomic int failures;        /* chaos_fail calls */
    _Atomic int first_taken;     /* the first failure's text is being written */
    char first[512];             /* that text */
    char notes[8192];            /* extra lines printed after the scenario's line */
    size_t notes_len;            /* bytes in notes */
} chaos_run;

/*
 * Defines a counter and returns its index.  Scenario process only, before
 * anyone counts (the driver prints counters in the order defined).
 */
int chaos_counter(chaos_run *r, chaos_kind kind, const char *name);

/* Adds n to counter id.  Any thread. */
static inline void chaos_add(chaos_run *r, int id, uint64_t n)
{
    /* Relaxed: a statistic, read once everything that counts has finished. */
    atomic_fetch_add_explicit(&r->c[id].v, n, memory_order_relaxed);
}

static inline uint64_t chaos_get(chaos_run *r, int id)
{
    return atomic_load_explicit(&r->c[id].v, memory_order_relaxed);
}

/* Records a failure (the first one's text is kept).  Any thread. */
void chaos_fail(chaos_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a line to the notes printed after the scenario's line.  Scenario process only. */
void chaos_note(chaos_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks cond, recording a failure with its text and place when it is false. */
#define CHAOS_CHECK(r, cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) chaos_fail((r), "%s:%d: %s", __FILE__, __LINE__, #cond);                      \
    } while (0)

/* ---- random numbers: xorshift64*, one state per process or thread ---- */

typedef struct chaos_rng {
    uint64_t s; /* never 0 */
} chaos_rng;

/* A generator for one stream of choices (a process, a thread) of run r. */
chaos_rng chaos_rng_for(const chaos_run *r, uint64_t stream);

static inline uint64_t chaos_rand(chaos_rng *g)
{
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) (n > 0; the bias is negligible for the small n used here). */
static inline uint64_t chaos_below(chaos_rng *g, uint64_t n)
{
    return (chaos_rand(g) >> 11) % n;
}

/* True with probability 1/n. */
static inline bool chaos_one_in(chaos_rng *g, uint64_t n)
{
    return chaos_below(g, n) == 0;
}

/* ---- clocks ---- */

int64_t chaos_ms(void); /* monotonic milliseconds */
int64_t chaos_us(void); /* monotonic microseconds */

/* True while the scenario's time window lasts. */
static inline bool chaos_running(const chaos_run *r)
{
    return chaos_ms() < r->end_ms;
}

/* ---- process helpers ---- */

/*
 * Kills pid (the untrappable kill) and waits up to ms for its DOWN.
 * Returns 0 (it is dead, or was already), -ETIMEDOUT.  Process only.
 */
int chaos_kill_wait(bl_pid pid, int64_t ms);

/*
 * Waits up to ms for the DOWN of the monitor ref (of a process killed or
 * stopped otherwise).  Returns 0 or -ETIMEDOUT (the monitor is then
 * dropped).  Process only.
 */
int chaos_wait_down(bl_ref ref, int64_t ms);

/*
 * Lets about us microseconds pass, letting other processes run: yields up
 * to a deadline (sub-millisecond delays), or sleeps (longer ones).  0 does
 * nothing.  Process only.
 */
void chaos_delay_us(int64_t us);

/* Receives a message with the given tag, waiting up to ms (NULL on timeout). */
bl_msg *chaos_recv_tag(uint32_t tag, int64_t ms);

/* A tag no one sends. */
#define CHAOS_T_NEVER 0x7777

/* Waits for a message no one sends: only a kill or an exit signal ends it. */
static inline void chaos_wait_never(void)
{
    bl_msg_free(chaos_recv_tag(CHAOS_T_NEVER, BL_INFINITY));
}

/* A process that only waits (chaos_wait_never); killed or shut down, it goes. */
static inline void chaos_idle(void *arg)
{
    (void)arg;
    chaos_wait_never();
}

/* Awaits the task t (without a timeout) and drops its result. */
static inline void chaos_await(bl_task *t)
{
    bl_task_result res = {0};
    (void)bl_task_await(t, BL_INFINITY, &res);
    bl_task_result_free(&res);
}

/* Drops every message already in the caller's mailbox; returns how many. */
size_t chaos_flush(void);

/* ---- the scenarios ---- */

typedef struct chaos_scenario {
    const char *name;          /* --only NAME */
    const char *what;          /* one line for --list */
    void (*run)(chaos_run *r); /* runs in a process of its own */
} chaos_scenario;

void chaos_http(chaos_run *r);           /* http.c */
void chaos_io_storm(chaos_run *r);       /* io_storm.c */
void chaos_restart_storm(chaos_run *r);  /* restart_storm.c */
void chaos_mailbox_flood(chaos_run *r);  /* mailbox_flood.c */
void chaos_blocking_calls(chaos_run *r); /* blocking_calls.c */

#endif /* CHAOS_H */
