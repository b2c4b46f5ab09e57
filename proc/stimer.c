/*
 * proc/stimer.c - send_after, cancel_timer and read_timer.
 *
 * A timer reference names its slot directly, so cancelling or reading
 * needs no lookup table and no lock:
 *
 *     bit 63: 1 (not an ordinary make_ref reference)
 *     bits 53..62: owner scheduler   bits 32..52: slot   bits 0..31: generation
 *
 * Each slot has one word other threads may touch, {generation, state}.
 * Arming (owner) publishes ARMED under a new generation; firing (owner) and
 * cancelling (anyone) race to CAS it away from ARMED, so exactly one of
 * them wins and a message is delivered at most once and never after a
 * successful cancel.  Only the owner frees a slot (bumping the generation):
 * at once when it fires or is cancelled on the owner's own thread, later
 * (when the wheel reaches it) when another thread cancelled it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/msg.h"
#include "proc/otp.h"
#include "proc/proc.h"
#include "proc/stimer.h"

enum { ST_FREE = 0, ST_ARMED = 1, ST_DONE = 2 };

#define REF_TIMER (1ull << 63)
#define CHUNK     (1u << BL_STIMER_CHUNK_BITS)

static bl_ref make_tref(unsigned sched, uint32_t slot, uint32_t gen)
{
    return REF_TIMER | ((uint64_t)sched << 53) | ((uint64_t)slot << 32) | gen;
}

/* The slot a timer reference names, or NULL if it cannot be one. */
static bl_stimer *slot_of(bl_ref ref, uint32_t *gen, bl_sched **owner)
{
    bl_runtime *rt = bl__rt;
    if (!rt || !(ref & REF_TIMER)) return NULL;
    unsigned si = (unsigned)(ref >> 53) & 0x3FF;
    uint32_t slot = (uint32_t)(ref >> 32) & 0x1FFFFF;
    if (si >= rt->nsched) return NULL;
    bl_sched *s = rt->scheds[si];
    /* Acquire: pairs with the release that published the table. */
    bl_stimers *st = atomic_load_explicit(&s->stimers, memory_order_acquire);
    if (!st) return NULL;
    /* Acquire: pairs with the release that published the chunk. */
    bl_stimer *c =
        atomic_load_explicit(&st->chunks[slot >> BL_STIMER_CHUNK_BITS], memory_order_acquire);
    if (!c) return NULL;
    *gen = (uint32_t)ref;
    *owner = s;
    return &c[slot & (CHUNK - 1)];
}

/* Owner: s's table, made at its first send_after; NULL when out of memory. */
static bl_stimers *table(bl_sched *s)
{
    bl_stimers *st = atomic_load_explicit(&s->stimers, memory_order_relaxed);
    if (st) return st;
    st = calloc(1, sizeof *st);
    /* Release: a canceller that finds the table sees it zeroed. */
    if (st) atomic_store_explicit(&s->stimers, st, memory_order_release);
    return st;
}

static bl_stimer *slot_alloc(bl_sched *s, uint32_t *index)
{
    bl_stimers *st = table(s);
    if (!st) return NULL;
    bl_stimer *t = st->free;
    if (t) {
        st->free = t->next;
    } else {
        uint32_t i = st->used;
        if (i >= (uint32_t)BL_STIMER_CHUNKS * CHUNK) return NULL;
        bl_stimer *c = atomic_load_explicit(&st->chunks[i / CHUNK], memory_order_relaxed);
        if (!c) {
            void *m = mmap(NULL, sizeof(bl_stimer) * CHUNK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) return NULL;
            c = m;
            /* Release: other threads that find the chunk see it zeroed. */
            atomic_store_explicit(&st->chunks[i / CHUNK], c, memory_order_release);
        }
        st->used++;
        t = &c[i % CHUNK];
        t->index = i;
    }
    *index = t->index;
    return t;
}

/* Owner: the slot is done with; the generation moves on. */
static void slot_release(bl_sched *s, bl_stimer *t)
{
    uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
    /* Release: a reader that sees the new generation sees the slot empty. */
    atomic_store_explicit(&t->word, ((w >> 32) + 1) << 32 | ST_FREE, memory_order_release);
    t->m = NULL;
    /* Owner: its table exists, since this slot came from it. */
    bl_stimers *st = atomic_load_explicit(&s->stimers, memory_order_relaxed);
    t->next = st->free;
    st->free = t;
}

void bl__hook_timer_fire(bl_sched *s, bl_timer *tm)
{
    bl_stimer *t = container_of(tm, bl_stimer, t);
    uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
    /* Acq_rel: wins against a concurrent cancel, or learns it lost. */
    if ((w & 0xFFFFFFFFu) == ST_ARMED &&
        atomic_compare_exchange_strong_explicit(&t->word, &w, (w & ~0xFFFFFFFFull) | ST_DONE,
                                                memory_order_acq_rel, memory_order_acquire)) {
        int err;
        bl_proc *p = bl__target(t->to, &err);
        if (p)
            bl__push(p, t->to, t->m, false);
        else
            bl__msg_free(&s->slab, t->m);
    } else {
        bl__msg_free(&s->slab, t->m); /* cancelled from another scheduler */
    }
    slot_release(s, t);
}

