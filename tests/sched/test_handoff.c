/*
 * Direct switches and spawn placement (sched/sched.c, bl__sched_handoff):
 *  - processes that keep switching straight to each other still leave the
 *    loop its turn, so timers fire and I/O completes among them;
 *  - a yield passes the CPU to the next process in order, and a process
 *    that parks with its message already there runs again;
 *  - a child spawned on its parent's scheduler waits in the runnext slot,
 *    where an idle peer cannot steal it before its first run, and children
 *    still start in the order they were spawned;
 *  - a process woken from another scheduler moves to the waker's, so
 *    partners meet on one core; a bound process never moves;
 *  - a process gone to wait for mail with nothing else to run on its
 *    scheduler is watched a moment before it parks: mail from another core
 *    finds it awake; never while another process is runnable there, never
 *    with spinning off, and a kill still ends it;
 *  - a successor that parked near its guard page, which would settle its
 *    predecessor on what is left of its stack, runs from the loop instead.
 */
#include <errno.h>

#include "bl_test.h"
#include "deep_stack.h"
#include "sched/sched.h"

enum { T_BALL = 1, T_DONE, T_STOP, T_WHERE, T_TOKEN };

/* ---- the loop's turn among direct switches ---- */

typedef struct pair {
    bl_pid peer;
    _Atomic int *stop;
} pair;

/* Bounces a ball with its peer until told to stop: every switch a direct one. */
static void bouncer(void *arg)
{
    pair *p = arg;
    for (int i = 0; i < 100000000 && !atomic_load(p->stop); i++) {
        bl_send(p->peer, T_BALL, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_BALL, 10000);
        if (!m) return;
        bl_msg_free(m);
    }
    bl_send(p->peer, T_BALL, NULL, 0); /* lets the peer out of its receive */
}

static void turn_main(void *arg)
{
    (void)arg;
    _Atomic int stop = 0;
    pair a = {.stop = &stop}, b = {.stop = &stop};
    bl_pid pa, pb;
    BL_CHECK_EQ(bl_spawn(&pa, bouncer, &a, NULL), 0);
    b.peer = pa;
    BL_CHECK_EQ(bl_spawn(&pb, bouncer, &b, NULL), 0);
    a.peer = pb;
    /* The pair starts once both know each other: a's first send goes to pb. */
    bl_send(pa, T_BALL, NULL, 0);
    /* A timed receive and a sleep among them: both need the loop's timer
     * turn.  Each is bounded by the test's timeout if it never comes. */
    bl_msg *m = NULL;
    uint32_t tag = T_DONE;
    BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &tag, 20, 0), -ETIMEDOUT);
    BL_CHECK_EQ(bl_sleep(5), 0);
    atomic_store(&stop, 1);
    bl_ref ra, rb;
    BL_CHECK_EQ(bl_monitor(pa, &ra), 0);
    BL_CHECK_EQ(bl_monitor(pb, &rb), 0);
    BL_CHECK(bl_test_recv_tag(BL_TAG_DOWN, 10000) != NULL);
    BL_CHECK(bl_test_recv_tag(BL_TAG_DOWN, 10000) != NULL);
}

Test(handoff, timers_fire_among_direct_switches, .timeout = 60)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, turn_main, NULL);
}

/* ---- yields pass the CPU in order ---- */

enum { YIELDERS = 4, YIELDS = 1000 };

typedef struct yctx {
    _Atomic int order[YIELDERS * YIELDS];
    _Atomic int at;
    bl_pid owner;
} yctx;

typedef struct yarg {
    yctx *c;
    int id;
} yarg;

static void yielder(void *arg)
{
    yarg *y = arg;
    for (int i = 0; i < YIELDS; i++) {
        y->c->order[atomic_fetch_add(&y->c->at, 1)] = y->id;
        bl_yield();
    }
    bl_send(y->c->owner, T_DONE, NULL, 0);
}

