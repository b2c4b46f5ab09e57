/*
 * tests/chaos/chaos.c - beamline_chaos: runs the chaos scenarios one after
 * the other in one runtime and checks, after each, that nothing was lost.
 *
 *   beamline_chaos [--seconds S] [--seed N] [--only NAME] [--list]
 *
 * Before a scenario the driver takes a baseline: open descriptors, I/O
 * operations and streams in flight (bl_io_inflight), live processes, the
 * timers on every scheduler's wheel and the resident set.  The scenario
 * runs in a process of its own for S seconds.  After it the driver waits
 * (bounded) until descriptors, processes and timers are back to the
 * baseline and nothing is in flight, then lets the runtime be quiet for a
 * second (the slabs give back spans empty for that long) and checks that
 * the resident set is within CHAOS_RSS_BOUND_MIB of the baseline.  One
 * line per scenario says what was done, which faults were injected and
 * what the checks found; the exit status is 1 if anything failed.
 * Sanitizer reports (and, in ASan builds, LeakSanitizer's check at exit)
 * fail the run by themselves.
 */
#define _GNU_SOURCE
#include "chaos.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * How far above its baseline the resident set may be after a quiet
 * second.  What legitimately stays: each scheduler's slab keeps 32 empty
 * spans (8 MiB), its stack pool up to 64 stacks, and glibc keeps freed heap
 * in the arenas of the threads that allocated (schedulers, the dirty pool,
 * client threads); the first scenarios also pay for what is set up on
 * first use.  Measured in release (README.md): mailbox_flood, the worst,
 * ends 14-22 MiB above its baseline (16 of them the kept spans), the
 * others within 6 MiB; the whole run ends about 24 MiB above its start.
 * CHAOS_RSS_RUN_MIB bounds the run as a whole against its first baseline
 * (creep from scenario to scenario).  ASan's allocator keeps freed memory
 * (its quarantine, capped below, and per-size-class free lists that grow
 * with the variety of sizes used), so its bound is larger and only per
 * scenario; TSan's shadow memory makes RSS meaningless.
 */
#if defined(CHAOS_ASAN)
#define CHAOS_RSS_BOUND_MIB 96
#define CHAOS_RSS_RUN_MIB   0 /* not checked */
#define CHAOS_BUILD         "asan"
#elif defined(CHAOS_TSAN)
#define CHAOS_RSS_BOUND_MIB 0 /* not checked */
#define CHAOS_RSS_RUN_MIB   0
#define CHAOS_BUILD         "tsan"
#elif defined(NDEBUG)
#define CHAOS_RSS_BOUND_MIB 32
#define CHAOS_RSS_RUN_MIB   48
#define CHAOS_BUILD         "release"
#else
#define CHAOS_RSS_BOUND_MIB 32
#define CHAOS_RSS_RUN_MIB   48
#define CHAOS_BUILD         "debug"
#endif

#if defined(CHAOS_ASAN)
/*
 * LeakSanitizer runs at exit (a leak fails the run with its report), and
 * the quarantine of freed memory is capped so that the resident set can
 * come back near its baseline.  ASAN_OPTIONS still overrides these.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=1:quarantine_size_mb=32:allocator_release_to_os_interval_ms=100";
}
#endif

static const chaos_scenario scenarios[] = {
    {"http",
     "HTTP server under wrk and cutting clients; connections, acceptors, supervisors killed",
     chaos_http},
    {"io_storm", "accept/recv (blocking, timed, streams) killed at random while clients connect",
     chaos_io_storm},
    {"restart_storm",
     "supervision trees whose children crash or are killed; start_child callers killed",
     chaos_restart_storm},
    {"mailbox_flood", "mixed-size floods across schedulers into slow receivers, some killed full",
     chaos_mailbox_flood},
    {"blocking_calls", "a process killed at a random moment in every blocking call of the API",
     chaos_blocking_calls},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

/* ---- the run record ---- */

int chaos_counter(chaos_run *r, chaos_kind kind, const char *name)
{
    if (r->nc >= CHAOS_COUNTERS) abort(); /* a scenario defines a fixed, small set */
    r->c[r->nc].name = name;
    r->c[r->nc].kind = kind;
    atomic_init(&r->c[r->nc].v, 0);
    return r->nc++;
}

