/*
 * Supervisor: child specs, strategies, restart rules and intensity, the
 * child management calls, shutdown, nesting.
 *
 * Test children report to the test process: their start function (which
 * runs in the supervisor) sends T_STARTED {i, pid}, so starts are seen in
 * the order the supervisor made them; a child that gets an exit signal
 * (it traps exits) sends T_STOPPED {i} before exiting with that reason.
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/gen_server.h"
#include "beamline/supervisor.h"
#include "sup_worker.h"

static bl_config g_cfg = {.quiet = true};

#define SPEC(id_, code)                                                                            \
    {                                                                                              \
        .id = (id_), .start = start_worker, .arg = ARG(code)                                       \
    }

/* ---- helpers ---- */

/* The pid which_children lists for id (0 if none or not running), and its status. */
static bl_pid child_pid(bl_pid sup, const char *id, int *status)
{
    bl_sup_child v[16];
    int n = bl_supervisor_which_children(sup, v, 16);
    BL_CHECK(n >= 0 && n <= 16);
    if (status) *status = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i].id, id) != 0) continue;
        if (status) *status = v[i].status;
        return v[i].pid;
    }
    return 0;
}

static int nchildren(bl_pid sup)
{
    return bl_supervisor_which_children(sup, NULL, 0);
}

/* Stops sup and checks its children stopped in reverse order: last..first. */
static void stop_expect(bl_pid sup, int first, int last)
{
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    for (int i = last; i >= first; i--) expect_stopped(i);
    expect_quiet();
}

/* ---- child specs ---- */

typedef struct bad_case {
    bl_child_spec spec;
    bl_sup_error_kind kind;
} bad_case;

static void specs_main(void *arg)
{
    g_test = bl_self();
    static char long_id[BL_SUP_ID_MAX + 1];
    memset(long_id, 'x', BL_SUP_ID_MAX);
    bad_case cases[] = {
        {{.id = NULL, .start = start_worker}, BL_SUP_ERR_MISSING_ID},
        {{.id = "", .start = start_worker}, BL_SUP_ERR_MISSING_ID},
        {{.id = long_id, .start = start_worker}, BL_SUP_ERR_ID_TOO_LONG},
        {{.id = "b", .start = NULL}, BL_SUP_ERR_MISSING_START},
        {{.id = "b", .start = start_worker, .restart = 3}, BL_SUP_ERR_BAD_RESTART},
        {{.id = "b", .start = start_worker, .restart = -1}, BL_SUP_ERR_BAD_RESTART},
        {{.id = "b", .start = start_worker, .shutdown = -3}, BL_SUP_ERR_BAD_SHUTDOWN},
        {{.id = "b", .start = start_worker, .type = 2}, BL_SUP_ERR_BAD_TYPE},
        {{.id = "b", .start = start_worker, .arg_len = 4}, BL_SUP_ERR_BAD_ARG},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        /* The bad spec is second: the first must not have been started. */
        bl_child_spec list[2] = {SPEC("a", 1), cases[k].spec};
        bl_sup_error err;
        bl_sup_opts o = {.error = &err};
        bl_pid sup = 123;
        BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 2, &o), -EINVAL);
        BL_CHECK_EQ(sup, 0);
        BL_CHECK_EQ(err.kind, cases[k].kind);
        BL_CHECK_EQ(err.index, 1);
        BL_CHECK(strcmp(bl_sup_error_str(err.kind), "unknown error") != 0);
        BL_CHECK_EQ(bl_child_spec_check(&cases[k].spec, true, &err), -EINVAL);
        BL_CHECK_EQ(err.kind, cases[k].kind);
    }
    /* Duplicate ids: the second one is at fault. */
    bl_child_spec dup[3] = {SPEC("a", 1), SPEC("b", 2), SPEC("a", 3)};
    bl_sup_error err;
    bl_sup_opts o = {.error = &err};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, dup, 3, &o), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_DUPLICATE_ID);
    BL_CHECK_EQ(err.index, 2);
    BL_CHECK(strcmp(err.id, "a") == 0);
    /* Bad options. */
    bl_sup_opts bad[] = {
        {.strategy = 3}, {.strategy = -1}, {.max_restarts = -2}, {.max_seconds = -1}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        bad[k].error = &err;
        BL_CHECK_EQ(bl_supervisor_start_link(&sup, dup, 1, &bad[k]), -EINVAL);
        BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_OPTION);
    }
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 1, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_start_link(NULL, dup, 1, NULL), -EINVAL);
    expect_quiet(); /* nothing was ever started */
    /* start_child rejects the same specs, on a running supervisor. */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &o), 0);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_NONE);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        BL_CHECK_EQ(bl_supervisor_start_child(sup, &cases[k].spec, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(nchildren(sup), 0);
    /* Ids given to the other calls. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, long_id), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(bl_supervisor_count_children(sup, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 1), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    /* A dead supervisor: noproc. */
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 0), -ESRCH);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "a"), -ESRCH);
}

