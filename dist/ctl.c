/*
 * dist/ctl.c - links, monitors and exit signals across one connection.
 *
 * Local processes keep their links and monitors in their own lists
 * (proc/signal.c), remote pids among them; what crosses the wire is kept
 * here too, by the connection process that carries it, so that when the
 * connection goes down it can tell every local end: an exit signal or a
 * DOWN with reason noconnection, as Erlang's net_kernel does.  The lists
 * belong to the connection process alone (no lock), are searched linearly,
 * and die with the connection: links and monitors never outlive the
 * connection they were made over.
 *
 * A signal from a local process to a remote pid comes through proc/'s
 * remote-signal hook (bl__dist_remote_signal) as one BL__TAG_DIST_OUT
 * message to the connection process, after the messages the same process
 * sent before, so Erlang's per-pair ordering holds.  A monitor's reference
 * on the wire is made from the local one (ref_out), so a DOWN or a call's
 * reply names its local monitor by itself; a remote process's monitor of a
 * local one gets a local reference, kept beside the Erlang one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "proc/otp.h"
#include "proc/proc.h"

/* n[0] of the references this node makes for monitors and calls (18 bits). */
#define REF_MAGIC 0x2b1cu

/* ---- references ---- */

void bl__dref_out(bl_ref r, erlang_ref *e)
{
    memset(e, 0, sizeof *e);
    strcpy(e->node, bl__dist.name);
    e->len = 3;
    e->n[0] = REF_MAGIC;
    e->n[1] = (unsigned)r;
    e->n[2] = (unsigned)(r >> 32);
    e->creation = bl__dist.creation;
}

bl_ref bl__dref_in(const erlang_ref *e)
{
    if (e->len != 3 || e->n[0] != REF_MAGIC || e->creation != bl__dist.creation ||
        strcmp(e->node, bl__dist.name) != 0)
        return BL_REF_NONE;
    return (bl_ref)e->n[1] | (bl_ref)e->n[2] << 32;
}

static bool dref_eq(const bl__dref *a, const erlang_ref *e)
{
    if (a->len != (uint32_t)e->len || a->creation != e->creation) return false;
    for (int i = 0; i < e->len && i < 5; i++)
        if (a->n[i] != e->n[i]) return false;
    return true;
}

static void dref_keep(bl__dref *a, const erlang_ref *e)
{
    memset(a, 0, sizeof *a);
    a->len = (uint32_t)(e->len > 5 ? 5 : e->len);
    for (uint32_t i = 0; i < a->len; i++) a->n[i] = e->n[i];
    a->creation = e->creation;
}

/* The remote ref of an incoming monitor back as an erlang_ref of node `node`. */
static void dref_back(const bl__dref *a, const char *node, erlang_ref *e)
{
    memset(e, 0, sizeof *e);
    strcpy(e->node, node);
    e->len = (int)a->len;
    memcpy(e->n, a->n, sizeof a->n);
    e->creation = a->creation;
}

/* ---- the lists ---- */

static bool grow(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap) return true;
    uint32_t nc = *cap ? *cap * 2 : 8;
    void *a = realloc(*arr, nc * elem);
    if (!a) return false;
    *arr = a;
    *cap = nc;
    return true;
}

static int link_find(const bl__dctl *t, bl_pid local, bl_pid remote)
{
    for (uint32_t i = 0; i < t->nlinks; i++)
        if (t->links[i].local == local && t->links[i].remote == remote) return (int)i;
    return -1;
}

static bool link_add(bl__dctl *t, bl_pid local, bl_pid remote)
{
    if (link_find(t, local, remote) >= 0) return true;
    if (!grow((void **)&t->links, &t->caplinks, t->nlinks, sizeof *t->links)) return false;
    t->links[t->nlinks++] = (bl__dlink){local, remote};
    return true;
}

