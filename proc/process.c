/*
 * proc/process.c - what a process does: spawn, exit, send, receive.
 *
 * These calls join core (PCBs, envelopes, the mailbox word) to the
 * scheduler (queues, parking, timers), so they live in the scheduler layer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "core/wait.h"
#include "proc/otp.h"
#include "proc/proc.h"

#define MAX_STACK ((size_t)1 << 30)

static inline bool running(void)
{
    return bl__rt && !atomic_load_explicit(&bl__rt->stop, memory_order_relaxed);
}

/* ---- spawn and exit ---- */

int bl__spawn(bl_pid *out, bl_entry_fn fn, void *arg, const bl_handler *h, const bl_spawn_opts *o,
              unsigned flags, bl_ref ref)
{
    static const bl_spawn_opts none;
    if (!o) o = &none;
    if (!running()) return -ESRCH;
    bl_proc *parent = bl__self();
    unsigned rel = flags & (BL_SPAWN_LINK | BL_SPAWN_MONITOR);
    if (rel && !parent) return -EPERM;
    bl_runtime *rt = bl__rt;
    if ((unsigned)o->priority > BL_PRIO_MAX || o->scheduler < 0 ||
        (unsigned)o->scheduler > rt->nsched || o->stack_size > MAX_STACK)
        return -EINVAL;

    bl_sched *cur = bl__tls_sched;
    bl_sched *home;
    if (o->scheduler)
        home = rt->scheds[o->scheduler - 1];
    else if (cur)
        home = cur;
    else
        home = rt->scheds[atomic_fetch_add_explicit(&rt->rr, 1, memory_order_relaxed) % rt->nsched];

    bl_proc *p;
    if (cur) {
        p = bl__proc_alloc(&cur->pcache);
    } else {
        /* Threads that are not schedulers (the program's main thread) share
         * one cache under a mutex; they are not on any hot path. */
        pthread_mutex_lock(&rt->outside_lock);
        p = bl__proc_alloc(&rt->outside);
        pthread_mutex_unlock(&rt->outside_lock);
    }
    if (!p) return -ENOMEM;

    /* The slot is FREE: stale senders and timers see a generation or
     * sequence mismatch and leave it alone, so plain writes are safe until
     * the mailbox word is published below. */
    p->gen = bl__meta_gen(bl__box_load(p).meta);
    p->sched = home;
    BL_PUBLISH(p->stack, NULL);
    p->q_head = p->q_tail = p->mark = p->down_prev = NULL;
    p->ndown = 0;
    p->down_valid = false;
    p->main = (flags & BL_SPAWN_MAIN) != 0;
    p->rq_next = NULL;
    p->tmr = NULL;
    p->fn = fn;
    p->arg = arg;
    p->handler = h;
    p->hstate = arg; /* what release gets if init never runs */
    BL_PUBLISH(p->stack_req, o->stack_size == bl__rt->cfg.stack_size ? 0 : o->stack_size);
    p->scanned = 0;
    BL_PUBLISH(p->reductions, 0);
    BL_PUBLISH(p->q_len, 0);
    p->seq = 0;
    p->reason = BL_REASON(BL_NORMAL);
    p->sig = NULL;
    p->trap_exit = false;
    p->alias = BL_REF_NONE;
    p->wop = NULL;
    p->cleanups = NULL;
    atomic_store_explicit(&p->named, 0, memory_order_relaxed);
    p->park = 0;
    BL_PUBLISH(p->prio, (uint8_t)o->priority);
    atomic_store_explicit(&p->kind, h ? BL_KIND_HANDLER : BL_KIND_PLAIN, memory_order_relaxed);
    p->mark_set = false;
    p->timer_fired = false;
    p->started = false;
    p->placed = o->scheduler != 0;
    p->bound = o->bound && o->scheduler != 0;
    p->waker = p->wakee = BL_PID_NONE;
    p->behind = false;
    p->hibernated = false;
    p->signalled = false;
    p->streams = false;
    memset(&p->ctx, 0, sizeof p->ctx);

    /* Links, monitors and callers asked for at spawn exist before the child runs. */
    if ((rel && bl__spawn_relations(parent, p, rel, ref) != 0) ||
        (o->inherit_callers && parent && bl__callers_inherit(parent, p) != 0)) {
        bl__psig_free(p);
        /* Never published: the slot is still FREE and can go straight back. */
        if (cur) bl__proc_release(&cur->pcache, p);
        return -ENOMEM;
    }

    bl__box_open(p);
    if (cur)
        BL_STAT_ADD(cur, live, 1);
    else
        atomic_fetch_add_explicit(&rt->outside_live, 1, memory_order_relaxed);
    if (out) *out = bl__proc_pid(p);
    /* An explicit scheduler is honoured for the first run at least: the
     * inject queue is the one queue thieves cannot take from. */
    bl__sched_ready(p, o->scheduler ? BL_READY_INJECT : BL_READY_SPAWN);

    bl_proc *self = bl__self();
    if (self) bl__charge(self, 10);
    return 0;
}

