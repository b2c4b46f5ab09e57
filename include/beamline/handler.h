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
} bl_handler;

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
