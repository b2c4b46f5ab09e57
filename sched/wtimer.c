/*
 * sched/wtimer.c - wait timers: the timers that end a receive or a sleep.
 *
 * A process arms one on its scheduler's wheel before it parks
 * (bl__sched_arm_timer); the wheel fires it on that scheduler, which ends
 * the wait by the rules of core/wait.h and queues the process on its
 * timeout list (bl__sched_tmo_push).  A process that stops waiting first
 * cancels it: at once on the arming scheduler, or, once stolen elsewhere,
 * by handing it back through the owner's abandoned list (the state word
 * of bl_tentry, sched/sched.h, settles the race with a firing).
 */
#include "core/wait.h"
#include "sched/hooks.h"
#include "sched/sched.h"

#include <errno.h>

static void timer_fire(bl_timer *t, void *ctx)
{
    bl_sched *s = ctx;
    if (t->kind != BL_TIMER_WAIT) {
        bl__hook_timer_fire(s, t);
        return;
    }
    bl_tentry *e = container_of(t, bl_tentry, t);
    bl_proc *p = e->p;
    if (bl__wait_end(p, e->meta) == BL_WAIT_WOKEN) {
        /* p is parked and now ours to queue: it will not look at e again. */
        p->tmr = NULL;
        p->timer_fired = true;
        bl__slab_free_local(&s->slab, 0, e);
        BL_STAT_ADD(s, timers_fired, 1);
        bl__sched_tmo_push(s, p);
        return;
    }
    /* Lost: the process still points at e.  Acq_rel: pairs with its
     * exchange.  If it abandoned e first, e is (or is about to be) on our
     * abandoned list, and drain_abandoned frees it. */
    (void)atomic_exchange_explicit(&e->state, BL_TENTRY_FIRED, memory_order_acq_rel);
}

/* Owner: unlinks and frees the wait timers processes elsewhere gave up on. */
static void drain_abandoned(bl_sched *s)
{
    /* Acquire: pairs with the release push in bl__sched_disarm_timer. */
    bl_tentry *e = atomic_exchange_explicit(&s->abandoned, NULL, memory_order_acquire);
    while (e) {
        bl_tentry *next = e->anext;
        bl__twheel_cancel(&s->wheel, &e->t); /* a no-op if it fired meanwhile */
        bl__slab_free_local(&s->slab, 0, e);
        e = next;
    }
}

int bl__sched_arm_timer(bl_proc *p, uint64_t deadline_ns, unsigned st)
{
    bl_sched *s = p->sched;
    bl_tentry *e = bl__slab_alloc(&s->slab, 0);
    if (!e) return -ENOMEM;
    _Static_assert(sizeof(bl_tentry) <= 64, "timer entries use the 64-byte slab class");
    e->t.slot = BL_TIMER_UNLINKED;
    e->t.kind = BL_TIMER_WAIT;
    e->t.deadline = deadline_ns;
    e->p = p;
    e->meta = bl__meta(p->gen, p->seq + 1, st);
    e->owner = s->index;
    atomic_store_explicit(&e->state, BL_TENTRY_ARMED, memory_order_relaxed);
    p->tmr = e;
    bl__twheel_insert(&s->wheel, &e->t);
    return 0;
}

void bl__sched_disarm_timer(bl_proc *p)
{
    bl_tentry *e = p->tmr;
    if (!e) return;
    p->tmr = NULL;
    bl_sched *owner = bl__rt->scheds[e->owner];
    if (owner == bl__tls_sched) {
        /* Same thread as the wheel: nothing can race with us. */
        if (atomic_load_explicit(&e->state, memory_order_relaxed) == BL_TENTRY_ARMED)
            bl__twheel_cancel(&owner->wheel, &e->t);
        bl__slab_free_local(&owner->slab, 0, e);
        return;
    }
    /* Stolen since arming: only the owner may touch its wheel. */
    if (atomic_exchange_explicit(&e->state, BL_TENTRY_ABANDONED, memory_order_acq_rel) ==
        BL_TENTRY_FIRED) {
        bl__slab_free_remote(owner->index, 0, e); /* fired: nothing of it is left there */
        return;
    }
    /* Still armed: the owner unlinks it at its next turn instead of keeping
     * it until its deadline.  Release: the owner that takes the list sees
     * the link.  No wake-up: a sleeping owner holds the entry only until its
     * wheel or its next round, and a wake-up per abandoned timer would cost
     * more than the entry. */
    bl_tentry *head = atomic_load_explicit(&owner->abandoned, memory_order_relaxed);
    do {
        e->anext = head;
    } while (!atomic_compare_exchange_weak_explicit(&owner->abandoned, &head, e,
                                                    memory_order_release, memory_order_relaxed));
}

void bl__sched_run_timers(bl_sched *s, uint64_t now)
{
    /* Relaxed look: an entry pushed after it waits for the next turn. */
    if (atomic_load_explicit(&s->abandoned, memory_order_relaxed)) drain_abandoned(s);
    bl__twheel_expire(&s->wheel, now, timer_fire, s);
    /* Relaxed store: a statistic other threads read racily. */
    atomic_store_explicit(&s->st.timers, s->wheel.count, memory_order_relaxed);
}
