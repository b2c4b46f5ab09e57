/*
 * beamline/dirty.h - the dirty-work pool: blocking or CPU-heavy C calls
 * (getaddrinfo, compression, a library without an async API) run on
 * threads of their own while the calling process waits, so scheduler
 * threads never block.
 *
 * The pool's threads start with the first job (BEAMLINE_DIRTY_THREADS of
 * them, default: one per scheduler) and stop with the runtime, which waits
 * for the jobs they are running: a dirty function must return.  It runs
 * outside any process: it must not call process-only functions (bl_self()
 * is BL_PID_NONE there), though it may bl_send.
 *
 * Like the BEAM's dirty schedulers, the pool cannot interrupt a function:
 * if the waiting process is killed, its function still runs to the end,
 * and the process's stack (where fn's argument may live) is kept until then.
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
