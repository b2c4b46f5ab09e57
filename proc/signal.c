/*
 * proc/signal.c - exit reasons, links, monitors and exit signals.
 *
 * Signals are envelopes with internal tags (BL_SIG_*) pushed onto the
 * target's inbox like messages, so they keep Erlang's ordering for free:
 * after everything the same sender sent before.  Pushing one sets
 * BL_META_SIG and wakes the target even from a sleep; the target acts on it
 * in its own context when it next drains its inbox or resumes from a park
 * (bl__drain, bl__signals_check).  Link and monitor lists therefore have a
 * single writer, the process itself.
 *
 * Death is a handshake through the mailbox word: a dying process first
 * closes its mailbox (generation + 1, FREE), then looks at what is left in
 * it.  A link or monitor request that got in before the close is answered
 * by the dying process (noproc); one that comes later fails to push, and
 * the requester answers itself (noproc).  Either way, exactly one answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/msg.h"
#include "core/names.h"
#include "proc/otp.h"
#include "proc/proc.h"

/* How a reason travels inside EXIT and DOWN messages and exit signals. */
typedef struct reason_wire {
    uint32_t kind;       /* bl_reason_kind */
    int32_t code;        /* BL_CUSTOM code */
    uint64_t detail_len; /* bytes following */
} reason_wire;

/* ---- reasons ---- */

bool bl_reason_eq(const bl_reason *a, const bl_reason *b)
{
    if (!a || !b) return a == b;
    return a->kind == b->kind && a->code == b->code && a->detail_len == b->detail_len &&
           (a->detail_len == 0 || !memcmp(a->detail, b->detail, a->detail_len));
}

bool bl_reason_is_clean(const bl_reason *r)
{
    return r && (r->kind == BL_NORMAL || r->kind == BL_SHUTDOWN);
}

static bool reason_ok(const bl_reason *r)
{
    return r && (unsigned)r->kind <= BL_NOCONNECTION && (r->detail_len == 0 || r->detail);
}

int bl_msg_reason(const bl_msg *m, bl_reason *out)
{
    if (!m || !out || m->len < sizeof(reason_wire)) return -EINVAL;
    if (m->tag != BL_TAG_EXIT && m->tag != BL_TAG_DOWN && !bl__is_signal(m->tag)) return -EINVAL;
    reason_wire w;
    memcpy(&w, m->data, sizeof w);
    if (w.detail_len != m->len - sizeof w || w.kind > BL_NOCONNECTION) return -EINVAL;
    *out =
        (bl_reason){(bl_reason_kind)w.kind, w.code,
                    w.detail_len ? (const char *)m->data + sizeof w : NULL, (size_t)w.detail_len};
    return 0;
}

/* ---- sending system envelopes ---- */

/* An envelope carrying reason r (or none) with the given header fields. */
static bl_msg *sys_msg(bl_pid from, uint32_t tag, bl_ref ref, const bl_reason *r)
{
    size_t dl = r ? r->detail_len : 0;
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc(s ? &s->slab : NULL, r ? sizeof(reason_wire) + dl : 0);
    if (!m) return NULL;
    m->from = from;
    m->ref = ref;
    m->tag = tag;
    if (r) {
        reason_wire w = {(uint32_t)r->kind, r->code, dl};
        memcpy(m->data, &w, sizeof w);
        if (dl) memcpy((char *)m->data + sizeof w, r->detail, dl);
    }
    return m;
}

/*
 * Signals to pids of other nodes go to the distribution through this hook,
 * which dist/ installs while the node runs (proc/ includes nothing of it).
 */
static _Atomic(bl__remote_signal_fn) remote_signal;

void bl__remote_signal_hook_set(bl__remote_signal_fn fn)
{
    /* Release: the node's tables are set up before a sender can see fn. */
    atomic_store_explicit(&remote_signal, fn, memory_order_release);
}

static bool is_remote(bl_pid pid)
{
    return bl__pid_node(pid) != 0;
}

/*
 * Sends a system envelope to `to`.  Returns 1 if it was pushed (or handed
 * to the distribution), 0 if `to` is dead, or a negative errno.
 */
