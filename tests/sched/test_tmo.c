/*
 * Processes their timers woke, taken from the timeout list (sched.c): as one
 * is taken, the scheduler prefetches 512 bytes either side of the next one's
 * saved stack pointer, which may lie in the guard page under its stack or
 * past the top of the last stack of a mapping.  A prefetch never faults
 * where a load would: a burst of timers on one scheduler wakes processes
 * parked near both ends of small stacks, and every one must wake, through
 * its timer.
 */
#include <limits.h>

#include "bl_test.h"
#include "deep_stack.h"
#include "sched/sched.h"

enum { T_WOKE = 1, PROCS = 256, WAIT_MS = 30 };

/* The sanitizers' own calls on a process stack go deeper than a wait
 * measured beforehand: there, every sleeper parks near the top. */
#if defined(BL_ASAN) || defined(BL_TSAN)
#define DEEP_ONES 0
#else
#define DEEP_ONES 1
#endif

typedef struct woke {
    int timed_out; /* its receive ended with -ETIMEDOUT */
    long low;      /* deep ones: bytes from the bottom of the stack to the saved stack pointer */
} woke;

static bl_pid owner;

static void sleeper(void *arg)
{
    /* The deep ones park a few hundred bytes above the bottom. */
    int r = arg ? deep_down(320, WAIT_MS) : deep_wait(WAIT_MS);
    woke w = {r == -ETIMEDOUT, arg ? deep_saved_low() : 0};
    bl_send(owner, T_WOKE, &w, sizeof w);
}

static void tmo_main(void *arg)
{
    (void)arg;
    owner = bl_self();
    /* All on the first scheduler (index 0 in its statistics), with the smallest stacks: their
     * timers fire in the same turns, so the timeout list holds many at once. */
    bl_spawn_opts o = {.scheduler = 1, .bound = true, .stack_size = 16384};
    bool measured = deep_measure(&o, T_WOKE);
    BL_CHECK(measured);
    if (!measured) return;
    BL_CHECK(deep_wait_depth > 0 && deep_wait_depth < 8192);

    bl_scheduler_stats a, b;
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &a), 0);
    for (int i = 0; i < PROCS; i++)
        BL_CHECK_EQ(bl_spawn(NULL, sleeper, (void *)(uintptr_t)(DEEP_ONES & i), &o), 0);
    int timed_out = 0;
    long lowest = LONG_MAX, highest = 0;
    for (int i = 0; i < PROCS; i++) {
        bl_msg *m = bl_test_recv_tag(T_WOKE, 10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        woke w;
        memcpy(&w, m->data, sizeof w);
        timed_out += w.timed_out;
        if (w.low && w.low < lowest) lowest = w.low;
        if (w.low > highest) highest = w.low;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &b), 0);
    if (DEEP_ONES)
        cr_log_info("wait depth %ld, deep ones parked %ld-%ld bytes above the bottom",
                    deep_wait_depth, lowest, highest);
    BL_CHECK_EQ(timed_out, PROCS);
    BL_CHECK(b.timers_fired - a.timers_fired >= PROCS);
    /* The deep ones parked close enough to the guard page for the prefetch to reach into it. */
    if (DEEP_ONES) BL_CHECK(highest > 0 && highest < 512);
}

Test(tmo, timer_woken_processes_near_both_ends_of_their_stacks)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, tmo_main, NULL);
}
