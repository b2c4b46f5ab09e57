/*
 * otp/supervisor/dynamic_supervisor.c - Elixir's DynamicSupervisor as a
 * gen_server.
 *
 * The children live in an array (no order) indexed by pid through an
 * open-addressing hash table, so that an exit, a terminate_child and a
 * start are O(1) however many children there are.  A child whose restart
 * failed stays in the table under the pid it had, marked restarting, and
 * the supervisor casts itself a message to try again (Elixir's
 * {:"$gen_restart", pid}).
 *
 * Ownership: each child keeps its start function and arg (a copy when the
 * spec had arg_len > 0, freed with the child); the whole state is freed by
 * the gen_server's release once the process is gone.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "beamline.h"
#include "beamline/dynamic_supervisor.h"
#include "beamline/gen_server.h"

#include "otp/supervisor/supervisor_int.h"
#include "proc/otp.h"

/* One child. */
typedef struct dchild {
    bl_pid pid;                  /* the child; while restarting, the pid it had (its key) */
    bl_start_fn start;           /* starts it linked to the supervisor, or ... */
    bl_start_info_fn start_info; /* ... this one, which also returns info */
    void *arg;                   /* the spec's arg */
    bool owns_arg;               /* arg is the supervisor's copy */
    bool restarting;             /* its restart failed; a try-again cast is queued */
    bl_restart restart;          /* permanent, transient, temporary */
    bl_child_type type;          /* worker or supervisor */
    int64_t shutdown;            /* resolved: ms > 0, infinity or brutal_kill */
} dchild;

typedef struct dynsup {
    bl__sup_intensity *intensity; /* recent restarts */
    size_t max_children;          /* 0 = no limit */
    void *extra;                  /* extra_arguments, or NULL */
    dchild *v;                    /* the children, in no order */
    size_t n, cap;                /* used, allocated */
    uint32_t *slot;               /* pid -> index + 1 (0: empty); nslot is a power of 2 */
    size_t nslot;                 /* at least twice n, or 0 */
} dynsup;

/* What start hands to init (on the starting process's stack). */
typedef struct dyn_start {
    int max_restarts;
    int64_t period_ms;
    size_t max_children;
    void *extra;
    int result; /* -ENOMEM when init failed */
} dyn_start;

/* Calls and casts. */
enum {
    DYN_START_CHILD = 0x44594e01u,
    DYN_TERMINATE_CHILD,
    DYN_WHICH_CHILDREN,
    DYN_COUNT_CHILDREN,
    DYN_TRY_AGAIN, /* cast to itself: the pid (key) of a child to restart */
};

/* ---- the pid table ---- */

static size_t pid_hash(bl_pid pid)
{
    uint64_t x = pid * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: spreads index and generation */
    return (size_t)(x ^ (x >> 29));
}

/* The slot holding pid, or the empty slot where it would go.  nslot > 0. */
static size_t slot_of(const dynsup *d, bl_pid pid)
{
    size_t mask = d->nslot - 1, i = pid_hash(pid) & mask;
    while (d->slot[i] && d->v[d->slot[i] - 1].pid != pid) i = (i + 1) & mask;
    return i;
}

static long lookup(const dynsup *d, bl_pid pid)
{
    if (!d->nslot) return -1;
    size_t i = slot_of(d, pid);
    return d->slot[i] ? (long)d->slot[i] - 1 : -1;
}

/* Makes room for one more child (array and table).  0 or -ENOMEM. */
static int reserve(dynsup *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        if (cap > UINT32_MAX - 1) return -ENOMEM;
        dchild *v = realloc(d->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    if ((d->n + 1) * 2 <= d->nslot) return 0;
    size_t nslot = d->nslot ? d->nslot * 2 : 16;
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot) return -ENOMEM;
    free(d->slot);
    d->slot = slot;
    d->nslot = nslot;
    for (size_t i = 0; i < d->n; i++) d->slot[slot_of(d, d->v[i].pid)] = (uint32_t)i + 1;
    return 0;
}

