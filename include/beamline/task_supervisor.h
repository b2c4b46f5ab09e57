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
 *   start_child    fire and forget; temporary by default, transient allowed
 *   stream         Task.Supervisor.async_stream_nolink
 *
 * Tasks started with async / async_nolink are collected with the calls of
 * beamline/task.h (bl_task_await, bl_task_yield, bl_task_shutdown, ...).
 * A task supervisor can be a PartitionSupervisor's child spec
 * (bl_task_supervisor_start_fn), which spreads tasks over N supervisors.
 *
 * Differences from Elixir: as for Task (results are bytes, failures are
 * returned); start_child's restart is a bl_restart (permanent is refused,
 * as Elixir refuses it); the task function and arg of a transient child are
 * kept by the supervisor for restarts (arg is shared, not copied).
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
 * Task.Supervisor.start_child: runs fn(arg) in a new child of sup and
 * returns at once with its pid (pid may be NULL).  restart is
 * BL_RESTART_TEMPORARY (the default of a zero value is not: pass it) or
 * BL_RESTART_TRANSIENT (restarted after an abnormal exit, running fn(arg) again).
 * Returns 0, -EINVAL (NULL fn, permanent), BL_SUP_MAX_CHILDREN, or a call
 * error.
 */
int bl_task_supervisor_start_child(bl_pid sup, bl_task_fn fn, void *arg, bl_restart restart,
                                   bl_pid *pid);

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
