/*
 * sched/sched.h - schedulers: one thread per core, each with its run
 * queues, timer wheel, slab, stack pool and io_uring.
 *
 * Fields are grouped by which thread writes them, each group on its own
 * cache lines: read-mostly setup, fields other threads write (inject queue,
 * sleeping flag), the stealable run queue, then the owner's private state.
 */
#ifndef BL_SCHED_SCHED_H
#define BL_SCHED_SCHED_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#include "beamline.h"
#include "core/proc.h"
#include "core/slab.h"
#include "core/stack.h"
#include "sched/runq.h"
#include "proc/stimer.h"
#include "sched/timer.h"
#include "sched/topology.h"

/* user_data of the completions a scheduler's ring carries for itself. */
#define BL_UD_WAKE    1u /* MSG_RING wake-up from another scheduler */
#define BL_UD_EVENTFD 2u /* the armed eventfd read completed */
#define BL_UD_IGNORE  3u /* linked timeouts and cancels: their own completions say nothing */
/* Any other user_data is the address of a bl_iop (io/iop.h). */

/*
 * A timer owned by one scheduler's wheel, waking one wait of one process.
 *
 * Who frees it: the owner when the timer wins its wake-up (the process then
 * never sees it again), otherwise whichever of the owner and the process
 * comes second, decided by exchanging `state`:
 *   ARMED -> FIRED      the owner fired it but the wait had already ended;
 *   ARMED -> ABANDONED  the process, running elsewhere, gave up on it.
 * A process on the owner's thread simply cancels it (no concurrency there).
 */
enum { BL_TENTRY_ARMED, BL_TENTRY_FIRED, BL_TENTRY_ABANDONED };

/* bl_timer.kind: what the wheel hands back. */
enum { BL_TIMER_WAIT = 0, BL_TIMER_SEND = 1 };

typedef struct bl_tentry {
    bl_timer t;             /* wheel link and deadline */
    bl_proc *p;             /* process to wake */
    uint64_t meta;          /* exact mailbox meta of the wait it ends */
    struct bl_sched *owner; /* scheduler whose wheel and slab hold it */
    _Atomic uint32_t state; /* BL_TENTRY_*, see above */
} bl_tentry;

/*
 * Statistics.  Only the owner writes them (BL_STAT_ADD: a relaxed load and
 * store, no read-modify-write); other threads read them with relaxed loads
 * and may see slightly old values.
 */
typedef struct bl_sched_stats {
    _Atomic uint64_t switches;     /* processes switched in */
    _Atomic uint64_t steals;       /* successful steals (batches) */
    _Atomic uint64_t stolen;       /* processes moved by those steals */
    _Atomic uint64_t sleeps;       /* times the scheduler slept in the ring */
    _Atomic uint64_t wakeups_sent; /* wake-ups this scheduler sent to others */
    _Atomic uint64_t timers_fired; /* timers that ended a wait */
    _Atomic uint64_t idle_ns;      /* time spent idle */
} bl_sched_stats;

#define BL_STAT_ADD(s, field, n)                                                                   \
    atomic_store_explicit(&(s)->st.field,                                                          \
                          atomic_load_explicit(&(s)->st.field, memory_order_relaxed) + (n),        \
                          memory_order_relaxed)
#define BL_STAT(s, field) atomic_load_explicit(&(s)->st.field, memory_order_relaxed)

/* An owner-only FIFO of processes linked through rq_next. */
typedef struct bl_plist {
    bl_proc *head; /* first to run */
    bl_proc *tail; /* last queued */
} bl_plist;

struct bl_runtime;

