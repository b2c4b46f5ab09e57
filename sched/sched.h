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
#include "core/wait.h"
#include "sched/completion.h"
#include "sched/hooks.h"
#include "sched/runq.h"
#include "sched/timer.h"
#include "sched/topology.h"

/*
 * A timer owned by one scheduler's wheel, waking one wait of one process.
 *
 * Who frees it: the owner when the timer wins its wake-up (the process then
 * never sees it again); a process on the owner's thread simply cancels and
 * frees it (no concurrency there).  A process running elsewhere (stolen
 * since it armed the timer) cannot touch the owner's wheel; the exchange of
 * `state` decides:
 *   ARMED -> FIRED      the owner fired it but the wait had already ended:
 *                       the process, coming second, frees it (remotely);
 *   ARMED -> ABANDONED  the process gave up on it first: it hands the entry
 *                       to the owner's abandoned list, and the owner unlinks
 *                       and frees it at its next turn, long before its
 *                       deadline (a fire meanwhile leaves it alone).
 *
 * Filed late: an entry is armed onto the owner's unfiled list (linked
 * through t.next, t.slot BL_TIMER_UNFILED) and goes into the wheel at the
 * owner's next timer turn, which comes before anything reads the wheel and
 * reads the clock its deadline is counted from.  Most waits with a timeout
 * end well before it (a call's reply comes in a microsecond): a process on
 * the owner's thread that stops waiting first only marks its entry
 * CANCELLED, and the turn frees it without the wheel ever placing it.
 *   ARMED -> CANCELLED  owner's thread only, while unfiled.
 */
enum { BL_TENTRY_ARMED, BL_TENTRY_FIRED, BL_TENTRY_ABANDONED, BL_TENTRY_CANCELLED };

/* bl_timer.slot of a wait timer on its owner's unfiled list, whose
 * t.deadline then holds the timeout in ns, counted from its filing. */
#define BL_TIMER_UNFILED (BL_TIMER_UNLINKED - 1)

/* bl_timer.kind of the scheduler's own wait timers; the wheel hands any
 * other kind to bl__hook_timer_fire (send_after timers, proc/stimer.h). */
enum { BL_TIMER_WAIT = 0 };

typedef struct bl_tentry {
    bl_timer t;              /* wheel link and deadline */
    bl_proc *p;              /* process to wake */
    uint64_t meta;           /* exact mailbox meta of the wait it ends */
    struct bl_tentry *anext; /* link in the owner's abandoned list */
    uint32_t owner;          /* index of the scheduler whose wheel and slab hold it */
    _Atomic uint32_t state;  /* BL_TENTRY_*, see above */
} bl_tentry;

/* Most idle handlers a scheduler lets keep their stacks (sched/keep.c). */
#define BL_KEEP_MAX 8u

/*
 * Statistics.  Only the owner writes them (BL_STAT_ADD: a relaxed load and
 * store, no read-modify-write); other threads read them with relaxed loads
 * and may see slightly old values.
 */