static void link_del(bl__dctl *t, bl_pid local, bl_pid remote)
{
    int i = link_find(t, local, remote);
    if (i >= 0) t->links[i] = t->links[--t->nlinks];
}

static bl__dmon *mon_add(bl__dctl *t)
{
    if (!grow((void **)&t->mons, &t->capmons, t->nmons, sizeof *t->mons)) return NULL;
    bl__dmon *m = &t->mons[t->nmons++];
    memset(m, 0, sizeof *m);
    return m;
}

static void mon_del(bl__dctl *t, bl__dmon *m)
{
    free(m->tag);
    *m = t->mons[--t->nmons];
}

/* A monitor by local ref and direction. */
static bl__dmon *mon_by_ref(bl__dctl *t, bl_ref ref, bool out)
{
    for (uint32_t i = 0; i < t->nmons; i++)
        if (t->mons[i].ref == ref && t->mons[i].out == out) return &t->mons[i];
    return NULL;
}

bl__dmon *bl__dctl_in_mon(bl__dctl *t, bl_pid remote, const erlang_ref *e)
{
    for (uint32_t i = 0; i < t->nmons; i++) {
        bl__dmon *m = &t->mons[i];
        if (!m->out && m->remote == remote && dref_eq(&m->eref, e)) return m;
    }
    return NULL;
}

bl__dmon *bl__dctl_call(bl__dctl *t, bl_ref ref)
{
    return mon_by_ref(t, ref, false);
}

void bl__dctl_done(bl__dctl *t, bl__dmon *m)
{
    mon_del(t, m);
}

bl__dmon *bl__dctl_new_in(bl__dctl *t)
{
    return mon_add(t);
}

void bl__dctl_close(bl__dctl *t)
{
    bl_reason nc = BL_REASON(BL_NOCONNECTION);
    for (uint32_t i = 0; i < t->nlinks; i++)
        bl__signal_send(t->links[i].local, t->links[i].remote, BL_SIG_EXIT_LINK, BL_REF_NONE, &nc);
    for (uint32_t i = 0; i < t->nmons; i++) {
        bl__dmon *m = &t->mons[i];
        if (m->out)
            bl__signal_send(m->local, m->remote, BL_SIG_DOWN, m->ref, &nc);
        else if (m->monitor)
            bl__signal_send(m->local, m->remote, BL_SIG_DEMONITOR, m->ref, NULL);
        free(m->tag);
    }
    free(t->links);
    free(t->mons);
    memset(t, 0, sizeof *t);
}

/* ---- encoding ---- */

int bl__dframe_begin(ei_x_buff *x)
{
    int start = x->index;
    if (ei_x_append_buf(x, "\0\0\0\0\x70", 5) < 0 || ei_x_encode_version(x) < 0) return -1;
    return start;
}

bool bl__dframe_end(ei_x_buff *x, int start, bool ok)
{
    if (!ok) {
        x->index = start;
        return false;
    }
    uint32_t n = (uint32_t)(x->index - start - 4);
    uint8_t *p = (uint8_t *)x->buff + start;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return true;
}

bool bl__dx_pid(ei_x_buff *x, bl_pid pid, bl_pid instead)
{
    erlang_pid ep;
    if (bl__dist_pid_out(pid, &ep) < 0 && bl__dist_pid_out(instead, &ep) < 0) return false;
    return ei_x_encode_pid(x, &ep) == 0;
}

/* The process a monitor names: its pid, or the name it was made with. */
static bool x_proc(ei_x_buff *x, const bl__dmon *m, bl_pid pid)
{
    if (m->name[0]) return ei_x_encode_atom(x, m->name) == 0;
    return bl__dx_pid(x, pid, BL_PID_NONE);
}

static bool x_reason(ei_x_buff *x, const bl_reason *r)
{
    return bl_dist_x_encode_reason(x, r) == 0;
}