typedef struct bl_sched {
    /* --- Set up before the thread starts; read-mostly. --- */
    unsigned index;        /* position in the runtime's array */
    struct bl_runtime *rt; /* the runtime */
    int numa;              /* NUMA node (OS index) or -1 */
    int ring_fd;           /* this ring's fd, for MSG_RING from other rings */
    int evfd;              /* eventfd for wake-ups from threads without a ring */

    /* --- Written by other threads. --- */
    _Alignas(64) _Atomic(bl_qnode *) inject_head; /* MPSC inject queue, producers' end */
    _Alignas(64) _Atomic int sleeping; /* 1 while it sleeps (or is about to) in the ring */

    /* --- Stealable: head is CAS'd by thieves. --- */
    bl_runq rq;

    /* --- Owner thread only. --- */
    _Alignas(64) bl_qnode *inject_tail; /* MPSC inject queue, consumer's end */
    bl_qnode inject_stub;               /* the MPSC queue's stub node */
    bl_proc *runnext;                   /* woken locally: runs next, inheriting the slice */
    bl_proc *ovf_head;                  /* overflow of rq, FIFO through rq_next */
    bl_proc *ovf_tail;                  /* last of ovf_head */
    uint32_t ovf_len;                   /* length of the overflow list */
    bl_plist tmo;                    /* normal processes woken by their timers: before the queues */
    bl_plist lanes[BL_PRIO_MAX + 1]; /* owner-only FIFOs for low, high and max (normal: rq) */
    uint32_t low_turn;               /* counts normal picks: every 8th goes to a low process */
    bl_proc *current;                /* process now running, NULL in the loop */
    bl_ctx ctx;                      /* the scheduler loop's own context */
    int32_t slice_left;              /* reductions left for a runnext successor */
    int32_t reductions;              /* the configured slice, cached */
    uint32_t tick;                   /* scheduling rounds, for periodic checks */
    uint64_t ref_next;               /* next reference of the block in hand */
    uint64_t ref_end;                /* end of that block */
    bl_twheel wheel;                 /* timers for receive timeouts and sleeps */
    bl_stimers stimers;              /* send_after timers this scheduler owns */
    bl_slab slab;                    /* envelopes and timer entries */
    bl_stack_pool stacks;            /* process stacks */
    bl_proc_cache pcache;            /* free PCB slots */
    struct io_uring ring;            /* every wait goes through here */
    bool ring_ok;                    /* ring initialised */
    struct bl_iop *io_ops;           /* operations in flight on this ring */
    struct bl_mop *io_streams;       /* multishot streams armed on this ring (io/stream.c) */
    struct bl_bufring *io_bufring;   /* provided buffers for receive streams, NULL until used */
    uint32_t io_sweeps;              /* idle rounds, to sweep streams now and then */
    int schedstat_fd;                /* this thread's /proc schedstat, or -1 */
    uint64_t cpu_check_ns;           /* when the thread's run-queue delay was last read */
    uint64_t cpu_delay_ns;           /* that delay (time runnable but not running) then */
    uint64_t no_spin_until;          /* the CPU is contended: no idle spinning before this */
    uint32_t io_count;               /* how many */
    uint32_t sq_pending;             /* SQEs prepared since the last submit */
    _Alignas(64) _Atomic(struct bl_iop *) io_cancels; /* orphans other schedulers hand over */
    bool ev_armed;                                    /* the eventfd read is in flight */
    uint64_t evbuf;                                   /* target of the eventfd read */
    pthread_t thread;                                 /* the scheduler thread */
    int start_err;                                    /* negative errno if start-up failed */
    bl_sched_stats st; /* statistics (owner writes, others read racily) */
} bl_sched;

typedef struct bl_runtime {
    bl_config cfg;                /* configuration in force (defaults filled in) */
    unsigned nsched;              /* number of schedulers */
    bl_sched **scheds;            /* the schedulers */
    bl_slab **slabs;              /* each scheduler's slab, by index */
    bl_topology topo;             /* placement and steal order */
    bool msg_ring;                /* wake with MSG_RING (else eventfd) */
    bool cqe_skip;                /* IOSQE_CQE_SKIP_SUCCESS is supported */
    unsigned ring_flags;          /* setup flags the rings got */
    _Atomic int nsleeping;        /* schedulers asleep in their ring */
    _Atomic int nspinning;        /* schedulers spinning for work */
    _Atomic int stop;             /* set by bl_runtime_stop */
    _Atomic uint32_t stop_futex;  /* bl_runtime_wait sleeps on this */
    _Atomic unsigned rr;          /* round-robin placement of outside spawns */
    _Atomic uint64_t ref_blocks;  /* reference counter, handed out in blocks */
    _Atomic int64_t live;         /* processes alive */
    bl_pid main_pid;              /* bl_main's process */
    uint64_t start_ns;            /* when the runtime started */
    pthread_mutex_t outside_lock; /* guards outside: spawns from non-scheduler threads (rare) */
    bl_proc_cache outside;        /* PCB slots for those spawns */
} bl_runtime;

extern bl_runtime *bl__rt;
extern __thread bl_sched *bl__tls_sched;

/* Monotonic clock in nanoseconds. */
uint64_t bl__now_ns(void);

/* The process running on this thread, or NULL. */
static inline bl_proc *bl__self(void)
{
    bl_sched *s = bl__tls_sched;
    return s ? s->current : NULL;
}

/* bl__sched_ready flags.  NEXT: run it before older runnable processes (a
 * local wake-up by message).  INJECT: go through the inject queue even from
 * its own scheduler, where thieves cannot take it. */
#define BL_READY_NEXT   1u
#define BL_READY_INJECT 2u

/*
 * Queues p, which the caller just moved from WAITING/SLEEPING to ACTIVE (or
 * created), on its home scheduler.
 */
