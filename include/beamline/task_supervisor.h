/*
 * beamline/task_supervisor.h - Task.Supervisor: tasks started as children
 * of a dynamic supervisor.
 *
 * A task supervisor is a DynamicSupervisor (beamline/dynamic_supervisor.h)
 * whose children are task processes.  The supervisor is the task's parent
 * (it shuts tasks down when it stops); the caller owns the result:
 *
 *   async          the task is linked to the caller too, and monitored
 *   async_nolink   monitored only: a crash reaches the caller as a result
 *   start_child    fire and forget; temporary by default, transient or
 *                  permanent on request (Elixir's :restart)
 *   stream         Task.Supervisor.async_stream_nolink
 *
 * Each task child has a shutdown (Elixir's :shutdown option: brutal_kill,
 * a timeout in ms, infinity; 5000 ms by default), honoured when the
 * supervisor stops or terminate_child stops the task: a task that does not
 * trap exits dies at once from the shutdown signal, one that traps them has
 * that long to exit before it is killed.
 *
 * bl_task_child_spec makes a task a child of any supervisor (Elixir's
 * `use Task` child spec: restart temporary by default).
 *
 * Tasks started with async / async_nolink are collected with the calls of
 * beamline/task.h (bl_task_await, bl_task_yield, bl_task_shutdown, ...).
 * A task supervisor can be a PartitionSupervisor's child spec
 * (bl_task_supervisor_start_fn), which spreads tasks over N supervisors.
 *
 * Differences from Elixir: as for Task (results are bytes, failures are
 * returned); the task function and arg of a transient or permanent child
 * are kept by the supervisor for restarts (arg is shared, not copied); the
 * stream's tasks have the default shutdown (no :shutdown option there).
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_TASK_SUPERVISOR_H
#define BEAMLINE_TASK_SUPERVISOR_H

#include "beamline/dynamic_supervisor.h"
#include "beamline/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options; a zeroed struct (or NULL) means Elixir's defaults. */
typedef struct bl_task_sup_opts {
    int max_restarts;    /* 0 = 3 */
    int max_seconds;     /* 0 = 5 */
    size_t max_children; /* 0 = infinity */
    const bl_name *name; /* register under this name; NULL = none */
} bl_task_sup_opts;

/*
 * Starts a task supervisor linked to the caller (process only).  Returns 0
 * (*pid) or the errors of bl_dynamic_supervisor_start_link.
 */
int bl_task_supervisor_start_link(bl_pid *pid, const bl_task_sup_opts *opts);

/* A bl_start_fn: arg is a const bl_task_sup_opts * (NULL = defaults) that outlives the spec. */
int bl_task_supervisor_start_fn(void *arg, bl_pid *pid);

/* When a supervised task is restarted (Elixir's :restart); zero is the default for tasks. */
typedef enum bl_task_restart {
    BL_TASK_RESTART_TEMPORARY = 0, /* never (the default) */
    BL_TASK_RESTART_TRANSIENT = 1, /* after an abnormal exit, running fn(arg) again */
    BL_TASK_RESTART_PERMANENT = 2, /* always, after a normal exit too (until the intensity says
                                      stop) */
} bl_task_restart;

/* A supervised task's options; a zeroed struct (or NULL) means Elixir's defaults. */
typedef struct bl_task_child_opts {
    bl_task_restart restart; /* temporary by default; async takes temporary only */
    int64_t shutdown;        /* ms > 0, BL_SHUTDOWN_INFINITY, BL_SHUTDOWN_BRUTAL_KILL; 0 = 5000 */
} bl_task_child_opts;

/*
 * Task.Supervisor.async: runs fn(arg) in a new child of sup, linked to the
 * caller and monitored by it; collect it with bl_task_await & co.
 * Returns 0, BL_SUP_MAX_CHILDREN, -EINVAL, -ESRCH (sup is not alive),
 * -EPERM, -ENOMEM.
 */
int bl_task_supervisor_async(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg);

/* Task.Supervisor.async_nolink: as async, without the link to the caller. */
int bl_task_supervisor_async_nolink(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg);

/*
 * async and async_nolink with options (opts may be NULL): the task's
 * shutdown; restart must be temporary (-EINVAL otherwise, as async tasks
 * cannot be restarted).  -EINVAL also for an invalid shutdown.
 */
int bl_task_supervisor_async_opts(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg,
                                  const bl_task_child_opts *opts);
int bl_task_supervisor_async_nolink_opts(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg,
                                         const bl_task_child_opts *opts);

/*
 * Task.Supervisor.start_child: runs fn(arg) in a new child of sup and
 * returns at once with its pid (pid may be NULL).  restart is any
 * bl_restart, with Elixir's meaning (the default of a zero value is
 * permanent: pass it; bl_task_supervisor_start_child_opts defaults to
 * temporary); the shutdown is 5000 ms.  A transient or permanent task runs
 * fn(arg) again when it is restarted.  Returns 0, -EINVAL (NULL fn, a bad
 * restart), BL_SUP_MAX_CHILDREN, or a call error.
 */
int bl_task_supervisor_start_child(bl_pid sup, bl_task_fn fn, void *arg, bl_restart restart,
                                   bl_pid *pid);

/*
 * Task.Supervisor.start_child with options (opts may be NULL: temporary,
 * 5000 ms).  Returns as bl_task_supervisor_start_child; -EINVAL also for a
 * bad restart or shutdown.
 */
int bl_task_supervisor_start_child_opts(bl_pid sup, bl_task_fn fn, void *arg,
                                        const bl_task_child_opts *opts, bl_pid *pid);

/* What a task child spec runs: fn(arg) in a task linked to its supervisor. */
typedef struct bl_task_child {
    bl_task_fn fn; /* required */
    void *arg;     /* fn's argument, shared (not copied): it must outlive the spec */
} bl_task_child;

/*
 * The child spec of a task, for any supervisor (Elixir's `use Task` child
 * spec): id, a start that runs bl_task_start_link(fn, arg), restart
 * BL_RESTART_TEMPORARY, shutdown default (5000 ms), type worker.  The spec
 * points at *tc with arg_len set, so the supervisor copies it: tc may live
 * on the caller's stack.  Change restart or shutdown in the returned spec
 * for Elixir's `use Task, restart: ...`.  With tc or tc->fn NULL the spec
 * has no start, and supervisors refuse it (-EINVAL).
 */
bl_child_spec bl_task_child_spec(const char *id, const bl_task_child *tc);

/* Task.Supervisor.children: up to max pids into out; returns how many in all, or a call error. */
int bl_task_supervisor_children(bl_pid sup, bl_pid *out, size_t max);

/* Task.Supervisor.terminate_child: 0, BL_SUP_NOT_FOUND, or a call error. */
int bl_task_supervisor_terminate_child(bl_pid sup, bl_pid child);

/*
 * Task.Supervisor.async_stream_nolink over an array: as bl_task_stream_open
 * (opts may be NULL), each task a child of *sup and not linked to the
 * caller.  sup points at the supervisor's pid and must stay valid until the
 * stream is closed.  The opts' spawner and nolink fields are set by this call.
 */
int bl_task_supervisor_stream(bl_task_stream **s, const bl_pid *sup, const void *items, size_t n,
                              size_t item_size, bl_task_stream_fn fn, void *ctx,
                              const bl_task_stream_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_TASK_SUPERVISOR_H */