/* {Op, A, B} / {Op, A, B, Reason} with pids A and B. */
static bool x_pair(ei_x_buff *x, long op, bl_pid a, bl_pid b, bl_pid self, const bl_reason *r)
{
    int s = bl__dframe_begin(x);
    bool ok = s >= 0 && ei_x_encode_tuple_header(x, r ? 4 : 3) == 0 &&
              ei_x_encode_long(x, op) == 0 && bl__dx_pid(x, a, self) &&
              bl__dx_pid(x, b, BL_PID_NONE) && (!r || x_reason(x, r));
    return s >= 0 && bl__dframe_end(x, s, ok);
}

/* {Op, From, ToProc, Ref}: a monitor's request or its end. */
static bool x_monitor(ei_x_buff *x, long op, const bl__dmon *m, const char *peer)
{
    erlang_ref e;
    if (m->out)
        bl__dref_out(m->ref, &e);
    else
        dref_back(&m->eref, peer, &e);
    int s = bl__dframe_begin(x);
    bool ok = s >= 0 && ei_x_encode_tuple_header(x, 4) == 0 && ei_x_encode_long(x, op) == 0 &&
              bl__dx_pid(x, m->local, BL_PID_NONE) && x_proc(x, m, m->remote) &&
              ei_x_encode_ref(x, &e) == 0;
    return s >= 0 && bl__dframe_end(x, s, ok);
}

/* {21, FromProc, ToPid, Ref, Reason}: the DOWN of an incoming monitor. */
static bool x_down(ei_x_buff *x, const bl__dmon *m, const char *peer, const bl_reason *r)
{
    erlang_ref e;
    dref_back(&m->eref, peer, &e);
    int s = bl__dframe_begin(x);
    bool ok = s >= 0 && ei_x_encode_tuple_header(x, 5) == 0 &&
              ei_x_encode_long(x, BL__OP_MONITOR_P_EXIT) == 0 && x_proc(x, m, m->local) &&
              bl__dx_pid(x, m->remote, BL_PID_NONE) && ei_x_encode_ref(x, &e) == 0 &&
              x_reason(x, r);
    return s >= 0 && bl__dframe_end(x, s, ok);
}

/* ---- from local processes ---- */

bool bl__dctl_out(bl__dctl *t, ei_x_buff *x, int peer, bl_pid self, const bl__dout *h,
                  const char *name, const bl__dsig *g, const bl_reason *r)
{
    const char *pname = bl__dist_peer_name(peer);
    bl_pid local = g->from, remote = h->to;
    bl__dmon *m;
    switch (h->tag) {
    case BL_SIG_LINK:
        if (!link_add(t, local, remote)) {
            bl_reason nomem = {.kind = BL_CUSTOM, .code = -ENOMEM};
            bl__signal_send(local, remote, BL_SIG_EXIT_LINK, BL_REF_NONE, &nomem);
            return true;
        }
        return x_pair(x, BL__OP_LINK, local, remote, self, NULL);
    case BL_SIG_UNLINK: {
        link_del(t, local, remote);
        int s = bl__dframe_begin(x);
        bool ok = s >= 0 && ei_x_encode_tuple_header(x, 4) == 0 &&
                  ei_x_encode_long(x, BL__OP_UNLINK_ID) == 0 &&
                  ei_x_encode_ulonglong(x, ++t->unlink_id) == 0 && bl__dx_pid(x, local, self) &&
                  bl__dx_pid(x, remote, BL_PID_NONE);
        return s >= 0 && bl__dframe_end(x, s, ok);
    }
    case BL_SIG_EXIT_LINK:
        link_del(t, local, remote);
        return x_pair(x, BL__OP_EXIT, local, remote, self, r);
    case BL_SIG_EXIT:
        return x_pair(x, BL__OP_EXIT2, local, remote, self, r);
    case BL_SIG_MONITOR:
        if (!(m = mon_add(t))) {
            bl_reason nomem = {.kind = BL_CUSTOM, .code = -ENOMEM};
            bl__signal_send(local, remote, BL_SIG_DOWN, h->ref, &nomem);
            return true;
        }
        *m = (bl__dmon){.local = local, .remote = remote, .ref = h->ref, .out = true};
        if (h->name_len) memcpy(m->name, name, h->name_len);
        return x_monitor(x, BL__OP_MONITOR_P, m, pname);
    case BL_SIG_DEMONITOR: {
        m = mon_by_ref(t, h->ref, true);
        if (!m || m->local != local) return true; /* its DOWN came first */
        bool ok = x_monitor(x, BL__OP_DEMONITOR_P, m, pname);
        mon_del(t, m);
        return ok;
    }
    case BL_SIG_DOWN: {
        m = mon_by_ref(t, h->ref, false);
        if (!m || !m->monitor || m->remote != remote) return true; /* demonitored meanwhile */
        bool ok = x_down(x, m, pname, r);
        if (m->tag)
            m->monitor = false; /* the call it belongs to may still be answered */
        else
            mon_del(t, m);
        return ok;
    }
    default:
        return true;
    }
}

