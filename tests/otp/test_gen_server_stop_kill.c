/*
 * Stopping a gen_server with reason kill, as Erlang allows (gen_server:stop
 * with kill, or a {:stop, :kill, state} result): terminate runs with kill,
 * the server exits with kill, and a linked process that traps exits gets
 * an EXIT with kill (not killed), a monitor a DOWN with kill.
 */
#include <errno.h>

#include "beamline/gen_server.h"
#include "bl_test.h"

static _Atomic int terminated_with = -1;

static void terminate(void **state, const bl_reason *reason)
{
    (void)state;
    atomic_store(&terminated_with, (int)reason->kind);
}

static void call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state, (void)m;
    bl_reason kill = BL_REASON(BL_KILL);
    bl_gs_reply(r, NULL, 0);
    bl_gs_stop(r, &kill); /* {:stop, :kill, :ok, state} */
}

static const bl_gen_server server = {.handle_call = call, .terminate = terminate};

static bl_reason reason_of(bl_msg *m)
{
    bl_reason why = {0};
    BL_CHECK(m != NULL);
    if (m) BL_CHECK_EQ(bl_msg_reason(m, &why), 0);
    bl_msg_free(m);
    return why;
}

static void stop_kill_main(void *arg)
{
    (void)arg;
    bl_trap_exit(true);
    for (int way = 0; way < 2; way++) {
        atomic_store(&terminated_with, -1);
        bl_pid pid;
        BL_CHECK_EQ(bl_gen_server_start_link(&pid, &server, NULL, NULL), 0);
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
        if (way == 0) {
            bl_reason kill = BL_REASON(BL_KILL);
            BL_CHECK_EQ(bl_gen_server_stop(pid, &kill, 5000), 0);
        } else {
            bl_msg *reply = NULL;
            BL_CHECK_EQ(bl_gen_server_call(pid, 1, NULL, 0, &reply, 5000), 0);
            bl_msg_free(reply);
        }
        BL_CHECK_EQ(reason_of(bl_test_recv_tag(BL_TAG_DOWN, 5000)).kind, BL_KILL);
        BL_CHECK_EQ(reason_of(bl_test_recv_tag(BL_TAG_EXIT, 5000)).kind, BL_KILL);
        BL_CHECK_EQ(atomic_load(&terminated_with), BL_KILL);
    }
}

Test(gen_server_stop_kill, terminate_runs_and_links_get_kill)
{
    bl_test_run(NULL, stop_kill_main, NULL);
}
