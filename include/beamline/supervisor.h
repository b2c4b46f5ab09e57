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
 * With auto_shutdown set, the exits of significant children may stop it the
 * same way (bl_auto_shutdown).
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
 *    bytes.  A module-based supervisor is an init function
 *    (bl_supervisor_start_link_init) that fills flags and adds specs; or
 *    the caller builds the list of specs and passes it to start.  There is
 *    no :modules key and no hot code upgrade.
 *  - Elixir results become return codes: {:error, {:already_started, pid}}
 *    is BL_SUP_ALREADY_STARTED (-EEXIST) with the pid in *pid, whether the
 *    id is taken in the supervisor or the child's start found its name
 *    taken elsewhere; :already_present BL_SUP_ALREADY_PRESENT, :not_found
 *    BL_SUP_NOT_FOUND, :running BL_SUP_RUNNING, :restarting
 *    BL_SUP_RESTARTING, {:ok, :undefined} (the child ignored) BL_GS_IGNORED.
 *    A child's own start error is returned as it is (a negative errno).
 *  - {:ok, pid, info}: a spec's start_info function returns the info as up
 *    to BL_CHILD_INFO_MAX bytes (bl_child_info), and the _info variants of
 *    start_child and restart_child hand it back.
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

/* Extra info a start function may return: Erlang's {ok, Pid, Info}, as bytes. */
#define BL_CHILD_INFO_MAX 64
typedef struct bl_child_info {
    size_t len;                            /* bytes used in data; 0: none ({ok, Pid}) */
    unsigned char data[BL_CHILD_INFO_MAX]; /* the info, copied back to the caller */
} bl_child_info;

/*
 * Copies data[0..len) into info.  Returns 0, -EINVAL (info NULL, or data
 * NULL with len > 0) or -EMSGSIZE (len > BL_CHILD_INFO_MAX; info untouched).
 */
int bl_child_info_set(bl_child_info *info, const void *data, size_t len);

/*
 * A start function that also returns extra info (Erlang's {ok, Pid, Info}):
 * as bl_start_fn, and on success it may fill *info (len is 0 on entry; a
 * len above BL_CHILD_INFO_MAX is taken as BL_CHILD_INFO_MAX).  The info of a
 * start made by start_child or restart_child goes back to their caller
 * (bl_supervisor_start_child_info & co.); the supervisor does not keep it,
 * as OTP does not.
 */
typedef int (*bl_start_info_fn)(void *arg, bl_pid *pid, bl_child_info *info);

/*
 * A child specification (Elixir's child spec map).  The supervisor copies
 * it; the id is copied too.
 *
 * start(arg, &pid) starts the child linked to the caller (the supervisor)
 * and returns 0, BL_GS_IGNORED, or a negative errno: bl_start_fn in
 * beamline/gen_server.h.  It runs in the supervisor process, on every
 * start and restart, with the same arg.  The supervisor waits for it, so it
 * should return once the child is initialised (as gen_server start does).
 * A start that fails with -EEXIST (a name already taken, Erlang's
 * {error, {already_started, Pid}}) should leave the name's holder in *pid,
 * as bl_gen_server_start does: start_child, restart_child and start pass it
 * on to their caller.  start_info replaces start for a child whose start
 * returns extra info; set one of the two.
 *
 * arg: with arg_len 0 the pointer is passed as it is, and the caller keeps
 * what it points at valid as long as the spec is in the supervisor (a
 * static object, or a small integer cast to a pointer).  With arg_len > 0
 * the supervisor copies arg[0..arg_len) and passes (and later frees) its
 * copy: a struct on the caller's stack is then fine.  The copy is shallow.
 *
 * significant (OTP 24's significant children): the child's own exit may
 * shut the supervisor down, as its auto_shutdown says (bl_sup_opts).  Only
 * transient and temporary children may be significant, and only under a
 * Supervisor whose auto_shutdown is not never; dynamic and partition
 * supervisors refuse them (-EINVAL), as Elixir's do.
 */
