/*
 * otp/supervisor/supervisor.c - the supervisor behaviour (Elixir's
 * Supervisor) as a gen_server: child specs in start order, the restart
 * strategies, and the routing calls of a partition supervisor.  What the
 * dynamic and partition supervisors share with it (intensity, shutdown,
 * spec checks, calls) is in the other files of otp/supervisor/.
 *
 * The supervisor's state is an array of children in start order.  All of
 * its work (starting, restarting, shutting down) runs inside its gen_server
 * callbacks: a callback that waits for a child keeps the stack it borrowed
 * until it returns, and an idle supervisor holds none.
 *
 * Ownership: the supervisor copies every spec (the id always, the arg when
 * arg_len > 0) and frees its copies when a spec is dropped, and all of its
 * state in the gen_server's release, once the process is gone (so a killed
 * supervisor leaks nothing).
 * The init argument (sup_start) is a heap copy the caller of start and the
 * supervisor's init share (start_sup): init writes its result and error
 * report there, and the caller copies them out, so a caller killed while it
 * waits leaves init nothing on its dead stack.  A caller killed before init
 * ran takes the supervisor with it through their link, before init (a
 * signal pending at a process's first run applies first, proc/process.c).
 * The child specs are copied there too, ids and copied args with them.  A user
 * init function (bl_sup_init_fn) runs in that init too, and adds its specs
 * straight into the supervisor's state through a
 * bl_sup_children that lives on the supervisor's stack.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otp/supervisor/supervisor_int.h"
#include "beamline.h"
#include "beamline/gen_server.h"
#include "beamline/supervisor.h"
#include "proc/otp.h"

/* ------------------------------------------------------------------------ */
/* The supervisor's state                                                   */
/* ------------------------------------------------------------------------ */

/* One child spec and the child running it. */
typedef struct child {
    char id[BL_SUP_ID_MAX];      /* unique in the supervisor */
    bl_start_fn start;           /* starts it linked to the supervisor */
    void *arg;                   /* start's argument */
    bool owns_arg;               /* arg is the supervisor's copy (freed with the spec) */
    bl_restart restart;          /* permanent, transient, temporary */
    bl_child_type type;          /* worker or supervisor */
    bl_child_status status;      /* running, undefined, restarting */
    int64_t shutdown;            /* resolved: ms > 0, infinity or brutal_kill */
    bl_pid pid;                  /* the child while running, else BL_PID_NONE */
    bl_start_info_fn start_info; /* instead of start: also returns info */
    bool significant;            /* its own exit counts for auto_shutdown */
} child;

/* The partition supervisor's additions (partition_supervisor.c). */
typedef struct sup_ext {
    int partitions;             /* the children routed to: partitions 0..partitions-1 */
    int max_partitions;         /* > 0: a partition supervisor, started with this many */
    void (*release)(void *ctx); /* run once when the supervisor exits or fails to start */
    void *ctx;                  /* its argument */
} sup_ext;

typedef struct sup {
    bl_sup_strategy strategy;       /* one_for_one, one_for_all, rest_for_one */
    bl_auto_shutdown auto_shutdown; /* never, any_significant, all_significant */
    bl__sup_intensity *intensity;   /* recent restarts */
    child *v;                       /* the children in start order */
    size_t n, cap;                  /* used, allocated */
    sup_ext ext;                    /* partitions, release hook */
} sup;

/* What start hands to init: on the heap, shared by the starter and the supervisor (see
 * start_sup). */
typedef struct sup_start {
    const bl_child_spec *children; /* the specs (checked already), or ... */
    size_t n;                      /* how many */
    bl_sup_init_fn init;           /* ... a function that adds them (checked in init) */
    void *init_arg;                /* its argument */
    bl_sup_flags flags;            /* the flags (init may change them) */
    sup_ext ext;                   /* zero for a plain supervisor */
    _Atomic bool ext_claimed;      /* ext.release is init's (or, first, the starter's) */
    _Atomic int shares;            /* the starter's and init's, while both may read it */
    int result;                    /* init's failure: BL_SUP_CHILD_FAILED, -EINVAL, ... */
    bl_sup_error *error;           /* &err when the caller wants a description, else NULL */
    bl_sup_error err;              /* init's description, copied out by the starter */
} sup_start;

/* The children an init function adds (bl_sup_children_add); on the supervisor's stack. */
struct bl_sup_children {
    sup *s;            /* the supervisor being built */
    int added;         /* calls to bl_sup_children_add so far */
    int rc;            /* the first one's failure, or 0 */
    bl_sup_error *err; /* where to describe it, or NULL */
};