void bl__sched_ready(bl_proc *p, unsigned flags);

/*
 * Process only: switches back to the scheduler with request `park`.  Inline
 * so that the switch sits directly in the calling bl_ function (see run()
 * in sched.c on why frames around a switch cost).
 */
void bl__signals_check_slow(bl_proc *p);

/* Acts on signals that arrived for p (see BL_META_SIG).  Process only. */
static inline void bl__signals_check(bl_proc *p)
{
    if (__atomic_load_n(&p->box.meta, __ATOMIC_RELAXED) & BL_META_SIG) bl__signals_check_slow(p);
}

static inline __attribute__((always_inline)) void bl__sched_park(bl_proc *p, unsigned park)
{
    p->park = (uint8_t)park;
    bl__ctx_jump(&p->ctx, &p->sched->ctx, park == BL_PARK_EXIT || park == BL_PARK_IDLE);
    /* Back from a yield, a wait or a sleep: signals may be waiting. */
    bl__signals_check(p);
}

/*
 * Process only: arms a timer that ends p's coming wait (sequence p->seq + 1,
 * state st) at deadline_ns.  The caller then bumps p->seq and parks.
 * Returns 0 or -ENOMEM.
 */
int bl__sched_arm_timer(bl_proc *p, uint64_t deadline_ns, unsigned st);
/* Process only: cancels p's pending timer, if any. */
void bl__sched_disarm_timer(bl_proc *p);

/* Charges n reductions; yields when the slice is used up. */
static inline void bl__charge(bl_proc *p, int32_t n)
{
    if ((p->reds -= n) <= 0) bl__sched_park(p, BL_PARK_YIELD);
}

/* The scheduler thread's main function. */
void *bl__sched_main(void *arg);
/* Wakes scheduler t if it sleeps. */
void bl__sched_notify(bl_sched *t);
/* Frees what the scheduler holds once its thread has exited. */
void bl__sched_destroy(bl_sched *s);

/* Ring set-up and wake-ups (sched/ring.c). */
int bl__ring_setup(bl_sched *s, char *err, size_t errlen);
void bl__ring_teardown(bl_sched *s);
void bl__ring_send_wake(bl_sched *from, bl_sched *to);
/* Sleeps in the ring until a completion or timeout_ns (UINT64_MAX = none). */
void bl__ring_wait(bl_sched *s, uint64_t timeout_ns);
/* Handles every completion already posted.  Returns how many. */
unsigned bl__ring_reap(bl_sched *s);

/* Completions wait to be reaped, or (DEFER_TASKRUN with TASKRUN_FLAG) to be
 * run by the next io_uring_enter: a few loads, no system call. */
static inline bool bl__ring_ready(bl_sched *s)
{
    return io_uring_cq_ready(&s->ring) ||
           (IO_URING_READ_ONCE(*s->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* ---- sched/process.c: shared by the process-facing calls ---- */

/* Process table cleanup at shutdown. */
void bl__proc_discard(bl_proc *p, void *ctx);

#define BL_SPAWN_LINK    1u /* link parent and child before the child runs */
#define BL_SPAWN_MONITOR 2u /* the parent monitors the child with `ref` */
int bl__spawn(bl_pid *out, bl_entry_fn fn, void *arg, const bl_handler *h, const bl_spawn_opts *o,
              unsigned flags, bl_ref ref);
bl_proc *bl__target(bl_pid to, int *err);
bool bl__push(bl_proc *p, bl_pid to, bl_msg *m, bool signal);
bool bl__push_lazy(bl_proc *p, bl_pid to, bl_msg *m);
bool bl__drain(bl_proc *p);
_Noreturn void bl__exit_self(bl_proc *p, const bl_reason *r);

/* ---- sched/signal.c ---- */

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

/* Answers a BL_SIG_INFO request (sched/info.c; process context). */
void bl__info_answer(bl_proc *p, bl_pid to, bl_ref ref);

/* ---- sched/name.c ---- */

/* Frees the name a dying process holds, if any (exit path). */
void bl__name_release(bl_proc *p);

/* ---- sched/overflow.c: stack overflow ends the process (invariant 9) ---- */

/* Runtime start: installs the SIGSEGV handler, remembering the previous action. */
void bl__overflow_install(void);
/* Runtime stop or failed start: puts the previous action back.  Idempotent. */
void bl__overflow_uninstall(void);
/* Scheduler thread start: gives the thread its alternate signal stack.  0 or -errno (err set). */
int bl__overflow_thread_init(char *err, size_t errlen);
/* Scheduler thread exit: restores the thread's previous alternate stack and frees ours. */
void bl__overflow_thread_exit(void);

#endif /* BL_SCHED_SCHED_H */
