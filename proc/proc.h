/*
 * proc/proc.h - what the process services share among themselves and with
 * the layers above (io/, otp/ through proc/otp.h): parking, reductions,
 * spawning, pushing messages, signals, names and info.
 */
#ifndef BL_PROC_PROC_H
#define BL_PROC_PROC_H

#include "beamline.h"
#include "core/proc.h"
#include "sched/sched.h"

/* Acts on signals that arrived for p (see BL_META_SIG).  Process only. */
void bl__signals_check_slow(bl_proc *p);
static inline void bl__signals_check(bl_proc *p)
{
    /* Relaxed: a signal pushed after this look sets the flag and wakes p again. */
    if (__atomic_load_n(&p->box.meta, __ATOMIC_RELAXED) & BL_META_SIG) bl__signals_check_slow(p);
}

/*
 * Process only: switches back to the scheduler with request `park`
 * (enum bl_park) and, once resumed, acts on signals that came meanwhile.
 * Inline so that the switch sits directly in the calling bl_ function (see
 * run() in sched/sched.c on why frames around a switch cost).
 */
static inline __attribute__((always_inline)) void bl__park(bl_proc *p, unsigned park)
{
    p->park = (uint8_t)park;
    bl_sched *s = p->sched;
    /* Straight to the next process when the loop has nothing to do in
     * between (an exit too: the successor frees the stack it left). */
    bl_proc *q = bl__sched_handoff(s, p);
    bl__ctx_jump(&p->ctx, q ? &q->ctx : &s->ctx, park == BL_PARK_EXIT || park == BL_PARK_IDLE);
    /* Resumed, perhaps on another scheduler, perhaps straight from another process. */
    bl__sched_switched(p->sched);
    /* Back from a yield, a wait or a sleep: signals may be waiting. */
    bl__signals_check(p);
}

/*
 * Process only, p found no mail and is about to park for it: watches its
 * mailbox a moment first when its scheduler has nothing else to do
 * (bl__sched_spin_mail).  True when mail or a signal came meanwhile (the
 * signals acted on): p goes on without parking.
 */
static inline bool bl__watch_mail(bl_proc *p)
{
    if (!bl__sched_spin_mail(p->sched, p)) return false;
    bl__signals_check(p);
    return true;
}

/* A drain that takes this many messages at once marks the receiver behind
 * (BL_META_LONGQ), one that takes fewer than an eighth of it clears the
 * mark; meanwhile each send to it costs the sender this many extra
 * reductions (a slice is 4000 by default: 200 sends instead of 4000). */
#define BL_BEHIND_AT     512u
#define BL_BEHIND_CHARGE 19

/* Charges n reductions; yields when the slice is used up. */
static inline void bl__charge(bl_proc *p, int32_t n)
{
    if ((p->reds -= n) <= 0) bl__park(p, BL_PARK_YIELD);
}

/* ---- the private queue (owner only) ---- */

/* Removes m, which follows prev (NULL: m is the head), from p's queue. */
static inline void bl__queue_unlink(bl_proc *p, bl_msg *prev, bl_msg *m)
{
    if (prev)
        prev->next = m->next;
    else
        p->q_head = m->next;
    if (p->q_tail == m) p->q_tail = prev;
    /* Keep the marker valid: it moves back to the predecessor. */
    if (p->mark == m) p->mark = prev;
    if (m->tag == BL_TAG_DOWN) {
        p->ndown--;
        /* The newest DOWN is the one right after down_prev: it goes. */
        if (p->down_valid && prev == p->down_prev) p->down_valid = false;
    }
    /* The newest DOWN's predecessor moves back as the marker does. */
    if (p->down_prev == m) p->down_prev = prev;
    BL_PUBLISH(p->q_len, p->q_len - 1);
    m->next = NULL;
}

/* Appends DOWN m to p's queue, remembering where it is (bl_demonitor's flush). */
static inline void bl__queue_down(bl_proc *p, bl_msg *m)
{
    p->down_prev = p->q_tail;
    p->down_valid = true;
    p->ndown++;
    bl__queue_append(p, m);
}

/* ---- proc/process.c ---- */

#define BL_SPAWN_LINK    1u /* link parent and child before the child runs */
#define BL_SPAWN_MONITOR 2u /* the parent monitors the child with `ref` */
#define BL_SPAWN_MAIN    4u /* bl_main's process: its end stops the runtime */
int bl__spawn(bl_pid *out, bl_entry_fn fn, void *arg, const bl_handler *h, const bl_spawn_opts *o,
              unsigned flags, bl_ref ref);
