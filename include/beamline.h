/*
 * beamline.h - Erlang/OTP-style processes for C.
 *
 * A Beamline program starts the runtime (one scheduler thread per core, each
 * owning one io_uring), spawns lightweight processes, and lets them talk by
 * copying messages into each other's mailboxes.  Every call that a caller can
 * get wrong returns a negative errno instead of aborting.
 *
 * Threads and processes: the calls marked "process only" must be made from
 * inside a Beamline process (they return -EPERM elsewhere).  bl_send,
 * bl_spawn, bl_is_alive and bl_make_ref also work from any other thread of
 * the program once the runtime is started.
 */
#ifndef BEAMLINE_H
#define BEAMLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The version of these headers.  CMakeLists.txt refuses to configure when
 * they disagree with its project(VERSION), so the two are changed together.
 */
#define BL_VERSION_MAJOR  0
#define BL_VERSION_MINOR  2
#define BL_VERSION_PATCH  0
#define BL_VERSION_STRING "0.2.0"

/*
 * The version of the library the program runs with, "MAJOR.MINOR.PATCH": a
 * static string.  Linked against the shared library it can differ from
 * BL_VERSION_STRING, the version the program was compiled against.  Any
 * thread, also before the runtime starts.
 */
const char *bl_version(void);

/* ------------------------------------------------------------------------ */
/* Pids and references                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A process identifier.  Layout (64 bits):
 *   bits  0..31  table index + 1 (0 never names a process)
 *   bits 32..55  generation of that table slot (24 bits)
 *   bits 56..62  node: 0 = this node, else an index into the node table of
 *                the distribution (beamline/dist.h); a remote pid keeps the
 *                Erlang pid's number + 1 in bits 0..31 and its serial in
 *                bits 32..55, so it goes back to Erlang exactly as it came
 *   bit  63      always 0
 * A pid names one process forever: when a process exits its slot's generation
 * moves on, so a stale pid never reaches a newer process in the same slot
 * (the generation wraps after 2^24 reuses of one slot).
 */
typedef uint64_t bl_pid;
#define BL_PID_NONE ((bl_pid)0)

/*
 * Writes pid as Erlang prints one, "<Node.Index.Generation>" (node 0 is this
 * node), into buf, always NUL-terminated and cut to len bytes.  Returns the
 * length of the whole text, as snprintf does (a result >= len means it was
 * cut); -EINVAL when buf is NULL and len is not 0.  Any thread.
 */
int bl_pid_format(bl_pid pid, char *buf, size_t len);

/* A unique reference (make_ref).  0 is never a valid reference. */
typedef uint64_t bl_ref;
#define BL_REF_NONE ((bl_ref)0)

/* ------------------------------------------------------------------------ */
/* Runtime configuration                                                    */
/* ------------------------------------------------------------------------ */

/* How scheduler threads are pinned to the machine. */
typedef enum bl_bind {
    BL_BIND_CORES = 0, /* one per physical core, filling one NUMA node at a time (default) */
    BL_BIND_NONE = 1,  /* no pinning; the kernel places the threads */
    BL_BIND_SPREAD = 2 /* round-robin over NUMA nodes (and packages) */
} bl_bind;

/* How an idle scheduler is woken from another core. */
typedef enum bl_wake {
    BL_WAKE_DEFAULT = 0,  /* MSG_RING when the kernel has it, else eventfd */
    BL_WAKE_MSG_RING = 1, /* IORING_OP_MSG_RING from the waker's ring */
    BL_WAKE_EVENTFD = 2   /* write(2) to an eventfd the sleeper keeps a read armed on */
} bl_wake;

/*
 * Log levels, the syslog ones as Erlang's Logger uses them (beamline/log.h),
 * most severe first; each is its syslog priority plus one, so that 0 can
 * mean "the default" in bl_config.
 */
