/*
 * beamline/task.h - tasks (Elixir's Task): run one function in its own
 * process and collect its result.
 *
 *   bl_task t;
 *   bl_task_async(&t, work, &input, NULL);     // linked to and monitored by the caller
 *   ...                                         // do something else meanwhile
 *   bl_task_result r;
 *   if (bl_task_await(&t, 5000, &r) == 0) use(r.data, r.len);
 *   bl_task_result_free(&r);
 *
 * A task is an ordinary process.  Its function gets an argument and a
 * bl_task_out, into which it copies its result with bl_task_return; the
 * bytes travel to the owner in a reply message tagged BL_TAG_TASK_REPLY and
 * the task's monitor reference, and the owner receives them with the calls
 * below.  A task fails the way any process does: bl_exit, bl_exit_reason,
 * an exit signal, a stack overflow.
 *
 * The bl_task struct is a plain value (pid, monitor reference, owner).  Only
 * its owner, the process that started it, may await, yield to, ignore or
 * shut it down; any other process gets -EPERM.  A call that settles the
 * task (a result, an exit, an ignore, a shutdown) marks the struct spent
 * (ref = BL_REF_NONE) and later calls with it return -EINVAL.  Copies of the
 * struct stay harmless: they refer to the task through a generation-checked
 * slot, never through freed memory.
 *
 * Callers.  As Elixir's Task sets $callers, a task knows the chain of
 * processes that started it, nearest first: bl_callers() in the task, or
 * bl_proc_info.callers from outside.  A task its owner starts (async,
 * async_nolink, start, start_link) gets [owner | owner's callers]; one a
 * Task.Supervisor starts for its owner gets the same chain, not the
 * supervisor's.
 *
 * Results.  The calls that collect a task fill a bl_task_result: status OK
 * with the result bytes, EXIT with the reason the task died with (decoded
 * from its DOWN message), or NIL (no answer yet: the task runs on).  Free it
 * with bl_task_result_free; its bytes live in the message it holds.
 *
 * Differences from Elixir, forced by C or chosen for it:
 *  - Failures are returned, not raised.  await returns -ECONNRESET when the
 *    task died (Elixir exits the caller with the task's reason), -ETIMEDOUT
 *    when it timed out (Elixir exits the caller, which takes a linked task
 *    down with it: here a linked task is killed and an unlinked one ignored,
 *    so the result is gone either way and nothing is left in the mailbox).
 *    Calls from a process other than the owner return -EPERM (Elixir raises).
 *  - A settled task struct is marked spent: awaiting it again returns
 *    -EINVAL at once instead of waiting for the timeout.
 *  - Results are bytes copied out of the task, not terms.
 *  - The reply of an ignored task is dropped by the task itself: ignore and
 *    the task's sending of its reply race on one atomic word, so the reply
 *    either came before ignore returned (and ignore returns it) or is never
 *    sent.  Elixir does the same with a process alias.
 *  - A caller that traps exits and uses async gets {EXIT, pid, normal}
 *    messages from its finished tasks (BL_TAG_EXIT), as in Elixir; streams
 *    flush those of their own tasks (Elixir's streams do not link the
 *    caller to the tasks directly, so it never sees them).
 *  - yield_many's on_timeout default is Elixir's :nothing (the task runs on
 *    and a later yield may still get its result); :ignore and :kill_task
 *    are available.
 *  - async_stream is an iterator (bl_task_stream_next) instead of a lazy
 *    Enumerable; its items are fixed-size byte records, from an array or a
 *    generator callback; close kills what is still running (Elixir shuts
 *    the remaining tasks down when the stream is halted).
 *  - A task process is a handler process (beamline/handler.h) whose init
 *    runs the function: it may block (receive, sleep, calls) but not
 *    bl_hibernate, which returns -EINVAL there.
 *
 * Everything here is process only except bl_task_start, bl_task_return
 * (which is for task functions) and bl_task_result_free.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_TASK_H
#define BEAMLINE_TASK_H

#ifdef __cplusplus
extern "C" {
#endif

/* The tag of a task's reply: m->ref is the task's ref, m->data/len its result. */
#define BL_TAG_TASK_REPLY (BL_TAG_SYSTEM | 0x30u)