Test(supervisor, invalid_specs_are_rejected)
{
    bl_test_run(&g_cfg, specs_main, NULL);
}

/* ---- start and stop order, start failure, ignore ---- */

static void order_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[3] = {SPEC("c1", 1), SPEC("c2", 2), SPEC("c3", 3)};
    bl_pid sup;
    bl_sup_error err;
    bl_sup_opts o = {.error = &err};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 3, &o), 0);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_NONE);
    bl_pid p1 = expect_started(1), p2 = expect_started(2), p3 = expect_started(3);
    bl_sup_child v[3];
    BL_CHECK_EQ(bl_supervisor_which_children(sup, v, 3), 3);
    BL_CHECK(strcmp(v[0].id, "c1") == 0 && v[0].pid == p1 && v[0].status == BL_CHILD_RUNNING);
    BL_CHECK(strcmp(v[1].id, "c2") == 0 && v[1].pid == p2);
    BL_CHECK(strcmp(v[2].id, "c3") == 0 && v[2].pid == p3 && v[2].type == BL_CHILD_WORKER);
    /* which_children with too small a buffer still says how many. */
    BL_CHECK_EQ(bl_supervisor_which_children(sup, v, 1), 3);
    stop_expect(sup, 1, 3);
    BL_CHECK(!bl_is_alive(p1) && !bl_is_alive(p2) && !bl_is_alive(p3));

    /* A child that fails to start: the ones before it are stopped, start fails. */
    bl_child_spec f[3] = {SPEC("c1", 1), SPEC("c2", 2 | C_FAIL), SPEC("c3", 3)};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, f, 3, &o), BL_SUP_CHILD_FAILED);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_START_FAILED);
    BL_CHECK_EQ(err.index, 1);
    BL_CHECK_EQ(err.error, -EIO);
    BL_CHECK(strcmp(err.id, "c2") == 0);
    expect_started(1);
    expect_stopped(1);
    expect_quiet(); /* c3 never started */

    /* ignore: the child stays without a pid; a temporary one is dropped. */
    bl_child_spec g[4] = {SPEC("c1", 1), SPEC("c2", 2 | C_IGNORE), SPEC("c3", 3),
                          SPEC("c4", 4 | C_IGNORE)};
    g[3].restart = BL_RESTART_TEMPORARY;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, g, 4, NULL), 0);
    expect_started(1);
    expect_started(3);
    int status;
    BL_CHECK_EQ(child_pid(sup, "c2", &status), 0);
    BL_CHECK_EQ(status, BL_CHILD_UNDEFINED);
    BL_CHECK_EQ(nchildren(sup), 3);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &k), 0);
    BL_CHECK_EQ(k.specs, 3);
    BL_CHECK_EQ(k.active, 2);
    BL_CHECK_EQ(k.workers, 3);
    BL_CHECK_EQ(k.supervisors, 0);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect_stopped(3);
    expect_stopped(1);
}

Test(supervisor, start_in_order_stop_in_reverse_failure_and_ignore)
{
    bl_test_run(&g_cfg, order_main, NULL);
}

/* ---- strategies ---- */

static void one_for_one_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[3] = {SPEC("c1", 1), SPEC("c2", 2), SPEC("c3", 3)};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 3, NULL), 0);
    bl_pid p1 = expect_started(1), p2 = expect_started(2), p3 = expect_started(3);
    bl_send(p2, T_CRASH, NULL, 0);
    bl_pid q2 = expect_started(2);
    BL_CHECK(q2 != p2 && q2 != 0);
    BL_CHECK_EQ(child_pid(sup, "c1", NULL), p1);
    BL_CHECK_EQ(child_pid(sup, "c2", NULL), q2);
    BL_CHECK_EQ(child_pid(sup, "c3", NULL), p3);
    expect_quiet();
    stop_expect(sup, 1, 3);
}

