/*
 * sched/overflow.c - a process that overflows its stack dies with reason
 * stack_overflow; the runtime and every other process go on (invariant 9).
 *
 * How.  Every process stack has a guard page below it (core/stack.h).  A
 * process that runs past its stack touches the guard and the kernel sends
 * the thread SIGSEGV.  The runtime installs a SIGSEGV handler while it runs
 * (bl_runtime_start .. the end of bl_runtime_wait, the previous action is
 * remembered and put back) and gives each scheduler thread an alternate
 * signal stack.  The handler decides the fault is a stack overflow only if
 * all of this holds:
 *   - the thread is a scheduler thread running a process that has a stack
 *     (bl__tls_sched, s->current, p->stack);
 *   - the kernel raised it for a fault (si_code > 0, not kill/raise/sigqueue);
 *   - the faulting address lies in that stack's guard page [map, lo);
 *   - the interrupted stack pointer lies in that stack's mapping.
 * Then the handler ends the process with {BL_STACK_OVERFLOW} by calling
 * bl__exit_self directly: that switches to the scheduler's context and
 * never returns, exactly as if the process had called bl_exit_reason.  So
 * links and monitors see reason stack_overflow through the normal exit path
 * (bl__proc_finish), and the stack goes back to the pool, guard intact.
 *
 * Why an alternate signal stack.  The kernel builds the signal frame on the
 * stack the thread is using, and here that stack is exactly what ran out:
 * without SA_ONSTACK + sigaltstack the kernel cannot deliver the signal and
 * kills the whole program.  Each scheduler thread gets its own 64 KiB
 * alternate stack (mmap'd, with its own guard page below it), and puts back
 * whatever alternate stack it had (ASan installs one) when it exits.  The
 * handler leaves the alternate stack by a context switch, never by
 * sigreturn; that is fine because the kernel decides "already on the
 * alternate stack" from the current stack pointer alone, so the next
 * overflow on this thread starts again at the top of the alternate stack.
 *
 * Why SA_NODEFER.  Without it the kernel blocks SIGSEGV while the handler
 * runs and only sigreturn would unblock it; since the handler never returns,
 * the thread would keep SIGSEGV blocked, and the next overflow on it would
 * make the kernel kill the program (a blocked SIGSEGV from a fault is fatal).
 * With SA_NODEFER and an empty sa_mask the mask is untouched.  On top of
 * that the handler restores the interrupted code's signal mask itself (one
 * rt_sigprocmask, as sigreturn would), because an interposer may block more
 * than we asked: ThreadSanitizer installs every handler with a full sa_mask.
 *
 * What happens to the process.  Its C stack is abandoned where it stood: no
 * cleanup code of its frames runs (like a process killed by an exit
 * signal, see beamline/signal.h); a handler process's terminate callback is
 * not called.  The kernel's signal frame on the alternate stack is
 * abandoned too.  Memory the process malloc'd and still pointed to from
 * its stack leaks, as with any kill.
 *
 * Any other SIGSEGV (a thread that is not a scheduler, a scheduler between
 * processes, an address outside the guard, a SIGSEGV sent with kill) is not
 * ours: it goes to the action that was installed before the runtime started
 * if that was a handler, otherwise SIG_DFL is put back and the fault
 * repeats (a sent signal is raised again), so the program dies of SIGSEGV
 * with its core dump, or with the sanitizer's report, as it would have
 * without the runtime.
 *
 * Sanitizers.  ASan's sigaction interceptor lets the runtime's handler
 * replace ASan's own (unless handle_segv=2); faults that are not overflows
 * are then chained to ASan's handler, which reports them.  The tests run
 * with handle_segv=0 and detect_stack_use_after_return=0 (fake stacks would
 * move large locals off the process stack).  Under ASan the handler also
 * unpoisons the guard page's shadow.  TSan runs the handler from its own
 * wrapper (with a full sa_mask, hence the mask restore above).
 *
 * Limits.
 *   - A frame larger than the guard page (4 KiB) can jump over it and write
 *     into whatever lies below (often another process's stack) without
 *     faulting in the guard.  Compile process code with
 *     -fstack-clash-protection so that large frames and alloca probe every
 *     page on the way down; then they always hit the guard first.
 *   - The handler is async-signal-safe only as far as the exit path is:
 *     bl__exit_self and the scheduler's exit work touch the scheduler's own
 *     structures, which the process cannot be in the middle of changing
 *     unless the overflow happens inside the runtime's or libc's code.  An
 *     overflow in the middle of a call that holds a lock or leaves a
 *     structure half-updated (malloc holding its arena lock, for example)
 *     can leave it so: the next user may deadlock.  Keep deep recursion in
 *     code of your own.
 *   - Only SIGSEGV is handled.  The guard is an unmapped/PROT_NONE page (or
 *     a MADV_GUARD_INSTALL range), which faults with SIGSEGV on Linux.
 *   - A program that installs its own SIGSEGV handler after bl_runtime_start
 *     replaces the runtime's: overflows then go to that handler.  The
 *     runtime leaves such a handler in place at shutdown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "sched/sched.h"

#define ALT_SIZE ((size_t)64 << 10) /* alternate signal stack per scheduler thread */

/* The action before bl__overflow_install, and whether ours is in place.
 * Written only by bl_runtime_start / bl_runtime_wait, never while a handler
 * can run on a scheduler thread (no scheduler thread exists then); the
 * handler only reads them. */
static struct sigaction prev_action;
static bool installed;