typedef enum bl_log_level {
    BL_LOG_EMERGENCY = 1,
    BL_LOG_ALERT = 2,
    BL_LOG_CRITICAL = 3,
    BL_LOG_ERROR = 4, /* crash and supervisor reports */
    BL_LOG_WARNING = 5,
    BL_LOG_NOTICE = 6, /* the default level: this and more severe ones are logged */
    BL_LOG_INFO = 7,   /* progress reports */
    BL_LOG_DEBUG = 8
} bl_log_level;

/* Where the built-in logger writes (beamline/log.h). */
typedef enum bl_log_format {
    BL_LOG_TEXT = 0,    /* one line of text per event on stderr (default) */
    BL_LOG_JSON = 1,    /* one JSON object per line on stderr */
    BL_LOG_JOURNALD = 2 /* the systemd journal (sd_journal_send) */
} bl_log_format;

struct bl_log_event;
/*
 * Receives every logged event instead of the built-in formats: called on
 * the runtime's logger thread, one event at a time, so it may block (it
 * delays only later events, which queue and then drop).  See beamline/log.h.
 */
typedef void (*bl_log_handler_fn)(const struct bl_log_event *e, void *arg);

/*
 * Runtime configuration.  A zeroed struct means "all defaults"; every field
 * is also settable through the environment variable named beside it.
 * bl_runtime_start (and bl_main) apply the variables to the fields the
 * program left at zero, so an operator can tune what the program did not
 * fix: a field the program set wins over its variable.  A variable with a
 * malformed value fails the start (-EINVAL, bl_runtime_error() names it);
 * a BEAMLINE_* variable the runtime does not know is a start-up warning
 * (kind runtime, beamline/log.h) naming the closest known one.
 */
typedef struct bl_config {
    unsigned schedulers;      /* BEAMLINE_SCHEDULERS: 0 = one per physical core */
    bl_bind bind;             /* BEAMLINE_BIND: cores | none | spread */
    unsigned reductions;      /* BEAMLINE_REDUCTIONS: budget per time slice (0 = 4000) */
    unsigned spin_us;         /* BEAMLINE_SPIN_US: idle spin before sleeping (0 = 50 us) */
    bool no_spin;             /* BEAMLINE_SPIN_US=0 sets this: sleep at once when idle */
    bl_wake wake;             /* BEAMLINE_WAKE: msg_ring | eventfd */
    size_t stack_size;        /* BEAMLINE_STACK_SIZE: default process stack, bytes (0 = 128 KiB) */
    unsigned stack_pool_max;  /* BEAMLINE_STACK_POOL: stacks kept hot per scheduler (0 = 64) */
    unsigned ring_entries;    /* BEAMLINE_RING_ENTRIES: SQ entries per ring (0 = 256) */
    unsigned iowq_max;        /* BEAMLINE_IOWQ_MAX: io-wq workers per ring (0 = 4) */
    const char *topology;     /* BEAMLINE_TOPOLOGY: hwloc synthetic description, for tests */
    unsigned max_names;       /* BEAMLINE_MAX_NAMES: registered names at most (0 = 65536) */
    bl_log_level log_level;   /* BEAMLINE_LOG_LEVEL: least severe level logged (0 = notice) */
    bl_log_format log_format; /* BEAMLINE_LOG_FORMAT: text | json | journald */
    unsigned log_queue;       /* BEAMLINE_LOG_QUEUE: events waiting at most (0 = 1024) */
    bl_log_handler_fn log_handler; /* every event, instead of log_format (NULL); no variable */
    void *log_handler_arg;         /* passed to log_handler */
    bool quiet;                    /* BEAMLINE_QUIET=1: no crash or supervisor reports at all */
    bool sqpoll;            /* BEAMLINE_SQPOLL=1: a kernel thread polls each ring's SQ (off) */
    unsigned dirty_threads; /* BEAMLINE_DIRTY_THREADS: dirty-work pool threads (0 = schedulers) */
    unsigned io_buffers;    /* BEAMLINE_IO_BUFFERS: 4 KiB receive buffers per ring, a power
                               of two (0 = 256) */
    unsigned long_schedule_ms; /* BEAMLINE_LONG_SCHEDULE_MS: a process that runs this long without
                                  returning to its scheduler is reported, kind long_schedule
                                  (0 = 100 ms; see README, "Watching a running program") */
    bool no_long_schedule;     /* BEAMLINE_LONG_SCHEDULE_MS=0 sets this: no watchdog at all */
    const char *control;       /* BEAMLINE_CONTROL: path of the control socket that beamline-top
                                  attaches to (NULL: none; net/control.c) */
    const char *metrics;       /* BEAMLINE_METRICS: address:port of the Prometheus endpoint, e.g.
                                  127.0.0.1:9568 (NULL: none; net/metrics.c) */
} bl_config;

