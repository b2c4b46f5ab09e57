/*
 * tests/core/test_stack.c - process stacks (core/stack.h), directly and
 * through the runtime.
 *
 * The pool is used here from the test thread, as a scheduler would use it
 * from its own.  The guard page is checked by faulting on it in a forked
 * child, with SIGSEGV reset to the kernel's default there so that neither
 * a sanitizer's handler nor Criterion's gets in the way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl_test.h"
#include "core/stack.h"
#include "sched/sched.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Pages of [p, p + len) that are resident, or -1 if part is not mapped. */
static long resident_pages(const void *p, size_t len)
{
    size_t n = (len + page() - 1) / page();
    unsigned char *vec = calloc(n, 1);
    cr_assert_not_null(vec);
    long count = -1;
    if (mincore((void *)p, len, vec) == 0) {
        count = 0;
        for (size_t i = 0; i < n; i++) count += vec[i] & 1;
    }
    free(vec);
    return count;
}

/* Pages spanned by a stack's usable bytes (the last one holds the descriptor). */
static long pages_of(const bl_stack *s)
{
    return (long)((s->size + page() - 1) / page());
}

static bool is_mapped(const void *p)
{
    unsigned char v;
    return mincore((void *)((uintptr_t)p & ~(page() - 1)), 1, &v) == 0;
}

/* The descriptor describes its own mapping: guard page, then usable bytes. */
static void check_layout(const bl_stack *s, size_t size)
{
    cr_assert_eq((uintptr_t)s->map % page(), 0);
    cr_assert_eq((char *)s->lo, (char *)s->map + page(), "one guard page below lo");
    cr_assert_eq(s->map_size, size + page());
    cr_assert_eq((char *)s->lo + s->size, (char *)s, "the descriptor sits just above the stack");
    cr_assert_eq((char *)s + sizeof *s, (char *)s->map + s->map_size);
    cr_assert_geq(s->size, size - page(), "at most the descriptor's page is lost");
}

Test(stack, round_to_pages_with_minimum)
{
    size_t pg = page();
    cr_assert_eq(bl__stack_round(0), 16 * KiB);
    cr_assert_eq(bl__stack_round(1), 16 * KiB);
    cr_assert_eq(bl__stack_round(16 * KiB - 1), 16 * KiB);
    cr_assert_eq(bl__stack_round(16 * KiB), 16 * KiB);
    cr_assert_eq(bl__stack_round(16 * KiB + 1), 16 * KiB + pg);
    cr_assert_eq(bl__stack_round(100000), (100000 + pg - 1) / pg * pg);
    cr_assert_eq(bl__stack_round(MiB), MiB);
    cr_assert_eq(bl__stack_round(MiB + 1), MiB + pg);
    for (size_t n = 1; n < 300 * KiB; n += 4093) {
        size_t r = bl__stack_round(n);
        cr_assert_eq(r % pg, 0, "round(%zu) = %zu is a page multiple", n, r);
        cr_assert_geq(r, n);
        cr_assert_lt(r - n, n < 16 * KiB ? 16 * KiB : pg);
    }
}

Test(stack, pool_reuses_hot_stacks)
{
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 2, -1);
    cr_assert_eq(p.size, 64 * KiB);
    bl_stack *s = bl__stack_get(&p, 0);
    cr_assert_not_null(s);
    check_layout(s, 64 * KiB);
    memset(s->lo, 0x5A, s->size);
    bl__stack_put(&p, s);
    cr_assert_eq(p.nhot, 1);
    cr_assert_eq(p.ncold, 0);
    /* Size 0 and the pool's own size both mean "from the pool". */
    bl_stack *t = bl__stack_get(&p, 64 * KiB);
    cr_assert_eq(t, s, "the hot stack comes back");
    cr_assert_eq(p.nhot, 0);
    cr_assert(!t->cold);
    cr_assert_eq(((unsigned char *)t->lo)[0], 0x5A, "a hot stack keeps its memory");
    check_layout(t, 64 * KiB);
    bl__stack_put(&p, t);
    cr_assert_eq(bl__stack_get(&p, 0), s);
    bl__stack_put(&p, s);
    void *lo = s->lo; /* s lives in the mapping: read it while it exists */
    bl__stack_pool_destroy(&p);
    cr_assert_eq(p.nhot, 0);
    cr_assert(!is_mapped(lo), "destroy unmaps the pooled stack");
}

