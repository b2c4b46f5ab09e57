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
 * the `surplus` list (still resident, first to be reused) until the
 * scheduler calls bl__stack_trim, from its idle path or a few at a time.
 */
#ifndef BL_CORE_STACK_H
#define BL_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bl_stack {
    struct bl_stack *next; /* pool link while free */
    void *map;             /* start of the mapping (the guard page) */
    size_t map_size;       /* bytes mapped in all */
    void *lo;              /* lowest usable byte, just above the guard */
    size_t size;           /* usable bytes, lo up to this descriptor */
    bool cold;             /* memory was returned with MADV_DONTNEED */
} bl_stack;

typedef struct bl_stack_pool {
    bl_stack *hot;       /* free stacks whose pages are still resident */
    bl_stack *cold;      /* free stacks whose pages went back to the kernel */
    bl_stack *surplus;   /* free stacks past hot_max, resident until trimmed */
    unsigned nhot;       /* length of hot */
    unsigned nsurplus;   /* length of surplus */
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
/* Returns up to `max` surplus stacks to the kernel.  Returns how many are left. */
unsigned bl__stack_trim(bl_stack_pool *p, unsigned max);
/* Unmaps a stack outright. */
void bl__stack_free(bl_stack *s);

/* Rounds a requested size to what bl__stack_get would give (pages, minimum 16 KiB). */
size_t bl__stack_round(size_t size);

#endif /* BL_CORE_STACK_H */
