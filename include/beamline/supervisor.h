/*
 * beamline/supervisor.h - the supervisor behaviour (Elixir's Supervisor,
 * Erlang's supervisor) and the child specifications shared with
 * beamline/dynamic_supervisor.h and beamline/partition_supervisor.h.
 *
 * A supervisor is a gen_server (a handler process: idle, it holds no
 * stack) that traps exits, starts its children in order, restarts them as
 * their specs and its strategy say, and shuts them down in reverse order.
 *
 *   one_for_one   only the child that exited is restarted;
 *   one_for_all   the others are shut down (in reverse order), then all are
 *                 started again in order;
 *   rest_for_one  the children started after it are shut down (in reverse
 *                 order), then it and they are started again in order.
 *
 * Restart rules per child: permanent children are always restarted;
 * transient ones only after an abnormal exit (a reason other than normal,
 * shutdown or {shutdown, _}); temporary ones never, and their spec is
 * dropped when they exit or are terminated.  More than max_restarts
 * restarts within max_seconds make the supervisor shut its children down
 * and exit with reason shutdown, so that its own supervisor takes over.
 *
 * Shutting a child down: the supervisor monitors and unlinks it, sends it an
 * exit signal shutdown and waits for its DOWN up to the child's shutdown
 * time, then kills it.  brutal_kill kills at once; infinity waits forever.
 * An exit signal from the supervisor's parent (the process that started it)
 * makes it shut down all its children in reverse order and exit with the
 * same reason.  Stop a supervisor with bl_supervisor_stop.
 *
 * Every call that asks a supervisor something is a gen_server call without
 * timeout, as in Elixir; besides the results listed with each call, they
 * return -ESRCH when the supervisor is not alive (noproc), -ECONNRESET when
 * it exits during the call, -EDEADLK when called from the supervisor itself
 * (a start function that calls its own supervisor), -EPERM outside a
 * process.
 *
 * Differences from Elixir, forced by C or chosen for it:
 *  - Child specs are structs; ids are strings of at most BL_SUP_ID_MAX - 1
 *    bytes.  There is no module-based supervisor (use Supervisor + init/1):
 *    the caller builds the list of specs and passes it to start.  There is
 *    no :modules key and no hot code upgrade.
 *  - Elixir results become return codes: {:error, {:already_started, pid}}
 *    is BL_SUP_ALREADY_STARTED (with the pid), :already_present
 *    BL_SUP_ALREADY_PRESENT, :not_found BL_SUP_NOT_FOUND, :running
 *    BL_SUP_RUNNING, :restarting BL_SUP_RESTARTING, {:ok, :undefined} (the
 *    child ignored) BL_GS_IGNORED.  A child's own start error is returned as
 *    it is (a negative errno), so a child that returns -EEXIST itself looks
 *    like already_started.
 *  - Invalid specs or options are rejected before any process starts:
 *    start returns -EINVAL and, if opts.error is set, says which spec and
 *    what is wrong with it (bl_sup_error).  Elixir raises instead.
 *  - When a child fails to start, the supervisor stops the children already
 *    started (in reverse order) and start returns BL_SUP_CHILD_FAILED with
 *    the child's id and error in opts.error.  The supervisor process then
 *    exits with reason normal, not {shutdown, {failed_to_start_child, id,
 *    reason}}: the error comes back as a value and a caller that does not
 *    trap exits is not taken down by its link.
 *  - shutdown: 0 in a spec means the default (5000 ms for a worker,
 *    infinity for a supervisor), so Elixir's shutdown: 0 (send shutdown,
 *    kill at once) is written 1.  max_restarts: 0 means the default (3);
 *    Elixir's max_restarts: 0 is BL_SUP_NO_RESTARTS.
 *  - Restart times are measured in milliseconds (a restart counts while it
 *    is at most max_seconds * 1000 ms old); Erlang counts whole seconds.
 *  - Unexpected messages sent to a supervisor are dropped without a log,
 *    and errors are not logged (no supervisor reports).
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_SUPERVISOR_H
#define BEAMLINE_SUPERVISOR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Child specifications                                                     */
/* ------------------------------------------------------------------------ */

