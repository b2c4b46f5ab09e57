/*
 * sched/keep.c - idle handlers that keep their stacks a while.
 *
 * A handler process with nothing to do parks without a stack (BL_PARK_IDLE):
 * a million idle servers hold a million PCBs, not a million stacks.  The
 * next message then starts its loop afresh on a stack from the pool: a
 * stack to take, a first frame to build, and an entry through
 * bl__ctx_start, about 30 ns a message more than a process that waited on
 * its own stack (genserver_call_rtt: 197 against 168 ns).  A server that
 * just answered a call is usually called again soon, so up to
 * BL_KEEP_MAX idle handlers per scheduler park keeping their stacks
 * (BL_PARK_WAIT), and the scheduler takes the stacks back:
 *   - from those parked since the turn before last, at each housekeeping
 *     turn (every 64 picks): a slot goes to a handler that is busy now;
 *   - from all of them when it is about to sleep, having found nothing to
 *     do during its spin: an idle runtime holds no kept stack.
 * The handler whose next message comes first resumes where it parked and
 * forgets its slot (bl__sched_unkeep, from switch_in).
 *
 * Taking a stack back is a wake-up, by the rules of core/wait.h: the
 * scheduler ends the handler's wait as a timer would (bl__wait_end).  Only
 * when that wins is the handler parked and the scheduler's alone; its
 * stack goes back to the pool and it parks again without one, in a new
 * wait, exactly as BL_PARK_IDLE leaves it.  When a message or a signal won
 * (the handler is queued or running, here or elsewhere), or the handler has
 * moved on to another wait or died, the entry is just dropped: the PCB is
 * never unmapped, and the wait's generation and sequence tell.  So no
 * wake-up is lost and no stack is taken from a running process.
 */
#include "sched/sched.h"

void bl__sched_shed(bl_sched *s, bool all)
{
    for (uint32_t used = s->kept_used; used; used &= used - 1) {
        unsigned i = (unsigned)__builtin_ctz(used);
        if (!all && s->turns - s->kept[i].turn < 2) continue;
        s->kept_used &= ~(1u << i);
        bl_proc *p = s->kept[i].p;
        if (bl__wait_end(p, s->kept[i].meta) != BL_WAIT_WOKEN) continue;
        /* Parked in its kept wait, and ours now (ACTIVE): as BL_PARK_IDLE. */
        BL_STAT_ADD(s, stack_sheds, 1);
        p->seq++;
        bl__sched_park_stackless(s, p);
    }
}