/*
 * Overlays the BEAMLINE_* environment variables on *cfg, every field a
 * variable is set for (set or not).  Returns 0, or
 * -EINVAL when a variable holds a value that cannot be parsed (the variable's
 * name and value are then in bl_runtime_error()).
 */
int bl_config_from_env(bl_config *cfg);

/* ------------------------------------------------------------------------ */
/* Runtime lifecycle                                                        */
/* ------------------------------------------------------------------------ */

typedef void (*bl_entry_fn)(void *arg);

/*
 * Starts the schedulers.  cfg may be NULL (defaults, then the environment).
 * Returns 0, -EALREADY if the runtime is running, -EINVAL for a bad config,
 * or the error that made a scheduler fail to come up: -EPERM / -ENOSYS when
 * io_uring is unavailable (seccomp, kernel.io_uring_disabled, old kernel),
 * -ENOMEM.  On failure bl_runtime_error() names the cause.
 */
int bl_runtime_start(const bl_config *cfg);

/*
 * Asks the runtime to stop, from any thread or process; returns at once.
 * bl_runtime_wait() then returns.
 */
void bl_runtime_stop(void);

/*
 * Blocks the calling (non-scheduler) thread until bl_runtime_stop() is
 * called, then stops the schedulers and frees every process, stack, message
 * and ring.  Returns 0, or -EPERM when called from a scheduler thread.
 */
int bl_runtime_wait(void);

/*
 * The whole lifecycle in one call: start with cfg, spawn main_fn(arg) as the
 * main process, and shut down when that process ends, however it ends: by
 * returning from main_fn, by bl_exit / bl_exit_reason, by an exit signal
 * (a link, a kill) or by a fault (a stack overflow); or when
 * bl_runtime_stop() is called.  Other processes still running are
 * discarded.  Returns:
 *   0         the main process ended with a clean reason (normal, shutdown,
 *             {shutdown, _}), or the runtime was stopped while it lived;
 *   1..255    it ended abnormally: bl_exit(code) / {BL_CUSTOM, code} with
 *             code in 1..255 gives code, any other abnormal reason 1 (so
 *             that `return bl_main(...)` from main() is a useful status);
 *   < 0       the error from bl_runtime_start(), or from spawning main_fn.
 */
int bl_main(const bl_config *cfg, bl_entry_fn main_fn, void *arg);

/* The message explaining the last failure of bl_runtime_start / config. */
const char *bl_runtime_error(void);

/* Number of schedulers of the running runtime (0 when not running). */
unsigned bl_schedulers(void);

/* Index of the scheduler the caller runs on, or -1 outside a scheduler. */
int bl_current_scheduler(void);

/* ------------------------------------------------------------------------ */
/* Processes                                                                */
/* ------------------------------------------------------------------------ */

/*
 * Process priorities, with Erlang's semantics on each scheduler: runnable
 * max processes run before everything else, then high ones (strictly: a
 * busy high process starves lower ones, as on the BEAM); normal and low
 * share the rest, a low process getting one turn in eight.  Only normal
 * processes are moved between schedulers by stealing.
 */
