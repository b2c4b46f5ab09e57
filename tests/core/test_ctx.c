/*
 * tests/core/test_ctx.c - the hand-written context switch (core/ctx_*.S).
 *
 * What a switch must carry from one run of a process to the next: the
 * callee-saved registers, and the floating-point control state (MXCSR and
 * the x87 control word on x86-64, FPCR on AArch64), which is per process,
 * not per scheduler thread.  Most tests run two processes on the only
 * scheduler of a one-scheduler runtime, so every bl_yield() of one really
 * runs the other, which scribbles different values into the same registers.
 *
 * The tests are not linked with libm, so the rounding mode is set and read
 * with the few instructions fesetround()/fegetround() would use.
 */
#include <errno.h>
#include <fenv.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bl_test.h"
#include "core/ctx.h"
#include "core/stack.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

enum { T_DONE = 1, T_ENV, T_GO };

/* Yields per process in the interleaving tests. */
#define ROUNDS BL_SCALE(20000)

/* ------------------------------------------------------------------------ */
/* Floating-point control state, without libm                               */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define MXCSR_DEFAULT 0x1F80u /* all exceptions masked, round to nearest */
#define MXCSR_CONTROL 0xFFC0u /* everything but the sticky exception flags */
#define MXCSR_RC_UP   0x4000u /* rounding control = toward +inf */
#define MXCSR_FTZ     0x8000u /* flush to zero */
#define X87_DEFAULT   0x037Fu /* extended precision, round to nearest, all masked */
#define X87_PC_SINGLE 0x007Fu /* precision control = 24 bits, round to nearest */

static unsigned get_mxcsr(void)
{
    return _mm_getcsr();
}

static void set_mxcsr(unsigned v)
{
    _mm_setcsr(v);
}

static unsigned get_x87cw(void)
{
    uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

static void set_x87cw(unsigned v)
{
    uint16_t cw = (uint16_t)v;
    __asm__ volatile("fldcw %0" : : "m"(cw));
}

/* fesetround(): both units, x87 bits 10-11 and MXCSR bits 13-14. */
static void set_round(int mode)
{
    set_x87cw((get_x87cw() & ~0x0C00u) | (unsigned)mode);
    set_mxcsr((get_mxcsr() & ~0x6000u) | ((unsigned)mode << 3));
}

/* fegetround() as glibc does it: the x87 control word decides. */
static int get_round(void)
{
    return (int)(get_x87cw() & 0x0C00u);
}

/* The SSE unit's rounding mode, in FE_* encoding. */
static int get_round_sse(void)
{
    return (int)((get_mxcsr() & 0x6000u) >> 3);
}
#elif defined(__aarch64__)
static uint64_t get_fpcr(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}

static void set_fpcr(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
}

static void set_round(int mode)
{
    set_fpcr((get_fpcr() & ~(uint64_t)0xC00000) | (uint64_t)mode);
}

static int get_round(void)
{
    return (int)(get_fpcr() & 0xC00000);
}

static int get_round_sse(void)
{
    return get_round();
}
#else
#error "the context-switch tests know x86-64 and AArch64"
#endif

/* Facts about the rounding and flush mode in force, from real arithmetic. */
static volatile double one = 1.0, three = 3.0, dmin = DBL_MIN;

static double third(void)
{
    return one / three;
}

/* DBL_MIN / 4 is subnormal: 0 under flush-to-zero, non-zero otherwise. */
static double subnormal(void)
{
    return dmin / 4.0;
}

/* ------------------------------------------------------------------------ */
/* Callee-saved registers                                                   */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__)
/*
 * int ctx_test_regs_yield(uint64_t seed, uint64_t out[6], uint64_t n):
 * loads rbx, rbp, r12..r15 with seed+1 .. seed+6, calls bl_yield() n times
 * (n >= 1) with nothing but those registers holding the values, then stores
 * the registers into out.  Returns the OR of bl_yield's results.  The frame
 * keeps the stack 16-byte aligned at each call.
 */