static void yield_main(void *arg)
{
    (void)arg;
    static yctx c;
    yarg y[YIELDERS];
    c.owner = bl_self();
    atomic_store(&c.at, 0);
    for (int i = 0; i < YIELDERS; i++) {
        y[i] = (yarg){&c, i};
        BL_CHECK_EQ(bl_spawn(NULL, yielder, &y[i], NULL), 0);
    }
    for (int i = 0; i < YIELDERS; i++) bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    BL_CHECK_EQ(atomic_load(&c.at), YIELDERS * YIELDS);
    /* Round robin: each yield hands over to the next, and the yielder
     * queues behind the others, so the order repeats 0 1 2 3. */
    int bad = 0;
    for (int i = 0; i < YIELDERS * YIELDS; i++)
        if (atomic_load(&c.order[i]) != i % YIELDERS) bad++;
    BL_CHECK_EQ(bad, 0);
}

Test(handoff, yields_go_round_robin)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, yield_main, NULL);
}

/* ---- spawn placement ---- */

typedef struct sctx {
    _Atomic int ran[3];
    _Atomic int order;
    int first_at[3];
    bl_pid owner;
} sctx;

typedef struct sarg {
    sctx *c;
    int id;
} sarg;

static void child(void *arg)
{
    sarg *a = arg;
    a->c->first_at[a->id] = atomic_fetch_add(&a->c->order, 1);
    atomic_store(&a->c->ran[a->id], 1);
    int where = bl_current_scheduler();
    bl_send_ref(a->c->owner, T_WHERE, (bl_ref)a->id, &where, sizeof where);
}

static void placement_main(void *arg)
{
    (void)arg;
    static sctx c;
    sarg a[3];
    int ran_early = 0, moved = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        c = (sctx){.owner = bl_self()};
        int here = bl_current_scheduler();
        for (int i = 0; i < 3; i++) {
            a[i] = (sarg){&c, i};
            BL_CHECK_EQ(bl_spawn(NULL, child, &a[i], NULL), 0);
        }
        /* Two children queue where a thief may take them, which wakes the
         * idle peer; the first waits in runnext.  Busy for 20 ms without
         * calling the runtime: only a thief could start a child meanwhile. */
        for (uint64_t end = bl__now_ns() + 20000000u; bl__now_ns() < end;) {
        }
        if (atomic_load(&c.ran[0])) ran_early++;
        int where[3] = {-1, -1, -1};
        for (int i = 0; i < 3; i++) {
            bl_msg *m = bl_test_recv_tag(T_WHERE, 10000);
            BL_CHECK(m != NULL);
            if (m && m->ref < 3) memcpy(&where[m->ref], m->data, sizeof(int));
            bl_msg_free(m);
        }
        if (where[0] != here) moved++;
    }
    /* The first child never ran before its parent gave up the CPU, and it
     * ran on its parent's scheduler. */
    BL_CHECK_EQ(ran_early, 0);
    BL_CHECK_EQ(moved, 0);
}

Test(handoff, spawned_child_is_not_stolen_before_its_first_run, .timeout = 60)
{
    bl_test_run(NULL, placement_main, NULL);
}

static void order_main(void *arg)
{
    (void)arg;
    static sctx c;
    sarg a[3];
    c = (sctx){.owner = bl_self()};
    for (int i = 0; i < 3; i++) {
        a[i] = (sarg){&c, i};
        BL_CHECK_EQ(bl_spawn(NULL, child, &a[i], NULL), 0);
    }
    for (int i = 0; i < 3; i++) bl_msg_free(bl_test_recv_tag(T_WHERE, 10000));
    for (int i = 0; i < 3; i++) BL_CHECK_EQ(c.first_at[i], i);
}

Test(handoff, children_start_in_spawn_order)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, order_main, NULL);
}

/* ---- busy processes are not offered to thieves at a moment's idleness ---- */

enum { ROUNDS = 200000 };

typedef struct mctx {
    bl_pid owner;
    _Atomic int moves;
    _Atomic int where; /* its scheduler as it last answered */
} mctx;

/* Echoes until told to stop, counting the times it finds itself elsewhere. */
static void echo_counting(void *arg)
{
    mctx *c = arg;
    int where = bl_current_scheduler();
    for (;;) {
        bl_msg *m = bl_receive(10000);
        if (!m) return;
        int now = bl_current_scheduler();
        if (now != where) atomic_fetch_add(&c->moves, 1), where = now;
        uint32_t tag = m->tag;
        bl_pid from = m->from;
        bl_msg_free(m);
        if (tag == T_STOP) break;
        atomic_store(&c->where, now);
        bl_send(from, T_BALL, NULL, 0);
    }
    bl_send(c->owner, T_DONE, NULL, 0);
}