typedef enum bl_priority {
    BL_PRIO_NORMAL = 0,
    BL_PRIO_LOW = 1,
    BL_PRIO_HIGH = 2,
    BL_PRIO_MAX = 3
} bl_priority;

/* Spawn options; a zeroed struct (or NULL) means defaults. */
typedef struct bl_spawn_opts {
    size_t stack_size;    /* 0 = the runtime's default; rounded up to pages, min 16 KiB */
    bl_priority priority; /* BL_PRIO_NORMAL by default */
    int scheduler;        /* scheduler + 1 to start on; 0 = the caller's (round-robin from
                             outside).  Like any process it may later be stolen by an idle
                             scheduler, or follow a process that wakes it (see bound). */
    bool bound;           /* with scheduler: the process runs on that scheduler only, for
                             life: never stolen, never moved by a wake-up (the BEAM's
                             spawn_opt {scheduler, N} binds the same way) */
    bool inherit_callers; /* the child's callers are [spawner | the spawner's callers], cut
                             to BL_CALLERS_MAX (Elixir's $callers, as Task sets it); from
                             outside a process, none */
} bl_spawn_opts;

/* Callers a process keeps at most (bl_callers, bl_proc_info.callers). */
#define BL_CALLERS_MAX 8

/*
 * Spawns a process running fn(arg); it exits when fn returns (reason normal)
 * or calls bl_exit().  On success stores its pid in *pid (may be NULL) and
 * returns 0.  Errors: -EINVAL (fn NULL, bad options), -ENOMEM, -ESRCH (the
 * runtime is not running).
 */
int bl_spawn(bl_pid *pid, bl_entry_fn fn, void *arg, const bl_spawn_opts *opts);

/* bl_exit(BL_REASON_NORMAL) is a normal exit. */
#define BL_REASON_NORMAL 0

/*
 * Exits the calling process: code 0 (or BL_STOP) is a normal exit, any
 * other code the reason {BL_CUSTOM, code} (see beamline/signal.h for every reason).  In a
 * process it never returns; outside one it returns -EPERM.
 */
int bl_exit(int code);

/* The calling process's pid, or BL_PID_NONE outside a process. */
bl_pid bl_self(void);

/*
 * Process only: copies up to max of the caller's callers into out, nearest
 * first (the process that spawned it with inherit_callers, then that one's
 * callers: Elixir's Process.get(:"$callers")).  Returns how many it has in
 * all (0..BL_CALLERS_MAX), -EPERM outside a process, -EINVAL for a NULL out
 * with max > 0.
 */
int bl_callers(bl_pid *out, size_t max);

/*
 * True if pid names a live process.  False for malformed or stale pids, and
 * for pids of other nodes: as Erlang's is_process_alive, it answers for
 * this node only (monitor a remote process to learn of its end).
 */
bool bl_is_alive(bl_pid pid);

/*
 * Process only: gives the scheduler to other runnable processes and comes
 * back later.  Returns 0 or -EPERM outside a process.
 */
int bl_yield(void);

/*
 * Cleanup on death, as pthread_cleanup_push/pop are for cancellation: what
 * a process holds across a call that can block (a descriptor it has not
 * handed over yet, a heap buffer) is lost if the process is killed there.
 * bl_cleanup_push(&c, fn, arg) has fn(arg) run if the calling process dies
 * (any reason, a kill included) before the matching bl_cleanup_pop; c lives
 * in the caller's frame and pushes nest.  bl_cleanup_pop(&c, run) removes
 * c, and runs it when run is true (c is normally the most recent push; the
 * runtime's own handlers, an open task stream's, may sit above it).
 * The handlers of a dying process run on its scheduler after it stopped
 * running, newest first, before its links and monitors hear of the death;
 * they must not block or call process-only functions.  bl_hibernate runs
 * them too (the frames they belong to are given up).  Outside a process
 * both calls do nothing (pop still runs fn when asked).
 * C differs from Erlang: there, resources are owned by processes (ports,
 * monitors) and go with them by themselves.
 */
