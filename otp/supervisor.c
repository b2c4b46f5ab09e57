/*
 * otp/supervisor.c - the supervisor behaviour (Elixir's Supervisor) as a
 * gen_server, and the pieces the dynamic and partition supervisors share:
 * restart intensity, child shutdown, spec checks.
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
 * The init argument (sup_start) lives on the stack of the process calling
 * start, which waits for init: init may read the caller's specs and write
 * the caller's error report.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otp/sup_internal.h"
#include "beamline.h"
#include "beamline/gen_server.h"
#include "beamline/supervisor.h"

/* ------------------------------------------------------------------------ */
/* Shared with dynamic_supervisor.c and partition_supervisor.c              */
/* ------------------------------------------------------------------------ */

/*
 * These bl__sup_* functions are internal to the otp layer; their users
 * declare the prototypes they need (there is no private header for them).
 */

/* Monotonic milliseconds. */
int64_t bl__sup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Restart intensity: the times of the restarts made within the period. */
typedef struct bl__sup_intensity {
    int max;           /* restarts allowed within the period */
    int64_t period_ms; /* max_seconds in ms */
    int64_t *t;        /* restart times, oldest first */
    size_t n, cap;     /* entries used, allocated */
} bl__sup_intensity;

/*
 * Checks and resolves the intensity options: 0 means the default, and
 * BL_SUP_NO_RESTARTS a max of 0.  Returns 0 or -EINVAL.
 */
int bl__sup_intensity_opts(int max_restarts, int max_seconds, int *max, int64_t *period_ms)
{
    if (max_restarts < BL_SUP_NO_RESTARTS || max_seconds < 0) return -EINVAL;
    *max = max_restarts == 0 ? 3 : max_restarts == BL_SUP_NO_RESTARTS ? 0 : max_restarts;
    *period_ms = (int64_t)(max_seconds == 0 ? 5 : max_seconds) * 1000;
    return 0;
}

bl__sup_intensity *bl__sup_intensity_new(int max, int64_t period_ms)
{
    bl__sup_intensity *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->max = max;
    in->period_ms = period_ms;
    return in;
}

void bl__sup_intensity_free(bl__sup_intensity *in)
{
    if (!in) return;
    free(in->t);
    free(in);
}

/*
 * Records a restart now.  Returns true while the restarts within the
 * period are at most max, false when this one is one too many (the caller
 * then shuts down).  Without memory the restart counts as one too many: a
 * supervisor that cannot keep its books should not keep restarting.
 */
bool bl__sup_intensity_add(bl__sup_intensity *in)
{
    int64_t now = bl__sup_now_ms();
    size_t old = 0;
    while (old < in->n && now - in->t[old] > in->period_ms) old++;
    if (old > 0) {
        memmove(in->t, in->t + old, (in->n - old) * sizeof *in->t);
        in->n -= old;
    }
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 4;
        int64_t *t = realloc(in->t, cap * sizeof *t);
        if (!t) return false;
        in->t = t;
        in->cap = cap;
    }
    in->t[in->n++] = now;
    return in->n <= (size_t)in->max;
}

/* A spec's shutdown in ms, BL_SHUTDOWN_INFINITY or BL_SHUTDOWN_BRUTAL_KILL. */
int64_t bl__sup_shutdown_of(int64_t shutdown, bl_child_type type)
{
    if (shutdown != BL_SHUTDOWN_DEFAULT) return shutdown;
    return type == BL_CHILD_SUPERVISOR ? BL_SHUTDOWN_INFINITY : 5000;
}

/* One child being shut down by bl__sup_terminate. */
typedef struct term_ent {
    bl_pid pid;       /* the child */
    bl_ref ref;       /* our monitor on it */
    int64_t shutdown; /* resolved: ms > 0, infinity or brutal_kill */
    int64_t deadline; /* when to kill it; INT64_MAX: never */
    bool exited;      /* its EXIT was in the mailbox: it is dead already */
    bool killed;      /* nothing more to send: kill sent, or it exited */
    bool done;        /* its DOWN came */
} term_ent;

