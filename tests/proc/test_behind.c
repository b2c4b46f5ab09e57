/*
 * Senders to a receiver that is behind pay for it (BL_META_LONGQ,
 * proc/process.c bl__push): on one scheduler, ten flooders and their
 * receiver share the CPU, and without the charge the receiver gets one
 * slice in eleven, so the flood queues nine tenths of itself before the
 * receiver sees it.  With the charge the receiver keeps up.
 */
#include <stdatomic.h>

#include "bl_test.h"

enum { T_FLOOD = 1, T_DURING, FLOODERS = 10, EACH = 20000 };

typedef struct flood {
    bl_pid receiver, test;
    _Atomic int finished; /* flooders done sending */
} flood;

static void flooder(void *arg)
{
    flood *f = arg;
    for (int i = 0; i < EACH; i++) BL_CHECK_EQ(bl_send(f->receiver, T_FLOOD, &i, sizeof i), 0);
    atomic_fetch_add(&f->finished, 1);
}

/* Receives the whole flood; reports how much of it came while it still flowed. */
static void receiver(void *arg)
{
    flood *f = arg;
    long during = 0;
    for (long n = 0; n < (long)FLOODERS * EACH; n++) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
        if (atomic_load(&f->finished) < FLOODERS) during++;
    }
    bl_send(f->test, T_DURING, &during, sizeof during);
}

static void behind_main(void *arg)
{
    (void)arg;
    static flood f;
    f = (flood){.test = bl_self()};
    BL_CHECK_EQ(bl_spawn(&f.receiver, receiver, &f, NULL), 0);
    for (int i = 0; i < FLOODERS; i++) BL_CHECK_EQ(bl_spawn(NULL, flooder, &f, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_DURING, 60000);
    BL_CHECK(m != NULL);
    if (!m) return;
    long during;
    memcpy(&during, m->data, sizeof during);
    bl_msg_free(m);
    cr_log_info("received while the flood flowed: %ld of %d", during, FLOODERS * EACH);
    BL_CHECK(during > (long)FLOODERS * EACH / 2);
}

Test(behind, a_flood_gives_way_to_its_receiver, .timeout = 120)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, behind_main, NULL);
}

/*
 * A sender's messages to a receiver that is behind are held and pushed
 * together (sched.h's outbox).  Held or not, they keep their order with the
 * sender's later signals to the same receiver, and none stays held once the
 * sender waits.  The receiver R, bound to scheduler 2, is made behind by a
 * drain of 600 messages, then runs without draining (so it stays behind)
 * while the sender S, bound to scheduler 1, sends: HELD_A messages, an exit
 * signal (R traps exits), HELD_B more and a question, and waits for the
 * answer.  Without the push before the signal, the EXIT comes first;
 * without the push at the switch, S waits for an answer to a question R
 * never gets.
 */
enum { T_FILL = 10, T_SEQ, T_ASK, T_ANSWER, T_OUTCOME, FILL = 600, HELD_A = 30, HELD_B = 20 };

typedef struct held {
    bl_pid test, r, s;
    _Atomic int phase; /* 1: R may drain the fill; 2: R is behind; 3: S waits */
    _Atomic int r_ready;
} held;

static bool spin_until(_Atomic int *x, int v, int64_t ms)
{
    int64_t end = bl_test_ms() + ms;
    while (atomic_load(x) < v)
        if (bl_test_ms() >= end) return false;
    return true;
}

static void held_receiver(void *arg)
{
    held *h = arg;
    bl_trap_exit(true);
    atomic_store(&h->r_ready, 1);
    int ok = spin_until(&h->phase, 1, 20000);
    /* One drain takes the whole fill: R is behind from here on. */
    for (int i = 0; ok && i < FILL; i++) {
        bl_msg *m = bl_receive(10000);
        ok = m && m->tag == T_FILL;
        bl_msg_free(m);
    }
    atomic_store(&h->phase, 2);
    /* Busy, as a receiver behind is: no drain, no park, until S waits. */
    ok = ok && spin_until(&h->phase, 3, 20000);
    int seen = 0;
    for (int i = 0; ok && i < HELD_A + 1 + HELD_B + 1; i++, seen++) {
        bl_msg *m = bl_receive(10000);
        if (!m) {
            ok = 0;
            break;
        }
        if (i < HELD_A || (i > HELD_A && i <= HELD_A + HELD_B)) {
            int k = -1;
            if (m->tag == T_SEQ) memcpy(&k, m->data, sizeof k);
            ok = k == (i < HELD_A ? i : i - 1);
        } else if (i == HELD_A) {
            bl_reason why;
            ok = m->tag == BL_TAG_EXIT && m->from == h->s && bl_msg_reason(m, &why) == 0 &&
                 why.kind == BL_CUSTOM && why.code == 7;
        } else {
            ok = m->tag == T_ASK && bl_send(h->s, T_ANSWER, NULL, 0) == 0;
        }
        bl_msg_free(m);
    }
    bl_send(h->test, T_OUTCOME, &seen, sizeof seen);
}