Test(stack, high_water_makes_extra_stacks_cold)
{
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 2, -1);
    bl_stack *s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = bl__stack_get(&p, 0);
        cr_assert_not_null(s[i]);
        for (int j = 0; j < i; j++) cr_assert_neq(s[i], s[j]);
        memset(s[i]->lo, 0xC0 + i, s[i]->size);
        cr_assert_eq(resident_pages(s[i]->lo, s[i]->size), pages_of(s[i]));
    }
    for (int i = 0; i < 5; i++) bl__stack_put(&p, s[i]);
    cr_assert_eq(p.nhot, 2);
    /* Putting back makes no system call: the extra three wait, resident. */
    cr_assert_eq(p.nsurplus, 3);
    cr_assert_eq(p.ncold, 0);
    for (int i = 2; i < 5; i++) cr_assert_eq(resident_pages(s[i]->lo, s[i]->size), pages_of(s[i]));
    /* Trimming (the scheduler does it when idle) gives them back. */
    cr_assert_eq(bl__stack_trim(&p, 2), 1);
    cr_assert_eq(bl__stack_trim(&p, 100), 0);
    cr_assert_eq(p.nsurplus, 0);
    cr_assert_eq(p.ncold, 3);

    /* The first two put back stay hot; the last three gave their memory back
     * (all but the page holding the descriptor). */
    for (int i = 0; i < 5; i++) {
        long res = resident_pages(s[i]->lo, s[i]->size);
        if (i < 2) {
            cr_assert(!s[i]->cold);
            cr_assert_eq(res, pages_of(s[i]), "hot stack %d stays resident", i);
        } else {
            cr_assert(s[i]->cold);
            cr_assert_leq(res, 1, "cold stack %d still has %ld resident pages", i, res);
        }
    }

    /* Hot ones come back first (most recent first), then cold ones. */
    bl_stack *h1 = bl__stack_get(&p, 0), *h2 = bl__stack_get(&p, 0);
    cr_assert(h1 == s[1] && h2 == s[0], "hot stacks first");
    bl_stack *c = bl__stack_get(&p, 0);
    cr_assert(c == s[2] || c == s[3] || c == s[4], "then a cold one");
    cr_assert(!c->cold, "a stack handed out is not marked cold");
    cr_assert_eq(p.ncold, 2);
    check_layout(c, 64 * KiB);
    /* A cold stack reads as fresh memory and is writable over its full size. */
    unsigned char *lo = c->lo;
    cr_assert_eq(lo[0], 0);
    cr_assert_eq(lo[c->size / 2], 0);
    memset(lo, 0xEE, c->size);
    for (size_t i = 0; i < c->size; i += 511) cr_assert_eq(lo[i], 0xEE);
    cr_assert_eq(lo[c->size - 1], 0xEE);
    check_layout(c, 64 * KiB); /* the descriptor survived */

    bl__stack_put(&p, h1);
    bl__stack_put(&p, h2);
    bl__stack_put(&p, c);
    cr_assert_eq(p.nhot + p.ncold + p.nsurplus, 5);
    void *los[5]; /* the descriptors go away with their mappings */
    for (int i = 0; i < 5; i++) los[i] = s[i]->lo;
    bl__stack_pool_destroy(&p);
    cr_assert_eq(p.nhot + p.ncold + p.nsurplus, 0);
    for (int i = 0; i < 5; i++) cr_assert(!is_mapped(los[i]), "stack %d unmapped", i);
}

Test(stack, other_sizes_are_not_pooled)
{
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 4, -1);
    size_t big = bl__stack_round(MiB + 100);
    bl_stack *s = bl__stack_get(&p, MiB + 100);
    cr_assert_not_null(s);
    check_layout(s, big);
    memset(s->lo, 1, s->size);
    void *map = s->map;
    bl__stack_put(&p, s);
    cr_assert_eq(p.nhot, 0);
    cr_assert_eq(p.ncold, 0);
    cr_assert(!is_mapped(map), "a stack of another size is unmapped at once");

    bl_stack *small = bl__stack_get(&p, 16 * KiB);
    cr_assert_not_null(small);
    check_layout(small, 16 * KiB);
    bl__stack_put(&p, small);
    cr_assert_eq(p.nhot, 0, "16 KiB stacks do not enter a 64 KiB pool");
    bl__stack_pool_destroy(&p);
}

