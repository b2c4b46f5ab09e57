/*
 * otp/gen_server/server.c - the generic server on a handler process: its
 * callbacks and their results, the loop, the sys messages, and start.
 * The wire format is in gs_int.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beamline.h"
#include "beamline/gen_server.h"
#include "otp/gen_server/gs_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

#define NO_TIMEOUT  (-2) /* bl_gs_result.timeout: none asked for */
#define BAD_TIMEOUT (-3) /* a negative timeout other than BL_INFINITY */

enum { ACT_NOREPLY = 0, ACT_IGNORE, ACT_STOP };

/* Which callback a result came from: what is valid depends on it. */
enum { CB_INIT, CB_CALL, CB_CAST, CB_INFO, CB_CONTINUE };
static const char *const cb_name[] = {"init", "handle_call", "handle_cast", "handle_info",
                                      "handle_continue"};

typedef struct ack {
    int status;
    bl_pid holder;
} ack;

/* One server.  Allocated by the starter, owned by the server from spawn on,
 * freed by release after the process is gone. */
typedef struct gs_names gs_names;

/* Tracing, allocated when first turned on. */
typedef struct gs_trace {
    bl_trace_fn fn;
    void *arg;
} gs_trace;

/* Kept small: an idle server costs its PCB plus this (idle_genserver_bytes). */
typedef struct gs {
    const bl_gen_server *cb;
    void *state; /* until init has run: init's argument */
    bl_pid self, parent;
    /* Until init has answered the starter, what the answer needs (no
     * allocation of its own: a malloc and a free per start); after, the
     * pending timeout, ref 0 = none (ack_starter clears it). */
    union {
        struct {
            bl_pid starter;
            bl_ref ref; /* the answer's reference */
        } boot;
        struct {
            bl_ref ref;   /* the timeout message's reference, 0 = none */
            bl_ref timer; /* its timer */
        } tmo;
    };
    gs_names *names; /* the name to register, until init has answered; NULL: none */
    gs_trace *tr;    /* NULL until traced */
    bool trace, suspended;
    bool running; /* init returned ok: release gets the state */
} gs;

/* A start's name, which only init needs; freed once it has run. */
struct gs_names {
    const bl_via_ops *via;
    void *via_arg;
    size_t key_len;
    char *local; /* copies of the name, after the struct */
    void *key;
};

/* ---- names ---- */

bl_pid bl_name_whereis(const bl_name *name)
{
    if (!name) return BL_PID_NONE;
    if (name->local) return bl_whereis(name->local);
    if (name->via && name->via->whereis_name)
        return name->via->whereis_name(name->via_arg, name->key, name->key_len);
    return BL_PID_NONE;
}

static int name_check(const bl_name *n)
{
    if (!n || (!n->local && !n->via)) return 0;
    if (n->local && n->via) return -EINVAL;
    if (n->local) {
        size_t len = strlen(n->local);
        if (!len) return -EINVAL;
        return len > MAX_NAME ? -ENAMETOOLONG : 0;
    }
    if (!n->via->register_name || !n->via->whereis_name || (n->key_len && !n->key)) return -EINVAL;
    return 0;
}

/* ---- tracing ---- */

__attribute__((format(printf, 2, 3))) static void trace(gs *s, const char *fmt, ...)
{
    char line[256], me[32];
    bl_pid_format(s->self, me, sizeof me);
    int n = snprintf(line, sizeof line, "*DBG* %s ", me);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->tr && s->tr->fn) {
        s->tr->fn(s->self, line, s->tr->arg);
        return;
    }
    size_t len = strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* a lost trace line must not stop the server */
}

/* ---- results ---- */

static void result_init(bl_gs_result *r, gs *s)
{
    *r = (bl_gs_result){.timeout = NO_TIMEOUT, .priv = s};
}

static void reason_drop(bl_gs_result *r)
{
    free((void *)r->reason.detail);
    r->reason = BL_REASON(BL_NORMAL);
}

