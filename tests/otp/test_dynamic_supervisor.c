/*
 * DynamicSupervisor: start_child / terminate_child / which_children /
 * count_children, max_children, extra_arguments, restart rules and
 * intensity, and the concurrent shutdown of all children.
 *
 * As in test_supervisor.c, each child's start function (run in the
 * supervisor) waits for the child to be initialised and sends T_STARTED
 * {i, pid} to the test process; a child that gets an exit signal sends
 * T_STOPPED {i} before exiting with that reason.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "bl_test.h"
#include "beamline/dynamic_supervisor.h"
#include "sup_worker.h"

static bl_config g_cfg = {.quiet = true};
static int g_extra; /* its address is the extra argument */

/* With extra_arguments: arg is a bl_dynsup_args whose arg is a copied int. */
static int start_extra(void *arg, bl_pid *pid)
{
    const bl_dynsup_args *a = arg;
    if (a->extra != &g_extra) return -EBADE;
    return start_worker(ARG(*(const int *)a->arg), pid);
}

#define SPEC(code)                                                                                 \
    {                                                                                              \
        .start = start_worker, .arg = ARG(code)                                                    \
    }

static size_t count_specs(bl_pid sup)
{
    bl_sup_counts k = {0};
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), 0);
    return k.specs;
}

/* ---- the calls ---- */

static void calls_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup, p, q;
    bl_name name = BL_NAME_LOCAL("dyn");
    bl_dynsup_opts o = {.max_children = 2, .name = &name};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    BL_CHECK_EQ(bl_whereis("dyn"), sup);
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, NULL, 0), 0);
    /* Ids are ignored: none, or the same one twice, is fine. */
    bl_child_spec a = SPEC(1), b = SPEC(2);
    b.id = "same";
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &a, &p), 0);
    BL_CHECK_EQ(expect_started(1), p);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &b, &q), 0);
    BL_CHECK_EQ(expect_started(2), q);
    /* max_children. */
    bl_pid r = 5;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &a, &r), BL_SUP_MAX_CHILDREN);
    BL_CHECK_EQ(r, 0);
    expect_quiet();
    bl_sup_child v[4];
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, v, 4), 2);
    bool seen_p = false, seen_q = false;
    for (int i = 0; i < 2; i++) {
        BL_CHECK_EQ(v[i].id[0], 0);
        BL_CHECK_EQ(v[i].status, BL_CHILD_RUNNING);
        BL_CHECK_EQ(v[i].type, BL_CHILD_WORKER);
        seen_p |= v[i].pid == p;
        seen_q |= v[i].pid == q;
    }
    BL_CHECK(seen_p && seen_q);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == 2 && k.active == 2 && k.workers == 2 && k.supervisors == 0);
    /* terminate_child by pid; then it is unknown. */
    BL_CHECK_EQ(bl_dynamic_supervisor_terminate_child(sup, p), 0);
    expect_stopped(1);
    BL_CHECK(!bl_is_alive(p));
    BL_CHECK_EQ(bl_dynamic_supervisor_terminate_child(sup, p), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(bl_dynamic_supervisor_terminate_child(sup, bl_self()), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(count_specs(sup), 1);
    /* ignore and errors: nothing kept. */
    bl_child_spec ig = SPEC(3 | C_IGNORE), fail = SPEC(4 | C_FAIL), bad = {.start = NULL};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &ig, &r), BL_GS_IGNORED);
    BL_CHECK_EQ(r, 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &fail, &r), -EIO);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &bad, &r), -EINVAL);
    bl_child_spec badr = SPEC(5);
    badr.restart = 9;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &badr, &r), -EINVAL);
    BL_CHECK_EQ(count_specs(sup), 1);
    /* A supervisor child (a dynamic supervisor in a dynamic supervisor). */
    bl_child_spec s = {.start = bl_dynamic_supervisor_start_fn, .type = BL_CHILD_SUPERVISOR};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &s, &r), 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == 2 && k.supervisors == 1 && k.workers == 1);
    /* Bad options. */
    bl_dynsup_opts bo[] = {{.strategy = BL_ONE_FOR_ALL},
                           {.strategy = BL_REST_FOR_ONE},
                           {.max_restarts = -2},
                           {.max_seconds = -1}};
    for (size_t i = 0; i < sizeof bo / sizeof *bo; i++)
        BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&r, &bo[i]), -EINVAL);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&r, &o), -EEXIST); /* the name */
    BL_CHECK_EQ(r, sup);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect_stopped(2);
    expect_quiet();
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), -ESRCH);
}

