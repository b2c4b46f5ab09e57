/*
 * beamline/dynamic_supervisor.h - Elixir's DynamicSupervisor: a supervisor
 * that starts empty and gets its children on demand, one_for_one.
 *
 * Children are added with bl_dynamic_supervisor_start_child and named by
 * their pid; they have no ids and no order.  Restart rules (permanent,
 * transient, temporary) and restart intensity (max_restarts within
 * max_seconds, then exit with reason shutdown) are those of
 * beamline/supervisor.h.  A transient child that exits cleanly, or a
 * temporary one, is forgotten.  When the supervisor stops, all its
 * children get the shutdown signal at once; it then waits for all of them,
 * killing each one at its own deadline (its shutdown time), so stopping N
 * children that each take t ms takes about t ms, not N * t.
 *
 * extra_arguments: Elixir prepends them to each child's start arguments.
 * In C a start function takes one pointer, so when opts.extra_arguments is
 * not NULL each start function (started children and restarts alike) gets
 * a pointer to a bl_dynsup_args {extra, arg} instead of the spec's arg;
 * the pair lives on the supervisor's stack during the call only (copy what
 * the child keeps).  With extra_arguments NULL, start gets the spec's arg.
 *
 * Calls are gen_server calls without timeout; their errors (-ESRCH,
 * -ECONNRESET, -EDEADLK, -EPERM) are those listed in beamline/supervisor.h.
 * Stop a dynamic supervisor with bl_supervisor_stop.
 *
 * As Elixir's (and unlike Supervisor), a dynamic supervisor has no
 * auto_shutdown: a spec with significant set is refused (-EINVAL).
 *
 * Differences from Elixir: as in beamline/supervisor.h (specs are structs,
 * results are codes, no logging); start_child's spec id is ignored and may
 * be NULL; which_children lists children in no particular order, each with
 * id "".
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_DYNAMIC_SUPERVISOR_H
#define BEAMLINE_DYNAMIC_SUPERVISOR_H

#include "beamline/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a start function gets when extra_arguments is set (valid during the call). */
typedef struct bl_dynsup_args {
    void *extra; /* bl_dynsup_opts.extra_arguments */
    void *arg;   /* the child spec's arg (or the supervisor's copy of it) */
} bl_dynsup_args;

/* Options; a zeroed struct (or NULL) means Elixir's defaults. */
typedef struct bl_dynsup_opts {
    bl_sup_strategy strategy; /* only BL_ONE_FOR_ONE (the default) */
    int max_restarts;         /* 0 = 3; BL_SUP_NO_RESTARTS = none allowed */
    int max_seconds;          /* 0 = 5 */
    size_t max_children;      /* 0 = infinity */
    void *extra_arguments;    /* NULL = none; else see the header comment */
    const bl_name *name;      /* register under this name; NULL = none */
} bl_dynsup_opts;

/*
 * Starts a dynamic supervisor linked to the caller (process only).  Returns
 * 0 (*pid), -EINVAL (a bad option: a strategy other than one_for_one, a
 * negative max_restarts other than BL_SUP_NO_RESTARTS, a negative
 * max_seconds), -EEXIST (the name is taken: *pid is its holder), -ENOMEM,
 * -EPERM, -ESRCH.
 */
int bl_dynamic_supervisor_start_link(bl_pid *pid, const bl_dynsup_opts *opts);

/*
 * A bl_start_fn: arg is a const bl_dynsup_opts * (NULL = defaults), which
 * must stay valid as long as the spec is in the parent.
 */
int bl_dynamic_supervisor_start_fn(void *arg, bl_pid *pid);

/*
 * Starts a child from spec (its id is ignored).  Returns
 *   0                    *pid is the child;
 *   BL_GS_IGNORED        it ignored; nothing is kept, *pid is BL_PID_NONE;
 *   BL_SUP_MAX_CHILDREN  the supervisor already has max_children children;
 *   -EINVAL              the spec is invalid (bl_child_spec_check says
 *                        why), or significant;
 *   the child's own error (a negative errno): -EEXIST (already_started)
 *   with the holder of the child's name in *pid; or a call error.
 * pid may be NULL.
 */
int bl_dynamic_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid);

/*
 * As bl_dynamic_supervisor_start_child, and *info gets what a start_info
 * function returned with a successful start ({:ok, pid, info}); info->len
 * is 0 otherwise.  info may be NULL.
 */
int bl_dynamic_supervisor_start_child_info(bl_pid sup, const bl_child_spec *spec, bl_pid *pid,
                                           bl_child_info *info);

/* Shuts child down and forgets it.  0, BL_SUP_NOT_FOUND, or a call error. */
int bl_dynamic_supervisor_terminate_child(bl_pid sup, bl_pid child);

/*
 * Copies up to max children into out (ids ""), in no particular order.
 * Returns how many there are in all, or a call error.
 */
int bl_dynamic_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max);

/* Fills *out.  0, -EINVAL (out NULL), or a call error. */
int bl_dynamic_supervisor_count_children(bl_pid sup, bl_sup_counts *out);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_DYNAMIC_SUPERVISOR_H */
