/*
 * Messages and mailboxes: copy semantics, FIFO per pair, selective receive,
 * timeouts, the receive marker, moves, bad input.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"
#include "core/wait.h"
#include "sched/sched.h"

enum { T_DATA = 1, T_DONE, T_GO, T_REQ, T_REPLY, T_NOISE };

/* ---- FIFO between every pair ---- */

typedef struct fifo_arg {
    bl_pid receiver;
    uint32_t id;
    uint32_t count;
} fifo_arg;

/*
 * The arguments live on the receiver's stack, so each sender copies its own
 * before sending, and the receiver returns only after every sender's DOWN:
 * a sender still reading them after the receiver's return would read a
 * stack that is gone (and, the runtime stopping, have its sends refused).
 */
static void fifo_sender(void *arg)
{
    fifo_arg a = *(fifo_arg *)arg;
    for (uint32_t i = 0; i < a.count; i++) {
        uint32_t payload[2] = {a.id, i};
        BL_CHECK_EQ(bl_send(a.receiver, T_DATA, payload, sizeof payload), 0);
    }
}

static void fifo_main(void *arg)
{
    enum { SENDERS = 8 };
    uint32_t count = BL_SCALE(20000);
    fifo_arg args[SENDERS];
    for (uint32_t s = 0; s < SENDERS; s++) {
        args[s] = (fifo_arg){bl_self(), s, count};
        bl_spawn_opts o = {.scheduler = 1 + (int)(s % 2)};
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(NULL, &ref, fifo_sender, &args[s], &o), 0);
    }
    uint32_t next[SENDERS] = {0};
    for (uint32_t n = 0; n < SENDERS * count; n++) {
        uint32_t tag = T_DATA;
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &tag, 10000, 0), 0);
        if (!m) return;
        uint32_t *p = m->data;
        BL_CHECK_EQ(m->len, 8);
        BL_CHECK(p[0] < SENDERS);
        if (p[0] >= SENDERS) return;
        BL_CHECK_EQ(p[1], next[p[0]]);
        next[p[0]] = p[1] + 1;
        bl_msg_free(m);
    }
    for (uint32_t s = 0; s < SENDERS; s++) {
        bl_msg *m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
        BL_CHECK(m != NULL);
        if (!m) return; /* (the senders may still read args: fail, then wait for bl_main) */
        bl_msg_free(m);
    }
}

Test(mailbox, fifo_between_each_pair)
{
    bl_test_run(NULL, fifo_main, NULL);
}

/* ---- copies: the sender may reuse its buffer at once; any size ---- */

static void copy_main(void *arg)
{
    bl_pid self = bl_self();
    char buf[32] = "first";
    BL_CHECK_EQ(bl_send(self, T_DATA, buf, sizeof buf), 0);
    strcpy(buf, "scribbled");
    size_t big = 3u << 20; /* 3 MiB: beyond every slab class */
    unsigned char *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = (unsigned char)(i * 7);
    BL_CHECK_EQ(bl_send(self, T_DATA, b, big), 0);
    memset(b, 0, big);
    BL_CHECK_EQ(bl_send(self, T_DATA, NULL, 0), 0);

    bl_msg *m = bl_receive(0);
    BL_CHECK(m && !strcmp(m->data, "first"));
    BL_CHECK(m && ((uintptr_t)m->data & 15) == 0);
    BL_CHECK(m && m->from == self);
    bl_msg_free(m);
    m = bl_receive(0);
    BL_CHECK(m && m->len == big);
    int ok = 1;
    for (size_t i = 0; m && i < big; i++)
        ok &= ((unsigned char *)m->data)[i] == (unsigned char)(i * 7);
    BL_CHECK(ok);
    bl_msg_free(m);
    m = bl_receive(0);
    BL_CHECK(m && m->len == 0);
    bl_msg_free(m);
    free(b);
    /* Every size class boundary round-trips. */
    for (size_t len = 0; len < 5000; len += 61) {
        char tmp[5000];
        memset(tmp, (int)len, len);
        BL_CHECK_EQ(bl_send(self, T_DATA, tmp, len), 0);
        m = bl_receive(0);
        BL_CHECK(m && m->len == len && (len == 0 || ((char *)m->data)[len - 1] == (char)len));
        bl_msg_free(m);
    }
}

Test(mailbox, copies_of_any_size)
{
    bl_test_run(NULL, copy_main, NULL);
}