/* Call and cast tags, in the user range: a supervisor is its own server. */
enum {
    SUP_START_CHILD = 0x53555001u,
    SUP_TERMINATE_CHILD,
    SUP_RESTART_CHILD,
    SUP_DELETE_CHILD,
    SUP_WHICH_CHILDREN,
    SUP_COUNT_CHILDREN,
    SUP_ROUTE,
    SUP_PARTITIONS,
    SUP_RESIZE,
    SUP_TRY_AGAIN, /* cast to itself: restart a child whose restart failed */
};

/* Fills c from spec s (checked), copying the arg when arg_len > 0.  0 or
 * -ENOMEM. */
static int child_init(child *c, const bl_child_spec *s, const void *arg_bytes)
{
    *c = (child){.start = s->start,
                 .arg = s->arg,
                 .restart = s->restart,
                 .type = s->type,
                 .status = BL_CHILD_UNDEFINED,
                 .shutdown = bl__sup_shutdown_of(s->shutdown, s->type),
                 .start_info = s->start_info,
                 .significant = s->significant};
    snprintf(c->id, sizeof c->id, "%s", s->id ? s->id : "");
    if (s->arg_len > 0) {
        c->arg = malloc(s->arg_len);
        if (!c->arg) return -ENOMEM;
        memcpy(c->arg, arg_bytes ? arg_bytes : s->arg, s->arg_len);
        c->owns_arg = true;
    }
    return 0;
}

static void child_free(child *c)
{
    if (c->owns_arg) free(c->arg);
    c->arg = NULL;
    c->owns_arg = false;
}

/* Appends a spec; returns its index or -ENOMEM. */
static long sup_append(sup *s, const bl_child_spec *spec, const void *arg_bytes)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        child *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (child_init(&s->v[s->n], spec, arg_bytes) != 0) return -ENOMEM;
    return (long)s->n++;
}

static void sup_remove(sup *s, size_t i)
{
    child_free(&s->v[i]);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

static long find_id(const sup *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0) return (long)i;
    return -1;
}

static long find_pid(const sup *s, bl_pid pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].status == BL_CHILD_RUNNING && s->v[i].pid == pid) return (long)i;
    return -1;
}

static void sup_free(sup *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) child_free(&s->v[i]);
    free(s->v);
    bl__sup_intensity_free(s->intensity);
    if (s->ext.release) s->ext.release(s->ext.ctx);
    free(s);
}

/*
 * Runs a child's start function.  Returns 0 (running), BL_GS_IGNORED (no
 * pid), or its error; any other positive result is taken for -EPROTO.
 * other (if not NULL) gets the pid a failed start left (the holder of a
 * taken name with -EEXIST), info (if not NULL) a successful start's info.
 */
static bl__sup_offender offender(const child *c)
{
    return (bl__sup_offender){c->id, c->pid, c->restart, c->type};
}

static int start_one(child *c, bl_pid *other, bl_child_info *info)
{
    bl_pid pid;
    int rc = bl__sup_start(c->start, c->start_info, c->arg, &pid, info);
    c->pid = rc == 0 ? pid : BL_PID_NONE;
    bl__sup_offender o = offender(c);
    if (rc < 0) bl__sup_report("start_error", &o, NULL, "start failed", rc);
    if (rc == 0) bl__sup_progress(&o);
    c->status = rc == 0 ? BL_CHILD_RUNNING : BL_CHILD_UNDEFINED;
    if (other) *other = rc == 0 ? BL_PID_NONE : pid;
    return rc;
}

/* Shuts one child down if it runs; it is then undefined. */
static void shutdown_one(child *c)
{
    if (c->status == BL_CHILD_RUNNING) bl__sup_terminate(&c->pid, &c->shutdown, 1);
    c->pid = BL_PID_NONE;
    c->status = BL_CHILD_UNDEFINED;
}

/*
 * Shuts down the children from index `from` on, last first; temporary
 * children are dropped, the others stay undefined.
 */
static void terminate_from(sup *s, size_t from)
{
    for (size_t i = s->n; i-- > from;) {
        shutdown_one(&s->v[i]);
        if (s->v[i].restart == BL_RESTART_TEMPORARY) sup_remove(s, i);
    }
}

/*
 * Starts the children from index `from` on, in order.  Returns SIZE_MAX,
 * or the index of the child whose start failed (left restarting; the ones
 * after it are not started).
 */
static size_t start_from(sup *s, size_t from)
{
    for (size_t i = from; i < s->n;) {
        child *c = &s->v[i];
        if (c->status == BL_CHILD_RUNNING) {
            i++;
            continue;
        }
        int rc = start_one(c, NULL, NULL);
        if (rc < 0) {
            c->status = BL_CHILD_RESTARTING;
            return i;
        }
        if (rc == BL_GS_IGNORED && c->restart == BL_RESTART_TEMPORARY)
            sup_remove(s, i);
        else
            i++;
    }
    return SIZE_MAX;
}

