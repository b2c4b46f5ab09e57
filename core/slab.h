/*
 * core/slab.h - per-scheduler slab for message envelopes and other small
 * runtime objects (timer entries).
 *
 * A slab belongs to one scheduler thread, which allocates from it and frees
 * into it without atomics.  Any other thread frees by pushing the object on
 * the owner's per-class `remote` stack (lock-free); the owner takes that
 * stack back when it runs dry in a class, and at every trim.
 *
 * Memory comes in spans: 256 KiB, aligned to their size, each holding
 * objects of one size class behind a 64-byte header, so an object's span is
 * its address rounded down.  A span counts its live objects; one that has
 * none left joins its slab's empty list, from which any class can take it.
 * bl__slab_trim, run by the owner when idle and now and then under load,
 * gives spans that have stayed empty for a second back to the kernel
 * (MADV_DONTNEED) and into a pool shared by every scheduler, so that memory
 * taken by a burst returns, and memory one scheduler freed serves another.
 * Objects never move between slabs: a span is reused by another slab only
 * once it is empty.
 *
 * Size classes are powers of two from 64 to 4096 bytes.  Larger objects
 * come from malloc and are marked BL_SLAB_HEAP.  This allocator is ours,
 * not malloc's, because it is on every send: no lock, no atomic on the
 * owner's path, and frees from other threads cost one CAS.
 */
#ifndef BL_CORE_SLAB_H
#define BL_CORE_SLAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BL_SLAB_CLASSES 7                   /* 64, 128, ..., 4096 bytes */
#define BL_SLAB_MAX     4096                /* largest slab object */
#define BL_SLAB_HEAP    15                  /* class number meaning "from malloc" */
#define BL_SLAB_NONE    0xFFFF              /* owner number meaning "no slab" */
#define BL_SLAB_SPAN    ((size_t)256 << 10) /* bytes in a span, and its alignment */
/* Empty spans a slab keeps (8 MiB) for its next burst: giving them back and
 * faulting them in again cost a burst that follows within seconds. */
#define BL_SLAB_KEEP 32

typedef struct bl_slab_remote {
    _Alignas(64) _Atomic(void *) head; /* objects freed by other threads */
} bl_slab_remote;

struct bl_slab;

/* A span's header, in its first 64 bytes.  Owner thread only. */
typedef struct bl_span {
    struct bl_span *next, *prev;   /* its place in the slab's partial or empty list */
    struct bl_span *anext, *aprev; /* every span of the slab, for destroy */
    void *free;                    /* free objects, linked through their first word */
    char *bump;                    /* next object never handed out */
    uint64_t empty_since;          /* when it was first seen empty (ns), 0 = not yet */
    uint32_t live;                 /* objects handed out and not freed */
    uint8_t cls;                   /* size class */
    uint8_t where;                 /* which list it is on (slab.c) */
    uint8_t pad[2];                /* to 64 bytes */
} bl_span;

/* Objects of one other slab and class freed by this slab's thread, held to
 * go back together (bl__slab_free_other). */
typedef struct bl_slab_pend {
    void *head, *tail; /* a chain linked through the objects' first word */
    uint32_t n;        /* its length */
} bl_slab_pend;

/* A held chain goes back at this length, at the latest. */
#define BL_SLAB_BATCH 32

typedef struct bl_slab {
    bl_span *cur[BL_SLAB_CLASSES];     /* the span each class allocates from, or NULL */
    bl_span *partial[BL_SLAB_CLASSES]; /* other spans with free objects, per class */
    bl_span *empty;                    /* spans with no live object, any class */
    bl_span *spans;                    /* every span this slab holds, through anext */
    unsigned nempty;                   /* length of empty */
    unsigned index;                    /* this slab's number in the registry */
    int numa;                          /* node spans are bound to, -1 = none */
    size_t span_bytes;                 /* bytes of spans held (stats) */
    uint64_t trim_at;                  /* no trim before this time (ns) */
    _Atomic uint64_t envelopes; /* message envelopes its owner allocated (core/msg.c; stats) */
    struct bl_slab_pend *pend;  /* other slabs' objects freed here, by owner and class, or NULL */
    unsigned npend;             /* owners pend has room for */
    uint32_t pending;           /* objects held in pend */
    bl_slab_remote remote[BL_SLAB_CLASSES]; /* cross-thread frees, one line per class */
} bl_slab;

/* The registry of slabs by index, for frees from other threads.  (NULL, 0)
 * at the runtime's stop also unmaps the spans of the shared pool. */
void bl__slab_registry(bl_slab **slabs, unsigned n);

void bl__slab_init(bl_slab *s, unsigned index, int numa);
/* Unmaps every span.  Objects still referenced become invalid. */
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
/* Owner thread only: obj, of class c, came from s. */
void bl__slab_free_local(bl_slab *s, unsigned c, void *obj);
/* Any thread: frees obj of class c into slab number `owner`. */
void bl__slab_free_remote(unsigned owner, unsigned c, void *obj);
/*
 * s's thread frees obj, of class c from slab `owner` (not s): it is held
 * with others for the same slab and class and handed back in one CAS per
 * BL_SLAB_BATCH, instead of one each (a cache line taken from the owner
 * every time).  Falls back to bl__slab_free_remote if no room can be had.
 */
void bl__slab_free_other(bl_slab *s, unsigned owner, unsigned c, void *obj);
/* s's thread hands back everything it holds for other slabs: at every turn
 * of its loop, when idle, and before it stops. */
void bl__slab_flush(bl_slab *s);
/*
 * Owner thread only: takes back objects other threads freed, and gives
 * spans empty since before now_ns - 1 s back to the kernel and the shared
 * pool (keeping a few for the next burst).  Returns how many it gave back.
 */
unsigned bl__slab_trim(bl_slab *s, uint64_t now_ns);
/* Owner: when a trim could next give something back (UINT64_MAX: nothing
 * to give), so that a scheduler going to sleep wakes up for it. */
uint64_t bl__slab_next_trim(const bl_slab *s);

#endif /* BL_CORE_SLAB_H */