/* Elixir's default timeouts: await, yield, yield_many and stream items; shutdown. */
#define BL_TASK_DEFAULT_TIMEOUT  5000
#define BL_TASK_DEFAULT_SHUTDOWN 5000

/* A task.  Plain value: copy it freely (see the header comment). */
typedef struct bl_task {
    bl_pid pid;     /* the task process */
    bl_ref ref;     /* its monitor reference, tags the reply; BL_REF_NONE once spent */
    bl_pid owner;   /* the only process that may collect it */
    uint64_t ctl;   /* internal: the slot shared with the task process and its generation */
    uint32_t flags; /* internal: linked or not */
} bl_task;

/* Where a task function puts its result (lives with the task process). */
typedef struct bl_task_out bl_task_out;

/*
 * A task function: runs in the task process with the argument given at
 * start.  Its result is what it last passed to bl_task_return (nothing: an
 * empty result).  arg is shared, not copied: it must stay valid while the
 * task may use it.
 */
typedef void (*bl_task_fn)(void *arg, bl_task_out *out);

/*
 * Sets the task's result to a copy of data[0..len) (replacing an earlier
 * one); it is sent when the function returns.  Returns 0, -EINVAL (out
 * NULL, data NULL with len > 0), -ENOMEM.
 */
int bl_task_return(bl_task_out *out, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum bl_task_status {
    BL_TASK_OK = 0,   /* {:ok, result}: data/len hold the result */
    BL_TASK_EXIT = 1, /* {:exit, reason}: the task died (or timed out in a stream) */
    BL_TASK_NIL = 2,  /* nil: no answer (yet) */
} bl_task_status;

typedef struct bl_task_result {
    bl_task_status status; /* what came */
    const void *data;      /* OK: the result bytes (inside msg), NULL when len is 0 */
    size_t len;            /* OK: their size */
    bl_reason reason;      /* EXIT: why; its detail points into msg */
    size_t index;          /* position in the input (many/stream calls), else 0 */
    bl_msg *msg;           /* the reply or DOWN that holds data and detail; may be NULL */
} bl_task_result;

/* Frees what r holds and resets it to NIL.  NULL is ignored. */
void bl_task_result_free(bl_task_result *r);

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Task.async: starts fn(arg) in a new process linked to the caller and
 * monitored by it (both in place before it runs), and fills *t.  The
 * result comes back as a message the caller collects with await, yield,
 * yield_many or await_many.  Collect every task: if the caller never does,
 * the reply stays in its mailbox.  Returns 0, -EINVAL (t or fn NULL, bad
 * options), -EPERM (not in a process), -ENOMEM, -ESRCH.
 */
int bl_task_async(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts);

/*
 * As bl_task_async without the link (Task.Supervisor.async_nolink without
 * the supervisor): a crash of the task does not touch the caller, which
 * sees it through the monitor; the caller's death does not stop the task.
 */
int bl_task_async_nolink(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts);

/*
 * Task.completed: fills *t with a task that has already finished with
 * result data[0..len) (copied), without a process: as in Elixir, the
 * result is sent to the caller at once, so await, yield, yield_many and
 * await_many return it like any task's, and ignore and shutdown return it
 * (OK) if it is still in the mailbox, NIL otherwise.  t->pid is
 * BL_PID_NONE.  Returns 0, -EINVAL (t NULL, data NULL with len > 0),
 * -EPERM (not in a process), -ENOMEM.
 */
int bl_task_completed(bl_task *t, const void *data, size_t len);

/*
 * Task.start: fn(arg) in a process of its own, neither linked nor
 * monitored; its result is dropped.  Works from any thread.  Stores the pid
 * in *pid (may be NULL).  Returns 0, -EINVAL, -ENOMEM, -ESRCH.
 */
int bl_task_start(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts);

/*
 * Task.start_link: as bl_task_start, linked to the caller (a supervisor's
 * start function, typically).  Process only: -EPERM elsewhere.
 */
int bl_task_start_link(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts);

/*
 * Lower level, for Task.Supervisor: a task whose process someone else
 * starts.  bl_task_async_via calls spawner(ctx, bl_task_child_start,
 * start_arg, &pid) in the caller; the spawner must arrange for
 * start(start_arg, &pid) to be called once, in whatever process should be
 * linked to the task (a supervisor: start has bl_start_fn's signature, so it
 * can be a child's start function), and return its result.  The task
 * process then waits for its owner: the caller monitors it, links to it
 * when link is true, and tells it to run fn(arg).  If the owner dies
 * first, the task exits with reason shutdown.
 *
 * Returns 0; the spawner's negative result; -ECANCELED if the spawner
 * returned 0 without having started the process; -EINVAL (NULL t, spawner
 * or fn), -EPERM, -ENOMEM.  A spawner that fails after start succeeded
 * leaves a task process that waits for the caller's exit.
 */
typedef int (*bl_task_spawner)(void *ctx, int (*start)(void *start_arg, bl_pid *pid),
                               void *start_arg, bl_pid *pid);
int bl_task_async_via(bl_task *t, bl_task_spawner spawner, void *ctx, bl_task_fn fn, void *arg,
                      bool link);

/*
 * The start function bl_task_async_via hands to its spawner: spawns the
 * task process linked to the caller (process only) and stores its pid.
 * Returns 0, -EINVAL (start_arg not from bl_task_async_via, or already
 * used), -ECANCELED (the owner gave up), -EPERM, -ENOMEM, -ESRCH.
 */
int bl_task_child_start(void *start_arg, bl_pid *pid);

/* ------------------------------------------------------------------------ */
/* Collecting one task                                                      */
/* ------------------------------------------------------------------------ */

/*
 * Task.await: waits up to timeout_ms (BL_INFINITY: forever) for the task's
 * result.  Returns
 *   0            *res is OK with the result;
 *   -ECONNRESET  the task died first: *res is EXIT with its reason (res->msg
 *                is its DOWN message);
 *   -ETIMEDOUT   no result in time: a linked task has been killed, an
 *                unlinked one ignored (if its result came in while that
 *                was done, it is returned with 0 instead);
 *   -EPERM       not the owner, or not in a process;
 *   -EINVAL      t or res NULL, t spent, bad timeout.
 * The task is spent afterwards (except after -EPERM / -EINVAL), and neither
 * its reply nor its DOWN is ever left in the mailbox.
 */
int bl_task_await(bl_task *t, int64_t timeout_ms, bl_task_result *res);

/*
 * Task.yield: as await, but a timeout returns BL_TASK_NIL, leaves the task
 * running and the struct usable: yield may be called again.  Returns the
 * status (BL_TASK_OK, BL_TASK_EXIT, BL_TASK_NIL) also stored in res->status,
 * or -EPERM / -EINVAL as await.  OK and EXIT spend the task.
 */
int bl_task_yield(bl_task *t, int64_t timeout_ms, bl_task_result *res);

/*
 * Task.ignore: stops caring about the task.  It is unlinked and demonitored
 * and runs on; its result is dropped (never sent).  Returns BL_TASK_OK when
 * its result had already come (*res holds it), BL_TASK_EXIT when it had
 * already died, else BL_TASK_NIL; -EPERM / -EINVAL as await.  res may be
 * NULL if the result does not matter.  The task is spent.
 */
int bl_task_ignore(bl_task *t, bl_task_result *res);

/* shutdown's timeout value for Elixir's :brutal_kill. */
#define BL_TASK_BRUTAL_KILL ((int64_t)-2)

/*
 * Task.shutdown: unlinks the task and sends it an exit signal, shutdown,
 * then waits up to timeout_ms for it to end before killing it
 * (BL_TASK_BRUTAL_KILL: kills it at once; BL_INFINITY: waits forever).
 * Returns, as Elixir does:
 *   BL_TASK_OK    its result came in meanwhile (it had finished, or it
 *                 traps exits and answered before ending);
 *   BL_TASK_NIL   it ended as asked: with reason shutdown (not
 *                 {shutdown, detail}) after a shutdown signal (also if the
 *                 timeout then passed), or killed by BL_TASK_BRUTAL_KILL;
 *                 also a task already dead for one of those reasons;
 *   BL_TASK_EXIT  any other end, in res->reason: it had died before
 *                 (its own reason), it outlived the timeout and was killed
 *                 (killed), its DOWN was already taken (noproc);
 *   -EPERM / -EINVAL as await.
 * res may be NULL.  The task is spent and dead when this returns, and
 * nothing of it is left in the mailbox.  A task without a process
 * (bl_task_completed) is ignored instead (bl_task_ignore).
 */
int bl_task_shutdown(bl_task *t, int64_t timeout_ms, bl_task_result *res);

/* ------------------------------------------------------------------------ */
/* Collecting many tasks                                                    */
/* ------------------------------------------------------------------------ */

/* What to do with a task that has not answered when a timeout passes. */
typedef enum bl_task_on_timeout {
    BL_TASK_ON_TIMEOUT_DEFAULT = 0, /* yield_many: NOTHING; streams: EXIT */
    BL_TASK_ON_TIMEOUT_NOTHING,     /* yield_many: leave it running, yield again later */
    BL_TASK_ON_TIMEOUT_IGNORE,      /* yield_many: bl_task_ignore it */
    BL_TASK_ON_TIMEOUT_KILL_TASK,   /* kill it (yield_many: shutdown brutal_kill; streams: the
                                       item yields EXIT with reason timeout, the stream goes on) */
    BL_TASK_ON_TIMEOUT_EXIT,        /* streams: kill every task, next returns -ETIMEDOUT */
} bl_task_on_timeout;

typedef struct bl_task_yield_opts {
    bl_task_on_timeout on_timeout; /* DEFAULT, NOTHING, IGNORE or KILL_TASK */
    size_t limit;                  /* return once this many answered (0: all); on_timeout
                                      is then not applied */
} bl_task_yield_opts;

/*
 * Task.yield_many: waits up to timeout_ms in all for the n tasks and fills
 * res[i] for tasks[i] (res[i].index = i): OK, EXIT, or NIL for a task still
 * running, after which opts->on_timeout applies (opts may be NULL).  A task
 * that answered is spent; a NIL one stays usable unless it was ignored or
 * killed (a killed task's entry is what shutdown returned).  Returns how
 * many entries are OK or EXIT, or -EPERM (a task not the caller's, not in a
 * process), -EINVAL (NULL arrays with n > 0, a spent task, bad timeout or
 * option), -ENOMEM, in which case no task was touched.
 */
int bl_task_yield_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res,
                       const bl_task_yield_opts *opts);

