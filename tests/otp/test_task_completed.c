/*
 * bl_task_completed (Task.completed/1): a task that is done already, with
 * no process, collected like any other by await, yield, yield_many,
 * await_many, ignore and shutdown.
 */
#include <errno.h>

#include "beamline/task.h"
#include "bl_test.h"

enum { T_GO = 1, T_RC };

static const bl_config quiet = {.quiet = true};

/* The int a result holds, or -1. */
static int res_int(const bl_task_result *r)
{
    int v = -1;
    if (r->status == BL_TASK_OK && r->len == sizeof v) memcpy(&v, r->data, sizeof v);
    return v;
}

static void ret_int(void *arg, bl_task_out *out)
{
    int v = (int)(intptr_t)arg;
    bl_task_return(out, &v, sizeof v);
}

static bl_task completed_int(int v)
{
    bl_task t;
    BL_CHECK_EQ(bl_task_completed(&t, &v, sizeof v), 0);
    return t;
}

/* Tries to await a task it does not own and reports the result. */
static void stranger(void *arg)
{
    bl_task *t = arg;
    bl_task_result r;
    int rc = bl_task_await(t, 0, &r);
    bl_send(t->owner, T_RC, &rc, sizeof rc);
}

static void collect_main(void *arg)
{
    (void)arg;
    bl_task t, c;
    bl_task_result r;

    /* await: the result, at once, and nothing left behind. */
    t = completed_int(1);
    BL_CHECK_EQ(t.pid, BL_PID_NONE);
    BL_CHECK_EQ(t.owner, bl_self());
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), 0);
    BL_CHECK_EQ(res_int(&r), 1);
    bl_task_result_free(&r);
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), -EINVAL); /* spent */
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* An empty result and a large one. */
    BL_CHECK_EQ(bl_task_completed(&t, NULL, 0), 0);
    BL_CHECK_EQ(bl_task_yield(&t, 0, &r), BL_TASK_OK);
    BL_CHECK(r.len == 0 && r.data == NULL);
    bl_task_result_free(&r);
    unsigned char big[3000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 13);
    BL_CHECK_EQ(bl_task_completed(&t, big, sizeof big), 0);
    BL_CHECK_EQ(bl_task_await(&t, 1000, &r), 0);
    BL_CHECK(r.len == sizeof big && memcmp(r.data, big, sizeof big) == 0);
    bl_task_result_free(&r);

    /* Only its owner collects it. */
    t = completed_int(2);
    bl_pid s;
    BL_CHECK_EQ(bl_spawn(&s, stranger, &t, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_RC, 10000);
    BL_CHECK(m && *(const int *)m->data == -EPERM);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), 0);
    BL_CHECK_EQ(res_int(&r), 2);
    bl_task_result_free(&r);

    /* Mixed with real tasks: yield_many and await_many, in input order. */
    bl_task many[4];
    bl_task_result res[4];
    many[0] = completed_int(10);
    BL_CHECK_EQ(bl_task_async(&many[1], ret_int, (void *)11, NULL), 0);
    many[2] = completed_int(12);
    BL_CHECK_EQ(bl_task_async(&many[3], ret_int, (void *)13, NULL), 0);
    BL_CHECK_EQ(bl_task_await_many(many, 4, 10000, res), 0);
    for (int i = 0; i < 4; i++) {
        BL_CHECK_EQ(res_int(&res[i]), 10 + i);
        bl_task_result_free(&res[i]);
    }
    many[0] = completed_int(20);
    BL_CHECK_EQ(bl_task_async(&many[1], ret_int, (void *)21, NULL), 0);
    BL_CHECK_EQ(bl_task_yield_many(many, 2, 10000, res, NULL), 2);
    BL_CHECK(res_int(&res[0]) == 20 && res_int(&res[1]) == 21);
    bl_task_result_free(&res[0]);
    bl_task_result_free(&res[1]);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* ignore and shutdown: its result while it is in the mailbox. */
    t = completed_int(30);
    BL_CHECK_EQ(bl_task_ignore(&t, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 30);
    bl_task_result_free(&r);
    t = completed_int(31);
    BL_CHECK_EQ(bl_task_shutdown(&t, BL_TASK_BRUTAL_KILL, &r), BL_TASK_OK);
    BL_CHECK_EQ(res_int(&r), 31);
    bl_task_result_free(&r);
    t = completed_int(32);
    BL_CHECK_EQ(bl_task_shutdown(&t, 5000, NULL), BL_TASK_OK);

    /* Its reply taken by other means: nil at once (no process to wait for). */
    t = completed_int(40);
    c = completed_int(41);
    bl_msg_free(bl_receive(0));
    bl_msg_free(bl_receive(0));
    int64_t t0 = bl_test_ms();
    BL_CHECK_EQ(bl_task_ignore(&t, &r), BL_TASK_NIL);
    BL_CHECK_EQ(bl_task_shutdown(&c, 5000, &r), BL_TASK_NIL);
    BL_CHECK(bl_test_ms() - t0 < 500);
    t = completed_int(42);
    bl_msg_free(bl_receive(0));
    BL_CHECK_EQ(bl_task_await(&t, 0, &r), -ETIMEDOUT);
    BL_CHECK(bl_test_ms() - t0 < 500);
    /* yield_many with on_timeout kill_task treats it as shutdown does. */
    many[0] = completed_int(43);
    bl_msg_free(bl_receive(0));
    bl_task_yield_opts yo = {.on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK};
    BL_CHECK_EQ(bl_task_yield_many(many, 1, 0, res, &yo), 0);
    BL_CHECK_EQ(res[0].status, BL_TASK_NIL);
    BL_CHECK_EQ(many[0].ref, BL_REF_NONE);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* Bad input changes nothing. */
    BL_CHECK_EQ(bl_task_completed(NULL, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_task_completed(&t, NULL, 1), -EINVAL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task_completed, collected_like_any_task)
{
    bl_test_run(&quiet, collect_main, NULL);
}

Test(task_completed, outside_a_process)
{
    bl_task t;
    cr_assert_eq(bl_task_completed(&t, "x", 1), -EPERM);
}
