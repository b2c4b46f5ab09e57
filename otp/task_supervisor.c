/*
 * otp/task_supervisor.c - Task.Supervisor on a dynamic supervisor and the
 * task module's spawner hook, and the child spec of a task for any
 * supervisor (bl_task_child_spec).
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/task_supervisor.h"

int bl_task_supervisor_start_link(bl_pid *pid, const bl_task_sup_opts *o)
{
    static const bl_task_sup_opts none;
    if (!o) o = &none;
    bl_dynsup_opts d = {
        .max_restarts = o->max_restarts,
        .max_seconds = o->max_seconds,
        .max_children = o->max_children,
        .name = o->name,
    };
    return bl_dynamic_supervisor_start_link(pid, &d);
}

int bl_task_supervisor_start_fn(void *arg, bl_pid *pid)
{
    return bl_task_supervisor_start_link(pid, arg);
}

/* Where the spawner starts a task: the supervisor and the task's shutdown. */
typedef struct spawn_ctx {
    bl_pid sup;
    int64_t shutdown; /* as in bl_child_spec (0: the default) */
} spawn_ctx;

/* The spawner: the task process starts as a temporary child of the supervisor. */
static int spawn_under(void *ctx, int (*start)(void *start_arg, bl_pid *pid), void *start_arg,
                       bl_pid *pid)
{
    const spawn_ctx *c = ctx;
    bl_child_spec spec = {
        .id = "task",
        .start = start,
        .arg = start_arg,
        .restart = BL_RESTART_TEMPORARY,
        .shutdown = c->shutdown,
    };
    int rc = bl_dynamic_supervisor_start_child(c->sup, &spec, pid);
    /* A dead supervisor is noproc, as Elixir's exit. */
    return rc == -ECONNRESET ? -ESRCH : rc;
}

/* The stream's spawner: ctx is the caller's bl_pid, the shutdown the default. */
static int spawn_under_pid(void *ctx, int (*start)(void *start_arg, bl_pid *pid), void *start_arg,
                           bl_pid *pid)
{
    spawn_ctx c = {.sup = *(const bl_pid *)ctx};
    return spawn_under(&c, start, start_arg, pid);
}

/* restart as a bl_restart, or -1 when it is not a bl_task_restart. */
static int restart_of(bl_task_restart r)
{
    switch (r) {
    case BL_TASK_RESTART_TEMPORARY:
        return BL_RESTART_TEMPORARY;
    case BL_TASK_RESTART_TRANSIENT:
        return BL_RESTART_TRANSIENT;
    case BL_TASK_RESTART_PERMANENT:
        return BL_RESTART_PERMANENT;
    }
    return -1;
}

static int async(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg, bool link,
                 const bl_task_child_opts *opts)
{
    static const bl_task_child_opts none;
    if (!opts) opts = &none;
    if (!t || !fn || !sup || opts->restart != BL_TASK_RESTART_TEMPORARY ||
        opts->shutdown < BL_SHUTDOWN_BRUTAL_KILL)
        return -EINVAL;
    /* Lives on this stack while the spawner runs, which is all it is read for. */
    spawn_ctx c = {.sup = sup, .shutdown = opts->shutdown};
    return bl_task_async_via(t, spawn_under, &c, fn, arg, link);
}

int bl_task_supervisor_async(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg)
{
    return async(sup, t, fn, arg, true, NULL);
}

int bl_task_supervisor_async_nolink(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg)
{
    return async(sup, t, fn, arg, false, NULL);
}

int bl_task_supervisor_async_opts(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg,
                                  const bl_task_child_opts *opts)
{
    return async(sup, t, fn, arg, true, opts);
}

int bl_task_supervisor_async_nolink_opts(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg,
                                         const bl_task_child_opts *opts)
{
    return async(sup, t, fn, arg, false, opts);
}

/* A task child's start: the spec's copy of {fn, arg}, kept for restarts. */
static int child_start(void *a, bl_pid *pid)
{
    const bl_task_child *c = a;
    if (!c->fn) return -EINVAL;
    return bl_task_start_link(pid, c->fn, c->arg, NULL);
}

bl_child_spec bl_task_child_spec(const char *id, const bl_task_child *tc)
{
    bool ok = tc && tc->fn;
    return (bl_child_spec){
        .id = id,
        .start = ok ? child_start : NULL,
        .arg = ok ? (void *)tc : NULL,
        .arg_len = ok ? sizeof *tc : 0,
        .restart = BL_RESTART_TEMPORARY,
    };
}

/* start_child with a resolved restart and shutdown. */
static int start_child(bl_pid sup, bl_task_fn fn, void *arg, int restart, int64_t shutdown,
                       bl_pid *pid)
{
    if (pid) *pid = BL_PID_NONE;
    if (!fn || !sup || restart < 0 || restart > BL_RESTART_TEMPORARY ||
        shutdown < BL_SHUTDOWN_BRUTAL_KILL)
        return -EINVAL;
    bl_task_child c = {fn, arg};
    bl_child_spec spec = bl_task_child_spec("task", &c);
    spec.restart = (bl_restart)restart;
    spec.shutdown = shutdown;
    return bl_dynamic_supervisor_start_child(sup, &spec, pid);
}

int bl_task_supervisor_start_child(bl_pid sup, bl_task_fn fn, void *arg, bl_restart restart,
                                   bl_pid *pid)
{
    return start_child(sup, fn, arg, (int)restart, 0, pid);
}

int bl_task_supervisor_start_child_opts(bl_pid sup, bl_task_fn fn, void *arg,
                                        const bl_task_child_opts *opts, bl_pid *pid)
{
    static const bl_task_child_opts none;
    if (!opts) opts = &none;
    return start_child(sup, fn, arg, restart_of(opts->restart), opts->shutdown, pid);
}

int bl_task_supervisor_children(bl_pid sup, bl_pid *out, size_t max)
{
    if (max && !out) return -EINVAL;
    bl_sup_child *kids = max ? calloc(max, sizeof *kids) : NULL;
    if (max && !kids) return -ENOMEM;
    /* Held across the call's wait: freed with the caller if it is killed. */
    bl_cleanup c;
    bl_cleanup_push(&c, free, kids);
    int n = bl_dynamic_supervisor_which_children(sup, kids, max);
    for (int i = 0; i >= 0 && i < n && (size_t)i < max; i++) out[i] = kids[i].pid;
    bl_cleanup_pop(&c, true); /* frees kids */
    return n;
}

int bl_task_supervisor_terminate_child(bl_pid sup, bl_pid child)
{
    return bl_dynamic_supervisor_terminate_child(sup, child);
}

int bl_task_supervisor_stream(bl_task_stream **s, const bl_pid *sup, const void *items, size_t n,
                              size_t item_size, bl_task_stream_fn fn, void *ctx,
                              const bl_task_stream_opts *opts)
{
    if (!s || !sup || !*sup) return -EINVAL;
    bl_task_stream_opts o = {0};
    if (opts) o = *opts;
    o.spawner = spawn_under_pid;
    o.spawner_ctx = (void *)sup;
    o.nolink = true;
    return bl_task_stream_open(s, items, n, item_size, fn, ctx, &o);
}
