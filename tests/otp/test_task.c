/*
 * Tasks: async/await, yield, yield_many, await_many, ignore, shutdown,
 * start/start_link, tasks started through a spawner, async_stream.
 *
 * Timing-based cases use 50 ms units and leave at least one unit of margin
 * either side of every timeout; everything else waits on the event itself.
 */
#include <errno.h>
#include <time.h>

#include "beamline/task.h"
#include "bl_test.h"

/* The time unit of the timing tests: the TSan build runs several times
 * slower, and on a loaded machine a 50 ms sleep there overran a 150 ms
 * timeout. */
#if defined(BL_TSAN)
#define UNIT 200 /* ms */
#else
#define UNIT 50 /* ms */
#endif

enum { T_GO = 1, T_READY, T_PID, T_START, T_DONE };

static const bl_config quiet = {.quiet = true};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The int a result holds, or -1. */
static int res_int(const bl_task_result *r)
{
    int v = -1;
    if (r->status == BL_TASK_OK && r->len == sizeof v) memcpy(&v, r->data, sizeof v);
    return v;
}

/* Monitors pid and waits for its DOWN: the reason's kind, or -1 on timeout. */
static int wait_dead(bl_pid pid)
{
    bl_ref ref;
    if (bl_monitor(pid, &ref) != 0) return -1;
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    bl_reason r;
    int kind = bl_msg_reason(m, &r) == 0 ? (int)r.kind : -1;
    bl_msg_free(m);
    return kind;
}

static void block_forever(void)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/* ---- task functions ---- */

static void ret_int(void *arg, bl_task_out *out)
{
    int v = (int)(intptr_t)arg;
    bl_task_return(out, &v, sizeof v);
}

/* Sleeps arg units, returns arg. */
static void sleep_units(void *arg, bl_task_out *out)
{
    int v = (int)(intptr_t)arg;
    bl_sleep((int64_t)v * UNIT);
    bl_task_return(out, &v, sizeof v);
}

static void ret_nothing(void *arg, bl_task_out *out)
{
    (void)arg;
    (void)out;
}

static void ret_big(void *arg, bl_task_out *out)
{
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7);
    /* Replaced: only the last result counts. */
    int small = 1;
    bl_task_return(out, &small, sizeof small);
    bl_task_return(out, buf, sizeof buf);
}

static void blocker(void *arg, bl_task_out *out)
{
    block_forever();
}

/* Waits for T_GO, then returns arg. */
static void wait_go(void *arg, bl_task_out *out)
{
    bl_msg *m = bl_test_recv_tag(T_GO, 10000);
    bl_msg_free(m);
    ret_int(arg, out);
}

static void square(void *ctx, void *item, bl_task_out *out);

static void crash(void *arg, bl_task_out *out)
{
    bl_reason r = {.kind = BL_CUSTOM, .code = 42, .detail = "boom", .detail_len = 5};
    bl_exit_reason(&r);
}

/* Waits for T_GO, then crashes. */
static void go_crash(void *arg, bl_task_out *out)
{
    bl_msg_free(bl_test_recv_tag(T_GO, 10000));
    crash(arg, out);
}

/*
 * Starts a task that crashes on T_GO and waits for its death through a
 * monitor set while it lives: the task's own DOWN (its first monitor) is
 * queued by the time that one arrives.
 */
