/*
 * Processes that park near the bottom of their stacks, for the tests of
 * what the scheduler does around a parked process's saved stack pointer
 * (test_tmo.c, test_handoff.c).  A calibrating process first measures how
 * deep a wait goes below the frame that calls it; a deep process then
 * recurses until a wait from there parks about a chosen margin above the
 * bottom of its stack.
 */
#ifndef BL_TEST_DEEP_STACK_H
#define BL_TEST_DEEP_STACK_H

#include "bl_test.h"
#include "sched/sched.h"

/* What a wait takes below the frame that calls it (bytes): set by deep_measure. */
static long deep_wait_depth;

/* Receives anything, waiting up to ms: bl_recv's result. */
static __attribute__((noinline)) int deep_wait(int64_t ms)
{
    bl_msg *m = NULL;
    int r = bl_recv(&m, NULL, NULL, ms, 0);
    bl_msg_free(m);
    return r;
}

/* The calling process: bytes from the bottom of its stack to the stack
 * pointer saved when it last parked (not overwritten since it woke). */
static inline long deep_saved_low(void)
{
    bl_proc *p = bl__self();
    return (long)((char *)p->ctx.sp - (char *)p->stack->lo);
}

/* Frame addresses, not those of locals: ASan may keep locals off the stack. */
static int deep_recurse(const char *lo, long margin, int64_t ms, int depth)
{
    volatile char pad[32];
    pad[0] = (char)depth;
    if ((const char *)__builtin_frame_address(0) - lo > deep_wait_depth + margin)
        return deep_recurse(lo, margin, ms, depth + 1) + pad[0] - (char)depth;
    return deep_wait(ms);
}

/* The calling process recurses, a few dozen bytes a frame, until a wait
 * from there parks about margin bytes above the bottom of its stack, and
 * waits ms there: bl_recv's result. */
static inline int deep_down(long margin, int64_t ms)
{
    return deep_recurse(bl__self()->stack->lo, margin, ms, 0);
}

typedef struct deep_cal {
    bl_pid owner;
    uint32_t tag;
} deep_cal;

/* Process: parks once for 1 ms and sends its owner the depth of that wait
 * (a long, tagged c->tag). */
static void deep_calibrate(void *arg)
{
    const deep_cal *c = arg;
    const char *frame = __builtin_frame_address(0);
    deep_wait(1);
    long depth = (long)(frame - (const char *)bl__self()->ctx.sp);
    bl_send(c->owner, c->tag, &depth, sizeof depth);
}

/* Process only: measures deep_wait_depth with a calibrating process spawned
 * with o, whose answer comes tagged tag; false if none came within 10 s. */
static inline bool deep_measure(const bl_spawn_opts *o, uint32_t tag)
{
    static deep_cal c;
    c = (deep_cal){bl_self(), tag};
    if (bl_spawn(NULL, deep_calibrate, &c, o) != 0) return false;
    bl_msg *m = bl_test_recv_tag(tag, 10000);
    if (!m) return false;
    memcpy(&deep_wait_depth, m->data, sizeof deep_wait_depth);
    bl_msg_free(m);
    return true;
}

#endif /* BL_TEST_DEEP_STACK_H */
