/*
 * Monitors: what demonitor costs with a long queue, demonitor's flags and
 * errors, which pids can be monitored, monitoring yourself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_NOISE = 1, T_REQ, T_REPLY, T_STOP };

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void echo(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        bool stop = m->tag == T_STOP;
        if (!stop) bl_send_ref(m->from, T_REPLY, m->ref, NULL, 0);
        bl_msg_free(m);
        if (stop) return;
    }
}

/* Waits (10 s at most) until the mailbox holds more than base messages. */
static bool wait_queued(size_t base)
{
    int64_t end = bl_test_ms() + 10000;
    while (bl_mailbox_len() <= base && bl_test_ms() < end) bl_yield();
    return bl_mailbox_len() > base;
}

/* ---- 2: a call's cost does not grow with the caller's queue ---- */

/*
 * The cost is counted, not timed: the messages receives and demonitor's
 * flush looked at (bl_proc.scanned).  A scan of the queue per call would
 * look at every queued message.
 */
static uint64_t scanned(void)
{
    return bl__self()->scanned;
}

/* n calls as a gen_server client makes them: mark, monitor, request, marked
 * receive of the reply, demonitor with flush.  Returns the messages looked at. */
static uint64_t calls_scan(bl_pid srv, int n)
{
    uint64_t s0 = scanned();
    for (int i = 0; i < n; i++) {
        bl_recv_mark();
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(srv, &ref), 0);
        BL_CHECK_EQ(bl_send_ref(srv, T_REQ, ref, NULL, 0), 0);
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, BL_RECV_MARKED), 0);
        BL_CHECK(m && m->tag == T_REPLY);
        bl_msg_free(m);
        BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_FLUSH), 0);
    }
    return scanned() - s0;
}

static void replier(void *arg)
{
    bl_send(*(bl_pid *)arg, T_REPLY, NULL, 0);
}

/* n rounds of a task's await: a monitored process replies and exits; its
 * DOWN is in the queue, behind the reply, when the demonitor flushes it. */
static uint64_t awaits_scan(int n)
{
    bl_pid self = bl_self();
    uint64_t s0 = scanned();
    for (int i = 0; i < n; i++) {
        size_t base = bl_mailbox_len();
        bl_recv_mark();
        bl_pid c;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&c, &ref, replier, &self, NULL), 0);
        uint32_t tag = T_REPLY;
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &tag, 10000, BL_RECV_MARKED), 0);
        bl_msg_free(m);
        BL_CHECK(wait_queued(base)); /* the DOWN, which may have come with the reply */
        BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_FLUSH), 0);
        BL_CHECK_EQ(bl_mailbox_len(), base);
    }
    return scanned() - s0;
}