/* ---- moves ---- */

static _Atomic int freed;
static void count_free(void *p)
{
    atomic_fetch_add(&freed, 1);
    free(p);
}

static void move_receiver(void *arg)
{
    bl_msg *m = bl_receive(5000);
    BL_CHECK(m && m->len == 100 && !strcmp(m->data, "moved"));
    BL_CHECK(m && m->data == *(void **)arg);
    BL_CHECK_EQ(atomic_load(&freed), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(atomic_load(&freed), 1);
    bl_send(m ? BL_PID_NONE : BL_PID_NONE, 0, NULL, 0); /* no-op keeps m unused after free */
}

static void move_main(void *arg)
{
    atomic_store(&freed, 0);
    char *buf = malloc(100);
    strcpy(buf, "moved");
    void *expect = buf;
    bl_pid r;
    BL_CHECK_EQ(bl_spawn(&r, move_receiver, &expect, NULL), 0);
    bl_ref ref = bl_make_ref();
    (void)ref;
    BL_CHECK_EQ(bl_send_move(r, T_DATA, buf, 100, count_free), 0);
    /* Wait for the receiver to be gone. */
    while (bl_is_alive(r)) bl_yield();
    BL_CHECK_EQ(atomic_load(&freed), 1);
    /* A move to a dead process frees the buffer at once. */
    char *buf2 = malloc(10);
    BL_CHECK_EQ(bl_send_move(r, T_DATA, buf2, 10, count_free), 0);
    BL_CHECK_EQ(atomic_load(&freed), 2);
    /* A move left in a dying process's mailbox is freed with it. */
    BL_CHECK_EQ(bl_spawn(&r, move_receiver, &expect, NULL), 0);
}

Test(mailbox, move_transfers_ownership)
{
    bl_test_run(NULL, move_main, NULL);
}

/* ---- selective receive ---- */

static void selective_main(void *arg)
{
    bl_pid self = bl_self();
    for (int i = 0; i < 10; i++) {
        uint32_t tag = i % 2 ? T_NOISE : T_DATA;
        bl_send(self, tag, &i, sizeof i);
    }
    /* Take the T_DATA ones first, in order; the rest stay, in order. */
    for (int i = 0; i < 10; i += 2) {
        bl_msg *m = bl_test_recv_tag(T_DATA, 0);
        BL_CHECK(m && *(int *)m->data == i);
        bl_msg_free(m);
    }
    BL_CHECK(bl_test_recv_tag(T_DATA, 0) == NULL);
    BL_CHECK_EQ(bl_mailbox_len(), 5);
    for (int i = 1; i < 10; i += 2) {
        bl_msg *m = bl_receive(0);
        BL_CHECK(m && m->tag == T_NOISE && *(int *)m->data == i);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(mailbox, selective_receive_keeps_order)
{
    bl_test_run(NULL, selective_main, NULL);
}

/* ---- timeouts ---- */

static void late_sender(void *arg)
{
    bl_pid to = *(bl_pid *)arg;
    bl_sleep(50);
    bl_send(to, T_DATA, "late", 5);
}

static void timeout_main(void *arg)
{
    bl_msg *m = NULL;
    /* 0 = poll. */
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, 0, 0), -ETIMEDOUT);
    /* Short timeout: returns after, never before, the deadline. */
    uint64_t t0 = bl__now_ns();
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, 30, 0), -ETIMEDOUT);
    uint64_t waited = bl__now_ns() - t0;
    BL_CHECK(waited >= 30000000u);
    BL_CHECK(waited < 2000000000u);
    /* A long timeout, counted as every other from the scheduler's next
     * timer turn: still never before it. */
    t0 = bl__now_ns();
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, 1000, 0), -ETIMEDOUT);
    BL_CHECK(bl__now_ns() - t0 >= 1000000000u);
    /* Non-matching messages do not end the wait early, nor get lost. */
    bl_pid self = bl_self();
    bl_send(self, T_NOISE, NULL, 0);
    t0 = bl__now_ns();
    BL_CHECK(bl_test_recv_tag(T_DATA, 20) == NULL);
    BL_CHECK(bl__now_ns() - t0 >= 20000000u);
    BL_CHECK_EQ(bl_mailbox_len(), 1);
    /* Infinite, satisfied by a later message. */
    BL_CHECK_EQ(bl_spawn(NULL, late_sender, &self, NULL), 0);
    BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &(uint32_t){T_DATA}, BL_INFINITY, 0), 0);
    BL_CHECK(m && !strcmp(m->data, "late"));
    bl_msg_free(m);
    /* A long timeout satisfied early returns the message. */
    BL_CHECK_EQ(bl_spawn(NULL, late_sender, &self, NULL), 0);
    t0 = bl__now_ns();
    BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &(uint32_t){T_DATA}, 60000, 0), 0);
    BL_CHECK(bl__now_ns() - t0 < 30000000000ull);
    bl_msg_free(m);
    /* Bad timeout. */
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, -5, 0), -EINVAL);
    BL_CHECK_EQ(bl_recv(NULL, NULL, NULL, 0, 0), -EINVAL);
    m = bl_receive(0);
    BL_CHECK(m && m->tag == T_NOISE);
    bl_msg_free(m);
}