typedef struct bl_sched_stats {
    _Atomic uint64_t switches;       /* processes switched in */
    _Atomic uint64_t steals;         /* successful steals (batches) */
    _Atomic uint64_t stolen;         /* processes moved by those steals */
    _Atomic uint64_t pulled;         /* processes moved here by a wake-up from here */
    _Atomic uint64_t sleeps;         /* times the scheduler slept in the ring */
    _Atomic uint64_t wakeups_sent;   /* wake-ups this scheduler sent to others */
    _Atomic uint64_t timers_fired;   /* timers that ended a wait */
    _Atomic uint64_t mail_spins;     /* waits for mail watched before the park (spin_for_mail) */
    _Atomic uint64_t mail_spin_hits; /* of those, the ones mail or a signal ended */
    _Atomic uint64_t spin_offs;      /* times its CPU was found contended: no spinning for 100 ms */
    _Atomic uint64_t stack_keeps;    /* idle handlers that parked keeping their stacks */
    _Atomic uint64_t stack_sheds;    /* of those, the ones whose stacks it took back (idle on) */
    _Atomic uint64_t nostack_fails;  /* processes that found no stack to be had (wait_for_stack) */
    _Atomic uint64_t idle_ns;        /* time spent idle */
    _Atomic uint64_t timers;         /* timers on the wheel, published at each timer turn */
    /* Processes spawned here less processes that ended here: negative when
     * more ended here than began.  The count alive is the sum over the
     * schedulers plus the runtime's outside_live (bl__live).  One shared
     * counter cost every spawn and every exit a locked add on a line both
     * schedulers wrote (12% of spawn_exit's profile). */
    _Atomic int64_t live;
    /* Also published at each timer turn, for the live view (cheap there). */
    _Atomic uint32_t io_inflight;      /* ring_inflight */
    _Atomic uint32_t stacks_pooled;    /* free stacks resident in the pool (hot and surplus) */
    _Atomic uint32_t stacks_cold;      /* free stacks whose memory went back */
    _Atomic uint64_t stack_pool_bytes; /* the pool's mapped bytes */
    _Atomic uint64_t slab_bytes;       /* the slab's span bytes */
    /* Written by the watchdog thread alone (sched/watchdog.c). */
    _Atomic uint64_t long_schedules; /* processes seen running past the threshold here */
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
    /* The MPSC queue's stub node: a producer that finds the queue empty
     * links behind it, so it has a line of its own, away from the owner's. */
    _Alignas(64) bl_qnode inject_stub;
    _Alignas(64) _Atomic int sleeping; /* 1 while it sleeps (or is about to) in the ring */
    _Atomic(bl_ring_post *) posts;     /* work other threads hand to the ring (bl__ring_post) */
    _Atomic(bl_tentry *) abandoned;    /* wait timers processes elsewhere gave up on */
    _Atomic int services_due;          /* run the services' idle work at the next turn */

    /* --- Stealable: head is CAS'd by thieves. --- */
    bl_runq rq;

    /* --- Owner thread only. --- */
    _Alignas(64) bl_qnode *inject_tail; /* MPSC inject queue, consumer's end */
    bl_proc *runnext;                   /* woken locally: runs next, inheriting the slice */
    bl_proc *ovf_head;                  /* overflow of rq, FIFO through rq_next */
    bl_proc *ovf_tail;                  /* last of ovf_head */
    uint32_t ovf_len;                   /* length of the overflow list */
    bl_plist tmo;                    /* normal processes woken by their timers: before the queues */
    bl_plist lanes[BL_PRIO_MAX + 1]; /* owner-only FIFOs for low, high and max (normal: rq) */
    uint32_t low_turn;               /* counts normal picks: every 8th goes to a low process */
    /* The process now running, NULL in the loop.  Only the owner writes it
     * (relaxed stores: plain moves); the long-schedule watchdog reads it from
     * its own thread (sched/watchdog.c), relaxed, with the switch count. */
    _Atomic(bl_proc *) current;
    bl_proc *prev;      /* switched straight to current, not yet settled (a waiter: lazily) */
    int32_t run_start;  /* current's reductions when it was switched in */
    bl_ctx ctx;         /* the scheduler loop's own context */
    int32_t slice_left; /* reductions left for a runnext successor */
    int32_t reductions; /* the configured slice, cached */
    uint32_t tick;      /* picks (the loop's and direct switches), for periodic checks */
    uint32_t poll_tick; /* tick of the loop's last ring poll */
    uint32_t turn_tick; /* tick of the loop's last timer and services turn */
    bl_proc *spun;      /* the process whose mailbox bl__sched_spin_mail last watched */
    uint32_t trim_tick; /* tick of the loop's last trim under load */
    uint64_t ref_next;  /* next reference of the block in hand (bl_make_ref) */
    uint64_t ref_end;   /* end of that block */
    bl_twheel wheel;    /* timers for receive timeouts and sleeps */
    bl_timer *unfiled;  /* wait timers armed since the last timer turn (sched/wtimer.c) */
    /* send_after timers this scheduler owns (proc/stimer.c), created by the
     * owner at its first one; other threads read it (acquire) to cancel. */
    _Atomic(struct bl_stimers *) stimers;
    bl_slab slab;         /* envelopes and timer entries */
    bl_stack_pool stacks; /* process stacks */
    bl_proc_cache pcache; /* free PCB slots */
    /* Processes that could not get a stack (memory or the address space
     * exhausted): out of the queues until a stack is back in the pool or
     * nostack_at passes, then tried again a batch at a time; the wait
     * doubles (1 to 128 ms) while whole batches fail (sched.c,
     * stackless_turn). */
    bl_plist nostack;
    uint64_t nostack_at;        /* when nostack is tried again */
    uint64_t nostack_wait_ns;   /* the wait before the next try */
    uint64_t nostack_tried;     /* nostack_fails when the last batch was tried */
    uint32_t nostack_batch;     /* how many that batch held */
    struct bl_psig *psig_cache; /* free link and monitor records (proc/signal.c) */
    unsigned psig_ncache;       /* records in psig_cache */
    struct io_uring ring;       /* every wait goes through here */
    bool ring_ok;               /* ring initialised */
    bl_completion ev_done;      /* the armed eventfd read's completion */
    /* The I/O layer's per-ring state, opaque here (io/io.c, io/stream.c). */
    struct bl_iop *io_ops;         /* operations in flight on this ring */
    uint64_t io_seq;               /* numbers the operations submitted here (bl_iop.id) */
    struct bl_mop *io_streams;     /* multishot streams armed on this ring */
    struct bl_bufring *io_bufring; /* provided buffers for receive streams, NULL until used */
    uint32_t idle_rounds;          /* idle rounds, for the services' idle work now and then */
    uint64_t services_at;          /* services_due is not acted upon before (ns) */
    int schedstat_fd;              /* this thread's /proc schedstat, or -1 */
    uint64_t cpu_check_ns;         /* when the thread's run-queue delay was last read */
    uint64_t cpu_delay_ns;         /* that delay (time runnable but not running) then */
    uint64_t spin_ns;       /* the idle spin (0: off); a mailbox watch takes at most 3 us of it */
    uint64_t no_spin_until; /* the CPU is contended: no idle spinning before this */
    uint32_t ring_inflight; /* operations awaiting a completion on the ring */
    uint32_t sq_pending;    /* SQEs prepared since the last submit */
    bool ev_armed;          /* the eventfd read is in flight */
    uint64_t evbuf;         /* target of the eventfd read */
    pthread_t thread;       /* the scheduler thread */
    int start_err;          /* negative errno if start-up failed */
    bl_sched_stats st;      /* statistics (owner writes, others read racily) */
    /* Messages the running process sent to one receiver that is behind its
     * senders, or that waits in this scheduler's runnext to run after it,
     * held back to be pushed together (proc/process.c bl__push):
     * one CAS on the receiver's mailbox word for up to BL_OUTBOX_MAX of
     * them instead of one each.  Pushed when that many are held, before the
     * process pushes anything else (another receiver, or a signal), and
     * when it switches out (switch_out), so nothing stays held past the
     * process's run, and each sender's order to each receiver holds. */
    struct {
        bl_proc *p;     /* the receiver; NULL: none armed */
        bl_pid to;      /* its pid */
        bl_msg *newest; /* the messages held, newest first, through next */
        bl_msg *oldest; /* the first of them */
        uint32_t n;     /* how many */
        bool local;     /* held for this scheduler's runnext, not for a receiver behind */
    } outbox;
    /* Idle handlers on this scheduler that kept their stacks (sched/keep.c),
     * at most BL_KEEP_MAX: slot i is in use when bit i of kept_used is set.
     * Each entry names the wait its handler parked in. */
    struct {
        bl_proc *p;    /* the handler */
        uint64_t meta; /* its wait: generation, sequence, WAITING */
        uint32_t turn; /* turns (below) when it parked */
    } kept[BL_KEEP_MAX];
    uint32_t kept_used;
    uint32_t turns; /* housekeeping turns so far (every 64 picks) */
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
    _Atomic int64_t outside_live; /* processes spawned by threads that are not schedulers */
    bl_pid main_pid;              /* bl_main's process */
    uint64_t start_ns;            /* when the runtime started */
    pthread_mutex_t outside_lock; /* guards outside: spawns from non-scheduler threads (rare) */
    bl_proc_cache outside;        /* PCB slots for those spawns */
} bl_runtime;

