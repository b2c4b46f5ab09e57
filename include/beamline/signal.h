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
 *  - A process may itself exit with reason kill (bl_exit_reason, Erlang's
 *    exit(kill)): its links then get an exit signal with reason kill, which
 *    is an ordinary reason there: a trapping process gets {EXIT, pid, kill},
 *    any other dies with reason kill (not killed) and passes kill on along
 *    its own links.  Its monitors get DOWN with reason kill.  Only kill sent
 *    by bl_exit_pid is untrappable.
 *  - A monitor delivers exactly one BL_TAG_DOWN message when the monitored
 *    process exits for any reason, normal included.  Monitoring a process
 *    that is not alive delivers DOWN with reason noproc at once.
 *  - An alias is a reference other processes can send to (bl_send_alias)
 *    while its owner keeps it active; after it is deactivated, messages
 *    sent to it are dropped, also those already on their way.
 *  - Signals from one process arrive after the messages it sent earlier, in
 *    order.  They are acted upon when the target next receives, yields or is
 *    scheduled, so a process in a loop that calls the runtime is reached
 *    within one time slice.
 *
 * Pids of other nodes work with all of these while the distribution runs
 * (beamline/dist.h): links, monitors and exit signals cross the wire, and
 * a link or monitor of a node that cannot be reached, or whose connection
 * goes down, ends with reason noconnection.
 *
 * Where C forces a difference: a process killed by a signal does not unwind
 * its C stack (no cleanup code above the point where it was waiting runs);
 * use links or monitors, or trap exits, or bl_cleanup_push, to clean up.
 * A reference is 64 bits and names no process, so an alias is sent to
 * together with its owner's pid (bl_send_alias), and options that Erlang
 * passes as lists are flag bits here.
 */
#ifndef BEAMLINE_SIGNAL_H
#define BEAMLINE_SIGNAL_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exit reasons ---- */

typedef enum bl_reason_kind {
    BL_NORMAL = 0,         /* the process finished */
    BL_KILL = 1,           /* kill: untrappable from bl_exit_pid; a process's own reason
                              when it exits with it (then trappable along its links) */
    BL_KILLED = 2,         /* the reason of a process that was killed */
    BL_SHUTDOWN = 3,       /* shutdown, or {shutdown, detail} when detail_len > 0 */
    BL_NOPROC = 4,         /* the other process did not exist */
    BL_TIMEOUT = 5,        /* a call timed out */
    BL_STACK_OVERFLOW = 6, /* the process overflowed its stack */
    BL_CUSTOM = 7,         /* application-defined: code and optional detail */
    BL_NOCONNECTION = 8,   /* the connection to the other process's node went down, or
                              never came up (beamline/dist.h) */
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

/*
 * Exits the calling process with reason r (kill included: see above).
 * -EPERM outside a process, -EINVAL for a bad reason.
 */
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
 * BL_TAG_EXIT message, any other caller dies.  Returns 0, -EPERM, -EINVAL
 * (a malformed pid: see bl_monitor).
 */
int bl_link(bl_pid pid);

/*
 * Process only.  Removes the link; no exit signal from pid arrives after it
 * returns.  Returns 0 (also when there was no link), -EPERM, -EINVAL
 * (a malformed pid).
 */
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
 * with noproc, if it is not alive).  Any well-formed pid is accepted (node
 * 0, bit 63 clear, an index part other than 0): one whose process never
 * existed, a pid kept from an earlier start of the runtime included, gets
 * DOWN noproc.  A process monitoring itself gets a reference and nothing
 * else: no monitor is created and no DOWN ever comes (as in Erlang).
 * Returns 0, -EPERM, -EINVAL (NULL ref, malformed pid), -ENOMEM.
 */
int bl_monitor(bl_pid pid, bl_ref *ref);

/*
 * bl_monitor_ex flags: at most one of these makes the monitor's reference
 * an alias of the caller too (Erlang's monitor(process, Pid, [{alias, Mode}])):
 *   EXPLICIT         active until bl_unalias; a demonitor leaves it;
 *   DEMONITOR        until the monitor ends (bl_demonitor, or its DOWN is
 *                    delivered), or bl_unalias;
 *   REPLY_DEMONITOR  as DEMONITOR, or until the first message through the
 *                    alias arrives, which turns the monitor off as well (a
 *                    call's reply ends both).
 */
#define BL_MONITOR_ALIAS_EXPLICIT        1u
#define BL_MONITOR_ALIAS_DEMONITOR       2u
#define BL_MONITOR_ALIAS_REPLY_DEMONITOR 3u

/*
 * bl_monitor with flags.  When pid is not alive the DOWN noproc that comes
 * at once ends the monitor, so only an EXPLICIT alias stays active then;
 * monitoring yourself creates neither monitor nor alias.  Returns as
 * bl_monitor, and -EINVAL for unknown flags.
 */
int bl_monitor_ex(bl_pid pid, unsigned flags, bl_ref *ref);

/* bl_demonitor flags */
#define BL_DEMONITOR_FLUSH 1u /* also remove a DOWN for this monitor already in the mailbox */
#define BL_DEMONITOR_INFO  2u /* return 1 if the monitor was still on, 0 if not */

/*
 * Process only.  Turns the monitor ref off: no DOWN for it is delivered
 * afterwards (one already in the mailbox stays, unless FLUSH).  The cost
 * does not depend on the mailbox's length while the monitor is on.
 * Returns 0, or with BL_DEMONITOR_INFO 1 when the monitor was on (it is off
 * now) and 0 when it was not: its DOWN had been delivered to the mailbox
 * already (and with FLUSH removed), or ref is no monitor of the caller
 * (Erlang's demonitor(Ref, [info])).  -EPERM outside a process, -EINVAL
 * for BL_REF_NONE or unknown flags; a rejected call changes nothing.
 */
int bl_demonitor(bl_ref ref, unsigned flags);

/* bl_spawn, with the caller monitoring the child from before it runs. */
int bl_spawn_monitor(bl_pid *pid, bl_ref *ref, bl_entry_fn fn, void *arg,
                     const bl_spawn_opts *opts);

/* ---- aliases ---- */

/* bl_alias flags */
#define BL_ALIAS_EXPLICIT 0u /* active until bl_unalias (Erlang's default, explicit_unalias) */
#define BL_ALIAS_REPLY    1u /* also ends when the first message through it arrives (reply) */

/*
 * Process only.  Makes a fresh reference an alias of the caller and stores
 * it in *ref (Erlang's alias/1).  Returns 0, -EPERM, -EINVAL (NULL ref,
 * unknown flags), -ENOMEM.
 */
int bl_alias(unsigned flags, bl_ref *ref);

/*
 * Process only.  Deactivates the caller's alias ref (a monitor whose
 * reference it is stays on).  Messages sent to it afterwards, and those
 * sent earlier that the caller has not taken into its mailbox yet, are
 * dropped.  Returns 1 if ref was an active alias, 0 if not, -EPERM,
 * -EINVAL for BL_REF_NONE.
 */
int bl_unalias(bl_ref ref);

/*
 * Sends a copy of data to the alias ref of process `to` (in C an alias
 * travels with its owner's pid, as a reply address does).  The message
 * arrives with m->ref == alias if the alias is still active when `to`
 * takes it into its mailbox; otherwise it is dropped, as is one sent to a
 * dead process.  Same errors as bl_send_ref, and -EINVAL for BL_REF_NONE.
 */
int bl_send_alias(bl_pid to, uint32_t tag, bl_ref alias, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_SIGNAL_H */