Test(dynamic_supervisor, calls_and_max_children)
{
    bl_test_run(&g_cfg, calls_main, NULL);
}

/* ---- extra_arguments ---- */

static void extra_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup, p;
    bl_dynsup_opts o = {.extra_arguments = &g_extra};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    /* The arg is copied (arg_len), so a local is fine; restarts get the same pair. */
    int code = 7;
    bl_child_spec c = {.start = start_extra, .arg = &code, .arg_len = sizeof code};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &c, &p), 0);
    code = 8;
    BL_CHECK_EQ(expect_started(7), p);
    bl_send(p, T_CRASH, NULL, 0);
    bl_pid q = expect_started(7);
    BL_CHECK(q != p);
    bl_sup_child v;
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, &v, 1), 1);
    BL_CHECK_EQ(v.pid, q);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect_stopped(7);
}

Test(dynamic_supervisor, extra_arguments)
{
    bl_test_run(&g_cfg, extra_main, NULL);
}

/* ---- restart rules and intensity ---- */

static void rules_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true);
    bl_pid sup, perm, trans, temp;
    bl_dynsup_opts o = {.max_restarts = 2};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    bl_child_spec cp = SPEC(1), ct = SPEC(2), cm = SPEC(3);
    ct.restart = BL_RESTART_TRANSIENT;
    cm.restart = BL_RESTART_TEMPORARY;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &cp, &perm), 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &ct, &trans), 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &cm, &temp), 0);
    expect_started(1);
    expect_started(2);
    expect_started(3);
    /* temporary: forgotten after a crash; transient: forgotten after a normal exit. */
    send_wait_exit(temp, T_CRASH);
    BL_CHECK_EQ(count_specs(sup), 2);
    send_wait_exit(trans, T_NORMAL);
    BL_CHECK_EQ(count_specs(sup), 1);
    expect_quiet();
    /* transient after a crash: restarted. */
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &ct, &trans), 0);
    expect_started(2);
    bl_send(trans, T_CRASH, NULL, 0);
    bl_pid t2 = expect_started(2); /* restart 1 */
    BL_CHECK(t2 != trans);
    /* permanent after a normal exit: restarted. */
    bl_send(perm, T_NORMAL, NULL, 0);
    perm = expect_started(1); /* restart 2 */
    bl_sup_child v[2];
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, v, 2), 2);
    BL_CHECK((v[0].pid == perm && v[1].pid == t2) || (v[0].pid == t2 && v[1].pid == perm));
    /* A third restart within 5 s is one too many: shutdown, the other child stopped. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
    bl_send(perm, T_CRASH, NULL, 0);
    expect_stopped(2);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    expect_quiet();
}

Test(dynamic_supervisor, restart_rules_and_intensity)
{
    bl_test_run(&g_cfg, rules_main, NULL);
}

static void restarting_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup, p;
    bl_dynsup_opts o = {.max_restarts = 1000000};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    bl_child_spec c = SPEC(1 | C_FLAKY);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &c, &p), 0);
    expect_started(1);
    atomic_store(&g_flaky, 1);
    send_wait_exit(p, T_CRASH);
    /* Its restart fails, and is tried again and again: meanwhile it is restarting. */
    bl_sup_child v;
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, &v, 1), 1);
    BL_CHECK_EQ(v.status, BL_CHILD_RESTARTING);
    BL_CHECK_EQ(v.pid, 0);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == 1 && k.active == 0);
    atomic_store(&g_flaky, 0);
    p = expect_started(1);
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, &v, 1), 1);
    BL_CHECK(v.status == BL_CHILD_RUNNING && v.pid == p);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect_stopped(1);
}