typedef struct bl_child_spec {
    const char *id;              /* required, unique within a supervisor (ignored by the others) */
    bl_start_fn start;           /* required, unless start_info is set */
    void *arg;                   /* given to start */
    size_t arg_len;              /* 0: arg is passed as is; > 0: a copy of arg[0..arg_len) is */
    bl_restart restart;          /* permanent by default */
    int64_t shutdown;            /* ms > 0, BL_SHUTDOWN_INFINITY, _BRUTAL_KILL, or 0 = default */
    bl_child_type type;          /* worker by default */
    bool significant;            /* its own exit counts for auto_shutdown; false by default */
    bl_start_info_fn start_info; /* instead of start: a start that also returns info */
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
    BL_SUP_ERR_MISSING_ID,      /* id NULL or "" */
    BL_SUP_ERR_ID_TOO_LONG,     /* id of BL_SUP_ID_MAX bytes or more */
    BL_SUP_ERR_DUPLICATE_ID,    /* two specs share this id */
    BL_SUP_ERR_MISSING_START,   /* start and start_info are NULL */
    BL_SUP_ERR_BAD_RESTART,     /* restart is not a bl_restart */
    BL_SUP_ERR_BAD_SHUTDOWN,    /* shutdown is negative and not one of the BL_SHUTDOWN_* */
    BL_SUP_ERR_BAD_TYPE,        /* type is not a bl_child_type */
    BL_SUP_ERR_BAD_ARG,         /* arg NULL with arg_len > 0 */
    BL_SUP_ERR_BAD_OPTION,      /* an option: strategy, max_restarts, max_seconds, the list */
    BL_SUP_ERR_START_FAILED,    /* the child's start returned error (a negative errno) */
    BL_SUP_ERR_BAD_SIGNIFICANT, /* significant with restart permanent, or auto_shutdown never */
    BL_SUP_ERR_BAD_START,       /* both start and start_info are set */
    BL_SUP_ERR_INIT_FAILED,     /* the init function returned error (a negative errno) */
} bl_sup_error_kind;

