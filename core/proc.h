/*
 * core/proc.h - the process control block, the process table and pids.
 *
 * The mailbox word.  Everything other threads may change about a process
 * lives in one 16-byte word updated with a double-width CAS:
 *
 *     box = { top:  the inbox, a LIFO stack of envelopes pushed by senders,
 *             meta: generation (24 bits) | wait sequence (32) | state (8) }
 *
 * Because the inbox, the generation and the run state change together:
 *  - a sender pushes only while the generation still matches its pid, so a
 *    message never reaches a newer process in a reused slot (invariant 4);
 *  - pushing onto a WAITING process and making it ACTIVE is one CAS, so
 *    exactly one party (that sender, a timer, an I/O completion) wins the
 *    right to queue it (invariant 6), and parking fails if anything arrived
 *    (core/wait.h holds every one of these transitions);
 *  - a timer names the exact wait it was armed for through the sequence, so
 *    a late timer never wakes a later wait.
 * The owner drains the whole inbox with one CAS and reverses it into its
 * private FIFO queue, which gives FIFO order between any pair of processes.
 *
 * PCBs live in a table of chunks that is never freed while the runtime
 * runs, so a stale pointer from a lookup always points at a valid PCB and
 * the mailbox word decides whether it is still the right process.
 */
#ifndef BL_CORE_PROC_H
#define BL_CORE_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"
#include "core/ctx.h"
#include "core/stack.h"

/* ---- pids ---- */

#define BL_PID_IDX_BITS   32
#define BL_PID_GEN_BITS   24
#define BL_PID_GEN_MASK   ((1u << BL_PID_GEN_BITS) - 1)
#define BL_PID_NODE_SHIFT 56

static inline bl_pid bl__pid_make(uint32_t idx, uint32_t gen)
{
    return ((uint64_t)(gen & BL_PID_GEN_MASK) << 32) | ((uint64_t)idx + 1);
}
static inline uint32_t bl__pid_idx(bl_pid pid)
{
    return (uint32_t)(pid & 0xFFFFFFFFu) - 1;
}
static inline uint32_t bl__pid_gen(bl_pid pid)
{
    return (uint32_t)(pid >> 32) & BL_PID_GEN_MASK;
}
/* The node bits of pid (beamline.h): 0 for this node's processes. */
static inline unsigned bl__pid_node(bl_pid pid)
{
    return (unsigned)(pid >> BL_PID_NODE_SHIFT);
}
/*
 * True for a pid this node could have handed out: node 0, bit 63 clear, an
 * index part other than 0.  Whether its slot was ever allocated is not part
 * of it (a pid kept from an earlier start of the runtime is well-formed).
 */
static inline bool bl__pid_wellformed(bl_pid pid)
{
    return bl__pid_node(pid) == 0 && (uint32_t)pid != 0;
}

/* ---- the mailbox word ---- */

enum bl_pstate {
    BL_ST_FREE = 0,     /* slot unused: the process is dead (or never was) */
    BL_ST_ACTIVE = 1,   /* running, or queued to run */
    BL_ST_WAITING = 2,  /* parked in receive: a message makes it ACTIVE */
    BL_ST_SLEEPING = 3, /* parked in sleep/I/O: messages queue without waking it */
};

static inline uint64_t bl__meta(uint32_t gen, uint32_t seq, unsigned st)
{
    return ((uint64_t)gen << 40) | ((uint64_t)seq << 8) | st;
}
/*
 * Set by a timer or completion that found its wait's process ACTIVE (woken
 * by a message that may not match, or by a signal) instead of parked: the
 * end of the wait is recorded here, so the process's next park within the
 * same wait fails and it sees why (core/wait.h).
 */
#define BL_META_ENDED 0x10u

/*
 * Set by whoever pushes a signal (link, exit, monitor requests) onto the
 * inbox; cleared by the drain that handles it.  The owner checks it when it
 * resumes from any park, so signals reach processes that are not receiving.
 */
#define BL_META_SIG 0x20u

/*
 * Set by the owner when a drain takes a long inbox (it is behind its
 * senders); cleared by a drain that takes a short one.  A sender that sees it is charged
 * extra reductions (proc/process.c bl__push), so that on the receiver's
 * core the flood gives way to the receiver, as the BEAM once punished
 * senders to long queues.  A hint only: losing it costs balance, never
 * correctness.
 */
#define BL_META_LONGQ 0x40u