/* Keeps the other scheduler waking up and spinning for work every millisecond. */
static void ticker(void *arg)
{
    _Atomic int *stop = arg;
    for (int i = 0; i < 60000 && !atomic_load(stop); i++) bl_sleep(1);
}

static void pair_main(void *arg)
{
    (void)arg;
    static mctx c;
    static _Atomic int stop;
    c = (mctx){.owner = bl_self()};
    atomic_store(&stop, 0);
    bl_spawn_opts other = {.scheduler = bl_current_scheduler() == 0 ? 2 : 1};
    bl_pid e, t;
    BL_CHECK_EQ(bl_spawn(&t, ticker, &stop, &other), 0);
    BL_CHECK_EQ(bl_spawn(&e, echo_counting, &c, NULL), 0);
    int where = bl_current_scheduler(), moves = 0;
    /* Many slices' worth of round trips: each time the shared slice runs
     * out, the woken one must not wait where the idle peer could take it. */
    for (int i = 0; i < ROUNDS; i++) {
        bl_send(e, T_BALL, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_BALL, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
        if (bl_current_scheduler() != where) moves++, where = bl_current_scheduler();
    }
    /* Alone, a yielding process runs again where it is. */
    for (int i = 0; i < ROUNDS; i++) {
        bl_yield();
        if (bl_current_scheduler() != where) moves++, where = bl_current_scheduler();
    }
    bl_send(e, T_STOP, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    atomic_store(&stop, 1);
    BL_CHECK_EQ(moves, 0);
    BL_CHECK_EQ(atomic_load(&c.moves), 0);
}

Test(handoff, a_busy_pair_stays_on_its_scheduler, .timeout = 60)
{
    bl_test_run(NULL, pair_main, NULL);
}

/* ---- a wake-up brings partners together; a bound process stays ---- */

enum { MEET_ROUNDS = 20000 };

typedef struct meet {
    mctx echo; /* the ponger: echo_counting */
    bl_pid peer;
    int apart; /* round trips whose two halves ran on two schedulers */
    int moves; /* times the pinger found itself on another scheduler */
} meet;

static void meet_pinger(void *arg)
{
    meet *c = arg;
    int home = bl_current_scheduler();
    for (int i = 0; i < MEET_ROUNDS; i++) {
        bl_send(c->peer, T_BALL, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_BALL, 10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
        int here = bl_current_scheduler();
        if (atomic_load(&c->echo.where) != here) c->apart++;
        if (here != home) c->moves++, home = here;
    }
    bl_send(c->peer, T_STOP, NULL, 0);
    bl_send(c->echo.owner, T_DONE, NULL, 0);
}

/* The two players start on two schedulers, bound or not. */
static void meet_run(meet *c, bool bound)
{
    *c = (meet){.echo = {.owner = bl_self(), .where = -1}};
    bl_spawn_opts o1 = {.scheduler = 1, .bound = bound}, o2 = {.scheduler = 2, .bound = bound};
    BL_CHECK_EQ(bl_spawn(&c->peer, echo_counting, &c->echo, &o2), 0);
    BL_CHECK_EQ(bl_spawn(NULL, meet_pinger, c, &o1), 0);
    for (int i = 0; i < 2; i++) bl_msg_free(bl_test_recv_tag(T_DONE, 60000));
}

static uint64_t pulled_total(void)
{
    uint64_t n = 0;
    bl_scheduler_stats st;
    for (unsigned i = 0; bl_scheduler_stats_get(i, &st) == 0; i++) n += st.pulled;
    return n;
}

static void meet_main(void *arg)
{
    (void)arg;
    static meet c;
    uint64_t pulled = pulled_total();
    meet_run(&c, false);
    cr_log_info("unbound: %d of %d round trips apart, %d moves", c.apart, MEET_ROUNDS, c.moves);
    /* The first wake-up from scheduler 0 brings the ponger over; a thief
     * can part them now and then (when one waits in the run queue), but
     * the next wake-up brings them together again. */
    BL_CHECK(c.apart < MEET_ROUNDS / 2);
    BL_CHECK(pulled_total() > pulled);
}

Test(handoff, a_wake_up_brings_partners_onto_one_scheduler, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, meet_main, NULL);
}

static void bound_main(void *arg)
{
    (void)arg;
    static meet c;
    meet_run(&c, true);
    cr_log_info("bound: %d of %d round trips apart, %d moves", c.apart, MEET_ROUNDS, c.moves);
    /* Every round trip crosses, and the pinger never left its scheduler. */
    BL_CHECK_EQ(c.apart, MEET_ROUNDS);
    BL_CHECK_EQ(c.moves, 0);
}

Test(handoff, a_bound_process_stays_on_its_scheduler, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, bound_main, NULL);
}

/* A server that clients on two schedulers wake in turn is not a pair: no
 * wake-up pulls it after a client (a thief may still move it, when it waits
 * in the run queue while its scheduler is busy: the test counts pulls). */

typedef struct turn_client {
    bl_pid owner, server, other; /* other: the client that goes next */
    bool first;
} turn_client;

static void turn_client_proc(void *arg)
{
    turn_client *c = arg;
    for (int i = 0; i < MEET_ROUNDS / 4; i++) {
        if (i > 0 || !c->first) {
            bl_msg *t = bl_test_recv_tag(T_TOKEN, 10000);
            BL_CHECK(t != NULL);
            if (!t) break;
            bl_msg_free(t);
        }
        bl_send(c->server, T_BALL, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_BALL, 10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
        bl_send(c->other, T_TOKEN, NULL, 0);
    }
    bl_send(c->owner, T_DONE, NULL, 0);
}

static void in_turn_main(void *arg)
{
    (void)arg;
    static mctx srv;
    static turn_client a, b;
    srv = (mctx){.owner = bl_self()};
    uint64_t pulled = pulled_total();
    bl_pid s, pa, pb;
    bl_spawn_opts o1 = {.scheduler = 1}, b1 = {.scheduler = 1, .bound = true},
                  b2 = {.scheduler = 2, .bound = true};
    BL_CHECK_EQ(bl_spawn(&s, echo_counting, &srv, &o1), 0);
    a = (turn_client){.owner = bl_self(), .server = s, .first = true};
    b = (turn_client){.owner = bl_self(), .server = s};
    BL_CHECK_EQ(bl_spawn(&pb, turn_client_proc, &b, &b2), 0);
    a.other = pb;
    BL_CHECK_EQ(bl_spawn(&pa, turn_client_proc, &a, &b1), 0);
    b.other = pa;
    for (int i = 0; i < 2; i++) bl_msg_free(bl_test_recv_tag(T_DONE, 60000));
    bl_send(s, T_STOP, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    cr_log_info("server moves: %d (by thieves)", atomic_load(&srv.moves));
    BL_CHECK_EQ(pulled_total(), pulled);
}

Test(handoff, a_server_woken_in_turn_from_two_schedulers_is_not_pulled, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, in_turn_main, NULL);
}

/* ---- the loop watches a lone waiter's mailbox before parking it ---- */

enum { SPINS, HITS, OFFS };

static uint64_t mail_stat(int which)
{
    uint64_t n = 0;
    bl_scheduler_stats st;
    for (unsigned i = 0; bl_scheduler_stats_get(i, &st) == 0; i++)
        n += which == SPINS ? st.mail_spins : which == HITS ? st.mail_spin_hits : st.spin_offs;
    return n;
}

static void watch_main(void *arg)
{
    bool spin_on = (bool)(uintptr_t)arg;
    static meet c;
    uint64_t spins = mail_stat(SPINS), hits = mail_stat(HITS), offs = mail_stat(OFFS);
    meet_run(&c, true); /* bound: every round trip crosses the two cores */
    uint64_t ds = mail_stat(SPINS) - spins, dh = mail_stat(HITS) - hits;
    uint64_t doffs = mail_stat(OFFS) - offs;
    cr_log_info("spinning %s: %llu watched waits, %llu ended by mail, spinning turned off %llu "
                "times (CPU contended)",
                spin_on ? "on" : "off", (unsigned long long)ds, (unsigned long long)dh,
                (unsigned long long)doffs);
    BL_CHECK_EQ(c.apart, MEET_ROUNDS);
    if (spin_on) {
        /* Each side waits alone on its core: some replies must find it
         * awake, unless the kernel kept the schedulers' threads off their
         * CPUs (a loaded machine), which turns the watch off, counted. */
        BL_CHECK(dh > 0 || doffs > 0);
        BL_CHECK(dh <= ds);
    } else {
        BL_CHECK_EQ(ds, 0);
    }
}

Test(handoff, a_lone_waiter_catches_mail_from_another_core_awake, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, watch_main, (void *)(uintptr_t) true);
}

Test(handoff, no_mailbox_watch_when_spinning_is_off, .timeout = 120)
{
    bl_config c = {.schedulers = 2, .no_spin = true};
    bl_test_run(&c, watch_main, (void *)(uintptr_t) false);
}

enum { BUSY_ROUNDS = 2000 };

typedef struct busy_ctx {
    bl_pid owner, waiter;
    uint64_t spins; /* mail_spins watched while the feeder was runnable */
} busy_ctx;

/* Waits for mail again and again, the feeder runnable beside it each time:
 * some of its waits go through the loop (every eighth pick does), which
 * must park it at once rather than watch its mailbox. */
static void lone_waiter(void *arg)
{
    busy_ctx *c = arg;
    for (int i = 0; i < BUSY_ROUNDS; i++) {
        bl_msg *m = bl_test_recv_tag(T_BALL, 60000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
    }
    bl_send(c->owner, T_DONE, NULL, 0);
}

/* Always runnable: sends the waiter a ball and yields, then counts the
 * watches made meanwhile. */
static void feeder(void *arg)
{
    busy_ctx *c = arg;
    uint64_t spins = mail_stat(false);
    for (int i = 0; i < BUSY_ROUNDS; i++) {
        bl_send(c->waiter, T_BALL, NULL, 0);
        bl_yield();
    }
    c->spins = mail_stat(false) - spins;
    bl_send(c->owner, T_DONE, NULL, 0);
}

static void busy_main(void *arg)
{
    (void)arg;
    static busy_ctx c;
    c = (busy_ctx){.owner = bl_self()};
    BL_CHECK_EQ(bl_spawn(&c.waiter, lone_waiter, &c, NULL), 0);
    BL_CHECK_EQ(bl_spawn(NULL, feeder, &c, NULL), 0);
    for (int i = 0; i < 2; i++) bl_msg_free(bl_test_recv_tag(T_DONE, 60000));
    BL_CHECK_EQ(c.spins, 0);
}

Test(handoff, no_mailbox_watch_while_another_process_is_runnable, .timeout = 60)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, busy_main, NULL);
}

