/*
 * Scheduling: cross-scheduler wake storms, stealing, fairness, sleeping
 * timers.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_BALL = 1, T_DONE, T_STOP, T_RAN };

/* ---- cross-scheduler send/wake storms ---- */

typedef struct pp {
    bl_pid peer;
    bl_pid owner;
    int rounds;
} pp;

static void ponger(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(10000);
        if (!m) return;
        uint32_t tag = m->tag;
        bl_pid from = m->from;
        bl_msg_free(m);
        if (tag == T_STOP) return;
        bl_send(from, T_BALL, NULL, 0);
    }
}

static void pinger(void *arg)
{
    pp *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        bl_send(a->peer, T_BALL, NULL, 0);
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m && m->tag == T_BALL);
        bl_msg_free(m);
        if (!m) break;
    }
    bl_send(a->peer, T_STOP, NULL, 0);
    bl_send(a->owner, T_DONE, NULL, 0);
}

static void storm_main(void *arg)
{
    enum { PAIRS = 16 };
    pp args[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        bl_spawn_opts a = {.scheduler = 1 + i % 2}, b = {.scheduler = 2 - i % 2};
        args[i].owner = bl_self();
        args[i].rounds = BL_SCALE(5000);
        BL_CHECK_EQ(bl_spawn(&args[i].peer, ponger, NULL, &b), 0);
        BL_CHECK_EQ(bl_spawn(NULL, pinger, &args[i], &a), 0);
    }
    for (int i = 0; i < PAIRS; i++) {
        bl_msg *m = bl_receive(60000);
        BL_CHECK(m && m->tag == T_DONE);
        bl_msg_free(m);
    }
}

Test(sched, cross_scheduler_wake_storm, .timeout = 120)
{
    /* Both wake mechanisms, and with no spinning so schedulers really sleep. */
    bl_wake modes[] = {BL_WAKE_MSG_RING, BL_WAKE_EVENTFD};
    for (int i = 0; i < 2; i++) {
        bl_config c = {.schedulers = 2, .wake = modes[i], .no_spin = true};
        bl_test_run(&c, storm_main, NULL);
    }
}

/* ---- stealing on an unbalanced load ---- */

typedef struct hog_arg {
    bl_pid owner;
    _Atomic int *stop;
} hog_arg;

static void hog(void *arg)
{
    hog_arg *a = arg;
    int seen[2] = {0, 0};
    for (;;) {
        /* Where it runs is noted before looking at the flag: a hog stolen
         * just before the stop still counts where it was stolen to. */
        int s = bl_current_scheduler();
        if (s >= 0 && s < 2) seen[s] = 1;
        if (atomic_load(a->stop)) break;
        /* Busy work that calls the runtime. */
        for (volatile int k = 0; k < 1000; k++) {
        }
        bl_yield();
    }
    int mask = seen[0] | seen[1] << 1;
    bl_send(a->owner, T_RAN, &mask, sizeof mask);
}

static void steal_main(void *arg)
{
    enum { HOGS = 8 };
    _Atomic int stop = 0;
    hog_arg a = {bl_self(), &stop};
    /* Everything starts on scheduler 0; main itself waits on scheduler 0 too. */
    for (int i = 0; i < HOGS; i++) {
        bl_spawn_opts o = {.scheduler = 1};
        BL_CHECK_EQ(bl_spawn(NULL, hog, &a, &o), 0);
    }
    /* Wait until scheduler 1 has stolen something (bounded). */
    uint64_t deadline = bl__now_ns() + 20000000000ull;
    while (BL_STAT(bl__rt->scheds[1], stolen) == 0 && bl__now_ns() < deadline) bl_sleep(1);
    atomic_store(&stop, 1);
    int ran_on_1 = 0;
    for (int i = 0; i < HOGS; i++) {
        bl_msg *m = bl_test_recv_tag(T_RAN, 20000);
        BL_CHECK(m != NULL);
        if (m && (*(int *)m->data & 2)) ran_on_1++;
        bl_msg_free(m);
    }
    BL_CHECK(BL_STAT(bl__rt->scheds[1], steals) > 0);
    BL_CHECK(ran_on_1 > 0);
}

