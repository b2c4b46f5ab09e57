/*
 * core/ctx.h - execution contexts: a saved stack pointer plus what the
 * sanitizers need to follow a switch between stacks.
 *
 * A context is either a scheduler thread's own stack or a process stack.
 * Switching saves the callee-saved registers, MXCSR and the x87 control
 * word (FPCR on AArch64) on the old stack; see ctx_x86_64.S / ctx_aarch64.S.
 */
#ifndef BL_CORE_CTX_H
#define BL_CORE_CTX_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define BL_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define BL_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif

typedef struct bl_ctx {
    void *sp;          /* saved stack pointer while switched out */
    void *stack_lo;    /* lowest usable address of the stack (ASan) */
    size_t stack_size; /* usable bytes of the stack (ASan) */
    void *tsan_fiber;  /* TSan's fiber for this context; NULL in other builds */
} bl_ctx;

/* Assembly primitives. */
void bl__ctx_switch(void **save_sp, void *load_sp);
void bl__ctx_start(void);

/*
 * Prepares ctx to run fn(arg) on the stack [lo, lo + size) the first time it
 * is switched to.  fn must never return.
 */
void bl__ctx_init(bl_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg);

/* Sets up ctx for the calling thread's own stack (the scheduler loop). */
void bl__ctx_init_thread(bl_ctx *ctx);

/* Releases sanitizer state of a context that will never run again. */
void bl__ctx_destroy(bl_ctx *ctx);

/*
 * Switches from the running context `from` to `to`.  `dying` says that
 * `from` will never be resumed (its stack is about to be reused), which ASan
 * must know to drop the fake stack of the dead frames.
 */
static inline void bl__ctx_jump(bl_ctx *from, bl_ctx *to, int dying)
{
#ifdef BL_ASAN
    void *fake = NULL;
    const void *old_lo;
    size_t old_size;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake, to->stack_lo, to->stack_size);
#endif
#ifdef BL_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    bl__ctx_switch(&from->sp, to->sp);
#ifdef BL_ASAN
    __sanitizer_finish_switch_fiber(fake, &old_lo, &old_size);
#endif
    (void)dying;
}

/*
 * First thing a brand-new context runs (from its entry function): completes
 * the switch that started it, for ASan.
 */
static inline void bl__ctx_entered(void)
{
#ifdef BL_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

#endif /* BL_CORE_CTX_H */