int bl_spawn(bl_pid *pid, bl_entry_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!fn) return -EINVAL;
    return bl__spawn(pid, fn, arg, NULL, opts, 0, BL_REF_NONE);
}

int bl_spawn_handler(bl_pid *pid, const bl_handler *h, void *arg, const bl_spawn_opts *opts)
{
    if (!h || !h->handle) return -EINVAL;
    return bl__spawn(pid, NULL, arg, h, opts, 0, BL_REF_NONE);
}

int bl__spawn_handler_monitor(bl_pid *pid, const bl_handler *h, void *arg,
                              const bl_spawn_opts *opts, bool link, bl_ref monitor_ref)
{
    if (!h || !h->handle || !monitor_ref) return -EINVAL;
    return bl__spawn(pid, NULL, arg, h, opts, BL_SPAWN_MONITOR | (link ? BL_SPAWN_LINK : 0),
                     monitor_ref);
}

int bl__spawn_handler_link(bl_pid *pid, const bl_handler *h, void *arg, const bl_spawn_opts *opts)
{
    if (!h || !h->handle) return -EINVAL;
    return bl__spawn(pid, NULL, arg, h, opts, BL_SPAWN_LINK, BL_REF_NONE);
}

void bl_cleanup_push(bl_cleanup *c, void (*fn)(void *), void *arg)
{
    bl_proc *p = bl__self();
    c->fn = fn;
    c->arg = arg;
    c->next = p ? p->cleanups : NULL;
    if (p) p->cleanups = c;
}

void bl__cleanup_remove(bl_cleanup *c)
{
    bl_proc *p = bl__self();
    if (!p) return;
    /* Usually the most recent; the runtime's own (a task stream's) may sit above it. */
    for (bl_cleanup **at = &p->cleanups; *at; at = &(*at)->next)
        if (*at == c) {
            *at = c->next;
            return;
        }
}

void bl_cleanup_pop(bl_cleanup *c, bool run)
{
    bl__cleanup_remove(c);
    if (run && c->fn) c->fn(c->arg);
}

/* Runs what p's death must free (its stack, where the records live, is still there). */
static void run_cleanups(bl_proc *p)
{
    bl_cleanup *c = p->cleanups;
    p->cleanups = NULL;
    /* A handler may free its own record (a task stream's lives in the stream). */
    while (c) {
        bl_cleanup *next = c->next;
        c->fn(c->arg);
        c = next;
    }
}

