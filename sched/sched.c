/*
 * sched/sched.c - the scheduler loop: picking the next process, running
 * it, acting on why it came back, stealing, and sleeping in the ring.
 *
 * Order of picking (cheapest and most local first, with guards against
 * starvation):
 *   1. processes woken or spawned from other threads (the inject queue) join
 *      the local queues first; with nothing else local, the oldest runs now;
 *   2. the max, then the high lane;
 *   3. every 61st round, the overflow list;
 *   4. normal processes whose timer fired (a deadline is a promise);
 *   5. one pick in eight, a low process, when one waits;
 *   6. runnext (a process just woken by a local message) if the slice allows;
 *   7. the local ring, then the overflow list, then the low lane;
 *   8. steal from the other schedulers in topology order.
 * Runnext when 1-5 have nothing, the usual pick while two processes hand
 * each other the core, is found by one look at each (next_proc) before the
 * walk through them (next_proc_slow).
 * Nothing found: spin for spin_us, then sleep in io_uring until the next
 * timer or a wake-up.
 */
#define _GNU_SOURCE
#include "core/wait.h"
#include "sched/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

__thread bl_sched *bl__tls_sched;

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Prefetches for writing the four 64-byte lines from a.  Spelled out, and
 * a function made of them always inlined (tmo_prefetch): GCC deletes a
 * loop, or a call, that does nothing but prefetch. */
#define PREFETCH4(a)                                                                               \
    do {                                                                                           \
        const char *a_ = (const char *)(a);                                                        \
        __builtin_prefetch(a_, 1);                                                                 \
        __builtin_prefetch(a_ + 64, 1);                                                            \
        __builtin_prefetch(a_ + 128, 1);                                                           \
        __builtin_prefetch(a_ + 192, 1);                                                           \
    } while (0)

/* ---- inject queue (Vyukov's intrusive MPSC queue) ---- */

static void inject_push(bl_sched *s, bl_proc *p)
{
    bl_qnode *n = &p->inject;
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* Seq_cst: orders the push before the `sleeping` check in
     * bl__sched_notify, against the sleeper's store-then-check (Dekker). */
    bl_qnode *prev = atomic_exchange_explicit(&s->inject_head, n, memory_order_seq_cst);
    /* Release: the consumer that follows the link sees the whole process. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/*
 * Owner only.  The queue holds work when the consumer's end rests on a real
 * node (one left there when a producer pushed while inject_pop was putting
 * the stub back: head is the stub again, yet that node waits), or when the
 * producers' end has moved off the stub.  Always inlined: next_proc's fast
 * path asks it at every direct switch.  This call and the envelope's
 * allocation (core/msg.c alloc_env), both left calls by GCC, cost
 * genserver_call_rtt about 5% (bench/pair.py, 18 of 20 pairs).
 */
static inline __attribute__((always_inline)) bool inject_nonempty(bl_sched *s)
{
    bl_qnode *tail = s->inject_tail;
    if (tail != &s->inject_stub) return true;
    /* Acquire: pairs with the producer's release of the link. */
    if (atomic_load_explicit(&tail->next, memory_order_acquire)) return true;
    /* Seq_cst: the sleeper's re-check after announcing it sleeps (Dekker
     * with inject_push and bl__sched_notify). */
    return atomic_load_explicit(&s->inject_head, memory_order_seq_cst) != &s->inject_stub;
}

static bl_proc *inject_pop(bl_sched *s)
{
    bl_qnode *tail = s->inject_tail;
    /* Acquire: pairs with the producer's release store of the link. */
    bl_qnode *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &s->inject_stub) {
        if (!next) return NULL;
        s->inject_tail = tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next) {
        s->inject_tail = next;
        return container_of(tail, bl_proc, inject);
    }
    if (tail != atomic_load_explicit(&s->inject_head, memory_order_acquire))
        return NULL; /* a producer is between its exchange and its link: retry later */
    /* tail is the last node: put the stub behind it so tail can be handed out. */
    atomic_store_explicit(&s->inject_stub.next, NULL, memory_order_relaxed);
    bl_qnode *prev =
        atomic_exchange_explicit(&s->inject_head, &s->inject_stub, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, &s->inject_stub, memory_order_release);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        s->inject_tail = next;
        return container_of(tail, bl_proc, inject);
    }
    return NULL;
}

/* ---- local queues ---- */

static void ovf_append(bl_sched *s, bl_proc *p)
{
    p->rq_next = NULL;
    if (s->ovf_tail)
        s->ovf_tail->rq_next = p;
    else
        s->ovf_head = p;
    s->ovf_tail = p;
    s->ovf_len++;
}

static bl_proc *ovf_pop(bl_sched *s)
{
    bl_proc *p = s->ovf_head;
    if (!p) return NULL;
    s->ovf_head = p->rq_next;
    if (!s->ovf_head) s->ovf_tail = NULL;
    s->ovf_len--;
    return p;
}

static void plist_push(bl_plist *l, bl_proc *p)
{
    p->rq_next = NULL;
    if (l->tail)
        l->tail->rq_next = p;
    else
        l->head = p;
    l->tail = p;
}

static bl_proc *plist_pop(bl_plist *l)
{
    bl_proc *p = l->head;
    if (p && !(l->head = p->rq_next)) l->tail = NULL;
    return p;
}