typedef struct bl_cleanup {
    struct bl_cleanup *next; /* runtime link; do not touch */
    void (*fn)(void *arg);   /* what to run */
    void *arg;               /* its argument */
} bl_cleanup;

void bl_cleanup_push(bl_cleanup *c, void (*fn)(void *arg), void *arg);
void bl_cleanup_pop(bl_cleanup *c, bool run);

/*
 * Process only: hibernates.  The process gives back its stack (everything
 * on it is lost) and waits; the next message, or one already queued, starts
 * fn(arg) on a fresh stack, with the mailbox as it was.  A hibernated
 * process costs only its PCB (see hibernated_process_bytes).  Never returns
 * on success; -EPERM outside a process, -EINVAL for a NULL fn or from a
 * handler process (which holds no stack while idle anyway).
 */
int bl_hibernate(bl_entry_fn fn, void *arg);

/* Process only: sets the caller's priority.  Returns the previous one, -EPERM, -EINVAL. */
int bl_set_priority(bl_priority prio);

/*
 * Process only: sleeps for ms milliseconds in the scheduler's timer wheel;
 * messages arriving meanwhile stay queued.  Returns 0, -EPERM outside a
 * process, -EINVAL for a negative ms.
 */
int bl_sleep(int64_t ms);

/* A fresh reference, unique for the life of the runtime. */
bl_ref bl_make_ref(void);

/*
 * Process only: sends a copy of data to pid after ms milliseconds (Erlang's
 * send_after), from the caller.  Stores the timer's reference in *tref (may
 * be NULL).  The timer lives on the caller's scheduler; cancel and read work
 * from any process.  Returns 0, -EPERM, -EINVAL (bad pid, negative ms,
 * reserved tag), -ENOMEM.  A dead destination drops the message when due.
 */
int bl_send_after(bl_pid pid, uint32_t tag, const void *data, size_t len, int64_t ms, bl_ref *tref);

/*
 * Cancels a send_after timer.  Returns the milliseconds it had left (>= 0),
 * or -ENOENT once it has fired or been cancelled, -EINVAL for a reference
 * that is not a timer's.
 */
int64_t bl_cancel_timer(bl_ref tref);

/* As bl_cancel_timer, without cancelling: the milliseconds left, or -ENOENT / -EINVAL. */
int64_t bl_read_timer(bl_ref tref);

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * A received message.  The receiver owns it and must give it back with
 * bl_msg_free().  data points at len bytes of payload, suitably aligned for
 * any type (16 bytes).
 */
typedef struct bl_msg {
    struct bl_msg *next; /* runtime link; do not touch */
    bl_pid from;         /* sender, BL_PID_NONE when sent from outside a process */
    bl_ref ref;          /* reference the message is tagged with, BL_REF_NONE if none */
    uint32_t tag;        /* message kind chosen by the sender; >= BL_TAG_SYSTEM is reserved */
    uint32_t flags;      /* runtime use (allocation class, ownership) */
    size_t len;          /* payload bytes */
    void *data;          /* payload (inline copy, or a moved buffer) */
} bl_msg;

/* Tags at or above this value are reserved for runtime and OTP messages. */
#define BL_TAG_SYSTEM 0x80000000u

/*
 * Sends a copy of data[0..len) to pid with the given tag.  The caller may
 * reuse its buffer as soon as this returns.  Sending to a process that is
 * dead (or dies meanwhile) is not an error: the message is dropped, as in
 * Erlang.  Returns 0, -EINVAL for a malformed pid, a NULL data with len > 0,
 * or a reserved tag, -ENOMEM, -ESRCH if the runtime is not running.
 * Messages between one sender and one receiver arrive in send order.
 * A send never blocks; one to a receiver that is behind (its last look at
 * its mailbox found 512 messages or more) costs the sender 20 reductions
 * instead of 1, so a flooding sender yields sooner.
 * Where C differs: the sender's further messages to a receiver that is
 * behind are held and put in its mailbox together, 64 at a time, and at
 * the latest when the sender sends anything else (to another process, or
 * a signal such as a link, monitor or exit to any), receives, waits, yields
 * or exits.  Order is kept; only a sender that computes for long after a
 * send without calling the runtime delays its last messages so (it holds
 * its scheduler too: see bl_config's long-schedule report).
 */