/* On the scheduler's stack, after the process switched away for good. */
void bl__hook_proc_finish(bl_sched *s, bl_proc *p)
{
    atomic_store_explicit(&p->status, BL_STATUS_EXITING, memory_order_relaxed);
    /* The handler's release runs while the process still looks alive (it
     * never runs again): whoever sees the death, by a DOWN, an EXIT, or a
     * monitor or send that finds the pid gone, may count on the release. */
    if (p->handler && p->handler->release) p->handler->release(p->hstate);
    /* So do its cleanup handlers (bl_cleanup_push), while its stack, where
     * their records live, is still there. */
    run_cleanups(p);
    /* Close the mailbox: the next generation, FREE.  From here on senders
     * drop their messages; what was already pushed is freed here. */
    uint32_t next_gen = (p->gen + 1) & BL_PID_GEN_MASK;
    bl_msg *inbox = bl__box_close(p, next_gen);
    /* Links and monitors hear of the death; requests still queued get noproc. */
    bl__signals_on_exit(p, inbox, p->q_head);
    bl__msg_drop_chain(&s->slab, inbox);
    bl__msg_drop_chain(&s->slab, p->q_head);
    p->q_head = p->q_tail = p->mark = p->down_prev = NULL;
    p->ndown = 0;
    p->down_valid = false;
    /* bl_main's process, however it ended: the runtime stops. */
    if (p->main) {
        p->main = false;
        bl__main_exited(p);
    }
    /* Its I/O streams end now, not at their rings' next idle sweep, which a
     * scheduler asleep with nothing to do would never run (a closed
     * listener would stay bound, accepting for nobody).  The mailbox is
     * closed: the sweeps see the death. */
    if (p->streams) bl__sched_services_soon();
    /* Killed in the middle of I/O: the op keeps the stack until the kernel is done. */
    if (p->wop) {
        bl_waitop *op = p->wop;
        p->wop = NULL;
        if (op->orphan(op, s, p)) BL_PUBLISH(p->stack, NULL);
    }
    if (p->stack) bl__stack_put(&s->stacks, p->stack);
    BL_PUBLISH(p->stack, NULL);
    bl__ctx_destroy(&p->ctx);
    bl__psig_free(p);
    free((void *)p->reason.detail);
    p->reason = BL_REASON(BL_NORMAL);
    p->gen = next_gen;
    BL_STAT_ADD(s, live, -1);
    bl__proc_release(&s->pcache, p);
}

/* Shutdown: frees what a slot still holds.  No scheduler runs any more. */
void bl__hook_proc_discard(bl_proc *p, void *ctx)
{
    (void)ctx;
    bl_box b = bl__box_load(p);
    if (bl__meta_state(b.meta) == BL_ST_FREE) return;
    if (p->handler && p->handler->release) p->handler->release(p->hstate);
    bl__msg_drop_chain(NULL, b.top);
    bl__msg_drop_chain(NULL, p->q_head);
    run_cleanups(p);
    if (p->wop) {
        /* No scheduler runs: the op's owner frees the stack if it takes it. */
        bl_waitop *op = p->wop;
        p->wop = NULL;
        if (op->orphan(op, NULL, p)) BL_PUBLISH(p->stack, NULL);
    }
    if (p->stack) bl__stack_free(p->stack);
    BL_PUBLISH(p->stack, NULL);
    bl__ctx_destroy(&p->ctx);
    bl__psig_free(p);
    free((void *)p->reason.detail);
    p->reason.detail = NULL;
}

_Noreturn void bl__exit_self(bl_proc *p, const bl_reason *r)
{
    /* Keep a private copy of the detail: r may point into a message or the
     * caller's stack, both of which are about to go. */
    void *detail = NULL;
    size_t len = r->detail_len;
    if (len && (detail = malloc(len))) memcpy(detail, r->detail, len);
    p->reason = (bl_reason){r->kind, r->code, detail, detail ? len : 0};
    bl__sched_disarm_timer(p);
    bl__park(p, BL_PARK_EXIT);
    __builtin_unreachable();
}

_Noreturn void bl__hook_proc_fault(bl_proc *p, bl_reason_kind why)
{
    /* No detail, so no malloc: this runs in a signal handler. */
    bl_reason r = BL_REASON(why);
    bl__exit_self(p, &r);
}

static _Noreturn void exit_code(bl_proc *p, int code)
{
    bl_reason r = code && code != BL_STOP ? (bl_reason){.kind = BL_CUSTOM, .code = code}
                                          : BL_REASON(BL_NORMAL);
    bl__exit_self(p, &r);
}

int bl_exit(int code)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    exit_code(p, code);
}

/* ---- sending ---- */