/*
 * A lone waiter's mailbox is watched once per wait: by the process itself
 * before it parks (bl__sched_spin_mail), and then not again by the loop
 * that parks it.  The waiter, alone on its scheduler, waits WAITS times
 * for mail that never comes (each wait ended by its timer): at most one
 * watch each, and the test's own two waits.
 */
enum { WAITS = 20 };

static void empty_waiter(void *arg)
{
    bl_pid owner = *(bl_pid *)arg;
    for (int i = 0; i < WAITS; i++) {
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, NULL, NULL, 1, 0), -ETIMEDOUT);
    }
    bl_send(owner, T_DONE, NULL, 0);
}

static void once_main(void *arg)
{
    (void)arg;
    bl_pid self = bl_self();
    uint64_t spins = mail_stat(SPINS), offs = mail_stat(OFFS);
    BL_CHECK_EQ(bl_spawn(NULL, empty_waiter, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 30000));
    uint64_t ds = mail_stat(SPINS) - spins;
    cr_log_info("%d empty waits: %llu watched (spinning turned off %llu times)", WAITS,
                (unsigned long long)ds, (unsigned long long)(mail_stat(OFFS) - offs));
    BL_CHECK(ds <= WAITS + 2);
}

Test(handoff, a_lone_waiters_mailbox_is_watched_once_per_wait, .timeout = 60)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, once_main, NULL);
}

