/*
 * core/stack.c - process stacks and their per-scheduler pools.
 */
#define _GNU_SOURCE
#include "core/stack.h"
#include "core/ctx.h"

#include <errno.h>
#include <numaif.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi; older libc headers lack it */
#endif

#define STACK_MIN    (16u << 10)
#define COLD_MAX     4096
#define CHUNK_STACKS 64 /* pool-sized stacks per mapping */

static size_t page_size;
static bool light_guards;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    light_guards = madvise(m, page_size, MADV_GUARD_INSTALL) == 0;
    munmap(m, 2 * page_size);
}

void bl__stack_probe(void)
{
    pthread_once(&probe_once, probe);
}

bool bl__stack_light_guards(void)
{
    bl__stack_probe();
    return light_guards;
}

size_t bl__stack_round(size_t size)
{
    bl__stack_probe();
    if (size < STACK_MIN) size = STACK_MIN;
    return (size + page_size - 1) & ~(page_size - 1);
}

/* Installs s's guard page (the first page of its range): 0, or -1 with errno set. */
static int guard(void *m)
{
    return light_guards ? madvise(m, page_size, MADV_GUARD_INSTALL)
                        : mprotect(m, page_size, PROT_NONE);
}

/* Lays out a stack in the map_size bytes at m, whose guard is installed. */
static bl_stack *lay_out(void *m, size_t map_size)
{
    /* The descriptor lives in the top bytes of the stack itself. */
    bl_stack *s = (bl_stack *)((char *)m + map_size - sizeof(bl_stack));
    s->next = NULL;
    s->map = m;
    s->map_size = map_size;
    s->lo = (char *)m + page_size;
    s->size = (size_t)((char *)s - (char *)s->lo);
    s->cold = false;
    return s;
}

/* Maps bytes of fresh stack memory, preferably on node numa (-1: any). */
static void *map_region(size_t bytes, int numa)
{
    /* MAP_NORESERVE: untouched stack pages cost nothing, not even commit charge. */
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return NULL;
    if (numa >= 0) {
        /* Preferred, not bound: a full node must not make spawn fail. */
        unsigned long mask = 1ul << (numa & 63);
        (void)mbind(m, bytes, MPOL_PREFERRED, &mask, 64, 0);
    }
    return m;
}

static bl_stack *stack_map(size_t size, int numa)
{
    size_t map_size = bl__stack_round(size) + page_size; /* plus the guard page */
    void *m = map_region(map_size, numa);
    if (!m) return NULL;
    if (guard(m) != 0) {
        munmap(m, map_size);
        return NULL;
    }
    return lay_out(m, map_size);
}

/*
 * A pool-sized stack carved from the pool's chunk, a new chunk mapped when
 * it is used up.  One mapping serves CHUNK_STACKS stacks: a spawn that
 * finds the pool empty makes one mmap in CHUNK_STACKS (the call takes the
 * address space's lock for writing, which every page fault of the other
 * schedulers then waits for), and a million live stacks take a million /
 * CHUNK_STACKS mappings at most where one each, not always merged by the
 * kernel, ran into vm.max_map_count.  Each stack is still a range of its
 * own, with its own guard page, and is unmapped on its own.
 */
static bl_stack *stack_carve(bl_stack_pool *p)
{
    size_t map_size = p->size + page_size;
    if (!p->chunk_left) {
        char *m = map_region(map_size * CHUNK_STACKS, p->numa);
        /* Not room for a chunk: maybe for one stack (the last memory). */
        if (!m) {
            bl_stack *s = stack_map(p->size, p->numa);
            if (s) p->mapped += map_size;
            return s;
        }
        p->chunk_next = m;
        p->chunk_left = CHUNK_STACKS;
        p->mapped += map_size * CHUNK_STACKS;
    }
    char *m = p->chunk_next;
    if (guard(m) != 0) return NULL; /* the range stays in the chunk, for the next try */
    p->chunk_next = m + map_size;
    p->chunk_left--;
    return lay_out(m, map_size);
}