/* When a child that exited is restarted. */
typedef enum bl_restart {
    BL_RESTART_PERMANENT = 0, /* always (the default) */
    BL_RESTART_TRANSIENT = 1, /* only after an abnormal exit */
    BL_RESTART_TEMPORARY = 2, /* never; the spec is dropped when it exits */
} bl_restart;

/* What a child is.  Only the default shutdown and the counts depend on it. */
typedef enum bl_child_type {
    BL_CHILD_WORKER = 0,     /* the default */
    BL_CHILD_SUPERVISOR = 1, /* a supervisor (any of the three kinds) */
} bl_child_type;

/* bl_child_spec.shutdown, besides a positive number of milliseconds. */
#define BL_SHUTDOWN_DEFAULT     0    /* 5000 ms for a worker, infinity for a supervisor */
#define BL_SHUTDOWN_INFINITY    (-1) /* wait for the child however long it takes */
#define BL_SHUTDOWN_BRUTAL_KILL (-2) /* kill it at once */

/* Ids are strings of 1 to BL_SUP_ID_MAX - 1 bytes. */
#define BL_SUP_ID_MAX 64

/*
 * A child specification (Elixir's child spec map).  The supervisor copies
 * it; the id is copied too.
 *
 * start(arg, &pid) starts the child linked to the caller (the supervisor)
 * and returns 0, BL_GS_IGNORED, or a negative errno: bl_start_fn in
 * beamline/gen_server.h.  It runs in the supervisor process, on every
 * start and restart, with the same arg.  The supervisor waits for it, so it
 * should return once the child is initialised (as gen_server start does).
 *
 * arg: with arg_len 0 the pointer is passed as it is, and the caller keeps
 * what it points at valid as long as the spec is in the supervisor (a
 * static object, or a small integer cast to a pointer).  With arg_len > 0
 * the supervisor copies arg[0..arg_len) and passes (and later frees) its
 * copy: a struct on the caller's stack is then fine.  The copy is shallow.
 */
typedef struct bl_child_spec {
    const char *id;     /* required, unique within a supervisor (ignored by the others) */
    bl_start_fn start;  /* required */
    void *arg;          /* given to start */
    size_t arg_len;     /* 0: arg is passed as is; > 0: a copy of arg[0..arg_len) is */
    bl_restart restart; /* permanent by default */
    int64_t shutdown;   /* ms > 0, BL_SHUTDOWN_INFINITY, _BRUTAL_KILL, or 0 = default */
    bl_child_type type; /* worker by default */
} bl_child_spec;

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Results shared by the three supervisors (negative errnos, as everywhere). */
#define BL_SUP_ALREADY_STARTED (-EEXIST)   /* a child with this id runs: *pid is it */
#define BL_SUP_ALREADY_PRESENT (-EALREADY) /* a child with this id exists, not running */
#define BL_SUP_NOT_FOUND       (-ENOENT)   /* no such child */
#define BL_SUP_RUNNING         (-EBUSY)    /* the child runs (restart_child, delete_child) */
#define BL_SUP_RESTARTING      (-EAGAIN)   /* the child is being restarted after a failed start */
#define BL_SUP_MAX_CHILDREN    (-ENOSPC)   /* a dynamic supervisor has max_children children */
#define BL_SUP_CHILD_FAILED    (-ECHILD)   /* start: a child failed to start (see bl_sup_error) */