/* ---- from the wire ---- */

/* A pid of this node at buf[*i]: 0 with *local (BL_PID_NONE for a stale one), or -1. */
static int local_pid(const char *b, int *i, erlang_pid *ep, bl_pid *local)
{
    if (ei_decode_pid(b, i, ep) < 0) return -1;
    *local = BL_PID_NONE;
    if (strcmp(ep->node, bl__dist.name) == 0 && bl__dist_pid_in(ep, local) < 0)
        *local = BL_PID_NONE;
    return 0;
}

/* A pid of the other node at buf[*i]: 0 with *remote, or -1. */
static int remote_pid(const char *b, int *i, erlang_pid *ep, bl_pid *remote)
{
    if (ei_decode_pid(b, i, ep) < 0) return -1;
    return bl__dist_pid_in(ep, remote) < 0 || !bl__pid_node(*remote) ? -1 : 0;
}

/* The reason at b[*i], as a signal's reason: sent to `to` from `from`. */
static bool signal_reason(const char *b, size_t len, int *i, bl_pid to, bl_pid from, uint32_t sig,
                          bl_ref ref)
{
    bl_reason r;
    void *scratch;
    int rc = bl_dist_decode_reason(b, len, i, &r, &scratch);
    if (rc == -ENOMEM) {
        r = (bl_reason){.kind = BL_CUSTOM, .code = -ENOMEM};
        scratch = NULL;
    } else if (rc < 0) {
        return false;
    }
    bl__signal_send(to, from, sig, ref, &r);
    free(scratch);
    return true;
}

/* {21, To, From, Ref, noproc} for a monitor of nothing: ToProc as the request gave it. */
static bool noproc_down(ei_x_buff *x, const char *b, int to_at, int to_end, const erlang_pid *from,
                        const erlang_ref *e)
{
    bl_reason np = BL_REASON(BL_NOPROC);
    int s = bl__dframe_begin(x);
    bool ok = s >= 0 && ei_x_encode_tuple_header(x, 5) == 0 &&
              ei_x_encode_long(x, BL__OP_MONITOR_P_EXIT) == 0 &&
              ei_x_append_buf(x, b + to_at, to_end - to_at) == 0 && ei_x_encode_pid(x, from) == 0 &&
              ei_x_encode_ref(x, e) == 0 && x_reason(x, &np);
    return s >= 0 && bl__dframe_end(x, s, ok);
}

/* {3, To, From, noproc}: the answer to a link with a process that is not there. */
static bool noproc_exit(ei_x_buff *x, const erlang_pid *to, const erlang_pid *from)
{
    bl_reason np = BL_REASON(BL_NOPROC);
    int s = bl__dframe_begin(x);
    bool ok = s >= 0 && ei_x_encode_tuple_header(x, 4) == 0 &&
              ei_x_encode_long(x, BL__OP_EXIT) == 0 && ei_x_encode_pid(x, to) == 0 &&
              ei_x_encode_pid(x, from) == 0 && x_reason(x, &np);
    return s >= 0 && bl__dframe_end(x, s, ok);
}

