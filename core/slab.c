/*
 * core/slab.c - per-scheduler slab allocator, in spans (see slab.h).
 */
#define _GNU_SOURCE
#include "core/slab.h"

#include <numaif.h>
#include <stdbool.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

_Static_assert(sizeof(bl_span) == 64, "the span header is the first 64 bytes of a span");

/*
 * In the ASan build a free object is poisoned past its first word (the free
 * list's link, which remote frees write before the owner takes the object
 * back), so that a use after free is a report, not a silent read of reused
 * memory; and a second free of it reads its poisoned body first, which
 * reports the double free with its stack.  Poison outlives munmap in ASan's
 * shadow: a span is unpoisoned before its address range goes.
 */
#if defined(__SANITIZE_ADDRESS__)
static void obj_freed(void *obj, size_t sz)
{
    char *body = (char *)obj + sizeof(void *);
    (void)*(volatile char *)body; /* freed before: use-after-poison, here */
    ASAN_POISON_MEMORY_REGION(body, sz - sizeof(void *));
}
#define OBJ_FREED(obj, sz) obj_freed(obj, sz)
#define OBJ_TAKEN(obj, sz) ASAN_UNPOISON_MEMORY_REGION(obj, sz)
#define SPAN_UNPOISON(sp)  ASAN_UNPOISON_MEMORY_REGION(sp, BL_SLAB_SPAN)
#else
#define OBJ_FREED(obj, sz) ((void)0)
#define OBJ_TAKEN(obj, sz) ((void)0)
#define SPAN_UNPOISON(sp)  ((void)0)
#endif

/* Where a span is (bl_span.where). */
enum { SPAN_CUR, SPAN_PARTIAL, SPAN_FULL, SPAN_EMPTY };

#define EMPTY_NS 1000000000ull  /* how long a span stays empty before it goes */
#define POOL_MAX 64             /* spans the shared pool keeps (pages given back) */
#define PAGE     ((size_t)4096) /* what stays resident of a pooled span */

static bl_slab **registry;
static unsigned registry_len;

/*
 * The shared pool: spans trims gave back, their pages returned to the
 * kernel but their addresses kept (aligned mappings are costly to make).
 * Any slab takes from it before mapping anew.  A mutex: it is touched once
 * per span, never per object.
 */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static bl_span *pool;  /* through next */
static unsigned npool; /* its length */

static inline bl_span *span_of(void *obj)
{
    return (bl_span *)((uintptr_t)obj & ~(uintptr_t)(BL_SLAB_SPAN - 1));
}

static inline char *span_end(bl_span *sp)
{
    return (char *)sp + BL_SLAB_SPAN;
}

static void list_push(bl_span **head, bl_span *sp)
{
    sp->prev = NULL;
    sp->next = *head;
    if (*head) (*head)->prev = sp;
    *head = sp;
}

static void list_del(bl_span **head, bl_span *sp)
{
    if (sp->prev)
        sp->prev->next = sp->next;
    else
        *head = sp->next;
    if (sp->next) sp->next->prev = sp->prev;
    sp->next = sp->prev = NULL;
}

/* s holds sp from now on (the list destroy walks). */
static void adopt(bl_slab *s, bl_span *sp)
{
    sp->aprev = NULL;
    sp->anext = s->spans;
    if (s->spans) s->spans->aprev = sp;
    s->spans = sp;
    s->span_bytes += BL_SLAB_SPAN;
}

static void disown(bl_slab *s, bl_span *sp)
{
    if (sp->aprev)
        sp->aprev->anext = sp->anext;
    else
        s->spans = sp->anext;
    if (sp->anext) sp->anext->aprev = sp->aprev;
    s->span_bytes -= BL_SLAB_SPAN;
}

/* Makes sp a fresh span of class c: its objects all unused. */
static void reset(bl_span *sp, unsigned c)
{
    sp->free = NULL;
    sp->bump = (char *)sp + sizeof *sp;
    sp->live = 0;
    sp->cls = (uint8_t)c;
    sp->empty_since = 0;
}

static void bind_node(bl_slab *s, bl_span *sp)
{
    if (s->numa < 0) return;
    unsigned long mask = 1ul << (s->numa & 63);
    (void)mbind(sp, BL_SLAB_SPAN, MPOL_PREFERRED, &mask, 64, 0);
}

