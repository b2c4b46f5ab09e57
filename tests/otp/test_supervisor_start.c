/*
 * Supervisor: starting children beyond the plain case: a child whose name
 * is already taken (Erlang's {error, {already_started, Pid}} with the
 * holder's pid), start functions that return extra info ({ok, Pid, Info}),
 * and supervisors whose flags and children an init function builds at run
 * time (Supervisor's init/1: ok, ignore, error, bad results, and again at
 * each restart under another supervisor).
 *
 * Children are gen_servers that trap exits; their terminate reports
 * T_STOPPED {i}, and their start function (in the supervisor) T_STARTED {i}.
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/gen_server.h"
#include "beamline/supervisor.h"
#include "sup_worker.h"

enum { T_INIT = T_WORKER_LAST };

static bl_config g_cfg = {.quiet = true};

/* A child numbered i (the arg): sup_worker.h's gen_server. */
static int start_plain(void *arg, bl_pid *pid)
{
    return start_worker(ARG((intptr_t)arg | C_GENSERV), pid);
}

/* A child registered under the name in arg (numbered 100). */
static int start_named(void *arg, bl_pid *pid)
{
    bl_name name = BL_NAME_LOCAL(arg);
    bl_gen_server_opts o = {.name = &name};
    int rc = bl_gen_server_start_link(pid, &gs_child, ARG(100), &o);
    if (rc == 0) say(T_STARTED, 100, *pid);
    return rc;
}

/* A child numbered i that returns the info "info-<i>" ({ok, Pid, Info}). */
static int start_with_info(void *arg, bl_pid *pid, bl_child_info *info)
{
    int rc = start_plain(arg, pid);
    if (rc) return rc;
    char text[16];
    int n = snprintf(text, sizeof text, "info-%d", (int)(intptr_t)arg);
    BL_CHECK_EQ(info->len, 0);
    BL_CHECK_EQ(bl_child_info_set(info, text, (size_t)n + 1), 0);
    return 0;
}

/* ---- already_started: the holder of a taken name ---- */

static void taken_main(void *arg)
{
    g_test = bl_self();
    BL_CHECK_EQ(bl_register("taken", bl_self()), 0);
    bl_pid sup, p = 7;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, NULL), 0);
    /* start_child: the child's start finds the name taken. */
    bl_child_spec named = {.id = "named", .start = start_named, .arg = "taken"};
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &named, &p), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(p, bl_self());
    BL_CHECK_EQ(bl_supervisor_which_children(sup, NULL, 0), 0); /* not kept */
    /* restart_child: free when started, taken when restarted. */
    bl_child_spec later = {.id = "later", .start = start_named, .arg = "later"};
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &later, &p), 0);
    BL_CHECK_EQ(expect(T_STARTED, 100), p);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "later"), 0);
    expect(T_STOPPED, 100);
    BL_CHECK_EQ(bl_unregister("taken"), 0); /* a process has one name at most */
    BL_CHECK_EQ(bl_register("later", bl_self()), 0);
    p = 7;
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "later", &p), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(p, bl_self());
    bl_child_info info = {.len = 3};
    p = 7;
    BL_CHECK_EQ(bl_supervisor_restart_child_info(sup, "later", &p, &info), -EEXIST);
    BL_CHECK_EQ(p, bl_self());
    BL_CHECK_EQ(info.len, 0);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect_quiet();

    /* The supervisor's own start: the failed child's error names the holder. */
    BL_CHECK_EQ(bl_unregister("later"), 0);
    BL_CHECK_EQ(bl_register("taken", bl_self()), 0);
    bl_child_spec list[2] = {{.id = "one", .start = start_plain, .arg = ARG(1)}, named};
    bl_sup_error err;
    bl_sup_opts o = {.error = &err};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 2, &o), BL_SUP_CHILD_FAILED);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_START_FAILED);
    BL_CHECK_EQ(err.index, 1);
    BL_CHECK_EQ(err.error, -EEXIST);
    BL_CHECK_EQ(err.pid, bl_self());
    BL_CHECK(strcmp(err.id, "named") == 0);
    expect(T_STARTED, 1);
    expect(T_STOPPED, 1);
    /* A start that works clears the report. */
    list[1].start = start_plain;
    list[1].arg = ARG(2);
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 2, &o), 0);
    BL_CHECK_EQ(err.pid, 0);
    expect(T_STARTED, 1);
    expect(T_STARTED, 2);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 1);
    expect_quiet();
}

Test(supervisor_start, already_started_gives_the_holder)
{
    bl_test_run(&g_cfg, taken_main, NULL);
}