static int sys_send(bl_pid to, bl_pid from, uint32_t tag, bl_ref ref, const bl_reason *r)
{
    if (is_remote(to)) {
        /* Acquire: pairs with the release of bl__remote_signal_hook_set. */
        bl__remote_signal_fn fn = atomic_load_explicit(&remote_signal, memory_order_acquire);
        if (!fn) return -EINVAL; /* no distribution: a pid of no known node */
        int rc = fn(to, from, tag, ref, r);
        return rc < 0 ? rc : 1;
    }
    int err;
    bl_proc *p = bl__target(to, &err);
    if (!p) return err;
    bl_msg *m = sys_msg(from, tag, ref, r);
    if (!m) return -ENOMEM;
    /* Nobody waits for a demonitor to be acted upon: it need not wake anyone. */
    if (tag == BL_SIG_DEMONITOR) return bl__push_lazy(p, to, m) ? 1 : 0;
    return bl__push(p, to, m, bl__is_signal(tag)) ? 1 : 0;
}

/* ---- the lists (owner only) ---- */

/* Free records a scheduler keeps for the next processes that link or monitor. */
#define PSIG_CACHE 256

bl_psig *bl__psig(bl_proc *p)
{
    if (p->sig) return p->sig;
    bl_sched *s = bl__tls_sched;
    bl_psig *g = s ? s->psig_cache : NULL;
    if (g) {
        s->psig_cache = g->next_free;
        s->psig_ncache--;
        memset(g, 0, sizeof *g);
    } else {
        g = calloc(1, sizeof *g);
    }
    return p->sig = g;
}

void bl__psig_free(bl_proc *p)
{
    bl_psig *g = p->sig;
    if (!g) return;
    p->sig = NULL;
    /* Most records never grew a list out of line: no call to free for them. */
    if (g->links && g->links != &g->link_inl) free(g->links);
    if (g->mons && g->mons != &g->mon_inl) free(g->mons);
    if (g->watchers && g->watchers != &g->watch_inl) free(g->watchers);
    if (g->aliases) free(g->aliases);
    if (g->callers && g->callers != &g->caller_inl) free(g->callers);
    bl_sched *s = bl__tls_sched;
    if (s && s->psig_ncache < PSIG_CACHE) {
        g->next_free = s->psig_cache;
        s->psig_cache = g;
        s->psig_ncache++;
        return;
    }
    free(g);
}

void bl__psig_cache_free(bl_sched *s)
{
    bl_psig *g = s->psig_cache;
    while (g) {
        bl_psig *next = g->next_free;
        free(g);
        g = next;
    }
    s->psig_cache = NULL;
    s->psig_ncache = 0;
}

/*
 * Room for one more in *arr.  The first entry lives in the record itself
 * (inl): most processes hold one link or monitor, and a task or a call
 * then costs no malloc for it.
 */
static bool grow(void **arr, uint32_t *cap, uint32_t n, size_t elem, void *inl)
{
    if (n < *cap) return true;
    if (!*cap) {
        *arr = inl;
        *cap = 1;
        return true;
    }
    uint32_t nc = *cap * 2;
    void *a = *arr == inl ? malloc(nc * elem) : realloc(*arr, nc * elem);
    if (!a) return false;
    if (*arr == inl) memcpy(a, inl, n * elem);
    *arr = a;
    *cap = nc;
    return true;
}

static int link_find(bl_psig *g, bl_pid pid)
{
    for (uint32_t i = 0; g && i < g->nlinks; i++)
        if (g->links[i] == pid) return (int)i;
    return -1;
}

static bool link_add(bl_proc *p, bl_pid pid)
{
    bl_psig *g = bl__psig(p);
    if (!g) return false;
    if (link_find(g, pid) >= 0) return true;
    if (!grow((void **)&g->links, &g->caplinks, g->nlinks, sizeof(bl_pid), &g->link_inl))
        return false;
    g->links[g->nlinks++] = pid;
    return true;
}

static bool link_del(bl_proc *p, bl_pid pid)
{
    int i = link_find(p->sig, pid);
    if (i < 0) return false;
    p->sig->links[i] = p->sig->links[--p->sig->nlinks];
    return true;
}

