/*
 * Priorities: max and high strictly first, low one turn in eight; and the
 * same against a pair of processes handing the core to each other through
 * runnext (the direct switch's quick pick, next_proc in sched/sched.c).
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_DONE = 1, T_RAN };

typedef struct hog {
    bl_pid owner;
    int yields;
    uint32_t tag;
} hog;

static void yielder(void *arg)
{
    hog *h = arg;
    for (int i = 0; i < h->yields; i++) bl_yield();
    bl_send(h->owner, h->tag, NULL, 0);
}

static void strict_main(void *arg)
{
    /* Spawned in order normal, high, max; they run max, high, normal. */
    hog n = {bl_self(), 100, 10}, h = {bl_self(), 1000, 20}, x = {bl_self(), 1000, 30};
    bl_spawn_opts on = {.priority = BL_PRIO_NORMAL}, oh = {.priority = BL_PRIO_HIGH},
                  om = {.priority = BL_PRIO_MAX};
    BL_CHECK_EQ(bl_spawn(NULL, yielder, &n, &on), 0);
    BL_CHECK_EQ(bl_spawn(NULL, yielder, &h, &oh), 0);
    BL_CHECK_EQ(bl_spawn(NULL, yielder, &x, &om), 0);
    uint32_t order[3];
    for (int i = 0; i < 3; i++) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        order[i] = m ? m->tag : 0;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(order[0], 30);
    BL_CHECK_EQ(order[1], 20);
    BL_CHECK_EQ(order[2], 10);
}

Test(priority, max_and_high_run_strictly_first)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, strict_main, NULL);
}

typedef struct counter {
    _Atomic int *stop;
    uint64_t turns;
    bl_pid owner;
} counter;

static void count_turns(void *arg)
{
    counter *c = arg;
    while (!atomic_load(c->stop)) {
        c->turns++;
        bl_yield();
    }
    bl_send(c->owner, T_DONE, NULL, 0);
}

static void share_main(void *arg)
{
    _Atomic int stop = 0;
    counter normal = {&stop, 0, bl_self()}, low = {&stop, 0, bl_self()};
    bl_spawn_opts on = {.priority = BL_PRIO_NORMAL}, ol = {.priority = BL_PRIO_LOW};
    BL_CHECK_EQ(bl_spawn(NULL, count_turns, &normal, &on), 0);
    BL_CHECK_EQ(bl_spawn(NULL, count_turns, &low, &ol), 0);
    /* Measure over a fixed number of turns, not a time. */
    uint64_t mine = 0;
    while (normal.turns + low.turns + mine < 80000) {
        mine++;
        bl_yield();
    }
    atomic_store(&stop, 1);
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    /* One pick in eight for low: 1/7 of the normal turns (this main
     * process is normal and yielding too, so its turns count). */
    double ratio = (double)low.turns / (double)(normal.turns + mine);
    BL_CHECK(low.turns > 0);
    BL_CHECK(ratio > 1.0 / 10 && ratio < 1.0 / 5);
    cr_log_info("low/normal turns: %llu / %llu = %.3f", (unsigned long long)low.turns,
                (unsigned long long)normal.turns, ratio);
}

Test(priority, low_gets_one_turn_in_eight)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, share_main, NULL);
}

static void set_main(void *arg)
{
    BL_CHECK_EQ(bl_set_priority(BL_PRIO_HIGH), BL_PRIO_NORMAL);
    BL_CHECK_EQ(bl_set_priority(BL_PRIO_LOW), BL_PRIO_HIGH);
    BL_CHECK_EQ(bl_set_priority((bl_priority)9), -EINVAL);
    BL_CHECK_EQ(bl_set_priority(BL_PRIO_NORMAL), BL_PRIO_LOW);
    /* A high process woken by a timer or a message still goes first. */
    BL_CHECK_EQ(bl_set_priority(BL_PRIO_HIGH), BL_PRIO_NORMAL);
    BL_CHECK_EQ(bl_sleep(1), 0);
    BL_CHECK_EQ(bl_yield(), 0);
}

Test(priority, set_priority)
{
    bl_test_run(NULL, set_main, NULL);
    cr_assert_eq(bl_set_priority(BL_PRIO_HIGH), -EPERM);
}

/* ---- against a pair handing off ---- */

/*
 * A pinger and a ponger exchange PAIR_ROUNDS messages on one scheduler, each
 * waking the other into runnext, so that every pick of a direct switch
 * finds runnext set and a slice to inherit.  What the lanes hold must still
 * run first: max and high at the next pick, low within eight, processes
 * woken by their timers before the pair goes on, a process placed here
 * explicitly (the overflow list) within 61.  Each records the round
 * it first ran in and exits without a message (a message would wake the
 * main process into runnext and stop the pair).
 */
enum { PAIR_ROUNDS = 3000, PAIR_AT = 100, LOW_AT = 200, BOUND_AT = 300, T_BALL = 40 };
/* Long enough that the sleepers' timers come due only in the pinger's hold,
 * even on a loaded machine. */
enum { SLEEPERS = 4, SLEEP_MS = 50 };

