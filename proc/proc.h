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
    bl__ctx_jump(&p->ctx, &p->sched->ctx, park == BL_PARK_EXIT || park == BL_PARK_IDLE);
    /* Back from a yield, a wait or a sleep: signals may be waiting. */
    bl__signals_check(p);
}

/* Charges n reductions; yields when the slice is used up. */
static inline void bl__charge(bl_proc *p, int32_t n)
{
    if ((p->reds -= n) <= 0) bl__park(p, BL_PARK_YIELD);
}

/* ---- proc/process.c ---- */

#define BL_SPAWN_LINK    1u /* link parent and child before the child runs */
#define BL_SPAWN_MONITOR 2u /* the parent monitors the child with `ref` */
int bl__spawn(bl_pid *out, bl_entry_fn fn, void *arg, const bl_handler *h, const bl_spawn_opts *o,
              unsigned flags, bl_ref ref);
/* The live process `to` names, or NULL with *err set (-EINVAL malformed, -ESRCH gone). */
bl_proc *bl__target(bl_pid to, int *err);
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
/* Queues DOWN {ref, pid, r} for p itself (process context).  0 or -ENOMEM. */
int bl__down_to_self(bl_proc *p, bl_pid pid, bl_ref ref, const bl_reason *r);

/* Answers a BL_SIG_INFO request (proc/info.c; process context). */
void bl__info_answer(bl_proc *p, bl_pid to, bl_ref ref);

/* ---- proc/name.c ---- */

/* Frees the name a dying process holds, if any (exit path). */
void bl__name_release(bl_proc *p);

#endif /* BL_PROC_PROC_H */
