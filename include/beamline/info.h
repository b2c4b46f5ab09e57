/*
 * beamline/info.h - introspection: process info, the process list,
 * scheduler and runtime statistics.
 *
 * Information about another process is asked of that process, as on the
 * BEAM: the request travels as a signal and the target answers from its own
 * context (a stackless process borrows a stack to answer and reports the
 * stack it holds while idle: none).  The caller waits for the answer, so
 * bl_process_info on another process is a process-only call.
 *
 * The process snapshot (bl_processes_snapshot) is the other way: it reads
 * every process's record straight from the process table, from any thread,
 * asking nobody, so that listing 100,000 processes takes milliseconds and
 * works while a scheduler is stuck in a loop.  What it gives is what can be
 * read safely without the process: no links, monitors or message contents.
 *
 * Where this differs from Erlang: process_info of another process is a
 * request the target answers (as on the BEAM), but there is no
 * erlang:processes/0 + process_info/2 pairing for listings: the snapshot
 * reads racily and may show a process that exits at that moment, or miss
 * one spawned meanwhile; its queue length counts the messages the process
 * has taken into its queue, not those that arrived since it last ran.
 */
#ifndef BEAMLINE_INFO_H
#define BEAMLINE_INFO_H

#ifdef __cplusplus
extern "C" {
#endif

#define BL_INFO_MAX_PIDS 16 /* pids listed per relation; the counts are exact */

typedef enum bl_proc_status {
    BL_PROC_RUNNABLE = 0, /* queued to run */
    BL_PROC_RUNNING = 1,  /* on a scheduler now */
    BL_PROC_WAITING = 2,  /* parked: receive, sleep, hibernation, idle handler */
    BL_PROC_EXITING = 3,  /* on its way out */
} bl_proc_status;

typedef struct bl_proc_info {
    bl_proc_status status;                 /* at the time of the request */
    size_t message_queue_len;              /* messages waiting */
    uint32_t nlinks;                       /* linked processes */
    bl_pid links[BL_INFO_MAX_PIDS];        /* the first of them */
    uint32_t nmonitors;                    /* processes it monitors */
    bl_pid monitors[BL_INFO_MAX_PIDS];     /* the first of them */
    uint32_t nmonitored_by;                /* processes monitoring it */
    bl_pid monitored_by[BL_INFO_MAX_PIDS]; /* the first of them */
    bl_priority priority;                  /* its priority */
    char registered_name[256];             /* "" if none */
    uint64_t reductions;                   /* reductions used so far */
    size_t stack_bytes;                    /* stack held (0 for an idle handler or hibernated) */
    size_t total_bytes;                    /* PCB + stack + queued messages + relation lists */
    bool trap_exit;                        /* exit signals become messages */
    bool handler;                          /* a handler process */
    int scheduler;                         /* where it answered from */
    uint32_t ncallers;                     /* its callers (bl_callers), nearest first */
    bl_pid callers[BL_CALLERS_MAX];        /* all of them */
} bl_proc_info;

/*
 * Fills *out for pid.  Returns 0; -ESRCH if pid is not alive (or dies
 * before answering); -EINVAL for a malformed pid or NULL out; -EPERM when
 * called outside a process for another process; -ETIMEDOUT if no answer
 * came within 5 s (a process stuck in a loop that never calls the runtime).
 */
int bl_process_info(bl_pid pid, bl_proc_info *out);

/* One queued message, as bl_process_messages copies it out. */
typedef struct bl_msg_info {
    bl_pid from;      /* sender, as m->from */
    bl_ref ref;       /* m->ref */
    uint32_t tag;     /* m->tag */
    size_t len;       /* payload bytes */
    const void *data; /* the first `copied` bytes of the payload, in the caller's buf */
    size_t copied;    /* bytes of the payload copied (len when buf had room) */
} bl_msg_info;

/*
 * The messages waiting in pid's mailbox, in arrival order, without taking
 * them (Erlang's process_info(Pid, messages), for debugging tools): fills
 * out[0..max) with the first max of them and copies their payloads into
 * buf, one after the other (each at a multiple of 16 bytes from buf), as
 * far as buflen goes;
 * a payload that does not fit whole is cut (copied < len), and the ones
 * after it get none.  Signals and messages to inactive aliases are not
 * listed.  Asked of the process as bl_process_info is: it lists what
 * arrived before the request.  Returns how many messages are waiting in
 * all (which may exceed max), or -ESRCH (pid not alive, or dies before
 * answering), -EINVAL (malformed pid, NULL out with max > 0, NULL buf with
 * buflen > 0), -EPERM (outside a process), -ENOMEM, -ETIMEDOUT (as
 * bl_process_info).
 */
int64_t bl_process_messages(bl_pid pid, bl_msg_info *out, size_t max, void *buf, size_t buflen);

/* Up to max live pids into out (a snapshot); returns how many there are in all. */
size_t bl_processes(bl_pid *out, size_t max);

/*
 * Process only: writes a table of every live process to fd, like Erlang's
 * i(): pid, registered name, kind, status, queue length, reductions,
 * priority, stack and memory bytes (as bl_processes_snapshot reads them,
 * asking no process), one line each in pid order, then a total line.
 * Returns the number of processes listed or a negative errno.
 */
int bl_print_processes(int fd);

/* What sort of process it is, as the snapshot reports it.  A behaviour
 * says so as its process starts (a gen_server's init, a task's first run):
 * until then it shows as a handler. */
typedef enum bl_proc_kind {
    BL_KIND_PLAIN = 0,      /* bl_spawn */
    BL_KIND_HANDLER = 1,    /* bl_spawn_handler, no behaviour of otp/ (registry partitions) */
    BL_KIND_GEN_SERVER = 2, /* a gen_server or an agent */
    BL_KIND_SUPERVISOR = 3, /* a supervisor of any flavour (dynamic, partition, task) */
    BL_KIND_TASK = 4,       /* a task */
} bl_proc_kind;

/* "plain", "handler", "gen_server", "supervisor", "task" ("?" for others). */
const char *bl_proc_kind_name(bl_proc_kind k);

/* Bytes of a registered name kept in a snapshot entry (longer ones are cut). */
#define BL_SNAP_NAME_MAX 48

/* One process as the snapshot read it. */
typedef struct bl_proc_snap {
    bl_pid pid;                  /* the process */
    bl_proc_status status;       /* as last published by its scheduler */
    bl_proc_kind kind;           /* plain, gen_server, ... */
    bl_priority priority;        /* its priority */
    uint32_t message_queue_len;  /* messages in its queue (see above: not the unread inbox) */
    uint64_t reductions;         /* reductions used, up to its last switch out */
    size_t stack_bytes;          /* stack it holds now (0 when idle or not started; an idle
                                    handler's stack kept for its next message is its
                                    scheduler's: stack_keeps) */
    size_t memory;               /* its record plus that stack (messages are not read) */
    char name[BL_SNAP_NAME_MAX]; /* registered name, "" if none, cut to fit */
} bl_proc_snap;

/*
 * The snapshot: fills out[0..max) with the live processes in pid order
 * (table order) and returns how many live processes it saw in all, which
 * may exceed max.  Any thread, process or not; asks no process and takes
 * no lock (each field is read as it stands: a process running meanwhile
 * may be a little ahead of what is reported).  -ESRCH when the runtime is
 * not running, -EINVAL for a NULL out with max > 0.
 */
int64_t bl_processes_snapshot(bl_proc_snap *out, size_t max);

/* The same for one process: 0, -ESRCH (not alive, or the runtime is not
 * running), -EINVAL (malformed pid, NULL out).  Any thread. */
int bl_process_snapshot(bl_pid pid, bl_proc_snap *out);

typedef struct bl_scheduler_stats {
    uint64_t switches;     /* processes switched in */
    uint64_t steals;       /* successful steals */
    uint64_t stolen;       /* processes moved by them */
    uint64_t pulled;       /* processes woken from here that moved here from another */
    uint64_t sleeps;       /* times it slept in its ring */
    uint64_t wakeups_sent; /* wake-ups it sent to others */
    uint64_t timers_fired; /* timers that ended a wait */
    uint64_t idle_ns;      /* time spent idle (spinning or sleeping) */
    uint64_t uptime_ns;    /* time since the runtime started */
    double utilization;    /* 1 - idle / uptime */
    uint32_t runq_len;     /* normal processes in its stealable queue */
    uint64_t timers;    /* timers on its wheel (waits, sleeps, send_after), as of its last turn */
    uint64_t envelopes; /* message and signal envelopes its processes allocated */
    /* Published by the scheduler at its periodic turn (every 64 picks, or
     * idle): a scheduler stuck in a process shows its last values. */
    uint32_t io_inflight;      /* operations awaiting a completion on its ring */
    uint32_t stacks_pooled;    /* free stacks its pool holds resident */
    uint32_t stacks_cold;      /* free stacks whose memory went back to the kernel */
    uint64_t stack_pool_bytes; /* bytes mapped through its pool (held or free) */
    uint64_t slab_bytes;       /* bytes of envelope and timer spans its slab holds */
    bl_pid current;            /* pid running on it now, 0 when none (a racy hint) */
    uint64_t long_schedules;   /* processes the watchdog saw run past the threshold here */
    /* Waits for mail that the scheduler, with nothing else to run, watched
     * for a moment before parking (at most 3 us, or spin_us if less; time
     * counted as idle), and the ones of them that mail or a signal ended:
     * no park, and the sender had no wake-up to make. */
    uint64_t mail_spins;
    uint64_t mail_spin_hits;
    /* Times it found its CPU contended (its thread kept waiting for the CPU
     * over a tenth of the time: the kernel runs other threads there) and
     * turned its spinning, the idle spin and the mail watch, off for 100 ms. */
    uint64_t spin_offs;
    /* Idle handlers (gen_servers, supervisors, ...) that parked keeping
     * their stacks for their next message, at most 8 at a time here, and
     * the ones of them whose stacks it took back, at its next idle moment
     * or after two turns without a message.  The others resumed on their
     * own stacks; a handler that parks without one starts afresh on a
     * stack from the pool at its next message (some 30 ns more). */
    uint64_t stack_keeps;
    uint64_t stack_sheds;
} bl_scheduler_stats;

/* Statistics of scheduler i (racy snapshot).  0, -EINVAL, -ESRCH. */
int bl_scheduler_stats_get(unsigned i, bl_scheduler_stats *out);

typedef struct bl_runtime_stats {
    unsigned schedulers; /* scheduler threads */
    int64_t processes;   /* processes alive */
    uint64_t switches;   /* sum over schedulers */
    uint64_t steals;     /* sum over schedulers */
    uint64_t uptime_ns;  /* since start */
    double utilization;  /* mean over schedulers */
} bl_runtime_stats;

/* 0 or -ESRCH (not running). */
int bl_runtime_stats_get(bl_runtime_stats *out);

/* What the schedulers' rings were really set up with (the configuration
 * asks; the kernel decides). */
typedef struct bl_io_settings {
    bl_wake wake;           /* BL_WAKE_MSG_RING or BL_WAKE_EVENTFD, as resolved */
    bool sqpoll;            /* a kernel thread polls each submission queue */
    bool defer_taskrun;     /* IORING_SETUP_DEFER_TASKRUN (completions run when reaped) */
    bool single_issuer;     /* IORING_SETUP_SINGLE_ISSUER */
    unsigned ring_entries;  /* submission queue entries per ring */
    unsigned io_buffers;    /* provided 4 KiB receive buffers per scheduler */
    unsigned iowq_max;      /* io-wq workers per ring, for each kind (bounded, unbounded) */
    unsigned dirty_threads; /* threads of the dirty-work pool (started with its first job) */
} bl_io_settings;

/* 0, -EINVAL (out NULL) or -ESRCH (not running). */
int bl_io_settings_get(bl_io_settings *out);

/* "msg_ring" or "eventfd". */
const char *bl_wake_name(bl_wake w);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_INFO_H */