static bool mon_add(bl_mon **arr, uint32_t *n, uint32_t *cap, bl_mon *inl, bl_ref ref, bl_pid pid)
{
    if (!grow((void **)arr, cap, *n, sizeof(bl_mon), inl)) return false;
    (*arr)[(*n)++] = (bl_mon){ref, pid};
    return true;
}

/* Removes the entry with ref; returns its pid or BL_PID_NONE. */
static bl_pid mon_del(bl_mon *arr, uint32_t *n, bl_ref ref)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i].ref != ref) continue;
        bl_pid pid = arr[i].pid;
        arr[i] = arr[--*n];
        return pid;
    }
    return BL_PID_NONE;
}

/* ---- acting on a signal (process context) ---- */

void bl__monitor_take(bl_proc *p, bl_msg *m)
{
    m->flags &= ~BL_MSG_MONITOR;
    if (!bl__psig(p) || !mon_add(&p->sig->watchers, &p->sig->nwatch, &p->sig->capwatch,
                                 &p->sig->watch_inl, m->ref, m->from)) {
        bl_reason nomem = {.kind = BL_CUSTOM, .code = -ENOMEM};
        sys_send(m->from, bl__proc_pid(p), BL_SIG_DOWN, m->ref, &nomem);
    }
}

bl_msg *bl__signal_handle(bl_proc *p, bl_msg *m, bool *fatal, bl_reason *why, bl_msg **keep)
{
    bl_sched *s = bl__tls_sched;
    bl_reason r;
    bool is_exit = m->tag == BL_SIG_EXIT || m->tag == BL_SIG_EXIT_LINK;
    switch (m->tag) {
    case BL_SIG_LINK:
        if (!link_add(p, m->from)) {
            /* Out of memory for the link: fail it visibly rather than silently. */
            bl_reason nomem = {.kind = BL_CUSTOM, .code = -ENOMEM};
            sys_send(m->from, bl__proc_pid(p), BL_SIG_EXIT_LINK, BL_REF_NONE, &nomem);
        }
        break;
    case BL_SIG_UNLINK:
        link_del(p, m->from);
        break;
    case BL_SIG_MONITOR:
        bl__monitor_take(p, m);
        break;
    case BL_SIG_DEMONITOR:
        if (p->sig) mon_del(p->sig->watchers, &p->sig->nwatch, m->ref);
        break;
    case BL_SIG_INFO:
        bl__info_answer(p, m->from, m->ref);
        break;
    case BL_SIG_MSGS:
        bl__msgs_answer(p, m);
        break;
    case BL_SIG_DOWN:
        /* Delivered once, and only while the monitor is on: a DOWN that
         * crossed our demonitor is dropped here.  Delivering it ends the
         * monitor, so a DOWN in the queue is never one of an active
         * monitor (bl_demonitor relies on it). */
        if (bl__monitor_end(p, m->ref, false) != BL_PID_NONE) {
            m->tag = BL_TAG_DOWN;
            return m;
        }
        break;
    }
    if (!is_exit || bl_msg_reason(m, &r) != 0) {
        bl__msg_free(s ? &s->slab : NULL, m);
        return NULL;
    }
    if (m->tag == BL_SIG_EXIT_LINK && !link_del(p, m->from)) {
        /* Not linked (any more): a stale signal from an earlier link. */
        bl__msg_free(s ? &s->slab : NULL, m);
        return NULL;
    }
    if (m->tag == BL_SIG_EXIT && r.kind == BL_KILL) {
        *fatal = true;
        *why = BL_REASON(BL_KILLED);
        bl__msg_free(s ? &s->slab : NULL, m);
        return NULL;
    }
    if (p->trap_exit) {
        m->tag = BL_TAG_EXIT; /* the envelope becomes the message as it is */
        return m;
    }
    if (r.kind == BL_NORMAL && !(m->tag == BL_SIG_EXIT && m->from == bl__proc_pid(p))) {
        bl__msg_free(s ? &s->slab : NULL, m);
        return NULL;
    }
    *fatal = true;
    *why = r;
    *keep = m;
    return NULL;
}

int bl__signal_send(bl_pid to, bl_pid from, uint32_t sig, bl_ref ref, const bl_reason *r)
{
    return sys_send(to, from, sig, ref, r);
}