static void crash_and_wait(bl_task *t)
{
    BL_CHECK_EQ(bl_task_async_nolink(t, go_crash, NULL, NULL), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(t->pid, &ref), 0);
    bl_send(t->pid, T_GO, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
}

/* ---- async / await ---- */

static void await_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async(&t, ret_int, (void *)7, NULL), 0);
    BL_CHECK_EQ(t.owner, bl_self());
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK_EQ(r.status, BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 7);
    bl_task_result_free(&r);
    BL_CHECK(r.msg == NULL && r.status == BL_TASK_NIL);
    /* Spent: a second await fails at once. */
    BL_CHECK_EQ(bl_task_await(&t, 1000, &r), -EINVAL);
    /* Its DOWN never shows up. */
    BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A result bigger than the inline buffer, and an empty one. */
    BL_CHECK_EQ(bl_task_async(&t, ret_big, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK_EQ(r.len, 1000);
    bool same = r.len == 1000;
    for (size_t i = 0; same && i < r.len; i++)
        same = ((const unsigned char *)r.data)[i] == (unsigned char)(i * 7);
    BL_CHECK(same);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_async_nolink(&t, ret_nothing, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK(r.len == 0 && r.data == NULL && r.status == BL_TASK_OK);
    bl_task_result_free(&r);

    /* Many at once, awaited in order; slots are recycled. */
    enum { N = 300 };
    static bl_task ts[N];
    for (int i = 0; i < N; i++)
        BL_CHECK_EQ(bl_task_async(&ts[i], ret_int, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < N; i++) {
        BL_CHECK_EQ(bl_task_await(&ts[i], 5000, &r), 0);
        BL_CHECK_EQ(res_int(&r), i);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, async_await)
{
    bl_test_run(&quiet, await_main, NULL);
}

static void await_timeout_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    /* Linked: the task dies with the timeout (Elixir's caller would exit). */
    BL_CHECK_EQ(bl_task_async(&t, blocker, NULL, NULL), 0);
    uint64_t t0 = now_ms();
    BL_CHECK_EQ(bl_task_await(&t, 2 * UNIT, &r), -ETIMEDOUT);
    BL_CHECK(now_ms() - t0 >= 2 * UNIT - 5);
    BL_CHECK_EQ(r.status, BL_TASK_NIL);
    BL_CHECK(!bl_is_alive(t.pid));
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), -EINVAL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Unlinked: it is ignored and runs on; its result never comes. */
    BL_CHECK_EQ(bl_task_async_nolink(&t, wait_go, (void *)3, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, UNIT, &r), -ETIMEDOUT);
    BL_CHECK(bl_is_alive(t.pid));
    bl_ref probe;
    BL_CHECK_EQ(bl_monitor(t.pid, &probe), 0);
    bl_send(t.pid, T_GO, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &probe, 10000, 0), 0);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Timeout 0 polls. */
    BL_CHECK_EQ(bl_task_async(&t, blocker, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), -ETIMEDOUT);
    BL_CHECK(!bl_is_alive(t.pid));
}

Test(task, await_timeout)
{
    bl_test_run(&quiet, await_timeout_main, NULL);
}

static void await_crash_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    bl_reason boom = {.kind = BL_CUSTOM, .code = 42, .detail = "boom", .detail_len = 5};
    /* Linked: trap exits, or the link takes the caller down. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_task_async(&t, crash, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK_EQ(r.status, BL_TASK_EXIT);
    BL_CHECK(bl_reason_eq(&r.reason, &boom));
    BL_CHECK(r.msg && r.msg->tag == BL_TAG_DOWN && r.msg->from == t.pid);
    bl_task_result_free(&r);
    /* The link's EXIT is the caller's to take, as in Elixir. */
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 5000);
    BL_CHECK(m && m->from == t.pid);
    bl_msg_free(m);
    bl_trap_exit(false);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Unlinked: no trapping needed. */
    BL_CHECK_EQ(bl_task_async_nolink(&t, crash, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK(bl_reason_eq(&r.reason, &boom));
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Killed from outside. */
    BL_CHECK_EQ(bl_task_async_nolink(&t, blocker, NULL, NULL), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(t.pid, &kill);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK_EQ(r.reason.kind, BL_KILLED);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, await_crash_reports_reason)
{
    bl_test_run(&quiet, await_crash_main, NULL);
}

/* Another process tries to collect the main process's task. */
static void thief(void *arg)
{
    bl_task t = *(bl_task *)arg;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_await(&t, 10, &r), -EPERM);
    BL_CHECK_EQ(bl_task_yield(&t, 10, &r), -EPERM);
    BL_CHECK_EQ(bl_task_ignore(&t, &r), -EPERM);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), -EPERM);
    BL_CHECK_EQ(bl_task_yield_many(&t, 1, 10, &r, NULL), -EPERM);
    BL_CHECK_EQ(bl_task_await_many(&t, 1, 10, &r), -EPERM);
    bl_send(t.owner, T_DONE, NULL, 0);
}