Test(supervisor, one_for_one_restarts_only_the_child)
{
    bl_test_run(&g_cfg, one_for_one_main, NULL);
}

static void one_for_all_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[3] = {SPEC("c1", 1), SPEC("c2", 2), SPEC("c3", 3)};
    bl_sup_opts o = {.strategy = BL_ONE_FOR_ALL};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 3, &o), 0);
    bl_pid p1 = expect_started(1), p2 = expect_started(2), p3 = expect_started(3);
    bl_send(p2, T_CRASH, NULL, 0);
    /* The others stop last first, then all start in order. */
    expect_stopped(3);
    expect_stopped(1);
    bl_pid q1 = expect_started(1), q2 = expect_started(2), q3 = expect_started(3);
    BL_CHECK(q1 != p1 && q2 != p2 && q3 != p3);
    BL_CHECK_EQ(child_pid(sup, "c1", NULL), q1);
    BL_CHECK_EQ(child_pid(sup, "c3", NULL), q3);
    expect_quiet();
    stop_expect(sup, 1, 3);
}

Test(supervisor, one_for_all_restarts_everyone_in_order)
{
    bl_test_run(&g_cfg, one_for_all_main, NULL);
}

static void rest_for_one_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[4] = {SPEC("c1", 1), SPEC("c2", 2), SPEC("c3", 3), SPEC("c4", 4)};
    bl_sup_opts o = {.strategy = BL_REST_FOR_ONE};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 4, &o), 0);
    bl_pid p1 = expect_started(1), p2 = expect_started(2);
    expect_started(3);
    expect_started(4);
    bl_send(p2, T_CRASH, NULL, 0);
    expect_stopped(4);
    expect_stopped(3);
    bl_pid q2 = expect_started(2);
    expect_started(3);
    expect_started(4);
    BL_CHECK(q2 != p2);
    BL_CHECK_EQ(child_pid(sup, "c1", NULL), p1);
    expect_quiet();
    /* The last child crashing restarts only itself. */
    bl_send(child_pid(sup, "c4", NULL), T_CRASH, NULL, 0);
    expect_started(4);
    expect_quiet();
    stop_expect(sup, 1, 4);
}

Test(supervisor, rest_for_one_restarts_the_later_children)
{
    bl_test_run(&g_cfg, rest_for_one_main, NULL);
}

/* ---- restart intensity ---- */

static void intensity_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true); /* the supervisor's exit reaches us through the link */
    bl_child_spec c[2] = {SPEC("c1", 1), SPEC("c2", 2)};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 2, NULL), 0);
    expect_started(1);
    bl_pid p = expect_started(2);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
    /* Three restarts within 5 s are allowed (the default), the fourth is not. */
    for (int k = 0; k < 3; k++) {
        bl_send(p, T_CRASH, NULL, 0);
        p = expect_started(2);
    }
    bl_send(p, T_CRASH, NULL, 0);
    expect_stopped(1); /* the supervisor shuts the others down */
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 5000);
    BL_CHECK(m && m->from == sup);
    bl_msg_free(m);

    /* BL_SUP_NO_RESTARTS: the first exit is one too many. */
    bl_sup_opts o = {.max_restarts = BL_SUP_NO_RESTARTS};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 1, &o), 0);
    p = expect_started(1);
    BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
    bl_send(p, T_CRASH, NULL, 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();

    /* Restarts older than max_seconds no longer count. */
    o = (bl_sup_opts){.max_restarts = 1, .max_seconds = 1};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 1, &o), 0);
    p = expect_started(1);
    BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
    bl_send(p, T_CRASH, NULL, 0);
    p = expect_started(1);
    bl_sleep(1100); /* the window is what is tested: let the first restart age */
    bl_send(p, T_CRASH, NULL, 0);
    p = expect_started(1);
    bl_send(p, T_CRASH, NULL, 0); /* two within a second: too many */
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();
}

Test(supervisor, intensity_exceeded_shuts_down)
{
    bl_test_run(&g_cfg, intensity_main, NULL);
}

/* A supervisor in a supervisor: the inner one gives up, the outer one restarts it. */
static const bl_child_spec inner_children[] = {SPEC("w2", 2)};
static const bl_sup_init inner = {
    .children = inner_children, .nchildren = 1, .opts = {.max_restarts = 1}};