void chaos_fail(chaos_run *r, const char *fmt, ...)
{
    atomic_fetch_add(&r->failures, 1);
    /* The first caller writes the text; the driver reads it after everyone is done. */
    if (atomic_exchange(&r->first_taken, 1)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first, sizeof r->first, fmt, ap);
    va_end(ap);
}

void chaos_note(chaos_run *r, const char *fmt, ...)
{
    size_t room = sizeof r->notes - r->notes_len;
    if (room < 2) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->notes + r->notes_len, room - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    r->notes_len += (size_t)n < room - 1 ? (size_t)n : room - 2;
    r->notes[r->notes_len++] = '\n';
    r->notes[r->notes_len] = 0;
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

chaos_rng chaos_rng_for(const chaos_run *r, uint64_t stream)
{
    chaos_rng g = {splitmix(r->seed ^ splitmix(stream + 1))};
    if (!g.s) g.s = 1;
    return g;
}

/* ---- clocks and helpers ---- */

int64_t chaos_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chaos_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bl_msg *chaos_recv_tag(uint32_t tag, int64_t ms)
{
    bl_msg *m = NULL;
    return bl_recv(&m, bl_match_tag, &tag, ms, 0) == 0 ? m : NULL;
}

int chaos_wait_down(bl_ref ref, int64_t ms)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, ms, 0) == 0) {
        bl_msg_free(m);
        return 0;
    }
    bl_demonitor(ref, BL_DEMONITOR_FLUSH);
    return -ETIMEDOUT;
}

int chaos_kill_wait(bl_pid pid, int64_t ms)
{
    bl_ref ref;
    if (bl_monitor(pid, &ref) != 0) return 0;
    bl_exit_pid(pid, &BL_REASON(BL_KILL));
    return chaos_wait_down(ref, ms);
}

void chaos_delay_us(int64_t us)
{
    if (us <= 0) return;
    if (us >= 2000) {
        bl_sleep(us / 1000);
        return;
    }
    int64_t until = chaos_us() + us;
    for (int i = 0; i < 1000000 && chaos_us() < until; i++) bl_yield();
}

size_t chaos_flush(void)
{
    size_t n = 0;
    bl_msg *m;
    while (bl_recv(&m, NULL, NULL, 0, 0) == 0) {
        bl_msg_free(m);
        n++;
    }
    return n;
}

/* ---- what the checks measure ---- */

#define MAX_SCHED 64

typedef struct snapshot {
    int fds;                    /* entries of /proc/self/fd */
    uint64_t inflight;          /* bl_io_inflight() */
    size_t procs;               /* bl_processes() */
    unsigned nsched;            /* schedulers */
    uint64_t timers[MAX_SCHED]; /* each wheel's timers, as of its last turn */
    size_t rss;                 /* resident bytes */
} snapshot;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* The peak resident set since the last reset (VmHWM), or 0. */
static size_t rss_peak(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    size_t kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* Resets the peak to the current resident set (Linux: clear_refs 5). */
static void rss_peak_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (write(fd, "5", 1) != 1) { /* then the peak is the program's */
    }
    close(fd);
}

static void nothing(void *arg)
{
    (void)arg;
}

/*
 * Gives every scheduler a turn: a process started on each, waited for.  A
 * scheduler that was asleep wakes, runs it, and on its way back to sleep
 * runs its timers (so its timer count is fresh), drains abandoned timers,
 * sweeps and trims.  The caller's own scheduler is refreshed by a 1 ms
 * sleep (its timer fires there); the DOWNs are waited for without a
 * timeout, which would leave a timer of the caller's counted until that
 * scheduler's next turn.
 */
/*
 * The driver's waits are watched from a thread of their own: a wait that
 * outlives its bound by far means a scheduler is stuck (its thread blocked
 * in a call that never returns, so that nothing bound to it runs), and the
 * run ends there with the processes listed, instead of at ctest's timeout
 * with nothing said.
 */
static _Atomic int64_t watch_until;    /* chaos_ms() deadline of the current wait, 0: none */
static const char *_Atomic watch_what; /* what that wait is for */

static void *watcher(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        int64_t t = atomic_load(&watch_until);
        if (!t || chaos_ms() < t) continue;
        fprintf(stderr, "beamline_chaos: stuck waiting for %s; the processes:\n",
                atomic_load(&watch_what));
        bl_print_processes(2);
        abort();
    }
    return NULL;
}

