/*
 * Task.Supervisor: async (linked), async_nolink, start_child (temporary and
 * transient), children, terminate_child, stream, and use under a
 * PartitionSupervisor.
 */
#include <errno.h>

#include "beamline/partition_supervisor.h"
#include "beamline/task_supervisor.h"
#include "bl_test.h"

static void twice(void *arg, bl_task_out *out)
{
    long v = (long)(intptr_t)arg * 2;
    bl_task_return(out, &v, sizeof v);
}

static void crash(void *arg, bl_task_out *out)
{
    bl_exit(31);
}

/* Waits for a go message, then reports to the pid in arg. */
static void wait_go(void *arg, bl_task_out *out)
{
    bl_msg_free(bl_test_recv_tag(1, 5000));
    bl_pid test = *(bl_pid *)arg;
    bl_send(test, 2, NULL, 0);
}

static _Atomic int transient_runs;

/* Crashes the first time, finishes normally the second. */
static void flaky(void *arg, bl_task_out *out)
{
    bl_pid test = *(bl_pid *)arg;
    int n = atomic_fetch_add(&transient_runs, 1) + 1;
    bl_send(test, 3, &n, sizeof n);
    if (n == 1) bl_exit(7);
}

static void stream_fn(void *ctx, void *item, bl_task_out *out)
{
    long v = *(long *)item * 10;
    bl_task_return(out, &v, sizeof v);
}

static long result_long(const bl_task_result *r)
{
    long v = -1;
    if (r->status == BL_TASK_OK && r->len == sizeof v) memcpy(&v, r->data, sizeof v);
    return v;
}

static void tsup_main(void *arg)
{
    bl_pid sup;
    BL_CHECK_EQ(bl_task_supervisor_start_link(&sup, NULL), 0);
    /* async: a result, and the task was the supervisor's child. */
    bl_task t;
    bl_task_result r = {0};
    BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, twice, (void *)(intptr_t)21), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK_EQ(result_long(&r), 42);
    bl_task_result_free(&r);
    /* async_nolink: a crash is a result, not our death. */
    BL_CHECK_EQ(bl_task_supervisor_async_nolink(sup, &t, crash, NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), -ECONNRESET);
    BL_CHECK_EQ(r.status, BL_TASK_EXIT);
    BL_CHECK_EQ(r.reason.kind, BL_CUSTOM);
    BL_CHECK_EQ(r.reason.code, 31);
    bl_task_result_free(&r);
    BL_CHECK(bl_is_alive(sup));
    /* start_child + children + terminate_child. */
    bl_pid me = bl_self(), child;
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, wait_go, &me, BL_RESTART_TEMPORARY, &child), 0);
    bl_pid kids[4];
    BL_CHECK_EQ(bl_task_supervisor_children(sup, kids, 4), 1);
    BL_CHECK_EQ(kids[0], child);
    BL_CHECK_EQ(bl_send(child, 1, NULL, 0), 0);
    bl_msg_free(bl_test_recv_tag(2, 5000));
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(child, &ref), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    /* A finished temporary child is forgotten (the supervisor saw its EXIT before our call). */
    BL_TEST_UNTIL(bl_task_supervisor_children(sup, kids, 4) == 0, 10000);
    BL_CHECK_EQ(bl_task_supervisor_children(sup, kids, 4), 0);
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, wait_go, &me, BL_RESTART_TEMPORARY, &child), 0);
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, child), 0);
    BL_CHECK(!bl_is_alive(child));
    BL_CHECK_EQ(bl_task_supervisor_terminate_child(sup, child), BL_SUP_NOT_FOUND);
    /* transient: restarted after the crash, runs fn again, then done. */
    atomic_store(&transient_runs, 0);
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, flaky, &me, BL_RESTART_TRANSIENT, NULL), 0);
    bl_msg *m = bl_test_recv_tag(3, 5000);
    BL_CHECK(m && *(int *)m->data == 1);
    bl_msg_free(m);
    m = bl_test_recv_tag(3, 5000);
    BL_CHECK(m && *(int *)m->data == 2);
    bl_msg_free(m);
    /* Bad input. */
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, flaky, &me, (bl_restart)7, NULL), -EINVAL);
    BL_CHECK_EQ(bl_task_supervisor_start_child(sup, NULL, &me, BL_RESTART_TEMPORARY, NULL),
                -EINVAL);
    BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, NULL, NULL), -EINVAL);
    /* stream (async_stream_nolink), in order. */
    long items[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    bl_task_stream *s;
    bl_task_stream_opts so = {.max_concurrency = 3};
    BL_CHECK_EQ(bl_task_supervisor_stream(&s, &sup, items, 8, sizeof(long), stream_fn, NULL, &so),
                0);
    int got = 0;
    while (bl_task_stream_next(s, &r) == 1) {
        BL_CHECK_EQ(result_long(&r), items[r.index] * 10);
        BL_CHECK_EQ(r.index, (size_t)got);
        got++;
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(got, 8);
    BL_CHECK_EQ(bl_task_stream_close(s), 0);
    /* A dead supervisor: noproc. */
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, twice, NULL), -ESRCH);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(task_supervisor, all)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, tsup_main, NULL);
}

/* Task supervisors as the partitions of a PartitionSupervisor. */
static void part_main(void *arg)
{
    bl_child_spec spec = {
        .id = "tasks", .start = bl_task_supervisor_start_fn, .type = BL_CHILD_SUPERVISOR};
    bl_partsup_opts o = {.child = spec, .partitions = 3};
    bl_pid ps;
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&ps, &o), 0);
    for (int64_t key = 0; key < 6; key++) {
        bl_pid sup;
        int part = -1;
        BL_CHECK_EQ(bl_partition_supervisor_whereis_int(ps, key, &sup, &part), 0);
        BL_CHECK_EQ(part, (int)(key % 3));
        bl_task t;
        bl_task_result r = {0};
        BL_CHECK_EQ(bl_task_supervisor_async(sup, &t, twice, (void *)(intptr_t)key), 0);
        BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
        BL_CHECK_EQ(result_long(&r), key * 2);
        bl_task_result_free(&r);
    }
    BL_CHECK_EQ(bl_supervisor_stop(ps, NULL, 5000), 0);
}

Test(task_supervisor, under_partition_supervisor)
{
    bl_test_run(NULL, part_main, NULL);
}
