/*
 * proc/otp.h - what the OTP layer needs from the runtime beyond the public
 * API: system-tagged sends and timers, call aliases, callers.
 *
 * An alias makes late replies impossible to see: a message sent with
 * BL_MSG_ALIAS is dropped when the receiver drains it unless its reference
 * is one of the receiver's active aliases (proc/alias.c).  A caller sets
 * its call's alias to the call's reference before sending the request and
 * clears it when the call ends, so a reply that comes after a timeout never
 * reaches the mailbox (Erlang's alias/unalias around gen:call).  The call's
 * alias is the first one the drain checks, in the PCB; the public aliases
 * (bl_alias, bl_monitor_ex) work the same way.
 */
#ifndef BL_PROC_OTP_H
#define BL_PROC_OTP_H

#include "beamline.h"

/* bl_msg.flags bit: drop unless the receiver's alias is this message's ref. */
#define BL_MSG_ALIAS (1u << 5)

/*
 * A call's monitor travels in its request (bl__call_send): the receiver
 * takes it on when it drains the request, exactly as if a monitor signal
 * had come just before, and hands it back with its reply
 * (bl__send_reply), so a call costs the request and the reply and no
 * monitor or demonitor envelopes.
 *   BL_MSG_MONITOR  on a request: its sender monitors the receiver under
 *                   the request's ref (cleared once the receiver holds it);
 *   BL_MSG_DEMON    on a reply: the replier held that monitor and ended it
 *                   as it replied; the caller forgets its side without
 *                   telling anyone (bl__call_done).
 */
#define BL_MSG_MONITOR (1u << 7)
#define BL_MSG_DEMON   (1u << 8)

/*
 * Process only: monitors `to`, makes the monitor's reference the caller's
 * call alias (bl__alias_set) and sends tag + data[0..len) with that ref, in
 * one envelope.  0 with *ref set; -ESRCH when `to` is not alive (no monitor
 * is left, no alias set), -EDEADLK for the caller itself, -EINVAL, -ENOMEM,
 * -EPERM outside a process.
 */
int bl__call_send(bl_pid to, uint32_t tag, const void *data, size_t len, bl_ref *ref);

/*
 * An alias reply (BL_MSG_ALIAS) to `to` under ref; when the calling process
 * holds the monitor `to` took with its request, that monitor ends here and
 * the reply says so (BL_MSG_DEMON).  As bl__send_ex otherwise.
 */
int bl__send_reply(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len);
/* bl__send_reply with the message flags mflags instead of BL_MSG_ALIAS. */
int bl__send_demon(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                   uint32_t mflags);

/* Process only: the call under monitor ref got its reply m: the monitor goes
 * (without a signal when the replier ended it, BL_MSG_DEMON). */
void bl__call_done(bl_ref ref, const bl_msg *reply);

/* bl_send_ref without the reserved-tag check; mflags may hold BL_MSG_ALIAS. */
int bl__send_ex(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len, uint32_t mflags);

/*
 * Sends a message that carries a resource (data is copied; release runs on
 * the message if it is dropped unread, core/msg.h): 0 when it reached the
 * mailbox (which then owns the resource), -ESRCH when `to` was gone (the
 * release has run), -ENOMEM when no envelope could be had (the caller still
 * owns the resource).  Any thread.
 */
int bl__send_owned(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len,
                   void (*release)(bl_msg *m));

/* bl_send_after without the reserved-tag check, tagging the message with ref. */
int bl__send_after(bl_pid pid, uint32_t tag, bl_ref ref, const void *data, size_t len, int64_t ms,
                   bl_ref *tref);

/*
 * Process only: spawns a handler process monitored by the caller under
 * monitor_ref (and linked to it when link), both in place before it runs.
 */
int bl__spawn_handler_monitor(bl_pid *pid, const bl_handler *h, void *arg,
                              const bl_spawn_opts *opts, bool link, bl_ref monitor_ref);

/* Process only: spawns a handler process linked to the caller before it runs. */
int bl__spawn_handler_link(bl_pid *pid, const bl_handler *h, void *arg, const bl_spawn_opts *opts);

/*
 * Removes c from the caller's cleanup handlers wherever it is among them,
 * without running it: for a resource that lives across calls (a task
 * stream), released out of order with the program's own handlers, which
 * bl_cleanup_pop cannot do.  Nothing when c is not there, or outside a
 * process.
 */
void bl__cleanup_remove(bl_cleanup *c);

/* Process only: sets the caller's call alias (BL_REF_NONE: none). */
void bl__alias_set(bl_ref ref);

/*
 * Process only: sets the caller's callers (bl_callers) to pids[0..n), cut
 * to BL_CALLERS_MAX, replacing any: for a process started on behalf of
 * another than its spawner (a Task.Supervisor child gets [requester |
 * requester's callers]).  0, -EPERM, -EINVAL, -ENOMEM.
 */
int bl__callers_set(const bl_pid *pids, size_t n);

/*
 * Process only: what sort of process the caller is, for the snapshot
 * (bl_proc_snap.kind): a behaviour's init sets it (gen_server, then a
 * supervisor's own init over it; a task).  Nothing outside a process.
 */
void bl__proc_kind_set(bl_proc_kind k);

/*
 * Charges the calling process n reductions for work a call does without
 * sending (a registry's table operations, a partition's purge of a dead
 * owner's entries): once its slice is spent it yields, as a send would, so
 * a loop of such calls shares its scheduler.  Nothing outside a process.
 * It may switch: never call it holding a lock or where a kill must not be
 * acted upon.
 */
void bl__charge_self(int32_t n);

#endif /* BL_PROC_OTP_H */
