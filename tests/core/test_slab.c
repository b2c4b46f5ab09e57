/*
 * The slab: spans of one class, emptied spans reused by any class, and
 * given back to the kernel and to other slabs after they stay empty.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/slab.h"

#define SPAN_OF(o) ((uintptr_t)(o) & ~(uintptr_t)(BL_SLAB_SPAN - 1))
#define SEC        1000000000ull

enum { N = 400000 }; /* 25.6 MB of 64-byte objects: about 98 spans */

static void *objs[N];

Test(slab, spans_go_back_after_a_burst)
{
    static bl_slab s0, s1;
    bl__slab_init(&s0, 0, -1);
    bl__slab_init(&s1, 1, -1);
    bl_slab *reg[2] = {&s0, &s1};
    bl__slab_registry(reg, 2);

    for (int i = 0; i < N; i++) cr_assert_not_null(objs[i] = bl__slab_alloc(&s0, 0));
    size_t peak = s0.span_bytes;
    cr_assert_geq(peak, (size_t)N * 64);
    /* Half come back locally, half from another thread's point of view. */
    for (int i = 0; i < N; i++) {
        if (i % 2)
            bl__slab_free_remote(0, 0, objs[i]);
        else
            bl__slab_free_local(&s0, 0, objs[i]);
    }
    /* The first trim takes back the remote frees and sees the spans empty,
     * but gives nothing back yet. */
    uint64_t t = 10 * SEC;
    cr_assert_eq(bl__slab_trim(&s0, t), 0);
    cr_assert_eq(s0.span_bytes, peak);
    /* Empty spans of class 0 serve class 3 at once, with no new span. */
    void *big = bl__slab_alloc(&s0, 3);
    cr_assert_not_null(big);
    cr_assert_eq(s0.span_bytes, peak);
    bl__slab_free_local(&s0, 3, big);

    /* A trim past a second gives them back, keeping a few for the next burst. */
    unsigned given = bl__slab_trim(&s0, t + 2 * SEC);
    cr_assert_geq(given, (peak / BL_SLAB_SPAN) - (BL_SLAB_KEEP + 1));
    cr_assert_leq(s0.span_bytes, (BL_SLAB_KEEP + 1) * BL_SLAB_SPAN);

    /* Another slab takes the spans given back before mapping new ones. */
    uintptr_t first = 0;
    for (int i = 0; i < 10; i++) {
        void *o = bl__slab_alloc(&s1, 0);
        cr_assert_not_null(o);
        if (!first) first = SPAN_OF(o);
    }
    bool from_s0 = false;
    for (int i = 0; i < N && !from_s0; i++) from_s0 = SPAN_OF(objs[i]) == first;
    cr_assert(from_s0, "the new slab's first span is one the other gave back");

    /* A trim too soon after the last does nothing. */
    cr_assert_eq(bl__slab_trim(&s0, t + 2 * SEC + 1000), 0);
    bl__slab_destroy(&s0);
    bl__slab_destroy(&s1);
    bl__slab_registry(NULL, 0);
}

Test(slab, classes_and_reuse)
{
    static bl_slab s;
    bl__slab_init(&s, 0, -1);
    bl_slab *reg[1] = {&s};
    bl__slab_registry(reg, 1);
    /* Every class, freed and allocated again: the same memory comes back. */
    for (unsigned c = 0; c < BL_SLAB_CLASSES; c++) {
        void *a = bl__slab_alloc(&s, c), *b = bl__slab_alloc(&s, c);
        cr_assert_not_null(a);
        cr_assert_not_null(b);
        cr_assert_eq((uintptr_t)b - (uintptr_t)a, bl__slab_class_size(c));
        memset(a, 0xAB, bl__slab_class_size(c));
        bl__slab_free_local(&s, c, b);
        cr_assert_eq(bl__slab_alloc(&s, c), b);
        bl__slab_free_local(&s, c, a);
        bl__slab_free_local(&s, c, b);
    }
    bl__slab_destroy(&s);
    cr_assert_eq(s.span_bytes, 0);
    bl__slab_registry(NULL, 0);
}

