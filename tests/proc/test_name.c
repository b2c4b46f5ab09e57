/*
 * Registered names through the runtime: lifetime tied to the process.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_PING = 1, T_PONG };

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void echo_once(void *arg)
{
    bl_msg *m = bl_receive(10000);
    if (m) bl_send(m->from, T_PONG, m->data, m->len);
    bl_msg_free(m);
}

static void basics_main(void *arg)
{
    bl_pid p, q, dead;
    BL_CHECK_EQ(bl_spawn(&p, echo_once, NULL, NULL), 0);
    BL_CHECK_EQ(bl_register("echo", p), 0);
    BL_CHECK_EQ(bl_whereis("echo"), p);
    BL_CHECK_EQ(bl_send_name("echo", T_PING, "hi", 3), 0);
    bl_msg *m = bl_test_recv_tag(T_PONG, 5000);
    BL_CHECK(m && !strcmp(m->data, "hi"));
    bl_msg_free(m);
    /* Errors. */
    BL_CHECK_EQ(bl_spawn(&q, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_register("q", q), 0);
    BL_CHECK_EQ(bl_register("q", bl_self()), -EEXIST);
    BL_CHECK_EQ(bl_register("q2", q), -EBUSY);
    BL_CHECK_EQ(bl_register("", q), -EINVAL);
    BL_CHECK_EQ(bl_register(NULL, q), -EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[299] = 0;
    BL_CHECK_EQ(bl_register(longname, bl_self()), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_spawn(&dead, echo_once, NULL, NULL), 0);
    bl_send(dead, T_PING, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_PONG, 5000));
    while (bl_is_alive(dead)) bl_yield();
    BL_CHECK_EQ(bl_register("dead", dead), -ESRCH);
    BL_CHECK_EQ(bl_register("bad", 0), -EINVAL);
    BL_CHECK_EQ(bl_send_name("nobody", T_PING, NULL, 0), -ENOENT);
    BL_CHECK_EQ(bl_whereis("nobody"), BL_PID_NONE);
    BL_CHECK_EQ(bl_unregister("nobody"), -ENOENT);
    BL_CHECK_EQ(bl_unregister("q"), 0);
    BL_CHECK_EQ(bl_whereis("q"), BL_PID_NONE);
    BL_CHECK_EQ(bl_register("q", q), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(q, &kill);
}

Test(name, register_whereis_send_and_errors)
{
    bl_test_run(NULL, basics_main, NULL);
}

/* The name is gone by the time the DOWN for its process arrives. */
static void freed_before_down_main(void *arg)
{
    for (int i = 0; i < 200; i++) {
        bl_pid p;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
        BL_CHECK_EQ(bl_register("server", p), 0);
        BL_CHECK_EQ(bl_monitor_name("server", &ref), 0);
        bl_reason boom = {.kind = BL_CUSTOM, .code = i};
        bl_exit_pid(p, &boom);
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
        BL_CHECK(m && m->tag == BL_TAG_DOWN && m->from == p);
        bl_msg_free(m);
        BL_CHECK_EQ(bl_whereis("server"), BL_PID_NONE);
        /* The name can be taken again at once. */
        BL_CHECK_EQ(bl_register("server", bl_self()), 0);
        BL_CHECK_EQ(bl_unregister("server"), 0);
    }
    /* Monitoring a name nobody holds: DOWN noproc at once. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor_name("ghost", &ref), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 0, 0), 0);
    bl_reason r;
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && r.kind == BL_NOPROC);
    bl_msg_free(m);
}

Test(name, freed_before_down_and_monitor_by_name)
{
    bl_test_run(NULL, freed_before_down_main, NULL);
}

/* A bounded table: registering past max_names fails, and recovers. */
static void capacity_main(void *arg)
{
    bl_pid pids[12];
    char name[16];
    for (int i = 0; i < 12; i++) {
        BL_CHECK_EQ(bl_spawn(&pids[i], wait_forever, NULL, NULL), 0);
        snprintf(name, sizeof name, "n%d", i);
        BL_CHECK_EQ(bl_register(name, pids[i]), i < 10 ? 0 : -ENOSPC);
    }
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pids[0], &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(pids[0], &kill);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_register("n10", pids[10]), 0);
    for (int i = 1; i < 12; i++) bl_exit_pid(pids[i], &kill);
}

Test(name, table_is_bounded)
{
    bl_config c = {.schedulers = 2, .max_names = 10};
    bl_test_run(&c, capacity_main, NULL);
}

Test(name, outside_a_running_runtime)
{
    cr_assert_eq(bl_register("x", 1), -ESRCH);
    cr_assert_eq(bl_whereis("x"), BL_PID_NONE);
    cr_assert_eq(bl_unregister("x"), -ESRCH);
    cr_assert_eq(bl_send_name("x", 1, NULL, 0), -ESRCH);
}
