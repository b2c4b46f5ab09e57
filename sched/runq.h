/*
 * sched/runq.h - a scheduler's local run queue.
 *
 * A bounded ring with one producer (the owning scheduler) and many
 * consumers (the owner and thieves), as in Go's runtime: the owner writes
 * `tail`; everybody claims entries by CAS on `head`.  A thief copies up to
 * half of the entries into its own ring, then commits the claim with one
 * CAS, so a steal moves many processes at the cost of one atomic.
 */
#ifndef BL_SCHED_RUNQ_H
#define BL_SCHED_RUNQ_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/proc.h"

#define BL_RUNQ_SIZE 256u

typedef struct bl_runq {
    _Alignas(64) _Atomic uint32_t head;   /* next entry to take; CAS by owner and thieves */
    _Alignas(64) _Atomic uint32_t tail;   /* next free entry; written by the owner only */
    _Atomic(bl_proc *) buf[BL_RUNQ_SIZE]; /* entries head..tail-1 (mod size) */
} bl_runq;

static inline uint32_t bl__runq_len(bl_runq *q)
{
    /* Relaxed: an estimate for balancing and spinning; a stale length costs
     * a wasted look or a later one, never an entry. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return t - h;
}

/* Owner only.  Returns 0, or -1 when the ring is full. */
static inline int bl__runq_push(bl_runq *q, bl_proc *p)
{
    /* Acquire: a thief that advanced head has finished reading those slots. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h >= BL_RUNQ_SIZE) return -1;
    atomic_store_explicit(&q->buf[t % BL_RUNQ_SIZE], p, memory_order_relaxed);
    /* Release: the slot (and the process it names) is visible to consumers. */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 0;
}

/* Owner only. */
static inline bl_proc *bl__runq_pop(bl_runq *q)
{
    /* Acquire: pairs with a thief's claim, so its reads of the slots it
     * took are done before we read or refill them. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        /* Relaxed: only the owner (us) writes tail. */
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h) return NULL;
        /* Relaxed: the owner wrote the slot itself; the CAS below decides
         * whether the value read is ours to run. */
        bl_proc *p = atomic_load_explicit(&q->buf[h % BL_RUNQ_SIZE], memory_order_relaxed);
        /* Acq_rel: claims the slot against thieves; on failure h is reloaded. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return p;
    }
}

/*
 * Owner only: claims the older half of the ring for the overflow list.
 * Stores up to BL_RUNQ_SIZE / 2 processes in out[] and returns how many
 * (0 when thieves emptied it meanwhile).
 */
static inline uint32_t bl__runq_take_half(bl_runq *q, bl_proc **out)
{
    /* Acquire: as in bl__runq_pop, a thief's earlier claim is complete. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        /* Relaxed: only the owner (us) writes tail. */
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        uint32_t n = (t - h) / 2;
        if (n == 0) return 0;
        /* Relaxed: the owner wrote these slots; the CAS decides if they are ours. */
        for (uint32_t i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&q->buf[(h + i) % BL_RUNQ_SIZE], memory_order_relaxed);
        /* Acq_rel: claims the slots against thieves; on failure h is reloaded. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + n, memory_order_acq_rel,
                                                  memory_order_acquire))
            return n;
    }
}

/*
 * Thief: moves about half of `from`'s entries into `to`, which must belong
 * to the calling thread and be empty.  Returns how many moved.
 */
static inline uint32_t bl__runq_steal(bl_runq *from, bl_runq *to)
{
    /* Relaxed: `to` is ours, nobody else pushes to it. */
    uint32_t tt = atomic_load_explicit(&to->tail, memory_order_relaxed);
    for (;;) {
        /* Acquire on both: the entries between them are published. */
        uint32_t h = atomic_load_explicit(&from->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&from->tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0) return 0;
        if (n > BL_RUNQ_SIZE / 2) continue; /* read head and tail at different times */
        /* Relaxed copies: the acquire of tail made the entries visible, and
         * the CAS below decides whether they are ours. */
        for (uint32_t i = 0; i < n; i++) {
            bl_proc *p =
                atomic_load_explicit(&from->buf[(h + i) % BL_RUNQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&to->buf[(tt + i) % BL_RUNQ_SIZE], p, memory_order_relaxed);
        }
        /* Acq_rel: the claim orders our copies before the victim's reuse of the slots. */
        if (atomic_compare_exchange_weak_explicit(&from->head, &h, h + n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            /* Release: publishes the copied entries to our own thieves. */
            atomic_store_explicit(&to->tail, tt + n, memory_order_release);
            return n;
        }
    }
}

#endif /* BL_SCHED_RUNQ_H */