int bl_gs_reply(bl_gs_result *r, const void *data, size_t len)
{
    if (!r || !r->from.pid || (len && !data)) return -EINVAL;
    if (r->replied) return -EALREADY;
    /* To the caller's alias (a call's or a request's): dropped if it has given up. */
    int rc = bl__send_reply(r->from.pid, TAG_REPLY, r->from.ref, data, len);
    r->replied = true;
    gs *s = r->priv;
    if (s && s->trace) {
        char to[32];
        bl_pid_format(r->from.pid, to, sizeof to);
        trace(s, "sent reply (%zu bytes) to %s", len, to);
    }
    return rc;
}

void bl_gs_stop(bl_gs_result *r, const bl_reason *reason)
{
    if (!r) return;
    reason_drop(r);
    r->action = ACT_STOP;
    if (!reason) return;
    r->reason = *reason;
    r->reason.detail = NULL;
    r->reason.detail_len = 0;
    void *d;
    if (reason->detail_len && reason->detail && (d = malloc(reason->detail_len))) {
        memcpy(d, reason->detail, reason->detail_len);
        r->reason.detail = d;
        r->reason.detail_len = reason->detail_len;
    }
}

void bl_gs_ignore(bl_gs_result *r)
{
    if (r) r->action = ACT_IGNORE;
}

int bl_gs_continue(bl_gs_result *r, const void *arg, size_t len)
{
    if (!r || (len && !arg)) return -EINVAL;
    void *c = malloc(len ? len : 1);
    if (!c) return -ENOMEM;
    if (len) memcpy(c, arg, len);
    free(r->cont);
    r->cont = c;
    r->cont_len = len;
    r->has_cont = true;
    return 0;
}

void bl_gs_timeout(bl_gs_result *r, int64_t ms)
{
    if (r) r->timeout = ms >= 0 || ms == BL_INFINITY ? ms : BAD_TIMEOUT;
}

void bl_gs_hibernate(bl_gs_result *r)
{
    if (r) r->hibernate = true;
}

/* ---- the server loop ---- */

static void ack_starter(gs *s, int status, bl_pid holder)
{
    ack a = {.status = status, .holder = holder};
    /* Started: the starter's monitor ends with the ack (no demonitor
     * signal).  Any other outcome ends the server, and the starter waits
     * for its DOWN. */
    if (status == 0)
        bl__send_demon(s->boot.starter, TAG_ACK, s->boot.ref, &a, sizeof a, 0);
    else
        bl__send_ex(s->boot.starter, TAG_ACK, s->boot.ref, &a, sizeof a, 0);
    s->tmo.ref = s->tmo.timer = 0;
    free(s->names);
    s->names = NULL;
}

/* Ends the server: terminate (unless init is stopping), then exit with the reason. */
static int stop_with(gs *s, bl_gs_result *r, bool terminate)
{
    free(r->cont);
    r->cont = NULL;
    if (s->tmo.ref) {
        bl_cancel_timer(s->tmo.timer);
        s->tmo.ref = 0;
    }
    if (terminate && s->cb->terminate) s->cb->terminate(&s->state, &r->reason);
    int rc = bl_handler_exit(&r->reason);
    reason_drop(r);
    return rc;
}

static void stop_badcall(bl_gs_result *r)
{
    bl_reason why = {.kind = BL_CUSTOM, .code = BL_GS_EBADCALL};
    bl_gs_stop(r, &why);
}

/*
 * Why r is not a result callback cb may give (Erlang's bad_return_value),
 * or NULL.  Valid: noreply with at most one of timeout, hibernate and
 * continue (a reply too, from handle_call); stop with a valid reason and
 * none of them; ignore from init alone.  bl_gs_reply outside handle_call
 * is refused at once (-EINVAL), so it never makes a result.
 */
/* {:noreply, state} (or a reply already sent) and nothing more: the common case. */
static bool result_plain(const bl_gs_result *r)
{
    return r->action == ACT_NOREPLY && !r->has_cont && !r->hibernate && r->timeout == NO_TIMEOUT;
}