Test(dynamic_supervisor, failed_restart_is_retried)
{
    bl_test_run(&g_cfg, restarting_main, NULL);
}

/* ---- shutdown ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void shutdown_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup, p[7];
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
    /* Five children that each take 200 ms to stop, one stuck (100 ms then killed), one brutal. */
    for (int i = 0; i < 5; i++) {
        bl_child_spec c = SPEC(i | C_SLOW);
        BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &c, &p[i]), 0);
        expect_started(i);
    }
    bl_child_spec stuck = SPEC(5 | C_STUCK), brutal = SPEC(6);
    stuck.shutdown = 100;
    brutal.shutdown = BL_SHUTDOWN_BRUTAL_KILL;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &stuck, &p[5]), 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &brutal, &p[6]), 0);
    expect_started(5);
    expect_started(6);
    bl_ref ref[7];
    for (int i = 0; i < 7; i++) BL_CHECK_EQ(bl_monitor(p[i], &ref[i]), 0);
    int64_t t0 = now_ms();
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    int64_t dt = now_ms() - t0;
    /* All at once: about 200 ms, not 5 x 200 ms. */
    BL_CHECK(dt >= 190);
    BL_CHECK(dt < 600);
    for (int i = 0; i < 5; i++) BL_CHECK_EQ(wait_down(ref[i], NULL), BL_SHUTDOWN);
    BL_CHECK_EQ(wait_down(ref[5], NULL), BL_KILLED);
    BL_CHECK_EQ(wait_down(ref[6], NULL), BL_KILLED);
    int stopped = 0;
    bl_msg *m;
    while ((m = bl_test_recv_tag(T_STOPPED, 0))) {
        stopped++;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(stopped, 6); /* not brutal: kill is not an exit signal it could see */
}

Test(dynamic_supervisor, stops_all_children_at_once)
{
    bl_test_run(&g_cfg, shutdown_main, NULL);
}

/* Many children: the pid table through inserts, restarts and removals. */
static int pid_cmp(const void *a, const void *b)
{
    bl_pid x = *(const bl_pid *)a, y = *(const bl_pid *)b;
    return x < y ? -1 : x > y;
}

static void many_main(void *arg)
{
    g_test = bl_self();
    int n = BL_SCALE(2000);
    bl_pid sup, *p = calloc((size_t)n, sizeof *p);
    bl_sup_child *v = calloc((size_t)n, sizeof *v);
    BL_CHECK(p && v);
    if (!p || !v) return;
    bl_dynsup_opts o = {.max_restarts = 1000000};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    for (int i = 0; i < n; i++) {
        bl_child_spec c = SPEC(i);
        BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &c, &p[i]), 0);
        bl_msg_free(bl_test_recv_tag(T_STARTED, 5000));
    }
    /* Every third one crashes (restarted), every other one is terminated. */
    for (int i = 0; i < n; i += 3) {
        bl_send(p[i], T_CRASH, NULL, 0);
        p[i] = expect_started(i);
    }
    for (int i = 1; i < n; i += 2) {
        BL_CHECK_EQ(bl_dynamic_supervisor_terminate_child(sup, p[i]), 0);
        bl_msg_free(bl_test_recv_tag(T_STOPPED, 5000));
    }
    int left = 0;
    for (int i = 0; i < n; i += 2) p[left++] = p[i];
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, v, (size_t)n), left);
    bl_pid *got = calloc((size_t)left + 1, sizeof *got);
    for (int i = 0; i < left && got; i++) got[i] = v[i].pid;
    qsort(p, (size_t)left, sizeof *p, pid_cmp);
    if (got) qsort(got, (size_t)left, sizeof *got, pid_cmp);
    for (int i = 0; i < left && got; i++) BL_CHECK_EQ(got[i], p[i]);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 30000), 0);
    for (int i = 0; i < left; i++) BL_CHECK(!bl_is_alive(p[i]));
    free(got);
    free(p);
    free(v);
}

Test(dynamic_supervisor, many_children)
{
    bl_test_run(&g_cfg, many_main, NULL);
}