void bl__signals_check_slow(bl_proc *p)
{
    bl__drain(p);
}

/* ---- links ---- */

/* An exit signal (from `from`, reason r) to the caller itself, acted on now. */
static int exit_self_signal(bl_proc *p, bl_pid from, const bl_reason *r)
{
    bl_msg *m = sys_msg(from, BL_SIG_EXIT, BL_REF_NONE, r);
    if (!m) return -ENOMEM;
    bool fatal = false;
    bl_reason why;
    bl_msg *keep = NULL;
    m = bl__signal_handle(p, m, &fatal, &why, &keep);
    if (m) bl__queue_append(p, m);
    if (fatal) {
        bl_reason cp = why;
        p->signalled = true;
        if (keep) bl__queue_append(p, keep); /* freed with the process, after the copy */
        bl__exit_self(p, &cp);
    }
    return 0;
}

/*
 * bl__target for links and monitors: a well-formed pid whose slot was
 * never handed out names no live process (NULL, *err 0), as a pid of a
 * process that never existed does in Erlang; only a malformed pid is
 * -EINVAL.
 */
static bl_proc *target_wf(bl_pid pid, int *err)
{
    bl_proc *t = bl__target(pid, err);
    if (*err == -EINVAL && bl__pid_wellformed(pid)) *err = 0;
    return t;
}

/* The caller hears of a dead peer: an exit signal with noproc, handled now. */
static void noproc_to_self(bl_proc *p, bl_pid dead)
{
    bl_reason np = BL_REASON(BL_NOPROC);
    exit_self_signal(p, dead, &np);
}

int bl_link(bl_pid pid)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (pid == bl__proc_pid(p)) return 0;
    int err = 0;
    /* A pid of another node: the distribution answers (an exit signal
     * noproc or noconnection comes back when the link cannot be). */
    bl_proc *t = is_remote(pid) ? NULL : target_wf(pid, &err);
    if (err) return err;
    if (!t && !is_remote(pid)) {
        noproc_to_self(p, pid);
        return 0;
    }
    if (link_find(p->sig, pid) >= 0) return 0;
    if (!link_add(p, pid)) return -ENOMEM;
    int rc = sys_send(pid, bl__proc_pid(p), BL_SIG_LINK, BL_REF_NONE, NULL);
    if (rc == 0) {
        /* It died between the check and the push. */
        link_del(p, pid);
        noproc_to_self(p, pid);
    } else if (rc < 0) {
        link_del(p, pid);
        return rc;
    }
    bl__charge(p, 1);
    return 0;
}

int bl_unlink(bl_pid pid)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!bl__pid_wellformed(pid) && !is_remote(pid)) return -EINVAL;
    if (!link_del(p, pid)) return 0;
    int rc = sys_send(pid, bl__proc_pid(p), BL_SIG_UNLINK, BL_REF_NONE, NULL);
    /* An exit signal from pid already in our inbox is now stale: the link
     * check in bl__signal_handle drops it. */
    return rc < 0 ? rc : 0;
}

int bl_spawn_link(bl_pid *pid, bl_entry_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!fn) return -EINVAL;
    return bl__spawn(pid, fn, arg, NULL, opts, BL_SPAWN_LINK, BL_REF_NONE);
}

int bl__spawn_relations(bl_proc *parent, bl_proc *child, unsigned flags, bl_ref ref)
{
    bl_pid cp = bl__proc_pid(child), pp = bl__proc_pid(parent);
    if (flags & BL_SPAWN_LINK) {
        if (!link_add(child, pp)) return -ENOMEM;
        if (!link_add(parent, cp)) return -ENOMEM;
    }
    if (flags & BL_SPAWN_MONITOR) {
        if (!bl__psig(child) || !bl__psig(parent)) return -ENOMEM;
        if (!mon_add(&child->sig->watchers, &child->sig->nwatch, &child->sig->capwatch,
                     &child->sig->watch_inl, ref, pp))
            return -ENOMEM;
        if (!mon_add(&parent->sig->mons, &parent->sig->nmons, &parent->sig->capmons,
                     &parent->sig->mon_inl, ref, cp)) {
            child->sig->nwatch--;
            return -ENOMEM;
        }
    }
    return 0;
}