/* Why a start failed, when bl_sup_opts.error (or the others' error) points here. */
typedef struct bl_sup_error {
    bl_sup_error_kind kind; /* BL_SUP_ERR_NONE after a successful start */
    int index;              /* the spec at fault (its position in the list), -1 for an option */
    int error;              /* START_FAILED: the child's start result; INIT_FAILED: init's;
                               else -EINVAL */
    char id[BL_SUP_ID_MAX]; /* the child's id when it has one, else "" */
    bl_pid pid;             /* START_FAILED with -EEXIST: the holder of the child's name
                               ({already_started, Pid}); else BL_PID_NONE */
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

/*
 * Automatic shutdown (OTP 24's auto_shutdown, Elixir's :auto_shutdown): the
 * supervisor shuts its other children down and exits with reason shutdown
 * when significant children exit by themselves, that is a significant
 * transient child with a clean reason (normal, shutdown, {shutdown, _}) or a
 * significant temporary child with any reason.  Exits the supervisor causes
 * (terminate_child, a restart strategy's shutdowns, its own stop) never
 * count, nor does a transient child's abnormal exit (it is restarted).
 */
typedef enum bl_auto_shutdown {
    BL_AUTO_SHUTDOWN_NEVER = 0,           /* the default; significant children are refused */
    BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT = 1, /* when any significant child exits so */
    BL_AUTO_SHUTDOWN_ALL_SIGNIFICANT = 2, /* when the last running significant child does */
} bl_auto_shutdown;

/* Supervisor options; a zeroed struct (or NULL) means Elixir's defaults. */
typedef struct bl_sup_opts {
    bl_sup_strategy strategy;       /* one_for_one by default */
    int max_restarts;               /* 0 = 3; BL_SUP_NO_RESTARTS = none allowed */
    int max_seconds;                /* 0 = 5 */
    const bl_name *name;            /* register the supervisor under this name; NULL = none */
    bl_sup_error *error;            /* if not NULL: why start failed */
    bl_auto_shutdown auto_shutdown; /* never by default */
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
 *                           holds its index, id and error, and for -EEXIST
 *                           the name's holder in error->pid);
 *   -EEXIST                 opts->name is taken: *pid is its holder;
 *   -ENOMEM, -EPERM (not a process), -ESRCH (runtime not running).
 * A child whose start returns BL_GS_IGNORED stays in the list without a pid
 * (a temporary one is dropped).
 */
int bl_supervisor_start_link(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts);

/* ---- a supervisor with an init function (Elixir's module-based Supervisor) ---- */

/* The flags an init function returns (Erlang's sup_flags); zeroed: the defaults. */
typedef struct bl_sup_flags {
    bl_sup_strategy strategy;       /* one_for_one by default */
    int max_restarts;               /* 0 = 3; BL_SUP_NO_RESTARTS = none allowed */
    int max_seconds;                /* 0 = 5 */
    bl_auto_shutdown auto_shutdown; /* never by default */
} bl_sup_flags;

/* The child list an init function builds (owned by the supervisor). */
typedef struct bl_sup_children bl_sup_children;

/*
 * Appends a copy of spec (its id, and its arg when arg_len > 0) to the
 * children being built; they start in the order added, once init returns.
 * Only for the init function that got children, while it runs.
 * Returns 0, -EINVAL (children or spec NULL, an invalid spec, a duplicate
 * id), -ENOMEM.  The first failure also fails the start (-EINVAL or
 * -ENOMEM, error->index the number of the failed add), even if init
 * ignores it: Erlang refuses the whole start spec.
 */
int bl_sup_children_add(bl_sup_children *children, const bl_child_spec *spec);

/*
 * Supervisor's init/1: runs in the new supervisor process, before any child
 * starts, with start's arg.  *flags starts as the options' flags (strategy,
 * max_restarts, max_seconds, auto_shutdown of opts).  It adds children with
 * bl_sup_children_add and returns
 *   0               {ok, {flags, children}}: the supervisor starts them;
 *   BL_GS_IGNORED   ignore: start returns BL_GS_IGNORED (the process exits
 *                   normally, nothing is started);
 *   a negative errno  an error: start returns it (opts->error says
 *                   BL_SUP_ERR_INIT_FAILED); any other value is -EPROTO.
 * It runs again, with the same arg, each time the supervisor is restarted
 * under bl_supervisor_start_fn.
 */
typedef int (*bl_sup_init_fn)(void *arg, bl_sup_flags *flags, bl_sup_children *children);

/*
 * Starts a supervisor whose flags and children init builds at run time, in
 * the supervisor process (Supervisor.start_link(module, arg, opts)).  Of
 * opts, name and error are used and the flags seed init's.  Returns the
 * results of bl_supervisor_start_link, plus BL_GS_IGNORED (init ignored:
 * *pid is BL_PID_NONE) and init's own error; -EINVAL also for init NULL and
 * for invalid flags or specs init returned (opts->error says which).  The
 * checks of init's result run in the supervisor process, which then exits
 * normally, so an invalid result never takes the caller down through the
 * link.
 */
int bl_supervisor_start_link_init(bl_pid *pid, bl_sup_init_fn init, void *arg,
                                  const bl_sup_opts *opts);

/*
 * What bl_supervisor_start_fn starts: a supervisor as a child of another
 * (type BL_CHILD_SUPERVISOR), from a list of specs or, when init is set,
 * from an init function (children must then be NULL and nchildren 0).
 * children (or init_arg) must stay valid as long as the spec is in the
 * parent (restarts read it again); opts.error is ignored.
 */
typedef struct bl_sup_init {
    const bl_child_spec *children; /* the child specs */
    size_t nchildren;              /* how many */
    bl_sup_opts opts;              /* strategy, intensity, name */
    bl_sup_init_fn init;           /* NULL, or builds flags and children at each start */
    void *init_arg;                /* init's argument */
} bl_sup_init;

/* A bl_start_fn: arg is a bl_sup_init.  Results as bl_supervisor_start_link(_init). */
int bl_supervisor_start_fn(void *arg, bl_pid *pid);

/* ---- the children of a running supervisor ---- */

/*
 * Adds spec to the supervisor and starts it (Supervisor.start_child).  Returns
 *   0                        *pid is the child;
 *   BL_GS_IGNORED            it ignored: kept without a pid (a temporary
 *                            child is not kept), *pid is BL_PID_NONE;
 *   BL_SUP_ALREADY_STARTED   the id is taken by a running child: *pid is it;
 *                            or the child's start found its name taken:
 *                            *pid is the name's holder, the spec is not kept;
 *   BL_SUP_ALREADY_PRESENT   the id is taken by a child that does not run;
 *   -EINVAL                  the spec is invalid (bl_child_spec_check says
 *                            why), or significant under auto_shutdown never;
 *   the child's own error (a negative errno): the spec is not kept;
 *   and the call errors in the header comment.
 * pid may be NULL.
 */
int bl_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid);

/*
 * As bl_supervisor_start_child, and *info gets what a start_info function
 * returned with a successful start (Erlang's {ok, Pid, Info}); info->len is
 * 0 otherwise (no info, or any other result).  info may be NULL.
 */
int bl_supervisor_start_child_info(bl_pid sup, const bl_child_spec *spec, bl_pid *pid,
                                   bl_child_info *info);

/*
 * Shuts the child down (its spec stays, without a pid, unless it is
 * temporary).  0, BL_SUP_NOT_FOUND, -EINVAL (id NULL), or a call error.
 */
int bl_supervisor_terminate_child(bl_pid sup, const char *id);

/*
 * Starts again a child that is not running.  0 (*pid is it), BL_GS_IGNORED,
 * BL_SUP_RUNNING, BL_SUP_RESTARTING, BL_SUP_NOT_FOUND, the child's own
 * error (-EEXIST: *pid is the holder of its name), -EINVAL (id NULL), or a
 * call error.  pid may be NULL.
 */
int bl_supervisor_restart_child(bl_pid sup, const char *id, bl_pid *pid);

/* As bl_supervisor_restart_child, with the start's info as in _start_child_info. */
int bl_supervisor_restart_child_info(bl_pid sup, const char *id, bl_pid *pid, bl_child_info *info);

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
