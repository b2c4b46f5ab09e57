/*
 * otp/task/slot.c - the pool of slots an owner shares with its task process.
 *
 * Slots are type-stable: they live in chunks that are never freed, and a
 * recycled slot gets a new generation, so a stale bl_task (a copy kept
 * after the task was settled) can only fail a compare-and-swap, never touch
 * freed memory.  Free slots are a Treiber stack with an ABA tag; the lock
 * is taken only to add a chunk.  Any process on any scheduler may allocate
 * or free a slot.
 */
#include <pthread.h>
#include <stdlib.h>

#include "otp/task/task_int.h"

#define CHUNK_SHIFT 10
#define CHUNK       (1u << CHUNK_SHIFT)
#define MAX_CHUNKS  4096 /* 4M tasks alive at once */

static ctl *_Atomic chunks[MAX_CHUNKS];
/* Treiber stack of free slots: ABA tag << 32 | index + 1. */
static _Atomic uint64_t free_head;
/* Taken only to add a chunk (cold). */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nchunks;

static ctl *slot_at(uint32_t i)
{
    if ((i >> CHUNK_SHIFT) >= MAX_CHUNKS) return NULL;
    /* Acquire: pairs with the release that published the chunk. */
    ctl *c = atomic_load_explicit(&chunks[i >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[i & (CHUNK - 1)] : NULL;
}

/* Pushes the chain first..last (already linked through next) on the free list. */
static void push_free(uint32_t first, ctl *last)
{
    uint64_t h = atomic_load_explicit(&free_head, memory_order_relaxed), nh;
    do {
        /* Relaxed: the release CAS below publishes it. */
        atomic_store_explicit(&last->next, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | (uint64_t)(first + 1);
        /* Release: a popper that acquires the head sees the slot reset. */
    } while (!atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_release,
                                                    memory_order_relaxed));
}

static ctl *pop_free(void)
{
    /* Acquire: the slot's contents were published by the push. */
    uint64_t h = atomic_load_explicit(&free_head, memory_order_acquire);
    while ((uint32_t)h) {
        ctl *c = slot_at((uint32_t)h - 1);
        if (!c) return NULL; /* cannot happen: listed slots are published */
        /* May be stale if c was popped meanwhile; the tag then fails the CAS. */
        uint32_t nx = atomic_load_explicit(&c->next, memory_order_relaxed);
        uint64_t nh = (((h >> 32) + 1) << 32) | nx;
        if (atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_acquire,
                                                  memory_order_acquire))
            return c;
    }
    return NULL;
}

/* A free slot (state S_FREE, its generation set), or NULL when out of memory. */
ctl *bl__task_slot_alloc(void)
{
    for (;;) {
        ctl *c = pop_free();
        if (c) return c;
        pthread_mutex_lock(&grow_lock);
        if ((uint32_t)atomic_load_explicit(&free_head, memory_order_acquire)) {
            pthread_mutex_unlock(&grow_lock);
            continue; /* someone else grew the pool */
        }
        ctl *chunk = nchunks < MAX_CHUNKS ? calloc(CHUNK, sizeof *chunk) : NULL;
        if (!chunk) {
            pthread_mutex_unlock(&grow_lock);
            return NULL;
        }
        uint32_t base = nchunks << CHUNK_SHIFT;
        for (uint32_t i = 0; i < CHUNK; i++) {
            chunk[i].idx = base + i;
            /* Generations start at 1: a zeroed bl_task never matches. */
            atomic_init(&chunk[i].word, (uint64_t)1 << 32);
            atomic_init(&chunk[i].next, i + 1 < CHUNK ? base + i + 2 : 0);
        }
        /* Release: slot_at readers see the initialized chunk. */
        atomic_store_explicit(&chunks[nchunks], chunk, memory_order_release);
        nchunks++;
        pthread_mutex_unlock(&grow_lock);
        /* Slot 0 is ours; the rest go on the free list. */
        push_free(base + 1, &chunk[CHUNK - 1]);
        return &chunk[0];
    }
}

/* Recycles c under a new generation.  Only its last user calls this. */
void bl__task_slot_free(ctl *c)
{
    free(c->out.heap);
    c->out.heap = NULL;
    free(c->item_heap);
    c->item_heap = NULL;
    c->out.cap = 0;
    c->out.data = NULL;
    c->out.len = 0;
    uint32_t gen = (uint32_t)(atomic_load_explicit(&c->word, memory_order_relaxed) >> 32) + 1;
    if (!gen) gen = 1;
    /* Release: an owner that sees the new generation also sees every
     * message the task sent (its reply).  Not its DOWN: the runtime calls
     * release before it sends the DOWNs. */
    atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_FREE, memory_order_release);
    push_free(c->idx, c);
}

uint32_t bl__task_slot_gen(ctl *c)
{
    return (uint32_t)(atomic_load_explicit(&c->word, memory_order_relaxed) >> 32);
}

uint64_t bl__task_handle_of(ctl *c, uint32_t gen)
{
    return (uint64_t)c->idx << 32 | gen;
}

/* The slot a handle names (it may have been recycled since: check the generation). */
ctl *bl__task_slot_of(uint64_t h)
{
    return (uint32_t)h ? slot_at((uint32_t)(h >> 32)) : NULL;
}

/* True while the task process of handle h has not been released. */
bool bl__task_slot_live(uint64_t h)
{
    ctl *c = bl__task_slot_of(h);
    /* Acquire: pairs with bl__task_slot_free's release (see there). */
    return c &&
           (uint32_t)(atomic_load_explicit(&c->word, memory_order_acquire) >> 32) == (uint32_t)h;
}

/* Moves the slot named by handle h from state `from` to `to`.  False if it has moved on. */
bool bl__task_slot_cas(uint64_t h, unsigned from, unsigned to, uint64_t *seen)
{
    ctl *c = bl__task_slot_of(h);
    uint64_t gen = (uint64_t)(uint32_t)h << 32;
    uint64_t want = gen | from;
    if (!c) {
        if (seen) *seen = 0;
        return false;
    }
    /* Acq_rel: the winner's decision is the other side's to see. */
    bool ok = atomic_compare_exchange_strong_explicit(&c->word, &want, gen | to,
                                                      memory_order_acq_rel, memory_order_acquire);
    if (seen) *seen = want;
    return ok;
}