/* Asks itself to try a failed restart again, after the messages already queued.
 */
static void try_again(const child *c)
{
    bl_gen_server_cast(bl_self(), SUP_TRY_AGAIN, c->id, strlen(c->id) + 1);
}

/*
 * Restarts child i (it is not running) by the strategy, after counting the
 * restart: one too many stops the supervisor with reason shutdown (its
 * terminate then shuts the other children down).
 */
static void restart(sup *s, size_t i, bl_gs_result *r)
{
    if (!bl__sup_intensity_add(s->intensity)) {
        bl__sup_offender o = offender(&s->v[i]);
        bl__sup_report("shutdown", &o, NULL, "reached_max_restart_intensity", 0);
        bl_reason shutdown = BL_REASON(BL_SHUTDOWN);
        bl_gs_stop(r, &shutdown);
        return;
    }
    size_t failed = SIZE_MAX;
    switch (s->strategy) {
    case BL_ONE_FOR_ONE:
        if (start_one(&s->v[i], NULL, NULL) < 0) {
            s->v[i].status = BL_CHILD_RESTARTING;
            failed = i;
        }
        break;
    case BL_ONE_FOR_ALL:
        terminate_from(s, 0);
        failed = start_from(s, 0);
        break;
    case BL_REST_FOR_ONE:
        terminate_from(s, i + 1);
        failed = start_from(s, i);
        break;
    }
    if (failed != SIZE_MAX) try_again(&s->v[failed]);
}

/*
 * A significant child exited by itself and is not restarted (OTP's
 * do_auto_shutdown): any_significant stops the supervisor with reason
 * shutdown; all_significant does once no significant child is left running
 * (or being restarted).  Its terminate then shuts the other children down.
 */
static void auto_shutdown(sup *s, bl_gs_result *r)
{
    if (s->auto_shutdown == BL_AUTO_SHUTDOWN_NEVER) return;
    if (s->auto_shutdown == BL_AUTO_SHUTDOWN_ALL_SIGNIFICANT)
        for (size_t i = 0; i < s->n; i++)
            if (s->v[i].significant && s->v[i].status != BL_CHILD_UNDEFINED) return;
    bl_reason shutdown = BL_REASON(BL_SHUTDOWN);
    bl_gs_stop(r, &shutdown);
}

/* A linked process exited: if it is a child, apply its restart rule. */
static void child_exited(sup *s, bl_pid pid, const bl_reason *reason, bl_gs_result *r)
{
    long i = find_pid(s, pid);
    if (i < 0) return; /* not a child (the parent's EXIT is the gen_server's) */
    child *c = &s->v[i];
    bool significant = c->significant;
    /* As OTP: every exit of a permanent child, the others' abnormal ones. */
    if (c->restart == BL_RESTART_PERMANENT || !bl_reason_is_clean(reason)) {
        bl__sup_offender o = offender(c);
        bl__sup_report("child_terminated", &o, reason, NULL, 0);
    }
    c->pid = BL_PID_NONE;
    c->status = BL_CHILD_UNDEFINED;
    if (c->restart == BL_RESTART_TEMPORARY) {
        sup_remove(s, (size_t)i);
        if (significant) auto_shutdown(s, r);
        return;
    }
    if (c->restart == BL_RESTART_TRANSIENT && bl_reason_is_clean(reason)) {
        if (significant) auto_shutdown(s, r);
        return;
    }
    restart(s, (size_t)i, r);
}

/* ------------------------------------------------------------------------ */
/* gen_server callbacks                                                     */
/* ------------------------------------------------------------------------ */

int bl_sup_children_add(bl_sup_children *c, const bl_child_spec *spec)
{
    if (!c || !c->s) return -EINVAL;
    int index = c->added++;
    bl_sup_error e;
    int rc = bl_child_spec_check(spec, true, &e);
    if (!rc && find_id(c->s, spec->id) >= 0)
        rc = bl__sup_set_error(&e, BL_SUP_ERR_DUPLICATE_ID, 0, spec->id, -EINVAL);
    if (!rc && sup_append(c->s, spec, NULL) < 0) rc = -ENOMEM;
    if (rc && !c->rc) {
        c->rc = rc;
        if (c->err && rc == -EINVAL) {
            *c->err = e;
            c->err->index = index;
        }
    }
    return rc;
}

