/*
 * beamline/dirty.h - the dirty-work pool: blocking or CPU-heavy C calls
 * (getaddrinfo, compression, a library without an async API) run on
 * threads of their own while the calling process waits, so scheduler
 * threads never block.
 *
 * The pool's threads ("bl-dirty") start with the first job
 * (BEAMLINE_DIRTY_THREADS of them, default: one per scheduler), on the CPUs
 * of the process's first thread rather than the pinned core of the
 * scheduler that started them, less the cores schedulers are pinned to
 * when any are left (so a job does not take a scheduler's core while
 * another core idles), and stop with the runtime, which waits for
 * every job queued or running: a dirty function must return.  It runs
 * outside any process: it must not call process-only functions (bl_self()
 * is BL_PID_NONE there), though it may bl_send.
 *
 * Jobs wait in a FIFO under a mutex (dirty work is slow by nature).  A
 * process has at most one job, kept on its own stack, so the queue never
 * allocates and is bounded by the number of live processes.
 *
 * Like the BEAM's dirty schedulers, the pool cannot interrupt a function:
 * if the waiting process is killed, its function still runs to the end
 * (even one still queued when the kill came), and the process's stack
 * (where fn's argument may live) is kept until then and freed after.  A
 * process still waiting when the runtime stops never runs again.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_DIRTY_H
#define BEAMLINE_DIRTY_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Process only: runs fn(arg) on a pool thread, parks the caller until it
 * returns, and stores its result in *result (may be NULL).  Messages wait
 * in the mailbox meanwhile; exit signals are acted upon (a kill ends the
 * caller at once, see above).  Returns 0, -EPERM (not a process), -EINVAL
 * (fn NULL), -EAGAIN (the pool's threads could not be created), -ESRCH
 * (the runtime is stopping).
 */
int bl_dirty_run(long (*fn)(void *arg), void *arg, long *result);

/* Jobs queued or running right now (introspection, tests). */
unsigned bl_dirty_pending(void);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_DIRTY_H */