/* Objects another slab's thread frees go back in batches: held until a
 * batch is full or the holder flushes, then one push hands the whole chain
 * to the owner, which takes it all back. */
Test(slab, frees_from_another_slab_go_back_in_batches)
{
    static bl_slab s0, s1;
    bl__slab_init(&s0, 0, -1);
    bl__slab_init(&s1, 1, -1);
    bl_slab *reg[2] = {&s0, &s1};
    bl__slab_registry(reg, 2);
    enum { M = BL_SLAB_BATCH + 5 };
    void *o[M];
    for (int i = 0; i < M; i++) cr_assert_not_null(o[i] = bl__slab_alloc(&s0, 1));
    /* Below a batch: held by s1, nothing on s0's stack yet. */
    for (int i = 0; i < BL_SLAB_BATCH - 1; i++) bl__slab_free_other(&s1, 0, 1, o[i]);
    cr_assert_eq(s1.pending, BL_SLAB_BATCH - 1);
    cr_assert_null(atomic_load(&s0.remote[1].head));
    /* The batch's last one sends all of it. */
    bl__slab_free_other(&s1, 0, 1, o[BL_SLAB_BATCH - 1]);
    cr_assert_eq(s1.pending, 0);
    int n = 0;
    for (void *p = atomic_load(&s0.remote[1].head); p; p = *(void **)p) n++;
    cr_assert_eq(n, BL_SLAB_BATCH);
    /* The rest waits for a flush. */
    for (int i = BL_SLAB_BATCH; i < M; i++) bl__slab_free_other(&s1, 0, 1, o[i]);
    cr_assert_eq(s1.pending, M - BL_SLAB_BATCH);
    bl__slab_flush(&s1);
    cr_assert_eq(s1.pending, 0);
    n = 0;
    for (void *p = atomic_load(&s0.remote[1].head); p; p = *(void **)p) n++;
    cr_assert_eq(n, M);
    /* The owner takes them back: every span is empty again after a trim. */
    bl__slab_trim(&s0, 10 * SEC);
    bl__slab_destroy(&s0);
    bl__slab_destroy(&s1);
    bl__slab_registry(NULL, 0);
}

#if defined(__SANITIZE_ADDRESS__)
/* In the ASan build a freed object is poisoned past its link word: a read
 * of it after the free, or a second free, is a report (exit status 1). */
static void *freed_obj(bl_slab *s)
{
    bl__slab_init(s, 0, -1);
    void *o = bl__slab_alloc(s, 1);
    cr_assert_not_null(o);
    memset(o, 0xab, 128);
    bl__slab_free_local(s, 1, o);
    return o;
}

/* The report expected next goes to /dev/null: ctest fails a test whose
 * output holds one. */
static void quiet(void)
{
    int null = open("/dev/null", O_WRONLY);
    cr_assert_geq(null, 0);
    cr_assert_eq(dup2(null, STDERR_FILENO), STDERR_FILENO);
    close(null);
}

Test(slab, a_read_after_free_is_reported, .exit_code = 1)
{
    quiet();
    static bl_slab s;
    volatile char *o = freed_obj(&s);
    (void)o[64];
}

Test(slab, a_second_free_is_reported, .exit_code = 1)
{
    quiet();
    static bl_slab s;
    bl__slab_free_local(&s, 1, freed_obj(&s));
}

Test(slab, a_reused_object_is_whole_again)
{
    static bl_slab s;
    void *o = freed_obj(&s);
    char *again = bl__slab_alloc(&s, 1);
    cr_assert_eq((void *)again, o);
    memset(again, 0, 128); /* no report */
    bl__slab_free_local(&s, 1, again);
    bl__slab_destroy(&s);
}
#endif