extern bl_runtime *bl__rt;
extern __thread bl_sched *bl__tls_sched;

/* Processes alive: the schedulers' counts and the outside spawns, read
 * racily (exact when nothing spawns or ends meanwhile). */
static inline int64_t bl__live(const bl_runtime *rt)
{
    int64_t n = atomic_load_explicit(&rt->outside_live, memory_order_relaxed);
    for (unsigned i = 0; i < rt->nsched; i++)
        n += (int64_t)atomic_load_explicit(&rt->scheds[i]->st.live, memory_order_relaxed);
    return n;
}

/* Monotonic clock in nanoseconds. */
uint64_t bl__now_ns(void);

/* The process running on scheduler s, or NULL.  Relaxed: the owner reads
 * its own store; another thread gets a hint that may be stale at once. */
static inline bl_proc *bl__sched_current(bl_sched *s)
{
    return atomic_load_explicit(&s->current, memory_order_relaxed);
}

/* Owner only: records who runs (relaxed: see bl_sched.current). */
static inline void bl__sched_set_current(bl_sched *s, bl_proc *p)
{
    atomic_store_explicit(&s->current, p, memory_order_relaxed);
}

/* The process running on this thread, or NULL. */
static inline bl_proc *bl__self(void)
{
    bl_sched *s = bl__tls_sched;
    return s ? bl__sched_current(s) : NULL;
}