int bl_send_after(bl_pid pid, uint32_t tag, const void *data, size_t len, int64_t ms, bl_ref *tref)
{
    if (tag >= BL_TAG_SYSTEM) return bl__self() ? -EINVAL : -EPERM;
    return bl__send_after(pid, tag, BL_REF_NONE, data, len, ms, tref);
}

int bl__send_after(bl_pid pid, uint32_t tag, bl_ref ref, const void *data, size_t len, int64_t ms,
                   bl_ref *tref)
{
    bl_proc *self = bl__self();
    if (!self) return -EPERM;
    if (ms < 0 || (len && !data) || !bl__proc_lookup(pid)) return -EINVAL;
    bl_sched *s = self->sched;
    uint32_t index = 0;
    bl_stimer *t = slot_alloc(s, &index);
    if (!t) return -ENOMEM;
    bl_msg *m = bl__msg_alloc(&s->slab, len);
    if (!m) {
        slot_release(s, t);
        return -ENOMEM;
    }
    if (len) memcpy(m->data, data, len);
    m->from = bl__proc_pid(self);
    m->ref = ref;
    m->tag = tag;
    t->m = m;
    t->to = pid;
    t->t.slot = BL_TIMER_UNLINKED;
    t->t.kind = BL_TIMER_SEND;
    t->t.deadline = bl__now_ns() + (uint64_t)ms * 1000000u;
    uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
    uint32_t gen = (uint32_t)(w >> 32);
    /* Release: a canceller that sees ARMED sees the deadline and message. */
    atomic_store_explicit(&t->word, (uint64_t)gen << 32 | ST_ARMED, memory_order_release);
    bl__twheel_insert(&s->wheel, &t->t);
    if (tref) *tref = make_tref(s->index, index, gen);
    bl__charge(self, 1);
    return 0;
}

static int64_t remaining_ms(bl_stimer *t)
{
    uint64_t now = bl__now_ns(), dl = t->t.deadline;
    return dl > now ? (int64_t)((dl - now + 999999) / 1000000) : 0;
}

int64_t bl_read_timer(bl_ref tref)
{
    uint32_t gen;
    bl_sched *owner;
    bl_stimer *t = slot_of(tref, &gen, &owner);
    if (!t) return -EINVAL;
    /* Acquire: pairs with the arming release, so the deadline is current. */
    uint64_t w = atomic_load_explicit(&t->word, memory_order_acquire);
    if (w != ((uint64_t)gen << 32 | ST_ARMED)) return -ENOENT;
    int64_t left = remaining_ms(t);
    /* Still the same arming after reading the deadline? */
    if (atomic_load_explicit(&t->word, memory_order_acquire) != w) return -ENOENT;
    return left;
}

int64_t bl_cancel_timer(bl_ref tref)
{
    uint32_t gen;
    bl_sched *owner;
    bl_stimer *t = slot_of(tref, &gen, &owner);
    if (!t) return -EINVAL;
    uint64_t armed = (uint64_t)gen << 32 | ST_ARMED;
    if (atomic_load_explicit(&t->word, memory_order_acquire) != armed) return -ENOENT;
    int64_t left = remaining_ms(t);
    uint64_t w = armed;
    /* Acq_rel: exactly one of cancel and fire wins the ARMED state. */
    if (!atomic_compare_exchange_strong_explicit(&t->word, &w, (uint64_t)gen << 32 | ST_DONE,
                                                 memory_order_acq_rel, memory_order_acquire))
        return -ENOENT;
    if (owner == bl__tls_sched) {
        /* On the owner's thread: take it out of the wheel now. */
        bl__twheel_cancel(&owner->wheel, &t->t);
        bl__msg_free(&owner->slab, t->m);
        slot_release(owner, t);
    }
    /* Elsewhere the owner frees it when the wheel gets there. */
    return left;
}

void bl__hook_sched_free(bl_sched *s)
{
    bl__psig_cache_free(s);
    bl_stimers *st = atomic_load_explicit(&s->stimers, memory_order_relaxed);
    if (!st) return;
    for (uint32_t k = 0; k < BL_STIMER_CHUNKS; k++) {
        bl_stimer *c = atomic_load_explicit(&st->chunks[k], memory_order_relaxed);
        if (!c) continue;
        for (uint32_t i = 0; i < CHUNK && k * CHUNK + i < st->used; i++)
            if (c[i].m) bl__msg_free(NULL, c[i].m); /* pending: its message never went out */
        munmap(c, sizeof(bl_stimer) * CHUNK);
        atomic_store_explicit(&st->chunks[k], NULL, memory_order_relaxed);
    }
    free(st);
    atomic_store_explicit(&s->stimers, NULL, memory_order_relaxed);
}