static void nested_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[3] = {SPEC("w1", 1),
                          {.id = "inner",
                           .start = bl_supervisor_start_fn,
                           .arg = (void *)&inner,
                           .type = BL_CHILD_SUPERVISOR},
                          SPEC("w3", 3)};
    bl_pid top;
    BL_CHECK_EQ(bl_supervisor_start_link(&top, c, 3, NULL), 0);
    bl_pid w1 = expect_started(1), w2 = expect_started(2);
    expect_started(3);
    bl_pid in = child_pid(top, "inner", NULL);
    BL_CHECK(in != 0 && bl_is_alive(in));
    bl_sup_counts k;
    BL_CHECK_EQ(bl_supervisor_count_children(top, &k), 0);
    BL_CHECK(k.specs == 3 && k.active == 3 && k.supervisors == 1 && k.workers == 2);
    /* One restart is within the inner supervisor's intensity. */
    bl_send(w2, T_CRASH, NULL, 0);
    w2 = expect_started(2);
    BL_CHECK_EQ(child_pid(top, "inner", NULL), in);
    /* The second is not: it exits with shutdown, and the top restarts it. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(in, &ref), 0);
    bl_send(w2, T_CRASH, NULL, 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_started(2); /* started by the new inner supervisor */
    bl_pid in2 = child_pid(top, "inner", NULL);
    BL_CHECK(in2 != 0 && in2 != in);
    BL_CHECK_EQ(child_pid(top, "w1", NULL), w1);
    expect_quiet();
    /* Stopping the top stops the tree from the last child back. */
    BL_CHECK_EQ(bl_supervisor_stop(top, NULL, 10000), 0);
    expect_stopped(3);
    expect_stopped(2);
    expect_stopped(1);
    BL_CHECK(!bl_is_alive(in2));
}

Test(supervisor, nested_supervisor_takes_over)
{
    bl_test_run(&g_cfg, nested_main, NULL);
}

/* ---- restart rules ---- */

static void rules_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[4] = {SPEC("perm", 1), SPEC("trans", 2), SPEC("temp", 3), SPEC("temp2", 4)};
    c[1].restart = BL_RESTART_TRANSIENT;
    c[2].restart = BL_RESTART_TEMPORARY;
    c[3].restart = BL_RESTART_TEMPORARY;
    bl_pid sup;
    bl_sup_opts o = {.max_restarts = 100};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 4, &o), 0);
    bl_pid perm = expect_started(1), trans = expect_started(2), temp = expect_started(3);
    bl_pid temp2 = expect_started(4);

    /* permanent: restarted even after a normal exit. */
    bl_send(perm, T_NORMAL, NULL, 0);
    perm = expect_started(1);
    bl_send(perm, T_SHUTDOWN, NULL, 0);
    perm = expect_started(1);

    /* transient: not after normal, shutdown or {shutdown, _}; yes after a crash. */
    int status;
    send_wait_exit(trans, T_NORMAL);
    BL_CHECK_EQ(child_pid(sup, "trans", &status), 0);
    BL_CHECK_EQ(status, BL_CHILD_UNDEFINED);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "trans", &trans), 0);
    BL_CHECK_EQ(expect_started(2), trans);
    send_wait_exit(trans, T_SHUTDOWN);
    BL_CHECK_EQ(child_pid(sup, "trans", &status), 0);
    BL_CHECK_EQ(status, BL_CHILD_UNDEFINED);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "trans", &trans), 0);
    expect_started(2);
    bl_send(trans, T_CRASH, NULL, 0);
    bl_pid t2 = expect_started(2);
    BL_CHECK(t2 != trans);
    BL_CHECK_EQ(child_pid(sup, "trans", NULL), t2);

    /* temporary: never restarted, and forgotten, after a crash or a normal exit. */
    send_wait_exit(temp, T_CRASH);
    send_wait_exit(temp2, T_NORMAL);
    BL_CHECK_EQ(child_pid(sup, "temp", &status), 0);
    BL_CHECK_EQ(status, -1);
    BL_CHECK_EQ(child_pid(sup, "temp2", &status), 0);
    BL_CHECK_EQ(status, -1);
    BL_CHECK_EQ(nchildren(sup), 2);
    expect_quiet();

    /* A temporary child terminated is forgotten too. */
    bl_child_spec t = SPEC("temp3", 5);
    t.restart = BL_RESTART_TEMPORARY;
    bl_pid p;
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &t, &p), 0);
    BL_CHECK_EQ(expect_started(5), p);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "temp3"), 0);
    expect_stopped(5);
    BL_CHECK_EQ(nchildren(sup), 2);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "temp3", NULL), BL_SUP_NOT_FOUND);
    stop_expect(sup, 1, 2);
}

