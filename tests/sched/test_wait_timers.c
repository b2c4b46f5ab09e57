/*
 * Wait timers go into the wheel at their scheduler's next timer turn, their
 * timeout counted from there (sched/wtimer.c): a wait that ends first never
 * reaches the wheel and leaves nothing behind, and a timeout is never early,
 * however long ago the last turn was.
 */
#include <errno.h>

#include "bl_test.h"

enum { T_PING = 1, T_DONE, T_NEVER, CALLS = 2000, LONG_MS = 60000 };

typedef struct calls {
    bl_pid test, echo;
    int answered;
} calls;

/* CALLS receives, each with a minute's timeout, each answered within microseconds. */
static void caller(void *arg)
{
    calls *c = arg;
    for (int i = 0; i < CALLS; i++) {
        if (bl_send(c->echo, T_PING, NULL, 0) != 0) break;
        bl_msg *m = bl_test_recv_tag(T_PING, LONG_MS);
        if (!m) break;
        bl_msg_free(m);
        c->answered++;
    }
    bl_send(c->test, T_DONE, NULL, 0);
}

static void answered_main(void *arg)
{
    (void)arg;
    /* Both on the first scheduler (index 0 in its statistics): the echo
     * answers before the caller's timer has seen a turn, most of the time. */
    bl_spawn_opts on0 = {.scheduler = 1, .bound = true};
    calls c = {.test = bl_self()};
    BL_CHECK_EQ(bl_spawn(&c.echo, bl_test_echo, (void *)(uintptr_t)T_PING, &on0), 0);
    BL_CHECK_EQ(bl_spawn(NULL, caller, &c, &on0), 0);
    bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK_EQ(c.answered, CALLS);
    bl_send(c.echo, T_DONE, NULL, 0);
    /* Each of those timers was given up long before its minute: none is
     * left on the wheel once the scheduler has had a turn. */
    BL_CHECK(BL_TEST_UNTIL(bl_test_timers_on(0) == 0, 5000));
    BL_CHECK_EQ(bl_test_timers_on(0), 0);
}

Test(wait_timers, waits_that_end_first_leave_no_timer, .timeout = 120)
{
    bl_test_run(NULL, answered_main, NULL);
}

typedef struct early {
    bl_pid test;
    int64_t recv_ms, sleep_ms; /* how long each wait took */
    int recv_rc, sleep_rc;
} early;

enum { BUSY_MS = 100, WAIT_MS = 40 };

/* Keeps its scheduler from a turn for BUSY_MS (no switch at all), then waits. */
static void late_waiter(void *arg)
{
    early *e = arg;
    for (int64_t end = bl_test_ms() + BUSY_MS; bl_test_ms() < end;) {
    }
    int64_t t0 = bl_test_ms();
    bl_msg *m = NULL;
    e->recv_rc = bl_recv(&m, bl_match_tag, &(uint32_t){T_NEVER}, WAIT_MS, 0);
    int64_t t1 = bl_test_ms();
    for (int64_t end = t1 + BUSY_MS; bl_test_ms() < end;) {
    }
    int64_t t2 = bl_test_ms();
    e->sleep_rc = bl_sleep(WAIT_MS);
    e->sleep_ms = bl_test_ms() - t2;
    e->recv_ms = t1 - t0;
    bl_send(e->test, T_DONE, NULL, 0);
}

static void never_early_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 5; round++) {
        early e = {.test = bl_self()};
        bl_spawn_opts on0 = {.scheduler = 1, .bound = true};
        BL_CHECK_EQ(bl_spawn(NULL, late_waiter, &e, &on0), 0);
        bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
        BL_CHECK_EQ(e.recv_rc, -ETIMEDOUT);
        BL_CHECK_EQ(e.sleep_rc, 0);
        /* Counted from the wait, not from a turn BUSY_MS before it; and
         * not held long after (a loose bound: a loaded host is slow). */
        BL_CHECK(e.recv_ms >= WAIT_MS && e.recv_ms < WAIT_MS + 5000);
        BL_CHECK(e.sleep_ms >= WAIT_MS && e.sleep_ms < WAIT_MS + 5000);
    }
}

Test(wait_timers, timeouts_are_never_early, .timeout = 120)
{
    bl_test_run(NULL, never_early_main, NULL);
}