/* A new span: mapped twice its size, trimmed to an aligned one. */
static bl_span *span_map(void)
{
    size_t len = 2 * BL_SLAB_SPAN;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)m + BL_SLAB_SPAN - 1) & ~(uintptr_t)(BL_SLAB_SPAN - 1);
    size_t head = a - (uintptr_t)m, tail = len - head - BL_SLAB_SPAN;
    if (head) munmap(m, head);
    if (tail) munmap((char *)a + BL_SLAB_SPAN, tail);
    return (bl_span *)a;
}

static void span_unmap(bl_span *sp)
{
    SPAN_UNPOISON(sp);
    munmap(sp, BL_SLAB_SPAN);
}

static bl_span *pool_take(void)
{
    pthread_mutex_lock(&pool_lock);
    bl_span *sp = pool;
    if (sp) {
        pool = sp->next;
        npool--;
    }
    pthread_mutex_unlock(&pool_lock);
    return sp;
}

/* Gives sp's pages back to the kernel and sp to the pool (or unmaps it). */
static void pool_put(bl_span *sp)
{
    (void)madvise((char *)sp + PAGE, BL_SLAB_SPAN - PAGE, MADV_DONTNEED);
    pthread_mutex_lock(&pool_lock);
    bool keep = npool < POOL_MAX;
    if (keep) {
        sp->next = pool;
        pool = sp;
        npool++;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!keep) span_unmap(sp);
}

void bl__slab_registry(bl_slab **slabs, unsigned n)
{
    registry = slabs;
    registry_len = n;
    if (slabs) return;
    /* The runtime is gone: so is the pool. */
    bl_span *sp;
    while ((sp = pool_take())) span_unmap(sp);
}

void bl__slab_init(bl_slab *s, unsigned index, int numa)
{
    memset(s, 0, sizeof *s);
    s->index = index;
    s->numa = numa;
}

void bl__slab_destroy(bl_slab *s)
{
    free(s->pend);
    bl_span *sp = s->spans;
    while (sp) {
        bl_span *next = sp->anext;
        span_unmap(sp);
        sp = next;
    }
    unsigned index = s->index;
    int numa = s->numa;
    bl__slab_init(s, index, numa);
}

/* sp has no live object left and is not a class's current span. */
static void to_empty(bl_slab *s, bl_span *sp)
{
    if (sp->where == SPAN_PARTIAL) list_del(&s->partial[sp->cls], sp);
    sp->where = SPAN_EMPTY;
    sp->empty_since = 0;
    list_push(&s->empty, sp);
    s->nempty++;
}

static inline __attribute__((always_inline)) void free_one(bl_slab *s, void *obj)
{
    bl_span *sp = span_of(obj);
    OBJ_FREED(obj, bl__slab_class_size(sp->cls));
    *(void **)obj = sp->free;
    sp->free = obj;
    /* The common case, a span still in use with objects out, is one branch. */
    if (__builtin_expect(--sp->live != 0 && sp->where != SPAN_FULL, 1)) return;
    if (sp->live == 0 && sp->where != SPAN_CUR) {
        to_empty(s, sp);
    } else if (sp->where == SPAN_FULL) {
        sp->where = SPAN_PARTIAL;
        list_push(&s->partial[sp->cls], sp);
    }
}

void bl__slab_free_local(bl_slab *s, unsigned c, void *obj)
{
    (void)c; /* the span knows */
    free_one(s, obj);
}

/* Takes back what other threads freed into class c. */
static void drain_remote(bl_slab *s, unsigned c)
{
    /* Acquire: pairs with the release CAS of remote frees, so the objects'
     * contents written by other threads (their last use) happen before reuse. */
    void *o = atomic_exchange_explicit(&s->remote[c].head, NULL, memory_order_acquire);
    while (o) {
        void *next = *(void **)o;
        free_one(s, o);
        o = next;
    }
}

static inline void *take(bl_span *sp, size_t sz)
{
    void *o = sp->free;
    if (o) {
        sp->free = *(void **)o;
    } else {
        if ((size_t)(span_end(sp) - sp->bump) < sz) return NULL;
        o = sp->bump;
        sp->bump += sz;
    }
    sp->live++;
    OBJ_TAKEN(o, sz);
    return o;
}

/* The class's current span is exhausted (or there is none). */
static __attribute__((noinline)) void *alloc_slow(bl_slab *s, unsigned c)
{
    size_t sz = bl__slab_class_size(c);
    drain_remote(s, c);
    bl_span *cur = s->cur[c];
    void *o = cur ? take(cur, sz) : NULL;
    if (o) return o;
    bl_span *sp = s->partial[c];
    if (sp) {
        list_del(&s->partial[c], sp);
    } else if ((sp = s->empty)) {
        list_del(&s->empty, sp);
        s->nempty--;
        reset(sp, c);
    } else {
        sp = pool_take();
        if (!sp && !(sp = span_map())) return NULL;
        bind_node(s, sp);
        adopt(s, sp);
        reset(sp, c);
    }
    if (cur) cur->where = SPAN_FULL; /* on no list: its first free puts it back */
    sp->where = SPAN_CUR;
    s->cur[c] = sp;
    return take(sp, sz);
}