static void cost_main(void *arg)
{
    bl_pid srv;
    BL_CHECK_EQ(bl_spawn(&srv, echo, NULL, NULL), 0);
    int calls = BL_SCALE(2000), queued = BL_SCALE(200000);
    /* Warm up, then the same calls with an empty queue and a long one. */
    calls_scan(srv, calls);
    uint64_t empty = calls_scan(srv, calls), empty_await = awaits_scan(calls / 4);
    for (int i = 0; i < queued; i++) bl_send(bl_self(), T_NOISE, &i, sizeof i);
    BL_CHECK_EQ(bl_mailbox_len(), (size_t)queued);
    uint64_t full = calls_scan(srv, calls), full_await = awaits_scan(calls / 4);
    /* The same messages looked at as with an empty queue (give or take one a
     * call, for a reply and a DOWN arriving in either order); a scan of the
     * queue would look at `queued` more per call. */
    BL_CHECK(full <= empty + (uint64_t)calls);
    BL_CHECK(full_await <= empty_await + (uint64_t)calls / 4);
    if (full > empty + (uint64_t)calls || full_await > empty_await + (uint64_t)calls / 4)
        fprintf(stderr, "calls: %llu looked at empty, %llu queued; awaits: %llu / %llu\n",
                (unsigned long long)empty, (unsigned long long)full,
                (unsigned long long)empty_await, (unsigned long long)full_await);
    /* The noise is all there, in order, and nothing else. */
    BL_CHECK_EQ(bl_mailbox_len(), (size_t)queued);
    for (int i = 0; i < queued; i++) {
        bl_msg *m = bl_receive(0);
        BL_CHECK(m && m->tag == T_NOISE && *(int *)m->data == i);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    bl_send(srv, T_STOP, NULL, 0);
}

Test(monitor, demonitor_cost_does_not_grow_with_the_queue)
{
    bl_test_run(NULL, cost_main, NULL);
}

/* A flush finds a DOWN wherever it is, the newest or an older one. */
static void flush_main(void *arg)
{
    bl_pid a, b;
    bl_ref ra, rb, rc2;
    BL_CHECK_EQ(bl_spawn(&a, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_spawn(&b, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(a, &ra), 0);
    BL_CHECK_EQ(bl_monitor(b, &rb), 0);
    BL_CHECK_EQ(bl_monitor(b, &rc2), 0);
    bl_send(bl_self(), T_NOISE, NULL, 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(a, &kill);
    BL_CHECK(wait_queued(1));
    bl_send(bl_self(), T_NOISE, NULL, 0);
    bl_exit_pid(b, &kill);
    BL_CHECK(wait_queued(4)); /* noise, DOWN a, noise, DOWN b, DOWN b */
    /* The oldest DOWN, ahead of the newest. */
    BL_CHECK_EQ(bl_demonitor(ra, BL_DEMONITOR_FLUSH | BL_DEMONITOR_INFO), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 4);
    /* The newest, then the one before it. */
    BL_CHECK_EQ(bl_demonitor(rc2, BL_DEMONITOR_FLUSH), 0);
    BL_CHECK_EQ(bl_demonitor(rb, BL_DEMONITOR_FLUSH), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 2);
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_receive(0);
        BL_CHECK(m && m->tag == T_NOISE);
        bl_msg_free(m);
    }
}

Test(monitor, flush_finds_any_queued_down)
{
    bl_test_run(NULL, flush_main, NULL);
}

/* ---- 3: demonitor's errors and its info flag ---- */

static void demonitor_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    BL_CHECK_EQ(bl_demonitor(BL_REF_NONE, 0), -EINVAL);
    BL_CHECK_EQ(bl_demonitor(BL_REF_NONE, BL_DEMONITOR_FLUSH), -EINVAL);
    BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    /* Unknown flags: refused, and the monitor is still on. */
    BL_CHECK_EQ(bl_demonitor(ref, 0x80), -EINVAL);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_FLUSH | 0x100), -EINVAL);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(p, &kill), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    BL_CHECK(m && m->tag == BL_TAG_DOWN);
    bl_msg_free(m);
    /* Its DOWN was delivered (and taken): the monitor is off. */
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 0);

    /* An active monitor: 1, then it is gone. */
    BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 1);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 0);
    BL_CHECK_EQ(bl_demonitor(ref, 0), 0);
    bl_exit_pid(p, &kill);

    /* A DOWN already queued: info says 0, flush takes the DOWN out. */
    BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    size_t base = bl_mailbox_len();
    bl_exit_pid(p, &kill);
    BL_CHECK(wait_queued(base));
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO | BL_DEMONITOR_FLUSH), 0);
    BL_CHECK_EQ(bl_mailbox_len(), base);
    /* Not a monitor at all. */
    BL_CHECK_EQ(bl_demonitor(bl_make_ref(), BL_DEMONITOR_INFO | BL_DEMONITOR_FLUSH), 0);
    /* Demonitored before the DOWN came: it never comes. */
    BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 1);
    bl_ref r2;
    BL_CHECK_EQ(bl_monitor(p, &r2), 0);
    bl_exit_pid(p, &kill);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &r2, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 0, 0), -ETIMEDOUT);
}

Test(monitor, demonitor_flags_and_errors)
{
    bl_test_run(NULL, demonitor_main, NULL);
}

static void outside_main(void *arg) {}

Test(monitor, outside_a_process)
{
    bl_test_run(NULL, outside_main, NULL);
    cr_assert_eq(bl_demonitor(1, 0), -EPERM);
    cr_assert_eq(bl_monitor(1, &(bl_ref){0}), -EPERM);
    cr_assert_eq(bl_monitor_name("x", &(bl_ref){0}), -EPERM);
}

/* ---- 4: what can be monitored ---- */

/* The DOWN of ref: its reason kind and sender, -1 if none within ms. */
static int down_of(bl_ref ref, bl_pid *from, int64_t ms)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, ms, 0) != 0) return -1;
    BL_CHECK_EQ(m->tag, BL_TAG_DOWN);
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    if (from) *from = m->from;
    int kind = r.kind;
    bl_msg_free(m);
    return kind;
}

