/*
 * otp/task/await.c - settling one task: bl_task_await, _yield, _ignore and
 * _shutdown, and the receive and result helpers the many-task calls and
 * streams share.
 *
 * Every call that settles a task removes both its reply and its DOWN from
 * the mailbox (demonitor with flush, or waiting for the DOWN); shutdown uses
 * a second monitor found through the receive marker, as Elixir does.
 */
#include <errno.h>

#include "otp/task/task_int.h"
#include "otp/wait.h"

/* ------------------------------------------------------------------------ */
/* Receiving                                                                */
/* ------------------------------------------------------------------------ */

uint64_t bl__task_deadline_in(int64_t ms)
{
    return ms == BL_INFINITY ? NO_DEADLINE : bl__otp_now_ns() + (uint64_t)ms * 1000000u;
}

/* The receive timeout left until deadline, rounded up to whole milliseconds. */
int64_t bl__task_ms_left(uint64_t deadline)
{
    if (deadline == NO_DEADLINE) return BL_INFINITY;
    uint64_t now = bl__otp_now_ns();
    return now >= deadline ? 0 : (int64_t)((deadline - now + 999999u) / 1000000u);
}

/* The reply or the DOWN of the task with this reference. */
bool bl__task_match_task(const bl_msg *m, void *arg)
{
    return m->ref == *(const bl_ref *)arg && (m->tag == BL_TAG_TASK_REPLY || m->tag == BL_TAG_DOWN);
}

static bool match_reply(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_TASK_REPLY && m->ref == *(const bl_ref *)arg;
}

/*
 * Waits for the reply or the DOWN of task t, which is past the point where
 * it could go on running for long: it claimed its reply, or it is dead.
 * Returns true with *m, false once its slot is released with neither in
 * the mailbox.  Its reply, if it sent one, is there by then; its DOWN may
 * still be on its way (the caller then drops it with the monitor), or was
 * taken already if t is a copy of a task settled through another copy.
 * That is the race Elixir's `after 0` receives have too, and it bounds the
 * wait by the task's death.
 */
static bool await_end(const bl_task *t, bl_msg **m)
{
    for (;;) {
        bool gone = !bl__task_slot_live(t->ctl);
        /* The slot is released just before the DOWNs go out (the handler's
         * release hook), so a gone task's DOWN may still be on its way:
         * give it time to land before concluding that none is coming. */
        if (bl_recv(m, bl__task_match_task, (void *)&t->ref, gone ? 1000 : 1, 0) == 0) return true;
        if (gone) return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

void bl__task_res_ok(bl_task_result *r, bl_msg *m, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_OK,
                          .data = m->len ? m->data : NULL,
                          .len = m->len,
                          .index = index,
                          .msg = m};
}

/* An EXIT result from a DOWN message (kept: the reason's detail lives in it). */
void bl__task_res_exit(bl_task_result *r, bl_msg *down, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_EXIT, .index = index, .msg = down};
    if (bl_msg_reason(down, &r->reason) != 0) r->reason = BL_REASON(BL_NOPROC);
}

void bl_task_result_free(bl_task_result *r)
{
    if (!r) return;
    bl_msg_free(r->msg);
    bl__task_res_nil(r, r->index);
}

/*
 * The reply or DOWN m of task t settles it: OK (the DOWN that follows is
 * flushed with the monitor) or EXIT.  Returns the status.
 */
int bl__task_settle(bl_task *t, bl_msg *m, bl_task_result *res, size_t index)
{
    int st;
    if (m->tag == BL_TAG_TASK_REPLY) {
        if (t->pid) bl_demonitor(t->ref, BL_DEMONITOR_FLUSH); /* none for bl_task_completed */
        bl__task_res_ok(res, m, index);
        st = BL_TASK_OK;
    } else {
        bl__task_res_exit(res, m, index);
        st = BL_TASK_EXIT;
    }
    bl__task_spend(t);
    return st;
}

/* Checks that the caller may collect t. */
int bl__task_check(const bl_task *t)
{
    if (!t) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (t->ref == BL_REF_NONE) return -EINVAL;
    return t->owner == self ? 0 : -EPERM;
}

/* ------------------------------------------------------------------------ */
/* One task                                                                 */
/* ------------------------------------------------------------------------ */

int bl__task_ignore_one(bl_task *t, bl_task_result *res, size_t index)
{
    if (t->flags & F_LINK) bl_unlink(t->pid);
    bl_msg *m = NULL;
    /* Its answer may be here already: ignore then returns it. */
    if (bl_recv(&m, bl__task_match_task, &t->ref, 0, 0) == 0)
        return bl__task_settle(t, m, res, index);
    if (!t->pid) {
        /* bl_task_completed: no process, and its answer is gone. */
        bl__task_spend(t);
        bl__task_res_nil(res, index);
        return BL_TASK_NIL;
    }
    uint64_t seen;
    bool won = bl__task_slot_cas(t->ctl, S_ACTIVE, S_IGNORED, &seen);
    /* Won: the task will not reply.  Already IGNORED: a copy of t was. */
    bool ignored = won || (seen == ((t->ctl & STATE_MASK) << 32 | S_IGNORED));
    /* Otherwise it claimed the reply (REPLIED), or has died and its slot
     * moved on: the reply or the DOWN is on its way, under the monitor. */
    if (!ignored && await_end(t, &m)) return bl__task_settle(t, m, res, index);
    bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
    bl__task_spend(t);
    bl__task_res_nil(res, index);
    return BL_TASK_NIL;
}