/* This thread's alternate stack (scheduler threads only). */
static __thread void *alt_map;       /* the mapping: guard page, then the stack */
static __thread size_t alt_map_size; /* bytes mapped */
static __thread stack_t alt_prev;    /* the alternate stack the thread had before */

/* The interrupted stack pointer. */
static uintptr_t interrupted_sp(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
#error "Beamline runs on x86-64 and AArch64 only"
#endif
}

/* p's stack overflowed: end p.  Runs on the alternate stack; never returns. */
static _Noreturn void overflowed(bl_proc *p, const ucontext_t *uc)
{
    bl_stack *st = p->stack;
    /* Sigreturn would restore the interrupted mask; we leave by a context
     * switch, so do it here (see "Why SA_NODEFER" above).  Raw syscall: the
     * kernel's 8-byte sigset, and no interceptor in between. */
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, NULL, (size_t)(_NSIG / 8));
#ifdef BL_ASAN
    /* The faulting frame's prologue may have poisoned the shadow of guard
     * addresses; bl__stack_put unpoisons only the usable part [lo, lo+size),
     * and a later mapping at this address must not inherit poison. */
    ASAN_UNPOISON_MEMORY_REGION(st->map, (size_t)((char *)st->lo - (char *)st->map));
#endif
    (void)st;
    /* Nothing below needs the dead stack: the reason lives here on the
     * alternate stack and has no detail (so no malloc); the exit path uses
     * the PCB, the scheduler's structures and the scheduler's context. */
    bl__hook_proc_fault(p, BL_STACK_OVERFLOW);
}

/* Not an overflow: hand the signal to what would have handled it without us. */
static void not_ours(int sig, siginfo_t *si, void *uctx)
{
    const struct sigaction *pa = &prev_action;
    if (pa->sa_handler != SIG_DFL && pa->sa_handler != SIG_IGN) {
        if (pa->sa_flags & SA_SIGINFO)
            pa->sa_sigaction(sig, si, uctx);
        else
            pa->sa_handler(sig);
        return;
    }
    bool sent = si->si_code <= 0; /* kill, tgkill, sigqueue: not a fault */
    if (sent && pa->sa_handler == SIG_IGN) return;
    /* Default action: put it back.  A fault then happens again as soon as
     * we return and kills the program with the faulting context intact in
     * the core dump (a fault cannot be ignored: the kernel forces the
     * default); a sent signal is sent again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGSEGV, &dfl, NULL);
    if (sent) raise(sig);
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    const ucontext_t *uc = uctx;
    bl_sched *s = bl__tls_sched;
    bl_proc *p = s ? bl__sched_current(s) : NULL;
    /* The descriptor is in the top bytes of the stack, far from the guard. */
    bl_stack *st = p ? p->stack : NULL;
    if (st && si->si_code > 0) {
        uintptr_t a = (uintptr_t)si->si_addr, sp = interrupted_sp(uc);
        uintptr_t map = (uintptr_t)st->map, lo = (uintptr_t)st->lo;
        if (a >= map && a < lo && sp >= map && sp <= map + st->map_size) overflowed(p, uc);
    }
    not_ours(sig, si, uctx);
}

void bl__overflow_install(void)
{
    if (installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    /* Read the previous action first: the handler may use prev_action as
     * soon as it is installed. */
    if (sigaction(SIGSEGV, NULL, &prev_action) != 0) return;
    if (sigaction(SIGSEGV, &sa, NULL) != 0) return;
    installed = true;
}

void bl__overflow_uninstall(void)
{
    if (!installed) return;
    installed = false;
    struct sigaction cur;
    /* Someone replaced our handler since: leave theirs alone. */
    if (sigaction(SIGSEGV, NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) ||
        cur.sa_sigaction != on_segv)
        return;
    sigaction(SIGSEGV, &prev_action, NULL);
}

int bl__overflow_thread_init(char *err, size_t errlen)
{
    if (alt_map) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = ALT_SIZE;
#ifdef _SC_MINSIGSTKSZ
    /* Large vector state (AVX-512, AMX) makes signal frames big. */
    long min = sysconf(_SC_MINSIGSTKSZ);
    if (min > 0 && size < 4 * (size_t)min) size = (4 * (size_t)min + page - 1) & ~(page - 1);
#endif
    size_t map_size = size + page; /* plus a guard page below */
    void *m = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "alternate signal stack: %s", strerror(errno));
        return -ENOMEM;
    }
    /* A fault in the handler that overflowed this stack must kill the
     * program rather than write into the neighbouring mapping. */
    if (mprotect(m, page, PROT_NONE) != 0) {
        int e = errno;
        munmap(m, map_size);
        snprintf(err, errlen, "alternate signal stack guard: %s", strerror(e));
        return -e;
    }
    stack_t ss = {.ss_sp = (char *)m + page, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, &alt_prev) != 0) {
        int e = errno;
        munmap(m, map_size);
        snprintf(err, errlen, "sigaltstack: %s", strerror(e));
        return -e;
    }
    alt_map = m;
    alt_map_size = map_size;
    return 0;
}

void bl__overflow_thread_exit(void)
{
    if (!alt_map) return;
    stack_t off = {.ss_flags = SS_DISABLE};
    /* Put back the thread's previous alternate stack (ASan's, which ASan
     * unmaps itself when the thread exits), or none. */
    const stack_t *back = (alt_prev.ss_flags & SS_DISABLE) ? &off : &alt_prev;
    if (sigaltstack(back, NULL) != 0) sigaltstack(&off, NULL);
    munmap(alt_map, alt_map_size);
    alt_map = NULL;
    alt_map_size = 0;
}