Test(supervisor, permanent_transient_temporary)
{
    bl_test_run(&g_cfg, rules_main, NULL);
}

/* ---- child management calls ---- */

static void calls_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup, p;
    bl_sup_opts o = {.max_restarts = 1000000}; /* a failing restart is retried until it works */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &o), 0);
    /* start_child, then the same id again. */
    bl_child_spec a = SPEC("a", 1);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &a, &p), 0);
    BL_CHECK_EQ(expect_started(1), p);
    bl_pid q = 0;
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &a, &q), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(q, p);
    /* restart_child and delete_child on a running child. */
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "a", NULL), BL_SUP_RUNNING);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, "a"), BL_SUP_RUNNING);
    /* terminate_child: the spec stays, not running; the id is still taken. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "a"), 0);
    expect_stopped(1);
    BL_CHECK(!bl_is_alive(p));
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &a, &q), BL_SUP_ALREADY_PRESENT);
    BL_CHECK_EQ(q, 0);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "a"), 0); /* again: nothing to do */
    /* A terminated child can be restarted. */
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "a", &q), 0);
    BL_CHECK(q != 0 && q != p);
    BL_CHECK_EQ(expect_started(1), q);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "a"), 0);
    expect_stopped(1);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, "a"), 0);
    BL_CHECK_EQ(nchildren(sup), 0);
    /* not_found everywhere. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "a"), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "a", NULL), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, "a"), BL_SUP_NOT_FOUND);
    /* A child whose start fails is not kept; one that ignores is. */
    bl_child_spec f = SPEC("f", 2 | C_FAIL), g = SPEC("g", 3 | C_IGNORE);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &f, &q), -EIO);
    BL_CHECK_EQ(nchildren(sup), 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &g, &q), BL_GS_IGNORED);
    BL_CHECK_EQ(q, 0);
    BL_CHECK_EQ(nchildren(sup), 1);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "g", &q), BL_GS_IGNORED);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, "g"), 0);
    /* A supervisor child counts as one; an arg copied with arg_len. */
    bl_child_spec s = {.id = "sub",
                       .start = bl_supervisor_start_fn,
                       .arg = &(bl_sup_init){.children = NULL},
                       .arg_len = sizeof(bl_sup_init),
                       .type = BL_CHILD_SUPERVISOR};
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &s, &q), 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &a, &p), 0);
    expect_started(1);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == 2 && k.active == 2 && k.supervisors == 1 && k.workers == 1);
    bl_sup_child v[2];
    BL_CHECK_EQ(bl_supervisor_which_children(sup, v, 2), 2);
    BL_CHECK(strcmp(v[0].id, "sub") == 0 && v[0].type == BL_CHILD_SUPERVISOR && v[0].pid == q);
    BL_CHECK(strcmp(v[1].id, "a") == 0 && v[1].restart == BL_RESTART_PERMANENT);

    /* restarting: a restart that fails is retried; meanwhile the calls say so. */
    bl_child_spec fl = SPEC("flaky", 4 | C_FLAKY);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &fl, &p), 0);
    expect_started(4);
    atomic_store(&g_flaky, 1);
    send_wait_exit(p, T_CRASH);
    int status;
    BL_CHECK_EQ(child_pid(sup, "flaky", &status), 0);
    BL_CHECK_EQ(status, BL_CHILD_RESTARTING);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "flaky", NULL), BL_SUP_RESTARTING);
    BL_CHECK_EQ(bl_supervisor_delete_child(sup, "flaky"), BL_SUP_RESTARTING);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &fl, NULL), BL_SUP_ALREADY_PRESENT);
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &k), 0);
    BL_CHECK_EQ(k.active, 2);
    /* Our calls went between two tries; once starts work again, a try succeeds. */
    atomic_store(&g_flaky, 0);
    p = expect_started(4);
    BL_CHECK_EQ(child_pid(sup, "flaky", &status), p);
    BL_CHECK_EQ(status, BL_CHILD_RUNNING);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect_stopped(4);
    expect_stopped(1);
}

Test(supervisor, child_management_calls)
{
    bl_test_run(&g_cfg, calls_main, NULL);
}