static inline unsigned bl__meta_state(uint64_t m)
{
    return (unsigned)(m & 0x0F);
}
static inline uint32_t bl__meta_seq(uint64_t m)
{
    return (uint32_t)(m >> 8);
}
static inline uint32_t bl__meta_gen(uint64_t m)
{
    return (uint32_t)(m >> 40);
}
/* True when meta still describes the live process that pid names. */
static inline bool bl__meta_is(uint64_t meta, bl_pid pid)
{
    return bl__meta_gen(meta) == bl__pid_gen(pid) && bl__meta_state(meta) != BL_ST_FREE;
}

/* True when meta records that wait `seq` was ended while its process was awake. */
static inline bool bl__meta_ended(uint64_t meta, uint32_t seq)
{
    return (meta & BL_META_ENDED) && bl__meta_seq(meta) == seq;
}

/* Changes the state, keeping the flag bits (BL_META_ENDED, BL_META_SIG). */
static inline uint64_t bl__meta_with_state(uint64_t m, unsigned st)
{
    return (m & ~(uint64_t)0x0F) | st;
}

typedef union bl_box {
    unsigned __int128 word;
    struct {
        bl_msg *top;   /* inbox, most recent first */
        uint64_t meta; /* generation | sequence | state */
    };
} bl_box;

/* ---- the PCB ---- */

/*
 * PCB fields that the process snapshot (bl_processes_snapshot, proc/
 * snapshot.c) reads from any thread without asking the process: status,
 * kind, q_len, reductions, prio, stack and stack_req.  Their writers store
 * them with BL_PUBLISH (a relaxed store: the same plain move on x86-64 and
 * AArch64, no read-modify-write) and the snapshot reads them with BL_PEEK,
 * so the racy reads are defined and TSan sees no data race.  The owner
 * reads its own fields plainly.
 */
#define BL_PUBLISH(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define BL_PEEK(field)       __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct bl_sched;
struct bl_proc;

/*
 * An operation a process waits on that may outlive the process (an I/O
 * operation on a ring, a dirty job on a pool thread: io/iop.h).  The PCB
 * points at it while the process waits, so that the exit path can hand it
 * over without knowing what it is.
 */
typedef struct bl_waitop bl_waitop;
struct bl_waitop {
    /*
     * p is dying on scheduler s while op is pending (s is NULL at the
     * runtime's stop, when no scheduler runs any more).  Returns true when
     * op takes p's stack, which the kernel or a worker may still write to
     * (invariant 2): the caller must then not free it.
     */
    bool (*orphan)(bl_waitop *op, struct bl_sched *s, struct bl_proc *p);
};

/* Why a process switched back to its scheduler. */
enum bl_park {
    BL_PARK_YIELD = 1, /* time slice used up or bl_yield: requeue */
    BL_PARK_WAIT,      /* receive found nothing: park WAITING unless mail arrived */
    BL_PARK_SLEEP,     /* sleep / I/O: park SLEEPING */
    BL_PARK_IDLE,      /* idle handler, or bl_hibernate: park WAITING, drop the stack */
    BL_PARK_EXIT,      /* the process is done */
};

/* Run status as introspection reports it (owner-written, read relaxed). */
enum bl_status { BL_STATUS_RUNNABLE, BL_STATUS_RUNNING, BL_STATUS_WAITING, BL_STATUS_EXITING };

/* Intrusive node of the schedulers' lock-free inject queues. */
typedef struct bl_qnode {
    _Atomic(struct bl_qnode *) next; /* written by the enqueuer, read by the owner */
} bl_qnode;

struct bl_tentry;

/* One monitor: the reference and the process at the other end. */
typedef struct bl_mon {
    bl_ref ref; /* the monitor's reference */
    bl_pid pid; /* the monitored process, or the watcher, depending on the list */
} bl_mon;

/* One active alias of a process (proc/alias.c). */
typedef struct bl_alias_ent {
    bl_ref ref;    /* the alias */
    uint32_t mode; /* how it ends: BL_AMODE_* (proc/proc.h) */
} bl_alias_ent;

/*
 * Links, monitors, aliases and callers of one process, allocated the first
 * time it uses any.  Only the process itself reads or writes them (signals
 * from others are applied by the process when it handles them).
 */