/*
 * Pushes m onto p's inbox if p still is the process `to` names; returns
 * false (and frees m) if it is not.  A signal also sets BL_META_SIG and
 * wakes a SLEEPING process, which messages leave asleep.
 */
/* Arms s's outbox for receiver p (pid to): for one behind its senders, or
 * (local) for the process in s's runnext. */
static inline void outbox_arm(bl_sched *s, bl_proc *p, bl_pid to, bool local)
{
    s->outbox.p = p;
    s->outbox.to = to;
    s->outbox.local = local;
}

bool bl__push(bl_proc *p, bl_pid to, bl_msg *m, bool signal)
{
    bl_sched *s = bl__tls_sched;
    /* A call's request carries its monitor: if its receiver is found dead,
     * the caller must know at once (bl__call_send), which a push from the
     * outbox, later, could not tell it.  Such a request is never held. */
    bool hold = !signal && !(m->flags & BL_MSG_MONITOR);
    bool held = hold && s && s->outbox.p == p && s->outbox.to == to; /* p is never NULL */
    if (s && s->outbox.p && !held) {
        /* Held for someone else: those go first. */
        bl__sched_outbox_flush(s, false);
    } else if (!held && hold && s && (s->runnext == p || s->prev == p) && bl__sched_current(s)) {
        /* To the process queued to run next here, behind the sender (woken
         * or spawned by it, as a rule), or waiting unparked for the sender
         * to stop (s->prev, sched.h's direct switches): it cannot run before
         * the sender switches out, so this message and the sender's next
         * ones to it are held and pushed together then (or every
         * BL_OUTBOX_MAX), one CAS for the lot instead of one each.  While
         * the sender runs, nothing else moves p: runnext belongs to this
         * thread alone and is never stolen from, s->prev is in no queue
         * (and settled after the outbox is pushed), and a wake-up by the
         * sender that displaces p is a push to another process, which
         * empties the outbox first. */
        outbox_arm(s, p, to, true);
        held = true;
    }
    if (held) {
        /* One more for the receiver the outbox holds messages for. */
        m->next = s->outbox.newest;
        s->outbox.newest = m;
        if (!s->outbox.n++) s->outbox.oldest = m;
        /* Armed only by the running process, and pushed when it switches
         * out: the sender is the current process.  A receiver behind
         * charges its senders (below). */
        if (!s->outbox.local) bl__sched_current(s)->reds -= BL_BEHIND_CHARGE;
        if (s->outbox.n >= BL_OUTBOX_MAX) bl__sched_outbox_flush(s, true);
        return true;
    }
    int r = bl__box_push(p, to, m, signal);
    if (r == BL_PUSH_DEAD) {
        /* It died meanwhile: dropping the message is what Erlang does. */
        bl__msg_drop(s ? &s->slab : NULL, m);
        return false;
    }
    /* Winning the move to ACTIVE makes this sender the one to queue it. */
    if (r == BL_PUSH_WOKEN) bl__sched_ready(p, BL_READY_NEXT);
    /* A receiver behind its senders: the sender's slice shrinks (the charge
     * that follows a send parks it when the slice is spent), so that a flood
     * on the receiver's core gives way to the receiver.  And the sender's
     * next messages to it are held and pushed together (sched.h's outbox):
     * a receiver with hundreds queued gains nothing from having them one
     * by one sooner, and each push to a word that senders on other cores
     * push to too moves its cache line between cores. */
    if (r == BL_PUSH_BEHIND) {
        bl_proc *self = s ? bl__sched_current(s) : NULL;
        if (self && self != p) {
            self->reds -= BL_BEHIND_CHARGE;
            if (hold) outbox_arm(s, p, to, false);
        }
    }
    return true;
}

bool bl__push_lazy(bl_proc *p, bl_pid to, bl_msg *m)
{
    bl_sched *s = bl__tls_sched;
    if (s && s->outbox.p) bl__sched_outbox_flush(s, false);
    if (bl__box_push_lazy(p, to, m) == BL_PUSH_QUEUED) return true;
    bl__msg_drop(s ? &s->slab : NULL, m);
    return false;
}