__asm__(".text\n"
        ".globl ctx_test_regs_yield\n"
        ".hidden ctx_test_regs_yield\n"
        ".type ctx_test_regs_yield, @function\n"
        ".p2align 4\n"
        "ctx_test_regs_yield:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $24, %rsp\n"
        "  movq %rsi, 0(%rsp)\n"
        "  movq %rdx, 8(%rsp)\n"
        "  movl $0, 16(%rsp)\n"
        "  leaq 1(%rdi), %rbx\n"
        "  leaq 2(%rdi), %rbp\n"
        "  leaq 3(%rdi), %r12\n"
        "  leaq 4(%rdi), %r13\n"
        "  leaq 5(%rdi), %r14\n"
        "  leaq 6(%rdi), %r15\n"
        "1:\n"
        "  call bl_yield@PLT\n"
        "  orl %eax, 16(%rsp)\n"
        "  decq 8(%rsp)\n"
        "  jnz 1b\n"
        "  movq 0(%rsp), %rsi\n"
        "  movq %rbx, 0(%rsi)\n"
        "  movq %rbp, 8(%rsi)\n"
        "  movq %r12, 16(%rsi)\n"
        "  movq %r13, 24(%rsi)\n"
        "  movq %r14, 32(%rsi)\n"
        "  movq %r15, 40(%rsi)\n"
        "  movl 16(%rsp), %eax\n"
        "  addq $24, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size ctx_test_regs_yield, .-ctx_test_regs_yield\n");
int ctx_test_regs_yield(uint64_t seed, uint64_t out[6], uint64_t n);
#endif

/*
 * Eight values live across every bl_yield(), compiled with optimisation so
 * that they sit in callee-saved registers (this is what C code relies on).
 */
__attribute__((optimize("O2"), noinline)) static uint64_t mix_live(uint64_t seed, int rounds,
                                                                   int yield)
{
    uint64_t a = seed, b = seed ^ 0x9E3779B97F4A7C15ull, c = seed * 3, d = seed + 7;
    uint64_t e = ~seed, f = seed << 5, g = seed >> 3, h = seed * 0xBF58476D1CE4E5B9ull;
    for (int i = 0; i < rounds; i++) {
        a = a * 6364136223846793005ull + b;
        b ^= c + (a >> 7);
        c += d * 31;
        d ^= e << 3;
        e += f ^ a;
        f = f * 5 + g;
        g ^= h >> 11;
        h += a ^ (uint64_t)i;
        if (yield) bl_yield();
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

/* One of two processes that share the only scheduler. */
typedef struct reg_worker {
    uint64_t seed;           /* the register values are seed+1 .. seed+6 */
    bl_pid parent;           /* gets T_DONE */
    _Atomic uint64_t *mine;  /* bumped after each round */
    _Atomic uint64_t *other; /* the other worker's counter */
} reg_worker;

static void reg_worker_main(void *arg)
{
    reg_worker *w = arg;
    uint64_t interleaved = 0;
    uint64_t expect_mix = mix_live(w->seed, 64, 0);
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t seen = atomic_load(w->other);
#if defined(__x86_64__)
        uint64_t seed = w->seed + (uint64_t)i * 0x100, out[6];
        int rc = ctx_test_regs_yield(seed, out, 1 + (unsigned)i % 3);
        BL_CHECK_EQ(rc, 0);
        for (int r = 0; r < 6; r++) BL_CHECK_EQ(out[r], seed + 1 + (uint64_t)r);
#else
        BL_CHECK_EQ(bl_yield(), 0);
#endif
        if (i % 64 == 0) BL_CHECK_EQ(mix_live(w->seed, 64, 1), expect_mix);
        if (atomic_load(w->other) != seen) interleaved++;
        atomic_fetch_add(w->mine, 1);
    }
    /* The other worker really ran between our yields (until it finished). */
    BL_CHECK(interleaved >= (uint64_t)ROUNDS / 2);
    bl_send(w->parent, T_DONE, NULL, 0);
}

static void regs_main(void *arg)
{
    static _Atomic uint64_t ca, cb;
    atomic_store(&ca, 0);
    atomic_store(&cb, 0);
    reg_worker a = {0x1111111111110000ull, bl_self(), &ca, &cb};
    reg_worker b = {0x7777777777770000ull, bl_self(), &cb, &ca};
    bl_spawn_opts o = {.scheduler = 1};
    BL_CHECK_EQ(bl_spawn(NULL, reg_worker_main, &a, &o), 0);
    BL_CHECK_EQ(bl_spawn(NULL, reg_worker_main, &b, &o), 0);
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(atomic_load(&ca), ROUNDS);
    BL_CHECK_EQ(atomic_load(&cb), ROUNDS);
}

Test(ctx, callee_saved_registers_survive_yields)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, regs_main, NULL);
}