/* ---- the guard page ---- */

/* SIGSEGV back to the default action, past any libc or sanitizer wrapper. */
static void default_segv(void)
{
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } ksa = {0}; /* SIG_DFL */
    syscall(SYS_rt_sigaction, SIGSEGV, &ksa, NULL, sizeof ksa.mask);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Writes one byte at addr in a child; returns its wait status. */
static int poke_in_child(volatile unsigned char *addr)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        default_segv();
        *addr = 1;
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Is [a, b) inside one line of /proc/self/maps? */
static bool same_vma(uintptr_t a, uintptr_t b)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
            found = b <= hi;
            break;
        }
    }
    fclose(f);
    return found;
}

Test(stack, guard_page_below_lo_faults)
{
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 2, -1);
    bl_stack *s = bl__stack_get(&p, 0);
    cr_assert_not_null(s);
    unsigned char *lo = s->lo;
    bool light = bl__stack_light_guards();
    cr_log_info("light guards (MADV_GUARD_INSTALL): %s", light ? "yes" : "no (mprotect)");

    /* Control: the lowest usable byte is writable, in a child as here. */
    int st = poke_in_child(lo);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writing s->lo must succeed (status %#x)", st);
    /* One byte below, and the first byte of the mapping, are the guard. */
    st = poke_in_child(lo - 1);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
              "writing s->lo - 1 must die of SIGSEGV (status %#x)", st);
    st = poke_in_child((unsigned char *)s->map);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
              "writing the mapping's first byte must die of SIGSEGV (status %#x)", st);

    /* Light guards cost no VMA: the guard shares the stack's mapping. */
    bool one = same_vma((uintptr_t)s->map, (uintptr_t)s->lo + 1);
    if (light)
        cr_assert(one, "with MADV_GUARD_INSTALL the guard is not a separate VMA");
    else
        cr_assert(!one, "with mprotect the guard is its own VMA");

    /* A recycled stack, hot or cold, keeps its guard. */
    bl_stack *extra[3];
    for (int i = 0; i < 3; i++) extra[i] = bl__stack_get(&p, 0);
    bl__stack_put(&p, s);
    for (int i = 0; i < 3; i++) bl__stack_put(&p, extra[i]);
    bl__stack_trim(&p, 100);
    cr_assert(s->cold || p.ncold > 0);
    bl_stack *got[4];
    for (int i = 0; i < 4; i++) {
        got[i] = bl__stack_get(&p, 0);
        st = poke_in_child((unsigned char *)got[i]->lo - 1);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
                  "recycled stack %d lost its guard (status %#x)", i, st);
    }
    for (int i = 0; i < 4; i++) bl__stack_put(&p, got[i]);
    bl__stack_pool_destroy(&p);
}

Test(stack, pool_stacks_are_carved_from_one_mapping_each_with_its_guard)
{
    enum { N = 8 };
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 2, -1);
    bl_stack *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = bl__stack_get(&p, 0);
        cr_assert_not_null(s[i]);
        check_layout(s[i], 64 * KiB);
        /* Side by side, in the order handed out: ranges of one mapping. */
        if (i)
            cr_assert_eq((char *)s[i]->map, (char *)s[i - 1]->map + s[i - 1]->map_size,
                         "stack %d follows stack %d", i, i - 1);
    }
    if (bl__stack_light_guards())
        cr_assert(same_vma((uintptr_t)s[0]->map, (uintptr_t)s[N - 1]->lo),
                  "one VMA holds them all");
    /* Each has its own guard, right above the stack below it. */
    for (int i = 0; i < N; i++) {
        int st = poke_in_child((unsigned char *)s[i]->lo - 1);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "stack %d has no guard (status %#x)",
                  i, st);
        memset(s[i]->lo, 0x30 + i, s[i]->size);
    }
    /* One unmapped on its own leaves its neighbours whole. */
    void *gone = s[3]->lo;
    bl__stack_free(s[3]);
    cr_assert(!is_mapped(gone));
    for (int i = 0; i < N; i++) {
        if (i == 3) continue;
        unsigned char *lo = s[i]->lo;
        cr_assert(lo[0] == 0x30 + i && lo[s[i]->size - 1] == 0x30 + i, "stack %d intact", i);
        check_layout(s[i], 64 * KiB);
    }
    /* The chunk's ranges not handed out yet go with the pool. */
    char *rest = (char *)s[N - 1]->map + s[N - 1]->map_size + page();
    cr_assert(is_mapped(rest));
    void *los[N];
    for (int i = 0; i < N; i++) {
        los[i] = i == 3 ? NULL : s[i]->lo;
        if (i != 3) bl__stack_put(&p, s[i]);
    }
    bl__stack_pool_destroy(&p);
    cr_assert(!is_mapped(rest), "destroy unmaps the rest of the chunk");
    for (int i = 0; i < N; i++)
        if (los[i]) cr_assert(!is_mapped(los[i]), "stack %d unmapped", i);
}