void *bl__slab_alloc(bl_slab *s, unsigned c)
{
    bl_span *sp = s->cur[c];
    void *o = sp ? take(sp, bl__slab_class_size(c)) : NULL;
    return o ? o : alloc_slow(s, c);
}

/* Pushes the chain first..last (linked through first words) on owner's stack of class c. */
static void push_remote(unsigned owner, unsigned c, void *first, void *last)
{
    bl_slab *s = owner < registry_len ? registry[owner] : NULL;
    if (!s) return; /* the runtime is gone; its spans were unmapped with it */
    _Atomic(void *) *head = &s->remote[c].head;
    void *old = atomic_load_explicit(head, memory_order_relaxed);
    do {
        *(void **)last = old;
        /* Release: the links and everything the freeing thread wrote before
         * are visible to the owner that takes the list with acquire. */
    } while (!atomic_compare_exchange_weak_explicit(head, &old, first, memory_order_release,
                                                    memory_order_relaxed));
}

void bl__slab_free_remote(unsigned owner, unsigned c, void *obj)
{
    push_remote(owner, c, obj, obj);
}

void bl__slab_free_other(bl_slab *s, unsigned owner, unsigned c, void *obj)
{
    if (!s->pend && owner < registry_len) {
        s->pend = calloc((size_t)registry_len * BL_SLAB_CLASSES, sizeof *s->pend);
        s->npend = s->pend ? registry_len : 0;
    }
    if (owner >= s->npend) {
        push_remote(owner, c, obj, obj);
        return;
    }
    bl_slab_pend *q = &s->pend[owner * BL_SLAB_CLASSES + c];
    *(void **)obj = q->head;
    if (!q->head) q->tail = obj;
    q->head = obj;
    s->pending++;
    if (++q->n < BL_SLAB_BATCH) return;
    push_remote(owner, c, q->head, q->tail);
    s->pending -= q->n;
    *q = (bl_slab_pend){0};
}

void bl__slab_flush(bl_slab *s)
{
    for (unsigned i = 0; s->pending && i < s->npend * BL_SLAB_CLASSES; i++) {
        bl_slab_pend *q = &s->pend[i];
        if (!q->n) continue;
        push_remote(i / BL_SLAB_CLASSES, i % BL_SLAB_CLASSES, q->head, q->tail);
        s->pending -= q->n;
        *q = (bl_slab_pend){0};
    }
}

uint64_t bl__slab_next_trim(const bl_slab *s)
{
    /* The spans seen empty by the last trim can go a second after it.  A
     * slab holding more than a few spans may also have objects freed by
     * other threads since (they do not wake the owner): it looks again
     * every second, while it holds that much. */
    bool more =
        s->nempty > BL_SLAB_KEEP || s->span_bytes > (BL_SLAB_KEEP + BL_SLAB_CLASSES) * BL_SLAB_SPAN;
    return more ? s->trim_at + EMPTY_NS : UINT64_MAX;
}

unsigned bl__slab_trim(bl_slab *s, uint64_t now_ns)
{
    /* At most every 10 ms: an idle scheduler calls this at every idle turn. */
    if (now_ns < s->trim_at) return 0;
    s->trim_at = now_ns + 10000000u;
    for (unsigned c = 0; c < BL_SLAB_CLASSES; c++) {
        /* Relaxed look: a free pushed after it waits for the next trim. */
        if (atomic_load_explicit(&s->remote[c].head, memory_order_relaxed)) drain_remote(s, c);
        /* A class no longer used lets its current span go too. */
        bl_span *cur = s->cur[c];
        if (cur && cur->live == 0) {
            s->cur[c] = NULL;
            to_empty(s, cur);
        }
    }
    unsigned given = 0, kept = 0;
    bl_span *sp = s->empty;
    while (sp) {
        bl_span *next = sp->next;
        if (!sp->empty_since) {
            sp->empty_since = now_ns; /* first seen empty: its second starts now */
        } else if (++kept > BL_SLAB_KEEP && now_ns - sp->empty_since >= EMPTY_NS) {
            list_del(&s->empty, sp);
            s->nempty--;
            disown(s, sp);
            pool_put(sp);
            given++;
        }
        sp = next;
    }
    return given;
}
