/*
 * Supervised tasks beyond the defaults: the child spec of a task for any
 * supervisor (restart temporary by default, as Elixir's `use Task`),
 * Task.Supervisor's restart (permanent included, with Elixir's meaning) and
 * shutdown options (brutal_kill, a timeout, the default), honoured by
 * terminate_child and by the supervisor's stop.
 */
#include <errno.h>

#include "bl_test.h"
#include "beamline/task_supervisor.h"

enum { T_RAN = 1, T_SAW_EXIT, T_GO };

static bl_config g_cfg = {.quiet = true};
static _Atomic int g_runs;

/* Tells the test it ran (with its run number), then finishes normally. */
static void quick(void *arg, bl_task_out *out)
{
    int n = atomic_fetch_add(&g_runs, 1) + 1;
    bl_send(*(bl_pid *)arg, T_RAN, &n, sizeof n);
}

/* Crashes on its first run, finishes normally on the next ones. */
static void crash_once(void *arg, bl_task_out *out)
{
    int n = atomic_fetch_add(&g_runs, 1) + 1;
    bl_send(*(bl_pid *)arg, T_RAN, &n, sizeof n);
    if (n == 1) bl_exit(7);
}

/* Finishes normally on its first two runs, then waits to be stopped. */
static void twice_then_wait(void *arg, bl_task_out *out)
{
    int n = atomic_fetch_add(&g_runs, 1) + 1;
    bl_send(*(bl_pid *)arg, T_RAN, &n, sizeof n);
    if (n <= 2) return;
    bl_msg_free(bl_test_recv_tag(T_GO, BL_INFINITY));
}

/*
 * Says it runs, traps exits and says when it sees one, but does not exit:
 * only a kill ends it (how a shutdown timeout shows).
 */
static void stubborn(void *arg, bl_task_out *out)
{
    bl_trap_exit(true);
    bl_pid test = *(bl_pid *)arg;
    bl_send(test, T_RAN, NULL, 0);
    for (;;) {
        bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, BL_INFINITY);
        if (!m) return;
        bl_msg_free(m);
        bl_send(test, T_SAW_EXIT, NULL, 0);
    }
}

/* Traps exits and exits with the reason of the first exit signal. */
static void polite(void *arg, bl_task_out *out)
{
    bl_trap_exit(true);
    bl_pid test = *(bl_pid *)arg;
    bl_send(test, T_RAN, NULL, 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, BL_INFINITY);
    bl_reason r = BL_REASON(BL_NORMAL);
    if (m) bl_msg_reason(m, &r);
    bl_reason copy = {.kind = r.kind, .code = r.code};
    bl_msg_free(m);
    bl_send(test, T_SAW_EXIT, NULL, 0);
    bl_exit_reason(&copy);
}

static int ran(void)
{
    bl_msg *m = bl_test_recv_tag(T_RAN, 5000);
    BL_CHECK(m != NULL);
    int n = -1;
    if (m && m->len == sizeof n) memcpy(&n, m->data, sizeof n);
    bl_msg_free(m);
    return n;
}

static int wait_down(bl_ref ref)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    bl_msg_free(m);
    return r.kind;
}

/* ---- bl_task_child_spec under a Supervisor ---- */

static void spec_main(void *arg)
{
    bl_pid me = bl_self(), sup, p;
    atomic_store(&g_runs, 0);
    bl_task_child tc = {quick, &me};
    bl_child_spec s = bl_task_child_spec("job", &tc);
    BL_CHECK_EQ(s.restart, BL_RESTART_TEMPORARY);
    BL_CHECK_EQ(s.shutdown, BL_SHUTDOWN_DEFAULT);
    BL_CHECK_EQ(s.type, BL_CHILD_WORKER);
    BL_CHECK(strcmp(s.id, "job") == 0);
    BL_CHECK_EQ(bl_child_spec_check(&s, true, NULL), 0);
    /* When done it is forgotten (temporary), not restarted. */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &s, &p), 0);
    BL_CHECK_EQ(ran(), 1);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK(wait_down(ref) >= 0); /* links are signalled first: the supervisor has the EXIT */
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 0), 0);
    BL_CHECK(bl_test_recv_tag(T_RAN, 0) == NULL);
    /* Elixir's `use Task, restart: :transient`: a crash restarts it, from the spec's copy. */
    bl_task_child tc2 = {crash_once, &me};
    bl_child_spec t = bl_task_child_spec("flaky", &tc2);
    t.restart = BL_RESTART_TRANSIENT;
    atomic_store(&g_runs, 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &t, &p), 0);
    tc2.fn = NULL;
    BL_CHECK_EQ(ran(), 1);
    BL_CHECK_EQ(ran(), 2);
    /* A spec without a function is refused. */
    bl_task_child none = {NULL, NULL};
    bl_child_spec bad = bl_task_child_spec("bad", &none);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &bad, NULL), -EINVAL);
    bad = bl_task_child_spec("bad", NULL);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &bad, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
}

Test(task_supervisor_opts, task_child_spec_is_temporary)
{
    bl_test_run(&g_cfg, spec_main, NULL);
}

/* ---- restart ---- */