/*
 * Copies data[0..len) into an envelope with message flags mflags and pushes
 * it to t, the process `to` named when the caller looked it up: 0; 1 when it
 * has died since (nothing delivered); -ENOMEM.  Charges the sender.
 */
int bl__send_copy(bl_proc *t, bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                  uint32_t mflags);
/* The live process `to` names, or NULL with *err set (-EINVAL malformed, -ESRCH gone). */
bl_proc *bl__target(bl_pid to, int *err);
/*
 * The distribution's send to a pid of another node (node bits set): dist/
 * installs it while the node runs, NULL removes it.  Called by bl_send,
 * bl_send_ref, bl_send_move (which then frees the buffer) and bl__send_ex,
 * on any thread; returns as bl_send does.
 */
typedef int (*bl__remote_send_fn)(bl_pid to, uint32_t tag, bl_ref ref, const void *data,
                                  size_t len);
void bl__remote_send_hook_set(bl__remote_send_fn fn);
/* Pushes m to p if p is still `to` (else frees m and returns false); queues p if that woke it. */
bool bl__push(bl_proc *p, bl_pid to, bl_msg *m, bool signal);
/* The same without waking p (it is known to be busy). */
bool bl__push_lazy(bl_proc *p, bl_pid to, bl_msg *m);
/* Owner: moves the inbox to the private queue, acting on signals.  True if messages came. */
bool bl__drain(bl_proc *p);
/* Ends the calling process p with reason r (copied).  Process only. */
_Noreturn void bl__exit_self(bl_proc *p, const bl_reason *r);

/* ---- proc/signal.c ---- */

/* Internal signal tags: travel in the inbox, never reach user code. */
#define BL_SIG_BASE      (BL_TAG_SYSTEM | 0x100u)
#define BL_SIG_LINK      (BL_SIG_BASE + 1) /* from wants a link */
#define BL_SIG_UNLINK    (BL_SIG_BASE + 2) /* from dropped its link */
#define BL_SIG_EXIT_LINK (BL_SIG_BASE + 3) /* from, linked, exited with the reason in data */
#define BL_SIG_EXIT      (BL_SIG_BASE + 4) /* bl_exit_pid from `from` */
#define BL_SIG_MONITOR   (BL_SIG_BASE + 5) /* from monitors us with ref */
#define BL_SIG_DEMONITOR (BL_SIG_BASE + 6) /* from dropped monitor ref */
#define BL_SIG_DOWN      (BL_SIG_BASE + 7) /* from, which we monitor with ref, exited */
#define BL_SIG_INFO      (BL_SIG_BASE + 8) /* from asks for process info, reply tagged ref */
#define BL_SIG_MSGS      (BL_SIG_BASE + 9) /* from asks for the queued messages (proc/msgs.c) */

static inline bool bl__is_signal(uint32_t tag)
{
    return (tag & ~0xFFu) == BL_SIG_BASE;
}

/*
 * Acts on signal m for process p (process context).  Returns m turned
 * into a message to queue, or NULL once it is consumed.  A fatal signal sets
 * *fatal and *why; *why's detail then points into *keep, which the caller
 * must free only after exiting has copied it.
 */
bl_msg *bl__signal_handle(bl_proc *p, bl_msg *m, bool *fatal, bl_reason *why, bl_msg **keep);
/* Sets up the links/monitors of a child being spawned with BL_SPAWN_*. */
int bl__spawn_relations(bl_proc *parent, bl_proc *child, unsigned flags, bl_ref ref);
/* On the scheduler, for a process that has exited: notify links and monitors. */
void bl__signals_on_exit(bl_proc *p, bl_msg *inbox, bl_msg *queue);
/* Frees a process's link and monitor lists. */
void bl__psig_free(bl_proc *p);
/* s's thread has stopped: frees its cache of link and monitor records. */
void bl__psig_cache_free(bl_sched *s);
/*
 * Sends signal sig (BL_SIG_*) from `from` to `to` with ref and reason r
 * (or none), as the runtime's own signals travel: for the distribution,
 * which delivers what other nodes' processes signal.  1 if pushed, 0 if
 * `to` is dead, or a negative errno.  Any thread.
 */
int bl__signal_send(bl_pid to, bl_pid from, uint32_t sig, bl_ref ref, const bl_reason *r);
/*
 * The distribution's end of a signal to a pid of another node (node bits
 * set): link, unlink, exit signals (BL_SIG_EXIT_LINK, BL_SIG_EXIT),
 * monitor, demonitor and DOWN, from `from` (which may be a process that is
 * exiting, not the caller).  dist/ installs it while the node runs, NULL
 * removes it; without it such a pid is malformed (-EINVAL).  Any thread;
 * returns 0 or a negative errno.
 */