static void start_watcher(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, watcher, NULL) == 0) pthread_detach(t);
}

/* Arms the watch for a wait of at most ms (0 disarms it). */
static void watch(const char *what, int64_t ms)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, start_watcher);
    atomic_store(&watch_what, what);
    atomic_store(&watch_until, ms ? chaos_ms() + ms : 0);
}

static void poke_schedulers(void)
{
    watch("a process on every scheduler to run", 30000);
    unsigned n = bl_schedulers();
    bl_ref refs[MAX_SCHED];
    unsigned got = 0;
    for (unsigned i = 0; i < n && i < MAX_SCHED; i++) {
        bl_spawn_opts o = {.scheduler = (int)i + 1};
        bl_pid pid;
        if (bl_spawn_monitor(&pid, &refs[got], nothing, NULL, &o) == 0) got++;
    }
    bl_sleep(1);
    for (unsigned i = 0; i < got; i++) {
        bl_msg *m = NULL;
        if (bl_recv(&m, bl_match_ref, &refs[i], BL_INFINITY, 0) == 0) bl_msg_free(m);
    }
    watch(NULL, 0);
}

static void measure(snapshot *s)
{
    poke_schedulers();
    s->fds = count_fds();
    s->inflight = bl_io_inflight();
    s->procs = bl_processes(NULL, 0);
    s->nsched = bl_schedulers() < MAX_SCHED ? bl_schedulers() : MAX_SCHED;
    for (unsigned i = 0; i < s->nsched; i++) {
        bl_scheduler_stats st;
        s->timers[i] = bl_scheduler_stats_get(i, &st) == 0 ? st.timers : UINT64_MAX;
    }
    s->rss = rss_bytes();
}

static uint64_t timers_sum(const snapshot *s)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < s->nsched; i++) t += s->timers[i];
    return t;
}

static bool timers_back(const snapshot *base, const snapshot *now)
{
    for (unsigned i = 0; i < now->nsched; i++)
        if (now->timers[i] != base->timers[i]) return false;
    return true;
}

static bool counts_back(const snapshot *base, const snapshot *now)
{
    return now->fds == base->fds && now->inflight == 0 && now->procs == base->procs &&
           timers_back(base, now);
}

/* "bound base+N" (MiB), or why there is none. */
static const char *bound_text(void)
{
    static char txt[64];
    if (CHAOS_RSS_RUN_MIB)
        snprintf(txt, sizeof txt, "bound base+%d, run start+%d", CHAOS_RSS_BOUND_MIB,
                 CHAOS_RSS_RUN_MIB);
    else if (CHAOS_RSS_BOUND_MIB)
        snprintf(txt, sizeof txt, "bound base+%d", CHAOS_RSS_BOUND_MIB);
    else
        snprintf(txt, sizeof txt, "not checked in this build");
    return txt;
}