/* The entries being waited for, sorted by pid, then by ref. */
typedef struct term_set {
    term_ent *e;
    size_t n;
} term_set;

static int ent_pid_cmp(const void *a, const void *b)
{
    bl_pid x = ((const term_ent *)a)->pid, y = ((const term_ent *)b)->pid;
    return x < y ? -1 : x > y;
}

static int ent_ref_cmp(const void *a, const void *b)
{
    bl_ref x = ((const term_ent *)a)->ref, y = ((const term_ent *)b)->ref;
    return x < y ? -1 : x > y;
}

/* An EXIT from one of the set (sorted by pid). */
static bool match_exit_in(const bl_msg *m, void *arg)
{
    term_set *s = arg;
    term_ent key = {.pid = m->from};
    return m->tag == BL_TAG_EXIT && bsearch(&key, s->e, s->n, sizeof key, ent_pid_cmp);
}

/* A DOWN of one of our monitors (the set sorted by ref). */
static bool match_down_in(const bl_msg *m, void *arg)
{
    term_set *s = arg;
    term_ent key = {.ref = m->ref};
    return m->tag == BL_TAG_DOWN && bsearch(&key, s->e, s->n, sizeof key, ent_ref_cmp);
}

/*
 * Process only: shuts down the children pids[0..n) all at once and returns
 * when all are dead (Erlang's shutdown/2 and DynamicSupervisor's
 * terminate_children).  Each is monitored, then unlinked, so a DOWN is sure
 * to come and no EXIT comes after; an EXIT it sent before the unlink is
 * taken out of the mailbox (it had exited already and gets no signal).  The
 * others get exit shutdown (kill for brutal_kill), and one still alive at
 * its deadline (now + its shutdown ms) is killed.  shutdown[i] is resolved
 * (ms > 0, infinity or brutal_kill).  The supervisor calls it with n = 1,
 * one child at a time.
 */
void bl__sup_terminate(const bl_pid *pids, const int64_t *shutdown, size_t n)
{
    enum { SMALL = 8 };
    term_ent small[SMALL];
    term_ent *e = n <= SMALL ? small : malloc(n * sizeof *e);
    if (!e) {
        /* No memory for the whole set: a few at a time, each still bounded. */
        for (size_t i = 0; i < n; i += SMALL)
            bl__sup_terminate(pids + i, shutdown + i, n - i < SMALL ? n - i : SMALL);
        return;
    }
    bl_reason shut = BL_REASON(BL_SHUTDOWN), kill = BL_REASON(BL_KILL);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        term_ent *t = &e[k];
        *t = (term_ent){.pid = pids[i], .shutdown = shutdown[i], .deadline = INT64_MAX};
        if (bl_monitor(t->pid, &t->ref) != 0) {
            /* Cannot wait for it (no memory): make sure it dies. */
            bl_unlink(t->pid);
            bl_exit_pid(t->pid, &kill);
            continue;
        }
        bl_unlink(t->pid);
        k++;
    }
    term_set set = {e, k};
    qsort(e, k, sizeof *e, ent_pid_cmp);
    bl_msg *m;
    while (bl_recv(&m, match_exit_in, &set, 0, 0) == 0) {
        term_ent key = {.pid = m->from};
        term_ent *t = bsearch(&key, e, k, sizeof key, ent_pid_cmp);
        t->exited = true;
        bl_msg_free(m);
    }
    int64_t now = bl__sup_now_ms();
    for (size_t i = 0; i < k; i++) {
        term_ent *t = &e[i];
        if (t->exited) {
            t->killed = true;
        } else if (t->shutdown == BL_SHUTDOWN_BRUTAL_KILL) {
            bl_exit_pid(t->pid, &kill);
            t->killed = true;
        } else {
            bl_exit_pid(t->pid, &shut);
            if (t->shutdown > 0) t->deadline = now + t->shutdown;
        }
    }
    qsort(e, k, sizeof *e, ent_ref_cmp);
    size_t left = k;
    while (left > 0) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < k; i++)
            if (!e[i].done && !e[i].killed && e[i].deadline < next) next = e[i].deadline;
        int64_t timeout = BL_INFINITY;
        if (next != INT64_MAX) {
            now = bl__sup_now_ms();
            timeout = next > now ? next - now : 0;
        }
        int rc = bl_recv(&m, match_down_in, &set, timeout, 0);
        if (rc == 0) {
            term_ent key = {.ref = m->ref};
            term_ent *t = bsearch(&key, e, k, sizeof key, ent_ref_cmp);
            if (!t->done) {
                t->done = true;
                left--;
            }
            bl_msg_free(m);
        } else if (rc == -ETIMEDOUT) {
            now = bl__sup_now_ms();
            for (size_t i = 0; i < k; i++) {
                term_ent *t = &e[i];
                if (t->done || t->killed || t->deadline > now) continue;
                bl_exit_pid(t->pid, &kill);
                t->killed = true;
            }
        } else {
            break; /* not in a process: nothing to wait with */
        }
    }
    if (e != small) free(e);
}

