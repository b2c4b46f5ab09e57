/*
 * A process killed while it waits in a behaviour's call leaves nothing
 * behind: the heap copies a call holds across its wait (a child spec with
 * its argument, a large gen_server or agent request) are freed with it.
 * The leak this guards against shows as a LeakSanitizer report in the ASan
 * build; every build checks the calls still work after the kills.
 */
#include <errno.h>

#include "beamline/agent.h"
#include "beamline/dynamic_supervisor.h"
#include "bl_test.h"

enum { T_ENTERED = 1, T_RELEASE, T_DONE };

static bl_pid g_test;
static _Atomic int g_block; /* 1: a child's start waits for T_RELEASE */

/* The children: wait until the runtime stops. */
static void child(void *arg)
{
    bl_msg_free(bl_test_recv_tag(T_DONE, BL_INFINITY));
}

/* A start that tells the test it runs, then (when asked to) waits. */
static int start_slow(void *arg, bl_pid *pid)
{
    bl_send(g_test, T_ENTERED, NULL, 0);
    if (atomic_load(&g_block)) bl_msg_free(bl_test_recv_tag(T_RELEASE, 10000));
    return bl_spawn_link(pid, child, NULL, NULL) == 0 ? 0 : -EIO;
}

typedef struct call_ctx {
    bl_pid sup;
    char arg[100]; /* copied into the request: the 120-byte heap copy */
} call_ctx;

static void caller(void *arg)
{
    call_ctx *c = arg;
    bl_child_spec spec = {.start = start_slow,
                          .arg = c->arg,
                          .arg_len = sizeof c->arg,
                          .restart = BL_RESTART_TEMPORARY};
    bl_pid pid;
    bl_dynamic_supervisor_start_child(c->sup, &spec, &pid);
    bl_send(g_test, T_DONE, NULL, 0);
}

static void kill_and_wait(bl_pid pid)
{
    bl_ref ref;
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(pid, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
}

static void start_child_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
    call_ctx c = {.sup = sup};
    memset(c.arg, 'x', sizeof c.arg);
    for (int i = 0; i < BL_SCALE(50); i++) {
        atomic_store(&g_block, 1);
        bl_pid who;
        BL_CHECK_EQ(bl_spawn(&who, caller, &c, NULL), 0);
        /* The supervisor runs the child's start: the caller waits in its call. */
        bl_msg_free(bl_test_recv_tag(T_ENTERED, 5000));
        kill_and_wait(who);
        atomic_store(&g_block, 0);
        BL_CHECK_EQ(bl_send(sup, T_RELEASE, NULL, 0), 0);
    }
    /* The supervisor is unharmed: a caller that lives gets its child. */
    bl_pid who;
    BL_CHECK_EQ(bl_spawn(&who, caller, &c, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_ENTERED, 5000));
    BL_CHECK(bl_test_recv_tag(T_DONE, 5000) != NULL);
    bl_sup_counts n;
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &n), 0);
    BL_CHECK_EQ(n.active, BL_SCALE(50) + 1);
}

Test(kill_in_call, start_child_request_freed_with_its_caller, .timeout = 120)
{
    bl_test_run(NULL, start_child_main, NULL);
}