/*
 * Runs the user's init function (in the supervisor process): 0 with the
 * children added to s and *flags set, BL_GS_IGNORED, or an error.
 */
static int run_init(sup *s, sup_start *st, bl_sup_flags *flags)
{
    bl_sup_children c = {.s = s, .err = st->error};
    int rc = st->init(st->init_arg, flags, &c);
    if (rc == BL_GS_IGNORED) return rc;
    if (rc != 0)
        return bl__sup_set_error(st->error, BL_SUP_ERR_INIT_FAILED, -1, NULL,
                                 rc < 0 ? rc : -EPROTO);
    return c.rc;
}

/* Checks the flags alone; *max and *period_ms get the intensity.  0 or -EINVAL. */
static int check_flags(const bl_sup_flags *f, int *max, int64_t *period_ms, bl_sup_error *err)
{
    if ((unsigned)f->strategy > BL_REST_FOR_ONE ||
        (unsigned)f->auto_shutdown > BL_AUTO_SHUTDOWN_ALL_SIGNIFICANT ||
        bl__sup_intensity_opts(f->max_restarts, f->max_seconds, max, period_ms))
        return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    return 0;
}

/* Checks the flags and what they allow of the children, then applies them.  0 or -EINVAL. */
static int set_flags(sup *s, const bl_sup_flags *f, bl_sup_error *err)
{
    int max;
    int64_t period_ms;
    int rc = check_flags(f, &max, &period_ms, err);
    if (rc) return rc;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].significant && f->auto_shutdown == BL_AUTO_SHUTDOWN_NEVER)
            return bl__sup_set_error(err, BL_SUP_ERR_BAD_SIGNIFICANT, (int)i, s->v[i].id, -EINVAL);
    s->strategy = f->strategy;
    s->auto_shutdown = f->auto_shutdown;
    s->intensity = bl__sup_intensity_new(max, period_ms);
    return s->intensity ? 0 : -ENOMEM;
}

/*
 * Starts the children at init, in order.  0, or BL_SUP_CHILD_FAILED (err
 * says which child and why; the caller shuts down those started).
 */
static int start_all(sup *s, bl_sup_error *err)
{
    int index = 0;
    for (size_t i = 0; i < s->n; index++) {
        bl_pid other;
        int rc = start_one(&s->v[i], &other, NULL);
        if (rc < 0) {
            bl__sup_set_error(err, BL_SUP_ERR_START_FAILED, index, s->v[i].id, rc);
            if (err) err->pid = other;
            return BL_SUP_CHILD_FAILED;
        }
        if (rc == BL_GS_IGNORED && s->v[i].restart == BL_RESTART_TEMPORARY)
            sup_remove(s, i);
        else
            i++;
    }
    return 0;
}

/* One side is done with st; the last frees it. */
static void start_drop(sup_start *st)
{
    /* Acq_rel: the other side's accesses happen before the free. */
    if (atomic_fetch_sub_explicit(&st->shares, 1, memory_order_acq_rel) == 1) free(st);
}

/* Claims st's release hook: true for the first of the starter and init. */
static bool ext_claim(sup_start *st)
{
    return !atomic_exchange_explicit(&st->ext_claimed, true, memory_order_relaxed);
}

/* init proper; its caller gives its share of st back after. */
static void sup_init_with(sup_start *st, void **state, bl_gs_result *r)
{
    int rc = -ENOMEM;
    sup *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    /* From here on sup_free releases it; unless the starter, killed, released it first. */
    if (ext_claim(st)) s->ext = st->ext;
    bl_sup_flags flags = st->flags;
    rc = 0;
    if (st->init) {
        rc = run_init(s, st, &flags);
    } else {
        for (size_t i = 0; i < st->n && !rc; i++)
            if (sup_append(s, &st->children[i], NULL) < 0) rc = -ENOMEM;
    }
    if (rc == BL_GS_IGNORED) {
        sup_free(s);
        *state = NULL;
        bl_gs_ignore(r);
        return;
    }
    if (!rc) rc = set_flags(s, &flags, st->error);
    if (!rc) rc = start_all(s, st->error);
    if (!rc) {
        *state = s;
        return;
    }
fail:
    st->result = rc;
    if (s) terminate_from(s, 0);
    sup_free(s);
    *state = NULL;
    /* Exit normally: the error travels back as a value, not along the link. */
    bl_gs_stop(r, NULL);
}

static void sup_init(void *arg, void **state, bl_gs_result *r)
{
    sup_start *st = arg;
    bl__proc_kind_set(BL_KIND_SUPERVISOR);
    bl_trap_exit(true);
    sup_init_with(st, state, r);
    start_drop(st); /* the last access */
}

