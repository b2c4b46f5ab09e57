/*
 * io/iop.h - one in-flight I/O operation: a completion for the ring, a wait for its process.
 */
#ifndef BL_IO_IOP_H
#define BL_IO_IOP_H

#include <linux/time_types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/proc.h"
#include "sched/completion.h"

struct bl_sched;
struct bl_stack;

enum { BL_IOP_PENDING = 0, BL_IOP_DONE = 1, BL_IOP_ORPHAN = 2 };

/*
 * Lives on the waiting process's stack (kept alive past the process's
 * death while the kernel still has it).  user_data of its SQE is &op->c.
 * Fields other than state belong to the ring's thread while the op is in
 * flight.
 */
typedef struct bl_iop {
    bl_completion c;             /* the ring's view: done() ends the wait (first member) */
    bl_waitop w;                 /* the process's view: orphan() when it dies waiting */
    uint64_t id;                 /* unique on its ring: names it in a cancel from elsewhere */
    struct bl_iop *next, *prev;  /* the ring owner's in-flight list */
    struct bl_proc *p;           /* the waiting process */
    struct bl_sched *s;          /* the scheduler whose ring has it; NULL: an external op */
    struct bl_stack *stack;      /* ORPHAN: the dead process's stack, freed at completion */
    uint64_t meta;               /* the wait it ends: generation, sequence, SLEEPING */
    _Atomic int state;           /* PENDING, then DONE (completion) or ORPHAN (death) */
    int32_t res;                 /* the CQE's result */
    uint32_t cflags;             /* the CQE's flags */
    bool timed;                  /* a linked timeout follows the SQE (no wheel timer to be had) */
    bool cancel_sent;            /* a cancel is on its way to the op's ring (timeout or death) */
    bool makes_fd;               /* a result >= 0 is a new descriptor (open, accept) */
    int orphan_fd;               /* closed if the op ends orphaned (connect_tcp), or -1 */
    int64_t ms;                  /* the timeout asked for (< 0: none) */
    struct __kernel_timespec ts; /* the linked timeout's duration */
} bl_iop;

/*
 * Operations completed by something other than a ring (the dirty-work
 * pool's threads).  bl__iop_wait_external(p, op, submit, ctx) marks op
 * PENDING (s = NULL), calls submit(op, ctx) to hand it over, and parks p
 * until bl__iop_complete_external(op, res) is called, from any thread,
 * exactly once; it returns res.  If p dies first, op is orphaned: it keeps
 * p's stack, and the completion frees that stack (op lives on it: nothing
 * may touch op or the stack after).
 */
/* Adds n (may be negative) to what bl_io_inflight counts: streams count while armed. */
void bl__io_inflight_add(int64_t n);

int bl__iop_wait_external(struct bl_proc *p, bl_iop *op, void (*submit)(bl_iop *op, void *ctx),
                          void *ctx);
void bl__iop_complete_external(bl_iop *op, int res);

#endif /* BL_IO_IOP_H */