typedef struct bl_psig {
    bl_pid *links;             /* linked processes */
    uint32_t nlinks;           /* entries in links */
    uint32_t caplinks;         /* capacity of links */
    bl_mon *mons;              /* monitors this process holds: {ref, target} */
    uint32_t nmons;            /* entries in mons */
    uint32_t capmons;          /* capacity of mons */
    bl_mon *watchers;          /* monitors on this process: {ref, watcher} */
    uint32_t nwatch;           /* entries in watchers */
    uint32_t capwatch;         /* capacity of watchers */
    bl_alias_ent *aliases;     /* active aliases (the call's alias lives in the PCB) */
    uint32_t naliases;         /* entries in aliases */
    uint32_t capaliases;       /* capacity of aliases */
    bl_pid *callers;           /* the processes that started it, nearest first ($callers) */
    uint32_t ncallers;         /* entries in callers, at most BL_CALLERS_MAX */
    bl_pid caller_inl;         /* callers' storage when there is one (a task's owner): no malloc */
    bl_pid link_inl;           /* links' storage while there is one */
    bl_mon mon_inl;            /* mons' storage while there is one */
    bl_mon watch_inl;          /* watchers' storage while there is one */
    struct bl_psig *next_free; /* link in a scheduler's cache of free records */
} bl_psig;

typedef struct bl_proc {
    /* --- Written by other threads: senders, timers, wakers. --- */
    _Alignas(64) bl_box box; /* the mailbox word (see above); 16-byte CAS (core/wait.h) */
    bl_qnode inject;         /* link in a scheduler's inject queue */
    _Atomic uint8_t named;   /* set by bl_register (any thread): free the name at exit */
    /* The process whose wake-up queued it last (written by the waker that
     * won the move to ACTIVE), a pid: a reused slot is not mistaken for it. */
    bl_pid waker;

    /* --- Owned by the process and the scheduler running it. --- */
    _Alignas(64) bl_ctx ctx;   /* saved registers while switched out */
    struct bl_sched *sched;    /* home scheduler: where wakers queue it */
    bl_stack *stack;           /* NULL while it holds none (not started, idle handler) */
    bl_msg *q_head;            /* private FIFO of drained messages */
    bl_msg *q_tail;            /* last of q_head, NULL when empty */
    bl_msg *mark;              /* receive marker: scan after this one (NULL = from head) */
    bl_msg *down_prev;         /* down_valid: the message before the newest queued DOWN
                                  (NULL = that DOWN is the head) */
    struct bl_proc *rq_next;   /* link in run-queue overflow and free lists */
    struct bl_tentry *tmr;     /* pending receive/sleep timer, NULL if none */
    bl_pid wakee;              /* the process it last woke (as waker) */
    bl_entry_fn fn;            /* entry function (plain processes) */
    void *arg;                 /* its argument; handler processes: init argument */
    const bl_handler *handler; /* non-NULL for handler processes */
    void *hstate;              /* handler state returned by init */
    size_t stack_req;          /* requested stack size, 0 = scheduler default */
    uint64_t scanned;          /* messages receives and flushes looked at (tests use it) */
    uint64_t reductions;       /* reductions used in all */
    uint32_t q_len;            /* messages in q_head */
    uint32_t index;            /* table index */
    uint32_t gen;              /* generation, as in box.meta */
    uint32_t seq;              /* sequence of the current or last wait */
    int32_t reds;              /* reductions left in this slice */
    uint32_t ndown;            /* BL_TAG_DOWN messages in q_head (a flush looks only if any) */
    bl_psig *sig;              /* links and monitors, NULL until used */
    bl_reason reason;          /* why it exits; detail is a heap copy it owns */
    bl_waitop *wop;            /* the operation it waits on, or NULL (see bl_waitop) */
    bl_cleanup *cleanups;      /* bl_cleanup_push records still pushed, newest first */
    bl_ref alias;              /* the call's alias (proc/otp.h): BL_MSG_ALIAS passes with it */
    uint8_t park;              /* enum bl_park: request to the scheduler */
    uint8_t prio;              /* bl_priority */
    _Atomic uint8_t status;    /* enum bl_status, for introspection */
    _Atomic uint8_t kind;      /* bl_proc_kind (beamline/info.h): set at spawn, then by otp/ */
    bool mark_set;             /* bl_recv_mark was called */
    bool timer_fired;          /* a timer, not a message, ended the last wait */
    bool started;              /* handler init has run */
    bool placed;     /* spawned onto an explicit scheduler and not run yet: not stealable */
    bool bound;      /* bl_spawn_opts.bound: runs on its scheduler only, for life */
    bool behind;     /* it set BL_META_LONGQ in its word (the owner's copy) */
    bool signalled;  /* ended by an exit signal, not by its own doing: no crash report */
    bool hibernated; /* parked by bl_hibernate: only a message restarts fn */
    bool trap_exit;  /* exit signals become BL_TAG_EXIT messages */
    bool down_valid; /* down_prev locates the newest DOWN still queued */
    bool main;       /* bl_main's process: its end stops the runtime */
    bool streams;    /* armed an I/O stream: its death has the schedulers sweep theirs */
} bl_proc;