/* The id in a request: NUL-terminated within the message, else NULL. */
static const char *req_id(const bl_msg *m)
{
    const char *id = m->data;
    if (m->len == 0 || memchr(id, 0, m->len) == NULL) return NULL;
    return id;
}

static void call_start_child(sup *s, const bl_msg *m, bl_gs_result *r)
{
    const bl__sup_wire *w = bl__sup_wire_of(m);
    if (!w) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    bl_child_spec spec = {.id = w->id,
                          .start = w->start,
                          .start_info = w->start_info,
                          .arg = w->arg,
                          .arg_len = w->arg_len,
                          .restart = w->restart,
                          .shutdown = w->shutdown,
                          .type = w->type,
                          .significant = w->significant};
    if (spec.significant && s->auto_shutdown == BL_AUTO_SHUTDOWN_NEVER) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    long i = find_id(s, w->id);
    if (i >= 0) {
        if (s->v[i].status == BL_CHILD_RUNNING) {
            bl__sup_reply_with(r, BL_SUP_ALREADY_STARTED, s->v[i].pid, 0);
            return;
        }
        bl__sup_reply_with(r, BL_SUP_ALREADY_PRESENT, 0, 0);
        return;
    }
    i = sup_append(s, &spec, w + 1);
    if (i < 0) {
        bl__sup_reply_with(r, (int)i, 0, 0);
        return;
    }
    bl_pid other;
    bl_child_info info;
    int rc = start_one(&s->v[i], &other, &info);
    bl_pid pid = rc == 0 ? s->v[i].pid : other;
    if (rc < 0 || (rc == BL_GS_IGNORED && s->v[i].restart == BL_RESTART_TEMPORARY))
        sup_remove(s, (size_t)i);
    bl__sup_reply_info(r, rc, pid, &info);
}

static void call_by_id(sup *s, const bl_msg *m, bl_gs_result *r)
{
    const char *id = req_id(m);
    long i = id ? find_id(s, id) : -1;
    if (i < 0) {
        bl__sup_reply_with(r, id ? BL_SUP_NOT_FOUND : -EINVAL, 0, 0);
        return;
    }
    child *c = &s->v[i];
    int rc = 0;
    if (m->tag == SUP_TERMINATE_CHILD) {
        shutdown_one(c);
        if (c->restart == BL_RESTART_TEMPORARY) sup_remove(s, (size_t)i);
    } else if (c->status == BL_CHILD_RUNNING) {
        rc = BL_SUP_RUNNING;
    } else if (c->status == BL_CHILD_RESTARTING) {
        rc = BL_SUP_RESTARTING;
    } else if (m->tag == SUP_RESTART_CHILD) {
        bl_pid other;
        bl_child_info info;
        rc = start_one(c, &other, &info);
        bl__sup_reply_info(r, rc, rc == 0 ? c->pid : other, &info);
        return;
    } else {
        sup_remove(s, (size_t)i); /* SUP_DELETE_CHILD */
    }
    bl__sup_reply_with(r, rc, 0, 0);
}

static void call_which_children(sup *s, bl_gs_result *r)
{
    bl_sup_child one = {0}, *v = s->n <= 1 ? &one : malloc(s->n * sizeof *v);
    if (!v) {
        int32_t rc = -ENOMEM;
        bl_gs_reply(r, &rc, sizeof rc);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        const child *c = &s->v[i];
        v[i] = (bl_sup_child){
            .pid = c->pid, .status = c->status, .type = c->type, .restart = c->restart};
        memcpy(v[i].id, c->id, sizeof v[i].id);
    }
    bl_gs_reply(r, v, s->n * sizeof *v);
    if (v != &one) free(v);
}

static void call_count_children(sup *s, bl_gs_result *r)
{
    bl_sup_counts k = {.specs = s->n};
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].status == BL_CHILD_RUNNING) k.active++;
        if (s->v[i].type == BL_CHILD_SUPERVISOR)
            k.supervisors++;
        else
            k.workers++;
    }
    bl_gs_reply(r, &k, sizeof k);
}

/* The index of partition p's child, or -1 (its spec was deleted). */
static long find_partition(const sup *s, int p)
{
    char id[16];
    snprintf(id, sizeof id, "%d", p);
    /* Partition p is child p unless specs were deleted. */
    return (size_t)p < s->n && strcmp(s->v[p].id, id) == 0 ? p : find_id(s, id);
}