/* What bl_sup_error describes. */
typedef enum bl_sup_error_kind {
    BL_SUP_ERR_NONE = 0,
    BL_SUP_ERR_MISSING_ID,    /* id NULL or "" */
    BL_SUP_ERR_ID_TOO_LONG,   /* id of BL_SUP_ID_MAX bytes or more */
    BL_SUP_ERR_DUPLICATE_ID,  /* two specs share this id */
    BL_SUP_ERR_MISSING_START, /* start is NULL */
    BL_SUP_ERR_BAD_RESTART,   /* restart is not a bl_restart */
    BL_SUP_ERR_BAD_SHUTDOWN,  /* shutdown is negative and not one of the BL_SHUTDOWN_* */
    BL_SUP_ERR_BAD_TYPE,      /* type is not a bl_child_type */
    BL_SUP_ERR_BAD_ARG,       /* arg NULL with arg_len > 0 */
    BL_SUP_ERR_BAD_OPTION,    /* an option: strategy, max_restarts, max_seconds, the list */
    BL_SUP_ERR_START_FAILED,  /* the child's start returned error (a negative errno) */
} bl_sup_error_kind;

/* Why a start failed, when bl_sup_opts.error (or the others' error) points here. */
typedef struct bl_sup_error {
    bl_sup_error_kind kind; /* BL_SUP_ERR_NONE after a successful start */
    int index;              /* the spec at fault (its position in the list), -1 for an option */
    int error;              /* START_FAILED: the child's start result; else -EINVAL */
    char id[BL_SUP_ID_MAX]; /* the child's id when it has one, else "" */
} bl_sup_error;

/* A static English description of an error kind ("duplicate child id", ...). */
const char *bl_sup_error_str(bl_sup_error_kind kind);

/*
 * Checks one spec as start and start_child do.  need_id: false for a
 * dynamic or partition supervisor, which ignore ids.  Returns 0 or -EINVAL
 * (err, if not NULL, says why; err->index is 0).
 */
int bl_child_spec_check(const bl_child_spec *spec, bool need_id, bl_sup_error *err);

/* ------------------------------------------------------------------------ */
/* Introspection                                                            */
/* ------------------------------------------------------------------------ */

/* A child's state in which_children: Elixir's pid | :restarting | :undefined. */
typedef enum bl_child_status {
    BL_CHILD_RUNNING = 0,    /* pid is the child */
    BL_CHILD_UNDEFINED = 1,  /* not running (ignored, stopped transient, terminated) */
    BL_CHILD_RESTARTING = 2, /* its restart failed; the supervisor tries again */
} bl_child_status;

/* One entry of which_children. */
typedef struct bl_sup_child {
    char id[BL_SUP_ID_MAX]; /* "" in a dynamic supervisor (Elixir's :undefined) */
    bl_pid pid;             /* BL_PID_NONE unless status is BL_CHILD_RUNNING */
    bl_child_status status; /* running, undefined or restarting */
    bl_child_type type;     /* worker or supervisor */
    bl_restart restart;     /* its restart rule */
} bl_sup_child;

/* count_children (Elixir's %{specs:, active:, supervisors:, workers:}). */
typedef struct bl_sup_counts {
    size_t specs;       /* child specs, running or not */
    size_t active;      /* children running */
    size_t supervisors; /* specs of type supervisor, running or not */
    size_t workers;     /* specs of type worker, running or not */
} bl_sup_counts;

/* ------------------------------------------------------------------------ */
/* Supervisor                                                               */
/* ------------------------------------------------------------------------ */

typedef enum bl_sup_strategy {
    BL_ONE_FOR_ONE = 0, /* the default */
    BL_ONE_FOR_ALL = 1,
    BL_REST_FOR_ONE = 2,
} bl_sup_strategy;

/* bl_sup_opts.max_restarts for Elixir's max_restarts: 0 (any restart is one too many). */
#define BL_SUP_NO_RESTARTS (-1)

/* Supervisor options; a zeroed struct (or NULL) means Elixir's defaults. */
typedef struct bl_sup_opts {
    bl_sup_strategy strategy; /* one_for_one by default */
    int max_restarts;         /* 0 = 3; BL_SUP_NO_RESTARTS = none allowed */
    int max_seconds;          /* 0 = 5 */
    const bl_name *name;      /* register the supervisor under this name; NULL = none */
    bl_sup_error *error;      /* if not NULL: why start failed */
} bl_sup_opts;