/*
 * Two processes answering each other on one scheduler: the one that waits
 * for the answer is left unparked while its partner runs (bl__sched_handoff),
 * and settled when the partner stops: it runs at once if the answer came.
 * So the partner's waits are never watched (the answer it needs next comes
 * from the one waiting beside it); every turn of the loop in between (every
 * 64 picks) settles the waiter, or it would never run again; and so does a
 * partner's switch to a third process, which the second half keeps runnable.
 */
enum { LAZY_ROUNDS = 3000 };

/* Yields until a message comes (bounded: 10 s). */
static void busy_yielder(void *arg)
{
    (void)arg;
    bl_msg *m = NULL;
    for (int64_t t0 = bl_test_ms(); !(m = bl_receive(0)) && bl_test_ms() - t0 < 10000;) bl_yield();
    bl_msg_free(m);
}

/* LAZY_ROUNDS round trips with echo: how many were answered. */
static int lazy_rounds(bl_pid echo)
{
    int answered = 0;
    for (int i = 0; i < LAZY_ROUNDS; i++) {
        BL_CHECK_EQ(bl_send(echo, T_BALL, NULL, 0), 0);
        bl_msg *m = bl_test_recv_tag(T_BALL, 10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
        answered++;
    }
    return answered;
}

static void lazy_main(void *arg)
{
    (void)arg;
    bl_pid echo, busy;
    BL_CHECK_EQ(bl_spawn(&echo, bl_test_echo, (void *)(uintptr_t)T_BALL, NULL), 0);
    uint64_t spins = mail_stat(SPINS);
    BL_CHECK_EQ(lazy_rounds(echo), LAZY_ROUNDS);
    BL_CHECK_EQ(mail_stat(SPINS) - spins, 0);
    BL_CHECK_EQ(bl_spawn(&busy, busy_yielder, NULL, NULL), 0);
    BL_CHECK_EQ(lazy_rounds(echo), LAZY_ROUNDS);
    bl_send(busy, T_STOP, NULL, 0);
    bl_send(echo, T_STOP, NULL, 0);
}

Test(handoff, a_waiter_beside_its_partner_is_settled_when_the_partner_stops, .timeout = 60)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, lazy_main, NULL);
}

