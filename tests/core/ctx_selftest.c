/*
 * A self-contained check of the context switch alone (no runtime, no
 * liburing or hwloc), so it can be cross-compiled and run under qemu-user
 * for the architecture this machine is not:
 *
 *   aarch64-linux-gnu-gcc -O2 -I. -Iinclude tests/core/ctx_selftest.c \
 *       core/ctx.c core/ctx_aarch64.S -static -o /tmp/ctx_a64
 *   qemu-aarch64 /tmp/ctx_a64
 *
 * It bounces between two contexts many times, each keeping values live in
 * callee-saved registers and its own floating-point control state, and
 * prints "N passed, M failed".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ctx.h"

static bl_ctx main_ctx, a_ctx, b_ctx;
static int failures, checks;
static volatile int rounds_a, rounds_b;

#define ROUNDS 100000

static void check(int ok, const char *what)
{
    checks++;
    if (!ok && failures++ < 5) fprintf(stderr, "failed: %s\n", what);
}

#if defined(__aarch64__)
static uint64_t get_fpcr(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void set_fpcr(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" ::"r"(v));
}
#define RMODE_UP (1ull << 22)
#elif defined(__x86_64__)
static uint64_t get_fpcr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v & ~0x3Fu; /* control bits only: bits 0-5 are sticky exception flags */
}
static void set_fpcr(uint64_t v)
{
    uint32_t x = (uint32_t)v;
    __asm__ volatile("ldmxcsr %0" ::"m"(x));
}
#define RMODE_UP (2ull << 13)
#endif

/* Values that the compiler keeps in callee-saved registers across the switch. */
__attribute__((noinline)) static uint64_t work(bl_ctx *self, bl_ctx *other, uint64_t seed,
                                               volatile int *rounds, uint64_t fp_mode)
{
    uint64_t a = seed, b = seed * 3, c = seed ^ 0x5555, d = seed + 11, e = ~seed, f = seed << 2;
    double x = (double)seed;
    set_fpcr(fp_mode);
    for (int i = 0; i < ROUNDS; i++) {
        a += b;
        b ^= c;
        c += d;
        d ^= e;
        e += f;
        f ^= a;
        x = x * 1.0000001 + 1.0;
        bl__ctx_jump(self, other, 0);
        check(get_fpcr() == fp_mode, "floating-point control survives the switch");
        (*rounds)++;
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ (uint64_t)x;
}

static uint64_t expect(uint64_t seed)
{
    uint64_t a = seed, b = seed * 3, c = seed ^ 0x5555, d = seed + 11, e = ~seed, f = seed << 2;
    double x = (double)seed;
    for (int i = 0; i < ROUNDS; i++) {
        a += b;
        b ^= c;
        c += d;
        d ^= e;
        e += f;
        f ^= a;
        x = x * 1.0000001 + 1.0;
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ (uint64_t)x;
}

static uint64_t result_a, result_b;
static uint64_t plain_mode;

static void entry_a(void *arg)
{
    bl__ctx_entered();
    result_a = work(&a_ctx, &b_ctx, 12345, &rounds_a, plain_mode);
    bl__ctx_jump(&a_ctx, &main_ctx, 1);
}

static void entry_b(void *arg)
{
    bl__ctx_entered();
    result_b = work(&b_ctx, &a_ctx, 777, &rounds_b, plain_mode | RMODE_UP);
    /* a finished its last round and switched to main; b ends here. */
    bl__ctx_jump(&b_ctx, &main_ctx, 1);
}

int main(void)
{
    size_t sz = 256 * 1024;
    char *sa = malloc(sz), *sb = malloc(sz);
    plain_mode = get_fpcr();
    bl__ctx_init_thread(&main_ctx);
    bl__ctx_init(&a_ctx, sa, sz, entry_a, NULL);
    bl__ctx_init(&b_ctx, sb, sz, entry_b, NULL);
    bl__ctx_jump(&main_ctx, &a_ctx, 0); /* returns when a is done */
    bl__ctx_jump(&main_ctx, &b_ctx, 0); /* b's last round, then back here */
    check(rounds_a == ROUNDS && rounds_b == ROUNDS, "both ran every round");
    check(result_a == expect(12345), "a's callee-saved values survived");
    check(result_b == expect(777), "b's callee-saved values survived");
    check(get_fpcr() == plain_mode, "main's floating-point control is its own");
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
