/*
 * otp/task_supervisor.c - Task.Supervisor on a dynamic supervisor and the
 * task module's spawner hook.
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

/* The spawner: the task process starts as a temporary child of the supervisor. */
static int spawn_under(void *ctx, int (*start)(void *start_arg, bl_pid *pid), void *start_arg,
                       bl_pid *pid)
{
    bl_pid sup = *(const bl_pid *)ctx;
    bl_child_spec spec = {
        .id = "task",
        .start = start,
        .arg = start_arg,
        .restart = BL_RESTART_TEMPORARY,
    };
    int rc = bl_dynamic_supervisor_start_child(sup, &spec, pid);
    /* A dead supervisor is noproc, as Elixir's exit. */
    return rc == -ECONNRESET ? -ESRCH : rc;
}

static int async(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg, bool link)
{
    if (!t || !fn || !sup) return -EINVAL;
    return bl_task_async_via(t, spawn_under, &sup, fn, arg, link);
}

int bl_task_supervisor_async(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg)
{
    return async(sup, t, fn, arg, true);
}

int bl_task_supervisor_async_nolink(bl_pid sup, bl_task *t, bl_task_fn fn, void *arg)
{
    return async(sup, t, fn, arg, false);
}

/* A start_child task: the spec's copy of {fn, arg}, kept for restarts. */
typedef struct child_fn {
    bl_task_fn fn;
    void *arg;
} child_fn;

static int child_start(void *a, bl_pid *pid)
{
    const child_fn *c = a;
    return bl_task_start_link(pid, c->fn, c->arg, NULL);
}

int bl_task_supervisor_start_child(bl_pid sup, bl_task_fn fn, void *arg, bl_restart restart,
                                   bl_pid *pid)
{
    if (pid) *pid = BL_PID_NONE;
    if (!fn || !sup || (restart != BL_RESTART_TEMPORARY && restart != BL_RESTART_TRANSIENT))
        return -EINVAL;
    child_fn c = {fn, arg};
    bl_child_spec spec = {
        .id = "task",
        .start = child_start,
        .arg = &c,
        .arg_len = sizeof c,
        .restart = restart,
    };
    return bl_dynamic_supervisor_start_child(sup, &spec, pid);
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
    o.spawner = spawn_under;
    o.spawner_ctx = (void *)sup;
    o.nolink = true;
    return bl_task_stream_open(s, items, n, item_size, fn, ctx, &o);
}