/* Takes pid's entry out of the table (backward-shift deletion keeps probes intact). */
static void slot_del(dynsup *d, bl_pid pid)
{
    size_t mask = d->nslot - 1, i = slot_of(d, pid);
    if (!d->slot[i]) return;
    d->slot[i] = 0;
    for (size_t j = (i + 1) & mask; d->slot[j]; j = (j + 1) & mask) {
        size_t home = pid_hash(d->v[d->slot[j] - 1].pid) & mask;
        /* The entry at j may move to the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        d->slot[i] = d->slot[j];
        d->slot[j] = 0;
        i = j;
    }
}

/* Adds c (room reserved) keyed by c->pid. */
static void add(dynsup *d, const dchild *c)
{
    d->v[d->n] = *c;
    d->slot[slot_of(d, c->pid)] = (uint32_t)++d->n;
}

/* Drops child i: its arg copy, its table entry; the last child moves into its place. */
static void drop(dynsup *d, size_t i)
{
    dchild *c = &d->v[i];
    if (c->owns_arg) free(c->arg);
    slot_del(d, c->pid);
    size_t last = d->n - 1;
    if (i != last) {
        d->slot[slot_of(d, d->v[last].pid)] = (uint32_t)i + 1;
        d->v[i] = d->v[last];
    }
    d->n--;
}

/* Gives child i the key pid. */
static void rekey(dynsup *d, size_t i, bl_pid pid)
{
    slot_del(d, d->v[i].pid);
    d->v[i].pid = pid;
    d->slot[slot_of(d, pid)] = (uint32_t)i + 1;
}

/* ---- starting and restarting ---- */

/*
 * Runs c's start function (with the extra arguments if any).  0,
 * BL_GS_IGNORED or an error; *pid as bl__sup_start leaves it (the holder of
 * a taken name after -EEXIST), info (may be NULL) a successful start's info.
 */
static int start_child(const dynsup *d, const dchild *c, bl_pid *pid, bl_child_info *info)
{
    bl_dynsup_args a = {d->extra, c->arg};
    return bl__sup_start(c->start, c->start_info, d->extra ? (void *)&a : c->arg, pid, info);
}

/*
 * Restarts child i (not running), after counting the restart: one too many
 * stops the supervisor with reason shutdown.
 */
static bl__sup_offender offender(const dchild *c)
{
    return (bl__sup_offender){NULL, c->pid, c->restart, c->type};
}

static void restart(dynsup *d, size_t i, bl_gs_result *r)
{
    dchild *c = &d->v[i];
    if (!bl__sup_intensity_add(d->intensity)) {
        bl__sup_offender o = offender(c);
        bl__sup_report("shutdown", &o, NULL, "reached_max_restart_intensity", 0);
        c->restarting = true; /* dead: terminate has nothing to stop */
        bl_reason shutdown = BL_REASON(BL_SHUTDOWN);
        bl_gs_stop(r, &shutdown);
        return;
    }
    bl_pid pid;
    int rc = start_child(d, c, &pid, NULL);
    bl__sup_offender o = offender(c);
    o.pid = rc == 0 ? pid : BL_PID_NONE;
    if (rc < 0) bl__sup_report("start_error", &o, NULL, "start failed", rc);
    if (rc == 0) {
        bl__sup_progress(&o);
        c->restarting = false;
        rekey(d, i, pid);
    } else if (rc == BL_GS_IGNORED) {
        drop(d, i);
    } else {
        c->restarting = true;
        bl_gen_server_cast(bl_self(), DYN_TRY_AGAIN, &c->pid, sizeof c->pid);
    }
}

/* ---- gen_server callbacks ---- */

static void dyn_init(void *arg, void **state, bl_gs_result *r)
{
    dyn_start *st = arg;
    bl__proc_kind_set(BL_KIND_SUPERVISOR);
    bl_trap_exit(true);
    dynsup *d = calloc(1, sizeof *d);
    if (d) d->intensity = bl__sup_intensity_new(st->max_restarts, st->period_ms);
    if (!d || !d->intensity) {
        free(d);
        st->result = -ENOMEM;
        bl_gs_stop(r, NULL); /* normal: the error comes back as a value */
        return;
    }
    d->max_children = st->max_children;
    d->extra = st->extra;
    *state = d;
}

static void call_start_child(dynsup *d, const bl_msg *m, bl_gs_result *r)
{
    const bl__sup_wire *w = bl__sup_wire_of(m);
    if (!w) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    if (d->max_children && d->n >= d->max_children) {
        bl__sup_reply_with(r, BL_SUP_MAX_CHILDREN, 0, 0);
        return;
    }
    if (w->significant) { /* Elixir's {:invalid_significant, true} */
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    dchild c = {.start = w->start,
                .start_info = w->start_info,
                .arg = w->arg,
                .restart = w->restart,
                .type = w->type,
                .shutdown = bl__sup_shutdown_of(w->shutdown, w->type)};
    /* Room first: once the child runs, keeping it cannot fail. */
    if (reserve(d) != 0) {
        bl__sup_reply_with(r, -ENOMEM, 0, 0);
        return;
    }
    if (w->arg_len) {
        c.arg = malloc(w->arg_len);
        if (!c.arg) {
            bl__sup_reply_with(r, -ENOMEM, 0, 0);
            return;
        }
        memcpy(c.arg, w + 1, w->arg_len);
        c.owns_arg = true;
    }
    /* The start function may wait (it runs a child's init): if the
     * supervisor is killed meanwhile, its copy of the arg goes with it. */
    bl_cleanup cl;
    if (c.owns_arg) bl_cleanup_push(&cl, free, c.arg);
    bl_child_info info;
    int rc = start_child(d, &c, &c.pid, &info);
    if (c.owns_arg) bl_cleanup_pop(&cl, rc != 0); /* kept with the child, or freed */
    if (rc == 0) {
        bl__sup_offender o = offender(&c);
        bl__sup_progress(&o);
        add(d, &c);
    }
    bl__sup_reply_info(r, rc, c.pid, &info);
}

static void call_terminate_child(dynsup *d, const bl_msg *m, bl_gs_result *r)
{
    bl_pid pid;
    long i = -1;
    if (m->len == sizeof pid) {
        memcpy(&pid, m->data, sizeof pid);
        i = lookup(d, pid);
    }
    if (i < 0) {
        bl__sup_reply_with(r, BL_SUP_NOT_FOUND, 0, 0);
        return;
    }
    if (!d->v[i].restarting) bl__sup_terminate(&pid, &d->v[i].shutdown, 1);
    drop(d, (size_t)i);
    bl__sup_reply_with(r, 0, 0, 0);
}

static void call_which_children(dynsup *d, bl_gs_result *r)
{
    bl_sup_child one = {0}, *v = d->n <= 1 ? &one : malloc(d->n * sizeof *v);
    if (!v) {
        int32_t rc = -ENOMEM;
        bl_gs_reply(r, &rc, sizeof rc);
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        const dchild *c = &d->v[i];
        v[i] = (bl_sup_child){.pid = c->restarting ? BL_PID_NONE : c->pid,
                              .status = c->restarting ? BL_CHILD_RESTARTING : BL_CHILD_RUNNING,
                              .type = c->type,
                              .restart = c->restart};
    }
    bl_gs_reply(r, v, d->n * sizeof *v);
    if (v != &one) free(v);
}

static void call_count_children(dynsup *d, bl_gs_result *r)
{
    bl_sup_counts k = {.specs = d->n};
    for (size_t i = 0; i < d->n; i++) {
        if (!d->v[i].restarting) k.active++;
        if (d->v[i].type == BL_CHILD_SUPERVISOR)
            k.supervisors++;
        else
            k.workers++;
    }
    bl_gs_reply(r, &k, sizeof k);
}

static void dyn_handle_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    dynsup *d = *state;
    switch (m->tag) {
    case DYN_START_CHILD:
        call_start_child(d, m, r);
        break;
    case DYN_TERMINATE_CHILD:
        call_terminate_child(d, m, r);
        break;
    case DYN_WHICH_CHILDREN:
        call_which_children(d, r);
        break;
    case DYN_COUNT_CHILDREN:
        call_count_children(d, r);
        break;
    default:
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        break;
    }
}

static void dyn_handle_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    dynsup *d = *state;
    bl_pid pid;
    if (m->tag != DYN_TRY_AGAIN || m->len != sizeof pid) return;
    memcpy(&pid, m->data, sizeof pid);
    long i = lookup(d, pid);
    if (i >= 0 && d->v[i].restarting) restart(d, (size_t)i, r);
}

/* A linked process exited: if it is a child, apply its restart rule. */
static void dyn_handle_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    dynsup *d = *state;
    bl_reason reason;
    if (m->tag != BL_TAG_EXIT || bl_msg_reason(m, &reason) != 0) return;
    long i = lookup(d, m->from);
    if (i < 0 || d->v[i].restarting) return;
    const dchild *c = &d->v[i];
    if (c->restart == BL_RESTART_PERMANENT || !bl_reason_is_clean(&reason)) {
        bl__sup_offender o = offender(c);
        bl__sup_report("child_terminated", &o, &reason, NULL, 0);
    }
    if (c->restart == BL_RESTART_TEMPORARY ||
        (c->restart == BL_RESTART_TRANSIENT && bl_reason_is_clean(&reason)))
        drop(d, (size_t)i);
    else
        restart(d, (size_t)i, r);
}