static double mib(size_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

/* ---- the driver ---- */

typedef struct options {
    double seconds;   /* each scenario's duration */
    uint64_t seed;    /* the run's seed */
    const char *only; /* one scenario, or NULL for all */
    int failed;       /* scenarios that failed (out) */
    int ran;          /* scenarios run (out) */
} options;

typedef struct scen_arg {
    const chaos_scenario *sc;
    chaos_run *r;
} scen_arg;

static void scenario_proc(void *arg)
{
    scen_arg *a = arg;
    a->sc->run(a->r);
}

static _Atomic uint64_t crash_reports;

/*
 * Reports are counted, not printed: processes are crashed on purpose by the
 * thousand (the logger's queue drops what it cannot hold; those are not
 * counted here).
 */
static void count_report(const bl_log_event *e, void *arg)
{
    (void)arg;
    /* Relaxed: a statistic read between scenarios. */
    if (!strcmp(e->kind, "crash_report"))
        atomic_fetch_add_explicit(&crash_reports, 1, memory_order_relaxed);
}

static void print_counters(const chaos_run *r, chaos_kind kind, const char *label)
{
    bool any = false;
    for (int i = 0; i < r->nc; i++) {
        if (r->c[i].kind != kind) continue;
        printf("%s%s=%llu", any ? " " : label, r->c[i].name,
               (unsigned long long)atomic_load(&r->c[i].v));
        any = true;
    }
    if (any) printf(" | ");
}

static int run_one(const chaos_scenario *sc, unsigned index, options *o, size_t rss0)
{
    chaos_run *r = calloc(1, sizeof *r);
    if (!r) return 1;
    r->name = sc->name;
    r->seconds = o->seconds;
    r->seed = splitmix(o->seed + index);
    snapshot base;
    measure(&base);
    rss_peak_reset();
    uint64_t reports0 = atomic_load(&crash_reports);
    r->start_ms = chaos_ms();
    r->end_ms = r->start_ms + (int64_t)(o->seconds * 1000.0);
    int crep = chaos_counter(r, CHAOS_INFO, "crash_reports");

    /* The scenario, in a process of its own, bounded in time. */
    scen_arg a = {sc, r};
    bl_pid pid;
    bl_ref ref;
    if (bl_spawn_monitor(&pid, &ref, scenario_proc, &a, NULL) != 0) {
        chaos_fail(r, "could not spawn the scenario");
    } else {
        int64_t limit = (int64_t)(o->seconds * 2000.0) + 60000;
        bl_msg *down = NULL;
        /* The limit, the kill's 10 s, and 20 s for the driver to get a turn. */
        watch("the scenario to end, or to be killed", limit + 30000);
        if (bl_recv(&down, bl_match_ref, &ref, limit, 0) != 0) {
            chaos_fail(r, "the scenario did not finish within %lld ms: killed", (long long)limit);
            chaos_kill_wait(pid, 10000);
        } else {
            bl_reason why;
            if (bl_msg_reason(down, &why) == 0 && why.kind != BL_NORMAL) {
                char txt[128];
                bl_reason_format(&why, txt, sizeof txt);
                chaos_fail(r, "the scenario process died: %s", txt);
            }
            bl_msg_free(down);
        }
        watch(NULL, 0);
    }
    int64_t ran_ms = chaos_ms() - r->start_ms;
    size_t peak = rss_peak();

    /* Back to the baseline: wait (bounded) for the quantities to come back. */
    snapshot now;
    int64_t t0 = chaos_ms();
    for (;;) {
        measure(&now);
        if (counts_back(&base, &now) || chaos_ms() - t0 > 10000) break;
        if (getenv("CHAOS_DEBUG"))
            fprintf(stderr, "debug: settling: fds %d inflight %llu procs %zu timers %llu\n",
                    now.fds, (unsigned long long)now.inflight, now.procs,
                    (unsigned long long)timers_sum(&now));
        bl_sleep(20);
    }
    int64_t settle_ms = chaos_ms() - t0;
    if (now.fds != base.fds) chaos_fail(r, "descriptors: %d before, %d after", base.fds, now.fds);
    if (now.inflight != 0)
        chaos_fail(r, "bl_io_inflight: %llu after (0 expected)", (unsigned long long)now.inflight);
    if (now.procs != base.procs)
        chaos_fail(r, "processes: %zu before, %zu after", base.procs, now.procs);
    if (!timers_back(&base, &now))
        chaos_fail(r, "timers: %llu before, %llu after (all schedulers)",
                   (unsigned long long)timers_sum(&base), (unsigned long long)timers_sum(&now));

    /* A quiet second, then the resident set: the slabs trim spans empty for 1 s. */
    size_t bound = base.rss + ((size_t)CHAOS_RSS_BOUND_MIB << 20);
    bl_sleep(1100);
    snapshot quiet; /* its counts are not checked again: only its RSS is used */
    measure(&quiet);
    for (int i = 0; i < 10 && CHAOS_RSS_BOUND_MIB && quiet.rss > bound; i++) {
        bl_sleep(300);
        measure(&quiet);
    }
    now.rss = quiet.rss;
    if (CHAOS_RSS_BOUND_MIB && now.rss > bound)
        chaos_fail(r, "resident set %.1f MiB after a quiet second: over the bound %.1f MiB",
                   mib(now.rss), mib(bound));
    /* And overall: the run as a whole does not creep up scenario after scenario. */
    size_t bound0 = rss0 + ((size_t)CHAOS_RSS_RUN_MIB << 20);
    if (CHAOS_RSS_RUN_MIB && now.rss > bound0)
        chaos_fail(r, "resident set %.1f MiB: over the run's bound %.1f MiB (first baseline + %d)",
                   mib(now.rss), mib(bound0), CHAOS_RSS_RUN_MIB);
    chaos_add(r, crep, atomic_load(&crash_reports) - reports0);

    int failures = atomic_load(&r->failures);
    printf("%-14s %5.1f s | ", sc->name, (double)ran_ms / 1000.0);
    print_counters(r, CHAOS_WORK, "work ");
    print_counters(r, CHAOS_FAULT, "faults ");
    print_counters(r, CHAOS_INFO, "");
    printf("fds %d->%d inflight %llu procs %zu->%zu timers %llu->%llu (settled in %lld ms) "
           "rss %.1f/%.1f/%.1f MiB (%s) | %s\n",
           base.fds, now.fds, (unsigned long long)now.inflight, base.procs, now.procs,
           (unsigned long long)timers_sum(&base), (unsigned long long)timers_sum(&now),
           (long long)settle_ms, mib(base.rss), mib(peak > base.rss ? peak : base.rss),
           mib(now.rss), bound_text(), failures ? "FAIL" : "ok");
    if (r->notes_len) fputs(r->notes, stdout);
    if (failures)
        printf("  FAIL %s: %d failure(s), first: %s\n", sc->name, failures,
               r->first[0] ? r->first : "?");
    fflush(stdout);
    free(r);
    return failures ? 1 : 0;
}

static void chaos_main(void *arg)
{
    options *o = arg;
    snapshot s0;
    measure(&s0);
    for (unsigned i = 0; i < NSCEN; i++) {
        if (o->only && strcmp(o->only, scenarios[i].name) != 0) continue;
        o->ran++;
        o->failed += run_one(&scenarios[i], i, o, s0.rss);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: beamline_chaos [--seconds S] [--seed N] [--only NAME] [--list]\n"
               "  --seconds S  each scenario's duration (default 10)\n"
               "  --seed N     replay the random choices of an earlier run\n"
               "  --only NAME  run one scenario (see --list)\n");
}

int main(int argc, char **argv)
{
    options o = {.seconds = 10.0};
    bool seeded = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0) {
            for (unsigned k = 0; k < NSCEN; k++)
                printf("%-14s %s\n", scenarios[k].name, scenarios[k].what);
            return 0;
        } else if (strcmp(a, "--seconds") == 0 && v) {
            char *end;
            o.seconds = strtod(v, &end);
            if (*end || o.seconds <= 0 || o.seconds > 3600) {
                fprintf(stderr, "beamline_chaos: bad --seconds %s\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            char *end;
            o.seed = strtoull(v, &end, 0);
            if (*end) {
                fprintf(stderr, "beamline_chaos: bad --seed %s\n", v);
                return 2;
            }
            seeded = true;
            i++;
        } else if (strcmp(a, "--only") == 0 && v) {
            o.only = v;
            bool known = false;
            for (unsigned k = 0; k < NSCEN; k++) known |= strcmp(v, scenarios[k].name) == 0;
            if (!known) {
                fprintf(stderr, "beamline_chaos: no scenario %s (see --list)\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o.seed = splitmix(((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
                          (uint64_t)getpid());
    }
    printf("beamline_chaos: build %s, seed %llu (replay with --seed %llu), %.1f s per "
           "scenario, rss %s\n",
           CHAOS_BUILD, (unsigned long long)o.seed, (unsigned long long)o.seed, o.seconds,
           bound_text());
    fflush(stdout);

    bl_config cfg = {0};
    if (bl_config_from_env(&cfg) != 0) {
        fprintf(stderr, "beamline_chaos: %s\n", bl_runtime_error());
        return 2;
    }
    if (!cfg.schedulers) cfg.schedulers = 2;
    cfg.log_handler = count_report;
    int rc = bl_main(&cfg, chaos_main, &o);
    if (rc != 0) {
        fprintf(stderr, "beamline_chaos: bl_main: %d (%s)\n", rc, bl_runtime_error());
        return 2;
    }
    printf("beamline_chaos: %d scenario(s), %d failed (seed %llu)\n", o.ran, o.failed,
           (unsigned long long)o.seed);
    return o.failed ? 1 : 0;
}