/* ---- the mailbox word, operations ---- */

/* An atomic snapshot of the word.  (TSan wants it done as one access.) */
static inline bl_box bl__box_load(bl_proc *p)
{
    bl_box b;
#if defined(BL_TSAN) || !defined(__x86_64__)
    b.word = __atomic_load_n(&p->box.word, __ATOMIC_ACQUIRE);
#else
    /* Two plain halves: a torn pair is harmless because every use feeds it to
     * a CAS that then fails and retries.  Acquire on top pairs with the
     * release CAS that published the envelope it points to. */
    b.top = __atomic_load_n(&p->box.top, __ATOMIC_ACQUIRE);
    b.meta = __atomic_load_n(&p->box.meta, __ATOMIC_RELAXED);
#endif
    return b;
}

/* CAS of the whole word; on failure *expected gets the current value. */
static inline bool bl__box_cas(bl_proc *p, bl_box *expected, bl_box desired)
{
#if defined(__x86_64__) && !defined(BL_TSAN)
    /* __sync is inlined as lock cmpxchg16b with -mcx16 (full barrier, which
     * is the acq_rel the protocol needs); __atomic would call libatomic. */
    unsigned __int128 old = __sync_val_compare_and_swap(&p->box.word, expected->word, desired.word);
    if (old == expected->word) return true;
    expected->word = old;
    return false;
#else
    /* acq_rel: publishes the pushed envelope and acquires drained ones. */
    return __atomic_compare_exchange_n(&p->box.word, &expected->word, desired.word, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
#endif
}

/* Owner: appends m to p's private queue. */
static inline void bl__queue_append(bl_proc *p, bl_msg *m)
{
    m->next = NULL;
    if (p->q_tail)
        p->q_tail->next = m;
    else
        p->q_head = m;
    p->q_tail = m;
    BL_PUBLISH(p->q_len, p->q_len + 1);
}

/* ---- the process table ---- */

/* A scheduler's private cache of free PCB slots. */
typedef struct bl_proc_cache {
    bl_proc *free; /* free slots, linked through rq_next */
    unsigned n;    /* length of free */
} bl_proc_cache;

/* Sets up the table (once per runtime start). */
void bl__ptab_init(void);
/* Unmaps every chunk.  Only when no thread can reach a PCB any more. */
void bl__ptab_destroy(void);
/* Calls fn on every slot ever allocated (shutdown). */
void bl__ptab_each(void (*fn)(bl_proc *p, void *ctx), void *ctx);
/* Number of slots ever handed out (the table's high-water mark). */
uint32_t bl__ptab_extent(void);

/*
 * The PCB a pid's index names, or NULL when the pid is malformed (remote
 * node, index 0, or an index never allocated).  The PCB may belong to a
 * newer process: compare the generation in box.meta.
 */
bl_proc *bl__proc_lookup(bl_pid pid);

/* A free slot (box.meta = gen | FREE) or NULL when out of memory. */
bl_proc *bl__proc_alloc(bl_proc_cache *c);
/* Returns a slot whose process has fully exited: bumps its generation. */
void bl__proc_release(bl_proc_cache *c, bl_proc *p);
/* Gives all cached slots back to the shared pool (scheduler shutdown). */
void bl__proc_cache_flush(bl_proc_cache *c);

static inline bl_pid bl__proc_pid(const bl_proc *p)
{
    return bl__pid_make(p->index, p->gen);
}

/* The pid of the process in slot p, from any thread: a racy read (the slot
 * may change hands meanwhile, and then this is the pid of either). */
static inline bl_pid bl__proc_pid_peek(bl_proc *p)
{
    return bl__pid_make(BL_PEEK(p->index), bl__meta_gen(bl__box_load(p).meta));
}

#endif /* BL_CORE_PROC_H */
