/*
 * Elixir's $callers: a task knows the chain of processes that started it,
 * from inside (bl_callers) and from outside (bl_process_info), whether its
 * owner started it or a Task.Supervisor did on the owner's behalf.
 */
#include <errno.h>

#include "beamline/task.h"
#include "beamline/task_supervisor.h"
#include "bl_test.h"

/* A task's result: its callers, count first. */
typedef struct chain {
    int n;
    bl_pid pids[BL_CALLERS_MAX];
} chain;

static void report_callers(void *arg, bl_task_out *out)
{
    (void)arg;
    chain c = {0};
    c.n = bl_callers(c.pids, BL_CALLERS_MAX);
    bl_task_return(out, &c, sizeof c);
}

static chain await_chain(bl_task *t)
{
    chain c = {-1, {0}};
    bl_task_result r;
    int rc = bl_task_await(t, 10000, &r);
    BL_CHECK_EQ(rc, 0);
    if (rc == 0 && r.len == sizeof c) memcpy(&c, r.data, sizeof c);
    bl_task_result_free(&r);
    return c;
}

/* A task that starts a task of its own and returns that one's chain. */
static void nested(void *arg, bl_task_out *out)
{
    (void)arg;
    bl_task t;
    chain c = {-1, {0}};
    if (bl_task_async(&t, report_callers, NULL, NULL) == 0) c = await_chain(&t);
    bl_task_return(out, &c, sizeof c);
}

static void direct_main(void *arg)
{
    (void)arg;
    bl_pid me = bl_self();
    bl_task t;
    BL_CHECK_EQ(bl_task_async(&t, report_callers, NULL, NULL), 0);
    chain c = await_chain(&t);
    BL_CHECK_EQ(c.n, 1);
    BL_CHECK_EQ(c.pids[0], me);

    /* Two levels: [the outer task, main]. */
    BL_CHECK_EQ(bl_task_async(&t, nested, NULL, NULL), 0);
    bl_pid outer = t.pid;
    c = await_chain(&t);
    BL_CHECK_EQ(c.n, 2);
    BL_CHECK_EQ(c.pids[0], outer);
    BL_CHECK_EQ(c.pids[1], me);

    /* The main process itself has none. */
    BL_CHECK_EQ(bl_callers(c.pids, BL_CALLERS_MAX), 0);
}

Test(task_callers, started_by_the_owner)
{
    bl_test_run(NULL, direct_main, NULL);
}

/* Says it runs, then blocks until told, so that its process info can be read meanwhile. */
static void wait_go(void *arg, bl_task_out *out)
{
    (void)out;
    bl_send(*(bl_pid *)arg, 2, NULL, 0);
    bl_msg_free(bl_test_recv_tag(1, 10000));
}

static void supervised_main(void *arg)
{
    (void)arg;
    bl_pid me = bl_self();
    bl_pid sup;
    BL_CHECK_EQ(bl_task_supervisor_start_link(&sup, NULL), 0);
    bl_task t;
    BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, report_callers, NULL), 0);
    chain c = await_chain(&t);
    BL_CHECK_EQ(c.n, 1);
    BL_CHECK_EQ(c.pids[0], me); /* the owner, not the supervisor */

    /* From outside, through process info. */
    BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, wait_go, &me), 0);
    bl_msg_free(bl_test_recv_tag(2, 10000));
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(t.pid, &info), 0);
    BL_CHECK_EQ(info.ncallers, 1);
    BL_CHECK_EQ(info.callers[0], me);
    BL_CHECK_EQ(bl_send(t.pid, 1, NULL, 0), 0);
    bl_task_result r;
    BL_CHECK_EQ(bl_task_await(&t, 10000, &r), 0);
    bl_task_result_free(&r);
    bl_reason shut = BL_REASON(BL_SHUTDOWN);
    bl_unlink(sup);
    bl_exit_pid(sup, &shut);
}

Test(task_callers, started_by_a_task_supervisor)
{
    bl_test_run(NULL, supervised_main, NULL);
}