static const char *result_fault(const bl_gs_result *r, int cb)
{
    if (result_plain(r)) return NULL;
    int mods = r->has_cont + r->hibernate + (r->timeout != NO_TIMEOUT);
    if (r->timeout == BAD_TIMEOUT) return "a negative timeout";
    switch (r->action) {
    case ACT_NOREPLY:
        return mods > 1 ? "more than one of timeout, hibernate and continue" : NULL;
    case ACT_IGNORE:
        if (cb != CB_INIT) return "ignore, which only init may give";
        return mods ? "ignore with a timeout, hibernate or continue" : NULL;
    case ACT_STOP: {
        const bl_reason *w = &r->reason;
        if (mods) return "stop with a timeout, hibernate or continue";
        if ((unsigned)w->kind > BL_NOCONNECTION) return "stop with a bad reason";
        return NULL;
    }
    default:
        return "an unknown action";
    }
}

/* Replaces r by a stop with reason bad_return_value naming cb and the fault. */
static void make_bad_return(gs *s, bl_gs_result *r, int cb, const char *fault)
{
    char text[96];
    int n = snprintf(text, sizeof text, "%s: %s", cb_name[cb], fault);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof text) n = sizeof text - 1;
    if (s->trace) trace(s, "bad return value from %s: %s", cb_name[cb], fault);
    free(r->cont);
    r->cont = NULL;
    r->has_cont = false;
    r->hibernate = false;
    r->timeout = NO_TIMEOUT;
    bl_reason why = {
        .kind = BL_CUSTOM, .code = BL_GS_EBADRETURN, .detail = text, .detail_len = (size_t)n};
    bl_gs_stop(r, &why);
}

/* Applies a callback's result: continues, then stop or a timeout. */
static int after(gs *s, bl_gs_result *r)
{
    for (;;) {
        if (r->action == ACT_STOP) return stop_with(s, r, true);
        if (!r->has_cont) break;
        void *c = r->cont;
        size_t n = r->cont_len;
        result_init(r, s);
        if (s->cb->handle_continue) {
            s->cb->handle_continue(&s->state, c, n, r);
            const char *bad = result_fault(r, CB_CONTINUE);
            if (bad) make_bad_return(s, r, CB_CONTINUE, bad);
        } else {
            stop_badcall(r);
        }
        free(c);
    }
    if (r->timeout >= 0) {
        s->tmo.ref = bl_make_ref();
        if (bl__send_after(s->self, BL_TAG_GS_TIMEOUT, s->tmo.ref, NULL, 0, r->timeout,
                           &s->tmo.timer) != 0)
            s->tmo.ref = 0; /* out of timers: no timeout rather than a crash */
    }
    reason_drop(r);
    return 0;
}

static int register_name(gs *s, bl_pid *holder)
{
    gs_names *st = s->names;
    *holder = BL_PID_NONE;
    int rc = 0;
    if (!st) return 0;
    if (st->local) {
        rc = bl_register(st->local, s->self);
        if (rc == -EEXIST) *holder = bl_whereis(st->local);
    } else if (st->via) {
        rc = st->via->register_name(st->via_arg, st->key, st->key_len);
        if (rc == -EEXIST) *holder = st->via->whereis_name(st->via_arg, st->key, st->key_len);
    }
    return rc;
}

static int gs_init(void *arg, void **state)
{
    gs *s = arg;
    *state = s;
    bl__proc_kind_set(BL_KIND_GEN_SERVER); /* a supervisor's init says more */
    s->self = bl_self();
    if (!s->parent) s->parent = s->self;
    bl_pid holder;
    int rc = register_name(s, &holder);
    if (rc) {
        ack_starter(s, rc, holder);
        return BL_STOP;
    }
    bl_gs_result r;
    result_init(&r, s);
    if (s->cb->init) {
        void *arg = s->state;
        s->state = NULL;
        s->cb->init(arg, &s->state, &r);
    }
    const char *bad = result_fault(&r, CB_INIT);
    if (bad) make_bad_return(s, &r, CB_INIT, bad);
    if (r.action == ACT_IGNORE) {
        free(r.cont);
        reason_drop(&r);
        gs_names *st = s->names;
        if (st && st->via && st->via->unregister_name)
            st->via->unregister_name(st->via_arg, st->key, st->key_len);
        ack_starter(s, BL_GS_IGNORED, 0);
        return BL_STOP;
    }
    if (r.action == ACT_STOP) {
        ack_starter(s, -ECHILD, 0);
        return stop_with(s, &r, false);
    }
    s->running = true;
    ack_starter(s, 0, 0);
    return after(s, &r);
}

