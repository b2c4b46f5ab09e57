/*
 * Task.shutdown's outcomes, checked against Elixir's: {:ok, reply} when the
 * reply came during the shutdown, nil only for the exit the shutdown asked
 * for (shutdown after a shutdown signal, killed after brutal_kill),
 * {:exit, :killed} for a task that outlived the timeout, {:exit, reason}
 * for any other end.
 *
 * Timing-based cases use 50 ms units; everything else waits on the event
 * itself.
 */
#include <errno.h>

#include "beamline/task.h"
#include "bl_test.h"

#define UNIT 50 /* ms */

enum { T_GO = 1, T_READY };

static const bl_config quiet = {.quiet = true};

/* How a trapping task answers the shutdown signal. */
enum { ANSWER_NEVER, ANSWER_RESULT, ANSWER_EXIT_CUSTOM, ANSWER_EXIT_SHUTDOWN_DETAIL };

typedef struct trap_arg {
    bl_pid owner;
    int answer;
} trap_arg;

static void block_forever(void)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/* Traps exits, says so, waits for the shutdown signal, then answers as told. */
static void trapper(void *arg, bl_task_out *out)
{
    trap_arg *a = arg;
    bl_trap_exit(true);
    bl_send(a->owner, T_READY, NULL, 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_EXIT, 10000));
    switch (a->answer) {
    case ANSWER_RESULT: {
        int v = 5;
        bl_task_return(out, &v, sizeof v);
        return;
    }
    case ANSWER_EXIT_CUSTOM: {
        bl_reason r = {.kind = BL_CUSTOM, .code = 7};
        bl_exit_reason(&r);
        return;
    }
    case ANSWER_EXIT_SHUTDOWN_DETAIL: {
        bl_reason r = {.kind = BL_SHUTDOWN, .detail = "why", .detail_len = 3};
        bl_exit_reason(&r);
        return;
    }
    default:
        block_forever();
    }
}

/* Exits with reason at once (arg: a bl_reason_kind). */
static void exit_with(void *arg, bl_task_out *out)
{
    (void)out;
    bl_reason r = BL_REASON((bl_reason_kind)(intptr_t)arg);
    bl_exit_reason(&r);
}

/* Starts a trapping task answering `answer`, and waits until it traps. */
static void start_trapper(bl_task *t, trap_arg *a, int answer)
{
    *a = (trap_arg){bl_self(), answer};
    BL_CHECK_EQ(bl_task_async(t, trapper, a, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
}

/* Waits for t's process to have died (it was started nolink and has exited). */
static void wait_gone(bl_pid pid)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
}

static void blocker(void *arg, bl_task_out *out)
{
    (void)arg, (void)out;
    block_forever();
}

/* An unlinked task, killed by the caller before anyone shuts it down. */
static void kill_first(bl_task *t)
{
    BL_CHECK_EQ(bl_task_async_nolink(t, blocker, NULL, NULL), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(t->pid, &kill), 0);
    wait_gone(t->pid);
}

static void outcomes_main(void *arg)
{
    (void)arg;
    bl_task t;
    trap_arg a;
    bl_task_result r;

    /* Outlives the timeout: killed, and that is {:exit, :killed}, not nil. */
    start_trapper(&t, &a, ANSWER_NEVER);
    int64_t t0 = bl_test_ms();
    BL_CHECK_EQ(bl_task_shutdown(&t, 2 * UNIT, &r), BL_TASK_EXIT);
    BL_CHECK(bl_test_ms() - t0 >= 2 * UNIT - 5);
    BL_CHECK_EQ(r.status, BL_TASK_EXIT);
    BL_CHECK_EQ(r.reason.kind, BL_KILLED);
    bl_task_result_free(&r);
    BL_CHECK(!bl_is_alive(t.pid));
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* The same task under brutal_kill: killed is what was asked for, nil. */
    start_trapper(&t, &a, ANSWER_NEVER);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), BL_TASK_NIL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Replies while shutting down: {:ok, reply}. */
    start_trapper(&t, &a, ANSWER_RESULT);
    BL_CHECK_EQ(bl_task_shutdown(&t, 10000, &r), BL_TASK_OK);
    BL_CHECK(r.len == sizeof(int) && *(const int *)r.data == 5);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Answers the signal with an exit of its own: {:exit, reason}. */
    start_trapper(&t, &a, ANSWER_EXIT_CUSTOM);
    BL_CHECK_EQ(bl_task_shutdown(&t, 10000, &r), BL_TASK_EXIT);
    BL_CHECK(r.reason.kind == BL_CUSTOM && r.reason.code == 7);
    bl_task_result_free(&r);

    /* {shutdown, detail} is not :shutdown: {:exit, {:shutdown, detail}}. */
    start_trapper(&t, &a, ANSWER_EXIT_SHUTDOWN_DETAIL);
    BL_CHECK_EQ(bl_task_shutdown(&t, 10000, &r), BL_TASK_EXIT);
    BL_CHECK(r.reason.kind == BL_SHUTDOWN && r.reason.detail_len == 3);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Already dead of shutdown before the call: nil (Elixir's flush_noproc). */
    BL_CHECK_EQ(bl_task_async_nolink(&t, exit_with, (void *)(intptr_t)BL_SHUTDOWN, NULL), 0);
    wait_gone(t.pid);
    BL_CHECK_EQ(bl_task_shutdown(&t, 10000, &r), BL_TASK_NIL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Already killed by someone else, then a timeout shutdown: {:exit, :killed}. */
    kill_first(&t);
    BL_CHECK_EQ(bl_task_shutdown(&t, 10000, &r), BL_TASK_EXIT);
    BL_CHECK_EQ(r.reason.kind, BL_KILLED);
    bl_task_result_free(&r);
    /* ... and the same under brutal_kill: nil. */
    kill_first(&t);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), BL_TASK_NIL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task_shutdown, outcomes_as_elixir)
{
    bl_test_run(&quiet, outcomes_main, NULL);
}
