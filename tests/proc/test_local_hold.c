/*
 * A sender's messages to the process queued to run next on its own
 * scheduler (runnext: woken or spawned by the sender) are held and pushed
 * together when the sender switches out, or every BL_OUTBOX_MAX
 * (proc/process.c bl__push).  Held or not, they all arrive, in order with
 * the sender's signals to the same receiver; and a receiver that can run
 * elsewhere meanwhile (here: bound to the other scheduler) gets them at
 * once, while the sender is still running.
 */
#include <stdatomic.h>

#include "bl_test.h"

enum { T_READY = 1, T_SEQ, T_ASK, T_ANSWER, T_OUTCOME, BEFORE = 150, AFTER = 150 };

typedef struct burst {
    bl_pid test, s;
    bool wait_first; /* the receiver first waits for mail (woken), else it is fresh (spawned) */
} burst;

/*
 * Checks BEFORE messages, the sender's exit signal, AFTER more and a
 * question.  A fresh receiver is sent an exit signal with reason normal,
 * which it ignores (it does not trap exits yet when the signal is acted on,
 * at its first switch-in), and the rest must come in order around it.
 */
static void burst_receiver(void *arg)
{
    burst *b = arg;
    bl_trap_exit(true);
    if (b->wait_first) bl_send(b->s, T_READY, NULL, 0);
    int seen = 0, ok = 1, n = BEFORE + AFTER + 1 + b->wait_first;
    for (int i = 0; ok && seen < n; i++, seen++) {
        if (!b->wait_first && i == BEFORE) i++; /* no EXIT */
        bl_msg *m = bl_receive(10000);
        if (!m) {
            ok = 0;
            break;
        }
        if (i < BEFORE || (i > BEFORE && i <= BEFORE + AFTER)) {
            int k = -1;
            if (m->tag == T_SEQ && m->len == sizeof k) memcpy(&k, m->data, sizeof k);
            ok = k == (i < BEFORE ? i : i - 1);
        } else if (i == BEFORE) {
            bl_reason why;
            ok = m->tag == BL_TAG_EXIT && m->from == b->s && bl_msg_reason(m, &why) == 0 &&
                 why.kind == BL_CUSTOM && why.code == 7;
        } else {
            ok = m->tag == T_ASK && bl_send(b->s, T_ANSWER, NULL, 0) == 0;
        }
        bl_msg_free(m);
    }
    if (!ok) seen = -1; /* one out of place */
    bl_send(b->test, T_OUTCOME, &seen, sizeof seen);
}

static void burst_sender(void *arg)
{
    burst *b = arg;
    b->s = bl_self();
    bl_pid r;
    bl_spawn_opts here = {.scheduler = bl_current_scheduler() + 1};
    BL_CHECK_EQ(bl_spawn(&r, burst_receiver, b, &here), 0);
    /* Waiting for mail: the first message wakes it into this scheduler's runnext. */
    if (b->wait_first) BL_CHECK(bl_test_recv_tag(T_READY, 20000) != NULL);
    for (int i = 0; i < BEFORE; i++) BL_CHECK_EQ(bl_send(r, T_SEQ, &i, sizeof i), 0);
    bl_reason why = {.kind = BL_CUSTOM, .code = 7};
    if (!b->wait_first) why = BL_REASON(BL_NORMAL);
    BL_CHECK_EQ(bl_exit_pid(r, &why), 0);
    for (int i = BEFORE; i < BEFORE + AFTER; i++) BL_CHECK_EQ(bl_send(r, T_SEQ, &i, sizeof i), 0);
    BL_CHECK_EQ(bl_send(r, T_ASK, NULL, 0), 0);
    BL_CHECK(bl_test_recv_tag(T_ANSWER, 20000) != NULL);
}

static void burst_driver(void *arg)
{
    burst b = {.test = bl_self(), .wait_first = *(bool *)arg};
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(NULL, &ref, burst_sender, &b, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_OUTCOME, 60000);
    BL_CHECK(m != NULL);
    int seen = -1;
    if (m) memcpy(&seen, m->data, sizeof seen);
    bl_msg_free(m);
    BL_CHECK_EQ(seen, BEFORE + AFTER + 1 + b.wait_first);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 20000, 0), 0);
    bl_msg_free(m);
}

/* Three rounds on one scheduler and on two. */
static void bursts(bool wait_first)
{
    bl_config one = {.schedulers = 1};
    for (int round = 0; round < 3; round++) {
        bl_test_run(&one, burst_driver, &wait_first);
        bl_test_run(NULL, burst_driver, &wait_first);
    }
}

Test(local_hold, a_burst_to_a_woken_process_arrives_whole_and_in_order, .timeout = 120)
{
    bursts(true);
}

Test(local_hold, a_burst_to_a_fresh_child_arrives_whole_and_in_order, .timeout = 120)
{
    bursts(false);
}

/*
 * The receiver R, bound to scheduler 2, waits for mail; the sender S, on
 * scheduler 1, sends it COUNT messages and then, without switching out,
 * watches R count them.  R runs on its own core as soon as the first one
 * wakes it: none of them may be held for S's switch, which would never
 * come.  Holding for any process a sender woke, instead of only for one
 * queued behind it, fails here.
 */
enum { COUNT = 10 };

typedef struct away {
    bl_pid r;
    _Atomic int ready, got;
} away;

static void away_receiver(void *arg)
{
    away *a = arg;
    atomic_store(&a->ready, 1);
    for (int i = 0; i < COUNT; i++) {
        bl_msg *m = bl_receive(20000);
        if (!m) return;
        bl_msg_free(m);
        atomic_fetch_add(&a->got, 1);
    }
}

static void away_sender(void *arg)
{
    away *a = arg;
    for (int i = 0; i < COUNT; i++) BL_CHECK_EQ(bl_send(a->r, T_SEQ, &i, sizeof i), 0);
    int64_t end = bl_test_ms() + 10000;
    while (atomic_load(&a->got) < COUNT && bl_test_ms() < end) {
    }
    BL_CHECK_EQ(atomic_load(&a->got), COUNT);
}

static void away_driver(void *arg)
{
    (void)arg;
    static away a;
    a = (away){0};
    bl_spawn_opts on2 = {.scheduler = 2, .bound = true}, on1 = {.scheduler = 1, .bound = true};
    bl_ref rr, sr;
    BL_CHECK_EQ(bl_spawn_monitor(&a.r, &rr, away_receiver, &a, &on2), 0);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&a.ready), 20000));
    BL_CHECK_EQ(bl_spawn_monitor(NULL, &sr, away_sender, &a, &on1), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &sr, 30000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &rr, 30000, 0), 0);
    bl_msg_free(m);
}

Test(local_hold, a_receiver_on_another_scheduler_gets_each_message_at_once, .timeout = 120)
{
    bl_config two = {.schedulers = 2};
    for (int round = 0; round < 5; round++) bl_test_run(&two, away_driver, NULL);
}
