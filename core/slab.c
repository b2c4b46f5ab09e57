/*
 * core/slab.c - per-scheduler slab allocator.
 */
#define _GNU_SOURCE
#include "core/slab.h"

#include <numaif.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_SIZE (256u << 10)

static bl_slab **registry;
static unsigned registry_len;

void bl__slab_registry(bl_slab **slabs, unsigned n)
{
    registry = slabs;
    registry_len = n;
}

void bl__slab_init(bl_slab *s, unsigned index, int numa)
{
    memset(s, 0, sizeof *s);
    s->index = index;
    s->numa = numa;
}

void bl__slab_destroy(bl_slab *s)
{
    void *c = s->chunks;
    while (c) {
        void *next = *(void **)c;
        munmap(c, CHUNK_SIZE);
        c = next;
    }
    memset(s->free, 0, sizeof s->free);
    for (unsigned i = 0; i < BL_SLAB_CLASSES; i++)
        atomic_store_explicit(&s->remote[i].head, NULL, memory_order_relaxed);
    s->chunks = NULL;
    s->bump = s->bump_end = NULL;
}

static int new_chunk(bl_slab *s)
{
    void *c = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED) return -1;
    if (s->numa >= 0) {
        unsigned long mask = 1ul << (s->numa & 63);
        (void)mbind(c, CHUNK_SIZE, MPOL_PREFERRED, &mask, 64, 0);
    }
    *(void **)c = s->chunks;
    s->chunks = c;
    s->chunk_bytes += CHUNK_SIZE;
    /* The first 64 bytes hold the chunk link; objects start 64-byte aligned after it. */
    s->bump = (char *)c + 64;
    s->bump_end = (char *)c + CHUNK_SIZE;
    return 0;
}

void *bl__slab_alloc(bl_slab *s, unsigned c)
{
    void *o = s->free[c];
    if (o) {
        s->free[c] = *(void **)o;
        return o;
    }
    /* Acquire: pairs with the release CAS of remote frees, so the objects'
     * contents written by other threads (their last use) happen before reuse. */
    o = atomic_exchange_explicit(&s->remote[c].head, NULL, memory_order_acquire);
    if (o) {
        s->free[c] = *(void **)o;
        return o;
    }
    size_t sz = bl__slab_class_size(c);
    if ((size_t)(s->bump_end - s->bump) < sz && new_chunk(s) != 0) return NULL;
    o = s->bump;
    s->bump += sz;
    return o;
}

void bl__slab_free_local(bl_slab *s, unsigned c, void *obj)
{
    *(void **)obj = s->free[c];
    s->free[c] = obj;
}

void bl__slab_free_remote(unsigned owner, unsigned c, void *obj)
{
    bl_slab *s = owner < registry_len ? registry[owner] : NULL;
    if (!s) return; /* the runtime is gone; its chunks were unmapped with it */
    _Atomic(void *) *head = &s->remote[c].head;
    void *old = atomic_load_explicit(head, memory_order_relaxed);
    do {
        *(void **)obj = old;
        /* Release: the link and everything the freeing thread wrote before
         * is visible to the owner that takes the list with acquire. */
    } while (!atomic_compare_exchange_weak_explicit(head, &old, obj, memory_order_release,
                                                    memory_order_relaxed));
}