int bl_exit_pid(bl_pid pid, const bl_reason *r)
{
    if (!reason_ok(r)) return -EINVAL;
    bl_proc *self = bl__self();
    bl_pid from = self ? bl__proc_pid(self) : BL_PID_NONE;
    /* To ourselves: takes effect now, like Erlang's exit(self(), R). */
    if (self && pid == from) return exit_self_signal(self, from, r);
    int rc = sys_send(pid, from, BL_SIG_EXIT, BL_REF_NONE, r);
    if (self && rc >= 0) bl__charge(self, 1);
    return rc < 0 ? rc : 0;
}

bool bl_trap_exit(bool on)
{
    bl_proc *p = bl__self();
    if (!p) return false;
    bool old = p->trap_exit;
    p->trap_exit = on;
    return old;
}

/* ---- monitors ---- */

int bl__down_to_self(bl_proc *p, bl_pid pid, bl_ref ref, const bl_reason *r)
{
    bl_msg *m = sys_msg(pid, BL_TAG_DOWN, ref, r);
    if (!m) return -ENOMEM;
    bl__queue_down(p, m);
    return 0;
}

/* Queues DOWN {ref, pid, noproc} for the caller itself.  0 or -ENOMEM. */
static int down_noproc_to_self(bl_proc *p, bl_pid pid, bl_ref ref)
{
    bl_reason np = BL_REASON(BL_NOPROC);
    return bl__down_to_self(p, pid, ref, &np);
}

bl_pid bl__monitor_end(bl_proc *p, bl_ref ref, bool tell)
{
    bl_psig *g = p->sig;
    bl_pid target = g ? mon_del(g->mons, &g->nmons, ref) : BL_PID_NONE;
    if (!target) return BL_PID_NONE;
    if (tell) sys_send(target, bl__proc_pid(p), BL_SIG_DEMONITOR, ref, NULL);
    if (g->naliases) bl__alias_monitor_ended(p, ref);
    return target;
}

int bl_monitor_ex(bl_pid pid, unsigned flags, bl_ref *ref)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!ref || flags > BL_MONITOR_ALIAS_REPLY_DEMONITOR) return -EINVAL;
    int err = 0;
    bool remote = is_remote(pid);
    bl_proc *t = remote ? NULL : target_wf(pid, &err);
    if (err) return err;
    bl_ref r = bl_make_ref();
    /* Monitoring yourself: a reference, and nothing to deliver ever. */
    if (pid == bl__proc_pid(p)) {
        *ref = r;
        return 0;
    }
    uint32_t amode = flags == BL_MONITOR_ALIAS_EXPLICIT    ? BL_AMODE_EXPLICIT
                     : flags == BL_MONITOR_ALIAS_DEMONITOR ? BL_AMODE_MON_DEMONITOR
                     : flags                               ? BL_AMODE_MON_REPLY
                                                           : 0;
    int rc = 0;
    if (t || remote) {
        if (!bl__psig(p) ||
            !mon_add(&p->sig->mons, &p->sig->nmons, &p->sig->capmons, &p->sig->mon_inl, r, pid))
            return -ENOMEM;
        if (amode && bl__alias_add(p, r, amode) != 0) {
            mon_del(p->sig->mons, &p->sig->nmons, r);
            return -ENOMEM;
        }
        rc = sys_send(pid, bl__proc_pid(p), BL_SIG_MONITOR, r, NULL);
        if (rc < 0) {
            mon_del(p->sig->mons, &p->sig->nmons, r);
            if (amode) bl_unalias(r);
            return rc;
        }
        if (rc == 0) {
            /* Died between the check and the push: the monitor ends at once. */
            bl__monitor_end(p, r, false);
        }
    }
    if ((!t && !remote) || rc == 0) {
        /* Not alive: the DOWN noproc ends the monitor as it comes, so
         * only an explicit alias outlives it. */
        if (!t && amode == BL_AMODE_EXPLICIT && bl__alias_add(p, r, amode) != 0) return -ENOMEM;
        if (down_noproc_to_self(p, pid, r) != 0) {
            if (amode == BL_AMODE_EXPLICIT) bl_unalias(r);
            return -ENOMEM;
        }
    }
    *ref = r;
    bl__charge(p, 1);
    return 0;
}