/* bl__sched_ready flags.  NEXT: run it before older runnable processes (a
 * local wake-up by message).  INJECT: go through the inject queue even from
 * its own scheduler, where thieves cannot take it.  SPAWN: a child spawned
 * on the caller's scheduler takes the runnext slot if it is free (else it
 * queues behind the others): there no idle peer steals it before its first
 * run, which would put every exchange between parent and child across
 * cores, and children still start in the order they were spawned. */
#define BL_READY_NEXT   1u
#define BL_READY_INJECT 2u
#define BL_READY_SPAWN  4u

/*
 * Queues p, which the caller just moved from WAITING/SLEEPING to ACTIVE (or
 * created), on its home scheduler.
 */
void bl__sched_ready(bl_proc *p, unsigned flags);

/*
 * Owner, in no process: p, switched out for a new wait (p->seq bumped),
 * gives its stack back and waits without one, as BL_PARK_IDLE asks: an idle
 * handler, a hibernating process, or a handler whose kept stack the
 * scheduler takes back (sched/keep.c).  Mail already queued, or come
 * meanwhile, runs it again at once.
 */
static inline void bl__sched_park_stackless(bl_sched *s, bl_proc *p)
{
    bl__stack_put(&s->stacks, p->stack);
    BL_PUBLISH(p->stack, NULL);
    /* The sanitizers' view of the context goes with the stack. */
    bl__ctx_destroy(&p->ctx);
    atomic_store_explicit(&p->status, BL_STATUS_WAITING, memory_order_relaxed);
    if (p->q_head || !bl__wait_park(p, BL_ST_WAITING)) bl__sched_ready(p, BL_READY_NEXT);
}

