/*
 * core/slab.h - per-scheduler slab for message envelopes and other small
 * runtime objects (timer entries).
 *
 * A slab belongs to one scheduler thread, which allocates from it and frees
 * into it without atomics.  Any other thread frees by pushing the object on
 * the owner's per-class `remote` stack (lock-free); the owner takes that
 * whole stack back when its local free list runs dry.  Objects never move
 * between slabs, so memory stays on the owner's NUMA node.
 *
 * Size classes are powers of two from 64 to 4096 bytes.  Larger objects
 * come from malloc and are marked BL_SLAB_HEAP.
 */
#ifndef BL_CORE_SLAB_H
#define BL_CORE_SLAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BL_SLAB_CLASSES 7      /* 64, 128, ..., 4096 bytes */
#define BL_SLAB_MAX     4096   /* largest slab object */
#define BL_SLAB_HEAP    15     /* class number meaning "from malloc" */
#define BL_SLAB_NONE    0xFFFF /* owner number meaning "no slab" */

typedef struct bl_slab_remote {
    _Alignas(64) _Atomic(void *) head; /* objects freed by other threads */
} bl_slab_remote;

typedef struct bl_slab {
    void *free[BL_SLAB_CLASSES]; /* owner-only free lists, linked through the first word */
    char *bump;                  /* next unused byte of the current chunk */
    char *bump_end;              /* end of the current chunk */
    void *chunks;                /* every chunk, linked through its first word */
    unsigned index;              /* this slab's number in the registry */
    int numa;                    /* node chunks are bound to, -1 = none */
    size_t chunk_bytes;          /* bytes mapped in chunks (stats) */
    bl_slab_remote remote[BL_SLAB_CLASSES]; /* cross-thread frees, one line per class */
} bl_slab;

/* The registry of slabs by index, for frees from other threads. */
void bl__slab_registry(bl_slab **slabs, unsigned n);

void bl__slab_init(bl_slab *s, unsigned index, int numa);
/* Unmaps every chunk.  Objects still referenced become invalid. */
void bl__slab_destroy(bl_slab *s);

/* Size class for n bytes, or BL_SLAB_HEAP above BL_SLAB_MAX. */
static inline unsigned bl__slab_class(size_t n)
{
    if (n <= 64) return 0;
    if (n > BL_SLAB_MAX) return BL_SLAB_HEAP;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(n - 1))) - 6;
}

/* Bytes of class c. */
static inline size_t bl__slab_class_size(unsigned c)
{
    return (size_t)64 << c;
}

/* Owner thread only: an object of class c (< BL_SLAB_CLASSES), NULL when out of memory. */
void *bl__slab_alloc(bl_slab *s, unsigned c);
/* Owner thread only. */
void bl__slab_free_local(bl_slab *s, unsigned c, void *obj);
/* Any thread: frees obj of class c into slab number `owner`. */
void bl__slab_free_remote(unsigned owner, unsigned c, void *obj);

#endif /* BL_CORE_SLAB_H */
