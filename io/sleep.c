/*
 * io/sleep.c - bl_sleep: a process waits on its scheduler's timer wheel.
 *
 * The process parks SLEEPING, a state that messages do not end, so a
 * stream of messages costs the sleeper nothing until its deadline.
 */
#include <errno.h>

#include "sched/sched.h"

int bl_sleep(int64_t ms)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (ms < 0) return -EINVAL;
    if (ms == 0) return bl_yield();
    p->timer_fired = false;
    int rc = bl__sched_arm_timer(p, bl__now_ns() + (uint64_t)ms * 1000000u, BL_ST_SLEEPING);
    if (rc) return rc;
    p->seq++;
    bl__sched_park(p, BL_PARK_SLEEP);
    p->timer_fired = false;
    return 0;
}