bl_proc *bl__target(bl_pid to, int *err)
{
    *err = 0;
    if (!running()) {
        *err = -ESRCH;
        return NULL;
    }
    bl_proc *p = bl__proc_lookup(to);
    if (!p) {
        *err = -EINVAL;
        return NULL;
    }
    return bl__meta_is(bl__box_load(p).meta, to) ? p : NULL;
}

/* Stamps m and pushes it to p; false when p was gone (m dropped). */
static bool finish_send(bl_proc *p, bl_pid to, bl_msg *m, uint32_t tag, bl_ref ref)
{
    bl_proc *self = bl__self();
    m->from = self ? bl__proc_pid(self) : BL_PID_NONE;
    m->ref = ref;
    m->tag = tag;
    bool pushed = bl__push(p, to, m, false);
    if (self) bl__charge(self, 1);
    return pushed;
}

int bl__send_copy(bl_proc *t, bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                  uint32_t mflags)
{
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc(s ? &s->slab : NULL, len);
    if (!m) return -ENOMEM;
    bl__msg_copy(m->data, data, len);
    m->flags |= mflags;
    return finish_send(t, to, m, tag, ref) ? 0 : 1;
}

/*
 * Pids of other nodes (node bits set) go to the distribution through this
 * hook, which dist/ installs while the node runs (proc/ includes nothing of
 * it); without it such a pid is malformed.
 */
static _Atomic(bl__remote_send_fn) remote_send;

void bl__remote_send_hook_set(bl__remote_send_fn fn)
{
    /* Release: the node's tables are set up before a sender can see fn. */
    atomic_store_explicit(&remote_send, fn, memory_order_release);
}

static int send_remote(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len)
{
    bl__remote_send_fn fn = atomic_load_explicit(&remote_send, memory_order_acquire);
    return fn ? fn(to, tag, ref, data, len) : -EINVAL;
}

int bl__send_ex(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len, uint32_t mflags)
{
    if (len && !data) return -EINVAL;
    if (__builtin_expect(bl__pid_node(to), 0)) return send_remote(to, tag, ref, data, len);
    int err;
    bl_proc *p = bl__target(to, &err);
    if (!p) return err;
    /* A receiver that died meanwhile is no error: the message is dropped, as Erlang does. */
    int rc = bl__send_copy(p, to, tag, ref, data, len, mflags);
    return rc < 0 ? rc : 0;
}

int bl__send_owned(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                   bl_msg_release_fn release)
{
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc_release(s ? &s->slab : NULL, len, release);
    if (!m) return -ENOMEM;
    if (len) memcpy(m->data, data, len);
    int err;
    bl_proc *t = bl__target(to, &err);
    if (!t) {
        bl__msg_drop(s ? &s->slab : NULL, m); /* releases what it carries */
        return -ESRCH;
    }
    return finish_send(t, to, m, tag, ref) ? 0 : -ESRCH;
}

static int send_plain(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len)
{
    return bl__send_ex(to, tag, ref, data, len, 0);
}

int bl_send(bl_pid to, uint32_t tag, const void *data, size_t len)
{
    if (tag >= BL_TAG_SYSTEM) return -EINVAL;
    return send_plain(to, tag, BL_REF_NONE, data, len);
}

int bl_send_ref(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len)
{
    if (tag >= BL_TAG_SYSTEM) return -EINVAL;
    return send_plain(to, tag, ref, data, len);
}

int bl_send_move(bl_pid to, uint32_t tag, void *buf, size_t len, void (*free_fn)(void *))
{
    if (tag >= BL_TAG_SYSTEM || (len && !buf)) return -EINVAL;
    if (bl__pid_node(to)) {
        /* To another node the bytes are copied onto the wire anyway. */
        int rc = send_remote(to, tag, BL_REF_NONE, buf, len);
        if (rc == 0) (free_fn ? free_fn : free)(buf);
        return rc;
    }
    int err;
    bl_proc *p = bl__target(to, &err);
    if (err) return err;
    if (!p) {
        /* Dead receiver: the runtime owns buf now and frees it, as documented. */
        (free_fn ? free_fn : free)(buf);
        return 0;
    }
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc_moved(s ? &s->slab : NULL, buf, len, free_fn);
    if (!m) return -ENOMEM;
    finish_send(p, to, m, tag, BL_REF_NONE);
    return 0;
}