/* A waiter on its own core, killed from the other one, dies with `killed`. */
static void forever(void *arg)
{
    (void)arg;
    for (;;) bl_msg_free(bl_receive(BL_INFINITY));
}

static void kill_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        bl_spawn_opts o = {.scheduler = 2, .bound = true};
        bl_pid w;
        BL_CHECK_EQ(bl_spawn(&w, forever, NULL, &o), 0);
        /* Mail now and then, so that it is often between a watch and a park. */
        for (int k = 0; k < i % 4; k++) bl_send(w, T_BALL, NULL, 0);
        BL_CHECK_EQ(bl_test_kill_wait(w), BL_KILLED);
    }
}

Test(handoff, a_watched_waiter_is_killed_at_once, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, kill_main, NULL);
}

/* ---- a successor parked near its guard page ---- */

/* A process that switches straight to another has the successor settle it
 * (a dead one's stack and records freed, a parked one's wait published) on
 * the successor's stack, where the successor parked.  One parked close to
 * its guard page would overflow there, in the middle of the scheduler's
 * bookkeeping: it runs from the loop instead. */

enum { DEEP = 64 };

/* How far above what a wait measured takes a deep waiter stops (bytes): as
 * near the guard page as each build's wait path allows, and near enough
 * that settling a dead predecessor there overflows. */
#if defined(BL_ASAN)
#define DEEP_MARGIN 2560
#elif defined(BL_TSAN)
#define DEEP_MARGIN 1024
#elif defined(NDEBUG)
#define DEEP_MARGIN 160
#else
#define DEEP_MARGIN 320
#endif

static bl_pid deep_owner;

/* Waits for a message a little above the bottom of its stack, then reports
 * where it parked. */
static void deep_waiter(void *arg)
{
    (void)arg;
    deep_down(DEEP_MARGIN, 10000);
    long low = deep_saved_low();
    bl_send(deep_owner, T_DONE, &low, sizeof low);
}

/* Wakes its deep waiter, which goes to runnext, and dies: its successor is the waiter. */
static void waker(void *arg)
{
    bl_send(*(bl_pid *)arg, T_TOKEN, NULL, 0);
}

/* Deep processes run on the first scheduler with small stacks: the
 * options, once a wait there is measured (false if it could not be). */
