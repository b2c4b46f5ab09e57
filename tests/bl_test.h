/*
 * tests/bl_test.h - running test bodies inside the runtime.
 *
 * Criterion's cr_assert unwinds with longjmp, which must not happen on a
 * process stack or a scheduler thread.  Code running in processes records
 * failures with BL_CHECK instead; the test then asserts on its own thread,
 * after bl_main has returned, that nothing failed.
 */
#ifndef BL_TEST_H
#define BL_TEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "beamline.h"
#include "core/ctx.h"

/* Sanitizer builds run the same tests on smaller numbers. */
#if defined(BL_TSAN)
#define BL_SCALE(n) ((n) / 50 > 0 ? (n) / 50 : 1)
#elif defined(BL_ASAN)
#define BL_SCALE(n) ((n) / 10 > 0 ? (n) / 10 : 1)
#else
#define BL_SCALE(n) (n)
#endif

static _Atomic int bl_test_failures;
static char bl_test_first[512];

#define BL_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond) && atomic_fetch_add(&bl_test_failures, 1) == 0)                                \
            snprintf(bl_test_first, sizeof bl_test_first, "%s:%d: %s", __FILE__, __LINE__, #cond); \
    } while (0)

#define BL_CHECK_EQ(a, b)                                                                          \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b && atomic_fetch_add(&bl_test_failures, 1) == 0)                               \
            snprintf(bl_test_first, sizeof bl_test_first, "%s:%d: %s == %s (%lld vs %lld)",        \
                     __FILE__, __LINE__, #a, #b, _a, _b);                                          \
    } while (0)

/* Runs fn(arg) as the main process of a fresh runtime and asserts success. */
static inline void bl_test_run(const bl_config *cfg, bl_entry_fn fn, void *arg)
{
    atomic_store(&bl_test_failures, 0);
    bl_test_first[0] = 0;
    bl_config c = {0};
    if (cfg) c = *cfg;
    if (!c.schedulers) c.schedulers = 2;
    int rc = bl_main(&c, fn, arg);
    cr_assert_eq(rc, 0, "bl_main: %d (%s)", rc, bl_runtime_error());
    cr_assert_eq(atomic_load(&bl_test_failures), 0, "%d failure(s), first: %s",
                 atomic_load(&bl_test_failures), bl_test_first);
}

/* Receives a message with the given tag, waiting up to ms. */
static inline bl_msg *bl_test_recv_tag(uint32_t tag, int64_t ms)
{
    bl_msg *m = NULL;
    return bl_recv(&m, bl_match_tag, &tag, ms, 0) == 0 ? m : NULL;
}

/*
 * A process: answers each message tagged (uint32_t)(uintptr_t)arg with an
 * empty one of the same tag, to its sender; returns at any other message.
 */
static inline void bl_test_echo(void *arg)
{
    uint32_t echoed = (uint32_t)(uintptr_t)arg;
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        bl_pid from = m->from;
        uint32_t tag = m->tag;
        bl_msg_free(m);
        if (tag != echoed) return;
        bl_send(from, echoed, NULL, 0);
    }
}

/* Process only: kills pid and waits (bounded) for its DOWN; the DOWN's reason kind (-1: none). */
static inline int bl_test_kill_wait(bl_pid pid)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(pid, &kill), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    BL_CHECK(m && m->tag == BL_TAG_DOWN);
    bl_reason why = {0};
    int kind = m && bl_msg_reason(m, &why) == 0 ? (int)why.kind : -1;
    bl_msg_free(m);
    return kind;
}

/* Milliseconds on the monotonic clock, for bounding waits in time, not in rounds. */
static inline int64_t bl_test_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bl_test_hold's process: keeps its scheduler without calling the runtime while *hold
 * is 1 (at most 10 s). */
static inline void bl_test_hog(void *arg)
{
    _Atomic int *hold = arg;
    atomic_store(hold, 1);
    for (int64_t until = bl_test_ms() + 10000; atomic_load(hold) == 1 && bl_test_ms() < until;)
        __builtin_ia32_pause();
}

/*
 * Process only, from another scheduler: holds scheduler `sched` (1-based) with a process
 * bound there that never calls the runtime, so that whatever is spawned or woken there
 * does not run (no other scheduler can steal it: it waits in the inject queue) until
 * bl_test_release.  True once it holds (bounded wait).
 */
static inline bool bl_test_hold(int sched, _Atomic int *hold)
{
    atomic_store(hold, 0);
    bl_spawn_opts o = {.scheduler = sched, .bound = true};
    if (bl_spawn(NULL, bl_test_hog, (void *)hold, &o) != 0) return false;
    for (int64_t until = bl_test_ms() + 5000; atomic_load(hold) == 0 && bl_test_ms() < until;)
        bl_yield();
    return atomic_load(hold) == 1;
}

static inline void bl_test_release(_Atomic int *hold)
{
    atomic_store(hold, 2);
}

/* bl_test_run_bound's process. */
typedef struct bl_test_bound {
    bl_entry_fn fn; /* the test's body */
    int sched;      /* where it runs for good (1-based) */
} bl_test_bound;

static inline void bl_test_bound_main(void *arg)
{
    bl_test_bound *b = arg;
    bl_spawn_opts o = {.scheduler = b->sched, .bound = true};
    bl_pid body;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&body, &ref, b->fn, NULL, &o), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 60000, 0), 0);
    bl_reason why = {.kind = BL_KILLED};
    if (m) BL_CHECK_EQ(bl_msg_reason(m, &why), 0);
    BL_CHECK_EQ(why.kind, BL_NORMAL);
    bl_msg_free(m);
}

/* bl_test_run with two schedulers, fn running in a process bound to scheduler sched (so
 * that it can hold the other one, bl_test_hold); it must end normally. */
static inline void bl_test_run_bound(int sched, bl_entry_fn fn)
{
    bl_config c = {.quiet = true, .schedulers = 2};
    bl_test_bound b = {fn, sched};
    bl_test_run(&c, bl_test_bound_main, &b);
}

/* Timers on scheduler i's wheel as of its last turn (UINT64_MAX: no such scheduler). */
static inline uint64_t bl_test_timers_on(unsigned i)
{
    bl_scheduler_stats st;
    return bl_scheduler_stats_get(i, &st) == 0 ? st.timers : UINT64_MAX;
}

/*
 * Process only: yields until cond holds or ms milliseconds pass, and gives
 * cond's last value.  Bounded in time, not in yields: on a loaded machine a
 * count of yields can run out before the other side has run at all.
 */
#define BL_TEST_UNTIL(cond, ms)                                                                    \
    ({                                                                                             \
        int64_t bl_until_end_ = bl_test_ms() + (ms);                                               \
        while (!(cond) && bl_test_ms() < bl_until_end_) bl_yield();                                \
        (cond);                                                                                    \
    })

/* Open descriptors of this process (entries of /proc/self/fd), -1 on failure. */
static inline int bl_test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

#endif /* BL_TEST_H */
