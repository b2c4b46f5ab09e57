/*
 * sched/hooks.h - how the scheduler reaches the layers above it without
 * including them.
 *
 * Named hooks: functions the scheduler calls and proc/ (the process
 * services, the layer right above) defines.  They are plain calls, since
 * they sit on the spawn, exit and timer paths; this header is their only
 * declaration, so the contract reads here.
 *
 * Services: layers further up (io/: operations in flight, streams, the
 * dirty pool; net/: the control socket) register a bl_sched_service when
 * their code is linked in (a constructor in their file), for housekeeping
 * on idle schedulers, for threads of their own started with the runtime,
 * and for the runtime's stop.  A program that never links a layer's code has
 * no state of it to keep.
 */
#ifndef BL_SCHED_HOOKS_H
#define BL_SCHED_HOOKS_H

#include "beamline.h"
#include "sched/timer.h"

struct bl_sched;
struct bl_proc;

/* ---- named hooks, defined by proc/ ---- */

/* A process's first instructions on a fresh stack (the context's entry). */
void bl__hook_proc_entry(void *arg);
/* On the scheduler's stack: p parked with BL_PARK_EXIT and never runs again. */
void bl__hook_proc_finish(struct bl_sched *s, struct bl_proc *p);
/* On p's scheduler, in a signal handler on the alternate stack: p faulted
 * (overflowed its stack) and must end with reason `why`.  Never returns. */
_Noreturn void bl__hook_proc_fault(struct bl_proc *p, bl_reason_kind why);
/* The wheel reached timer t of a kind other than BL_TIMER_WAIT (send_after). */
void bl__hook_timer_fire(struct bl_sched *s, bl_timer *t);
/* Runtime stop, no scheduler runs: frees what the process in slot p still holds. */
void bl__hook_proc_discard(struct bl_proc *p, void *ctx);
/* Runtime stop, s's thread joined: frees the process layer's state on s. */
void bl__hook_sched_free(struct bl_sched *s);

/* ---- services, registered by the layers above proc/ ---- */

typedef struct bl_sched_service {
    const char *name;                       /* for debugging */
    void (*idle)(struct bl_sched *s);       /* owner thread, every 64th idle round and when asked
                                               for (bl__sched_services_soon), or NULL */
    void (*sched_free)(struct bl_sched *s); /* s's thread joined and its ring is gone (or NULL) */
    void (*started)(void); /* end of bl_runtime_start, every scheduler running (or NULL): a
                              service of its own threads starts them here */
    void (*stopped)(void); /* every scheduler joined, before processes are discarded (or NULL) */
    struct bl_sched_service *next; /* the registry's link */
} bl_sched_service;

/* Adds svc (static storage) to the registry.  Before main or at any time; idempotent. */
void bl__sched_service_add(bl_sched_service *svc);

#endif /* BL_SCHED_HOOKS_H */