/*
 * Direct switches.  A process that gives up the CPU (proc/proc.h's
 * bl__park) asks bl__sched_handoff for its successor: when the loop has
 * nothing to do in between (no I/O to submit, no periodic turn due) the
 * successor the loop would pick is switched in at once, process to process,
 * and p's park request is settled by the successor right after the switch
 * (bl__sched_switched), once p's context is saved and nothing can run it
 * twice.  NULL: switch to the loop, which settles p itself.  A p gone to
 * wait for mail is settled lazily: it stays s->prev, ACTIVE in its word,
 * while the successor runs, and is settled when the successor stops
 * running (its own handoff, or the loop): then it runs next if mail came
 * meanwhile, without having parked, or parks.  A partner that answers
 * finds it awake and only pushes: no park, no wake-up.
 */
bl_proc *bl__sched_handoff(bl_sched *s, bl_proc *p);
void bl__sched_settle_prev(bl_sched *s);

/* Most messages an outbox holds. */
#define BL_OUTBOX_MAX 64u

/*
 * Pushes what s's outbox holds to its receiver (dropped if the receiver is
 * gone; the receiver queued if the push woke it).  The outbox stays armed
 * for that receiver only when keep is set and it is still behind.
 */
void bl__sched_outbox_flush(bl_sched *s, bool keep);

/*
 * Process only: p, a handler with nothing to do, bumped p->seq for its
 * park.  True when it may park keeping its stack (BL_PARK_WAIT, and the
 * next message resumes it where it parked), false when it must park
 * without (BL_PARK_IDLE).  See sched/keep.c.
 */
static inline bool bl__sched_keep(bl_proc *p)
{
    bl_sched *s = p->sched;
    uint32_t free_slots = ~s->kept_used & ((1u << BL_KEEP_MAX) - 1);
    if (!free_slots) return false;
    unsigned i = (unsigned)__builtin_ctz(free_slots);
    s->kept[i].p = p;
    s->kept[i].meta = bl__meta(p->gen, p->seq, BL_ST_WAITING);
    s->kept[i].turn = s->turns;
    s->kept_used |= 1u << i;
    BL_STAT_ADD(s, stack_keeps, 1);
    return true;
}
/* Owner: takes the kept stacks back, all of them or those kept since the
 * turn before last. */
void bl__sched_shed(bl_sched *s, bool all);
/* Owner: p is about to run here: it no longer keeps a stack idle. */
static inline void bl__sched_unkeep(bl_sched *s, bl_proc *p)
{
    for (uint32_t used = s->kept_used; used; used &= used - 1) {
        unsigned i = (unsigned)__builtin_ctz(used);
        if (s->kept[i].p == p) s->kept_used &= ~(1u << i);
    }
}

/*
 * Process only: p, running on s, found no mail and is about to park for it.
 * When s has nothing else to do, watches p's mailbox word in p's own
 * context for up to 3 us (the loop's mailbox watch, spin_for_mail, without
 * the two switches around it): true when mail or a signal came, and p goes
 * on without parking.  False when it did not come, or the watch was not
 * for now (a partner queued here, the loop due a turn); the loop then does
 * not watch p again before parking it.
 */
bool bl__sched_spin_mail(bl_sched *s, bl_proc *p);

/* Every context just switched in calls this first, on its scheduler s.  A
 * predecessor gone to wait for mail stays unsettled (bl__sched_handoff).
 * Out of line past the test: it is inlined with bl__park into every blocking
 * call, and bl_recv grown by the lazy case (inlined here) was no longer
 * inlined into a receive loop, 8% slower in send_throughput. */
static inline void bl__sched_switched(bl_sched *s)
{
    if (s->prev) bl__sched_settle_prev(s);
}