/*
 * A gen_server call with infinite timeout; a DOWN that -ECONNRESET leaves
 * in *reply is freed.
 */
int bl__sup_call(bl_pid sup, uint32_t tag, const void *req, size_t len, bl_msg **reply)
{
    *reply = NULL;
    int rc = bl_gen_server_call(sup, tag, req, len, reply, BL_INFINITY);
    if (rc != 0) {
        bl_msg_free(*reply);
        *reply = NULL;
    }
    return rc;
}

void bl__sup_reply_with(bl_gs_result *r, int rc, bl_pid pid, int aux)
{
    bl__sup_reply rep = {.rc = rc, .aux = aux, .pid = pid};
    bl_gs_reply(r, &rep, sizeof rep);
}

int bl__sup_call_reply(bl_pid sup, uint32_t tag, const void *req, size_t len, bl__sup_reply *rep)
{
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, req, len, &m);
    if (rc) return rc;
    *rep = (bl__sup_reply){.rc = -EPROTO};
    if (m->len == sizeof *rep) memcpy(rep, m->data, sizeof *rep);
    bl_msg_free(m);
    return 0;
}

int bl__sup_call_spec(bl_pid sup, uint32_t tag, const bl_child_spec *spec, bl__sup_reply *rep)
{
    size_t len = sizeof(bl__sup_wire) + spec->arg_len;
    bl__sup_wire small, *w = spec->arg_len ? malloc(len) : &small;
    if (!w) return -ENOMEM;
    *w = (bl__sup_wire){.start = spec->start,
                        .arg = spec->arg,
                        .arg_len = spec->arg_len,
                        .shutdown = spec->shutdown,
                        .restart = spec->restart,
                        .type = spec->type};
    snprintf(w->id, sizeof w->id, "%s", spec->id ? spec->id : "");
    if (spec->arg_len) memcpy(w + 1, spec->arg, spec->arg_len);
    int rc = bl__sup_call_reply(sup, tag, w, len, rep);
    if (w != &small) free(w);
    return rc;
}

const bl__sup_wire *bl__sup_wire_of(const bl_msg *m)
{
    const bl__sup_wire *w = m->data;
    if (m->len < sizeof *w || m->len != sizeof *w + w->arg_len) return NULL;
    return w;
}

/* ------------------------------------------------------------------------ */
/* Spec checks                                                              */
/* ------------------------------------------------------------------------ */

