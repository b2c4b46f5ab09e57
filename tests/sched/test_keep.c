/*
 * Idle handlers that keep their stacks (sched/keep.c).  A handler on
 * scheduler 2 parks keeping its stack after each message, and scheduler 2
 * takes the stack back when it runs out of work, by ending the handler's
 * wait as a timer would.  Messages from scheduler 1 race with that: each
 * must still reach its handler, in order, and wake it exactly once.
 */
#include <stdatomic.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_CAST = 1, T_SYNC, T_DONE, SERVERS = 20, SENDERS = 2, ROUNDS = BL_SCALE(40000), BURST = 4 };

typedef struct srv {
    int next[SERVERS]; /* per server: the number its next cast must carry */
    _Atomic int bad;   /* casts out of order */
} srv;

typedef struct one {
    srv *shared;
    int id;
} one;

static int h_init(void *arg, void **state)
{
    *state = arg;
    return 0;
}

static int h_handle(void *state, bl_msg *m)
{
    one *o = state;
    if (m->tag == T_CAST) {
        int n;
        memcpy(&n, m->data, sizeof n);
        if (n != o->shared->next[o->id]) atomic_fetch_add(&o->shared->bad, 1);
        o->shared->next[o->id] = n + 1;
    } else if (m->tag == T_SYNC) {
        bl_send(m->from, T_DONE, &o->id, sizeof o->id);
    }
    return 0;
}

static const bl_handler handler = {.init = h_init, .handle = h_handle};

/* On scheduler 1, two of them: bursts of casts to one of their servers
 * after another, a call-like sync after each, and a pause of a few microseconds now and then, so
 * that scheduler 2 finds itself idle and takes the kept stacks back just as the next burst comes.
 */
typedef struct job {
    bl_pid *pids;
    int first; /* its servers: first, first + SENDERS, ... */
} job;

static void sender(void *arg)
{
    job *j = arg;
    bl_pid *pids = j->pids;
    int sent[SERVERS] = {0};
    uint64_t seed = 0x9e3779b97f4a7c15u + (uint64_t)j->first, end = bl__now_ns() + 60000000000u;
    for (int r = 0; r < ROUNDS && bl__now_ns() < end; r++) {
        int s = (j->first + r * SENDERS) % SERVERS;
        for (int i = 0; i < BURST; i++) {
            BL_CHECK_EQ(bl_send(pids[s], T_CAST, &sent[s], sizeof sent[s]), 0);
            sent[s]++;
        }
        BL_CHECK_EQ(bl_send(pids[s], T_SYNC, NULL, 0), 0);
        bl_msg *m = bl_test_recv_tag(T_DONE, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t spin = (seed >> 33) % 20000; /* 0-20 us */
        uint64_t until = bl__now_ns() + spin;
        while (bl__now_ns() < until) {
        }
    }
    BL_CHECK_EQ(bl_send(pids[SERVERS], T_DONE, NULL, 0), 0);
}

static void keep_main(void *arg)
{
    (void)arg;
    static srv shared;
    static one ones[SERVERS];
    shared = (srv){0};
    bl_pid pids[SERVERS + 1];
    bl_spawn_opts on2 = {.scheduler = 2, .bound = true}, on1 = {.scheduler = 1, .bound = true};
    for (int i = 0; i < SERVERS; i++) {
        ones[i] = (one){&shared, i};
        BL_CHECK_EQ(bl_spawn_handler(&pids[i], &handler, &ones[i], &on2), 0);
    }
    pids[SERVERS] = bl_self();
    bl_scheduler_stats a, b;
    BL_CHECK_EQ(bl_scheduler_stats_get(1, &a), 0);
    job jobs[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        jobs[i] = (job){pids, i};
        BL_CHECK_EQ(bl_spawn(NULL, sender, &jobs[i], &on1), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 120000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_scheduler_stats_get(1, &b), 0);
    int total = 0;
    for (int i = 0; i < SERVERS; i++) total += shared.next[i];
    cr_log_info("casts %d, keeps %llu, sheds %llu", total,
                (unsigned long long)(b.stack_keeps - a.stack_keeps),
                (unsigned long long)(b.stack_sheds - a.stack_sheds));
    BL_CHECK_EQ(atomic_load(&shared.bad), 0);
    BL_CHECK_EQ(total, SENDERS * ROUNDS * BURST);
    /* Both paths ran: handlers resumed on kept stacks, and kept stacks were taken back. */
    BL_CHECK(b.stack_keeps - a.stack_keeps > 0);
    BL_CHECK(b.stack_sheds - a.stack_sheds > 0);
    for (int i = 0; i < SERVERS; i++) {
        bl_reason kill = BL_REASON(BL_KILL);
        BL_CHECK_EQ(bl_exit_pid(pids[i], &kill), 0);
    }
}

Test(keep, kept_stacks_taken_back_as_mail_comes_from_another_core, .timeout = 180)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, keep_main, NULL);
}