int bl__dctl_in(bl__dctl *t, ei_x_buff *x, long op, int arity, const char *b, size_t blen, int i,
                const char *msg, size_t msg_len)
{
    erlang_pid fp, tp;
    bl_pid from = BL_PID_NONE, to = BL_PID_NONE;
    erlang_ref e;
    switch (op) {
    case BL__OP_LINK: /* {1, From, To} */
        if (arity != 3 || remote_pid(b, &i, &fp, &from) < 0 || local_pid(b, &i, &tp, &to) < 0)
            return -1;
        if (to != BL_PID_NONE && link_add(t, to, from) &&
            bl__signal_send(to, from, BL_SIG_LINK, BL_REF_NONE, NULL) == 1)
            return 1;
        link_del(t, to, from);
        return noproc_exit(x, &tp, &fp) ? 1 : -1;
    case BL__OP_UNLINK:      /* {4, From, To} */
    case BL__OP_UNLINK_ID: { /* {35, Id, From, To} */
        unsigned long long id = 0;
        if (arity != (op == BL__OP_UNLINK ? 3 : 4) ||
            (op == BL__OP_UNLINK_ID && ei_decode_ulonglong(b, &i, &id) < 0) ||
            remote_pid(b, &i, &fp, &from) < 0 || local_pid(b, &i, &tp, &to) < 0)
            return -1;
        link_del(t, to, from);
        if (to != BL_PID_NONE) bl__signal_send(to, from, BL_SIG_UNLINK, BL_REF_NONE, NULL);
        if (op == BL__OP_UNLINK) return 1;
        /* {36, Id, From, To}: from the unlinked process back to the one that unlinked. */
        int s = bl__dframe_begin(x);
        bool ok = s >= 0 && ei_x_encode_tuple_header(x, 4) == 0 &&
                  ei_x_encode_long(x, BL__OP_UNLINK_ID_ACK) == 0 &&
                  ei_x_encode_ulonglong(x, id) == 0 && ei_x_encode_pid(x, &tp) == 0 &&
                  ei_x_encode_pid(x, &fp) == 0;
        return s >= 0 && bl__dframe_end(x, s, ok) ? 1 : -1;
    }
    case BL__OP_UNLINK_ID_ACK:
        return 1;
    case BL__OP_EXIT:         /* {3, From, To, Reason} */
    case BL__OP_EXIT_TT:      /* {13, From, To, Token, Reason} */
    case BL__OP_PAYLOAD_EXIT: /* {24, From, To} + Reason */
    case BL__OP_PAYLOAD_EXIT_TT:
    case BL__OP_EXIT2:
    case BL__OP_EXIT2_TT:
    case BL__OP_PAYLOAD_EXIT2:
    case BL__OP_PAYLOAD_EXIT2_TT: {
        bool link = op == BL__OP_EXIT || op == BL__OP_EXIT_TT || op == BL__OP_PAYLOAD_EXIT ||
                    op == BL__OP_PAYLOAD_EXIT_TT;
        bool payload = op >= BL__OP_PAYLOAD_EXIT && op <= BL__OP_PAYLOAD_EXIT2_TT;
        bool tt = op == BL__OP_EXIT_TT || op == BL__OP_EXIT2_TT || op == BL__OP_PAYLOAD_EXIT_TT ||
                  op == BL__OP_PAYLOAD_EXIT2_TT;
        int want = 3 + (payload ? 0 : 1) + (tt ? 1 : 0);
        if (arity != want || remote_pid(b, &i, &fp, &from) < 0 || local_pid(b, &i, &tp, &to) < 0 ||
            (tt && ei_skip_term(b, &i) < 0))
            return -1;
        if (payload && !msg_len) return -1;
        if (link) link_del(t, to, from);
        if (to == BL_PID_NONE) return 1; /* to a process of an earlier incarnation */
        uint32_t sig = link ? BL_SIG_EXIT_LINK : BL_SIG_EXIT;
        int mi = 1;
        if (payload) return signal_reason(msg, msg_len, &mi, to, from, sig, BL_REF_NONE) ? 1 : -1;
        return signal_reason(b, blen, &i, to, from, sig, BL_REF_NONE) ? 1 : -1;
    }
    case BL__OP_MONITOR_P: { /* {19, From, ToProc, Ref} */
        if (arity != 4 || remote_pid(b, &i, &fp, &from) < 0) return -1;
        int to_at = i;
        char name[MAXATOMLEN_UTF8] = "";
        if (ei_decode_atom(b, &i, name) == 0) {
            to = bl_whereis(name);
        } else if (local_pid(b, &i, &tp, &to) < 0) {
            return -1;
        }
        int to_end = i;
        if (ei_decode_ref(b, &i, &e) < 0) return -1;
        bl__dmon *m = to != BL_PID_NONE && strlen(name) < sizeof m->name ? mon_add(t) : NULL;
        if (m) {
            *m = (bl__dmon){.local = to, .remote = from, .ref = bl_make_ref(), .monitor = true};
            dref_keep(&m->eref, &e);
            memcpy(m->name, name, strlen(name) + 1);
            if (bl__signal_send(to, from, BL_SIG_MONITOR, m->ref, NULL) == 1) return 1;
            mon_del(t, m);
        }
        return noproc_down(x, b, to_at, to_end, &fp, &e) ? 1 : -1;
    }
    case BL__OP_DEMONITOR_P: { /* {20, From, ToProc, Ref} */
        if (arity != 4 || remote_pid(b, &i, &fp, &from) < 0 || ei_skip_term(b, &i) < 0 ||
            ei_decode_ref(b, &i, &e) < 0)
            return -1;
        bl__dmon *m = bl__dctl_in_mon(t, from, &e);
        if (m && m->monitor) bl__signal_send(m->local, from, BL_SIG_DEMONITOR, m->ref, NULL);
        if (m) mon_del(t, m);
        return 1;
    }
    case BL__OP_MONITOR_P_EXIT:           /* {21, FromProc, ToPid, Ref, Reason} */
    case BL__OP_PAYLOAD_MONITOR_P_EXIT: { /* {28, FromProc, ToPid, Ref} + Reason */
        bool payload = op == BL__OP_PAYLOAD_MONITOR_P_EXIT;
        if (arity != (payload ? 4 : 5) || ei_skip_term(b, &i) < 0 ||
            local_pid(b, &i, &tp, &to) < 0 || ei_decode_ref(b, &i, &e) < 0)
            return -1;
        if (payload && !msg_len) return -1;
        bl__dmon *m = mon_by_ref(t, bl__dref_in(&e), true);
        if (!m || m->local != to) return 1; /* demonitored meanwhile */
        bl_pid target = m->remote;
        bl_ref ref = m->ref;
        mon_del(t, m);
        int mi = 1;
        if (payload) return signal_reason(msg, msg_len, &mi, to, target, BL_SIG_DOWN, ref) ? 1 : -1;
        return signal_reason(b, blen, &i, to, target, BL_SIG_DOWN, ref) ? 1 : -1;
    }
    default:
        return 0; /* not a link, monitor or exit */
    }
}

