/*
 * PartitionSupervisor.resize!: routing over the new count, partitions above
 * it shut down (in order, specs kept), growing starts them again with their
 * own arguments, the bounds (0 .. the count given at start), a partition
 * that cannot start while growing (nothing changes), and significant specs
 * (refused).
 *
 * Workers are sup_worker.h's, numbered by their partition: their start
 * function sends T_STARTED {partition}, an exit signal T_STOPPED {partition}.
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/partition_supervisor.h"
#include "sup_worker.h"

static bl_config g_cfg = {.quiet = true};
static _Atomic int g_fail = -1; /* the partition whose start fails, or -1 */

/* arg: the partition, from with_arguments; sup_worker.h's worker unless it is g_fail. */
static int start_part(void *arg, bl_pid *pid)
{
    if ((int)(intptr_t)arg == atomic_load(&g_fail)) return -EIO;
    return start_worker(arg, pid);
}

static void *with_args(void *arg, int p)
{
    return ARG(p);
}

/* The partition key routes to, and checks its pid is p[partition]. */
static int route(bl_pid sup, int64_t key, const bl_pid *p)
{
    bl_pid who = 0;
    int part = -2;
    int rc = bl_partition_supervisor_whereis_int(sup, key, &who, &part);
    BL_CHECK_EQ(rc, 0);
    if (rc == 0) BL_CHECK_EQ(who, p[part]);
    return part;
}

static void resize_main(void *arg)
{
    g_test = bl_self();
    atomic_store(&g_fail, -1);
    enum { N = 4 };
    bl_partsup_opts o = {
        .child = {.start = start_part}, .partitions = N, .with_arguments = with_args};
    bl_pid sup, p[N];
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &o), 0);
    for (int i = 0; i < N; i++) p[i] = expect(T_STARTED, i);
    /* Shrink to 2: routing first, then partitions 2 and 3 stop, in order. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 2), N);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 3);
    expect_quiet();
    BL_CHECK(!bl_is_alive(p[2]) && !bl_is_alive(p[3]));
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), 2);
    BL_CHECK_EQ(route(sup, 3, p), 1);
    BL_CHECK_EQ(route(sup, 6, p), 0);
    /* The specs stay, without a pid. */
    bl_sup_child v[N];
    BL_CHECK_EQ(bl_partition_supervisor_which_children(sup, v, N), N);
    BL_CHECK(v[2].pid == 0 && v[2].status == BL_CHILD_UNDEFINED);
    BL_CHECK(v[3].pid == 0 && v[3].status == BL_CHILD_UNDEFINED);
    /* Same size: nothing happens. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 2), 2);
    /* Above the count given at start, or negative: refused. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, N + 1), -EINVAL);
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, -1), -EINVAL);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), 2);
    expect_quiet();
    /* Grow back: 2 and 3 start again in order, with their own arguments. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, N), 2);
    p[2] = expect(T_STARTED, 2);
    p[3] = expect(T_STARTED, 3);
    BL_CHECK_EQ(route(sup, 3, p), 3);
    BL_CHECK_EQ(route(sup, -6, p), 2);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), N);
    /* Grow into a partition whose start fails: the ones started are stopped again. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 1), N);
    expect(T_STOPPED, 1);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 3);
    atomic_store(&g_fail, 3);
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, N), -EIO);
    expect(T_STARTED, 1);
    expect(T_STARTED, 2);
    expect(T_STOPPED, 2);
    expect(T_STOPPED, 1);
    expect_quiet();
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), 1);
    BL_CHECK_EQ(route(sup, 5, p), 0);
    atomic_store(&g_fail, -1);
    /* A partition started by hand above the count: growing into it is refused. */
    bl_pid q;
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "2", &q), 0);
    expect(T_STARTED, 2);
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, N), BL_SUP_RUNNING);
    expect(T_STARTED, 1);
    expect(T_STOPPED, 1);
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "2"), 0);
    expect(T_STOPPED, 2);
    /* To none: nothing to route to; then back to one. */
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 0), 1);
    expect(T_STOPPED, 0);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), 0);
    bl_pid who = 5;
    int part = 7;
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, 3, &who, &part), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(who, 0);
    BL_CHECK_EQ(part, -1);
    BL_CHECK_EQ(bl_partition_supervisor_whereis(sup, "k", 1, &who, &part), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 1), 0);
    p[0] = expect(T_STARTED, 0);
    BL_CHECK_EQ(route(sup, 99, p), 0);
    expect_quiet();
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    expect(T_STOPPED, 0);
    expect_quiet();
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 1), -ESRCH);
    /* A plain supervisor cannot be resized. */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_partition_supervisor_resize(sup, 1), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    /* Significant partitions are refused (no auto_shutdown). */
    bl_sup_error err;
    bl_partsup_opts sig = {
        .child = {.start = start_part, .restart = BL_RESTART_TEMPORARY, .significant = true},
        .partitions = 2,
        .error = &err};
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &sig), -EINVAL);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_BAD_SIGNIFICANT);
    expect_quiet();
}

Test(partition_supervisor_resize, shrink_grow_bounds_and_failures)
{
    bl_test_run(&g_cfg, resize_main, NULL);
}