void bl_msg_free(bl_msg *m)
{
    if (!m) return;
    bl_sched *s = bl__tls_sched;
    bl__msg_free(s ? &s->slab : NULL, m);
}

/* ---- receiving ---- */

/*
 * Moves everything in the inbox to the end of the private queue, in arrival
 * order, acting on signals on the way (they are not queued; trapped exits
 * become BL_TAG_EXIT messages).  A fatal signal ends the process here, after
 * the rest of the batch is queued.  Returns true if messages were queued.
 */
bool bl__drain(bl_proc *p)
{
    bl_msg *m = bl__box_take(p), *fifo = NULL, *newest = m;
    if (!m) return false;
    /* The inbox is newest first: reverse it, noting on the way whether any
     * envelope needs more than queueing (a signal, a call's monitor, an
     * alias to check). */
    uint32_t n = 0;
    bool plain = true;
    while (m) {
        bl_msg *next = m->next;
        plain &= !bl__is_signal(m->tag) && !(m->flags & (BL_MSG_MONITOR | BL_MSG_ALIAS));
        m->next = fifo;
        fifo = m;
        m = next;
        n++;
    }
    /* So many at once: the senders are ahead; so few: caught up.  Two
     * thresholds, so that the mark does not flip at every drain. */
    if (n >= BL_BEHIND_AT || n < BL_BEHIND_AT / 8) {
        bool behind = n >= BL_BEHIND_AT;
        if (behind != p->behind) bl__box_behind(p, p->behind = behind);
    }
    if (plain) {
        /* Plain messages only (a run of casts, say): the batch joins the
         * queue whole, without a second walk over it. */
        if (p->q_tail)
            p->q_tail->next = fifo;
        else
            p->q_head = fifo;
        p->q_tail = newest;
        BL_PUBLISH(p->q_len, p->q_len + n);
        return true;
    }
    bool queued = false, fatal = false;
    bl_reason why = BL_REASON(BL_NORMAL);
    bl_msg *dead_msg = NULL; /* holds the detail `why` points into */
    for (m = fifo; m;) {
        bl_msg *next = m->next;
        m->next = NULL;
        if (!fatal && bl__is_signal(m->tag)) {
            /* Returns the message to queue (a trapped exit, a DOWN), or NULL. */
            m = bl__signal_handle(p, m, &fatal, &why, &dead_msg);
            if (m && m->tag == BL_TAG_DOWN) {
                bl__queue_down(p, m);
                queued = true;
                m = NULL;
            }
        } else if (m->flags & BL_MSG_MONITOR) {
            /* A call's request: its monitor comes first, as its signal would. */
            bl__monitor_take(p, m);
        } else if ((m->flags & BL_MSG_ALIAS) && m->ref != p->alias && !bl__alias_accept(p, m)) {
            /* To an alias no longer active (a call that has ended): it
             * never reaches the mailbox. */
            bl_msg_free(m);
            m = NULL;
        }
        if (m) {
            bl__queue_append(p, m);
            queued = true;
        }
        m = next;
    }
    if (fatal) {
        bl_reason r = why;
        p->signalled = true;
        /* bl__exit_self copies the detail before the message goes. */
        if (dead_msg) bl__queue_append(p, dead_msg);
        bl__exit_self(p, &r);
    }
    return queued;
}