/* ------------------------------------------------------------------------ */
/* Floating-point control state is per process                              */
/* ------------------------------------------------------------------------ */

typedef struct fp_worker {
    bool changed; /* sets upward rounding, FTZ and x87 single precision */
    bl_pid parent;
    double near_third; /* 1/3 rounded to nearest, computed by the test thread */
} fp_worker;

static void fp_worker_main(void *arg)
{
    fp_worker *w = arg;
    if (w->changed) {
        set_round(FE_UPWARD);
#if defined(__x86_64__)
        set_mxcsr(get_mxcsr() | MXCSR_FTZ);
        set_x87cw((get_x87cw() & ~0x0300u)); /* precision control: single */
#endif
    }
    for (int i = 0; i < ROUNDS; i++) {
        BL_CHECK_EQ(bl_yield(), 0);
        if (w->changed) {
            BL_CHECK_EQ(get_round(), FE_UPWARD);
            BL_CHECK_EQ(get_round_sse(), FE_UPWARD);
            BL_CHECK(third() > w->near_third);
#if defined(__x86_64__)
            BL_CHECK_EQ(get_mxcsr() & MXCSR_CONTROL, MXCSR_DEFAULT | MXCSR_RC_UP | MXCSR_FTZ);
            BL_CHECK_EQ(get_x87cw(), (X87_DEFAULT & ~0x0300u) | 0x0800u);
            BL_CHECK(subnormal() == 0.0);
            volatile long double l1 = 1.0L, l3 = 3.0L;
            BL_CHECK(l1 / l3 == 0x1.555556p-2L); /* 24-bit quotient, rounded up */
#endif
        } else {
            BL_CHECK_EQ(get_round(), FE_TONEAREST);
            BL_CHECK_EQ(get_round_sse(), FE_TONEAREST);
            BL_CHECK(third() == w->near_third);
#if defined(__x86_64__)
            BL_CHECK_EQ(get_mxcsr() & MXCSR_CONTROL, MXCSR_DEFAULT);
            BL_CHECK_EQ(get_x87cw(), X87_DEFAULT);
            BL_CHECK(subnormal() != 0.0);
            volatile long double l1 = 1.0L, l3 = 3.0L;
            BL_CHECK(l1 / l3 != 0x1.555556p-2L && l1 / l3 > 0x1.555554p-2L);
#endif
        }
    }
    bl_send(w->parent, T_DONE, NULL, 0);
}

static void fp_env_main(void *arg)
{
    double near_third = *(double *)arg;
    fp_worker a = {true, bl_self(), near_third};
    fp_worker b = {false, bl_self(), near_third};
    bl_spawn_opts o = {.scheduler = 1};
    BL_CHECK_EQ(bl_spawn(NULL, fp_worker_main, &a, &o), 0);
    BL_CHECK_EQ(bl_spawn(NULL, fp_worker_main, &b, &o), 0);
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    /* A exited with its modes set: the scheduler (and so we) never saw them. */
    BL_CHECK_EQ(get_round(), FE_TONEAREST);
    BL_CHECK(third() == near_third);
#if defined(__x86_64__)
    BL_CHECK_EQ(get_mxcsr() & MXCSR_CONTROL, MXCSR_DEFAULT);
    BL_CHECK_EQ(get_x87cw(), X87_DEFAULT);
#endif
}

Test(ctx, mxcsr_and_x87_control_word_are_per_process)
{
    double near_third = third();
    cr_assert_eq(get_round(), FE_TONEAREST, "the test thread starts rounding to nearest");
    cr_assert(subnormal() != 0.0);
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, fp_env_main, &near_third);
}

/* ------------------------------------------------------------------------ */
/* Floating-point values across yields                                      */
/* ------------------------------------------------------------------------ */

/* Many doubles live across each bl_yield(): the compiler keeps them in xmm
 * registers (spilled around calls); x87 long doubles too on x86-64. */