typedef int (*bl__remote_signal_fn)(bl_pid to, bl_pid from, uint32_t sig, bl_ref ref,
                                    const bl_reason *r);
void bl__remote_signal_hook_set(bl__remote_signal_fn fn);
/*
 * Process only: the caller monitors pid under ref from now on (a DOWN
 * with ref ends it, bl_demonitor sends the demonitor signal to pid), with
 * nothing sent: for the distribution's monitors of {name, node}, whose
 * request it sends itself.  0, -EPERM, -ENOMEM.
 */
int bl__monitor_add(bl_pid pid, bl_ref ref);
/* Queues DOWN {ref, pid, r} for p itself (process context).  0 or -ENOMEM. */
int bl__down_to_self(bl_proc *p, bl_pid pid, bl_ref ref, const bl_reason *r);

/*
 * Process self asks live process t (pid) a question by signal sig, with
 * data[0..len): under a monitor, waiting up to 5 s for the answer tagged
 * reply (proc/info.c).  0 with *answer, -ESRCH when t died first, or the
 * error of the monitor, the allocation or the wait.
 */
/* Process only: m (a BL_SIG_MONITOR signal, or a request with BL_MSG_MONITOR)
 * asks for a monitor of p by m->from under m->ref: p now holds it. */
void bl__monitor_take(bl_proc *p, bl_msg *m);

int bl__ask(bl_proc *self, bl_proc *t, bl_pid pid, uint32_t sig, const void *data, size_t len,
            uint32_t reply, bl_msg **answer);
/* p answers such a question (ref, from `to`) with m, tagged tag; m is freed if `to` is gone. */
void bl__answer(bl_proc *p, bl_pid to, bl_ref ref, uint32_t tag, bl_msg *m);
/* Answers a BL_SIG_INFO request (proc/info.c; process context). */
void bl__info_answer(bl_proc *p, bl_pid to, bl_ref ref);
/* Answers a BL_SIG_MSGS request m (proc/msgs.c; process context). */
void bl__msgs_answer(bl_proc *p, const bl_msg *m);
/* The links/monitors/aliases/callers record of p, allocated on first use; NULL if out of memory. */
bl_psig *bl__psig(bl_proc *p);
/*
 * Monitor ref of p is over (bl_demonitor, or its DOWN was delivered):
 * removes ref from p's monitors, telling the target when `tell`.  Returns
 * the monitored pid, or BL_PID_NONE when ref was no monitor of p.
 */
bl_pid bl__monitor_end(bl_proc *p, bl_ref ref, bool tell);

/* ---- proc/alias.c ---- */

/* How an alias ends (bl_alias_ent.mode), besides bl_unalias. */
enum {
    BL_AMODE_EXPLICIT = 1,      /* only by bl_unalias */
    BL_AMODE_REPLY = 2,         /* the first message through it */
    BL_AMODE_MON_DEMONITOR = 3, /* its monitor ends */
    BL_AMODE_MON_REPLY = 4,     /* its monitor ends, or the first message (ending the monitor) */
};

/*
 * Drain, for a BL_MSG_ALIAS message whose ref is not p->alias: true when
 * it names another active alias of p (which a reply-once alias then
 * leaves), false when the message is to be dropped.
 */
bool bl__alias_accept(bl_proc *p, const bl_msg *m);
/* Monitor ref of p ended: an alias tied to it ends too. */
void bl__alias_monitor_ended(bl_proc *p, bl_ref ref);
/* Makes ref an alias of p in mode (BL_AMODE_*).  0 or -ENOMEM. */
int bl__alias_add(bl_proc *p, bl_ref ref, uint32_t mode);
/* Child of parent, spawned with inherit_callers: callers = [parent | parent's]. 0 or -ENOMEM. */
int bl__callers_inherit(bl_proc *parent, bl_proc *child);

/* ---- proc/main.c ---- */

/* On the scheduler, as bl_main's process finishes: records how, stops the runtime. */
void bl__main_exited(const bl_proc *p);

/* ---- proc/name.c ---- */

/* Frees the name a dying process holds, if any (exit path). */
void bl__name_release(bl_proc *p);

/* ---- proc/format.c ---- */

/* Fields for a reason: reason=<kind>, code (custom) and detail (if any); 3 at most. */
size_t bl__reason_fields(const bl_reason *r, bl_log_field *f);
/* A function's name for reports (symbol, or file+offset): as snprintf. */
int bl__fn_name(const void *fn, char *buf, size_t len);

/* ---- proc/log.c ---- */

/* Logs e as given (time, pid and all), past the level check: 0, -EAGAIN, -ENOMEM. */
int bl__log_event(const bl_log_event *e);

#endif /* BL_PROC_PROC_H */