static bool match_sys(const bl_msg *m, void *arg)
{
    (void)arg;
    return m->tag == TAG_SYS;
}

static void sys_reply(const bl_msg *m, const void *data, size_t len)
{
    bl_gs_from f = {m->from, m->ref};
    bl_gen_server_reply(f, data, len);
}

static int sys_one(gs *s, const bl_msg *m)
{
    if (m->len < sizeof(sys_req)) return 0;
    const sys_req *q = m->data;
    switch (q->op) {
    case SYS_GET_STATE:
        sys_reply(m, &s->state, sizeof s->state);
        return 0;
    case SYS_REPLACE:
        if (q->fn) q->fn(&s->state, q->arg);
        sys_reply(m, &s->state, sizeof s->state);
        return 0;
    case SYS_STATUS: {
        size_t len = q->buflen > 65536 ? 65536 : q->buflen;
        char *buf = malloc(len + 1);
        if (!buf) {
            sys_reply(m, "", 1);
            return 0;
        }
        char me[32];
        bl_pid_format(s->self, me, sizeof me);
        int n = snprintf(buf, len + 1, "gen_server %s %s: ", me,
                         s->suspended ? "suspended" : "running");
        if (n < 0) n = 0;
        if ((size_t)n > len) n = (int)len;
        if (s->cb->format_status)
            s->cb->format_status(s->state, buf + n, len + 1 - (size_t)n);
        else
            snprintf(buf + n, len + 1 - (size_t)n, "state %p", s->state);
        buf[len] = 0;
        sys_reply(m, buf, strlen(buf) + 1);
        free(buf);
        return 0;
    }
    case SYS_TRACE:
        if (q->on && !s->tr) s->tr = calloc(1, sizeof *s->tr);
        if (s->tr) *s->tr = (gs_trace){q->tfn, q->arg};
        /* Out of memory for the trace: trace to stderr. */
        s->trace = q->on;
        sys_reply(m, NULL, 0);
        return 0;
    case SYS_SUSPEND:
        s->suspended = true;
        sys_reply(m, NULL, 0);
        return 0;
    case SYS_RESUME:
        s->suspended = false;
        sys_reply(m, NULL, 0);
        return 0;
    case SYS_STOP: {
        bl_gs_result r;
        result_init(&r, s);
        bl_reason why = q->reason;
        why.detail = why.detail_len ? (const void *)(q + 1) : NULL;
        if (m->len < sizeof *q + why.detail_len) why = BL_REASON(BL_NORMAL);
        bl_gs_stop(&r, &why);
        return stop_with(s, &r, true);
    }
    default:
        return 0;
    }
}

/* A sys message; a suspend holds the server (and its stack) here until resumed. */
static int sys_msg(gs *s, const bl_msg *m)
{
    int rc = sys_one(s, m);
    while (!rc && s->suspended) {
        bl_msg *n = NULL;
        if (bl_recv(&n, match_sys, NULL, BL_INFINITY, 0) != 0) break;
        rc = sys_one(s, n);
        bl_msg_free(n);
    }
    return rc;
}

static void view(const bl_msg *m, bl_msg *v)
{
    const hdr *h = m->data;
    /* Field by field, not *v = *m: the queue has just stored m->next, and a
     * wide load across it and m->from cannot take that store's value
     * (store-to-load forwarding), a stall that was half this function's
     * time in a run of casts. */
    *v = (bl_msg){.from = m->from,
                  .ref = m->ref,
                  .tag = h->tag,
                  .len = m->len - sizeof(hdr),
                  .data = (char *)m->data + sizeof(hdr)};
}

