/*
 * Process aliases: bl_alias / bl_unalias / bl_send_alias, reply-once
 * aliases, and monitors whose reference is an alias.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_VIA = 1, T_MARK, T_GO };

typedef struct to_alias {
    bl_pid owner;
    bl_ref alias;
    int count; /* messages to send through it */
} to_alias;

/* Sends count messages to the alias, then T_MARK straight to the owner. */
static void sender(void *arg)
{
    to_alias *a = arg;
    for (int i = 0; i < a->count; i++)
        BL_CHECK_EQ(bl_send_alias(a->owner, T_VIA, a->alias, &i, sizeof i), 0);
    BL_CHECK_EQ(bl_send(a->owner, T_MARK, NULL, 0), 0);
}

/* Has a sender send count messages through alias; returns how many came
 * through (all that arrive before its T_MARK). */
static int through(bl_ref alias, int count)
{
    to_alias a = {bl_self(), alias, count};
    bl_pid p;
    bl_ref mon;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &mon, sender, &a, NULL), 0);
    int got = 0;
    for (;;) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bool mark = m->tag == T_MARK;
        if (m->tag == T_VIA) {
            BL_CHECK_EQ(m->ref, alias);
            BL_CHECK_EQ(*(int *)m->data, got);
            got++;
        }
        bl_msg_free(m);
        if (mark) break;
    }
    /* Its DOWN: the sender has nothing more on the way. */
    bl_msg *d = NULL;
    BL_CHECK_EQ(bl_recv(&d, bl_match_ref, &mon, 10000, 0), 0);
    bl_msg_free(d);
    return got;
}

/* As through(), but the messages are in the inbox, not yet taken, when
 * the alias is deactivated (bl_unalias is given the alias). */
static int through_after_unalias(bl_ref alias, int count)
{
    to_alias a = {bl_self(), alias, count};
    bl_pid p;
    BL_CHECK_EQ(bl_spawn(&p, sender, &a, NULL), 0);
    /* A yield does not take messages in: they wait in the inbox. */
    int64_t end = bl_test_ms() + 10000;
    while (bl_is_alive(p) && bl_test_ms() < end) bl_yield();
    BL_CHECK_EQ(bl_unalias(alias), 1);
    int got = 0;
    for (;;) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bool mark = m->tag == T_MARK;
        got += m->tag == T_VIA;
        bl_msg_free(m);
        if (mark) break;
    }
    return got;
}

static void alias_main(void *arg)
{
    bl_ref a = 0;
    BL_CHECK_EQ(bl_alias(2, &a), -EINVAL);
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, NULL), -EINVAL);
    BL_CHECK_EQ(a, 0);
    BL_CHECK_EQ(bl_unalias(BL_REF_NONE), -EINVAL);
    BL_CHECK_EQ(bl_send_alias(bl_self(), T_VIA, BL_REF_NONE, NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_send_alias(bl_self(), BL_TAG_SYSTEM, 5, NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_send_alias(BL_PID_NONE, T_VIA, 5, NULL, 0), -EINVAL);

    /* Explicit: every message comes through until bl_unalias. */
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, &a), 0);
    BL_CHECK(a != BL_REF_NONE);
    BL_CHECK_EQ(through(a, 3), 3);
    BL_CHECK_EQ(through(a, 2), 2);
    BL_CHECK_EQ(bl_unalias(a), 1);
    BL_CHECK_EQ(bl_unalias(a), 0);
    BL_CHECK_EQ(through(a, 3), 0);
    /* Deactivated while messages to it wait in the inbox: they go too. */
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, &a), 0);
    BL_CHECK_EQ(through_after_unalias(a, 4), 0);

    /* Reply: the first message only. */
    BL_CHECK_EQ(bl_alias(BL_ALIAS_REPLY, &a), 0);
    BL_CHECK_EQ(through(a, 3), 1);
    BL_CHECK_EQ(bl_unalias(a), 0); /* already gone */
    BL_CHECK_EQ(through(a, 1), 0);
    /* And it can be unaliased before any came. */
    BL_CHECK_EQ(bl_alias(BL_ALIAS_REPLY, &a), 0);
    BL_CHECK_EQ(bl_unalias(a), 1);
    BL_CHECK_EQ(through(a, 1), 0);

    /* Several at once, each on its own. */
    bl_ref x, y, z;
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, &x), 0);
    BL_CHECK_EQ(bl_alias(BL_ALIAS_REPLY, &y), 0);
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, &z), 0);
    BL_CHECK_EQ(bl_unalias(x), 1);
    BL_CHECK_EQ(through(z, 2), 2);
    BL_CHECK_EQ(through(y, 2), 1);
    BL_CHECK_EQ(through(x, 2), 0);
    BL_CHECK_EQ(bl_unalias(z), 1);
    /* A plain bl_send_ref with the same reference is an ordinary message. */
    BL_CHECK_EQ(bl_send_ref(bl_self(), T_VIA, z, NULL, 0), 0);
    bl_msg *m = bl_test_recv_tag(T_VIA, 0);
    BL_CHECK(m && m->ref == z);
    bl_msg_free(m);
}

Test(alias, alias_unalias_reply)
{
    bl_test_run(NULL, alias_main, NULL);
}

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/* Number of processes monitoring p. */
static uint32_t watchers_of(bl_pid p)
{
    bl_proc_info in;
    BL_CHECK_EQ(bl_process_info(p, &in), 0);
    return in.nmonitored_by;
}