/* ---- {ok, Pid, Info} ---- */

static void info_main(void *arg)
{
    g_test = bl_self();
    BL_CHECK_EQ(bl_child_info_set(NULL, "x", 1), -EINVAL);
    bl_child_info info = {0};
    char big[BL_CHILD_INFO_MAX + 1] = {0};
    BL_CHECK_EQ(bl_child_info_set(&info, big, sizeof big), -EMSGSIZE);
    BL_CHECK_EQ(bl_child_info_set(&info, NULL, 1), -EINVAL);
    BL_CHECK_EQ(info.len, 0);
    /* A spec with both start functions is refused. */
    bl_child_spec both = {.id = "b", .start = start_plain, .start_info = start_with_info};
    bl_sup_error err;
    BL_CHECK_EQ(bl_child_spec_check(&both, true, &err), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_START);
    /* In the initial list, start_info starts the child like start. */
    bl_child_spec list[1] = {{.id = "first", .start_info = start_with_info, .arg = ARG(1)}};
    bl_pid sup, p, q;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, list, 1, NULL), 0);
    expect(T_STARTED, 1);
    BL_CHECK_EQ(bl_supervisor_start_child_info(sup, &list[0], &p, &info), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(info.len, 0);
    /* start_child: the info comes back. */
    bl_child_spec c = {.id = "second", .start_info = start_with_info, .arg = ARG(2)};
    BL_CHECK_EQ(bl_supervisor_start_child_info(sup, &c, &p, &info), 0);
    BL_CHECK_EQ(expect(T_STARTED, 2), p);
    BL_CHECK_EQ(info.len, 7);
    BL_CHECK(strcmp((const char *)info.data, "info-2") == 0);
    /* restart_child too, and a restart after a crash works the same way. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "second"), 0);
    expect(T_STOPPED, 2);
    info.len = 0;
    BL_CHECK_EQ(bl_supervisor_restart_child_info(sup, "second", &q, &info), 0);
    BL_CHECK(q != p && q != 0);
    BL_CHECK_EQ(expect(T_STARTED, 2), q);
    BL_CHECK_EQ(info.len, 7);
    BL_CHECK(strcmp((const char *)info.data, "info-2") == 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(q, &kill), 0);
    expect(T_STARTED, 2);
    /* A plain start function gives no info. */
    bl_child_spec plain = {.id = "plain", .start = start_plain, .arg = ARG(3)};
    BL_CHECK_EQ(bl_supervisor_start_child_info(sup, &plain, &p, &info), 0);
    BL_CHECK_EQ(info.len, 0);
    expect(T_STARTED, 3);
    BL_CHECK_EQ(bl_supervisor_start_child(sup, &c, NULL), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect(T_STOPPED, 3);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 1);
    expect_quiet();
}

Test(supervisor_start, start_functions_return_info)
{
    bl_test_run(&g_cfg, info_main, NULL);
}

/* ---- init functions ---- */

/* What an init function is told to do. */
typedef struct init_plan {
    int result;       /* what it returns */
    int children;     /* how many children 1..n it adds, ids "c1".. */
    bool duplicate;   /* then adds "c1" again */
    bool significant; /* the children are temporary and significant */
    bl_sup_strategy strategy;
    bl_auto_shutdown auto_shutdown;
} init_plan;

static int plan_init(void *arg, bl_sup_flags *flags, bl_sup_children *children)
{
    const init_plan *pl = arg;
    say(T_INIT, pl->children, bl_self());
    BL_CHECK_EQ(flags->strategy, BL_ONE_FOR_ONE); /* the options' flags */
    BL_CHECK_EQ(flags->max_restarts, 5);
    flags->strategy = pl->strategy;
    flags->auto_shutdown = pl->auto_shutdown;
    for (int i = 1; i <= pl->children; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i); /* a local: the supervisor copies ids */
        bl_child_spec c = {.id = id, .start = start_plain, .arg = ARG(i)};
        if (pl->significant) {
            c.restart = BL_RESTART_TEMPORARY;
            c.significant = true;
        }
        BL_CHECK_EQ(bl_sup_children_add(children, &c), 0);
    }
    if (pl->duplicate) {
        bl_child_spec c = {.id = "c1", .start = start_plain};
        BL_CHECK_EQ(bl_sup_children_add(children, &c), -EINVAL);
        BL_CHECK_EQ(bl_sup_children_add(children, NULL), -EINVAL); /* not the first failure */
    }
    BL_CHECK_EQ(bl_sup_children_add(NULL, NULL), -EINVAL);
    return pl->result;
}