/*
 * Starts a supervisor linked to the caller (process only) and its children,
 * in order, each one initialised before the next starts.  children[0..n)
 * is copied (n may be 0).  Returns
 *   0                       *pid is the supervisor;
 *   -EINVAL                 a spec or an option is invalid (opts->error says
 *                           which); no process was started;
 *   BL_SUP_CHILD_FAILED     a child's start returned an error: the children
 *                           started before it were shut down (opts->error
 *                           holds its index, id and error);
 *   -EEXIST                 opts->name is taken: *pid is its holder;
 *   -ENOMEM, -EPERM (not a process), -ESRCH (runtime not running).
 * A child whose start returns BL_GS_IGNORED stays in the list without a pid
 * (a temporary one is dropped).
 */
int bl_supervisor_start_link(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts);

/*
 * What bl_supervisor_start_fn starts: a supervisor as a child of another
 * (type BL_CHILD_SUPERVISOR).  children must stay valid as long as the spec
 * is in the parent (restarts read it again); opts.error is ignored.
 */
typedef struct bl_sup_init {
    const bl_child_spec *children; /* the child specs */
    size_t nchildren;              /* how many */
    bl_sup_opts opts;              /* strategy, intensity, name */
} bl_sup_init;

/* A bl_start_fn: arg is a bl_sup_init.  Results as bl_supervisor_start_link. */
int bl_supervisor_start_fn(void *arg, bl_pid *pid);

/*
 * Adds spec to the supervisor and starts it (Supervisor.start_child).  Returns
 *   0                        *pid is the child;
 *   BL_GS_IGNORED            it ignored: kept without a pid (a temporary
 *                            child is not kept), *pid is BL_PID_NONE;
 *   BL_SUP_ALREADY_STARTED   the id is taken by a running child: *pid is it;
 *   BL_SUP_ALREADY_PRESENT   the id is taken by a child that does not run;
 *   -EINVAL                  the spec is invalid (bl_child_spec_check says why);
 *   the child's own error (a negative errno): the spec is not kept;
 *   and the call errors in the header comment.
 * pid may be NULL.
 */
int bl_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid);

/*
 * Shuts the child down (its spec stays, without a pid, unless it is
 * temporary).  0, BL_SUP_NOT_FOUND, -EINVAL (id NULL), or a call error.
 */
int bl_supervisor_terminate_child(bl_pid sup, const char *id);

/*
 * Starts again a child that is not running.  0 (*pid is it), BL_GS_IGNORED,
 * BL_SUP_RUNNING, BL_SUP_RESTARTING, BL_SUP_NOT_FOUND, the child's own
 * error, -EINVAL (id NULL), or a call error.  pid may be NULL.
 */
int bl_supervisor_restart_child(bl_pid sup, const char *id, bl_pid *pid);

/*
 * Removes the spec of a child that is not running.  0, BL_SUP_RUNNING,
 * BL_SUP_RESTARTING, BL_SUP_NOT_FOUND, -EINVAL (id NULL), or a call error.
 */
int bl_supervisor_delete_child(bl_pid sup, const char *id);

/*
 * Copies the first max children (in start order) into out (may be NULL when
 * max is 0).  Returns how many children there are in all (>= 0; more than
 * max means out was too small), or a call error.
 */
int bl_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max);

/* Fills *out.  0, -EINVAL (out NULL), or a call error. */
int bl_supervisor_count_children(bl_pid sup, bl_sup_counts *out);

/*
 * Stops any of the three supervisors with reason (NULL = normal): its
 * children are shut down (in reverse order; a dynamic supervisor's all at
 * once) and it exits.  Waits up to timeout_ms (BL_INFINITY: Elixir's
 * default).  Results of bl_gen_server_stop: 0, -ESRCH, -ETIMEDOUT, -EDEADLK.
 */
int bl_supervisor_stop(bl_pid sup, const bl_reason *reason, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_SUPERVISOR_H */
