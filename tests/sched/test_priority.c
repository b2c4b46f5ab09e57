/*
 * Priorities: max and high strictly first, low one turn in eight.
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