void bl__stack_free(bl_stack *s)
{
    if (!s) return;
#ifdef BL_ASAN
    /* A stack of a process that never finished still carries the poisoned
     * redzones of its live frames; ASan does not clear them on munmap, and
     * the next mapping at this address would inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    munmap(s->map, s->map_size);
}

/*
 * In the ASan build a pooled stack is poisoned, so that anything still
 * reading a finished process's frames (a child reading arguments its
 * returned parent kept on its stack) is a report, not a silent stale read.
 */
static void pooled(bl_stack *s)
{
#ifdef BL_ASAN
    ASAN_POISON_MEMORY_REGION(s->lo, s->size);
#else
    (void)s;
#endif
}

static bl_stack *taken(bl_stack *s)
{
#ifdef BL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    return s;
}

void bl__stack_pool_init(bl_stack_pool *p, size_t size, unsigned hot_max, int numa)
{
    bl__stack_probe();
    *p = (bl_stack_pool){
        .size = bl__stack_round(size), .hot_max = hot_max, .cold_max = COLD_MAX, .numa = numa};
}

static void free_list(bl_stack *s)
{
    while (s) {
        bl_stack *next = s->next;
        bl__stack_free(s);
        s = next;
    }
}

/* ---- the surplus, by age ---- */

static void list_push(bl_stack_list *l, bl_stack *s)
{
    s->next = l->head;
    l->head = s;
    if (!l->tail) l->tail = s;
}

static bl_stack *list_pop(bl_stack_list *l)
{
    bl_stack *s = l->head;
    if (!s) return NULL;
    l->head = s->next;
    if (!l->head) l->tail = NULL;
    return s;
}

/* Moves all of src in front of dst. */
static void list_move(bl_stack_list *dst, bl_stack_list *src)
{
    if (!src->head) return;
    src->tail->next = dst->head;
    if (!dst->tail) dst->tail = src->tail;
    dst->head = src->head;
    *src = (bl_stack_list){0};
}

/* An age has passed since the last turn: each generation moves one older. */
static void age(bl_stack_pool *p, uint64_t now_ns)
{
    if (!p->epoch_ns) p->epoch_ns = now_ns;
    if (now_ns - p->epoch_ns < BL_STACK_AGE_NS) return;
    list_move(&p->surplus[2], &p->surplus[1]);
    p->surplus[1] = p->surplus[0];
    p->surplus[0] = (bl_stack_list){0};
    p->epoch_ns = now_ns;
}

void bl__stack_pool_destroy(bl_stack_pool *p)
{
    free_list(p->hot);
    free_list(p->cold);
    for (int g = 0; g < 3; g++) {
        free_list(p->surplus[g].head);
        p->surplus[g] = (bl_stack_list){0};
    }
    if (p->chunk_left) munmap(p->chunk_next, (p->size + page_size) * p->chunk_left);
    p->chunk_next = NULL;
    p->chunk_left = 0;
    p->hot = p->cold = NULL;
    p->nhot = p->ncold = p->nsurplus = 0;
}

bl_stack *bl__stack_get(bl_stack_pool *p, size_t size)
{
    size_t want = size ? bl__stack_round(size) : p->size;
    if (want != p->size) return stack_map(want, p->numa);
    bl_stack *s = p->hot;
    if (s) {
        p->hot = s->next;
        p->nhot--;
        return taken(s);
    }
    /* The most recently freed first: the likeliest to be in the cache. */
    for (int g = 0; g < 3; g++)
        if ((s = list_pop(&p->surplus[g]))) {
            p->nsurplus--;
            return taken(s);
        }
    s = p->cold;
    if (s) {
        p->cold = s->next;
        p->ncold--;
        s->cold = false;
        return taken(s);
    }
    return stack_carve(p);
}

void bl__stack_put(bl_stack_pool *p, bl_stack *s)
{
#ifdef BL_ASAN
    /* Frames that never returned leave poisoned redzones behind. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    /* Stacks of another size than the pool's are not kept. */
    if (s->map_size != p->size + page_size) {
        bl__stack_free(s);
        return;
    }
    pooled(s);
    if (p->nhot < p->hot_max) {
        s->next = p->hot;
        p->hot = s;
        p->nhot++;
        return;
    }
    list_push(&p->surplus[0], s);
    p->nsurplus++;
}

/* Gives up to max stacks of generation g back to the kernel; the rest are left. */
static void trim_gen(bl_stack_pool *p, int g, unsigned *max)
{
    bl_stack *s;
    for (; *max && (s = list_pop(&p->surplus[g])); (*max)--) {
        p->nsurplus--;
        if (p->ncold >= p->cold_max) {
            p->mapped -= s->map_size;
            bl__stack_free(s);
            continue;
        }
        /* Keep the descriptor's page; give the rest back to the kernel. */
        (void)madvise(s->lo, s->map_size - 2 * page_size, MADV_DONTNEED);
        s->cold = true;
        s->next = p->cold;
        p->cold = s;
        p->ncold++;
    }
}

unsigned bl__stack_trim(bl_stack_pool *p, unsigned max)
{
    for (int g = 2; g >= 0; g--) trim_gen(p, g, &max);
    return p->nsurplus;
}

bool bl__stack_trim_aged(bl_stack_pool *p, unsigned max, uint64_t now_ns)
{
    age(p, now_ns);
    trim_gen(p, 2, &max);
    return p->surplus[2].head != NULL;
}

uint64_t bl__stack_next_trim(const bl_stack_pool *p)
{
    if (p->surplus[2].head) return 0;
    if (p->surplus[0].head || p->surplus[1].head) return p->epoch_ns + BL_STACK_AGE_NS;
    return UINT64_MAX;
}
