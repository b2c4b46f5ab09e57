/*
 * Supervisor: auto_shutdown and significant children (OTP 24): which specs
 * are valid, any_significant and all_significant, and the exits that do
 * not count (abnormal exits of transient children, which are restarted,
 * and exits the supervisor itself causes).
 *
 * Test children are plain processes that trap exits; their start function
 * (run in the supervisor) sends T_STARTED {i, pid}; on an exit signal a
 * child sends T_STOPPED {i} and exits with that reason.
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/supervisor.h"
#include "sup_worker.h"

static bl_config g_cfg = {.quiet = true};

/* A spec: restart r, significant or not. */
static bl_child_spec spec(const char *id, int i, bl_restart r, bool significant)
{
    return (bl_child_spec){
        .id = id, .start = start_worker, .arg = ARG(i), .restart = r, .significant = significant};
}

/* Starts a supervisor of n specs with auto_shutdown a; monitors it in *ref. */
static bl_pid start_sup(const bl_child_spec *c, size_t n, bl_auto_shutdown a, bl_sup_strategy st,
                        bl_ref *ref)
{
    bl_pid sup = 0;
    bl_sup_opts o = {.auto_shutdown = a, .strategy = st, .max_restarts = 10};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, c, n, &o), 0);
    BL_CHECK_EQ(bl_monitor(sup, ref), 0);
    return sup;
}

/* ---- which specs are valid ---- */

static void valid_main(void *arg)
{
    g_test = bl_self();
    bl_sup_error err;
    bl_child_spec perm = spec("p", 1, BL_RESTART_PERMANENT, true);
    BL_CHECK_EQ(bl_child_spec_check(&perm, true, &err), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_SIGNIFICANT);
    bl_child_spec trans = spec("t", 2, BL_RESTART_TRANSIENT, true);
    bl_child_spec temp = spec("m", 3, BL_RESTART_TEMPORARY, true);
    BL_CHECK_EQ(bl_child_spec_check(&trans, true, &err), 0);
    BL_CHECK_EQ(bl_child_spec_check(&temp, true, &err), 0);
    /* auto_shutdown never refuses significant children, at start and in start_child. */
    bl_child_spec list[2] = {spec("a", 4, BL_RESTART_PERMANENT, false), trans};
    bl_sup_opts o = {.error = &err};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 2, &o), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_SIGNIFICANT);
    BL_CHECK_EQ(err.index, 1);
    o.auto_shutdown = BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT;
    list[1] = perm;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 2, &o), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_SIGNIFICANT);
    o.auto_shutdown = 3;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 1, &o), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_OPTION);
    expect_quiet();
    o.auto_shutdown = BL_AUTO_SHUTDOWN_NEVER;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &o), 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &temp, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &perm, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 0), 0);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    /* Under any_significant, start_child takes them. */
    o.auto_shutdown = BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &o), 0);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &temp, NULL), 0);
    expect(T_STARTED, 3);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect(T_STOPPED, 3);
    expect_quiet();
}

Test(supervisor_auto_shutdown, significant_specs_validity)
{
    bl_test_run(&g_cfg, valid_main, NULL);
}

/* ---- any_significant ---- */

static void any_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true); /* the supervisor's shutdown reaches us through the link */
    bl_child_spec c[3] = {spec("a", 1, BL_RESTART_PERMANENT, false),
                          spec("t", 2, BL_RESTART_TRANSIENT, true),
                          spec("n", 3, BL_RESTART_TRANSIENT, false)};
    bl_ref ref;
    bl_pid sup = start_sup(c, 3, BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT, BL_ONE_FOR_ONE, &ref);
    expect(T_STARTED, 1);
    bl_pid t = expect(T_STARTED, 2), n = expect(T_STARTED, 3);
    /* A non-significant transient child exiting normally: nothing happens. */
    send_wait_exit(n, T_NORMAL);
    /* The significant transient child crashes: restarted, no shutdown. */
    bl_send(t, T_CRASH, NULL, 0);
    t = expect(T_STARTED, 2);
    /* The supervisor terminates it: no shutdown either. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "t"), 0);
    expect(T_STOPPED, 2);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "t", &t), 0);
    expect(T_STARTED, 2);
    BL_CHECK(bl_is_alive(sup));
    expect_quiet();
    /* It exits normally by itself: the supervisor shuts down with reason shutdown. */
    bl_send(t, T_NORMAL, NULL, 0);
    expect(T_STOPPED, 1);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();

    /* A significant temporary child: any exit, a crash included. */
    c[1] = spec("m", 4, BL_RESTART_TEMPORARY, true);
    sup = start_sup(c, 2, BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT, BL_ONE_FOR_ONE, &ref);
    expect(T_STARTED, 1);
    bl_pid m = expect(T_STARTED, 4);
    bl_send(m, T_CRASH, NULL, 0);
    expect(T_STOPPED, 1);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();
}

Test(supervisor_auto_shutdown, any_significant)
{
    bl_test_run(&g_cfg, any_main, NULL);
}

/* ---- all_significant ---- */

static void all_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true); /* the supervisor's shutdown reaches us through the link */
    bl_child_spec c[4] = {
        spec("a", 1, BL_RESTART_PERMANENT, false), spec("s1", 2, BL_RESTART_TEMPORARY, true),
        spec("s2", 3, BL_RESTART_TRANSIENT, true), spec("s3", 4, BL_RESTART_TEMPORARY, true)};
    bl_ref ref;
    bl_pid sup = start_sup(c, 4, BL_AUTO_SHUTDOWN_ALL_SIGNIFICANT, BL_ONE_FOR_ONE, &ref);
    expect(T_STARTED, 1);
    bl_pid s1 = expect(T_STARTED, 2), s2 = expect(T_STARTED, 3);
    expect(T_STARTED, 4);
    /* One significant child exits: others still run. */
    send_wait_exit(s1, T_CRASH);
    /* One is terminated by the supervisor: does not count, and no longer runs. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "s3"), 0);
    expect(T_STOPPED, 4);
    BL_CHECK(bl_is_alive(sup));
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 0), 2); /* a, s2 */
    expect_quiet();
    /* The last running one exits normally: shutdown. */
    bl_send(s2, T_NORMAL, NULL, 0);
    expect(T_STOPPED, 1);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();
}

Test(supervisor_auto_shutdown, all_significant)
{
    bl_test_run(&g_cfg, all_main, NULL);
}

/* ---- shutdowns the supervisor makes do not count ---- */

static void strategy_main(void *arg)
{
    g_test = bl_self();
    /* one_for_all: a sibling's crash shuts the significant child down and restarts it. */
    bl_child_spec c[2] = {spec("p", 1, BL_RESTART_PERMANENT, false),
                          spec("t", 2, BL_RESTART_TRANSIENT, true)};
    bl_ref ref;
    bl_pid sup = start_sup(c, 2, BL_AUTO_SHUTDOWN_ANY_SIGNIFICANT, BL_ONE_FOR_ALL, &ref);
    bl_pid p = expect(T_STARTED, 1);
    expect(T_STARTED, 2);
    bl_send(p, T_CRASH, NULL, 0);
    expect(T_STOPPED, 2);
    expect(T_STARTED, 1);
    expect(T_STARTED, 2);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &k), 0);
    BL_CHECK_EQ(k.active, 2);
    /* Its own stop is a plain stop. */
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 1);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    expect_quiet();
}

Test(supervisor_auto_shutdown, shutdowns_by_the_supervisor_do_not_count)
{
    bl_test_run(&g_cfg, strategy_main, NULL);
}