int bl_send(bl_pid to, uint32_t tag, const void *data, size_t len);

/* As bl_send, tagging the message with reference ref (for replies). */
int bl_send_ref(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len);

/*
 * Moves a heap buffer to pid without copying: on success ownership of buf
 * passes to the runtime, which calls free_fn(buf) (free() when NULL) after
 * the receiver frees the message, or when the message is dropped.  On
 * failure the caller still owns buf.  Same errors as bl_send.
 */
int bl_send_move(bl_pid to, uint32_t tag, void *buf, size_t len, void (*free_fn)(void *));

/* Gives a received message back to the runtime.  NULL is ignored. */
void bl_msg_free(bl_msg *m);

/* A matcher for selective receive: true when m is the wanted message. */
typedef bool (*bl_match_fn)(const bl_msg *m, void *arg);

#define BL_INFINITY ((int64_t)-1)

/* bl_recv flags */
#define BL_RECV_MARKED 1u /* only look at messages that arrived after bl_recv_mark() */

/*
 * Process only: removes and returns in *out the first message in arrival
 * order for which match(m, arg) is true (every message if match is NULL),
 * waiting for it up to timeout_ms (0 = only look, BL_INFINITY = forever).
 * Messages that do not match stay queued in order.  A timeout never ends
 * early.  It is counted from the scheduler's next timer turn, which comes
 * at once when the scheduler has nothing else to run and otherwise within
 * 64 switches: a receive reads no clock, and a timeout ends late by at most
 * that wait (and, as every timer, by up to the wheel's 1 ms tick).
 *
 * Returns 0, -ETIMEDOUT, -EPERM outside a process, -EINVAL for a negative
 * timeout other than BL_INFINITY.
 *
 * With BL_RECV_MARKED the scan starts at the receive marker set by the last
 * bl_recv_mark(): messages queued before it are never examined, so a reply
 * tagged with a fresh reference is found in constant time however long the
 * queue is.  Set the mark after creating the reference and before sending
 * the request.
 */
int bl_recv(bl_msg **out, bl_match_fn match, void *arg, int64_t timeout_ms, unsigned flags);

/* Process only: sets the receive marker at the current end of the queue. */
void bl_recv_mark(void);

/* Shorthand: any message, waiting up to timeout_ms; NULL on timeout/error. */
bl_msg *bl_receive(int64_t timeout_ms);

/* Ready-made matchers: arg points at the uint32_t tag / the bl_ref wanted. */
bool bl_match_tag(const bl_msg *m, void *arg);
bool bl_match_ref(const bl_msg *m, void *arg);

/* Process only: number of messages waiting in the caller's mailbox. */
size_t bl_mailbox_len(void);

#ifdef __cplusplus
}
#endif

#include "beamline/handler.h"
#include "beamline/signal.h"
#include "beamline/name.h"
#include "beamline/info.h"
#include "beamline/gen_server.h"
#include "beamline/agent.h"
#include "beamline/registry.h"
#include "beamline/task.h"
#include "beamline/supervisor.h"
#include "beamline/dynamic_supervisor.h"
#include "beamline/partition_supervisor.h"
#include "beamline/task_supervisor.h"
#include "beamline/io.h"
#include "beamline/dirty.h"
#include "beamline/log.h"
#include "beamline/listener.h"
#include "beamline/control.h"

#endif /* BEAMLINE_H */