/*
 * Task.await_many: waits up to timeout_ms in all for the results of the n
 * tasks, in res[i] for tasks[i].  Returns 0 when every task answered; on
 * the first failure it stops waiting and returns
 *   -ECONNRESET  a task died: its res entry is EXIT with the reason;
 *   -ETIMEDOUT   the timeout passed;
 * and the tasks still pending are treated as the exit of Elixir's caller
 * would leave them: linked ones are killed (bl_task_shutdown with
 * BL_TASK_BRUTAL_KILL), unlinked ones ignored (bl_task_ignore); their
 * entries are what those return: NIL, or OK / EXIT if the task answered or
 * died meanwhile.  Entries of tasks that had answered keep their results.
 * Every task is spent afterwards.  -EPERM / -EINVAL / -ENOMEM as
 * yield_many, touching nothing.
 */
int bl_task_await_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res);

/* ------------------------------------------------------------------------ */
/* async_stream                                                             */
/* ------------------------------------------------------------------------ */

/*
 * The function of a stream: runs in a task process for one item.  item
 * points at the task's own copy of the item's bytes (item_size of them),
 * valid while the task runs; ctx is the stream's, shared.
 */
typedef void (*bl_task_stream_fn)(void *ctx, void *item, bl_task_out *out);

/*
 * A generator: writes the next item (item_size bytes) to *item and returns
 * 1, returns 0 when there are no more, or a negative errno to fail the
 * stream.  Called in the consumer, one item ahead of need at most.
 */