static const char *const error_text[] = {
    [BL_SUP_ERR_NONE] = "no error",
    [BL_SUP_ERR_MISSING_ID] = "child spec without id",
    [BL_SUP_ERR_ID_TOO_LONG] = "child id too long",
    [BL_SUP_ERR_DUPLICATE_ID] = "duplicate child id",
    [BL_SUP_ERR_MISSING_START] = "child spec without start function",
    [BL_SUP_ERR_BAD_RESTART] = "invalid restart value",
    [BL_SUP_ERR_BAD_SHUTDOWN] = "invalid shutdown value",
    [BL_SUP_ERR_BAD_TYPE] = "invalid child type",
    [BL_SUP_ERR_BAD_ARG] = "child arg NULL with arg_len > 0",
    [BL_SUP_ERR_BAD_OPTION] = "invalid supervisor option",
    [BL_SUP_ERR_START_FAILED] = "child failed to start",
};

const char *bl_sup_error_str(bl_sup_error_kind kind)
{
    if ((unsigned)kind >= sizeof error_text / sizeof *error_text) return "unknown error";
    return error_text[kind];
}

/* Fills *err (if any) and returns its error code. */
static int set_error(bl_sup_error *err, bl_sup_error_kind kind, int index, const char *id,
                     int error)
{
    if (err) {
        err->kind = kind;
        err->index = index;
        err->error = error;
        err->id[0] = 0;
        if (id) snprintf(err->id, sizeof err->id, "%s", id);
    }
    return error;
}

int bl_child_spec_check(const bl_child_spec *s, bool need_id, bl_sup_error *err)
{
    if (!s) return set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    const char *id = s->id;
    if (need_id) {
        if (!id || !*id) return set_error(err, BL_SUP_ERR_MISSING_ID, 0, NULL, -EINVAL);
        if (strnlen(id, BL_SUP_ID_MAX) >= BL_SUP_ID_MAX)
            return set_error(err, BL_SUP_ERR_ID_TOO_LONG, 0, id, -EINVAL);
    } else if (id && strnlen(id, BL_SUP_ID_MAX) >= BL_SUP_ID_MAX) {
        id = NULL; /* ignored anyway; do not report a truncated one */
    }
    bl_sup_error_kind kind = BL_SUP_ERR_NONE;
    if (!s->start)
        kind = BL_SUP_ERR_MISSING_START;
    else if ((unsigned)s->restart > BL_RESTART_TEMPORARY)
        kind = BL_SUP_ERR_BAD_RESTART;
    else if (s->shutdown < BL_SHUTDOWN_BRUTAL_KILL)
        kind = BL_SUP_ERR_BAD_SHUTDOWN;
    else if ((unsigned)s->type > BL_CHILD_SUPERVISOR)
        kind = BL_SUP_ERR_BAD_TYPE;
    else if (!s->arg && s->arg_len > 0)
        kind = BL_SUP_ERR_BAD_ARG;
    if (kind != BL_SUP_ERR_NONE) return set_error(err, kind, 0, id, -EINVAL);
    set_error(err, BL_SUP_ERR_NONE, 0, NULL, 0);
    return 0;
}

/* An id and its position, for the duplicate check. */
typedef struct id_pos {
    const char *id;
    size_t pos;
} id_pos;