static void restart_main(void *arg)
{
    bl_pid me = bl_self(), sup, p;
    bl_task_sup_opts so = {.max_restarts = 10};
    BL_CHECK_EQ(bl_task_supervisor_start_link(&sup, &so), 0);
    /* permanent: restarted after normal exits, as Elixir's :permanent. */
    atomic_store(&g_runs, 0);
    bl_task_child_opts o = {.restart = BL_TASK_RESTART_PERMANENT};
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, twice_then_wait, &me, &o, &p), 0);
    BL_CHECK_EQ(ran(), 1);
    BL_CHECK_EQ(ran(), 2);
    BL_CHECK_EQ(ran(), 3);
    bl_sup_child v[2];
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, v, 2), 1);
    BL_CHECK_EQ(v[0].restart, BL_RESTART_PERMANENT);
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, v[0].pid), 0);
    /* The same through the bl_restart form. */
    atomic_store(&g_runs, 0);
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, twice_then_wait, &me, BL_RESTART_PERMANENT, &p),
                0);
    BL_CHECK_EQ(ran(), 1);
    BL_CHECK_EQ(ran(), 2);
    BL_CHECK_EQ(ran(), 3);
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, v, 2), 1);
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, v[0].pid), 0);
    /* The default (NULL or zeroed opts) is temporary: done is done. */
    atomic_store(&g_runs, 0);
    bl_task_child_opts zero = {0};
    for (int i = 0; i < 2; i++) {
        BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, quick, &me, i ? &zero : NULL, &p), 0);
        BL_CHECK_EQ(ran(), 1 + i);
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(p, &ref), 0);
        BL_CHECK(wait_down(ref) >= 0); /* the supervisor has its EXIT */
        BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, NULL, 0), 0);
    }
    /* transient: a crash restarts it. */
    atomic_store(&g_runs, 0);
    o.restart = BL_TASK_RESTART_TRANSIENT;
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, crash_once, &me, &o, &p), 0);
    BL_CHECK_EQ(ran(), 1);
    BL_CHECK_EQ(ran(), 2);
    /* Bad options. */
    o = (bl_task_child_opts){.restart = 3};
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, quick, &me, &o, &p), -EINVAL);
    o = (bl_task_child_opts){.shutdown = -3};
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, quick, &me, &o, &p), -EINVAL);
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, NULL, &me, NULL, &p), -EINVAL);
    bl_task t;
    o = (bl_task_child_opts){.restart = BL_TASK_RESTART_TRANSIENT};
    BL_CHECK_EQ(bl_task_supervisor_async_opts(sup, &t, quick, &me, &o), -EINVAL);
    o = (bl_task_child_opts){.shutdown = -3};
    BL_CHECK_EQ(bl_task_supervisor_async_nolink_opts(sup, &t, quick, &me, &o), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
}

Test(task_supervisor_opts, restart_permanent_transient_temporary)
{
    bl_test_run(&g_cfg, restart_main, NULL);
}

/* ---- shutdown ---- */

static void shutdown_main(void *arg)
{
    bl_pid me = bl_self(), sup, p;
    BL_CHECK_EQ(bl_task_supervisor_start_link(&sup, NULL), 0);
    bl_ref ref;
    /* brutal_kill: killed at once, it never sees an exit signal. */
    bl_task_child_opts o = {.shutdown = BL_SHUTDOWN_BRUTAL_KILL};
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, stubborn, &me, &o, &p), 0);
    bl_msg_free(bl_test_recv_tag(T_RAN, 5000));
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, p), 0);
    BL_CHECK_EQ(wait_down(ref), BL_KILLED);
    BL_CHECK(bl_test_recv_tag(T_SAW_EXIT, 0) == NULL);
    /* A timeout: it sees the exit signal, then is killed when the time is up. */
    o.shutdown = 50;
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, stubborn, &me, &o, &p), 0);
    bl_msg_free(bl_test_recv_tag(T_RAN, 5000));
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    int64_t t0 = bl_test_ms();
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, p), 0);
    BL_CHECK(bl_test_ms() - t0 >= 45);
    BL_CHECK_EQ(wait_down(ref), BL_KILLED);
    bl_msg *m = bl_test_recv_tag(T_SAW_EXIT, 0);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    /* The default: time to exit with the shutdown reason. */
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, polite, &me, NULL, &p), 0);
    bl_msg_free(bl_test_recv_tag(T_RAN, 5000));
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, p), 0);
    BL_CHECK_EQ(wait_down(ref), BL_SHUTDOWN);
    bl_msg_free(bl_test_recv_tag(T_SAW_EXIT, 0));
    /* async_nolink with brutal_kill: the supervisor's stop kills it; await sees the kill. */
    bl_task t;
    o.shutdown = BL_SHUTDOWN_BRUTAL_KILL;
    BL_CHECK_EQ(bl_task_supervisor_async_nolink_opts(sup, &t, stubborn, &me, &o), 0);
    bl_msg_free(bl_test_recv_tag(T_RAN, 5000));
    /* And a task with a 50 ms shutdown, stopped by the supervisor's stop too. */
    o.shutdown = 50;
    BL_CHECK_EQ(bl_task_supervisor_start_child_opts(sup, stubborn, &me, &o, &p), 0);
    bl_msg_free(bl_test_recv_tag(T_RAN, 5000));
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    bl_task_result r = {0};
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK_EQ(r.reason.kind, BL_KILLED);
    bl_task_result_free(&r);
    BL_CHECK_EQ(wait_down(ref), BL_KILLED);
    m = bl_test_recv_tag(T_SAW_EXIT, 0); /* only the 50 ms one saw it */
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK(bl_test_recv_tag(T_SAW_EXIT, 0) == NULL);
}

Test(task_supervisor_opts, shutdown_brutal_kill_timeout_default)
{
    bl_test_run(&g_cfg, shutdown_main, NULL);
}