static void held_sender(void *arg)
{
    held *h = arg;
    for (int i = 0; i < HELD_A; i++) BL_CHECK_EQ(bl_send(h->r, T_SEQ, &i, sizeof i), 0);
    bl_reason why = {.kind = BL_CUSTOM, .code = 7};
    BL_CHECK_EQ(bl_exit_pid(h->r, &why), 0);
    for (int i = HELD_A; i < HELD_A + HELD_B; i++)
        BL_CHECK_EQ(bl_send(h->r, T_SEQ, &i, sizeof i), 0);
    BL_CHECK_EQ(bl_send(h->r, T_ASK, NULL, 0), 0);
    atomic_store(&h->phase, 3);
    BL_CHECK(bl_test_recv_tag(T_ANSWER, 20000) != NULL);
}

static void held_driver(void *arg)
{
    (void)arg;
    static held h;
    h = (held){.test = bl_self()};
    bl_spawn_opts on2 = {.scheduler = 2, .bound = true}, on1 = {.scheduler = 1, .bound = true};
    BL_CHECK_EQ(bl_spawn(&h.r, held_receiver, &h, &on2), 0);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&h.r_ready), 20000));
    for (int i = 0; i < FILL; i++) BL_CHECK_EQ(bl_send(h.r, T_FILL, NULL, 0), 0);
    atomic_store(&h.phase, 1);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&h.phase) >= 2, 20000));
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&h.s, &ref, held_sender, &h, &on1), 0);
    bl_msg *m = bl_test_recv_tag(T_OUTCOME, 60000);
    BL_CHECK(m != NULL);
    int seen = -1;
    if (m) memcpy(&seen, m->data, sizeof seen);
    bl_msg_free(m);
    BL_CHECK_EQ(seen, HELD_A + 1 + HELD_B + 1);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 20000, 0), 0);
    bl_msg_free(m);
}

/* Runs *arg (a bl_entry_fn) on scheduler 1, away from the receiver that busies scheduler 2. */
static void on_first(void *arg)
{
    bl_entry_fn fn = *(bl_entry_fn *)arg;
    bl_spawn_opts on1 = {.scheduler = 1, .bound = true};
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(NULL, &ref, fn, NULL, &on1), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 90000, 0), 0);
    bl_msg_free(m);
}

Test(behind, held_messages_keep_order_and_none_stays_held, .timeout = 120)
{
    bl_entry_fn fn = held_driver;
    for (int round = 0; round < 3; round++) bl_test_run(NULL, on_first, &fn);
}

/*
 * Messages held for a receiver that dies before they are pushed are dropped
 * with it, each freed once: the receiver R exits while the sender S holds
 * them, and S's switch pushes to a dead pid.
 */
typedef struct gone {
    bl_pid r;
    _Atomic int held, r_up;
} gone;

static void gone_receiver(void *arg)
{
    gone *g = arg;
    atomic_store(&g->r_up, 1);
    BL_CHECK(spin_until(&g->r_up, 2, 20000));
    for (int i = 0; i < FILL; i++) bl_msg_free(bl_receive(10000));
    atomic_store(&g->r_up, 3);
    /* Behind; exits once S holds messages for it. */
    BL_CHECK(spin_until(&g->held, 1, 20000));
}

static void gone_sender(void *arg)
{
    gone *g = arg;
    for (int i = 0; i < HELD_A; i++) BL_CHECK_EQ(bl_send(g->r, T_SEQ, &i, sizeof i), 0);
    atomic_store(&g->held, 1);
    int64_t end = bl_test_ms() + 20000;
    while (bl_is_alive(g->r) && bl_test_ms() < end) {
    }
    BL_CHECK(!bl_is_alive(g->r));
    bl_yield(); /* the switch pushes to the dead pid */
}

static void gone_driver(void *arg)
{
    (void)arg;
    static gone g;
    g = (gone){0};
    bl_spawn_opts on2 = {.scheduler = 2, .bound = true}, on1 = {.scheduler = 1, .bound = true};
    bl_ref rr, sr;
    BL_CHECK_EQ(bl_spawn_monitor(&g.r, &rr, gone_receiver, &g, &on2), 0);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&g.r_up), 20000));
    for (int i = 0; i < FILL; i++) BL_CHECK_EQ(bl_send(g.r, T_FILL, NULL, 0), 0);
    atomic_store(&g.r_up, 2);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&g.r_up) == 3, 20000));
    bl_pid s;
    BL_CHECK_EQ(bl_spawn_monitor(&s, &sr, gone_sender, &g, &on1), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &sr, 30000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &rr, 30000, 0), 0);
    bl_msg_free(m);
}

Test(behind, held_messages_to_a_dead_receiver_are_dropped, .timeout = 120)
{
    bl_entry_fn fn = gone_driver;
    for (int round = 0; round < 3; round++) bl_test_run(NULL, on_first, &fn);
}
