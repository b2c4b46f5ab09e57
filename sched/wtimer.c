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
 *
 * An entry goes into the wheel only at the owner's next timer turn
 * (file_unfiled): most waits end long before their timeout, and one that
 * ends before the turn costs the wheel nothing.  Every reader of the wheel
 * (the turn's expiry, the idle loop's next deadline) runs after a turn.
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

/*
 * Owner: puts the wait timers armed since the last turn into the wheel,
 * due their timeout after now, and frees those whose wait ended meanwhile
 * on this thread.  One abandoned from elsewhere is filed like an armed one:
 * it is on (or about to join) the abandoned list, whose drain, after this,
 * unlinks and frees it.
 */
static void file_unfiled(bl_sched *s, uint64_t now)
{
    bl_timer *t = s->unfiled;
    s->unfiled = NULL;
    while (t) {
        bl_timer *next = t->next;
        bl_tentry *e = container_of(t, bl_tentry, t);
        /* Relaxed: CANCELLED is stored by this thread only. */
        if (atomic_load_explicit(&e->state, memory_order_relaxed) == BL_TENTRY_CANCELLED) {
            bl__slab_free_local(&s->slab, 0, e);
        } else {
            t->deadline += now;
            bl__twheel_insert(&s->wheel, t);
        }
        t = next;
    }
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

/* Longest timeout a wait timer takes (ns, about 146 years): added to a
 * monotonic now, it cannot wrap. */
#define TIMEOUT_MAX_NS ((uint64_t)1 << 62)

int bl__sched_arm_timer(bl_proc *p, int64_t ms, unsigned st)
{
    bl_sched *s = p->sched;
    bl_tentry *e = bl__slab_alloc(&s->slab, 0);
    if (!e) return -ENOMEM;
    _Static_assert(sizeof(bl_tentry) <= 64, "timer entries use the 64-byte slab class");
    e->t.slot = BL_TIMER_UNFILED;
    e->t.kind = BL_TIMER_WAIT;
    e->t.deadline =
        (uint64_t)ms < TIMEOUT_MAX_NS / 1000000u ? (uint64_t)ms * 1000000u : TIMEOUT_MAX_NS;
    e->p = p;
    e->meta = bl__meta(p->gen, p->seq + 1, st);
    e->owner = s->index;
    atomic_store_explicit(&e->state, BL_TENTRY_ARMED, memory_order_relaxed);
    p->tmr = e;
    e->t.next = s->unfiled;
    s->unfiled = &e->t;
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
        if (atomic_load_explicit(&e->state, memory_order_relaxed) == BL_TENTRY_ARMED) {
            if (e->t.slot == BL_TIMER_UNFILED) {
                /* Still on the unfiled list: the turn frees it. */
                atomic_store_explicit(&e->state, BL_TENTRY_CANCELLED, memory_order_relaxed);
                return;
            }
            bl__twheel_cancel(&owner->wheel, &e->t);
        }
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
    /* Filed first: an abandoned entry may still be unfiled. */
    if (s->unfiled) file_unfiled(s, now);
    /* Relaxed look: an entry pushed after it waits for the next turn. */
    if (atomic_load_explicit(&s->abandoned, memory_order_relaxed)) drain_abandoned(s);
    bl__twheel_expire(&s->wheel, now, timer_fire, s);
    /* Relaxed store: a statistic other threads read racily. */
    atomic_store_explicit(&s->st.timers, s->wheel.count, memory_order_relaxed);
}