static void owner_only_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async(&t, wait_go, (void *)5, NULL), 0);
    BL_CHECK_EQ(bl_spawn(NULL, thief, &t, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    /* Nothing was touched: the owner still gets the result. */
    bl_send(t.pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK_EQ(res_int(&r), 5);
    bl_task_result_free(&r);
    /* Bad arguments. */
    BL_CHECK_EQ(bl_task_async(NULL, ret_int, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_async(&t, NULL, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_await(NULL, 10, &r), -EINVAL);
    BL_CHECK_EQ(bl_task_async(&t, ret_int, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, -5, &r), -EINVAL);
    BL_CHECK_EQ(bl_task_await(&t, 10, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_shutdown(&t, -7, NULL), -EINVAL);
    bl_task dup[2] = {t, t};
    BL_CHECK_EQ(bl_task_yield_many(dup, 2, 10, (bl_task_result[2]){0}, NULL), -EINVAL);
    bl_task_yield_opts bad = {.on_timeout = BL_TASK_ON_TIMEOUT_EXIT};
    BL_CHECK_EQ(bl_task_yield_many(&t, 1, 10, &r, &bad), -EINVAL);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_return(NULL, NULL, 0), -EINVAL);
}

Test(task, only_the_owner_collects)
{
    bl_test_run(&quiet, owner_only_main, NULL);
    /* Outside a process. */
    bl_task t = {0};
    bl_task_result r;
    cr_assert_eq(bl_task_await(&t, 0, &r), -EPERM);
    cr_assert_eq(bl_task_start_link(NULL, ret_int, NULL, NULL), -EPERM);
    cr_assert_eq(bl_task_start(NULL, ret_int, NULL, NULL), -ESRCH);
}

/* ---- yield ---- */

static void yield_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async(&t, wait_go, (void *)9, NULL), 0);
    /* nil, as often as asked: the task keeps running. */
    BL_CHECK_EQ(bl_task_yield(&t, UNIT, &r), BL_TASK_NIL);
    BL_CHECK_EQ(r.status, BL_TASK_NIL);
    BL_CHECK_EQ(bl_task_yield(&t, 0, &r), BL_TASK_NIL);
    BL_CHECK(bl_is_alive(t.pid));
    bl_send(t.pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_task_yield(&t, 5000, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 9);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_yield(&t, 0, &r), -EINVAL);
    BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A task that died: EXIT with its reason. */
    BL_CHECK_EQ(bl_task_async_nolink(&t, crash, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_yield(&t, 5000, &r), BL_TASK_EXIT);
    BL_CHECK(r.reason.kind == BL_CUSTOM && r.reason.code == 42);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, yield_nil_then_result)
{
    bl_test_run(&quiet, yield_main, NULL);
}

/* ---- yield_many ---- */

static void yield_many_main(void *arg)
{
    enum { N = 10 };
    bl_task ts[N];
    bl_task_result rs[N];
    /* Task i sleeps (i + 1) units; after 5 units the first ones have answered. */
    for (int i = 0; i < N; i++)
        BL_CHECK_EQ(bl_task_async(&ts[i], sleep_units, (void *)(intptr_t)(i + 1), NULL), 0);
    bl_task_yield_opts kill = {.on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK};
    int got = bl_task_yield_many(ts, N, 5 * UNIT, rs, &kill);
    int st[N];
    int oks = 0;
    for (int i = 0; i < N; i++) {
        BL_CHECK_EQ(rs[i].index, i);
        st[i] = rs[i].status;
        BL_CHECK(rs[i].status == BL_TASK_OK || rs[i].status == BL_TASK_NIL);
        if (rs[i].status == BL_TASK_OK) {
            BL_CHECK_EQ(res_int(&rs[i]), i + 1);
            oks++;
        } else {
            /* Killed: dead by the time yield_many returned. */
            BL_CHECK(!bl_is_alive(ts[i].pid));
        }
        BL_CHECK_EQ(ts[i].ref, BL_REF_NONE);
        bl_task_result_free(&rs[i]);
    }
    BL_CHECK_EQ(got, oks);
    /* One unit of margin either side of the timeout at least. */
    BL_CHECK(st[0] == BL_TASK_OK && st[1] == BL_TASK_OK && st[2] == BL_TASK_OK);
    BL_CHECK(oks >= 3 && oks <= 5);
    for (int i = 6; i < N; i++) BL_CHECK_EQ(st[i], BL_TASK_NIL);
    /* Answers in sleep order: no NIL before an OK. */
    for (int i = 1; i < N; i++) BL_CHECK(st[i] != BL_TASK_OK || st[i - 1] == BL_TASK_OK);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Default (Elixir's :nothing): the late task runs on and can be yielded later. */
    BL_CHECK_EQ(bl_task_async(&ts[0], ret_int, (void *)1, NULL), 0);
    BL_CHECK_EQ(bl_task_async(&ts[1], wait_go, (void *)2, NULL), 0);
    BL_CHECK_EQ(bl_task_yield_many(ts, 2, UNIT, rs, NULL), 1);
    BL_CHECK_EQ(res_int(&rs[0]), 1);
    BL_CHECK_EQ(rs[1].status, BL_TASK_NIL);
    bl_task_result_free(&rs[0]);
    bl_send(ts[1].pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_task_yield(&ts[1], 5000, &rs[1]), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&rs[1]), 2);
    bl_task_result_free(&rs[1]);

    /* :ignore: it runs on and its result is dropped. */
    BL_CHECK_EQ(bl_task_async(&ts[0], wait_go, (void *)3, NULL), 0);
    bl_task_yield_opts ign = {.on_timeout = BL_TASK_ON_TIMEOUT_IGNORE};
    BL_CHECK_EQ(bl_task_yield_many(ts, 1, UNIT, rs, &ign), 0);
    BL_CHECK_EQ(rs[0].status, BL_TASK_NIL);
    BL_CHECK_EQ(ts[0].ref, BL_REF_NONE);
    bl_pid p = ts[0].pid;
    bl_ref probe;
    BL_CHECK_EQ(bl_monitor(p, &probe), 0);
    bl_send(p, T_GO, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &probe, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* limit: returns as soon as that many answered, the others untouched. */
    BL_CHECK_EQ(bl_task_async(&ts[0], ret_int, (void *)1, NULL), 0);
    BL_CHECK_EQ(bl_task_async(&ts[1], blocker, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_async(&ts[2], ret_int, (void *)3, NULL), 0);
    bl_task_yield_opts lim = {.on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK, .limit = 2};
    BL_CHECK_EQ(bl_task_yield_many(ts, 3, BL_INFINITY, rs, &lim), 2);
    BL_CHECK(res_int(&rs[0]) == 1 && rs[1].status == BL_TASK_NIL && res_int(&rs[2]) == 3);
    BL_CHECK(bl_is_alive(ts[1].pid));
    BL_CHECK_EQ(bl_task_shutdown(&ts[1], BL_TASK_BRUTAL_KILL, NULL), BL_TASK_NIL);
    bl_task_result_free(&rs[0]);
    bl_task_result_free(&rs[2]);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, yield_many)
{
    bl_test_run(&quiet, yield_many_main, NULL);
}

/* ---- await_many ---- */

static void await_many_main(void *arg)
{
    enum { N = 5 };
    bl_task ts[N];
    bl_task_result rs[N];
    /* Later tasks finish first; results come back in input order. */
    for (int i = 0; i < N; i++)
        BL_CHECK_EQ(bl_task_async(&ts[i], sleep_units, (void *)(intptr_t)(N - i), NULL), 0);
    BL_CHECK_EQ(bl_task_await_many(ts, N, 5000, rs), 0);
    for (int i = 0; i < N; i++) {
        BL_CHECK_EQ(rs[i].index, i);
        BL_CHECK_EQ(res_int(&rs[i]), N - i);
        bl_task_result_free(&rs[i]);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_task_await_many(NULL, 0, 10, NULL), 0);

    /* A crash: reported, the unlinked others are ignored and run on. */
    BL_CHECK_EQ(bl_task_async_nolink(&ts[0], ret_int, (void *)1, NULL), 0);
    BL_CHECK_EQ(bl_task_async_nolink(&ts[1], crash, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_async_nolink(&ts[2], wait_go, (void *)3, NULL), 0);
    BL_CHECK_EQ(bl_task_await_many(ts, 3, 5000, rs), -ECONNRESET);
    BL_CHECK_EQ(rs[1].status, BL_TASK_EXIT);
    BL_CHECK_EQ(rs[1].reason.code, 42);
    BL_CHECK(rs[0].status == BL_TASK_OK || rs[0].status == BL_TASK_NIL);
    BL_CHECK_EQ(rs[2].status, BL_TASK_NIL);
    for (int i = 0; i < 3; i++) {
        BL_CHECK_EQ(ts[i].ref, BL_REF_NONE);
        bl_task_result_free(&rs[i]);
    }
    BL_CHECK(bl_is_alive(ts[2].pid));
    /* Monitor before the go: it may end before a later monitor (noproc). */
    bl_ref r2;
    BL_CHECK_EQ(bl_monitor(ts[2].pid, &r2), 0);
    bl_send(ts[2].pid, T_GO, NULL, 0);
    bl_msg *d2 = NULL;
    bl_reason why2 = BL_REASON(BL_NOPROC);
    BL_CHECK_EQ(bl_recv(&d2, bl_match_ref, &r2, 10000, 0), 0);
    if (d2) bl_msg_reason(d2, &why2);
    BL_CHECK_EQ(why2.kind, BL_NORMAL);
    bl_msg_free(d2);
    BL_CHECK_EQ(wait_dead(ts[0].pid) >= 0, 1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A timeout: the linked tasks still running are killed. */
    BL_CHECK_EQ(bl_task_async(&ts[0], ret_int, (void *)1, NULL), 0);
    BL_CHECK_EQ(bl_task_async(&ts[1], blocker, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_async(&ts[2], blocker, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_await_many(ts, 3, 2 * UNIT, rs), -ETIMEDOUT);
    BL_CHECK_EQ(res_int(&rs[0]), 1);
    BL_CHECK(rs[1].status == BL_TASK_NIL && rs[2].status == BL_TASK_NIL);
    BL_CHECK(!bl_is_alive(ts[1].pid) && !bl_is_alive(ts[2].pid));
    for (int i = 0; i < 3; i++) bl_task_result_free(&rs[i]);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, await_many)
{
    bl_test_run(&quiet, await_many_main, NULL);
}

/* ---- ignore ---- */

static void ignore_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    /* Still running: nil; it finishes later and nothing arrives. */
    BL_CHECK_EQ(bl_task_async(&t, wait_go, (void *)4, NULL), 0);
    BL_CHECK_EQ(bl_task_ignore(&t, &r), BL_TASK_NIL);
    BL_CHECK_EQ(t.ref, BL_REF_NONE);
    BL_CHECK_EQ(bl_task_await(&t, 10, &r), -EINVAL);
    bl_ref probe;
    BL_CHECK_EQ(bl_monitor(t.pid, &probe), 0);
    bl_send(t.pid, T_GO, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &probe, 10000, 0), 0);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(m);
    /* The reply would have come before that DOWN. */
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Already answered: ignore returns the result. */
    BL_CHECK_EQ(bl_task_async(&t, ret_int, (void *)6, NULL), 0);
    BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    BL_CHECK_EQ(bl_task_ignore(&t, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 6);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Already dead: its reason. */
    crash_and_wait(&t);
    BL_CHECK_EQ(bl_task_ignore(&t, NULL), BL_TASK_EXIT);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Unlinked by ignore: its crash no longer reaches the caller. */
    BL_CHECK_EQ(bl_task_async(&t, go_crash, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_ignore(&t, NULL), BL_TASK_NIL);
    BL_CHECK_EQ(bl_monitor(t.pid, &probe), 0);
    bl_send(t.pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &probe, 10000, 0), 0);
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_CUSTOM);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Racing the reply: either the result comes back or nothing ever does. */
    for (int i = 0; i < BL_SCALE(200); i++) {
        BL_CHECK_EQ(bl_task_async(&t, ret_int, (void *)(intptr_t)i, NULL), 0);
        int st = bl_task_ignore(&t, &r);
        BL_CHECK(st == BL_TASK_OK || st == BL_TASK_NIL);
        if (st == BL_TASK_OK) BL_CHECK_EQ(res_int(&r), i);
        bl_task_result_free(&r);
        BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

/* Copies of a settled task: every call returns, none waits for what is gone. */
static void copies_main(void *arg)
{
    bl_task t, c1, c2, c3;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async(&t, ret_int, (void *)1, NULL), 0);
    c1 = c2 = c3 = t;
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_ignore(&c1, NULL), BL_TASK_NIL);
    int st = bl_task_shutdown(&c2, BL_TASK_BRUTAL_KILL, &r);
    BL_CHECK(st == BL_TASK_NIL || st == BL_TASK_EXIT);
    bl_task_result_free(&r);
    bl_task_yield_opts kill = {.on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK};
    BL_CHECK_EQ(bl_task_yield_many(&c3, 1, 10, &r, &kill) >= 0, 1);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A copy of an ignored task that still runs. */
    BL_CHECK_EQ(bl_task_async(&t, wait_go, (void *)2, NULL), 0);
    c1 = t;
    BL_CHECK_EQ(bl_task_ignore(&t, NULL), BL_TASK_NIL);
    BL_CHECK_EQ(bl_task_ignore(&c1, NULL), BL_TASK_NIL);
    BL_CHECK(bl_is_alive(t.pid));
    bl_send(t.pid, T_GO, NULL, 0);
    BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, copies_of_settled_tasks)
{
    bl_test_run(&quiet, copies_main, NULL);
}

Test(task, ignore)
{
    bl_test_run(&quiet, ignore_main, NULL);
}

/* ---- shutdown ---- */

typedef struct trap_arg {
    bl_pid owner;
    bool answer; /* answer the shutdown with a result, or keep waiting */
} trap_arg;

/* Traps exits, says so, then answers the first EXIT (or not). */
static void trapper(void *arg, bl_task_out *out)
{
    trap_arg *a = arg;
    bl_trap_exit(true);
    bl_send(a->owner, T_READY, NULL, 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_SHUTDOWN);
    bl_msg_free(m);
    if (!a->answer) block_forever();
    int v = 77;
    bl_task_return(out, &v, sizeof v);
}

static void shutdown_main(void *arg)
{
    bl_task t;
    bl_task_result r;
    /* brutal_kill of a running task: nil, and it is dead. */
    BL_CHECK_EQ(bl_task_async(&t, blocker, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), BL_TASK_NIL);
    BL_CHECK(!bl_is_alive(t.pid));
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), -EINVAL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A task that had finished: its result. */
    BL_CHECK_EQ(bl_task_async(&t, ret_int, (void *)8, NULL), 0);
    BL_CHECK_EQ(wait_dead(t.pid) >= 0, 1);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 8);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* One that had failed: its reason. */
    crash_and_wait(&t);
    BL_CHECK_EQ(bl_task_shutdown(&t, 1000, &r), BL_TASK_EXIT);
    BL_CHECK_EQ(r.reason.code, 42);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* With a timeout, a task that does not trap goes at once. */
    BL_CHECK_EQ(bl_task_async(&t, blocker, NULL, NULL), 0);
    uint64_t t0 = now_ms();
    BL_CHECK_EQ(bl_task_shutdown(&t, 5000, &r), BL_TASK_NIL);
    BL_CHECK(now_ms() - t0 < 2500);
    BL_CHECK(!bl_is_alive(t.pid));

    /* A trapping task that answers in time: its result. */
    trap_arg ta = {bl_self(), true};
    BL_CHECK_EQ(bl_task_async(&t, trapper, &ta, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    BL_CHECK_EQ(bl_task_shutdown(&t, 5000, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 77);
    bl_task_result_free(&r);
    BL_CHECK(!bl_is_alive(t.pid));
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A trapping task that does not: killed after the timeout, {:exit, :killed}. */
    trap_arg tb = {bl_self(), false};
    BL_CHECK_EQ(bl_task_async(&t, trapper, &tb, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    t0 = now_ms();
    BL_CHECK_EQ(bl_task_shutdown(&t, 2 * UNIT, NULL), BL_TASK_EXIT);
    BL_CHECK(now_ms() - t0 >= 2 * UNIT - 5);
    BL_CHECK(!bl_is_alive(t.pid));
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, shutdown)
{
    bl_test_run(&quiet, shutdown_main, NULL);
}

/* ---- start / start_link ---- */

static void tell_owner(void *arg, bl_task_out *out)
{
    bl_send(*(bl_pid *)arg, T_DONE, NULL, 0);
}

/* start_links a crashing task, then waits: the link takes it down. */
static void linker(void *arg)
{
    bl_pid p;
    BL_CHECK_EQ(bl_task_start_link(&p, go_crash, NULL, NULL), 0);
    bl_send(p, T_GO, NULL, 0);
    block_forever();
}

static void start_main(void *arg)
{
    bl_pid self = bl_self(), p;
    BL_CHECK_EQ(bl_task_start(&p, tell_owner, &self, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_DONE, 10000);
    BL_CHECK(m && m->from == p);
    bl_msg_free(m);
    BL_CHECK_EQ(wait_dead(p) >= 0, 1);
    /* Not linked: its crash leaves the caller alone; no reply either. */
    BL_CHECK_EQ(bl_task_start(&p, crash, NULL, NULL), 0);
    BL_CHECK_EQ(wait_dead(p) >= 0, 1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Linked. */
    bl_pid l;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&l, &ref, linker, NULL, NULL), 0);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_CUSTOM && why.code == 42);
    bl_msg_free(m);
    /* start_link with a trapping caller: the EXIT, and no reply. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_task_start_link(&p, ret_int, NULL, NULL), 0);
    m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m && m->from == p && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(m);
    bl_trap_exit(false);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_task_start(&p, NULL, NULL, NULL), -EINVAL);
}

Test(task, start_and_start_link)
{
    bl_test_run(&quiet, start_main, NULL);
}

/* ---- tasks started through a spawner (what Task.Supervisor builds on) ---- */

typedef struct start_req {
    int (*start)(void *start_arg, bl_pid *pid);
    void *start_arg;
} start_req;

/* A stand-in supervisor: runs start functions on request, traps exits. */
static void fake_sup(void *arg)
{
    bl_trap_exit(true);
    for (;;) {
        bl_msg *m = bl_test_recv_tag(T_START, BL_INFINITY);
        if (!m) return;
        start_req q;
        memcpy(&q, m->data, sizeof q);
        bl_pid pid = BL_PID_NONE;
        int rc = q.start(q.start_arg, &pid);
        struct {
            int rc;
            bl_pid pid;
        } ans = {rc, pid};
        bl_send_ref(m->from, T_PID, m->ref, &ans, sizeof ans);
        bl_msg_free(m);
    }
}

static int sup_spawner(void *ctx, int (*start)(void *, bl_pid *), void *start_arg, bl_pid *pid)
{
    bl_pid sup = *(bl_pid *)ctx;
    start_req q = {start, start_arg};
    bl_ref ref = bl_make_ref();
    bl_send_ref(sup, T_START, ref, &q, sizeof q);
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 5000, 0) != 0) return -ETIMEDOUT;
    struct {
        int rc;
        bl_pid pid;
    } ans;
    memcpy(&ans, m->data, sizeof ans);
    bl_msg_free(m);
    *pid = ans.pid;
    return ans.rc;
}

static int failing_spawner(void *ctx, int (*start)(void *, bl_pid *), void *start_arg, bl_pid *pid)
{
    return -EAGAIN;
}

static int lazy_spawner(void *ctx, int (*start)(void *, bl_pid *), void *start_arg, bl_pid *pid)
{
    *pid = bl_self(); /* claims success without starting anything */
    return 0;
}

static void via_main(void *arg)
{
    bl_pid sup;
    BL_CHECK_EQ(bl_spawn(&sup, fake_sup, NULL, NULL), 0);
    bl_task t;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async_via(&t, sup_spawner, &sup, ret_int, (void *)11, false), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK_EQ(res_int(&r), 11);
    bl_task_result_free(&r);
    /* Unlinked from the caller (linked to the supervisor): a crash is reported. */
    BL_CHECK_EQ(bl_task_async_via(&t, sup_spawner, &sup, crash, NULL, false), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK_EQ(r.reason.code, 42);
    bl_task_result_free(&r);
    /* Linked to the caller as well when asked. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_task_async_via(&t, sup_spawner, &sup, go_crash, NULL, true), 0);
    bl_send(t.pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    bl_task_result_free(&r);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 5000);
    BL_CHECK(m && m->from == t.pid);
    bl_msg_free(m);
    bl_trap_exit(false);
    /* Spawners that fail. */
    BL_CHECK_EQ(bl_task_async_via(&t, failing_spawner, NULL, ret_int, NULL, false), -EAGAIN);
    BL_CHECK_EQ(bl_task_async_via(&t, lazy_spawner, NULL, ret_int, NULL, false), -ECANCELED);
    BL_CHECK_EQ(bl_task_child_start(NULL, NULL), -EINVAL);
    /* A stream through the spawner. */
    int items[6] = {0, 1, 2, 3, 4, 5};
    bl_task_stream *s;
    bl_task_stream_opts o = {.max_concurrency = 2, .spawner = sup_spawner, .spawner_ctx = &sup};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 6, sizeof(int), square, NULL, &o), 0);
    for (int i = 0; i < 6; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        BL_CHECK_EQ(res_int(&r), i * i);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(sup, &kill);
    BL_CHECK_EQ(wait_dead(sup) >= 0, 1);
    /* The supervisor got EXITs from its tasks; ours is clean. */
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, via_spawner)
{
    bl_test_run(&quiet, via_main, NULL);
}

/* ---- async_stream ---- */

static void square(void *ctx, void *item, bl_task_out *out)
{
    int v;
    memcpy(&v, item, sizeof v);
    v *= v;
    bl_task_return(out, &v, sizeof v);
}

/* Item v sleeps v units (a negative v: forever, recording its pid), returns v. */
typedef struct sleepy_ctx {
    _Atomic bl_pid pids[64];
} sleepy_ctx;

static void sleepy(void *ctx, void *item, bl_task_out *out)
{
    int v;
    memcpy(&v, item, sizeof v);
    if (v < 0) {
        sleepy_ctx *c = ctx;
        atomic_store(&c->pids[-v], bl_self());
        block_forever();
    }
    bl_sleep((int64_t)v * UNIT);
    bl_task_return(out, &v, sizeof v);
}

static void stream_order_main(void *arg)
{
    bl_task_stream *s;
    bl_task_result r;
    /* Ordered (the default): input order although later items finish first. */
    int items[4] = {3, 2, 1, 0};
    bl_task_stream_opts o = {.max_concurrency = 4};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 4, sizeof(int), sleepy, NULL, &o), 0);
    for (int i = 0; i < 4; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        BL_CHECK_EQ(res_int(&r), items[i]);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);

    /* Unordered: completion order. */
    o.unordered = true;
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 4, sizeof(int), sleepy, NULL, &o), 0);
    for (int i = 0; i < 4; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, 3 - i);
        BL_CHECK_EQ(res_int(&r), i);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Empty input. */
    BL_CHECK_EQ(bl_task_stream_open(&s, NULL, 0, sizeof(int), square, NULL, NULL), 0);
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
}

Test(task, stream_ordered_and_unordered)
{
    bl_test_run(&quiet, stream_order_main, NULL);
}

typedef struct conc_ctx {
    _Atomic int live; /* task functions running now */
    _Atomic int peak; /* most at once */
} conc_ctx;

static void counted(void *ctx, void *item, bl_task_out *out)
{
    conc_ctx *c = ctx;
    int now = atomic_fetch_add(&c->live, 1) + 1;
    int p = atomic_load(&c->peak);
    while (now > p && !atomic_compare_exchange_weak(&c->peak, &p, now)) {
    }
    bl_sleep(2);
    atomic_fetch_sub(&c->live, 1);
    square(NULL, item, out);
}

static void stream_conc_main(void *arg)
{
    enum { N = 60 };
    int items[N];
    for (int i = 0; i < N; i++) items[i] = i;
    for (int unordered = 0; unordered < 2; unordered++) {
        conc_ctx c = {0};
        bl_task_stream *s;
        bl_task_result r;
        bl_task_stream_opts o = {.max_concurrency = 3, .unordered = unordered};
        BL_CHECK_EQ(bl_task_stream_open(&s, items, N, sizeof(int), counted, &c, &o), 0);
        bool seen[N] = {0};
        int n = 0;
        while (bl_task_stream_next(s, &r) == 1) {
            BL_CHECK(r.index < N);
            if (r.index < N) {
                BL_CHECK(!seen[r.index]);
                seen[r.index] = true;
                if (!unordered) BL_CHECK_EQ(r.index, n);
                BL_CHECK_EQ(res_int(&r), (int)(r.index * r.index));
            }
            bl_task_result_free(&r);
            n++;
        }
        BL_CHECK_EQ(n, N);
        BL_CHECK(atomic_load(&c.peak) <= 3);
        BL_CHECK(atomic_load(&c.peak) >= 2);
        BL_CHECK_EQ(bl_task_stream_close(s), 0);
    }
    /* Default concurrency: the number of schedulers. */
    conc_ctx c = {0};
    bl_task_stream *s;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_stream_open(&s, items, N, sizeof(int), counted, &c, NULL), 0);
    while (bl_task_stream_next(s, &r) == 1) bl_task_result_free(&r);
    BL_CHECK(atomic_load(&c.peak) <= (int)bl_schedulers());
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, stream_max_concurrency)
{
    bl_test_run(&quiet, stream_conc_main, NULL);
}

static void stream_timeout_main(void *arg)
{
    bl_task_stream *s;
    bl_task_result r;
    /* kill_task: the stuck items yield {exit, timeout}, the stream goes on. */
    sleepy_ctx c = {0};
    int items[5] = {0, -1, 0, -2, 1};
    bl_task_stream_opts o = {
        .max_concurrency = 5, .timeout = 3 * UNIT, .on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 5, sizeof(int), sleepy, &c, &o), 0);
    for (int i = 0; i < 5; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        if (items[i] < 0) {
            BL_CHECK_EQ(r.status, BL_TASK_EXIT);
            BL_CHECK_EQ(r.reason.kind, BL_TIMEOUT);
            bl_pid p = atomic_load(&c.pids[-items[i]]);
            BL_CHECK(p && !bl_is_alive(p));
        } else {
            BL_CHECK_EQ(res_int(&r), items[i]);
        }
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* exit (the default): an error, and every task is killed. */
    sleepy_ctx d = {0};
    int items2[4] = {0, -1, -2, -3};
    bl_task_stream_opts o2 = {.max_concurrency = 4, .timeout = 2 * UNIT};
    BL_CHECK_EQ(bl_task_stream_open(&s, items2, 4, sizeof(int), sleepy, &d, &o2), 0);
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
    BL_CHECK_EQ(res_int(&r), 0);
    bl_task_result_free(&r);
    uint64_t t0 = now_ms();
    BL_CHECK_EQ(bl_task_stream_next(s, &r), -ETIMEDOUT);
    BL_CHECK(now_ms() - t0 < 10 * UNIT);
    for (int i = 1; i <= 3; i++) {
        bl_pid p = atomic_load(&d.pids[i]);
        BL_CHECK(p && !bl_is_alive(p));
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), -ETIMEDOUT);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Bad options. */
    bl_task_stream_opts bad = {.on_timeout = BL_TASK_ON_TIMEOUT_IGNORE};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 5, sizeof(int), sleepy, &c, &bad), -EINVAL);
    bad = (bl_task_stream_opts){.timeout = -3};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 5, sizeof(int), sleepy, &c, &bad), -EINVAL);
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 5, 0, sleepy, &c, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_stream_open(&s, NULL, 5, sizeof(int), sleepy, &c, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 5, sizeof(int), NULL, &c, NULL), -EINVAL);
}

