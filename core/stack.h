/*
 * core/stack.h - process stacks: mmap'd, guard page below, pooled per
 * scheduler.
 *
 * Each stack is one range of anonymous memory: a guard page at the bottom,
 * the usable stack above it, and this descriptor in the last bytes at the
 * top (so a stack needs no separate allocation).  Pool-sized stacks are
 * carved from chunks mapped 64 at a time; each is unmapped on its own.  The guard is installed with
 * MADV_GUARD_INSTALL where the kernel has it (Linux 6.13+): no separate VMA
 * per guard, so millions of stacks do not run into vm.max_map_count.
 * Elsewhere it falls back to mprotect(PROT_NONE).
 *
 * A pool belongs to one scheduler thread and is never touched by another.
 * Up to `hot_max` free stacks keep their memory; beyond that, released
 * stacks are handed back to the kernel with MADV_DONTNEED (their address
 * range stays reserved for reuse), and beyond `cold_max` they are unmapped.
 * Both cost a TLB shootdown across every core running the program, so
 * bl__stack_put never does them: stacks past the high-water mark wait on
 * the `surplus` lists (still resident, first to be reused) until the
 * scheduler calls bl__stack_trim_aged, from its idle path or a few at a
 * time, and then only once they have stayed free a while (an age, 1 s):
 * an idle scheduler trimming the stacks that a burst of exits has just
 * freed would interrupt every busy one with its shootdowns (a ring of a
 * million processes, each exiting after its hop, went from 0.4 to 2 us a
 * hop), and a burst that follows soon reuses them instead.
 */
#ifndef BL_CORE_STACK_H
#define BL_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bl_stack {
    struct bl_stack *next; /* pool link while free */
    void *map;             /* start of the mapping (the guard page) */
    size_t map_size;       /* bytes mapped in all */
    void *lo;              /* lowest usable byte, just above the guard */
    size_t size;           /* usable bytes, lo up to this descriptor */
    bool cold;             /* memory was returned with MADV_DONTNEED */
} bl_stack;

/* A list of free stacks with its tail, so that a whole list moves in one step. */
typedef struct bl_stack_list {
    bl_stack *head, *tail;
} bl_stack_list;

/* A surplus stack is trimmed once it has stayed free 1 to 2 of these (ns). */
#define BL_STACK_AGE_NS 1000000000ull

typedef struct bl_stack_pool {
    bl_stack *hot;  /* free stacks whose pages are still resident */
    bl_stack *cold; /* free stacks whose pages went back to the kernel */
    /* Free stacks past hot_max, resident until trimmed, by the age in which
     * they were freed: [0] this one, [1] the one before, [2] older. */
    bl_stack_list surplus[3];
    uint64_t epoch_ns;   /* when this age began (0: not yet) */
    unsigned nhot;       /* length of hot */
    unsigned nsurplus;   /* stacks in all three surplus lists (the lists keep no count) */
    unsigned ncold;      /* length of cold */
    unsigned hot_max;    /* high-water mark for hot */
    unsigned cold_max;   /* beyond this many cold stacks, unmap */
    size_t size;         /* usable size of the stacks this pool holds */
    int numa;            /* NUMA node to bind new stacks to, -1 = none */
    size_t mapped;       /* bytes currently mapped through this pool (stats) */
    char *chunk_next;    /* the next stack's range in the chunk being carved */
    unsigned chunk_left; /* ranges left there */
} bl_stack_pool;

/* Once per process: probes guard support.  Idempotent and thread-safe. */
void bl__stack_probe(void);
/* True when guards use MADV_GUARD_INSTALL (no VMA per stack). */
bool bl__stack_light_guards(void);

void bl__stack_pool_init(bl_stack_pool *p, size_t size, unsigned hot_max, int numa);
/* Unmaps every free stack.  Stacks still held by processes are freed by bl__stack_free. */
void bl__stack_pool_destroy(bl_stack_pool *p);

/* A stack of the pool's size (size 0) or of `size` bytes.  NULL when out of memory. */
bl_stack *bl__stack_get(bl_stack_pool *p, size_t size);
/* Returns a stack to the pool.  Never makes a system call for pool-sized stacks. */
void bl__stack_put(bl_stack_pool *p, bl_stack *s);
/* Returns up to `max` surplus stacks to the kernel, oldest first.  Returns how many are left. */
unsigned bl__stack_trim(bl_stack_pool *p, unsigned max);
/*
 * The scheduler's trim: up to `max` of the surplus stacks that have stayed
 * free at least one age (BL_STACK_AGE_NS), at time now_ns.  True when
 * such stacks are left.
 */
bool bl__stack_trim_aged(bl_stack_pool *p, unsigned max, uint64_t now_ns);
/* When bl__stack_trim_aged will next find stacks to trim: 0 now, UINT64_MAX never. */
uint64_t bl__stack_next_trim(const bl_stack_pool *p);
/* Unmaps a stack outright. */
void bl__stack_free(bl_stack *s);

/* Rounds a requested size to what bl__stack_get would give (pages, minimum 16 KiB). */
size_t bl__stack_round(size_t size);

#endif /* BL_CORE_STACK_H */