static int id_pos_cmp(const void *a, const void *b)
{
    const id_pos *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Checks every spec of a list and that ids are unique.  0, -EINVAL or -ENOMEM.
 */
static int check_specs(const bl_child_spec *children, size_t n, bl_sup_error *err)
{
    if (n > 0 && !children) return set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (n > INT_MAX) return set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        int rc = bl_child_spec_check(&children[i], true, err);
        if (rc) {
            if (err) err->index = (int)i;
            return rc;
        }
    }
    if (n < 2) return 0;
    id_pos *ids = malloc(n * sizeof *ids);
    if (!ids) return -ENOMEM;
    for (size_t i = 0; i < n; i++) ids[i] = (id_pos){children[i].id, i};
    qsort(ids, n, sizeof *ids, id_pos_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(ids[i - 1].id, ids[i].id) == 0)
            rc = set_error(err, BL_SUP_ERR_DUPLICATE_ID, (int)ids[i].pos, ids[i].id, -EINVAL);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The supervisor's state                                                   */
/* ------------------------------------------------------------------------ */

/* One child spec and the child running it. */
typedef struct child {
    char id[BL_SUP_ID_MAX]; /* unique in the supervisor */
    bl_start_fn start;      /* starts it linked to the supervisor */
    void *arg;              /* start's argument */
    bool owns_arg;          /* arg is the supervisor's copy (freed with the spec) */
    bl_restart restart;     /* permanent, transient, temporary */
    bl_child_type type;     /* worker or supervisor */
    bl_child_status status; /* running, undefined, restarting */
    int64_t shutdown;       /* resolved: ms > 0, infinity or brutal_kill */
    bl_pid pid;             /* the child while running, else BL_PID_NONE */
} child;

/* The partition supervisor's additions (partition_supervisor.c). */
typedef struct sup_ext {
    int partitions;             /* > 0: the children are partitions 0..partitions-1 */
    void (*release)(void *ctx); /* run once when the supervisor exits or fails to start */
    void *ctx;                  /* its argument */
} sup_ext;

typedef struct sup {
    bl_sup_strategy strategy;     /* one_for_one, one_for_all, rest_for_one */
    bl__sup_intensity *intensity; /* recent restarts */
    child *v;                     /* the children in start order */
    size_t n, cap;                /* used, allocated */
    sup_ext ext;                  /* partitions, release hook */
} sup;

/* What start hands to init; lives on the starting process's stack. */
typedef struct sup_start {
    const bl_child_spec *children; /* the specs (checked already) */
    size_t n;                      /* how many */
    bl_sup_strategy strategy;      /* resolved options */
    int max_restarts;
    int64_t period_ms;
    sup_ext ext;         /* zero for a plain supervisor */
    bool ext_taken;      /* init took charge of ext.release */
    int result;          /* init's failure: BL_SUP_CHILD_FAILED or -ENOMEM */
    bl_sup_error *error; /* where to describe it, or NULL */
} sup_start;

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
                 .shutdown = bl__sup_shutdown_of(s->shutdown, s->type)};
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
 */
