/*
 * Agent under a supervisor: bl_agent_child_spec (Elixir's Agent.child_spec:
 * id, restart permanent), the agent linked to its supervisor, restarted
 * with a fresh state after a crash or a normal stop, registered under its
 * name, and stopped with the supervisor.
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/agent.h"
#include "bl_test.h"

static _Atomic int g_inits, g_frees;
static bl_config g_cfg = {.quiet = true};

static void init_long(void **state, void *arg)
{
    atomic_fetch_add(&g_inits, 1);
    long *v = malloc(sizeof *v);
    if (v) *v = *(const long *)arg;
    *state = v;
}

static void free_long(void *state)
{
    atomic_fetch_add(&g_frees, 1);
    free(state);
}

static void get_value(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    bl_gs_reply(r, *state, sizeof(long));
}

static void add(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    long d;
    memcpy(&d, arg, sizeof d);
    *(long *)*state += d;
}

static long value(bl_pid a)
{
    bl_msg *m = NULL;
    long v = -1;
    if (bl_agent_get(a, get_value, NULL, 0, &m, 5000) == 0 && m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    bl_msg_free(m);
    return v;
}

/* Waits for the DOWN of ref (the supervisor has the agent's EXIT by then). */
static int wait_down(bl_ref ref)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    bl_msg_free(m);
    return r.kind;
}

static bl_pid child_pid(bl_pid sup)
{
    bl_sup_child v;
    BL_CHECK_EQ(bl_supervisor_which_children(sup, &v, 1), 1);
    BL_CHECK_EQ(v.status, BL_CHILD_RUNNING);
    return v.pid;
}

static void agent_main(void *arg)
{
    atomic_store(&g_inits, 0);
    atomic_store(&g_frees, 0);
    static const long start_value = 40;
    static const bl_name name = {.local = "counter"};
    bl_agent_child ac = {.init = init_long,
                         .arg = (void *)&start_value,
                         .opts = {.name = &name, .free_state = free_long}};
    bl_child_spec spec = bl_agent_child_spec("counter", &ac);
    BL_CHECK(strcmp(spec.id, "counter") == 0);
    BL_CHECK_EQ(spec.restart, BL_RESTART_PERMANENT);
    BL_CHECK_EQ(spec.type, BL_CHILD_WORKER);
    BL_CHECK_EQ(spec.shutdown, BL_SHUTDOWN_DEFAULT);
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, &spec, 1, NULL), 0);
    ac.init = NULL; /* the supervisor has its own copy */
    bl_pid a = child_pid(sup);
    BL_CHECK_EQ(bl_whereis("counter"), a);
    BL_CHECK_EQ(value(a), 40);
    long two = 2;
    BL_CHECK_EQ(bl_agent_update(a, add, &two, sizeof two, 5000), 0);
    BL_CHECK_EQ(value(a), 42);
    /* Linked to the supervisor: killed, it is restarted with a fresh state. */
    bl_reason kill = BL_REASON(BL_KILL);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(a, &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(a, &kill), 0);
    BL_CHECK_EQ(wait_down(ref), BL_KILLED);
    bl_pid b = child_pid(sup);
    BL_CHECK(b != a && b != 0);
    BL_CHECK_EQ(bl_whereis("counter"), b);
    BL_CHECK_EQ(value(b), 40);
    BL_CHECK_EQ(atomic_load(&g_inits), 2);
    /* Permanent: a normal stop is restarted too. */
    BL_CHECK_EQ(bl_agent_stop(b, NULL, 5000), 0);
    bl_pid c = child_pid(sup);
    BL_CHECK(c != b && c != 0);
    BL_CHECK_EQ(value(c), 40);
    /* The supervisor's stop stops it (and its state is freed). */
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    BL_CHECK(!bl_is_alive(c));
    for (int i = 0; i < 5000 && atomic_load(&g_frees) < 3; i++) bl_sleep(1);
    BL_CHECK_EQ(atomic_load(&g_frees), 3);
    /* Without an agent, the spec has no start and is refused. */
    bl_child_spec none = bl_agent_child_spec("none", NULL);
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, &none, 1, NULL), -EINVAL);
}

Test(agent_child_spec, agent_under_a_supervisor)
{
    bl_test_run(&g_cfg, agent_main, NULL);
}