/* ---- shutdown ---- */

static void shutdown_main(void *arg)
{
    g_test = bl_self();
    bl_child_spec c[4] = {SPEC("brutal", 1), SPEC("stuck", 2 | C_STUCK), SPEC("slow", 3 | C_SLOW),
                          SPEC("notrap", 4 | C_NOTRAP)};
    c[0].shutdown = BL_SHUTDOWN_BRUTAL_KILL;
    c[1].shutdown = 100;
    c[2].shutdown = BL_SHUTDOWN_INFINITY;
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 4, NULL), 0);
    bl_pid p[4];
    bl_ref ref[4];
    for (int i = 0; i < 4; i++) {
        p[i] = expect_started(i + 1);
        BL_CHECK_EQ(bl_monitor(p[i], &ref[i]), 0);
    }
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    /* notrap dies from the shutdown signal without a word. */
    BL_CHECK_EQ(wait_down(ref[3], NULL), BL_SHUTDOWN);
    /* slow takes 200 ms, and infinity waits for it. */
    expect_stopped(3);
    BL_CHECK_EQ(wait_down(ref[2], NULL), BL_SHUTDOWN);
    /* stuck never stops: killed at its 100 ms. */
    expect_stopped(2);
    BL_CHECK_EQ(wait_down(ref[1], NULL), BL_KILLED);
    /* brutal is killed without an exit signal it could see. */
    BL_CHECK_EQ(wait_down(ref[0], NULL), BL_KILLED);
    expect_quiet();

    /* The default shutdown waits (5000 ms) for a slow worker: no kill. */
    bl_child_spec d = SPEC("slow", 5 | C_SLOW);
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, &d, 1, NULL), 0);
    bl_pid q = expect_started(5);
    bl_ref qr;
    BL_CHECK_EQ(bl_monitor(q, &qr), 0);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "slow"), 0);
    expect_stopped(5);
    BL_CHECK_EQ(wait_down(qr, NULL), BL_SHUTDOWN);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
}

Test(supervisor, shutdown_brutal_timeout_infinity)
{
    bl_test_run(&g_cfg, shutdown_main, NULL);
}

/* An exit signal from the parent: children stop last first, the supervisor exits with it. */
static void parent_exit_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true);
    bl_child_spec c[3] = {SPEC("c1", 1), SPEC("c2", 2 | C_GENSERV), SPEC("c3", 3)};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, 3, NULL), 0);
    expect_started(1);
    bl_pid gs = expect_started(2);
    expect_started(3);
    /* The gen_server child is restarted like any other. */
    bl_gen_server_cast(gs, T_CRASH, NULL, 0);
    expect_stopped(2); /* its terminate ran */
    BL_CHECK(expect_started(2) != gs);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
    bl_reason why = {.kind = BL_CUSTOM, .code = 77};
    BL_CHECK_EQ(bl_exit_pid(sup, &why), 0);
    expect_stopped(3);
    expect_stopped(2);
    expect_stopped(1);
    int code = 0;
    BL_CHECK_EQ(wait_down(ref, &code), BL_CUSTOM);
    BL_CHECK_EQ(code, 77);
    expect_quiet();
}

Test(supervisor, parent_exit_stops_children_in_reverse)
{
    bl_test_run(&g_cfg, parent_exit_main, NULL);
}

/* A supervisor registered under a name; a second one with the name gets the first. */
static void named_main(void *arg)
{
    g_test = bl_self();
    bl_name name = BL_NAME_LOCAL("the_sup");
    bl_sup_opts o = {.name = &name};
    bl_pid sup, other = 0;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &o), 0);
    BL_CHECK_EQ(bl_whereis("the_sup"), sup);
    bl_child_spec a = SPEC("a", 1);
    BL_CHECK_EQ(bl_supervisor_start_link(&other, &a, 1, &o), -EEXIST);
    BL_CHECK_EQ(other, sup);
    expect_quiet(); /* the second supervisor started nothing */
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    /* Killed: its children die through their links (and its state is released). */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, &a, 1, NULL), 0);
    bl_pid p = expect_started(1);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    bl_trap_exit(true);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(sup, &kill);
    expect_stopped(1); /* it traps: it saw the supervisor's exit, killed */
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
}

Test(supervisor, named_and_killed)
{
    bl_test_run(&g_cfg, named_main, NULL);
}