static void names_main(void *arg)
{
    bl_ref ref = 77;
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    /* The names bl_register refuses, with its errors, and nothing queued. */
    BL_CHECK_EQ(bl_register(NULL, bl_self()), -EINVAL);
    BL_CHECK_EQ(bl_monitor_name(NULL, &ref), -EINVAL);
    BL_CHECK_EQ(bl_register("", bl_self()), -EINVAL);
    BL_CHECK_EQ(bl_monitor_name("", &ref), -EINVAL);
    BL_CHECK_EQ(bl_register(longname, bl_self()), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_monitor_name(longname, &ref), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_monitor_name("fine", NULL), -EINVAL);
    BL_CHECK_EQ(ref, 77);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* A good name nobody holds: DOWN noproc. */
    BL_CHECK_EQ(bl_monitor_name("nobody", &ref), 0);
    BL_CHECK_EQ(down_of(ref, NULL, 0), BL_NOPROC);
    /* The longest name is fine. */
    longname[255] = 0;
    BL_CHECK_EQ(bl_monitor_name(longname, &ref), 0);
    BL_CHECK_EQ(down_of(ref, NULL, 0), BL_NOPROC);
}

Test(monitor, monitor_name_refuses_bad_names)
{
    bl_test_run(NULL, names_main, NULL);
}

static void pids_main(void *arg)
{
    bl_ref ref = 0;
    bl_pid self = bl_self();
    /* Malformed. */
    BL_CHECK_EQ(bl_monitor(BL_PID_NONE, &ref), -EINVAL);
    BL_CHECK_EQ(bl_monitor(1ull << 63, &ref), -EINVAL);
    BL_CHECK_EQ(bl_monitor(self | 1ull << 56, &ref), -EINVAL);
    BL_CHECK_EQ(bl_monitor(self & ~0xFFFFFFFFull, &ref), -EINVAL);
    BL_CHECK_EQ(bl_monitor(self, NULL), -EINVAL);
    BL_CHECK_EQ(bl_monitor_ex(self, 4, &ref), -EINVAL);
    BL_CHECK_EQ(ref, 0);
    /* Well-formed, never handed out: DOWN noproc, as for a dead pid. */
    const bl_pid never[] = {bl__pid_make(1000000, 0), bl__pid_make(UINT32_MAX - 1, 5),
                            bl__pid_make(bl__pid_idx(self), bl__pid_gen(self) + 7)};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        BL_CHECK_EQ(bl_monitor(never[i], &ref), 0);
        bl_pid from = 0;
        BL_CHECK_EQ(down_of(ref, &from, 0), BL_NOPROC);
        BL_CHECK_EQ(from, never[i]);
    }
    /* A link to one: the noproc exit signal, as for a dead pid. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_link(never[0]), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 0);
    bl_reason r;
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && r.kind == BL_NOPROC && m->from == never[0]);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_unlink(never[0]), 0);
    BL_CHECK_EQ(bl_unlink(BL_PID_NONE), -EINVAL);
    bl_trap_exit(false);
}

Test(monitor, any_wellformed_pid_gets_noproc)
{
    bl_test_run(NULL, pids_main, NULL);
}

static void self_monitor(void *arg)
{
    bl_ref ref = 0, ref2 = 0;
    BL_CHECK_EQ(bl_monitor(bl_self(), &ref), 0);
    BL_CHECK(ref != BL_REF_NONE);
    BL_CHECK_EQ(bl_register("self_monitor", bl_self()), 0);
    BL_CHECK_EQ(bl_monitor_name("self_monitor", &ref2), 0);
    BL_CHECK(ref2 != BL_REF_NONE && ref2 != ref);
    BL_CHECK_EQ(bl_mailbox_len(), 0); /* any signal to itself is handled */
    bl_proc_info in;
    BL_CHECK_EQ(bl_process_info(bl_self(), &in), 0);
    BL_CHECK_EQ(in.nmonitors, 0);
    /* Only the parent's monitor (from the spawn) is on it. */
    BL_CHECK_EQ(in.nmonitored_by, 1);
    BL_CHECK_EQ(in.monitored_by[0], *(bl_pid *)arg);
    /* No monitor to turn off. */
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 0);
    bl_send(*(bl_pid *)arg, T_REPLY, NULL, 0);
    bl_exit(7);
}

static void self_main(void *arg)
{
    bl_pid self = bl_self(), p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, self_monitor, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_REPLY, 10000));
    bl_reason why;
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    BL_CHECK(m && m->tag == BL_TAG_DOWN && bl_msg_reason(m, &why) == 0 && why.code == 7);
    bl_msg_free(m);
}

Test(monitor, monitoring_yourself_creates_nothing)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, self_main, NULL);
}