typedef int (*bl_task_gen_fn)(void *state, void *item);

typedef struct bl_task_stream_opts {
    unsigned max_concurrency;      /* tasks alive at once at most (0: bl_schedulers()) */
    bool unordered;                /* deliver in completion order (Elixir's ordered: false) */
    int64_t timeout;               /* ms per item from its start (0: 5000; BL_INFINITY) */
    bl_task_on_timeout on_timeout; /* DEFAULT (EXIT), EXIT or KILL_TASK */
    bool nolink;                   /* tasks not linked to the consumer (async_stream_nolink) */
    bl_task_spawner spawner;       /* NULL, or start tasks through it (bl_task_async_via) */
    void *spawner_ctx;             /* its ctx */
    bl_spawn_opts spawn;           /* stack size, priority, scheduler of the tasks */
} bl_task_stream_opts;

typedef struct bl_task_stream bl_task_stream;

/*
 * Task.async_stream over an array: n items of item_size bytes at items
 * (which must stay valid until close; each task gets a copy of its item as
 * it starts), each processed by fn(ctx, item, out)
 * in a task of its own.  Nothing starts before the first next.  Stores the
 * stream in *s.  Process only: the caller is the stream's consumer.
 * Returns 0, -EINVAL (NULL s or fn, NULL items with n > 0, item_size 0, bad
 * options), -EPERM, -ENOMEM.
 */