int bl__monitor_add(bl_pid pid, bl_ref ref)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!bl__psig(p) ||
        !mon_add(&p->sig->mons, &p->sig->nmons, &p->sig->capmons, &p->sig->mon_inl, ref, pid))
        return -ENOMEM;
    return 0;
}

int bl_monitor(bl_pid pid, bl_ref *ref)
{
    return bl_monitor_ex(pid, 0, ref);
}

int bl__call_send(bl_pid to, uint32_t tag, const void *data, size_t len, bl_ref *ref)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (len && !data) return -EINVAL;
    if (to == bl__proc_pid(p)) return -EDEADLK;
    int err;
    bl_proc *t = target_wf(to, &err);
    if (err) return err;
    if (!t) return -ESRCH;
    bl_ref r = bl_make_ref();
    if (!bl__psig(p) ||
        !mon_add(&p->sig->mons, &p->sig->nmons, &p->sig->capmons, &p->sig->mon_inl, r, to))
        return -ENOMEM;
    /* The alias before the push: the reply may come at once from another core. */
    p->alias = r;
    int rc = bl__send_copy(t, to, tag, r, data, len, BL_MSG_MONITOR);
    if (rc) {
        /* No envelope, or it died since the look: it never held the monitor. */
        mon_del(p->sig->mons, &p->sig->nmons, r);
        p->alias = BL_REF_NONE;
        return rc < 0 ? rc : -ESRCH;
    }
    *ref = r;
    return 0;
}

int bl__send_reply(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len)
{
    return bl__send_demon(to, tag, ref, data, len, BL_MSG_ALIAS);
}

int bl__send_demon(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                   uint32_t flags)
{
    bl_proc *p = bl__self();
    bl_psig *g = p ? p->sig : NULL;
    /* The monitor of the request being answered: usually the newest. */
    for (uint32_t i = g ? g->nwatch : 0; i-- > 0;) {
        if (g->watchers[i].ref != ref || g->watchers[i].pid != to) continue;
        g->watchers[i] = g->watchers[--g->nwatch];
        flags |= BL_MSG_DEMON;
        break;
    }
    return bl__send_ex(to, tag, ref, data, len, flags);
}

void bl__call_done(bl_ref ref, const bl_msg *reply)
{
    bl_proc *p = bl__self();
    if (!p) return;
    if (reply->flags & BL_MSG_DEMON)
        bl__monitor_end(p, ref, false);
    else
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
}

/*
 * Removes the DOWN of a monitor that is no longer on, if it is queued.
 * Only a DOWN that was delivered can be in the queue (see BL_SIG_DOWN), and
 * the one delivered last is found at once: a reply, then the DOWN of the
 * process that replied and exited, is the usual order.  Any other DOWN
 * costs a scan, and only when DOWN messages are queued at all.
 */
static void flush_down(bl_proc *p, bl_ref ref)
{
    if (!p->ndown) return;
    if (p->down_valid) {
        bl_msg *m = p->down_prev ? p->down_prev->next : p->q_head;
        if (m->ref == ref) {
            bl__queue_unlink(p, p->down_prev, m);
            bl_msg_free(m);
            return;
        }
    }
    bl_msg *prev = NULL;
    for (bl_msg *m = p->q_head; m; prev = m, m = m->next) {
        p->scanned++;
        if (m->tag != BL_TAG_DOWN || m->ref != ref) continue;
        bl__queue_unlink(p, prev, m);
        bl_msg_free(m);
        return;
    }
}

int bl_demonitor(bl_ref ref, unsigned flags)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (ref == BL_REF_NONE || (flags & ~(BL_DEMONITOR_FLUSH | BL_DEMONITOR_INFO))) return -EINVAL;
    /* On: its DOWN is not in the queue (it would have ended the monitor),
     * and one still in the inbox is dropped when drained.  Nothing to scan. */
    bool on = bl__monitor_end(p, ref, true) != BL_PID_NONE;
    if (!on && (flags & BL_DEMONITOR_FLUSH)) flush_down(p, ref);
    return (flags & BL_DEMONITOR_INFO) && on ? 1 : 0;
}