Test(mailbox, receive_timeouts)
{
    bl_test_run(NULL, timeout_main, NULL);
}

/* ---- a stale signal flag ---- */

static uint64_t switches_now(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < bl_schedulers(); i++) {
        bl_scheduler_stats st;
        if (bl_scheduler_stats_get(i, &st) == 0) n += st.switches;
    }
    return n;
}

/*
 * A drain that swaps out only the top (core/wait.h) can leave the signal
 * flag set with the signal taken: the next drain that finds the inbox empty
 * must clear it.  Left set, every park fails at once and the process spins
 * (without the clearing, this receive was still spinning minutes past its
 * 30 ms timeout); cleared, it parks once.
 */
static void stale_flag_main(void *arg)
{
    (void)arg;
    bl_proc *p = bl__self();
    for (int round = 0; round < 3; round++) {
        bl_box cur = bl__box_load(p), want;
        do {
            want = cur;
            want.meta |= BL_META_SIG; /* as a signal taken with the batch leaves it */
        } while (!bl__box_cas(p, &cur, want));
        BL_CHECK(cur.top == NULL);
        uint64_t before = switches_now();
        BL_CHECK(bl_receive(30) == NULL);
        uint64_t spent = switches_now() - before;
        BL_CHECK(spent < 50);
        BL_CHECK_EQ(bl__box_load(p).meta & BL_META_SIG, 0);
        /* Mail and signals still arrive as before. */
        bl_send(bl_self(), T_DATA, "x", 1);
        bl_msg *m = bl_receive(1000);
        BL_CHECK(m && m->tag == T_DATA);
        bl_msg_free(m);
    }
}

Test(mailbox, stale_signal_flag_is_cleared, .timeout = 60)
{
    bl_test_run(NULL, stale_flag_main, NULL);
}

/* ---- the receive marker ---- */

static void server(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        if (m->tag == T_DONE) {
            bl_msg_free(m);
            return;
        }
        bl_send_ref(m->from, T_REPLY, m->ref, m->data, m->len);
        bl_msg_free(m);
    }
}

static void marker_main(void *arg)
{
    bl_pid self = bl_self(), srv;
    BL_CHECK_EQ(bl_spawn(&srv, server, NULL, NULL), 0);
    uint32_t queued = BL_SCALE(500000);
    for (uint32_t i = 0; i < queued; i++) bl_send(self, T_NOISE, &i, sizeof i);
    bl_proc *p = bl__self();
    for (int call = 0; call < 100; call++) {
        bl_ref ref = bl_make_ref();
        bl_recv_mark();
        uint64_t before = p->scanned;
        bl_send_ref(srv, T_REQ, ref, &call, sizeof call);
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 5000, BL_RECV_MARKED), 0);
        BL_CHECK(m && *(int *)m->data == call);
        bl_msg_free(m);
        /* Only the reply itself was examined, not the queued noise. */
        BL_CHECK(p->scanned - before <= 2);
    }
    BL_CHECK_EQ(bl_mailbox_len(), queued);
    /* Without the marker the same receive scans the queue. */
    bl_ref ref = bl_make_ref();
    bl_send_ref(srv, T_REQ, ref, "x", 1);
    uint64_t before = p->scanned;
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 5000, 0), 0);
    BL_CHECK(p->scanned - before >= queued);
    bl_msg_free(m);
    /* Removing the marked message keeps the marker valid. */
    bl_recv_mark();
    bl_msg *last = NULL;
    uint32_t noise = T_NOISE;
    bl_send(self, T_DATA, "after", 6);
    BL_CHECK_EQ(bl_recv(&last, bl_match_tag, &(uint32_t){T_DATA}, 0, BL_RECV_MARKED), 0);
    bl_msg_free(last);
    for (uint32_t i = 0; i < queued; i++) {
        bl_msg *n = bl_test_recv_tag(noise, 0);
        BL_CHECK(n && *(uint32_t *)n->data == i);
        bl_msg_free(n);
        if (!n) break;
    }
    bl_send(srv, T_DONE, NULL, 0);
}