typedef struct pair {
    _Atomic long round;
    _Atomic long seen[SLEEPERS];
    bool timers; /* the pinger holds the core while the sleepers' timers come due */
    bl_pid owner, ponger;
} pair;

static pair *the_pair;

static void lane_proc(void *arg)
{
    atomic_store((_Atomic long *)arg, atomic_load(&the_pair->round));
}

/* Runs on without calling the runtime: the scheduler is held meanwhile. */
static void hold_core_ms(int64_t ms)
{
    int64_t end = bl_test_ms() + ms;
    while (bl_test_ms() < end) {
    }
}

static void pair_pinger(void *arg)
{
    pair *pr = arg;
    for (long r = 1; r <= PAIR_ROUNDS; r++) {
        atomic_store(&pr->round, r);
        if (r == PAIR_AT && !pr->timers) {
            /* Into the lanes, while the ponger waits in runnext. */
            bl_spawn_opts om = {.priority = BL_PRIO_MAX}, oh = {.priority = BL_PRIO_HIGH};
            BL_CHECK_EQ(bl_spawn(NULL, lane_proc, &pr->seen[0], &om), 0);
            BL_CHECK_EQ(bl_spawn(NULL, lane_proc, &pr->seen[1], &oh), 0);
        } else if (r == LOW_AT && !pr->timers) {
            /* Alone in its lane: the others are gone by now. */
            bl_spawn_opts ol = {.priority = BL_PRIO_LOW};
            BL_CHECK_EQ(bl_spawn(NULL, lane_proc, &pr->seen[2], &ol), 0);
        } else if (r == BOUND_AT && !pr->timers) {
            /* Placed here explicitly: through the inject queue to the
             * overflow list, which gets one pick in 61. */
            bl_spawn_opts ob = {.scheduler = 1, .bound = true};
            BL_CHECK_EQ(bl_spawn(NULL, lane_proc, &pr->seen[3], &ob), 0);
        } else if (r == PAIR_AT) {
            /* Every sleeper's timer comes due now: the next timer turn
             * fires them together. */
            hold_core_ms(SLEEP_MS + 10);
        }
        BL_CHECK_EQ(bl_send(pr->ponger, T_BALL, NULL, 0), 0);
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    bl_send(pr->ponger, T_DONE, NULL, 0);
    bl_send(pr->owner, T_DONE, NULL, 0);
}

static void sleeper(void *arg)
{
    _Atomic long *seen = arg;
    bl_send(the_pair->owner, T_RAN, NULL, 0);
    BL_CHECK_EQ(bl_sleep(SLEEP_MS), 0);
    atomic_store(seen, atomic_load(&the_pair->round));
}

static void pair_main(void *arg)
{
    static pair pr;
    pr = (pair){.timers = arg != NULL, .owner = bl_self()};
    the_pair = &pr;
    if (pr.timers) {
        /* The sleepers arm their timers before the pair starts. */
        for (int i = 0; i < SLEEPERS; i++)
            BL_CHECK_EQ(bl_spawn(NULL, sleeper, &pr.seen[i], NULL), 0);
        for (int i = 0; i < SLEEPERS; i++) bl_msg_free(bl_test_recv_tag(T_RAN, 10000));
    }
    BL_CHECK_EQ(bl_spawn(&pr.ponger, bl_test_echo, (void *)(uintptr_t)T_BALL, NULL), 0);
    BL_CHECK_EQ(bl_spawn(NULL, pair_pinger, &pr, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 30000));
    long s0 = atomic_load(&pr.seen[0]), s1 = atomic_load(&pr.seen[1]),
         s2 = atomic_load(&pr.seen[2]), s3 = atomic_load(&pr.seen[3]);
    if (!pr.timers) {
        cr_log_info("max and high spawned at round %d ran at %ld and %ld; low spawned at %d ran at "
                    "%ld; a bound one spawned at %d ran at %ld",
                    PAIR_AT, s0, s1, LOW_AT, s2, BOUND_AT, s3);
        BL_CHECK_EQ(s0, PAIR_AT);
        BL_CHECK_EQ(s1, PAIR_AT);
        /* One pick in eight for low; a round is two picks. */
        BL_CHECK(s2 >= LOW_AT && s2 <= LOW_AT + 4);
        /* One pick in 61 for the overflow list. */
        BL_CHECK(s3 >= BOUND_AT && s3 <= BOUND_AT + 32);
        return;
    }
    cr_log_info("timers due at round %d: the sleepers ran at %ld %ld %ld %ld", PAIR_AT, s0, s1, s2,
                s3);
    /* At the first timer turn after the hold (the loop's turn comes every
     * 64 picks), all four, before the pair's next round. */
    BL_CHECK(s0 <= PAIR_AT + 40);
    BL_CHECK(s1 == s0 && s2 == s0 && s3 == s0);
}

Test(priority, a_pair_handing_off_gives_way_to_the_lanes_and_placed_processes, .timeout = 60)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, pair_main, NULL);
}

Test(priority, timer_woken_processes_run_before_a_pair_handing_off, .timeout = 60)
{
    bl_config c = {.schedulers = 1, .no_long_schedule = true};
    bl_test_run(&c, pair_main, (void *)1);
}