/* Stopping: every running child gets shutdown at once (bl__sup_terminate). */
static void dyn_terminate(void **state, const bl_reason *reason)
{
    dynsup *d = *state;
    size_t k = 0;
    bl_pid *pids = malloc(d->n * sizeof *pids + 1);
    int64_t *shut = malloc(d->n * sizeof *shut + 1);
    /* Held while the children stop: freed if the supervisor is killed meanwhile. */
    bl_cleanup c1, c2;
    bl_cleanup_push(&c1, free, pids);
    bl_cleanup_push(&c2, free, shut);
    if (!pids || !shut) {
        /* No memory for the set: one at a time. */
        for (size_t i = 0; i < d->n; i++)
            if (!d->v[i].restarting) bl__sup_terminate(&d->v[i].pid, &d->v[i].shutdown, 1);
    } else {
        for (size_t i = 0; i < d->n; i++) {
            if (d->v[i].restarting) continue;
            pids[k] = d->v[i].pid;
            shut[k++] = d->v[i].shutdown;
        }
        bl__sup_terminate(pids, shut, k);
    }
    bl_cleanup_pop(&c2, true);                                   /* frees shut */
    bl_cleanup_pop(&c1, true);                                   /* frees pids */
    for (size_t i = 0; i < d->n; i++) d->v[i].restarting = true; /* all gone */
}

