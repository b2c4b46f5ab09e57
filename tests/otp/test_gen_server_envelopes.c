/*
 * A call costs two envelopes, the request and the reply: the call's
 * monitor travels in the request and ends with the reply (proc/otp.h,
 * bl__call_send).  The monitor is still a monitor: a reply from another
 * process leaves it to the caller's demonitor, and a server that dies with
 * calls in hand or queued answers them with DOWN.
 */
#include <errno.h>

#include "beamline/gen_server.h"
#include "bl_test.h"

enum { Q_ECHO = 1, Q_DEFER, Q_BLOCK, Q_CRASH };
enum { T_CALLED = 1 };

static bl_pid worker; /* replies for Q_DEFER */

static void handle_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    uint32_t q = 0;
    if (m->len >= sizeof q) memcpy(&q, m->data, sizeof q);
    switch (q) {
    case Q_ECHO:
        bl_gs_reply(r, m->data, m->len);
        break;
    case Q_DEFER: {
        /* noreply: the worker answers for us. */
        bl_gs_from from = r->from;
        bl_send(worker, 1, &from, sizeof from);
        break;
    }
    case Q_BLOCK:
        /* Never answers: waits for a kill. */
        bl_msg_free(bl_receive(BL_INFINITY));
        break;
    case Q_CRASH:
        bl_exit(7);
        break;
    }
}

static const bl_gen_server server = {.handle_call = handle_call};

static void replier(void *arg)
{
    (void)arg;
    bl_msg *m = bl_receive(10000);
    if (!m) return;
    bl_gs_from from;
    memcpy(&from, m->data, sizeof from);
    bl_msg_free(m);
    uint32_t v = 42;
    bl_gen_server_reply(from, &v, sizeof v);
}

static uint64_t envelopes(void)
{
    bl_scheduler_stats st;
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &st), 0);
    return st.envelopes;
}

static uint32_t monitored_by(bl_pid pid)
{
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(pid, &info), 0);
    return info.nmonitored_by;
}

static int call(bl_pid s, uint32_t q, int64_t timeout)
{
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(s, 0, &q, sizeof q, &reply, timeout);
    bl_msg_free(reply);
    return rc;
}

static void two_main(void *arg)
{
    (void)arg;
    enum { CALLS = 1000 };
    bl_pid s;
    BL_CHECK_EQ(bl_gen_server_start(&s, &server, NULL, NULL), 0);
    uint64_t before = envelopes();
    for (int i = 0; i < CALLS; i++) BL_CHECK_EQ(call(s, Q_ECHO, 5000), 0);
    uint64_t used = envelopes() - before;
    /* Two per call; four if the monitor and demonitor went as signals. */
    BL_CHECK(used >= 2 * CALLS);
    BL_CHECK(used <= 2 * CALLS + 8);
    /* The server holds no monitor of a call it answered. */
    BL_CHECK_EQ(monitored_by(s), 0);
    BL_CHECK_EQ(bl_gen_server_stop(s, NULL, 5000), 0);
}

/* A start costs the ack (the starter's monitor ends with it: no demonitor),
 * a stop the request and the DOWN. */
static void start_stop_main(void *arg)
{
    (void)arg;
    enum { ROUNDS = 200 };
    uint64_t before = envelopes();
    for (int i = 0; i < ROUNDS; i++) {
        bl_pid s;
        BL_CHECK_EQ(bl_gen_server_start(&s, &server, NULL, NULL), 0);
        BL_CHECK_EQ(bl_gen_server_stop(s, NULL, 5000), 0);
    }
    uint64_t used = envelopes() - before;
    BL_CHECK(used >= 3 * ROUNDS);
    BL_CHECK(used <= 3 * ROUNDS + 8);
}

Test(gen_server_envelopes, a_start_and_a_stop_cost_three_envelopes)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, start_stop_main, NULL);
}

Test(gen_server_envelopes, a_call_costs_two_envelopes)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, two_main, NULL);
}

static void defer_main(void *arg)
{
    (void)arg;
    bl_pid s;
    BL_CHECK_EQ(bl_spawn(&worker, replier, NULL, NULL), 0);
    BL_CHECK_EQ(bl_gen_server_start(&s, &server, NULL, NULL), 0);
    bl_msg *reply = NULL;
    uint32_t q = Q_DEFER;
    BL_CHECK_EQ(bl_gen_server_call(s, 0, &q, sizeof q, &reply, 5000), 0);
    BL_CHECK(reply && reply->len == 4 && *(uint32_t *)reply->data == 42);
    bl_msg_free(reply);
    /* The worker's reply could not end the server's monitor: the caller's
     * demonitor did, before the info request that follows it. */
    BL_CHECK_EQ(monitored_by(s), 0);
    BL_CHECK_EQ(bl_gen_server_stop(s, NULL, 5000), 0);
}

Test(gen_server_envelopes, a_reply_from_another_process_leaves_the_monitor_to_the_caller)
{
    bl_test_run(NULL, defer_main, NULL);
}

typedef struct qctx {
    bl_pid server, owner;
    uint32_t q;
} qctx;

static void caller(void *arg)
{
    qctx *c = arg;
    int rc = call(c->server, c->q, 10000);
    bl_send(c->owner, T_CALLED, &rc, sizeof rc);
}

static void death_main(void *arg)
{
    (void)arg;
    bl_pid s, self = bl_self();
    bl_trap_exit(true);
    /* Dies in the call: the caller's DOWN carries the reason. */
    BL_CHECK_EQ(bl_gen_server_start(&s, &server, NULL, NULL), 0);
    BL_CHECK_EQ(call(s, Q_CRASH, 5000), -ECONNRESET);
    /* Killed with one call in hand and one queued behind it: both end. */
    BL_CHECK_EQ(bl_gen_server_start(&s, &server, NULL, NULL), 0);
    qctx blocked = {s, self, Q_BLOCK}, queued = {s, self, Q_ECHO};
    bl_pid c1, c2;
    BL_CHECK_EQ(bl_spawn(&c1, caller, &blocked, NULL), 0);
    /* The blocking call is in hand once the server holds its monitor. */
    BL_CHECK(BL_TEST_UNTIL(monitored_by(s) >= 1, 10000));
    BL_CHECK_EQ(bl_spawn(&c2, caller, &queued, NULL), 0);
    /* The queued call is in the mailbox once it shows there. */
    bl_proc_info info = {0};
    for (int64_t end = bl_test_ms() + 10000; bl_test_ms() < end;) {
        if (bl_process_info(s, &info) != 0 || info.message_queue_len + info.nmonitored_by >= 2)
            break;
        bl_yield();
    }
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(s, &kill), 0);
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_test_recv_tag(T_CALLED, 10000);
        BL_CHECK(m != NULL);
        int rc = 0;
        if (m) memcpy(&rc, m->data, sizeof rc);
        BL_CHECK(rc == -ECONNRESET || rc == -ESRCH);
        bl_msg_free(m);
    }
}

Test(gen_server_envelopes, a_server_that_dies_answers_calls_in_hand_and_queued, .timeout = 60)
{
    bl_test_run(NULL, death_main, NULL);
}