static int gs_handle(void *state, bl_msg *m)
{
    gs *s = state;
    const bl_gen_server *cb = s->cb;
    if (m->tag == BL_TAG_GS_TIMEOUT) {
        if (!s->tmo.ref || m->ref != s->tmo.ref) return 0; /* cancelled meanwhile */
        s->tmo.ref = 0;
    } else if (s->tmo.ref && m->tag != TAG_SYS) {
        /* Any message ends the wait: the timeout no longer applies. */
        bl_cancel_timer(s->tmo.timer);
        s->tmo.ref = 0;
    }
    if (m->tag == TAG_SYS) return sys_msg(s, m);

    bl_gs_result r;
    result_init(&r, s);
    int kind = -1; /* the user callback that ran, if any */
    char from[32];
    if (s->trace) bl_pid_format(m->from, from, sizeof from);
    switch (m->tag) {
    case TAG_CALL:
    case TAG_CAST: {
        if (m->len < sizeof(hdr)) return 0; /* not ours: cannot happen through the API */
        bl_msg v;
        view(m, &v);
        bool call = m->tag == TAG_CALL;
        if (s->trace)
            trace(s, "got %s tag=%u (%zu bytes) from %s", call ? "call" : "cast", v.tag, v.len,
                  from);
        if (call) {
            r.from = (bl_gs_from){m->from, m->ref};
            if (!cb->handle_call) {
                stop_badcall(&r);
                break;
            }
            cb->handle_call(&s->state, &v, &r);
            kind = CB_CALL;
        } else if (cb->handle_cast) {
            cb->handle_cast(&s->state, &v, &r);
            kind = CB_CAST;
        } else {
            stop_badcall(&r);
        }
        break;
    }
    case BL_TAG_EXIT:
        if (m->from == s->parent && s->parent != s->self) {
            /* The parent is going: follow it, running terminate first. */
            bl_reason why;
            if (bl_msg_reason(m, &why) != 0) why = BL_REASON(BL_NORMAL);
            if (s->trace) trace(s, "got exit from parent %s", from);
            bl_gs_stop(&r, &why);
            break;
        }
        /* fall through */
    default:
        if (s->trace) trace(s, "got info tag=%#x (%zu bytes) from %s", m->tag, m->len, from);
        if (cb->handle_info) {
            cb->handle_info(&s->state, m, &r);
            kind = CB_INFO;
        }
        break;
    }
    /* The common case: nothing to check and nothing to do after. */
    if (result_plain(&r) && !r.reason.detail) return 0;
    if (kind >= 0) {
        const char *bad = result_fault(&r, kind);
        if (bad) make_bad_return(s, &r, kind, bad);
    }
    return after(s, &r);
}

static void gs_release(void *state)
{
    gs *s = state;
    if (s->running && s->cb->release) s->cb->release(s->state);
    free(s->names);
    free(s->tr);
    free(s);
}

static const bl_handler gs_handler = {
    .init = gs_init,
    .handle = gs_handle,
    .release = gs_release,
};

/* ---- starting ---- */

static bl_msg *wait_down(bl_ref ref)
{
    bl_msg *m = NULL;
    bl_recv(&m, bl__otp_match_down, &ref, BL_INFINITY, 0);
    return m;
}

/*
 * After a failed start_link, once the child's DOWN is in: takes its EXIT out
 * of a trapping caller's mailbox, as proc_lib:start_link does.  A dying
 * process signals its links before its monitors, so the EXIT is already
 * queued when the DOWN has arrived.
 */
static void flush_exit(bl_pid child)
{
    bl_msg *m = NULL;
    while (bl_recv(&m, bl__otp_match_exit_from, &child, 0, 0) == 0) bl_msg_free(m);
}

