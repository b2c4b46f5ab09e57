/*
 * core/ctx.c - building the first frame of a new context.
 */
#define _GNU_SOURCE
#include "core/ctx.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

void bl__ctx_init(bl_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    /* The top of the stack, aligned down to 16 bytes as both ABIs require. */
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* One spare slot above the frame keeps bl__ctx_start 16-byte aligned. */
    uint64_t *f = (uint64_t *)(top - 64 - 16);
    memset(f, 0, 80);
    /* Default MXCSR and x87 control word; bytes 6-7 stay zero, as in frames
     * the switch saves (the switch compares all 8 bytes). */
    f[0] = 0x1F80 | ((uint64_t)0x037F << 32);
    f[3] = (uint64_t)(uintptr_t)arg;           /* r13 */
    f[4] = (uint64_t)(uintptr_t)fn;            /* r12 */
    f[7] = (uint64_t)(uintptr_t)bl__ctx_start; /* return address */
#elif defined(__aarch64__)
    uint64_t *f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)fn;             /* x19 */
    f[1] = (uint64_t)(uintptr_t)arg;            /* x20 */
    f[11] = (uint64_t)(uintptr_t)bl__ctx_start; /* x30 */
#else
#error "Beamline has context switches for x86-64 and AArch64 only"
#endif
    ctx->sp = f;
    ctx->stack_lo = lo;
    ctx->stack_size = size;
#ifdef BL_TSAN
    if (!ctx->tsan_fiber) ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void bl__ctx_init_thread(bl_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &ctx->stack_lo, &ctx->stack_size);
        pthread_attr_destroy(&attr);
    }
#ifdef BL_TSAN
    ctx->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void bl__ctx_destroy(bl_ctx *ctx)
{
#ifdef BL_TSAN
    if (ctx->tsan_fiber) __tsan_destroy_fiber(ctx->tsan_fiber);
#endif
    ctx->tsan_fiber = NULL;
}
