/*
 * beamline/handler.h - handler processes: the basis of every OTP behaviour.
 *
 * A handler process has no entry function of its own.  The runtime calls
 * init once, then handle for each message, each time on a stack borrowed from
 * the scheduler's pool.  When handle returns without having blocked, the
 * stack goes back to the pool: an idle handler process holds no stack, only
 * its process control block (see idle_process_bytes in the benchmarks).
 * If handle blocks (bl_recv, bl_sleep, a nested call), the process keeps its
 * stack until handle returns.
 *
 * Where C differs (no BEAM process has a stack to give back): up to 8 idle
 * handlers per scheduler keep their stacks for their next message, which
 * then resumes them where they parked instead of starting handle on a fresh
 * stack (some 30 ns less per message).  The scheduler takes those stacks
 * back when it runs out of work, or after two of its turns (2 x 64 picks)
 * without a message for them; bl_scheduler_stats counts both (stack_keeps,
 * stack_sheds).  bl_process_info and bl_processes_snapshot count a kept
 * stack as its scheduler's, not the handler's.
 */
#ifndef BEAMLINE_HANDLER_H
#define BEAMLINE_HANDLER_H

#ifdef __cplusplus
extern "C" {
#endif

/* Results of init and handle. */
#define BL_CONTINUE 0    /* go on */
#define BL_STOP     (-1) /* exit with reason normal */

typedef struct bl_handler {
    /*
     * Called once in the new process with the arg given to
     * bl_spawn_handler.  Stores the process state in *state.  Returns 0 to
     * go on, BL_STOP to exit normally at once, anything else to exit with
     * that custom code (terminate is not called).  May be NULL: the state is
     * then arg.
     */
    int (*init)(void *arg, void **state);
    /*
     * Called for each message, in arrival order.  The runtime frees m when
     * handle returns.  Returns BL_CONTINUE (0) to wait for the next message,
     * BL_STOP to exit normally, any other value to exit with the custom
     * reason of that code (an abnormal exit, which links see and which is
     * crash-reported).  Required.
     */
    int (*handle)(void *state, bl_msg *m);
    /* Called once when handle asks to exit, with its result.  May be NULL. */
    void (*terminate)(void *state, int reason);
    /*
     * Called once after the process has died, whatever the reason (a kill
     * included), on a scheduler thread and outside any process: it may free
     * memory and must not block or call process-only functions.  state is
     * the init arg when init never ran.  It has returned before anyone can
     * see the death: links' exit signals, monitors' DOWN, a monitor set
     * afterwards (noproc), a send that finds the pid gone.  Also called for
     * handler processes still alive when the runtime stops.  May be NULL.
     */
    void (*release)(void *state);
} bl_handler;

/*
 * Result of init or handle that ends the process with reason r: call
 * `return bl_handler_exit(&r);`.  r (and its detail) is copied at once.
 * terminate, if any, then runs with BL_STOP_REASON.  Outside a handler
 * process returns -EPERM; for a malformed reason -EINVAL (return it and the
 * process exits with that custom code).
 */
#define BL_STOP_REASON (-2)
struct bl_reason;
int bl_handler_exit(const struct bl_reason *r);

/*
 * Spawns a handler process.  h must stay valid while the process lives (a
 * static const struct is the usual choice).  Returns 0 and the pid in *pid,
 * or the errors of bl_spawn; -EINVAL when h or h->handle is NULL.
 */
int bl_spawn_handler(bl_pid *pid, const bl_handler *h, void *arg, const bl_spawn_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_HANDLER_H */