void bl__sched_services_soon(void)
{
    bl_runtime *rt = bl__rt;
    for (unsigned i = 0; i < rt->nsched; i++) {
        bl_sched *t = rt->scheds[i];
        /* Seq_cst: pairs with the sleeper's store of `sleeping` and its
         * look at the flag after it (Dekker, as inject_push), so either the
         * notify below sees it asleep or it sees the flag; and it is a
         * release for the scheduler that takes the flag (acquire): it sees
         * what the caller did before, a dead process's closed mailbox. */
        atomic_store_explicit(&t->services_due, 1, memory_order_seq_cst);
        bl__sched_notify(t);
    }
}

/*
 * The owner: runs the services' idle work if it was asked for
 * (bl__sched_services_soon), at most every SERVICES_GAP_NS: a sweep walks
 * all the ring's streams, and deaths that ask for one may come by the
 * thousand.  A request left for later is kept, and a sleep ends for it.
 */
#define SERVICES_GAP_NS 20000000u

static void services_if_due(bl_sched *s)
{
    /* Relaxed look first: the flag is rarely set. */
    if (!atomic_load_explicit(&s->services_due, memory_order_relaxed)) return;
    uint64_t now = bl__now_ns();
    if (now < s->services_at) return;
    s->services_at = now + SERVICES_GAP_NS;
    /* Acquire: pairs with the release in bl__sched_services_soon. */
    atomic_exchange_explicit(&s->services_due, 0, memory_order_acquire);
    bl__sched_services_idle(s);
}

static void wake_idle_peer(bl_sched *s);

/*
 * Owner: appends p to its priority's queue.  Normal processes go to the
 * stealable ring (spilling half to overflow when full); the other
 * priorities wait in owner-only lanes that next_proc serves by priority.
 */
static void local_push(bl_sched *s, bl_proc *p)
{
    if (p->prio != BL_PRIO_NORMAL) {
        plist_push(&s->lanes[p->prio], p);
        return;
    }
    /* A bound process waits where no thief looks. */
    if (p->bound) {
        ovf_append(s, p);
        return;
    }
    if (bl__runq_push(&s->rq, p) != 0) {
        bl_proc *half[BL_RUNQ_SIZE / 2];
        uint32_t n = bl__runq_take_half(&s->rq, half);
        for (uint32_t i = 0; i < n; i++) ovf_append(s, half[i]);
        if (bl__runq_push(&s->rq, p) != 0) ovf_append(s, p);
    }
    /* More work than this scheduler can run right now: let an idle peer steal.
     * Relaxed loads: a missed wake-up costs balance, never correctness. */
    if (atomic_load_explicit(&s->rt->nsleeping, memory_order_relaxed) > 0 &&
        atomic_load_explicit(&s->rt->nspinning, memory_order_relaxed) == 0 &&
        bl__runq_len(&s->rq) > 1)
        wake_idle_peer(s);
}

/*
 * Owner: p, runnable, runs next.  The displaced runnext goes to the back of
 * the queue; another priority than normal goes to its own lane.
 */
static void runnext_put(bl_sched *s, bl_proc *p)
{
    if (p->prio != BL_PRIO_NORMAL) {
        local_push(s, p);
        return;
    }
    if (s->runnext) local_push(s, s->runnext);
    s->runnext = p;
    /* It usually runs straight after the process that parks now: its saved
     * registers and the frames it returns through start on their way (a
     * ring of a thousand processes: 52 -> 48 ns a hop).  It is parked or
     * queued here, so nothing else touches them meanwhile. */
    if (p->stack) PREFETCH4(p->ctx.sp);
}