/* Starts a supervisor with plan; returns start's result and the error report. */
static int start_plan(const init_plan *pl, bl_pid *sup, bl_sup_error *err)
{
    bl_sup_opts o = {.max_restarts = 5, .error = err};
    int rc = bl_supervisor_start_link_init(sup, plan_init, (void *)pl, &o);
    BL_CHECK(expect(T_INIT, pl->children) != 0);
    return rc;
}

static void init_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup;
    bl_sup_error err;
    /* ok: the flags and children init built, in order, init run in the supervisor. */
    init_plan ok = {.children = 3, .strategy = BL_ONE_FOR_ALL};
    bl_sup_opts o = {.max_restarts = 5, .error = &err};
    BL_CHECK_EQ(bl_supervisor_start_link_init(&sup, plan_init, &ok, &o), 0);
    BL_CHECK_EQ(expect(T_INIT, 3), sup);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_NONE);
    bl_pid p1 = expect(T_STARTED, 1), p2 = expect(T_STARTED, 2);
    expect(T_STARTED, 3);
    bl_sup_child v[4];
    BL_CHECK_EQ(bl_supervisor_which_children(sup, v, 4), 3);
    BL_CHECK(strcmp(v[0].id, "c1") == 0 && v[0].pid == p1);
    BL_CHECK(strcmp(v[2].id, "c3") == 0);
    /* one_for_all, as init said: a crash restarts everyone. */
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(p2, &kill), 0);
    expect(T_STOPPED, 3);
    expect(T_STOPPED, 1);
    expect(T_STARTED, 1);
    expect(T_STARTED, 2);
    expect(T_STARTED, 3);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    expect(T_STOPPED, 3);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 1);

    /* ignore: no supervisor, nothing started. */
    init_plan ign = {.result = BL_GS_IGNORED, .children = 2};
    sup = 7;
    BL_CHECK_EQ(start_plan(&ign, &sup, &err), BL_GS_IGNORED);
    BL_CHECK_EQ(sup, 0);
    /* An error: returned as it is, nothing started, the caller still alive. */
    init_plan fail = {.result = -EIO, .children = 2};
    BL_CHECK_EQ(start_plan(&fail, &sup, &err), -EIO);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_INIT_FAILED);
    BL_CHECK_EQ(err.error, -EIO);
    init_plan odd = {.result = 5};
    BL_CHECK_EQ(start_plan(&odd, &sup, &err), -EPROTO);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_INIT_FAILED);
    /* A bad spec fails the start even though init returned ok. */
    init_plan dup = {.children = 2, .duplicate = true};
    BL_CHECK_EQ(start_plan(&dup, &sup, &err), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_DUPLICATE_ID);
    BL_CHECK_EQ(err.index, 2);
    /* Bad flags; significant children under auto_shutdown never. */
    init_plan flags = {.children = 1, .strategy = 9};
    BL_CHECK_EQ(start_plan(&flags, &sup, &err), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_OPTION);
    init_plan sig = {.children = 2, .significant = true};
    BL_CHECK_EQ(start_plan(&sig, &sup, &err), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_SIGNIFICANT);
    BL_CHECK_EQ(err.index, 0);
    expect_quiet(); /* none of these started a child */
    BL_CHECK_EQ(bl_supervisor_start_link_init(&sup, NULL, NULL, &o), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_start_link_init(NULL, plan_init, &ok, &o), -EINVAL);
}

Test(supervisor_start, init_function_builds_flags_and_children)
{
    bl_test_run(&g_cfg, init_main, NULL);
}

/* A failing child under an init function; init again at each restart of the supervisor. */
static int fail_start(void *arg, bl_pid *pid)
{
    return -EIO;
}

static int fail_init(void *arg, bl_sup_flags *flags, bl_sup_children *children)
{
    bl_child_spec a = {.id = "a", .start = start_plain, .arg = ARG(1)};
    bl_child_spec b = {.id = "b", .start = fail_start};
    bl_sup_children_add(children, &a);
    bl_sup_children_add(children, &b);
    return 0;
}