/* ---- many stacks, few VMAs ---- */

static long maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

Test(stack, many_stacks_few_vmas, .timeout = 120)
{
    if (!bl__stack_light_guards())
        cr_skip("MADV_GUARD_INSTALL unavailable (Linux < 6.13): one VMA per guard page");
    const unsigned n = BL_SCALE(50000);
    bl_stack_pool p;
    bl__stack_pool_init(&p, 16 * KiB, 64, -1);
    bl_stack **all = calloc(n, sizeof *all);
    cr_assert_not_null(all);
    long before = maps_lines();
    for (unsigned i = 0; i < n; i++) {
        all[i] = bl__stack_get(&p, 0);
        cr_assert_not_null(all[i], "stack %u of %u: out of memory or map count", i, n);
    }
    long during = maps_lines();
    cr_log_info("%u stacks: /proc/self/maps grew from %ld to %ld lines", n, before, during);
    cr_assert_lt(during - before, (long)n / 20, "VMAs grew by %ld for %u stacks", during - before,
                 n);
    /* Spot-check that the guards are really installed on some of them. */
    for (unsigned i = 0; i < n; i += n / 4) {
        int st = poke_in_child((unsigned char *)all[i]->lo - 1);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "stack %u has no guard", i);
    }
    /* Back into the pool: 64 hot, the rest cold (MADV_DONTNEED) or unmapped. */
    for (unsigned i = 0; i < n; i++) bl__stack_put(&p, all[i]);
    cr_assert_eq(p.nhot, 64);
    cr_assert_lt(maps_lines() - before, (long)n / 20);
    bl__stack_pool_destroy(&p);
    free(all);
}

/* ---- through the runtime ---- */

/*
 * Recurses, each frame touching a 4 KiB array, until the stack in use
 * (measured from the frame address, which ASan's fake stacks do not move)
 * reaches want bytes.  Returns the sum of everything written, which
 * expect_sum() predicts from the depth reached.
 */
__attribute__((noinline)) static uint64_t deep(uintptr_t base, size_t want, unsigned depth,
                                               unsigned *max_depth)
{
    volatile unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(depth + i);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uint64_t sum = 0;
    if (base - here < want)
        sum = deep(base, want, depth + 1, max_depth);
    else
        *max_depth = depth;
    for (size_t i = 0; i < sizeof buf; i++) sum += buf[i];
    return sum;
}

static uint64_t expect_sum(unsigned max_depth)
{
    uint64_t sum = 0;
    for (unsigned d = 0; d <= max_depth; d++)
        for (size_t i = 0; i < 4096; i++) sum += (unsigned char)(d + i);
    return sum;
}

typedef struct deep_arg {
    size_t want;   /* bytes of stack to use */
    size_t stack;  /* stack size the process should have, at least */
    bl_pid parent; /* gets T_DEEP with the result */
} deep_arg;

enum { T_DEEP = 1 };

typedef struct deep_result {
    uint64_t sum, expect;
    unsigned depth;
    size_t used, stack_size;
} deep_result;