/*
 * Process only: arms a timer that ends p's coming wait (sequence p->seq + 1,
 * state st) ms milliseconds (ms >= 0) after its scheduler's next timer turn,
 * where it goes into the wheel (sched/wtimer.c): never early, and no clock
 * read here; late by at most the time to that turn, which comes at once
 * when the scheduler has nothing else to run and otherwise within 64 picks.
 * The caller then bumps p->seq and parks.  Returns 0 or -ENOMEM.
 */
int bl__sched_arm_timer(bl_proc *p, int64_t ms, unsigned st);
/* Process only: cancels p's pending timer, if any. */
void bl__sched_disarm_timer(bl_proc *p);
/* Owner: fires s's timers due by now (sched/wtimer.c). */
void bl__sched_run_timers(bl_sched *s, uint64_t now);
/* Owner: queues p, whose wait timer here just ended its wait, to run (sched.c). */
void bl__sched_tmo_push(bl_sched *s, bl_proc *p);

/*
 * Owner: whether idle spinning would take the CPU from other threads (the
 * thread's schedstat run delay over a tenth of the last 10 ms or more);
 * true for 100 ms after it was (sched/contend.c).
 */
bool bl__sched_spin_contended(bl_sched *s, uint64_t now);

/* The scheduler thread's main function. */
void *bl__sched_main(void *arg);
/* Wakes scheduler t if it sleeps. */
void bl__sched_notify(bl_sched *t);
/* Runs the registered services' idle work on s (owner thread, idle). */
void bl__sched_services_idle(bl_sched *s);
/*
 * Any thread: every scheduler runs its services' idle work at its next turn
 * (a sleeping one is woken for it), instead of at its 64th idle round: a
 * process whose death leaves them work (it armed I/O streams) calls this.
 */
void bl__sched_services_soon(void);

/* Ring set-up and wake-ups (sched/ring.c). */
int bl__ring_setup(bl_sched *s, char *err, size_t errlen);
void bl__ring_teardown(bl_sched *s);
void bl__ring_send_wake(bl_sched *from, bl_sched *to);
/* Sleeps in the ring until a completion or timeout_ns (UINT64_MAX = none). */
void bl__ring_wait(bl_sched *s, uint64_t timeout_ns);
/* Calls done() of every completion already posted.  Returns how many. */
unsigned bl__ring_reap(bl_sched *s);
/* Sends what is queued in s's SQ (and the work posted to it) to the kernel. */
void bl__ring_submit(bl_sched *s);
/* Submits, collects deferred completions and reaps them: the scheduler's I/O turn. */
void bl__ring_poll(bl_sched *s);
/* Owner: queues a cancel of the operation whose user_data is c (submitted with the next batch). */
void bl__ring_cancel(bl_sched *s, bl_completion *c);
/* Hands rp to the ring of `owner`, from scheduler `from` (or NULL), and wakes it. */
void bl__ring_post(bl_sched *from, bl_sched *owner, bl_ring_post *rp);
/* An SQE on s's ring, submitting the queued ones first if the SQ is full; NULL if none. */
struct io_uring_sqe *bl__ring_sqe(bl_sched *s);

/* Something on the ring may complete: an operation in flight or a stream armed. */
static inline bool bl__ring_busy(const bl_sched *s)
{
    return s->ring_inflight || s->io_streams;
}

/* Completions wait to be reaped, or (DEFER_TASKRUN with TASKRUN_FLAG) to be
 * run by the next io_uring_enter: a few loads, no system call. */
static inline bool bl__ring_ready(bl_sched *s)
{
    return io_uring_cq_ready(&s->ring) ||
           (IO_URING_READ_ONCE(*s->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* ---- sched/watchdog.c: the long-schedule monitor ---- */

/* Runtime start: starts the watchdog thread (unless configured off).  0 or -errno. */
int bl__watchdog_start(bl_runtime *rt);
/* Runtime wait, once stop_futex is set: joins it.  Idempotent. */
void bl__watchdog_stop(void);

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