/* The child of partition u mod partitions. */
static void call_route(sup *s, const bl_msg *m, bl_gs_result *r)
{
    uint64_t u;
    if (s->ext.max_partitions <= 0 || m->len != sizeof u) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    if (s->ext.partitions == 0) { /* resized to none: nothing to route to */
        bl__sup_reply_with(r, BL_SUP_NOT_FOUND, 0, -1);
        return;
    }
    memcpy(&u, m->data, sizeof u);
    int p = (int)(u % (uint64_t)s->ext.partitions);
    long i = find_partition(s, p);
    if (i < 0) {
        bl__sup_reply_with(r, BL_SUP_NOT_FOUND, 0, p);
        return;
    }
    const child *c = &s->v[i];
    if (c->status == BL_CHILD_RUNNING) {
        bl__sup_reply_with(r, 0, c->pid, p);
        return;
    }
    bl__sup_reply_with(r, c->status == BL_CHILD_RESTARTING ? BL_SUP_RESTARTING : BL_SUP_NOT_FOUND,
                       0, p);
}

/* Shuts partition p down as terminate_child does (a temporary one is forgotten). */
static void stop_partition(sup *s, int p)
{
    long i = find_partition(s, p);
    if (i < 0) return;
    shutdown_one(&s->v[i]);
    if (s->v[i].restart == BL_RESTART_TEMPORARY) sup_remove(s, (size_t)i);
}

/*
 * PartitionSupervisor.resize!: growing starts partitions current..n-1 again
 * (restart_child), in order; shrinking routes to n partitions first, then
 * shuts down n..current-1 (terminate_child), in order.  A partition that
 * cannot start (its spec deleted, running, restarting, or its start fails)
 * undoes the partitions this call started and the count stays.  Replies with
 * the previous count, or the error with the failed partition in aux.
 */
static void call_resize(sup *s, const bl_msg *m, bl_gs_result *r)
{
    int32_t n;
    if (s->ext.max_partitions <= 0 || m->len != sizeof n) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    memcpy(&n, m->data, sizeof n);
    int cur = s->ext.partitions;
    if (n < 0 || n > s->ext.max_partitions) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    for (int p = cur; p < n; p++) {
        long i = find_partition(s, p);
        int rc = i < 0                                   ? BL_SUP_NOT_FOUND
                 : s->v[i].status == BL_CHILD_RUNNING    ? BL_SUP_RUNNING
                 : s->v[i].status == BL_CHILD_RESTARTING ? BL_SUP_RESTARTING
                                                         : start_one(&s->v[i], NULL, NULL);
        if (rc < 0) {
            for (int q = p; q-- > cur;) stop_partition(s, q);
            bl__sup_reply_with(r, rc, 0, p);
            return;
        }
    }
    s->ext.partitions = n;
    for (int p = n; p < cur; p++) stop_partition(s, p);
    bl__sup_reply_with(r, cur, 0, 0);
}

static void sup_handle_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    sup *s = *state;
    switch (m->tag) {
    case SUP_START_CHILD:
        call_start_child(s, m, r);
        break;
    case SUP_TERMINATE_CHILD:
    case SUP_RESTART_CHILD:
    case SUP_DELETE_CHILD:
        call_by_id(s, m, r);
        break;
    case SUP_WHICH_CHILDREN:
        call_which_children(s, r);
        break;
    case SUP_COUNT_CHILDREN:
        call_count_children(s, r);
        break;
    case SUP_ROUTE:
        call_route(s, m, r);
        break;
    case SUP_PARTITIONS:
        bl__sup_reply_with(r, s->ext.max_partitions > 0 ? s->ext.partitions : -EINVAL, 0, 0);
        break;
    case SUP_RESIZE:
        call_resize(s, m, r);
        break;
    default:
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        break;
    }
}

static void sup_handle_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    sup *s = *state;
    const char *id = req_id(m);
    if (m->tag != SUP_TRY_AGAIN || !id) return;
    long i = find_id(s, id);
    if (i >= 0 && s->v[i].status == BL_CHILD_RESTARTING) restart(s, (size_t)i, r);
}

static void sup_handle_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    bl_reason reason;
    if (m->tag != BL_TAG_EXIT || bl_msg_reason(m, &reason) != 0) return;
    child_exited(*state, m->from, &reason, r);
}

/* Stopping (a stop result, bl_supervisor_stop, the parent's exit): children go first. */
static void sup_terminate(void **state, const bl_reason *reason)
{
    if (*state) terminate_from(*state, 0);
}

/*
 * After the process is gone, whatever the reason (a kill included): frees
 * the state, outside any process.  A killed supervisor's children die
 * through their links.
 */
static void sup_release(void *state)
{
    sup_free(state);
}

static const bl_gen_server sup_callbacks = {
    .init = sup_init,
    .handle_call = sup_handle_call,
    .handle_cast = sup_handle_cast,
    .handle_info = sup_handle_info,
    .terminate = sup_terminate,
    .release = sup_release,
};