int bl_recv(bl_msg **out, bl_match_fn match, void *arg, int64_t timeout_ms, unsigned flags)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!out || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    *out = NULL;

    bool marked = (flags & BL_RECV_MARKED) && p->mark_set;
    bl_msg *prev = marked ? p->mark : NULL;
    bl_msg *m = prev ? prev->next : p->q_head;
    bool waited = false;
    int scanned = 0;
    p->timer_fired = false;
    for (;;) {
        for (; m; prev = m, m = m->next) {
            if (match) {
                scanned++;
                p->scanned++;
                if (!match(m, arg)) continue;
            }
            bl__queue_unlink(p, prev, m);
            if (marked) p->mark_set = false;
            if (waited) bl__sched_disarm_timer(p);
            *out = m;
            bl__charge(p, 1 + scanned / 16);
            return 0;
        }
        if (bl__drain(p)) {
            m = prev ? prev->next : p->q_head;
            continue;
        }
        if (p->timer_fired || timeout_ms == 0) {
            p->timer_fired = false;
            bl__sched_disarm_timer(p); /* frees an entry that fired while we were awake */
            bl__charge(p, 1 + scanned / 16);
            return -ETIMEDOUT;
        }
        if (!waited) {
            /* One sequence number and one timer for the whole receive: a
             * wake-up by a message that does not match re-parks the same wait. */
            waited = true;
            if (timeout_ms > 0) {
                int rc = bl__sched_arm_timer(p, timeout_ms, BL_ST_WAITING);
                if (rc) return rc;
            }
            p->seq++;
        }
        if (!bl__watch_mail(p)) bl__park(p, BL_PARK_WAIT);
        /* The park may have handled signals and queued messages after prev. */
        m = prev ? prev->next : p->q_head;
        /* A timer that fired while we were briefly awake left its mark. */
        uint64_t meta = bl__box_load(p).meta;
        if (bl__meta_ended(meta, p->seq)) p->timer_fired = true;
    }
}

bl_msg *bl_receive(int64_t timeout_ms)
{
    bl_msg *m = NULL;
    return bl_recv(&m, NULL, NULL, timeout_ms, 0) == 0 ? m : NULL;
}

void bl_recv_mark(void)
{
    bl_proc *p = bl__self();
    if (!p) return;
    bl__drain(p);
    p->mark = p->q_tail;
    p->mark_set = true;
}

size_t bl_mailbox_len(void)
{
    bl_proc *p = bl__self();
    if (!p) return 0;
    bl__drain(p);
    return p->q_len;
}

bool bl_match_tag(const bl_msg *m, void *arg)
{
    return m->tag == *(const uint32_t *)arg;
}

bool bl_match_ref(const bl_msg *m, void *arg)
{
    return m->ref == *(const bl_ref *)arg;
}

/* ---- process entry, identity, yielding ---- */

int bl_handler_exit(const bl_reason *r)
{
    bl_proc *p = bl__self();
    if (!p || !p->handler) return -EPERM;
    if (!r || (unsigned)r->kind > BL_NOCONNECTION || (r->detail_len && !r->detail)) return -EINVAL;
    void *detail = NULL;
    if (r->detail_len && (detail = malloc(r->detail_len))) memcpy(detail, r->detail, r->detail_len);
    free((void *)p->reason.detail);
    p->reason = (bl_reason){r->kind, r->code, detail, detail ? r->detail_len : 0};
    return BL_STOP_REASON;
}

/* A handler's init or handle returned rc != 0. */
static _Noreturn void handler_exit(bl_proc *p, int rc)
{
    if (rc != BL_STOP_REASON) exit_code(p, rc);
    /* p->reason holds the copy bl_handler_exit made. */
    bl__sched_disarm_timer(p);
    bl__park(p, BL_PARK_EXIT);
    __builtin_unreachable();
}

static _Noreturn void handler_loop(bl_proc *p)
{
    const bl_handler *h = p->handler;
    if (!p->started) {
        p->started = true;
        p->hstate = p->arg;
        if (h->init) {
            int rc = h->init(p->arg, &p->hstate);
            if (rc) handler_exit(p, rc);
        }
    }
    for (;;) {
        bl_msg *m = p->q_head;
        if (m) {
            bl__queue_unlink(p, NULL, m);
        } else if (bl__drain(p)) {
            continue;
        } else {
            /* Nothing to do: park without a stack.  The next message starts
             * this function afresh on whatever stack is free then.  Unless
             * the scheduler lets it keep its stack a while (sched/keep.c):
             * then the next message resumes it here, or the scheduler
             * takes the stack back and it is parked as without one. */
            p->seq++;
            /* Mail that comes within a moment, on a scheduler with nothing
             * else to do, is handled without parking at all. */
            if (bl__watch_mail(p)) continue;
            if (bl__sched_keep(p)) {
                bl__park(p, BL_PARK_WAIT);
                continue;
            }
            bl__park(p, BL_PARK_IDLE);
            __builtin_unreachable();
        }
        int rc = h->handle(p->hstate, m);
        bl_msg_free(m);
        if (rc) {
            if (h->terminate) h->terminate(p->hstate, rc);
            handler_exit(p, rc);
        }
        bl__charge(p, 1);
    }
}