void bl__sched_notify(bl_sched *t)
{
    /* Seq_cst load: see inject_push.  The exchange makes sure exactly one
     * waker pays for the system call. */
    if (atomic_load_explicit(&t->sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(&t->sleeping, 0, memory_order_acq_rel)) {
        bl_sched *from = bl__tls_sched;
        if (from) BL_STAT_ADD(from, wakeups_sent, 1);
        bl__ring_send_wake(from, t);
    }
}

static void wake_idle_peer(bl_sched *s)
{
    const bl_topo_sched *ts = &s->rt->topo.sched[s->index];
    for (unsigned i = 0; i < ts->nvictims; i++) {
        bl_sched *v = s->rt->scheds[ts->victims[i]];
        if (atomic_load_explicit(&v->sleeping, memory_order_relaxed)) {
            bl__sched_notify(v);
            return;
        }
    }
}

/* s's lazy predecessor (bl__sched_switched leaves a waiter unparked, ACTIVE:
 * a sender only pushes, nobody queues it), settled as w, the process after
 * it, stops (bl__sched_handoff, the loop) or wakes another (bl__sched_ready,
 * so that it ends where w's wake-up would have put it: pushed from runnext
 * by the next one into the queue thieves take from).  Mail came meanwhile:
 * it never parked and runs next, woken by w as far as bl__sched_ready's
 * pairs go (else older wake-ups would look like the last).  None: it parks
 * now, and the park's CAS sees anything that comes from here on. */
static inline __attribute__((always_inline)) void settle_lazy(bl_sched *s, bl_proc *w)
{
    bl_proc *a = s->prev;
    s->prev = NULL;
    if (__atomic_load_n(&a->box.top, __ATOMIC_RELAXED)) {
        if (w) {
            a->waker = bl__proc_pid(w);
            w->wakee = bl__proc_pid(a);
        }
        atomic_store_explicit(&a->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
        runnext_put(s, a);
        return;
    }
    if (__builtin_expect(bl__wait_park(a, BL_ST_WAITING), 1)) return;
    bl_proc *q = bl__sched_current(s); /* in no process, as bl__sched_settle_prev */
    bl__sched_set_current(s, NULL);
    bl__sched_ready(a, BL_READY_NEXT);
    bl__sched_set_current(s, q);
}

static __attribute__((noinline)) void settle_lazy_before(bl_sched *s, bl_proc *w)
{
    settle_lazy(s, w);
}

void bl__sched_ready(bl_proc *p, unsigned flags)
{
    bl_sched *home = p->sched, *s = bl__tls_sched;
    /* A pair of processes that wake each other, each the other's last
     * wake-up, comes together: the one woken from the other's scheduler
     * moves there and waits in runnext (as Go's ready() puts the woken
     * goroutine in the waker's runnext).  On one core a hand-off is a
     * switch instead of two cache-line transfers and maybe a system call.
     * Only a pair: a server that clients on several cores wake in turn,
     * and that wakes them in turn, stays where it is, and so do they,
     * instead of piling onto one core that thieves then empty again.  Not
     * for bound processes, not for a process with a stream armed on its
     * ring (its data arrives there), not for wake-ups by I/O or timers
     * (they happen in no process, on the home scheduler), and not for
     * priorities other than normal, whose lanes are never stolen from. */
    bl_proc *w = s ? bl__sched_current(s) : NULL;
    /* A waiter left unparked here with mail first, as woken by w before p
     * (out of line: inlined, ring_1000x1000 was 6% slower side by side). */
    bl_proc *lazy = s ? s->prev : NULL;
    if (lazy && lazy != p && __atomic_load_n(&lazy->box.top, __ATOMIC_RELAXED))
        settle_lazy_before(s, w);
    if (w && (flags & BL_READY_NEXT)) {
        /* Wake-ups by message only: a spawn is no exchange yet. */
        bl_pid wpid = bl__proc_pid(w), ppid = bl__proc_pid(p);
        bool pair = p->waker == wpid && w->wakee == ppid;
        p->waker = wpid;
        w->wakee = ppid;
        if (pair && home != s && p->prio == BL_PRIO_NORMAL && !p->bound && !p->streams) {
            BL_STAT_ADD(s, pulled, 1);
            p->sched = home = s;
        }
    }
    if (home == s && !(flags & BL_READY_INJECT)) {
        atomic_store_explicit(&p->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
        if (flags & BL_READY_NEXT) {
            runnext_put(home, p);
        } else if ((flags & BL_READY_SPAWN) && p->prio == BL_PRIO_NORMAL && !home->runnext) {
            home->runnext = p;
        } else {
            local_push(home, p);
        }
        return;
    }
    inject_push(home, p);
    bl__sched_notify(home);
}

/* ---- timers ---- */

/*
 * Normal processes whose timer fired run before the ordinary queue: a
 * deadline is a promise about when, and behind a long queue of freshly
 * spawned processes it would be missed by the length of that queue.  The
 * lane only holds what the wheel released, so it cannot grow without bound.
 * Other priorities go to their own lanes, which are served in order anyway.
 * A timer fires on the scheduler that armed it, the parked process's home.
 */
void bl__sched_tmo_push(bl_sched *s, bl_proc *p)
{
    atomic_store_explicit(&p->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
    if (p->prio == BL_PRIO_NORMAL)
        plist_push(&s->tmo, p);
    else
        local_push(s, p);
}

/*
 * A process its timer woke has mostly been parked long enough for its PCB
 * and stack to leave the caches, and timers come due in bursts (a thousand
 * sleepers in one millisecond): one cold process after another, each
 * switch-in a chain of misses (the PCB, the saved registers, the frames it
 * returns through and those its exit pushes below them), about 40% of
 * such a wake-up's cost.  The timeout list is the scheduler's own, so the
 * next ones are known: as p is taken, the stack around the next one's
 * saved stack pointer is prefetched (its PCB came in a pick earlier), and
 * the PCB of the one after it.  Prefetches never fault, and the owner
 * alone reads these entries.
 */
_Static_assert(sizeof(bl_proc) <= 320, "tmo_prefetch covers a PCB in five lines");

static inline __attribute__((always_inline)) void tmo_prefetch(const bl_proc *p)
{
    const bl_proc *q = p->rq_next;
    if (!q) return;
    if (q->stack) {
        /* 512 bytes under the saved stack pointer (the exit path's frames)
         * and 512 from it up (the saved registers, the frames returned to). */
        const char *sp = q->ctx.sp;
        PREFETCH4(sp - 512);
        PREFETCH4(sp - 256);
        PREFETCH4(sp);
        PREFETCH4(sp + 256);
    }
    const bl_proc *r = q->rq_next;
    if (r) {
        PREFETCH4(r);
        __builtin_prefetch((const char *)r + 256, 1);
    }
}

/* The owner's gauges for the live view (bl_scheduler_stats), at each turn:
 * relaxed stores, since other threads read them racily anyway. */
static void publish_gauges(bl_sched *s)
{
    atomic_store_explicit(&s->st.io_inflight, s->ring_inflight, memory_order_relaxed);
    atomic_store_explicit(&s->st.stacks_pooled, s->stacks.nhot + s->stacks.nsurplus,
                          memory_order_relaxed);
    atomic_store_explicit(&s->st.stacks_cold, s->stacks.ncold, memory_order_relaxed);
    atomic_store_explicit(&s->st.stack_pool_bytes, s->stacks.mapped, memory_order_relaxed);
    atomic_store_explicit(&s->st.slab_bytes, s->slab.span_bytes, memory_order_relaxed);
}

/* ---- running a process ---- */

/*
 * Gets p ready to be switched to: its stack (a process not started yet, or
 * an idle handler, holds none), its slice, and the scheduler's record of
 * who runs.  False when no stack can be had: p is set aside and tried
 * again later (wait_for_stack) rather than failed.
 */
static void wait_for_stack(bl_sched *s, bl_proc *p);

static inline __attribute__((always_inline)) bool switch_in(bl_sched *s, bl_proc *p, bool inherit)
{
    if (!p->stack) {
        BL_PUBLISH(p->stack, bl__stack_get(&s->stacks, p->stack_req));
        if (!p->stack) {
            wait_for_stack(s, p);
            return false;
        }
        bl__ctx_init(&p->ctx, p->stack->lo, p->stack->size, bl__hook_proc_entry, p);
    }
    /* Only handlers keep stacks idle (sched/keep.c). */
    if (__builtin_expect(s->kept_used != 0, 0) && p->handler) bl__sched_unkeep(s, p);
    /* Whatever queue it came from, it runs here and belongs here. */
    p->sched = s;
    bl__sched_set_current(s, p);
    p->placed = false;
    p->reds = inherit && s->slice_left > 0 ? s->slice_left : s->reductions;
    s->run_start = p->reds;
    atomic_store_explicit(&p->status, BL_STATUS_RUNNING, memory_order_relaxed);
    BL_STAT_ADD(s, switches, 1);
    return true;
}

/*
 * No stack for p: memory or the address space is exhausted.  Picked again at
 * once, it would fail again at once, and the scheduler would spin on mmap
 * until memory came back; so it waits out of the queues (stackless_turn).
 */
#define NOSTACK_WAIT_MIN_NS 1000000u   /* 1 ms */
#define NOSTACK_WAIT_MAX_NS 128000000u /* 128 ms */
#define NOSTACK_BATCH       64u

static __attribute__((noinline, cold)) void wait_for_stack(bl_sched *s, bl_proc *p)
{
    BL_STAT_ADD(s, nostack_fails, 1);
    if (!s->nostack.head) {
        if (!s->nostack_wait_ns) s->nostack_wait_ns = NOSTACK_WAIT_MIN_NS;
        s->nostack_at = bl__now_ns() + s->nostack_wait_ns;
    }
    plist_push(&s->nostack, p);
}

/*
 * Tries the processes waiting for a stack again.  As many as the pool holds
 * stacks (exits here gave them back) of those that want the pool's size go
 * at once.  When the wait is over, a batch of any goes.  The wait doubles,
 * up to 128 ms, when the failures since the last batch were as many as it
 * held (none of it ran), and is back to 1 ms otherwise.  It is never 0: a
 * scheduler never retries at every turn.
 */
static void stackless_turn(bl_sched *s, uint64_t now)
{
    unsigned pooled = s->stacks.nhot + s->stacks.nsurplus + s->stacks.ncold;
    if (pooled) {
        /* A bounded look: waiters for other sizes go back in front, in order. */
        bl_plist passed = {0};
        bl_proc *p;
        for (unsigned looked = 0;
             pooled && looked < 4 * NOSTACK_BATCH && (p = plist_pop(&s->nostack)); looked++) {
            if (p->stack_req) {
                plist_push(&passed, p);
            } else {
                local_push(s, p);
                pooled--;
            }
        }
        if (passed.head) {
            passed.tail->rq_next = s->nostack.head;
            if (!s->nostack.head) s->nostack.tail = passed.tail;
            s->nostack.head = passed.head;
        }
    }
    if (!s->nostack.head || now < s->nostack_at) return;
    uint64_t fails = BL_STAT(s, nostack_fails);
    bool all_failed = fails - s->nostack_tried >= s->nostack_batch;
    uint64_t wait = s->nostack_wait_ns;
    s->nostack_wait_ns = !all_failed                  ? NOSTACK_WAIT_MIN_NS
                         : wait < NOSTACK_WAIT_MAX_NS ? 2 * wait
                                                      : NOSTACK_WAIT_MAX_NS;
    bl_proc *p;
    uint32_t n = 0;
    for (; n < NOSTACK_BATCH && (p = plist_pop(&s->nostack)); n++) local_push(s, p);
    s->nostack_tried = fails;
    s->nostack_batch = n;
    s->nostack_at = now + s->nostack_wait_ns;
}

/* p, switched out, is charged for its run; what is left of its slice may pass on. */
static inline void switch_out(bl_sched *s, bl_proc *p)
{
    if (__builtin_expect(s->outbox.p != NULL, 0)) bl__sched_outbox_flush(s, false);
    BL_PUBLISH(p->reductions, p->reductions + (uint64_t)(s->run_start - p->reds));
    s->slice_left = p->park == BL_PARK_YIELD ? 0 : p->reds;
}

static bool local_work(bl_sched *s);

/*
 * Acts on why p switched out, once its context is saved: on the loop's
 * stack, or on its direct successor's (bl__sched_settle_prev).
 */
static inline __attribute__((always_inline)) void settle(bl_sched *s, bl_proc *p)
{
    switch (p->park) {
    case BL_PARK_YIELD:
        atomic_store_explicit(&p->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
        /* Alone on this scheduler, it runs again from runnext (behind
         * anything that comes meanwhile) instead of waiting where a thief
         * could take it: a busy process would otherwise be moved away from
         * the partners it exchanges messages with, at a moment's idleness. */
        if (p->prio == BL_PRIO_NORMAL && !s->runnext && !local_work(s))
            s->runnext = p;
        else
            local_push(s, p);
        break;
    case BL_PARK_IDLE:
        bl__sched_park_stackless(s, p);
        break;
    case BL_PARK_WAIT:
        atomic_store_explicit(&p->status, BL_STATUS_WAITING, memory_order_relaxed);
        if (!bl__wait_park(p, BL_ST_WAITING)) bl__sched_ready(p, BL_READY_NEXT);
        break;
    case BL_PARK_SLEEP:
        atomic_store_explicit(&p->status, BL_STATUS_WAITING, memory_order_relaxed);
        if (!bl__wait_park(p, BL_ST_SLEEPING)) bl__sched_ready(p, BL_READY_NEXT);
        break;
    case BL_PARK_EXIT:
        bl__hook_proc_finish(s, p);
        break;
    }
}

/*
 * The loop, for p, which has just gone to wait for mail (its context is
 * saved, its wait not yet parked): when there is nothing else to do here
 * (nothing queued or injected, no I/O prepared or in flight), watch p's
 * mailbox word for up to BL_MAIL_SPIN_NS (at most spin_us) before parking
 * it.  True when mail or a signal came meanwhile: p then runs again
 * without having parked, so its sender found it awake and had no wake-up
 * to make (no inject queue, no notification), which is most of what a
 * message between two cores costs.  The idle spin would have spun here
 * anyway; like it, none while the CPU is contended.
 */
#define BL_MAIL_SPIN_NS 3000u

static bool spin_for_mail(bl_sched *s, bl_proc *p)
{
    if (bl__ring_busy(s) || local_work(s) || inject_nonempty(s)) return false;
    uint64_t now = bl__now_ns();
    if (bl__sched_spin_contended(s, now)) return false;
    uint64_t end = now + (s->spin_ns < BL_MAIL_SPIN_NS ? s->spin_ns : BL_MAIL_SPIN_NS), t = now;
    bool mail = false;
    BL_STAT_ADD(s, mail_spins, 1);
    for (unsigned round = 1;; round++) {
        /* Relaxed looks: the drain that follows acquires what they saw. */
        if (__atomic_load_n(&p->box.top, __ATOMIC_RELAXED) ||
            (__atomic_load_n(&p->box.meta, __ATOMIC_RELAXED) & BL_META_SIG)) {
            BL_STAT_ADD(s, mail_spin_hits, 1);
            mail = true;
            break;
        }
        /* Work for the scheduler: it goes first. */
        if (inject_nonempty(s)) break;
        cpu_relax();
        /* The clock every 16 rounds, and only there: the idle time counted
         * is the watch up to its last reading. */
        if (round % 16 == 0 && (t = bl__now_ns()) >= end) break;
    }
    BL_STAT_ADD(s, idle_ns, t - now);
    return mail;
}

/*
 * Whether the loop is due its turn, so that a process about to park goes
 * through it rather than straight to the next one or into a watch: I/O to
 * hand to the kernel; the periodic turn every 64 picks (timers, services,
 * gauges, trims); a stop.
 */
static inline bool loop_due(bl_sched *s)
{
    return s->sq_pending || s->tick - s->turn_tick >= 64 ||
           atomic_load_explicit(&s->rt->stop, memory_order_relaxed);
}

/* Stack the scheduler's work on a process stack wants left below it
 * (bytes): next_proc's frames, a predecessor's settling, the watch's clock
 * and run-delay reads, and more. */
#define SCHED_STACK_MIN 4096u

/* Whether sp, on stack st, has SCHED_STACK_MIN below it. */
static inline bool room_below(const bl_stack *st, uintptr_t sp)
{
    return sp >= (uintptr_t)st->lo + SCHED_STACK_MIN;
}

/*
 * Whether p, running, has room on its stack below the caller's frame for
 * the scheduler's work there.  Near its guard page a fault would land in
 * the middle of the scheduler's bookkeeping: such a process goes through
 * the loop, which asks nothing of its stack but the switch.  (The frame's
 * address, not a local's: ASan may keep locals elsewhere.)  Off its stack
 * altogether: an exit from the stack-fault handler, on the alternate
 * signal stack, which goes through the loop too.
 */
static inline __attribute__((always_inline)) bool stack_room(const bl_proc *p)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    return room_below(p->stack, sp) && sp < (uintptr_t)p->stack->lo + p->stack->size;
}

bool bl__sched_spin_mail(bl_sched *s, bl_proc *p)
{
    s->spun = NULL;
    /* Cheapest first: a process queued to run next (a partner on this
     * core, as a rule) means no watch at all.  Neither when messages are
     * held for another process or the loop is due its turn: the park goes
     * through the loop then.  Nor near the bottom of p's stack: the loop
     * watches on its own.  Nor while a waiter is left unparked (settle_lazy). */
    if (s->runnext || s->prev || !s->spin_ns || s->outbox.p || loop_due(s) || !stack_room(p))
        return false;
    s->spun = p; /* watched, or not to be: the loop does not watch it again */
    return spin_for_mail(s, p);
}

/*
 * Inlined into the loop on purpose: after a context switch every return
 * between the switch and the loop mispredicts (the return-stack buffer holds
 * the other context's calls), so the fewer frames around the switch, the
 * cheaper a switch is.
 */
static inline __attribute__((always_inline)) void run(bl_sched *s, bl_proc *p, bool inherit)
{
    if (!switch_in(s, p, inherit)) return;
    bl__ctx_jump(&s->ctx, &p->ctx, 0);
    /* The process that comes back is not p when p switched straight to
     * another (bl__sched_handoff); that one's predecessor is settled, or
     * waits lazily and is settled here. */
    p = bl__sched_current(s);
    bl__sched_set_current(s, NULL);
    switch_out(s, p);
    if (s->prev) settle_lazy(s, p);
    /* A process gone to wait for mail with nothing else to run here: the
     * loop watches its mailbox before parking it (spin_for_mail). */
    if (p->park == BL_PARK_WAIT && s->spin_ns && s->spun != p && spin_for_mail(s, p)) {
        bl__sched_ready(p, BL_READY_NEXT); /* into runnext: nothing else is queued */
        return;
    }
    settle(s, p);
}

static inline bl_proc *next_proc(bl_sched *s, bool *inherit);

bl_proc *bl__sched_handoff(bl_sched *s, bl_proc *p)
{
    /* And every eighth pick when the ring has operations in flight or
     * envelopes of other schedulers wait to go home (the loop looks at both
     * every eighth pick). */
    if (loop_due(s) || ((s->tick & 7) == 7 && (bl__ring_busy(s) || s->slab.pending))) return NULL;
    /* This runs on p's stack. */
    if (!stack_room(p)) return NULL;
    s->tick++;
    switch_out(s, p);
    /* Charged once: the loop's own switch_out, if it comes to that, adds nothing. */
    s->run_start = p->reds;
    /* After switch_out, which pushes what the outbox held (maybe to it). */
    if (s->prev) settle_lazy(s, p);
    bool inherit;
    bl_proc *q = next_proc(s, &inherit);
    /* Nobody else to run: the loop parks p, or runs it again. */
    if (!q) return NULL;
    /* q would settle p on its own stack, below where q parked: one that
     * parked that near its guard page goes back (to runnext, or its
     * priority's queue) and runs from the loop, which settles p on its own
     * stack. */
    if (q->stack && !room_below(q->stack, (uintptr_t)q->ctx.sp)) {
        runnext_put(s, q);
        return NULL;
    }
    /* No stack for q: the loop parks p, or runs it again. */
    if (!switch_in(s, q, inherit)) return NULL;
    s->prev = p;
    return q;
}

void bl__sched_settle_prev(bl_sched *s)
{
    bl_proc *p = s->prev;
    if (p->park == BL_PARK_WAIT) { /* lazily: settle_lazy, later */
        atomic_store_explicit(&p->status, BL_STATUS_WAITING, memory_order_relaxed);
        return;
    }
    s->prev = NULL;
    /* As the loop settles, in no process: neither the dead one's clean-up
     * nor queueing one whose park a message undid is the successor's doing
     * (bl__sched_ready would count it as a wake-up by the successor). */
    bl_proc *q = bl__sched_current(s);
    bl__sched_set_current(s, NULL);
    if (p->park == BL_PARK_EXIT)
        bl__hook_proc_finish(s, p);
    else
        settle(s, p);
    bl__sched_set_current(s, q);
}

/* ---- finding work ---- */

static bl_proc *steal(bl_sched *s)
{
    const bl_topo_sched *ts = &s->rt->topo.sched[s->index];
    for (unsigned i = 0; i < ts->nvictims; i++) {
        bl_sched *v = s->rt->scheds[ts->victims[i]];
        uint32_t n = bl__runq_steal(&v->rq, &s->rq);
        if (n) {
            BL_STAT_ADD(s, steals, 1);
            BL_STAT_ADD(s, stolen, n);
            /* The stolen processes are re-homed as they are popped (see
             * loop): until then they are ACTIVE, and no waker reads their
             * home while they are. */
            return bl__runq_pop(&s->rq);
        }
    }
    return NULL;
}

/* One pick in OVF_TURN serves the overflow list first (next_proc_slow). */
#define OVF_TURN 61

/* Anything runnable in this scheduler's own queues? */
static bool local_work(bl_sched *s)
{
    return s->runnext || s->ovf_head || s->tmo.head || bl__runq_len(&s->rq) ||
           s->lanes[BL_PRIO_LOW].head || s->lanes[BL_PRIO_HIGH].head || s->lanes[BL_PRIO_MAX].head;
}

static __attribute__((noinline)) bl_proc *next_proc_slow(bl_sched *s, bool *inherit)
{
    bl_proc *p;
    *inherit = false;
    /* Processes woken or spawned from other threads join the back of the
     * local queue at once, so they wait their turn like local ones.  The
     * check is one load of a line that stays shared while nobody pushes. */
    if (inject_nonempty(s)) {
        /* With nothing else to run, the oldest one runs at once and never
         * sits where a thief could take it from its home. */
        bool local_idle = !local_work(s);
        bl_proc *first = local_idle ? inject_pop(s) : NULL;
        /* Their status is written here, by the owner, not by the waker on
         * another core: one cache line less to move per wake-up. */
        if (first) atomic_store_explicit(&first->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
        while ((p = inject_pop(s))) {
            atomic_store_explicit(&p->status, BL_STATUS_RUNNABLE, memory_order_relaxed);
            /* A process placed here explicitly waits in the owner-only
             * overflow list, so that it starts here as promised. */
            if (p->placed)
                ovf_append(s, p);
            else
                local_push(s, p);
        }
        if (first) return first;
    }
    /* max and high run strictly before anything lower. */
    if ((p = plist_pop(&s->lanes[BL_PRIO_MAX])) || (p = plist_pop(&s->lanes[BL_PRIO_HIGH])))
        return p;
    /* Now and then the overflow list goes first, so that it cannot starve
     * behind a ring that keeps refilling. */
    if (s->tick % OVF_TURN == 0 && (p = ovf_pop(s))) return p;
    if ((p = plist_pop(&s->tmo))) {
        tmo_prefetch(p);
        return p;
    }
    /* normal and low share: one pick in eight goes to a waiting low process. */
    if (s->lanes[BL_PRIO_LOW].head && ++s->low_turn % 8 == 0)
        return plist_pop(&s->lanes[BL_PRIO_LOW]);
    if ((p = s->runnext)) {
        s->runnext = NULL;
        /* A pair of processes waking each other through runnext shares one
         * slice; when it is spent, the woken one queues like everybody else.
         * With nobody else queued it simply runs on a fresh slice: a trip
         * through the stealable queue would only offer it to a thief, which
         * would put the pair on two cores for good. */
        if (s->slice_left > 0) {
            *inherit = true;
            return p;
        }
        if (!bl__runq_len(&s->rq) && !s->ovf_head) return p;
        local_push(s, p);
    }
    if ((p = bl__runq_pop(&s->rq))) return p;
    if ((p = ovf_pop(s))) return p;
    return plist_pop(&s->lanes[BL_PRIO_LOW]);
}

/*
 * The usual pick while two processes hand each other the core: the one in
 * runnext, on what is left of the slice, when nothing next_proc_slow would
 * serve before it is waiting (nothing injected; no max, high, timed-out or
 * low process; not the overflow list's turn).  The same choice as
 * next_proc_slow's, inlined without its frame.
 */
static inline bl_proc *next_proc(bl_sched *s, bool *inherit)
{
    bl_proc *p = s->runnext;
    if (p && s->slice_left > 0 && !s->lanes[BL_PRIO_MAX].head && !s->lanes[BL_PRIO_HIGH].head &&
        !s->tmo.head && !s->lanes[BL_PRIO_LOW].head && !(s->ovf_head && s->tick % OVF_TURN == 0) &&
        !inject_nonempty(s)) {
        s->runnext = NULL;
        *inherit = true;
        return p;
    }
    return next_proc_slow(s, inherit);
}

/* Runs until stop; called on the scheduler thread. */
static void loop(bl_sched *s)
{
    bl_runtime *rt = s->rt;
    uint64_t spin_ns = s->spin_ns;
    while (!atomic_load_explicit(&rt->stop, memory_order_relaxed)) {
        bool inherit;
        s->tick++;
        bl_proc *p = next_proc(s, &inherit);
        if (p) {
            run(s, p, inherit);
            /* I/O submitted by the processes that ran goes to the kernel in
             * one batch: when enough is queued or nobody else is runnable. */
            if (s->sq_pending && (s->sq_pending >= 32 || !local_work(s))) {
                bl__ring_submit(s);
                /* What completed inline (most sends, a receive with data
                 * waiting) resumes its process without waiting for a poll. */
                if (io_uring_cq_ready(&s->ring)) bl__ring_reap(s);
            }
            /* Picks since the last look, direct switches included (a
             * residue of the count would be skipped over by them). */
            uint32_t t = s->tick;
            if (t - s->poll_tick >= 8) {
                s->poll_tick = t;
                if (bl__ring_busy(s)) bl__ring_poll(s);
                /* Envelopes of other schedulers freed here go home. */
                if (s->slab.pending) bl__slab_flush(&s->slab);
            }
            if (t - s->turn_tick >= 64) {
                s->turn_tick = t;
                s->turns++;
                if (s->kept_used) bl__sched_shed(s, false);
                if (s->wheel.count || s->unfiled || BL_STAT(s, timers))
                    bl__sched_run_timers(s, bl__now_ns());
                if (s->nostack.head) stackless_turn(s, bl__now_ns());
                publish_gauges(s);
                bl__ring_poll(s);
                services_if_due(s);
                /* Under sustained load, the services' idle work (sweeping
                 * streams of dead owners) still runs now and then, and a
                 * little is trimmed so that RSS still falls. */
                if (t - s->trim_tick >= 4096) {
                    s->trim_tick = t;
                    bl__sched_services_idle(s);
                    uint64_t now = bl__now_ns();
                    bl__slab_trim(&s->slab, now);
                    if (s->stacks.nsurplus) bl__stack_trim_aged(&s->stacks, 1, now);
                }
            }
            continue;
        }
        if ((p = steal(s))) {
            run(s, p, false);
            continue;
        }

        /* Idle.  First a short, silent poll of the inject queue: a partner
         * on another core usually answers within a microsecond, and the
         * housekeeping below (clock, timers, ring, the shared spinning
         * counter) would only delay picking its message up. */
        if (spin_ns) {
            for (int i = 0; i < 64 && !inject_nonempty(s); i++) cpu_relax();
            if (inject_nonempty(s)) continue;
        }
        if (s->slab.pending) bl__slab_flush(&s->slab);
        /* Timers first: they may have made something runnable. */
        uint64_t now = bl__now_ns();
        uint64_t idle_from = now;
        bl__sched_run_timers(s, now);
        if (s->nostack.head) stackless_turn(s, now);
        publish_gauges(s);
        if ((++s->idle_rounds & 63) == 0)
            bl__sched_services_idle(s);
        else
            services_if_due(s);
        bl__ring_poll(s);
        if (local_work(s) || inject_nonempty(s)) continue;

        uint64_t spin = spin_ns && !bl__sched_spin_contended(s, now) ? spin_ns : 0;
        uint64_t spin_end = now + spin;
        bool found = false;
        atomic_fetch_add_explicit(&rt->nspinning, 1, memory_order_relaxed);
        const bl_topo_sched *ts = &rt->topo.sched[s->index];
        /* Poll with one pause between looks (a pause is tens of cycles on
         * current cores); read the clock only every 16 rounds. */
        for (unsigned round = 1; spin && !found; round++) {
            found = inject_nonempty(s) || (bl__ring_busy(s) && bl__ring_ready(s));
            for (unsigned i = 0; i < ts->nvictims && !found; i++)
                found = bl__runq_len(&rt->scheds[ts->victims[i]]->rq) > 0;
            if (found || round % 16) {
                cpu_relax();
                continue;
            }
            uint64_t t = bl__now_ns();
            if (t >= spin_end || atomic_load_explicit(&rt->stop, memory_order_relaxed)) break;
            found = bl__twheel_next(&s->wheel) <= t;
        }
        atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_relaxed);
        if (found) {
            BL_STAT_ADD(s, idle_ns, bl__now_ns() - idle_from);
            continue;
        }
        /* Nothing came during the spin: a good time for the system calls
         * that give surplus stacks back to the kernel once they have stayed
         * free an age (core/stack.h), a batch at a time
         * (not before the spin: an idle moment between two messages of a
         * cross-core exchange would pay for them), then the message memory
         * a burst took, once it has stayed free a while. */
        if (s->kept_used) {
            bl__sched_shed(s, true);
            /* A message that came meanwhile queued its handler here. */
            if (local_work(s)) continue;
        }
        now = bl__now_ns();
        if (s->stacks.nsurplus && bl__stack_trim_aged(&s->stacks, 64, now)) continue;
        bl__slab_trim(&s->slab, now);
        if (inject_nonempty(s)) continue;

        /* Sleep.  Seq_cst store then re-check: pairs with inject_push and
         * bl__sched_notify so a wake-up cannot fall between check and sleep. */
        atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
        atomic_fetch_add_explicit(&rt->nsleeping, 1, memory_order_seq_cst);
        bool work = inject_nonempty(s) || atomic_load_explicit(&rt->stop, memory_order_seq_cst);
        for (unsigned i = 0; i < ts->nvictims && !work; i++)
            work = bl__runq_len(&rt->scheds[ts->victims[i]]->rq) > 0;
        if (!work) {
            uint64_t next = bl__twheel_next(&s->wheel);
            uint64_t trim = bl__slab_next_trim(&s->slab);
            if (trim < next) next = trim; /* wake up to give empty spans back */
            trim = bl__stack_next_trim(&s->stacks);
            if (trim < next) next = trim; /* and stacks that have aged */
            if (s->nostack.head && s->nostack_at < next)
                next = s->nostack_at; /* processes waiting for a stack */
            /* Seq_cst, after our store of `sleeping`: see bl__sched_services_soon. */
            if (atomic_load_explicit(&s->services_due, memory_order_seq_cst) &&
                s->services_at < next)
                next = s->services_at; /* a sweep that was asked for */
            uint64_t t = bl__now_ns();
            BL_STAT_ADD(s, sleeps, 1);
            bl__ring_wait(s, next == UINT64_MAX ? UINT64_MAX : (next > t ? next - t : 0));
        }
        atomic_fetch_sub_explicit(&rt->nsleeping, 1, memory_order_relaxed);
        atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
        BL_STAT_ADD(s, idle_ns, bl__now_ns() - idle_from);
    }
}

void *bl__sched_main(void *arg)
{
    bl_sched *s = arg;
    /* Timer slack of 1 ns: a receive timeout should not fire 50 us late. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    bl__tls_sched = s;
    s->reductions = (int32_t)s->rt->cfg.reductions;
    s->spin_ns = s->rt->cfg.no_spin ? 0 : (uint64_t)s->rt->cfg.spin_us * 1000u;
    bl__ctx_init_thread(&s->ctx);
    loop(s);
    bl__slab_flush(&s->slab);
    if (s->schedstat_fd >= 0) close(s->schedstat_fd);
    s->schedstat_fd = -1;
    bl__tls_sched = NULL;
    return NULL;
}
