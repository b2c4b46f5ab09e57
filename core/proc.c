/*
 * core/proc.c - the process table.
 *
 * Slots live in chunks of 64Ki PCBs reached through a directory of 64Ki
 * chunk pointers (2^32 slots at most).  A chunk is mapped with
 * MAP_NORESERVE the first time an index in it is handed out and stays until
 * the runtime is torn down, so lookups need no lock and never see freed
 * memory.
 *
 * Free slots circulate through three levels, each cheaper than the next:
 *  1. the calling scheduler's cache (no atomics);
 *  2. a shared lock-free stack of batches of BATCH slots, guarded against ABA
 *     by a counter beside the pointer (16-byte CAS);
 *  3. fresh indices from an atomic bump counter.
 * A cache that grows past 2 * BATCH hands a batch back, so a scheduler that
 * only reaps processes spawned elsewhere does not hoard slots.
 */
#define _GNU_SOURCE
#include "core/proc.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_BITS  16
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define DIR_SIZE    (1u << 16)
#define BATCH       128u

static _Atomic(bl_proc *) dir[DIR_SIZE];
static _Atomic uint32_t extent;                               /* indices handed out so far */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER; /* cold: once per chunk */

/* Batch stack: top PCB of the top batch plus an ABA counter. */
typedef union batch_top {
    unsigned __int128 word;
    struct {
        bl_proc *head;  /* first slot of the top batch; its inject.next links the next batch */
        uint64_t count; /* bumped on every pop and push */
    };
} batch_top;
static _Alignas(16) batch_top batches;

void bl__ptab_init(void)
{
    atomic_store_explicit(&extent, 0, memory_order_relaxed);
    batches.word = 0;
}

void bl__ptab_destroy(void)
{
    for (unsigned i = 0; i < DIR_SIZE; i++) {
        bl_proc *c = atomic_load_explicit(&dir[i], memory_order_relaxed);
        if (!c) break;
        munmap(c, sizeof(bl_proc) * CHUNK_SLOTS);
        atomic_store_explicit(&dir[i], NULL, memory_order_relaxed);
    }
    atomic_store_explicit(&extent, 0, memory_order_relaxed);
    batches.word = 0;
}

uint32_t bl__ptab_extent(void)
{
    return atomic_load_explicit(&extent, memory_order_acquire);
}

static inline bl_proc *slot(uint32_t idx)
{
    /* Acquire pairs with the release store that published the chunk. */
    bl_proc *c = atomic_load_explicit(&dir[idx >> CHUNK_BITS], memory_order_acquire);
    return c ? c + (idx & (CHUNK_SLOTS - 1)) : NULL;
}

void bl__ptab_each(void (*fn)(bl_proc *p, void *ctx), void *ctx)
{
    uint32_t n = bl__ptab_extent();
    for (uint32_t i = 0; i < n; i++) {
        bl_proc *p = slot(i);
        if (p) fn(p, ctx);
    }
}

bl_proc *bl__proc_lookup(bl_pid pid)
{
    if (pid >> BL_PID_NODE_SHIFT) return NULL; /* remote node, or bit 63 */
    uint32_t low = (uint32_t)pid;
    if (low == 0) return NULL;
    uint32_t idx = low - 1;
    if (idx >= bl__ptab_extent()) return NULL;
    return slot(idx);
}

static bl_proc *grow(void)
{
    uint32_t idx = atomic_fetch_add_explicit(&extent, 1, memory_order_relaxed);
    if (idx == UINT32_MAX) return NULL;
    bl_proc *c = atomic_load_explicit(&dir[idx >> CHUNK_BITS], memory_order_acquire);
    if (!c) {
        pthread_mutex_lock(&grow_lock);
        c = atomic_load_explicit(&dir[idx >> CHUNK_BITS], memory_order_relaxed);
        if (!c) {
            void *m = mmap(NULL, sizeof(bl_proc) * CHUNK_SLOTS, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m != MAP_FAILED) {
                /* Zeroed pages: every slot starts as generation 0, FREE.
                 * Nothing is written here: a slot's page is touched when
                 * the slot is first handed out, not all 64Ki at once. */
                c = m;
                atomic_store_explicit(&dir[idx >> CHUNK_BITS], c, memory_order_release);
            }
        }
        pthread_mutex_unlock(&grow_lock);
        if (!c) return NULL; /* the index is lost; the table just has a hole */
    }
    /* Only indices below extent are ever looked up, and this one is
     * published (bl__box_open) after its index is set. */
    bl_proc *p = c + (idx & (CHUNK_SLOTS - 1));
    BL_PUBLISH(p->index, idx); /* the snapshot and the watchdog read it (core/proc.h) */
    return p;
}

static bool pop_batch(bl_proc_cache *c)
{
    batch_top old, new;
    old.word = __atomic_load_n(&batches.word, __ATOMIC_ACQUIRE);
    do {
        if (!old.head) return false;
        /* PCB memory is never freed, so reading a popped head is safe; the
         * counter makes the CAS fail if the stack changed meanwhile. */
        new.head = (bl_proc *)atomic_load_explicit(&old.head->inject.next, memory_order_relaxed);
        new.count = old.count + 1;
    } while (!__atomic_compare_exchange_n(&batches.word, &old.word, new.word, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    c->free = old.head;
    c->n = BATCH;
    return true;
}

static void push_batch(bl_proc_cache *c)
{
    /* Split off the first BATCH slots of the cache. */
    bl_proc *first = c->free, *last = first;
    for (unsigned i = 1; i < BATCH; i++) last = last->rq_next;
    c->free = last->rq_next;
    c->n -= BATCH;
    last->rq_next = NULL;
    batch_top old, new;
    old.word = __atomic_load_n(&batches.word, __ATOMIC_ACQUIRE);
    do {
        atomic_store_explicit(&first->inject.next, (bl_qnode *)old.head, memory_order_relaxed);
        new.head = first;
        new.count = old.count + 1;
        /* Release: the batch's links are visible to whoever pops it. */
    } while (!__atomic_compare_exchange_n(&batches.word, &old.word, new.word, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
}

bl_proc *bl__proc_alloc(bl_proc_cache *c)
{
    if (!c->free && !pop_batch(c)) return grow();
    bl_proc *p = c->free;
    c->free = p->rq_next;
    c->n--;
    return p;
}

void bl__proc_release(bl_proc_cache *c, bl_proc *p)
{
    p->rq_next = c->free;
    c->free = p;
    if (++c->n >= 2 * BATCH) push_batch(c);
}

void bl__proc_cache_flush(bl_proc_cache *c)
{
    while (c->n >= BATCH) push_batch(c);
    /* A partial batch stays with the dying cache; the table is torn down next. */
    c->free = NULL;
    c->n = 0;
}