/* ---- the hook proc/ calls ---- */

int bl__dist_remote_signal(bl_pid to, bl_pid from, uint32_t sig, bl_ref ref, const bl_reason *r)
{
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -EINVAL;
    int p = bl__dist_pid_peer(to);
    if (p < 0) return p;
    return bl__dist_signal_out(p, to, from, sig, ref, r, NULL);
}

int bl__dist_signal_out(int p, bl_pid to, bl_pid from, uint32_t sig, bl_ref ref, const bl_reason *r,
                        const char *name)
{
    size_t dl = r ? r->detail_len : 0;
    /* A link or a monitor (or an exit signal) may start a connection; what a
     * process's end sends goes only over one that is there: without it, the
     * other end heard noconnection already. */
    bool start = sig == BL_SIG_LINK || sig == BL_SIG_MONITOR || sig == BL_SIG_EXIT;
    bl__dsig g = {.from = from, .has_reason = r != NULL};
    if (r) {
        g.kind = (uint32_t)r->kind;
        g.code = r->code;
        g.detail_len = dl;
    }
    bl__dout h = {.kind = BL__DOUT_SIG,
                  .tag = sig,
                  .to = to,
                  .ref = ref,
                  .name_len = name ? (uint32_t)strlen(name) : 0};
    int rc = bl__dist_out2(p, &h, name, &g, sizeof g, r ? r->detail : NULL, dl, start);
    if (rc == 0 || !start) return 0;
    /* No connection to carry it: the node cannot be reached. */
    bl_reason nc = BL_REASON(BL_NOCONNECTION);
    if (sig == BL_SIG_LINK)
        bl__signal_send(from, to, BL_SIG_EXIT_LINK, BL_REF_NONE, &nc);
    else if (sig == BL_SIG_MONITOR)
        bl__signal_send(from, to, BL_SIG_DOWN, ref, &nc);
    return 0;
}