void bl__hook_proc_entry(void *arg)
{
    bl__ctx_entered();
    bl_proc *p = arg;
    /* Switched to straight from another process: settle that one first. */
    bl__sched_switched(p->sched);
    /* Signals that arrived before the first run apply before it: before a
     * handler's init too, which may read its starter's memory (a
     * gen_server's init argument, on the stack of a starter that was
     * killed while it waited, and whose exit signal is pending here). */
    if (p->handler) {
        if (!p->started) bl__signals_check(p);
        handler_loop(p);
    }
    bl__signals_check(p);
    /* Signals wake a hibernated process too; only a message restarts it. */
    if (p->hibernated) {
        bl__drain(p);
        if (!p->q_head) {
            p->seq++;
            bl__park(p, BL_PARK_IDLE);
        }
        p->hibernated = false;
    }
    p->fn(p->arg);
    exit_code(p, 0);
}

bl_pid bl_self(void)
{
    bl_proc *p = bl__self();
    return p ? bl__proc_pid(p) : BL_PID_NONE;
}

int bl_callers(bl_pid *out, size_t max)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!out && max) return -EINVAL;
    uint32_t n = p->sig ? p->sig->ncallers : 0;
    for (uint32_t i = 0; i < n && i < max; i++) out[i] = p->sig->callers[i];
    return (int)n;
}

bool bl_is_alive(bl_pid pid)
{
    bl_proc *p = bl__rt ? bl__proc_lookup(pid) : NULL;
    if (!p) return false;
    return bl__meta_is(bl__box_load(p).meta, pid);
}

int bl_hibernate(bl_entry_fn fn, void *arg)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!fn || p->handler) return -EINVAL; /* idle handlers hold no stack anyway */
    /* The next message starts fn(arg) on whatever stack is free then;
     * everything on the current stack is given up. */
    p->fn = fn;
    p->arg = arg;
    p->hibernated = true;
    p->mark_set = false;
    /* The frames whose cleanups these are are given up with the stack. */
    run_cleanups(p);
    bl__sched_disarm_timer(p);
    p->seq++;
    bl__park(p, BL_PARK_IDLE);
    __builtin_unreachable();
}

int bl_set_priority(bl_priority prio)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if ((unsigned)prio > BL_PRIO_MAX) return -EINVAL;
    int old = p->prio;
    /* Owner-only field: it takes effect the next time p is queued. */
    BL_PUBLISH(p->prio, (uint8_t)prio);
    return old;
}

void bl__charge_self(int32_t n)
{
    bl_proc *p = bl__self();
    if (p) bl__charge(p, n);
}

int bl_yield(void)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    bl__park(p, BL_PARK_YIELD);
    return 0;
}

static _Atomic uint64_t ref_counter = 1;
#define REF_BLOCK 65536u

bl_ref bl_make_ref(void)
{
    bl_sched *s = bl__tls_sched;
    /* Relaxed: uniqueness needs atomicity only, not ordering. */
    if (!s) return atomic_fetch_add_explicit(&ref_counter, 1, memory_order_relaxed);
    if (s->ref_next == s->ref_end) {
        s->ref_next = atomic_fetch_add_explicit(&ref_counter, REF_BLOCK, memory_order_relaxed);
        s->ref_end = s->ref_next + REF_BLOCK;
    }
    return s->ref_next++;
}

int bl_current_scheduler(void)
{
    bl_sched *s = bl__tls_sched;
    return s ? (int)s->index : -1;
}