/* ------------------------------------------------------------------------ */
/* API                                                                      */
/* ------------------------------------------------------------------------ */

/* The starter killed while it waited: its share, and the release hook if init has not
 * claimed it (a cleanup handler: runs outside any process). */
static void start_abandon(void *arg)
{
    sup_start *st = arg;
    if (st->ext.release && ext_claim(st)) st->ext.release(st->ext.ctx);
    start_drop(st);
}

/*
 * Spawns the supervisor and waits for its init: start's results.  What init
 * reads and writes goes in a heap copy of *proto and of its specs, not on
 * this stack or in the caller's memory: if this process is killed while it
 * waits, init may still be running on another core.  So the copy has two
 * shares, this process's (given back by a cleanup handler if it is killed)
 * and init's, and the release hook goes to whichever of init and a killed
 * starter claims it first.  Back here, init is over (its acknowledgement or
 * the DOWN came), so the copy is freed whatever init's share.
 */
static int start_sup(bl_pid *pid, const sup_start *proto, const bl_name *name, bl_sup_error *error)
{
    size_t head = (sizeof(sup_start) + 15) & ~(size_t)15; /* the specs' alignment */
    size_t specs = proto->n ? bl__sup_specs_bytes(proto->children, proto->n) : 0;
    sup_start *st = proto->n && !specs ? NULL : malloc(head + specs);
    if (!st) {
        if (proto->ext.release) proto->ext.release(proto->ext.ctx);
        return -ENOMEM;
    }
    *st = *proto;
    if (proto->n) {
        bl_child_spec *copy = (bl_child_spec *)((char *)st + head);
        bl__sup_specs_copy(copy, proto->children, proto->n);
        st->children = copy;
    }
    atomic_init(&st->ext_claimed, false);
    atomic_init(&st->shares, 2);
    st->result = 0;
    if (error) st->err = *error;
    st->error = error ? &st->err : NULL;
    bl_cleanup c;
    bl_cleanup_push(&c, start_abandon, st);
    bl_gen_server_opts g = {.name = name};
    bl_pid p = BL_PID_NONE;
    int rc = bl_gen_server_start_link(&p, &sup_callbacks, st, &g);
    bl_cleanup_pop(&c, false);
    if (rc == 0 || rc == -EEXIST) *pid = p;
    if (rc != 0 && rc != BL_GS_IGNORED && st->result != 0) rc = st->result;
    if (error) *error = st->err;
    /* Not taken by init: it failed before, or never ran. */
    if (st->ext.release && ext_claim(st)) st->ext.release(st->ext.ctx);
    free(st);
    return rc;
}

/* The flags in a bl_sup_opts. */
static bl_sup_flags flags_of(const bl_sup_opts *o)
{
    return (bl_sup_flags){.strategy = o->strategy,
                          .max_restarts = o->max_restarts,
                          .max_seconds = o->max_seconds,
                          .auto_shutdown = o->auto_shutdown};
}

/*
 * Starts a supervisor; the partition supervisor passes partitions > 0 and a
 * release hook.  release(ctx), if not NULL, runs exactly once: after the
 * supervisor is gone, or before this returns when start fails.
 */