int bl_task_stream_open(bl_task_stream **s, const void *items, size_t n, size_t item_size,
                        bl_task_stream_fn fn, void *ctx, const bl_task_stream_opts *opts);

/* As bl_task_stream_open, the items coming from gen(state, item) until it returns 0. */
int bl_task_stream_open_gen(bl_task_stream **s, bl_task_gen_fn gen, void *state, size_t item_size,
                            bl_task_stream_fn fn, void *ctx, const bl_task_stream_opts *opts);

/*
 * Pulls the next result: starts tasks for the next items while fewer than
 * max_concurrency are outstanding (started and not yet delivered, so the
 * number of task processes alive never exceeds it), then waits for the
 * next result, in input order or, unordered, in completion order.  Fills
 * *res (res->index is the item's index: OK, or EXIT with the reason a task
 * died of while the consumer traps exits, or reason timeout under
 * KILL_TASK) and returns 1; returns 0 when every item has been delivered.
 * Errors end the stream (every task killed) and are returned again by
 * later calls: -ETIMEDOUT (an item timed out under EXIT), the generator's
 * error, a spawn error; -EPERM for a caller other than the consumer,
 * -EINVAL for NULL arguments.
 */
int bl_task_stream_next(bl_task_stream *s, bl_task_result *res);

/*
 * Kills the tasks still running, waits for them to die, drops results not
 * yet delivered and frees the stream.  Returns 0, -EPERM (not the
 * consumer: nothing done), -EINVAL (NULL).
 *
 * A consumer that dies with its stream open (killed in next, or ending
 * without close) does not leak it: the stream is freed with the consumer
 * and its tasks still out are killed, as Elixir's stream does when its
 * caller exits.  So does bl_hibernate (the stream goes with the frames).
 * Each task works on its own copy of its item, so items need only stay
 * valid until the next that starts their task.
 */
int bl_task_stream_close(bl_task_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_TASK_H */