/* True if a DOWN for ref comes (the target was killed just before). */
static bool down_comes(bl_ref ref, int64_t ms)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, ms, 0) != 0) return false;
    bool down = m->tag == BL_TAG_DOWN;
    bl_msg_free(m);
    return down;
}

static void monitor_alias_main(void *arg)
{
    bl_reason kill = BL_REASON(BL_KILL);
    bl_pid t, other;
    bl_ref r, r2;
    BL_CHECK_EQ(bl_spawn(&t, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_spawn(&other, wait_forever, NULL, NULL), 0);

    /* demonitor: the alias lives as long as the monitor. */
    BL_CHECK_EQ(bl_monitor_ex(t, BL_MONITOR_ALIAS_DEMONITOR, &r), 0);
    BL_CHECK_EQ(through(r, 2), 2);
    BL_CHECK_EQ(bl_demonitor(r, BL_DEMONITOR_INFO), 1);
    BL_CHECK_EQ(through(r, 1), 0);
    BL_CHECK_EQ(bl_unalias(r), 0);
    /* ... and ends with the DOWN too. */
    BL_CHECK_EQ(bl_monitor_ex(other, BL_MONITOR_ALIAS_DEMONITOR, &r2), 0);
    BL_CHECK_EQ(bl_exit_pid(other, &kill), 0);
    BL_CHECK(down_comes(r2, 10000));
    BL_CHECK_EQ(through(r2, 1), 0);
    /* ... or by bl_unalias, the monitor staying on. */
    BL_CHECK_EQ(bl_monitor_ex(t, BL_MONITOR_ALIAS_DEMONITOR, &r), 0);
    BL_CHECK_EQ(bl_unalias(r), 1);
    BL_CHECK_EQ(through(r, 1), 0);
    BL_CHECK_EQ(bl_demonitor(r, BL_DEMONITOR_INFO), 1);

    /* explicit: a demonitor leaves the alias. */
    BL_CHECK_EQ(bl_monitor_ex(t, BL_MONITOR_ALIAS_EXPLICIT, &r), 0);
    BL_CHECK_EQ(bl_demonitor(r, BL_DEMONITOR_INFO), 1);
    BL_CHECK_EQ(through(r, 2), 2);
    BL_CHECK_EQ(bl_unalias(r), 1);
    /* A dead target: DOWN noproc, and the explicit alias is still there. */
    BL_CHECK_EQ(bl_monitor_ex(other, BL_MONITOR_ALIAS_EXPLICIT, &r), 0);
    BL_CHECK(down_comes(r, 0));
    BL_CHECK_EQ(through(r, 1), 1);
    BL_CHECK_EQ(bl_unalias(r), 1);
    /* ... while a demonitor-bound one ends with that DOWN. */
    BL_CHECK_EQ(bl_monitor_ex(other, BL_MONITOR_ALIAS_REPLY_DEMONITOR, &r), 0);
    BL_CHECK(down_comes(r, 0));
    BL_CHECK_EQ(through(r, 1), 0);

    /* reply_demonitor: the first message ends alias and monitor. */
    BL_CHECK_EQ(watchers_of(t), 0);
    BL_CHECK_EQ(bl_monitor_ex(t, BL_MONITOR_ALIAS_REPLY_DEMONITOR, &r), 0);
    BL_CHECK_EQ(watchers_of(t), 1);
    BL_CHECK_EQ(through(r, 3), 1);
    BL_CHECK_EQ(bl_demonitor(r, BL_DEMONITOR_INFO), 0);
    BL_CHECK_EQ(watchers_of(t), 0);
    BL_CHECK_EQ(bl_exit_pid(t, &kill), 0);
    /* No DOWN for it: a new monitor's DOWN comes, and it alone. */
    bl_ref last;
    BL_CHECK_EQ(bl_monitor(t, &last), 0);
    BL_CHECK(down_comes(last, 10000));
    BL_CHECK(!down_comes(r, 0));

    /* Monitoring yourself: no alias either (as in Erlang). */
    BL_CHECK_EQ(bl_monitor_ex(bl_self(), BL_MONITOR_ALIAS_EXPLICIT, &r), 0);
    BL_CHECK_EQ(bl_unalias(r), 0);
}

Test(alias, monitor_aliases)
{
    bl_test_run(NULL, monitor_alias_main, NULL);
}

/* A process that exits with aliases, and sends to a dead process's alias. */
static void holder(void *arg)
{
    bl_ref a;
    BL_CHECK_EQ(bl_alias(BL_ALIAS_EXPLICIT, &a), 0);
    BL_CHECK_EQ(bl_alias(BL_ALIAS_REPLY, &a), 0);
    *(bl_ref *)arg = a;
}

static void dead_main(void *arg)
{
    bl_ref a = 0, mon;
    bl_pid p;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &mon, holder, &a, NULL), 0);
    BL_CHECK(down_comes(mon, 10000));
    BL_CHECK(a != BL_REF_NONE);
    BL_CHECK_EQ(bl_send_alias(p, T_VIA, a, "x", 1), 0);
}

Test(alias, dead_owner)
{
    bl_test_run(NULL, dead_main, NULL);
}

static void outside_main(void *arg) {}

Test(alias, outside_a_process)
{
    bl_test_run(NULL, outside_main, NULL);
    bl_ref r;
    cr_assert_eq(bl_alias(0, &r), -EPERM);
    cr_assert_eq(bl_unalias(1), -EPERM);
    cr_assert_eq(bl_monitor_ex(1, 0, &r), -EPERM);
}