__attribute__((optimize("O2"), noinline)) static double fp_chain(int rounds, int yield,
                                                                 double *x87_out)
{
    double a = 1.0, b = 0.5, c = 0.25, d = 3.0, e = 1e-3, f = 7.0, g = 0.1, h = 2.0;
    long double l = 1.0L;
    for (int i = 0; i < rounds; i++) {
        a = a * 1.0000001 + b * 1e-3;
        b = b / 1.0000003 + c;
        c = c * 0.9999999 + d * 1e-9;
        d = d + e / (1.0 + a);
        e = e * 1.0000002;
        f = f - g * 1e-7;
        g = g + h * 1e-9;
        h = h * 0.99999999 + a * 1e-12;
        l = l * 1.00000001L + (long double)a * 1e-15L;
        if (yield) bl_yield();
    }
    *x87_out = (double)l;
    return a + b + c + d + e + f + g + h;
}

typedef struct fp_chain_arg {
    double ref, ref_x87; /* results without yields (test thread) */
    bl_pid parent;
    bool disturber; /* runs with upward rounding and FTZ instead */
} fp_chain_arg;

#define FP_ROUNDS BL_SCALE(5000)

static void fp_chain_proc(void *arg)
{
    fp_chain_arg *a = arg;
    if (a->disturber) {
        /* Its own reference, in its own rounding mode, before any yield. */
        set_round(FE_UPWARD);
#if defined(__x86_64__)
        set_mxcsr(get_mxcsr() | MXCSR_FTZ);
#endif
        double x87, x87y;
        double r = fp_chain(FP_ROUNDS, 0, &x87);
        BL_CHECK(r != a->ref); /* the mode matters for this computation */
        double ry = fp_chain(FP_ROUNDS, 1, &x87y);
        BL_CHECK(ry == r);
        BL_CHECK(x87y == x87);
    } else {
        double x87;
        double r = fp_chain(FP_ROUNDS, 1, &x87);
        BL_CHECK(r == a->ref);
        BL_CHECK(x87 == a->ref_x87);
    }
    bl_send(a->parent, T_DONE, NULL, 0);
}

static void fp_chain_main(void *arg)
{
    fp_chain_arg *ref = arg;
    fp_chain_arg plain = *ref, dist = *ref;
    plain.parent = dist.parent = bl_self();
    dist.disturber = true;
    bl_spawn_opts o = {.scheduler = 1};
    BL_CHECK_EQ(bl_spawn(NULL, fp_chain_proc, &plain, &o), 0);
    BL_CHECK_EQ(bl_spawn(NULL, fp_chain_proc, &dist, &o), 0);
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
}

Test(ctx, fp_values_across_yields_are_deterministic)
{
    fp_chain_arg a = {0};
    a.ref = fp_chain(FP_ROUNDS, 0, &a.ref_x87);
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, fp_chain_main, &a);
}

/* ------------------------------------------------------------------------ */
/* A new process starts with the default environment                        */
/* ------------------------------------------------------------------------ */

typedef struct fp_env {
    unsigned mxcsr;  /* control bits of MXCSR (x86-64) */
    unsigned x87cw;  /* x87 control word (x86-64) */
    int round;       /* rounding mode */
    bool ftz_zeroes; /* a subnormal result was flushed */
} fp_env;

static void report_env(void *arg)
{
    fp_env e = {0};
#if defined(__x86_64__)
    /* Read before anything else runs floating-point code. */
    e.mxcsr = get_mxcsr() & MXCSR_CONTROL;
    e.x87cw = get_x87cw();
#endif
    e.round = get_round();
    e.ftz_zeroes = subnormal() == 0.0;
    bl_send(*(bl_pid *)arg, T_ENV, &e, sizeof e);
}

static void check_default_env(const fp_env *e)
{
#if defined(__x86_64__)
    BL_CHECK_EQ(e->mxcsr, MXCSR_DEFAULT);
    BL_CHECK_EQ(e->x87cw, X87_DEFAULT);
#endif
    BL_CHECK_EQ(e->round, FE_TONEAREST);
    BL_CHECK(!e->ftz_zeroes);
}