Test(mailbox, reply_after_marker_skips_queued_messages, .timeout = 120)
{
    bl_test_run(NULL, marker_main, NULL);
}

/* ---- dead and malformed destinations ---- */

static void quit_now(void *arg) {}

static void dead_main(void *arg)
{
    bl_pid dead;
    BL_CHECK_EQ(bl_spawn(&dead, quit_now, NULL, NULL), 0);
    while (bl_is_alive(dead)) bl_yield();
    BL_CHECK_EQ(bl_send(dead, T_DATA, "x", 1), 0);
    BL_CHECK_EQ(bl_send(0, T_DATA, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_send(1ull << 63, T_DATA, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_send(bl_self() | (1ull << 56), T_DATA, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_send(0xFFFFFFF0ull, T_DATA, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_send(bl_self(), BL_TAG_SYSTEM, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_send(bl_self(), T_DATA, NULL, 3), -EINVAL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(mailbox, dead_and_malformed_destinations)
{
    bl_test_run(NULL, dead_main, NULL);
}

/* ---- many senders into one mailbox, across schedulers ---- */

static void flood_sender(void *arg)
{
    fifo_arg *a = arg;
    for (uint32_t i = 0; i < a->count; i++) bl_send(a->receiver, T_DATA, &i, sizeof i);
    bl_send(a->receiver, T_DONE, NULL, 0);
}

static void flood_main(void *arg)
{
    enum { SENDERS = 20 };
    uint32_t count = BL_SCALE(100000);
    fifo_arg a = {bl_self(), 0, count};
    for (int s = 0; s < SENDERS; s++) bl_spawn(NULL, flood_sender, &a, NULL);
    uint64_t got = 0;
    int done = 0;
    while (done < SENDERS) {
        bl_msg *m = bl_receive(20000);
        BL_CHECK(m != NULL);
        if (!m) return;
        if (m->tag == T_DONE)
            done++;
        else
            got++;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(got, (uint64_t)SENDERS * count);
}

Test(mailbox, twenty_senders_flood, .timeout = 120)
{
    bl_test_run(NULL, flood_main, NULL);
}

/* ---- a timeout that fires while non-matching mail keeps the receiver awake ---- */

typedef struct noisy_arg {
    bl_pid target;
    _Atomic int stop;
} noisy_arg;

static void noisy(void *arg)
{
    noisy_arg *a = arg;
    while (!atomic_load(&a->stop)) bl_send(a->target, T_NOISE, NULL, 0);
}

static void awake_timeout_main(void *arg)
{
    for (int round = 0; round < 20; round++) {
        noisy_arg a = {.target = bl_self()};
        bl_spawn_opts same = {.scheduler = 1 + bl_current_scheduler()};
        bl_pid np;
        bl_ref nref;
        BL_CHECK_EQ(bl_spawn(&np, noisy, &a, &same), 0);
        BL_CHECK_EQ(bl_monitor(np, &nref), 0);
        uint64_t t0 = bl__now_ns();
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &(uint32_t){T_DATA}, 5, 0), -ETIMEDOUT);
        uint64_t took = bl__now_ns() - t0;
        atomic_store(&a.stop, 1);
        /* The timeout holds however often noise wakes the receiver. */
        BL_CHECK(took >= 5000000u);
        BL_CHECK(took < 2000000000u);
        /* The noise maker reads `a` until it stops: it is gone before `a` is. */
        bl_msg *down = NULL;
        BL_CHECK_EQ(bl_recv(&down, bl_match_ref, &nref, 10000, 0), 0);
        bl_msg_free(down);
        while ((m = bl_receive(0))) bl_msg_free(m);
    }
}

Test(mailbox, timeout_fires_while_noise_keeps_receiver_awake, .timeout = 120)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, awake_timeout_main, NULL);
}
