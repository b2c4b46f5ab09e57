/*
 * beamline/signal.h - exit reasons, links, monitors and exit signals.
 *
 * Semantics follow Erlang's:
 *  - A process that exits sends an exit signal carrying its reason along all
 *    its links.  A linked process that does not trap exits dies with the same
 *    reason unless that reason is normal; one that traps exits gets a
 *    BL_TAG_EXIT message instead.
 *  - bl_exit_pid sends an exit signal without a link.  Reason normal is
 *    ignored by a non-trapping target other than the caller; kill cannot be
 *    trapped, and the target dies with reason killed (which is what its own
 *    links then see).
 *  - A monitor delivers exactly one BL_TAG_DOWN message when the monitored
 *    process exits for any reason, normal included.  Monitoring a process
 *    that is already dead delivers DOWN with reason noproc at once.
 *  - Signals from one process arrive after the messages it sent earlier, in
 *    order.  They are acted upon when the target next receives, yields or is
 *    scheduled, so a process in a loop that calls the runtime is reached
 *    within one time slice.
 *
 * Where C forces a difference: a process killed by a signal does not unwind
 * its C stack (no cleanup code above the point where it was waiting runs);
 * use links or monitors, or trap exits, to clean up.
 */
#ifndef BEAMLINE_SIGNAL_H
#define BEAMLINE_SIGNAL_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exit reasons ---- */

typedef enum bl_reason_kind {
    BL_NORMAL = 0,         /* the process finished */
    BL_KILL = 1,           /* only as a signal: the untrappable kill */
    BL_KILLED = 2,         /* the reason of a process that was killed */
    BL_SHUTDOWN = 3,       /* shutdown, or {shutdown, detail} when detail_len > 0 */
    BL_NOPROC = 4,         /* the other process did not exist */
    BL_TIMEOUT = 5,        /* a call timed out */
    BL_STACK_OVERFLOW = 6, /* the process overflowed its stack */
    BL_CUSTOM = 7,         /* application-defined: code and optional detail */
} bl_reason_kind;

/*
 * An exit reason.  detail points at detail_len bytes that the runtime copies
 * whenever the reason travels (any size); a received reason's detail points
 * into the message and lives as long as it does.
 */
typedef struct bl_reason {
    bl_reason_kind kind; /* which reason */
    int32_t code;        /* BL_CUSTOM: the application's code; 0 otherwise */
    const void *detail;  /* optional payload (shutdown detail, custom detail) */
    size_t detail_len;   /* its size in bytes */
} bl_reason;

#define BL_REASON(k) ((bl_reason){.kind = (k)})

/* True when a and b are the same reason (kind, code and detail bytes). */
bool bl_reason_eq(const bl_reason *a, const bl_reason *b);

/* True for the reasons that are not failures: normal, shutdown, {shutdown, _}. */
bool bl_reason_is_clean(const bl_reason *r);

/*
 * Writes r as the crash report prints it ("normal", "killed", "custom 42",
 * "shutdown (12 bytes of detail)") into buf, NUL-terminated and cut to len
 * bytes.  Returns the length of the whole text, as snprintf does; -EINVAL for
 * a NULL r, an unknown kind, or a NULL buf with len not 0.  Any thread.
 */
int bl_reason_format(const bl_reason *r, char *buf, size_t len);

/* Exits the calling process with reason r.  -EPERM outside a process, -EINVAL for a bad reason. */
int bl_exit_reason(const bl_reason *r);

/* ---- system messages ---- */

/* {EXIT, from, reason}: an exit signal converted by bl_trap_exit. m->from is the sender. */
#define BL_TAG_EXIT (BL_TAG_SYSTEM | 1u)
/* {DOWN, ref, pid, reason}: m->ref is the monitor's reference, m->from the process. */
#define BL_TAG_DOWN (BL_TAG_SYSTEM | 2u)

/* Decodes the reason of a BL_TAG_EXIT or BL_TAG_DOWN message.  0 or -EINVAL. */
int bl_msg_reason(const bl_msg *m, bl_reason *out);

/* ---- links ---- */

/*
 * Process only.  Links the caller with pid (both ways; linking twice is one
 * link; linking to yourself does nothing).  If pid is not alive, the caller
 * receives an exit signal with reason noproc: a trapping caller gets the
 * BL_TAG_EXIT message, any other caller dies.  Returns 0, -EPERM, -EINVAL.
 */
int bl_link(bl_pid pid);

/* Process only.  Removes the link; no exit signal from pid arrives after it returns. */
int bl_unlink(bl_pid pid);

/* bl_spawn, with the link in place before the child runs its first instruction. */
int bl_spawn_link(bl_pid *pid, bl_entry_fn fn, void *arg, const bl_spawn_opts *opts);

/*
 * Sends an exit signal with reason r to pid (see the rules above).  Works
 * from any thread; the signal's sender is the caller's pid (none outside a
 * process).  Sending to a dead process does nothing.  Returns 0, -EINVAL
 * (malformed pid or reason), -ESRCH (runtime not running).
 */
int bl_exit_pid(bl_pid pid, const bl_reason *r);

/* Process only: sets whether exit signals become messages; returns the previous setting. */
bool bl_trap_exit(bool on);

/* ---- monitors ---- */

/*
 * Process only.  Monitors pid: stores a fresh reference in *ref; exactly one
 * BL_TAG_DOWN message with that reference follows when pid exits (at once,
 * with noproc, if it is not alive).  Returns 0, -EPERM, -EINVAL, -ENOMEM.
 */
int bl_monitor(bl_pid pid, bl_ref *ref);

/* bl_demonitor flags */
#define BL_DEMONITOR_FLUSH 1u /* also remove a DOWN for this monitor already in the mailbox */

/* Process only.  Turns the monitor off.  Returns 0 (also for an unknown or spent ref), -EPERM. */
int bl_demonitor(bl_ref ref, unsigned flags);

/* bl_spawn, with the caller monitoring the child from before it runs. */
int bl_spawn_monitor(bl_pid *pid, bl_ref *ref, bl_entry_fn fn, void *arg,
                     const bl_spawn_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_SIGNAL_H */