int bl_spawn_monitor(bl_pid *pid, bl_ref *ref, bl_entry_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!fn || !ref) return -EINVAL;
    if (!bl__self()) return -EPERM;
    *ref = bl_make_ref();
    return bl__spawn(pid, fn, arg, NULL, opts, BL_SPAWN_MONITOR, *ref);
}

int bl_exit_reason(const bl_reason *r)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!reason_ok(r)) return -EINVAL;
    bl__exit_self(p, r);
}

/* ---- death (on the scheduler, after the mailbox is closed) ---- */

static void answer_leftovers(bl_pid self, bl_msg *m)
{
    bl_reason np = BL_REASON(BL_NOPROC);
    for (; m; m = m->next) {
        if (m->tag == BL_SIG_LINK)
            sys_send(m->from, self, BL_SIG_EXIT_LINK, BL_REF_NONE, &np);
        else if (m->tag == BL_SIG_MONITOR || (m->flags & BL_MSG_MONITOR))
            sys_send(m->from, self, BL_SIG_DOWN, m->ref, &np);
    }
}

/* Messages (not signals) still queued in a list. */
static size_t count_messages(const bl_msg *m)
{
    size_t n = 0;
    for (; m; m = m->next) n += !bl__is_signal(m->tag);
    return n;
}

/*
 * Abnormal exits are reported (not normal, shutdown or {shutdown, _}), as on
 * the BEAM only for a process that failed by itself: one taken down by an
 * exit signal (a link, a kill) did not crash, its peer did.  The report is
 * an error event of kind crash_report (beamline/log.h).
 */
static void crash_report(bl_proc *p, const bl_msg *inbox, const bl_msg *queue)
{
    const bl_config *cfg = &bl__rt->cfg;
    if (cfg->quiet || p->signalled || bl_reason_is_clean(&p->reason)) return;
    if (!bl_log_enabled(BL_LOG_ERROR)) return;
    bl_pid pid = bl__proc_pid(p);
    char name[BL_NAME_MAX + 1], initial[160];
    bl_log_field f[7];
    size_t n = 0;
    if (atomic_load_explicit(&p->named, memory_order_relaxed) &&
        bl__names_name_of(pid, name, sizeof name) == 0)
        f[n++] = BL_LOG_S("name", name);
    n += bl__reason_fields(&p->reason, f + n);
    const void *entry = p->handler ? (const void *)p->handler->init : (const void *)p->fn;
    if (entry && bl__fn_name(entry, initial, sizeof initial) > 0)
        f[n++] = BL_LOG_S("initial_call", initial);
    f[n++] = BL_LOG_U("message_queue_len", count_messages(inbox) + count_messages(queue));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    bl_log_event e = {.time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                      .level = BL_LOG_ERROR,
                      .kind = "crash_report",
                      .pid = pid,
                      .msg = "process exited",
                      .fields = f,
                      .nfields = n};
    bl__log_event(&e);
}

void bl__signals_on_exit(bl_proc *p, bl_msg *inbox, bl_msg *queue)
{
    bl_pid self = bl__proc_pid(p);
    crash_report(p, inbox, queue);
    /* The name goes first: whoever gets the DOWN may reuse it at once. */
    bl__name_release(p);
    /* A process killed by kill is seen by its links as killed. */
    const bl_reason *r = &p->reason;
    bl_psig *g = p->sig;
    if (g) {
        for (uint32_t i = 0; i < g->nlinks; i++)
            sys_send(g->links[i], self, BL_SIG_EXIT_LINK, BL_REF_NONE, r);
        for (uint32_t i = 0; i < g->nwatch; i++)
            sys_send(g->watchers[i].pid, self, BL_SIG_DOWN, g->watchers[i].ref, r);
        /* Monitors we held: the other ends can forget them. */
        for (uint32_t i = 0; i < g->nmons; i++)
            sys_send(g->mons[i].pid, self, BL_SIG_DEMONITOR, g->mons[i].ref, NULL);
    }
    /* Requests that reached us but were never acted on. */
    answer_leftovers(self, inbox);
    answer_leftovers(self, queue);
}