int bl__supervisor_start_ext(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts, int partitions, void (*release)(void *),
                             void *ctx)
{
    if (pid) *pid = BL_PID_NONE;
    bl_sup_opts o = opts ? *opts : (bl_sup_opts){0};
    sup_start st = {.children = children,
                    .n = n,
                    .flags = flags_of(&o),
                    .ext = {partitions, partitions, release, ctx}};
    bl__sup_set_error(o.error, BL_SUP_ERR_NONE, 0, NULL, 0);
    int max;
    int64_t period_ms;
    int rc = check_flags(&st.flags, &max, &period_ms, o.error);
    if (!rc && !pid) rc = bl__sup_set_error(o.error, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (!rc) rc = bl__sup_check_specs(children, n, o.auto_shutdown, o.error);
    if (!rc) {
        rc = start_sup(pid, &st, o.name, o.error);
        return rc == BL_GS_IGNORED ? -ECHILD : rc; /* only an init function ignores */
    }
    if (release) release(ctx); /* not started */
    return rc;
}

int bl_supervisor_start_link(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts)
{
    return bl__supervisor_start_ext(pid, children, n, opts, 0, NULL, NULL);
}

int bl_supervisor_start_link_init(bl_pid *pid, bl_sup_init_fn init, void *arg,
                                  const bl_sup_opts *opts)
{
    if (pid) *pid = BL_PID_NONE;
    bl_sup_opts o = opts ? *opts : (bl_sup_opts){0};
    bl__sup_set_error(o.error, BL_SUP_ERR_NONE, 0, NULL, 0);
    if (!pid || !init) return bl__sup_set_error(o.error, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    sup_start st = {.init = init, .init_arg = arg, .flags = flags_of(&o)};
    return start_sup(pid, &st, o.name, o.error);
}

int bl_supervisor_start_fn(void *arg, bl_pid *pid)
{
    const bl_sup_init *in = arg;
    if (!in) return -EINVAL;
    bl_sup_opts o = in->opts;
    o.error = NULL;
    if (in->init) {
        if (in->children || in->nchildren) return -EINVAL;
        return bl_supervisor_start_link_init(pid, in->init, in->init_arg, &o);
    }
    return bl__supervisor_start_ext(pid, in->children, in->nchildren, &o, 0, NULL, NULL);
}

int bl_supervisor_start_child_info(bl_pid sup, const bl_child_spec *spec, bl_pid *pid,
                                   bl_child_info *info)
{
    if (pid) *pid = BL_PID_NONE;
    if (info) info->len = 0;
    int rc = bl_child_spec_check(spec, true, NULL);
    if (rc) return rc;
    bl__sup_reply rep;
    rc = bl__sup_call_spec(sup, SUP_START_CHILD, spec, &rep, info);
    if (rc) return rc;
    if (pid) *pid = rep.pid;
    return rep.rc;
}

int bl_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid)
{
    return bl_supervisor_start_child_info(sup, spec, pid, NULL);
}

/* A call naming a child by id; *pid gets the reply's pid and *info its info when asked. */
static int call_id(bl_pid sup, uint32_t tag, const char *id, bl_pid *pid, bl_child_info *info)
{
    if (pid) *pid = BL_PID_NONE;
    if (info) info->len = 0;
    if (!id) return -EINVAL;
    size_t len = strnlen(id, BL_SUP_ID_MAX);
    if (len >= BL_SUP_ID_MAX) return BL_SUP_NOT_FOUND; /* no child has such an id */
    bl__sup_reply rep;
    int rc = bl__sup_call_reply_info(sup, tag, id, len + 1, &rep, info);
    if (rc) return rc;
    if (pid) *pid = rep.pid;
    return rep.rc;
}

int bl_supervisor_terminate_child(bl_pid sup, const char *id)
{
    return call_id(sup, SUP_TERMINATE_CHILD, id, NULL, NULL);
}

int bl_supervisor_restart_child(bl_pid sup, const char *id, bl_pid *pid)
{
    return call_id(sup, SUP_RESTART_CHILD, id, pid, NULL);
}

int bl_supervisor_restart_child_info(bl_pid sup, const char *id, bl_pid *pid, bl_child_info *info)
{
    return call_id(sup, SUP_RESTART_CHILD, id, pid, info);
}

int bl_supervisor_delete_child(bl_pid sup, const char *id)
{
    return call_id(sup, SUP_DELETE_CHILD, id, NULL, NULL);
}

int bl_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max)
{
    return bl__sup_which(sup, SUP_WHICH_CHILDREN, out, max);
}

int bl_supervisor_count_children(bl_pid sup, bl_sup_counts *out)
{
    return bl__sup_count(sup, SUP_COUNT_CHILDREN, out);
}

int bl_supervisor_stop(bl_pid sup, const bl_reason *reason, int64_t timeout_ms)
{
    return bl_gen_server_stop(sup, reason, timeout_ms);
}

/* The partition supervisor's lookup: the child of partition u mod N. */
int bl__supervisor_route(bl_pid sup, uint64_t u, bl_pid *pid, int *partition)
{
    bl__sup_reply rep;
    int rc = bl__sup_call_reply(sup, SUP_ROUTE, &u, sizeof u, &rep);
    if (rc) return rc;
    *pid = rep.pid;
    if (partition && rep.rc != -EINVAL) *partition = rep.aux;
    return rep.rc;
}

/* The number of partitions, or -EINVAL for a plain supervisor. */
int bl__supervisor_partitions(bl_pid sup)
{
    bl__sup_reply rep;
    int rc = bl__sup_call_reply(sup, SUP_PARTITIONS, NULL, 0, &rep);
    return rc ? rc : rep.rc;
}

/* Resizes a partition supervisor: the previous count, or an error. */
int bl__supervisor_resize(bl_pid sup, int n)
{
    int32_t v = n;
    bl__sup_reply rep;
    int rc = bl__sup_call_reply(sup, SUP_RESIZE, &v, sizeof v, &rep);
    return rc ? rc : rep.rc;
}
