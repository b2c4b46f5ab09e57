/*
 * sched/outbox.c - the running process's held messages (sched.h's outbox).
 *
 * A sender whose push found its receiver behind, or whose receiver waits in
 * this scheduler's runnext (proc/process.c bl__push), holds its next
 * messages to that receiver here; this pushes them in one CAS.  Called by
 * bl__push and by the scheduler's switch_out.
 */
#include "core/msg.h"
#include "core/wait.h"
#include "sched/sched.h"

void bl__sched_outbox_flush(bl_sched *s, bool keep)
{
    bl_proc *p = s->outbox.p;
    bl_msg *m = s->outbox.newest, *oldest = s->outbox.oldest;
    int r = m ? bl__box_push_chain(p, s->outbox.to, m, oldest, false) : BL_PUSH_QUEUED;
    s->outbox.newest = s->outbox.oldest = NULL;
    s->outbox.n = 0;
    /* A receiver queued here stays queued while the sender runs (bl__push). */
    if (!keep || (r != BL_PUSH_BEHIND && !(s->outbox.local && r == BL_PUSH_QUEUED)))
        s->outbox.p = NULL;
    if (r == BL_PUSH_DEAD) {
        /* Gone meanwhile: dropped, as each would have been alone.  The
         * oldest's next may point into the dead inbox (a CAS that failed). */
        oldest->next = NULL;
        bl__msg_drop_chain(&s->slab, m);
    } else if (r == BL_PUSH_WOKEN) {
        bl__sched_ready(p, BL_READY_NEXT);
    }
}