static int start_one(child *c)
{
    bl_pid pid = BL_PID_NONE;
    int rc = c->start(c->arg, &pid);
    c->pid = BL_PID_NONE;
    c->status = BL_CHILD_UNDEFINED;
    if (rc == 0 && pid != BL_PID_NONE) {
        c->pid = pid;
        c->status = BL_CHILD_RUNNING;
        return 0;
    }
    if (rc == 0 || rc == BL_GS_IGNORED) return BL_GS_IGNORED;
    return rc < 0 ? rc : -EPROTO;
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
        int rc = start_one(c);
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
        bl_reason shutdown = BL_REASON(BL_SHUTDOWN);
        bl_gs_stop(r, &shutdown);
        return;
    }
    size_t failed = SIZE_MAX;
    switch (s->strategy) {
    case BL_ONE_FOR_ONE:
        if (start_one(&s->v[i]) < 0) {
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

/* A linked process exited: if it is a child, apply its restart rule. */
static void child_exited(sup *s, bl_pid pid, const bl_reason *reason, bl_gs_result *r)
{
    long i = find_pid(s, pid);
    if (i < 0) return; /* not a child (the parent's EXIT is the gen_server's) */
    child *c = &s->v[i];
    c->pid = BL_PID_NONE;
    c->status = BL_CHILD_UNDEFINED;
    if (c->restart == BL_RESTART_TEMPORARY) {
        sup_remove(s, (size_t)i);
        return;
    }
    if (c->restart == BL_RESTART_TRANSIENT && bl_reason_is_clean(reason)) return;
    restart(s, (size_t)i, r);
}

/* ------------------------------------------------------------------------ */
/* gen_server callbacks                                                     */
/* ------------------------------------------------------------------------ */

static void sup_init(void *arg, void **state, bl_gs_result *r)
{
    sup_start *st = arg;
    bl_trap_exit(true);
    sup *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->ext = st->ext; /* from here on, sup_free releases it */
    st->ext_taken = true;
    s->strategy = st->strategy;
    s->intensity = bl__sup_intensity_new(st->max_restarts, st->period_ms);
    if (!s->intensity) goto nomem;
    for (size_t i = 0; i < st->n; i++) {
        long k = sup_append(s, &st->children[i], NULL);
        if (k < 0) goto nomem;
        int rc = start_one(&s->v[k]);
        if (rc < 0) {
            set_error(st->error, BL_SUP_ERR_START_FAILED, (int)i, s->v[k].id, rc);
            sup_remove(s, (size_t)k);
            st->result = BL_SUP_CHILD_FAILED;
            goto fail;
        }
        if (rc == BL_GS_IGNORED && s->v[k].restart == BL_RESTART_TEMPORARY)
            sup_remove(s, (size_t)k);
    }
    *state = s;
    return;
nomem:
    st->result = -ENOMEM;
fail:
    if (s) terminate_from(s, 0);
    sup_free(s);
    *state = NULL;
    /* Exit normally: the error travels back as a value, not along the link. */
    bl_gs_stop(r, NULL);
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
                          .arg = w->arg,
                          .arg_len = w->arg_len,
                          .restart = w->restart,
                          .shutdown = w->shutdown,
                          .type = w->type};
    long i = find_id(s, w->id);
    if (i >= 0) {
        if (s->v[i].status == BL_CHILD_RUNNING) {
            bl__sup_reply_with(r, BL_SUP_ALREADY_STARTED, s->v[i].pid, 0);
            return;
        }
        {
            bl__sup_reply_with(r, BL_SUP_ALREADY_PRESENT, 0, 0);
            return;
        }
    }
    i = sup_append(s, &spec, w + 1);
    if (i < 0) {
        bl__sup_reply_with(r, (int)i, 0, 0);
        return;
    }
    int rc = start_one(&s->v[i]);
    bl_pid pid = s->v[i].pid;
    if (rc < 0 || (rc == BL_GS_IGNORED && s->v[i].restart == BL_RESTART_TEMPORARY))
        sup_remove(s, (size_t)i);
    bl__sup_reply_with(r, rc, pid, 0);
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
        rc = start_one(c);
        bl__sup_reply_with(r, rc, c->pid, 0);
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

/* The child of partition u mod partitions. */
static void call_route(sup *s, const bl_msg *m, bl_gs_result *r)
{
    uint64_t u;
    if (s->ext.partitions <= 0 || m->len != sizeof u) {
        bl__sup_reply_with(r, -EINVAL, 0, 0);
        return;
    }
    memcpy(&u, m->data, sizeof u);
    int p = (int)(u % (uint64_t)s->ext.partitions);
    char id[16];
    snprintf(id, sizeof id, "%d", p);
    /* Partition p is child p unless specs were deleted. */
    long i = (size_t)p < s->n && strcmp(s->v[p].id, id) == 0 ? p : find_id(s, id);
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
        bl__sup_reply_with(r, s->ext.partitions > 0 ? s->ext.partitions : -EINVAL, 0, 0);
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
                    .strategy = o.strategy,
                    .ext = {partitions, release, ctx},
                    .error = o.error};
    set_error(o.error, BL_SUP_ERR_NONE, 0, NULL, 0);
    int rc = 0;
    if ((unsigned)o.strategy > BL_REST_FOR_ONE ||
        bl__sup_intensity_opts(o.max_restarts, o.max_seconds, &st.max_restarts, &st.period_ms))
        rc = set_error(o.error, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (!rc && !pid) rc = set_error(o.error, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (!rc) rc = check_specs(children, n, o.error);
    if (!rc) {
        bl_gen_server_opts g = {.name = o.name};
        bl_pid p = BL_PID_NONE;
        rc = bl_gen_server_start_link(&p, &sup_callbacks, &st, &g);
        if (rc == 0 || rc == -EEXIST) *pid = p;
        if (rc != 0 && st.result != 0) rc = st.result;
        if (rc == BL_GS_IGNORED) rc = -ECHILD; /* init never ignores */
    }
    if (!st.ext_taken && release) release(ctx);
    return rc;
}

int bl_supervisor_start_link(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts)
{
    return bl__supervisor_start_ext(pid, children, n, opts, 0, NULL, NULL);
}

int bl_supervisor_start_fn(void *arg, bl_pid *pid)
{
    const bl_sup_init *in = arg;
    if (!in) return -EINVAL;
    bl_sup_opts o = in->opts;
    o.error = NULL;
    return bl__supervisor_start_ext(pid, in->children, in->nchildren, &o, 0, NULL, NULL);
}

int bl_supervisor_start_child(bl_pid sup, const bl_child_spec *spec, bl_pid *pid)
{
    if (pid) *pid = BL_PID_NONE;
    int rc = bl_child_spec_check(spec, true, NULL);
    if (rc) return rc;
    bl__sup_reply rep;
    rc = bl__sup_call_spec(sup, SUP_START_CHILD, spec, &rep);
    if (rc) return rc;
    if (pid) *pid = rep.pid;
    return rep.rc;
}

/* A call naming a child by id; *pid gets the reply's pid when asked. */
static int call_id(bl_pid sup, uint32_t tag, const char *id, bl_pid *pid)
{
    if (pid) *pid = BL_PID_NONE;
    if (!id) return -EINVAL;
    size_t len = strnlen(id, BL_SUP_ID_MAX);
    if (len >= BL_SUP_ID_MAX) return BL_SUP_NOT_FOUND; /* no child has such an id */
    bl__sup_reply rep;
    int rc = bl__sup_call_reply(sup, tag, id, len + 1, &rep);
    if (rc) return rc;
    if (pid) *pid = rep.pid;
    return rep.rc;
}

int bl_supervisor_terminate_child(bl_pid sup, const char *id)
{
    return call_id(sup, SUP_TERMINATE_CHILD, id, NULL);
}

int bl_supervisor_restart_child(bl_pid sup, const char *id, bl_pid *pid)
{
    return call_id(sup, SUP_RESTART_CHILD, id, pid);
}

int bl_supervisor_delete_child(bl_pid sup, const char *id)
{
    return call_id(sup, SUP_DELETE_CHILD, id, NULL);
}

int bl_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max)
{
    return bl__sup_which(sup, SUP_WHICH_CHILDREN, out, max);
}

int bl_supervisor_count_children(bl_pid sup, bl_sup_counts *out)
{
    return bl__sup_count(sup, SUP_COUNT_CHILDREN, out);
}

int bl__sup_which(bl_pid sup, uint32_t tag, bl_sup_child *out, size_t max)
{
    if (!out && max > 0) return -EINVAL;
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, NULL, 0, &m);
    if (rc) return rc;
    if (m->len % sizeof(bl_sup_child) != 0) {
        /* Only an error code has another size. */
        int32_t err = -EPROTO;
        if (m->len == sizeof err) memcpy(&err, m->data, sizeof err);
        bl_msg_free(m);
        return err;
    }
    size_t n = m->len / sizeof(bl_sup_child);
    if (out && max > 0) memcpy(out, m->data, (n < max ? n : max) * sizeof *out);
    bl_msg_free(m);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int bl__sup_count(bl_pid sup, uint32_t tag, bl_sup_counts *out)
{
    if (!out) return -EINVAL;
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, NULL, 0, &m);
    if (rc) return rc;
    rc = -EPROTO;
    if (m->len == sizeof *out) {
        memcpy(out, m->data, sizeof *out);
        rc = 0;
    }
    bl_msg_free(m);
    return rc;
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