/*
 * Elixir's shutdown: a second monitor (with the receive marker set first,
 * its DOWN is found without scanning the mailbox), unlink, exit signal,
 * wait, kill on timeout.
 */
int bl__task_shutdown_one(bl_task *t, int64_t timeout, bl_task_result *res, size_t index)
{
    /* No process to shut down (bl_task_completed): as Elixir, an ignore. */
    if (!t->pid) return bl__task_ignore_one(t, res, index);
    bool brutal = timeout == BL_TASK_BRUTAL_KILL;
    bl_ref mon;
    bl_recv_mark();
    int rc = bl_monitor(t->pid, &mon);
    if (rc) return rc;
    if (t->flags & F_LINK) bl_unlink(t->pid);
    bl_reason why = BL_REASON(brutal ? BL_KILL : BL_SHUTDOWN);
    bl_exit_pid(t->pid, &why);
    bl_msg *d = NULL;
    rc = bl_recv(&d, bl__otp_match_down, &mon, brutal ? BL_INFINITY : timeout, BL_RECV_MARKED);
    if (rc) {
        /* It outlived the timeout (it traps exits): Elixir's :timeout_kill. */
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(t->pid, &kill);
        bl_recv(&d, bl__otp_match_down, &mon, BL_INFINITY, BL_RECV_MARKED);
    }
    bl_reason r;
    if (bl_msg_reason(d, &r) != 0) r = BL_REASON(BL_NOPROC);
    if (r.kind == BL_NOPROC) {
        /* It was gone before we looked: its own DOWN (or its reply, which
         * comes first) says how it ended.  If neither is here when its slot
         * is released, Elixir's {:exit, :noproc}. */
        bl_msg_free(d);
        if (!await_end(t, &d)) {
            bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
            bl__task_spend(t);
            *res = (bl_task_result){
                .status = BL_TASK_EXIT, .reason = BL_REASON(BL_NOPROC), .index = index};
            return BL_TASK_EXIT;
        }
        if (d->tag == BL_TAG_TASK_REPLY) return bl__task_settle(t, d, res, index);
        if (bl_msg_reason(d, &r) != 0) r = BL_REASON(BL_NOPROC);
    } else {
        /* Its own DOWN, queued or on its way, goes with the monitor; its
         * reply, if any, came before the DOWN we got. */
        bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
        bl_msg *rep = NULL;
        if (bl_recv(&rep, match_reply, &t->ref, 0, 0) == 0) {
            bl_msg_free(d);
            bl__task_res_ok(res, rep, index);
            bl__task_spend(t);
            return BL_TASK_OK;
        }
    }
    bl__task_spend(t);
    /*
     * nil only for the exit shutdown asked for: shutdown when it sent
     * shutdown (also if it then killed: the task may have exited with
     * shutdown first), killed when it was a brutal_kill.  A task killed
     * because it outlived the timeout is {:exit, :killed}, as in Elixir.
     */
    bool ours =
        (r.kind == BL_SHUTDOWN && !r.detail_len && !brutal) || (r.kind == BL_KILLED && brutal);
    if (ours) {
        bl_msg_free(d);
        bl__task_res_nil(res, index);
        return BL_TASK_NIL;
    }
    bl__task_res_exit(res, d, index);
    return BL_TASK_EXIT;
}

int bl_task_await(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    if (!res) return -EINVAL;
    int rc = bl__task_check(t);
    if (rc) return rc;
    if (!bl__task_timeout_ok(timeout_ms)) return -EINVAL;
    bl__task_res_nil(res, 0);
    bl_msg *m = NULL;
    rc = bl_recv(&m, bl__task_match_task, &t->ref, timeout_ms, 0);
    int st;
    if (rc == 0)
        st = bl__task_settle(t, m, res, 0);
    else if (t->flags & F_LINK)
        st = bl__task_shutdown_one(t, BL_TASK_BRUTAL_KILL, res, 0);
    else
        st = bl__task_ignore_one(t, res, 0);
    if (st < 0) return st;
    return st == BL_TASK_OK ? 0 : st == BL_TASK_EXIT ? -ECONNRESET : -ETIMEDOUT;
}

int bl_task_yield(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    if (!res) return -EINVAL;
    int rc = bl__task_check(t);
    if (rc) return rc;
    if (!bl__task_timeout_ok(timeout_ms)) return -EINVAL;
    bl__task_res_nil(res, 0);
    bl_msg *m = NULL;
    if (bl_recv(&m, bl__task_match_task, &t->ref, timeout_ms, 0) != 0) return BL_TASK_NIL;
    return bl__task_settle(t, m, res, 0);
}

int bl_task_ignore(bl_task *t, bl_task_result *res)
{
    int rc = bl__task_check(t);
    if (rc) return rc;
    bl_task_result local;
    int st = bl__task_ignore_one(t, res ? res : &local, 0);
    if (!res) bl_task_result_free(&local);
    return st;
}

int bl_task_shutdown(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    int rc = bl__task_check(t);
    if (rc) return rc;
    if (!bl__task_timeout_ok(timeout_ms) && timeout_ms != BL_TASK_BRUTAL_KILL) return -EINVAL;
    bl_task_result local;
    int st = bl__task_shutdown_one(t, timeout_ms, res ? res : &local, 0);
    if (!res && st >= 0) bl_task_result_free(&local);
    return st;
}
