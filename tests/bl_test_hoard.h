/*
 * tests/bl_test_hoard.h - processes that sit still in a known state, for
 * the tests that look at processes from outside (proc/snapshot,
 * net/control): a hoarder that keeps what it is sent queued, and a
 * gen_server that answers every call with an empty reply.
 */
#ifndef BL_TEST_HOARD_H
#define BL_TEST_HOARD_H

#include "beamline/gen_server.h"
#include "bl_test.h"

/* The hoarder's tags; a test's own tags stay below 0x7000. */
enum { T_GO = 0x7000, T_READY, T_STOP };

/* Waits for T_GO past any other message, answers T_READY to the pid arg
 * points at, then waits for T_STOP: what else it was sent stays queued. */
static void bl_test_hoarder(void *arg)
{
    bl_msg *go = bl_test_recv_tag(T_GO, 10000);
    BL_CHECK(go != NULL);
    bl_msg_free(go);
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_STOP, BL_INFINITY));
}

static void bl_test_gs_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    (void)m;
    bl_gs_reply(r, NULL, 0);
}

/* A gen_server whose every call is answered with no data. */
static const bl_gen_server bl_test_idle_gs = {.handle_call = bl_test_gs_call};

#endif /* BL_TEST_HOARD_H */
