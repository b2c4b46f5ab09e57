/*
 * sched/timer.h - the per-scheduler hierarchical timer wheel.
 *
 * Owned by one scheduler thread: no call here is thread-safe, none
 * allocates.  Timers are intrusive: embed a bl_timer in your own struct and
 * get back to it with container_of in the fire callback.  Insert and cancel
 * are O(1); expiring costs O(timers fired + slots cascaded).
 */
#ifndef BL_SCHED_TIMER_H
#define BL_SCHED_TIMER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Insert takes any timer that is not queued and needs only its deadline set.
 * Cancel takes a timer that was zero-initialised, set to slot ==
 * BL_TIMER_UNLINKED, or inserted before (queued, fired or cancelled).
 */
typedef struct bl_timer {
    struct bl_timer *next; /* slot list link */
    struct bl_timer *prev; /* slot list link */
    uint64_t deadline;     /* absolute CLOCK_MONOTONIC time, ns; set before insert */
    uint32_t slot;         /* internal: level * 64 + slot, BL_TIMER_UNLINKED when not queued */
    uint32_t kind;         /* the owner's tag: which kind of timer this is */
} bl_timer;

#define BL_TIMER_UNLINKED UINT32_MAX
#define BL_TWHEEL_LEVELS  6
#define BL_TWHEEL_SLOTS   64

typedef struct bl_twheel {
    bl_timer *slots[BL_TWHEEL_LEVELS][BL_TWHEEL_SLOTS]; /* list heads */
    uint64_t occupied[BL_TWHEEL_LEVELS]; /* bit s set when slots[l][s] is non-empty */
    uint64_t tick_ns;                    /* length of one level-0 slot (default 1 ms) */
    uint64_t now_tick;                   /* ticks elapsed up to the last expire */
    uint64_t base_ns;                    /* time of tick 0 */
    size_t count;                        /* timers queued */
    uint64_t cur_min;    /* lower bound on the deadlines in now_tick's level-0 slot */
    uint64_t tick_mul;   /* ns -> ticks: (ns * tick_mul) >> 64 >> tick_shift (timer.c tick_of) */
    unsigned tick_shift; /* ... or, with tick_mul 0 (tick_ns a power of two), ns >> tick_shift */
} bl_twheel;

/* tick_ns 0 = 1 ms.  now_ns: current CLOCK_MONOTONIC time. */
void bl__twheel_init(bl_twheel *w, uint64_t now_ns, uint64_t tick_ns);

/* Queues t (t->deadline must be set; a deadline in the past fires at the next expire). */
void bl__twheel_insert(bl_twheel *w, bl_timer *t);

/* Removes t if queued; a no-op if it is not (already fired or never inserted). */
void bl__twheel_cancel(bl_twheel *w, bl_timer *t);

/*
 * The time at which expire must next be called: never later than the
 * earliest queued deadline, UINT64_MAX when the wheel is empty.  After
 * bl__twheel_expire(w, now, ...) returns, bl__twheel_next(w) > now: waking at
 * the returned time always makes progress (no busy loop).
 */
uint64_t bl__twheel_next(const bl_twheel *w);

/*
 * Fires every timer whose deadline is <=
 * now_ns: unlinks it, then calls fire(t, ctx).  fire may insert or cancel
 * other timers (and re-insert t).  Never fires a timer early.  Returns the
 * number fired.  Timers fire in the order of their deadline ticks (in any
 * order within one tick).  A timer inserted by fire with a deadline <= now_ns
 * fires within this same call, so a periodic timer must advance its deadline.
 */
size_t bl__twheel_expire(bl_twheel *w, uint64_t now_ns, void (*fire)(bl_timer *t, void *ctx),
                         void *ctx);

#endif /* BL_SCHED_TIMER_H */