static void nested_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup;
    bl_sup_error err;
    bl_sup_opts o = {.error = &err};
    BL_CHECK_EQ(bl_supervisor_start_link_init(&sup, fail_init, NULL, &o), BL_SUP_CHILD_FAILED);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_START_FAILED);
    BL_CHECK_EQ(err.index, 1);
    BL_CHECK_EQ(err.error, -EIO);
    expect(T_STARTED, 1);
    expect(T_STOPPED, 1);

    /* Under a supervisor (bl_supervisor_start_fn): init runs again at each restart. */
    init_plan pl = {.children = 1};
    bl_sup_init in = {.init = plan_init, .init_arg = &pl, .opts = {.max_restarts = 5}};
    bl_child_spec top_spec = {
        .id = "inner", .start = bl_supervisor_start_fn, .arg = &in, .type = BL_CHILD_SUPERVISOR};
    bl_pid top;
    BL_CHECK_EQ(bl_supervisor_start_link(&top, &top_spec, 1, NULL), 0);
    bl_pid inner = expect(T_INIT, 1);
    expect(T_STARTED, 1);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(inner, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(inner, &kill), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
    expect(T_STOPPED, 1); /* its child saw the supervisor's exit (killed) */
    bl_pid inner2 = expect(T_INIT, 1);
    BL_CHECK(inner2 != inner && inner2 != 0);
    expect(T_STARTED, 1);
    /* children together with init is refused. */
    bl_sup_init bad = {.children = &top_spec, .nchildren = 1, .init = plan_init};
    bl_pid x;
    BL_CHECK_EQ(bl_supervisor_start_fn(&bad, &x), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(top, NULL, 5000), 0);
    expect(T_STOPPED, 1);
    expect_quiet();
}

Test(supervisor_start, init_function_failures_and_restarts)
{
    bl_test_run(&g_cfg, nested_main, NULL);
}

/* ---- the starter killed while init runs ---- */

enum { T_IN_START = T_INIT + 1, T_FAIL = T_INIT + 2 };

/* A child's start function (in the supervisor's init): tells the test where it is, then
 * fails when the test says so. */
static int held_start(void *arg, bl_pid *pid)
{
    (void)pid;
    bl_pid test = *(bl_pid *)arg, self = bl_self();
    bl_send(test, T_IN_START, &self, sizeof self);
    bl_msg_free(bl_test_recv_tag(T_FAIL, 10000));
    return -EIO;
}

/* Starts a supervisor whose one child's start waits for the test, with the specs and the
 * error report on this stack. */
static void held_starter(void *arg)
{
    bl_child_spec spec = {.id = "held", .start = held_start, .arg = arg};
    bl_sup_error err;
    bl_sup_opts o = {.error = &err};
    bl_pid sup;
    (void)bl_supervisor_start_link(&sup, &spec, 1, &o);
}

/*
 * The starter is killed while the supervisor's init, on the other scheduler, waits in a
 * child's start; then the start fails, and init writes its result and the error report:
 * into its own copy, not onto the dead starter's stack (which the ASan build sees, pooled
 * and poisoned).  The supervisor ends by itself.
 */
static void killed_starter_main(void *arg)
{
    (void)arg;
    bl_pid self = bl_self();
    bl_spawn_opts on2 = {.scheduler = 2, .bound = true};
    bl_pid starter;
    bl_ref starter_mon;
    BL_CHECK_EQ(bl_spawn_monitor(&starter, &starter_mon, held_starter, &self, &on2), 0);
    bl_msg *m = bl_test_recv_tag(T_IN_START, 10000);
    BL_CHECK(m != NULL);
    bl_pid sup = BL_PID_NONE;
    if (m) memcpy(&sup, m->data, sizeof sup);
    bl_msg_free(m);
    bl_ref sup_mon;
    BL_CHECK_EQ(bl_monitor(sup, &sup_mon), 0);
    BL_CHECK_EQ(bl_test_kill_wait(starter), BL_KILLED);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &starter_mon, 10000, 0), 0);
    bl_msg_free(m);
    /* Another process takes the dead starter's stack from the pool meanwhile. */
    bl_pid other;
    bl_ref other_mon;
    BL_CHECK_EQ(bl_spawn_monitor(&other, &other_mon, bl_test_echo, NULL, &on2), 0);
    BL_CHECK_EQ(bl_send(sup, T_FAIL, NULL, 0), 0);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &sup_mon, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_send(other, T_FAIL, NULL, 0), 0); /* not its tag: it returns */
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &other_mon, 10000, 0), 0);
    bl_reason why = {.kind = BL_KILLED};
    if (m) BL_CHECK_EQ(bl_msg_reason(m, &why), 0);
    BL_CHECK_EQ(why.kind, BL_NORMAL);
    bl_msg_free(m);
}

Test(supervisor_start, starter_killed_while_init_runs)
{
    bl_test_run_bound(1, killed_starter_main);
}