Test(task, stream_timeouts)
{
    bl_test_run(&quiet, stream_timeout_main, NULL);
}

typedef struct gen_state {
    int next, end, fail_at;
} gen_state;

static int counter(void *state, void *item)
{
    gen_state *g = state;
    if (g->fail_at >= 0 && g->next == g->fail_at) return -EIO;
    if (g->next == g->end) return 0;
    memcpy(item, &g->next, sizeof g->next);
    g->next++;
    return 1;
}

/* Tries to use a stream it does not own. */
static void stream_thief(void *arg)
{
    bl_task_result r;
    BL_CHECK_EQ(bl_task_stream_next(arg, &r), -EPERM);
    BL_CHECK_EQ(bl_task_stream_close(arg), -EPERM);
}

static void stream_gen_main(void *arg)
{
    bl_task_stream *s;
    bl_task_result r;
    gen_state g = {0, 25, -1};
    bl_task_stream_opts o = {.max_concurrency = 4};
    BL_CHECK_EQ(bl_task_stream_open_gen(&s, counter, &g, sizeof(int), square, NULL, &o), 0);
    BL_CHECK_EQ(g.next, 0); /* lazy */
    for (int i = 0; i < 25; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        BL_CHECK_EQ(res_int(&r), i * i);
        bl_task_result_free(&r);
        /* Pulled on demand: never more than max_concurrency ahead. */
        BL_CHECK(g.next <= i + 1 + 4);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);

    /* A generator error ends the stream. */
    gen_state h = {0, 100, 5};
    BL_CHECK_EQ(bl_task_stream_open_gen(&s, counter, &h, sizeof(int), square, NULL, &o), 0);
    int rc, n = 0;
    while ((rc = bl_task_stream_next(s, &r)) == 1) {
        n++;
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(rc, -EIO);
    BL_CHECK(n <= 5);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Only the consumer may pull or close. */
    gen_state k = {0, 3, -1};
    BL_CHECK_EQ(bl_task_stream_open_gen(&s, counter, &k, sizeof(int), square, NULL, &o), 0);
    bl_pid th;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&th, &ref, stream_thief, s, NULL), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    while (bl_task_stream_next(s, &r) == 1) bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
}