static void dyn_release(void *state)
{
    dynsup *d = state;
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].owns_arg) free(d->v[i].arg);
    free(d->v);
    free(d->slot);
    bl__sup_intensity_free(d->intensity);
    free(d);
}

static const bl_gen_server dyn_callbacks = {
    .init = dyn_init,
    .handle_call = dyn_handle_call,
    .handle_cast = dyn_handle_cast,
    .handle_info = dyn_handle_info,
    .terminate = dyn_terminate,
    .release = dyn_release,
};

/* ---- API ---- */

int bl_dynamic_supervisor_start_link(bl_pid *pid, const bl_dynsup_opts *opts)
{
    if (pid) *pid = BL_PID_NONE;
    bl_dynsup_opts o = opts ? *opts : (bl_dynsup_opts){0};
    dyn_start st = {.max_children = o.max_children, .extra = o.extra_arguments};
    if (!pid || o.strategy != BL_ONE_FOR_ONE ||
        bl__sup_intensity_opts(o.max_restarts, o.max_seconds, &st.max_restarts, &st.period_ms))
        return -EINVAL;
    bl_gen_server_opts g = {.name = o.name};
    bl_pid p = BL_PID_NONE;
    int rc = bl_gen_server_start_link(&p, &dyn_callbacks, &st, &g);
    if (rc == 0 || rc == -EEXIST) *pid = p;
    if (rc != 0 && st.result != 0) rc = st.result;
    return rc;
}

int bl_dynamic_supervisor_start_fn(void *arg, bl_pid *pid)
{
    return bl_dynamic_supervisor_start_link(pid, arg);
}

int bl_dynamic_supervisor_start_child_info(bl_pid sup, const bl_child_spec *spec, bl_pid *pid,
                                           bl_child_info *info)
{
    if (pid) *pid = BL_PID_NONE;
    if (info) info->len = 0;
    int rc = bl_child_spec_check(spec, false, NULL);
    if (rc) return rc;
    if (spec->significant) return -EINVAL; /* no auto_shutdown here, as in Elixir */
    bl__sup_reply rep;
    rc = bl__sup_call_spec(sup, DYN_START_CHILD, spec, &rep, info);
    if (rc) return rc;
    if (pid) *pid = rep.pid;
    return rep.rc;
}

int bl_dynamic_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid)
{
    return bl_dynamic_supervisor_start_child_info(sup, spec, pid, NULL);
}

int bl_dynamic_supervisor_terminate_child(bl_pid sup, bl_pid child)
{
    bl__sup_reply rep;
    int rc = bl__sup_call_reply(sup, DYN_TERMINATE_CHILD, &child, sizeof child, &rep);
    return rc ? rc : rep.rc;
}

int bl_dynamic_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max)
{
    return bl__sup_which(sup, DYN_WHICH_CHILDREN, out, max);
}

int bl_dynamic_supervisor_count_children(bl_pid sup, bl_sup_counts *out)
{
    return bl__sup_count(sup, DYN_COUNT_CHILDREN, out);
}
