/*
 * proc/stimer.h - message timers (send_after) owned by one scheduler.
 */
#ifndef BL_PROC_STIMER_H
#define BL_PROC_STIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "beamline.h"
#include "sched/timer.h"

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

struct bl_sched;
/* Frees every slot and the messages of timers that never fired. */
void bl__stimers_destroy(struct bl_sched *s);
/* The wheel reached a send_after timer (owner thread). */
void bl__stimer_fire(struct bl_sched *s, bl_timer *t);

#endif /* BL_PROC_STIMER_H */