void bl__dist_signal_unsent(const bl_msg *m)
{
    bl__dout h;
    bl__dsig g;
    if (m->len < sizeof h + sizeof g) return;
    memcpy(&h, m->data, sizeof h);
    if (h.kind != BL__DOUT_SIG || m->len < sizeof h + h.name_len + sizeof g) return;
    memcpy(&g, (const char *)m->data + sizeof h + h.name_len, sizeof g);
    bl_reason nc = BL_REASON(BL_NOCONNECTION);
    if (h.tag == BL_SIG_LINK)
        bl__signal_send(g.from, h.to, BL_SIG_EXIT_LINK, BL_REF_NONE, &nc);
    else if (h.tag == BL_SIG_MONITOR)
        bl__signal_send(g.from, h.to, BL_SIG_DOWN, h.ref, &nc);
}

int bl_dist_monitor_name(const char *name, const char *node, bl_ref *ref)
{
    bl_proc *self = bl__self();
    if (!self) return -EPERM;
    if (!name || !ref) return -EINVAL;
    size_t nlen = strlen(name);
    if (nlen == 0) return -EINVAL;
    if (nlen > MAXATOMLEN - 1) return -ENAMETOOLONG;
    bool running = atomic_load_explicit(&bl__dist.running, memory_order_acquire);
    if (!node || (running && strcmp(node, bl__dist.name) == 0) ||
        (!running && strcmp(node, "nonode@nohost") == 0)) {
        bl_pid holder = bl_whereis(name);
        if (holder != BL_PID_NONE) return bl_monitor(holder, ref);
        *ref = bl_make_ref();
        bl_reason np = BL_REASON(BL_NOPROC);
        return bl__down_to_self(self, BL_PID_NONE, *ref, &np);
    }
    if (!running) return -ENOTCONN;
    if (!strchr(node, '@')) return -EINVAL;
    int p = bl__dist_peer(node, true);
    if (p < 0) return p;
    bl_pid np;
    int rc = bl__dist_node_pid(p, &np);
    if (rc < 0) return rc;
    bl_ref r = bl_make_ref();
    rc = bl__monitor_add(np, r);
    if (rc < 0) return rc;
    *ref = r;
    return bl__dist_signal_out(p, np, bl__proc_pid(self), BL_SIG_MONITOR, r, NULL, name);
}