static void new_env_main(void *arg)
{
    bl_pid self = bl_self();
    int here = bl_current_scheduler();
    set_round(FE_UPWARD);
#if defined(__x86_64__)
    set_mxcsr(get_mxcsr() | MXCSR_FTZ);
    set_x87cw(X87_PC_SINGLE | 0x0800u);
#endif
    BL_CHECK(subnormal() == 0.0);
    /* Our own scheduler first (the child runs on the thread we changed
     * nothing on, but after our switch out), then the other one. */
    for (int k = 0; k < 2; k++) {
        bl_spawn_opts o = {.scheduler = (k == 0 ? here : 1 - here) + 1};
        BL_CHECK_EQ(bl_spawn(NULL, report_env, &self, &o), 0);
        bl_msg *m = bl_test_recv_tag(T_ENV, 10000);
        BL_CHECK(m != NULL);
        if (m) check_default_env(m->data);
        bl_msg_free(m);
    }
    /* We kept ours across those receives. */
    BL_CHECK_EQ(get_round(), FE_UPWARD);
#if defined(__x86_64__)
    BL_CHECK_EQ(get_mxcsr() & MXCSR_CONTROL, MXCSR_DEFAULT | MXCSR_RC_UP | MXCSR_FTZ);
    BL_CHECK_EQ(get_x87cw(), X87_PC_SINGLE | 0x0800u);
    set_mxcsr(MXCSR_DEFAULT);
    set_x87cw(X87_DEFAULT);
#else
    set_round(FE_TONEAREST);
#endif
}

Test(ctx, new_process_starts_with_default_fp_env)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, new_env_main, NULL);
}

/* ------------------------------------------------------------------------ */
/* bl__ctx_* directly, without the runtime                                  */
/* ------------------------------------------------------------------------ */

/* A coroutine on a pool stack that ping-pongs with the test thread. */
static bl_ctx co_main_ctx, co_ctx;
static int co_switches;
static int co_bad; /* first failed check in the coroutine, as a line number */
static int co_done;
static uintptr_t co_frame;

#define CO_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond) && !co_bad) co_bad = __LINE__;                                                 \
    } while (0)

static void co_entry(void *arg)
{
    bl__ctx_entered();
    co_frame = (uintptr_t)__builtin_frame_address(0);
    CO_CHECK(arg == &co_switches);
    /* A fresh context starts with the default environment, whatever its
     * creator's was. */
#if defined(__x86_64__)
    CO_CHECK((get_mxcsr() & MXCSR_CONTROL) == MXCSR_DEFAULT);
    CO_CHECK(get_x87cw() == X87_DEFAULT);
    set_mxcsr(MXCSR_DEFAULT | 0x2000u); /* round down, its own */
#else
    set_round(FE_DOWNWARD);
#endif
    for (int i = 0; i < co_switches; i++) {
        bl__ctx_jump(&co_ctx, &co_main_ctx, 0);
        CO_CHECK(get_round_sse() == FE_DOWNWARD);
    }
    co_done = 1;
    bl__ctx_jump(&co_ctx, &co_main_ctx, 1);
    __builtin_trap(); /* never resumed */
}

Test(ctx, raw_switch_keeps_each_contexts_fp_env)
{
    bl_stack_pool pool;
    bl__stack_pool_init(&pool, 64 << 10, 1, -1);
    bl_stack *s = bl__stack_get(&pool, 0);
    cr_assert_not_null(s);
    bl__ctx_init_thread(&co_main_ctx);
    memset(&co_ctx, 0, sizeof co_ctx);
    co_switches = 10000;
    bl__ctx_init(&co_ctx, s->lo, s->size, co_entry, &co_switches);

    set_round(FE_UPWARD);
    for (int i = 0; i <= co_switches && !co_done; i++) {
        bl__ctx_jump(&co_main_ctx, &co_ctx, 0);
        cr_assert_eq(get_round_sse(), FE_UPWARD, "thread lost its rounding mode at switch %d", i);
    }
    set_round(FE_TONEAREST);
    cr_assert(co_done, "the coroutine did not finish");
    cr_assert_eq(co_bad, 0, "check at line %d failed in the coroutine", co_bad);
    cr_assert(co_frame > (uintptr_t)s->lo && co_frame < (uintptr_t)s->lo + s->size,
              "the coroutine ran on its stack");
    cr_assert_eq(co_frame % 16, 0, "entry frame is 16-byte aligned");
    bl__ctx_destroy(&co_ctx);
    bl__stack_put(&pool, s);
    bl__stack_pool_destroy(&pool);
}