Test(sched, idle_scheduler_steals_unbalanced_load, .timeout = 60)
{
    bl_test_run(NULL, steal_main, NULL);
}

/* ---- fairness: a loop that calls the runtime cannot starve others ---- */

static void sender_hog(void *arg)
{
    _Atomic int *stop = arg;
    bl_pid self = bl_self();
    /* Never yields, never blocks: only the reductions budget preempts it. */
    while (!atomic_load(stop)) {
        bl_send(self, T_BALL, NULL, 0);
        bl_msg_free(bl_receive(0));
    }
}

static void fair_main(void *arg)
{
    /* The hogs read it until they see it set, so it outlives this frame,
     * and they are waited for: nothing of theirs runs after the test. */
    static _Atomic int stop;
    atomic_store(&stop, 0);
    bl_pid h1, h2;
    bl_ref r1, r2;
    BL_CHECK_EQ(bl_spawn(&h1, sender_hog, &stop, NULL), 0);
    BL_CHECK_EQ(bl_spawn(&h2, sender_hog, &stop, NULL), 0);
    BL_CHECK_EQ(bl_monitor(h1, &r1), 0);
    BL_CHECK_EQ(bl_monitor(h2, &r2), 0);
    /* With one scheduler, main only runs again if the hogs are preempted. */
    bl_pid self = bl_self();
    bl_send(self, T_DONE, NULL, 0);
    for (int i = 0; i < 100; i++) BL_CHECK_EQ(bl_yield(), 0);
    BL_CHECK_EQ(bl_sleep(5), 0);
    bl_msg *m = bl_test_recv_tag(T_DONE, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        bl_msg *d = bl_test_recv_tag(BL_TAG_DOWN, 10000);
        BL_CHECK(d != NULL);
        bl_msg_free(d);
    }
}

Test(sched, reductions_preempt_a_busy_loop)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, fair_main, NULL);
}

/* ---- many sleeping processes (timer wheel through the runtime) ---- */

static void sleeper(void *arg)
{
    bl_pid owner = *(bl_pid *)arg;
    uint64_t t0 = bl__now_ns();
    int ms = (int)(t0 % 50) + 10;
    BL_CHECK_EQ(bl_sleep(ms), 0);
    uint64_t late = bl__now_ns() - t0;
    BL_CHECK(late >= (uint64_t)ms * 1000000u); /* never early */
    bl_send(owner, T_DONE, NULL, 0);
}

static void sleepers_main(void *arg)
{
    uint32_t n = BL_SCALE(100000);
    bl_pid self = bl_self();
    bl_spawn_opts o = {.stack_size = 16384};
    for (uint32_t i = 0; i < n; i++) BL_CHECK_EQ(bl_spawn(NULL, sleeper, &self, &o), 0);
    /* Messages do not end a sleep early: flood one sleeper's... all replies arrive. */
    for (uint32_t i = 0; i < n; i++) {
        bl_msg *m = bl_receive(30000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
    }
}

Test(sched, hundred_thousand_sleepers, .timeout = 120)
{
    bl_test_run(NULL, sleepers_main, NULL);
}

static void sleep_ignores_mail(void *arg)
{
    bl_pid owner = *(bl_pid *)arg;
    uint64_t t0 = bl__now_ns();
    bl_send(owner, T_BALL, NULL, 0);
    BL_CHECK_EQ(bl_sleep(100), 0);
    BL_CHECK(bl__now_ns() - t0 >= 100000000u);
    BL_CHECK_EQ(bl_mailbox_len(), 50);
    bl_send(owner, T_DONE, NULL, 0);
}

static void sleep_mail_main(void *arg)
{
    bl_pid self = bl_self(), s;
    BL_CHECK_EQ(bl_spawn(&s, sleep_ignores_mail, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_BALL, 5000));
    for (int i = 0; i < 50; i++) bl_send(s, T_BALL, NULL, 0);
    bl_msg *m = bl_test_recv_tag(T_DONE, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
}

Test(sched, messages_do_not_end_a_sleep)
{
    bl_test_run(NULL, sleep_mail_main, NULL);
}