static const bl_spawn_opts deep_opts = {.scheduler = 1, .bound = true, .stack_size = 16384};

static bool deep_start(void)
{
    deep_owner = bl_self();
    bool measured = deep_measure(&deep_opts, T_WHERE);
    BL_CHECK(measured);
    BL_CHECK(deep_wait_depth > 0 && deep_wait_depth < 8192);
    return measured;
}

static void deep_main(void *arg)
{
    (void)arg;
    if (!deep_start()) return;
    const bl_spawn_opts o = deep_opts;
    static bl_pid pids[DEEP];
    for (int i = 0; i < DEEP; i++) {
        BL_CHECK_EQ(bl_spawn(&pids[i], deep_waiter, NULL, &o), 0);
        /* Until it has parked down there (nothing it could send from there:
         * a send takes more stack than it has left in some builds). */
        bl_proc *p = bl__proc_lookup(pids[i]);
        BL_CHECK(p != NULL);
        for (int k = 0; k < 100000 && p && atomic_load(&p->status) != BL_STATUS_WAITING; k++)
            bl_yield();
        BL_CHECK(p && atomic_load(&p->status) == BL_STATUS_WAITING);
    }
    for (int i = 0; i < DEEP; i++) BL_CHECK_EQ(bl_spawn(NULL, waker, &pids[i], &o), 0);
    long highest = 0;
    for (int i = 0; i < DEEP; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        long low;
        memcpy(&low, m->data, sizeof low);
        if (low > highest) highest = low;
        bl_msg_free(m);
    }
    cr_log_info("wait depth %ld, deep waiters parked up to %ld bytes above the bottom",
                deep_wait_depth, highest);
    /* Within the 4 KiB a direct switch wants left (SCHED_STACK_MIN). */
    BL_CHECK(highest > 0 && highest < 4096);
}

Test(handoff, a_successor_parked_near_its_guard_page_runs_from_the_loop, .timeout = 60)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, deep_main, NULL);
}

/* ---- a waiter near its guard page is not watched on its own stack ---- */

/* A process about to park for mail with nothing else to run on its
 * scheduler watches its mailbox a moment first (bl__sched_spin_mail), on
 * its own stack; that watch reads the clock and, every 10 ms at most, the
 * kernel's run delay for the thread, calls a process parked near its guard
 * page has no room for.  Such a one parks, and the loop watches for it on
 * its own stack.  Here the waiter first keeps its scheduler busy longer
 * than that, so that the watch would read the run delay. */

enum { LONE_BUSY_MS = 20, LONE_ROUNDS = 5 };

/* Where the lone waiter parks: as the deep waiters above, but in the TSan
 * build, whose runtime takes kilobytes of a process stack now and then at
 * an atomic (the drain's), still within the room a watch asks for. */
#if defined(BL_TSAN)
#define LONE_MARGIN 3072
#else
#define LONE_MARGIN DEEP_MARGIN
#endif

static void lone_deep_waiter(void *arg)
{
    (void)arg;
    for (int64_t end = bl_test_ms() + LONE_BUSY_MS; bl_test_ms() < end;) {
    }
    long r = deep_down(LONE_MARGIN, 20);
    bl_send(deep_owner, T_DONE, &r, sizeof r);
}

static void lone_main(void *arg)
{
    (void)arg;
    if (!deep_start()) return;
    for (int i = 0; i < LONE_ROUNDS; i++) {
        bl_pid pid;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn(&pid, lone_deep_waiter, NULL, &deep_opts), 0);
        BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
        /* It ends normally, its receive having timed out, which it said
         * first; an overflow would end it with stack_overflow. */
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
        bl_reason why = {0};
        BL_CHECK(m && bl_msg_reason(m, &why) == 0);
        BL_CHECK_EQ(why.kind, BL_NORMAL);
        bl_msg_free(m);
        m = bl_test_recv_tag(T_DONE, 0);
        BL_CHECK(m != NULL);
        long r = 0;
        if (m) memcpy(&r, m->data, sizeof r);
        bl_msg_free(m);
        BL_CHECK_EQ(r, -ETIMEDOUT);
    }
}

Test(handoff, a_waiter_near_its_guard_page_is_not_watched_on_its_stack, .timeout = 60)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, lone_main, NULL);
}