Test(task, stream_generator)
{
    bl_test_run(&quiet, stream_gen_main, NULL);
}

/* Item v: v >= 0 returns at once; v < 0 blocks (recording its pid); 100 crashes. */
static void mixed(void *ctx, void *item, bl_task_out *out)
{
    int v;
    memcpy(&v, item, sizeof v);
    if (v == 100) crash(NULL, out);
    sleepy(ctx, item, out);
}

static void stream_close_main(void *arg)
{
    bl_task_stream *s;
    bl_task_result r;
    /* Closing early kills what still runs. */
    sleepy_ctx c = {0};
    int items[8] = {0, 0, -1, -2, -3, -4, -5, -6};
    bl_task_stream_opts o = {.max_concurrency = 4};
    BL_CHECK_EQ(bl_task_stream_open(&s, items, 8, sizeof(int), sleepy, &c, &o), 0);
    for (int i = 0; i < 2; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        bl_task_result_free(&r);
    }
    /* Items 2.. are running now (up to 5: 4 outstanding at most); 6 and 7 never start. */
    /* Items 2 and 3 started with the first next: wait until they run. */
    while (!atomic_load(&c.pids[1]) || !atomic_load(&c.pids[2])) bl_yield();
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    for (int i = 1; i <= 4; i++) {
        bl_pid p = atomic_load(&c.pids[i]);
        BL_CHECK(!p || !bl_is_alive(p));
    }
    BL_CHECK(!atomic_load(&c.pids[5]) && !atomic_load(&c.pids[6]));
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A trapping consumer sees a crash as an EXIT result, and no EXIT messages. */
    bl_trap_exit(true);
    int items2[5] = {0, 100, 0, 0, 0};
    BL_CHECK_EQ(bl_task_stream_open(&s, items2, 5, sizeof(int), mixed, &c, &o), 0);
    for (int i = 0; i < 5; i++) {
        BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
        BL_CHECK_EQ(r.index, i);
        if (i == 1)
            BL_CHECK(r.status == BL_TASK_EXIT && r.reason.code == 42);
        else
            BL_CHECK_EQ(r.status, BL_TASK_OK);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 0);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Closing with finished tasks not yet collected leaves no EXIT behind either. */
    sleepy_ctx d = {0};
    int items3[4] = {0, 0, 0, -1};
    BL_CHECK_EQ(bl_task_stream_open(&s, items3, 4, sizeof(int), sleepy, &d, &o), 0);
    BL_CHECK_EQ(bl_task_stream_next(s, &r), 1);
    bl_task_result_free(&r);
    while (!atomic_load(&d.pids[1])) bl_yield();
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    BL_CHECK(!bl_is_alive(atomic_load(&d.pids[1])));
    bl_trap_exit(false);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task, stream_close_and_trapped_crash)
{
    bl_test_run(&quiet, stream_close_main, NULL);
}
