/*
 * proc/stimer.h - message timers (send_after) owned by one scheduler.
 */
#ifndef BL_PROC_STIMER_H
#define BL_PROC_STIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "beamline.h"
#include "sched/timer.h"

/* bl_timer.kind of a send_after timer (the scheduler's own are BL_TIMER_WAIT = 0). */
#define BL_TIMER_SEND 1u

#define BL_STIMER_CHUNK_BITS 16
#define BL_STIMER_CHUNKS     32 /* 2^21 pending timers per scheduler at most */

/* One pending send_after.  Slots are never freed while the runtime runs. */
typedef struct bl_stimer {
    bl_timer t;             /* wheel link and deadline (owner only) */
    _Atomic uint64_t word;  /* generation << 32 | state: the one thing other threads touch */
    bl_msg *m;              /* the message to deliver, built at arming */
    bl_pid to;              /* its destination */
    struct bl_stimer *next; /* owner's free list */
    uint32_t index;         /* this slot's number, for its references */
} bl_stimer;

/* The slots of one scheduler. */
typedef struct bl_stimers {
    _Atomic(bl_stimer *)
        chunks[BL_STIMER_CHUNKS]; /* published with release; read from any thread */
    uint32_t used;                /* slots handed out so far (owner) */
    bl_stimer *free;              /* owner's free list */
} bl_stimers;

/* The scheduler hooks bl__hook_timer_fire (the wheel reached a send_after
 * timer) and bl__hook_sched_free (frees every slot and the messages of
 * timers that never fired) are defined in proc/stimer.c. */

#endif /* BL_PROC_STIMER_H */
