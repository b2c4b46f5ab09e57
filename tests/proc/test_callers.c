/*
 * Callers (Elixir's $callers): inherited at spawn with inherit_callers,
 * bounded, readable by the process itself and through bl_process_info.
 */
#include <errno.h>
#include <string.h>

#include "bl_test.h"
#include "proc/otp.h"
#include "sched/sched.h"

enum { T_CHAIN = 1, T_GO };

typedef struct chain {
    bl_pid top;      /* where the report goes */
    int depth;       /* processes still to spawn below this one */
    bl_pid pids[12]; /* pids[i]: the process at depth i */
    bl_pid seen[BL_CALLERS_MAX + 1];
    int nseen; /* what the last one read */
    int ninfo; /* what bl_process_info said of it */
    bl_pid info[BL_CALLERS_MAX];
} chain;

/* Each link of the chain spawns the next with inherit_callers; the last
 * reads its callers, has the top read them too, and waits to be told. */
static void link_fn(void *arg)
{
    chain *c = arg;
    int level = 12 - c->depth;
    c->pids[level - 1] = bl_self();
    if (--c->depth > 0) {
        bl_spawn_opts o = {.inherit_callers = true};
        BL_CHECK_EQ(bl_spawn(NULL, link_fn, c, &o), 0);
        bl_msg_free(bl_test_recv_tag(T_GO, BL_INFINITY));
        return;
    }
    c->nseen = bl_callers(c->seen, BL_CALLERS_MAX + 1);
    bl_send(c->top, T_CHAIN, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_GO, BL_INFINITY));
}

static void chain_main(void *arg)
{
    chain c = {.top = bl_self(), .depth = 11};
    /* The first link: spawned by us with inherit_callers. */
    bl_spawn_opts o = {.inherit_callers = true};
    BL_CHECK_EQ(bl_callers(NULL, 0), 0);
    bl_pid first;
    BL_CHECK_EQ(bl_spawn(&first, link_fn, &c, &o), 0);
    bl_msg_free(bl_test_recv_tag(T_CHAIN, 10000));
    /* pids[0] is first, spawned by us; pids[10] the last, 11 below us. */
    bl_pid last = c.pids[10];
    BL_CHECK_EQ(c.nseen, BL_CALLERS_MAX);
    for (int i = 0; i < BL_CALLERS_MAX; i++) BL_CHECK_EQ(c.seen[i], c.pids[9 - i]);
    bl_proc_info in;
    BL_CHECK_EQ(bl_process_info(last, &in), 0);
    BL_CHECK_EQ(in.ncallers, BL_CALLERS_MAX);
    BL_CHECK(!memcmp(in.callers, c.seen, sizeof in.callers));
    /* Near the top: [us], then [first, us]. */
    BL_CHECK_EQ(bl_process_info(c.pids[0], &in), 0);
    BL_CHECK(in.ncallers == 1 && in.callers[0] == bl_self());
    BL_CHECK_EQ(bl_process_info(c.pids[1], &in), 0);
    BL_CHECK(in.ncallers == 2 && in.callers[0] == c.pids[0] && in.callers[1] == bl_self());
    for (int i = 10; i >= 0; i--) bl_send(c.pids[i], T_GO, NULL, 0);
}

Test(callers, inherited_and_bounded)
{
    bl_test_run(NULL, chain_main, NULL);
}

static void plain_child(void *arg)
{
    bl_pid got[2] = {1, 1};
    BL_CHECK_EQ(bl_callers(got, 2), 0);
    BL_CHECK_EQ(got[0], 1);
    /* Set by hand, as a task started on another's behalf does. */
    bl_pid set[10];
    for (int i = 0; i < 10; i++) set[i] = bl__pid_make((uint32_t)i, 0);
    BL_CHECK_EQ(bl__callers_set(set, 3), 0);
    BL_CHECK_EQ(bl_callers(got, 2), 3);
    BL_CHECK(got[0] == set[0] && got[1] == set[1]);
    BL_CHECK_EQ(bl__callers_set(set, 10), 0);
    BL_CHECK_EQ(bl_callers(NULL, 0), BL_CALLERS_MAX);
    BL_CHECK_EQ(bl__callers_set(NULL, 0), 0);
    BL_CHECK_EQ(bl_callers(NULL, 0), 0);
    BL_CHECK_EQ(bl__callers_set(NULL, 1), -EINVAL);
    BL_CHECK_EQ(bl_callers(NULL, 1), -EINVAL);
}

static void plain_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    /* Without the option: no callers. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, plain_child, NULL, NULL), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 10000));
}

Test(callers, not_inherited_by_default)
{
    bl_test_run(NULL, plain_main, NULL);
    /* From outside a process: nothing to inherit from, and no callers to read. */
    cr_assert_eq(bl_callers(NULL, 0), -EPERM);
}

static void outside_child(void *arg)
{
    BL_CHECK_EQ(bl_callers(NULL, 0), 0);
    bl_runtime_stop();
}

Test(callers, spawned_from_outside)
{
    bl_config c = {.schedulers = 2};
    cr_assert_eq(bl_runtime_start(&c), 0);
    bl_spawn_opts o = {.inherit_callers = true};
    cr_assert_eq(bl_spawn(NULL, outside_child, NULL, &o), 0);
    cr_assert_eq(bl_runtime_wait(), 0);
    cr_assert_eq(atomic_load(&bl_test_failures), 0, "%s", bl_test_first);
}
