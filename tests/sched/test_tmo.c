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
/* What a wait takes below the frame that calls it (bytes), measured first. */
static long wait_depth;

static __attribute__((noinline)) int wait_here(int64_t ms)
{
    bl_msg *m = NULL;
    int r = bl_recv(&m, NULL, NULL, ms, 0);
    if (m) bl_msg_free(m);
    return r;
}

static long saved_low(void)
{
    bl_proc *p = bl__self();
    return (long)((char *)p->ctx.sp - (char *)p->stack->lo);
}

/* Recurses, a few dozen bytes a frame, until a wait from here parks a few
 * hundred bytes above the stack's bottom.  Frame addresses, not those of
 * locals: ASan may keep locals off the stack. */
static int deep(const char *lo, int depth)
{
    volatile char pad[32];
    pad[0] = (char)depth;
    if ((const char *)pad - lo > wait_depth + 320)
        return deep(lo, depth + 1) + pad[0] - (char)depth;
    return wait_here(WAIT_MS);
}

static void calibrate(void *arg)
{
    (void)arg;
    const char *frame = __builtin_frame_address(0);
    wait_here(1);
    long depth = (long)(frame - (const char *)bl__self()->ctx.sp);
    bl_send(owner, T_WOKE, &depth, sizeof depth);
}

static void sleeper(void *arg)
{
    int r = arg ? deep(bl__self()->stack->lo, 0) : wait_here(WAIT_MS);
    /* The stack pointer saved when it parked: not overwritten since it woke. */
    woke w = {r == -ETIMEDOUT, arg ? saved_low() : 0};
    bl_send(owner, T_WOKE, &w, sizeof w);
}

static void tmo_main(void *arg)
{
    (void)arg;
    owner = bl_self();
    /* All on the first scheduler (index 0 in its statistics), with the smallest stacks: their
     * timers fire in the same turns, so the timeout list holds many at once. */
    bl_spawn_opts o = {.scheduler = 1, .bound = true, .stack_size = 16384};
    BL_CHECK_EQ(bl_spawn(NULL, calibrate, NULL, &o), 0);
    bl_msg *m = bl_test_recv_tag(T_WOKE, 10000);
    BL_CHECK(m != NULL);
    if (!m) return;
    memcpy(&wait_depth, m->data, sizeof wait_depth);
    bl_msg_free(m);
    BL_CHECK(wait_depth > 0 && wait_depth < 8192);

    bl_scheduler_stats a, b;
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &a), 0);
    for (int i = 0; i < PROCS; i++)
        BL_CHECK_EQ(bl_spawn(NULL, sleeper, (void *)(uintptr_t)(DEEP_ONES & i), &o), 0);
    int timed_out = 0;
    long lowest = LONG_MAX, highest = 0;
    for (int i = 0; i < PROCS; i++) {
        m = bl_test_recv_tag(T_WOKE, 10000);
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
        cr_log_info("wait depth %ld, deep ones parked %ld-%ld bytes above the bottom", wait_depth,
                    lowest, highest);
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
