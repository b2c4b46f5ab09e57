/*
 * Agent: start, get, update, get_and_update, cast, stop, names.
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/agent.h"
#include "bl_test.h"

static _Atomic int freed;

static void list_init(void **state, void *arg)
{
    long *v = calloc(1, sizeof *v);
    *v = *(long *)arg;
    *state = v;
}

static void free_long(void *state)
{
    atomic_fetch_add(&freed, 1);
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

/* get_and_update: returns the old value, doubles the state. */
static void pop_double(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    long *v = *state;
    bl_gs_reply(r, v, sizeof *v);
    *v *= 2;
}

/* Misbehaving: tries to stop the agent, which the agent refuses. */
static void try_stop(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    bl_gs_stop(r, NULL);
}

static long value(bl_pid a)
{
    bl_msg *m = NULL;
    long v = -1;
    if (bl_agent_get(a, get_value, NULL, 0, &m, 1000) == 0 && m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    bl_msg_free(m);
    return v;
}

static void agent_main(void *arg)
{
    atomic_store(&freed, 0);
    bl_pid a;
    long init = 10;
    bl_agent_opts o = {.free_state = free_long};
    BL_CHECK_EQ(bl_agent_start(&a, list_init, &init, &o), 0);
    BL_CHECK_EQ(value(a), 10);
    long five = 5;
    BL_CHECK_EQ(bl_agent_update(a, add, &five, sizeof five, 1000), 0);
    BL_CHECK_EQ(value(a), 15);
    for (int i = 0; i < 10; i++) BL_CHECK_EQ(bl_agent_cast(a, add, &five, sizeof five), 0);
    BL_CHECK_EQ(value(a), 65);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_agent_get_and_update(a, pop_double, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && *(long *)m->data == 65);
    bl_msg_free(m);
    BL_CHECK_EQ(value(a), 130);
    /* An update that answers nothing still returns. */
    BL_CHECK_EQ(bl_agent_get(a, add, &five, sizeof five, &m, 1000), 0);
    BL_CHECK(m && m->len == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_agent_update(a, try_stop, NULL, 0, 1000), 0);
    BL_CHECK(bl_is_alive(a));
    /* Bad input. */
    BL_CHECK_EQ(bl_agent_get(a, NULL, NULL, 0, &m, 1000), -EINVAL);
    BL_CHECK_EQ(bl_agent_update(a, add, NULL, 8, 1000), -EINVAL);
    BL_CHECK_EQ(bl_agent_stop(a, NULL, 1000), 0);
    BL_CHECK_EQ(atomic_load(&freed), 1);
    BL_CHECK_EQ(bl_agent_get(a, get_value, NULL, 0, &m, 1000), -ESRCH);
    BL_CHECK_EQ(bl_agent_stop(a, NULL, 1000), -ESRCH);

    /* Named, and the state freed after a kill too. */
    bl_name n = BL_NAME_LOCAL("stack");
    o.name = &n;
    BL_CHECK_EQ(bl_agent_start(&a, list_init, &init, &o), 0);
    bl_pid b;
    BL_CHECK_EQ(bl_agent_start(&b, list_init, &init, &o), -EEXIST);
    BL_CHECK_EQ(b, a);
    BL_CHECK_EQ(value(bl_whereis("stack")), 10);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(a, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(a, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    /* release runs as the process is freed, before its DOWN goes out. */
    BL_CHECK_EQ(atomic_load(&freed), 2);

    /* start_link: a linked agent follows its owner. */
    BL_CHECK_EQ(bl_agent_start_link(&a, NULL, &init, NULL), 0);
    BL_CHECK(bl_is_alive(a));
    void *st = NULL;
    BL_CHECK_EQ(bl_sys_get_state(a, &st, 1000), 0);
}

Test(agent, all)
{
    bl_test_run(NULL, agent_main, NULL);
}
