/*
 * io/sleep.c - bl_sleep: a process waits on its scheduler's timer wheel.
 *
 * The process parks SLEEPING, a state that messages do not end, so a
 * stream of messages costs the sleeper nothing until its deadline.
 */
#include <errno.h>

#include "proc/proc.h"

int bl_sleep(int64_t ms)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (ms < 0) return -EINVAL;
    if (ms == 0) return bl_yield();
    p->timer_fired = false;
    int rc = bl__sched_arm_timer(p, ms, BL_ST_SLEEPING);
    if (rc) return rc;
    p->seq++;
    /* A signal that is not fatal (a trapped exit, a link request) wakes the
     * sleeper, which acts on it and sleeps on in the same wait: the timer
     * armed above still names it. */
    for (;;) {
        bl__park(p, BL_PARK_SLEEP);
        if (p->timer_fired || bl__meta_ended(bl__box_load(p).meta, p->seq)) break;
    }
    p->timer_fired = false;
    bl__sched_disarm_timer(p); /* frees an entry that fired while we were awake */
    return 0;
}
