/*
 * A wait timer armed on one scheduler and given up on another (its process
 * was stolen meanwhile) leaves the owner's wheel at the owner's next turn,
 * not at its deadline: one already in the wheel, and one given up before
 * the owner had a turn to file it (sched/wtimer.c).
 */
#include <errno.h>

#include "bl_test.h"

enum { T_WAKE = 1, T_WHERE, T_GO, T_ARM };

typedef struct ctx {
    bl_pid test;
    bl_pid sleeper, other[2];
    bool unfiled; /* the sleeper arms its timer while the driver runs */
} ctx;

/* Waits up to a minute (a timer on scheduler 0's wheel), then reports where it woke up. */
static void sleeper(void *arg)
{
    ctx *c = arg;
    if (c->unfiled) bl_msg_free(bl_test_recv_tag(T_ARM, BL_INFINITY));
    bl_msg_free(bl_test_recv_tag(T_WAKE, 60000));
    int where = bl_current_scheduler();
    bl_send(c->test, T_WHERE, &where, sizeof where);
}

/* Waits with no timer at all. */
static void other(void *arg)
{
    bl_msg_free(bl_test_recv_tag(T_WAKE, BL_INFINITY));
}

/*
 * On scheduler 0: wakes the sleeper and then the two others, each local
 * wake-up taking the runnext place and pushing the previous one into the
 * stealable queue (the sleeper first), then keeps the scheduler busy
 * without yielding, so that idle scheduler 1 steals the sleeper.
 */
static void driver(void *arg)
{
    ctx *c = arg;
    bl_msg_free(bl_test_recv_tag(T_GO, 10000));
    if (c->unfiled) {
        /* The sleeper runs next, arms its timer and parks, and the driver
         * goes on: the scheduler has had no turn to file that timer. */
        bl_send(c->sleeper, T_ARM, NULL, 0);
        bl_yield();
    }
    bl_send(c->sleeper, T_WAKE, NULL, 0);
    bl_send(c->other[0], T_WAKE, NULL, 0);
    bl_send(c->other[1], T_WAKE, NULL, 0);
    for (int64_t end = bl_test_ms() + 50; bl_test_ms() < end;) {
    }
}

static void abandoned_main(void *arg)
{
    if (bl_schedulers() < 2) return; /* needs two schedulers */
    bool unfiled = arg != NULL;
    int moved = 0;
    for (int attempt = 0; attempt < 50 && !moved; attempt++) {
        ctx c = {.test = bl_self(), .unfiled = unfiled};
        bl_spawn_opts on0 = {.scheduler = 1}; /* 1-based: scheduler 0 */
        bl_pid d;
        BL_CHECK_EQ(bl_spawn(&c.sleeper, sleeper, &c, &on0), 0);
        BL_CHECK_EQ(bl_spawn(&c.other[0], other, &c, &on0), 0);
        BL_CHECK_EQ(bl_spawn(&c.other[1], other, &c, &on0), 0);
        BL_CHECK_EQ(bl_spawn(&d, driver, &c, &on0), 0);
        /* The sleeper's 60 s timer and the driver's 10 s one are on
         * scheduler 0's wheel once both wait (the sleeper's not yet when
         * it waits for T_ARM, with no timer). */
        unsigned armed = unfiled ? 1 : 2;
        BL_TEST_UNTIL(bl_test_timers_on(0) >= armed, 10000);
        BL_CHECK_EQ(bl_test_timers_on(0), armed);
        BL_CHECK_EQ(bl_send(d, T_GO, NULL, 0), 0);
        bl_msg *m = bl_test_recv_tag(T_WHERE, 10000);
        BL_CHECK(m != NULL);
        int where = -1;
        if (m) memcpy(&where, m->data, sizeof where);
        bl_msg_free(m);
        /* Woken elsewhere: it gave its timer up on scheduler 0's wheel.
         * Whatever happened, the wheel is empty again long before the 60 s
         * deadline (bounded wait: 2 s of yields at most). */
        moved = where == 1;
        int64_t until = bl_test_ms() + 2000;
        while (bl_test_timers_on(0) != 0 && bl_test_ms() < until) bl_yield();
        BL_CHECK_EQ(bl_test_timers_on(0), 0);
    }
    /* Without a steal in 50 attempts the scenario did not happen: say so. */
    BL_CHECK(moved);
}

Test(abandoned_timers, freed_at_the_owners_next_turn, .timeout = 120)
{
    bl_test_run(NULL, abandoned_main, NULL);
}

Test(abandoned_timers, given_up_before_the_owner_filed_it, .timeout = 120)
{
    bl_test_run(NULL, abandoned_main, (void *)1);
}