static int start(bl_pid *pid, const bl_gen_server *cb, void *arg, const bl_gen_server_opts *o,
                 bool link)
{
    static const bl_gen_server_opts none;
    if (!o) o = &none;
    if (pid) *pid = BL_PID_NONE;
    if (o->error) *o->error = NULL;
    bl_pid me = bl_self();
    if (!me) return -EPERM;
    if (!cb || o->timeout < 0) return -EINVAL;
    int rc = name_check(o->name);
    if (rc) return rc;
    /* The mark first: it drains the mailbox, where a kill already queued
     * ends the caller at once, and nothing allocated below may be lost so. */
    bl_recv_mark();

    const bl_name *n = o->name;
    size_t local_len = n && n->local ? strlen(n->local) + 1 : 0;
    size_t key_len = n && n->via ? n->key_len : 0;
    /* malloc, not calloc: glibc's calloc goes past its per-thread cache
     * (it showed as _int_malloc in profiles of start and stop), and both
     * are initialised whole right here. */
    gs *s = malloc(sizeof *s);
    bool named = n && (n->local || n->via);
    gs_names *st = named ? malloc(sizeof *st + local_len + key_len) : NULL;
    if (!s || (named && !st)) {
        free(s);
        free(st);
        return -ENOMEM;
    }
    bl__otp_waitref w = {bl_make_ref(), TAG_ACK};
    *s = (gs){.cb = cb,
              .state = arg,
              .boot = {.starter = me, .ref = w.ref},
              .names = st,
              .parent = link ? me : BL_PID_NONE,
              .trace = o->trace};
    if (st) *st = (gs_names){0};
    if (local_len) {
        st->local = (char *)(st + 1);
        memcpy(st->local, n->local, local_len);
    } else if (n && n->via) {
        st->via = n->via;
        st->via_arg = n->via_arg;
        st->key_len = key_len;
        st->key = (char *)(st + 1);
        if (key_len) memcpy(st->key, n->key, key_len);
    }
    bl_pid child;
    /* From here on s belongs to the server (its release frees it). */
    rc = bl__spawn_handler_monitor(&child, &gs_handler, s, &o->spawn, link, w.ref);
    if (rc) {
        free(st);
        free(s);
        return rc;
    }
    bl_msg *m = NULL;
    rc = bl_recv(&m, bl__otp_match_answer, &w, o->timeout ? o->timeout : BL_INFINITY,
                 BL_RECV_MARKED);
    if (rc) {
        /* init took too long: kill it, as proc_lib does. */
        if (link) bl_unlink(child);
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(child, &kill);
        bl_msg_free(wait_down(w.ref));
        while (bl_recv(&m, bl__otp_match_answer, &w, 0, 0) == 0) bl_msg_free(m);
        /* It may have died by itself before the unlink. */
        if (link) flush_exit(child);
        return -ETIMEDOUT;
    }
    if (m->tag == BL_TAG_DOWN) {
        if (link) flush_exit(child);
        if (o->error)
            *o->error = m;
        else
            bl_msg_free(m);
        return -ECHILD;
    }
    ack a;
    memcpy(&a, m->data, sizeof a);
    if (a.status == 0) {
        bl__call_done(w.ref, m); /* the ack ended the monitor */
        bl_msg_free(m);
        if (pid) *pid = child;
        return 0;
    }
    bl_msg_free(m);
    /* Every other outcome ends the server: return once it is gone. */
    m = wait_down(w.ref);
    if (link) flush_exit(child);
    if (a.status == -ECHILD && o->error) {
        *o->error = m;
        m = NULL;
    }
    bl_msg_free(m);
    if (a.status == -EEXIST && pid) *pid = a.holder;
    return a.status;
}

int bl_gen_server_start(bl_pid *pid, const bl_gen_server *cb, void *arg,
                        const bl_gen_server_opts *opts)
{
    return start(pid, cb, arg, opts, false);
}

int bl_gen_server_start_link(bl_pid *pid, const bl_gen_server *cb, void *arg,
                             const bl_gen_server_opts *opts)
{
    return start(pid, cb, arg, opts, true);
}