static void deep_proc(void *arg)
{
    deep_arg *a = arg;
    deep_result r = {0};
    bl_proc *self = bl__self();
    r.stack_size = self && self->stack ? self->stack->size : 0;
    uintptr_t base = (uintptr_t)__builtin_frame_address(0);
    r.sum = deep(base, a->want, 0, &r.depth);
    r.expect = expect_sum(r.depth);
    r.used = a->want;
    bl_send(a->parent, T_DEEP, &r, sizeof r);
}

static void deep_main(void *arg)
{
    const deep_arg cases[] = {
        {900 * KiB, MiB, 0},      /* 1 MiB stack asked for at spawn */
        {100 * KiB, 128 * KiB, 0} /* the default size */
    };
    for (size_t i = 0; i < 2; i++) {
        deep_arg a = cases[i];
        a.parent = bl_self();
        bl_spawn_opts o = {.stack_size = i == 0 ? MiB : 0};
        BL_CHECK_EQ(bl_spawn(NULL, deep_proc, &a, &o), 0);
        bl_msg *m = bl_test_recv_tag(T_DEEP, 30000);
        BL_CHECK(m != NULL);
        if (!m) continue;
        deep_result *r = m->data;
        BL_CHECK(r->stack_size >= a.stack - page());
        BL_CHECK(r->stack_size <= a.stack);
        BL_CHECK(r->depth >= a.want / (8 * KiB)); /* frames of 4-8 KiB */
        BL_CHECK_EQ(r->sum, r->expect);
        bl_msg_free(m);
    }
}

Test(stack, processes_use_their_stack_size)
{
    bl_test_run(NULL, deep_main, NULL);
}

Test(stack, surplus_stacks_are_trimmed_only_once_aged)
{
    bl_stack_pool p;
    bl__stack_pool_init(&p, 64 * KiB, 1, -1);
    bl_stack *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = bl__stack_get(&p, 0);
        memset(s[i]->lo, 0x11, s[i]->size);
    }
    for (int i = 0; i < 3; i++) bl__stack_put(&p, s[i]);
    cr_assert_eq(p.nhot, 1);
    cr_assert_eq(p.nsurplus, 2);
    const uint64_t t0 = 5 * BL_STACK_AGE_NS, age = BL_STACK_AGE_NS;
    /* Just freed: nothing to trim, now or within the age. */
    cr_assert_eq(bl__stack_trim_aged(&p, 100, t0), 0);
    cr_assert_eq(bl__stack_trim_aged(&p, 100, t0 + age - 1), 0);
    cr_assert_eq(p.ncold, 0);
    cr_assert_eq(bl__stack_next_trim(&p), t0 + age);
    /* One age on, they are a generation older, still kept. */
    cr_assert_eq(bl__stack_trim_aged(&p, 100, t0 + age), 0);
    cr_assert_eq(p.ncold, 0);
    cr_assert_eq(p.nsurplus, 2);
    for (int i = 1; i < 3; i++)
        cr_assert_eq(resident_pages(s[i]->lo, s[i]->size), pages_of(s[i]), "stack %d resident", i);
    /* A second age on, they have stayed free a whole age: trimmed, one at a time if asked. */
    cr_assert_eq(bl__stack_next_trim(&p), t0 + 2 * age);
    cr_assert_eq(bl__stack_trim_aged(&p, 1, t0 + 2 * age), 1);
    cr_assert_eq(bl__stack_next_trim(&p), 0);
    cr_assert_eq(bl__stack_trim_aged(&p, 100, t0 + 2 * age), 0);
    cr_assert_eq(p.ncold, 2);
    cr_assert_eq(p.nsurplus, 0);
    cr_assert_eq(bl__stack_next_trim(&p), UINT64_MAX);
    /* A stack reused and freed again starts its age over. */
    bl_stack *a = bl__stack_get(&p, 0), *b = bl__stack_get(&p, 0);
    bl__stack_put(&p, a); /* hot */
    bl__stack_put(&p, b); /* surplus, this age */
    cr_assert_eq(bl__stack_trim_aged(&p, 100, t0 + 3 * age), 0);
    cr_assert_eq(p.nsurplus, 1);
    /* bl__stack_trim takes every surplus stack, whatever its age. */
    cr_assert_eq(bl__stack_trim(&p, 100), 0);
    cr_assert_eq(p.nsurplus, 0);
    bl__stack_pool_destroy(&p);
}
