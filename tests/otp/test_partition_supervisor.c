/*
 * PartitionSupervisor: key routing (negative and byte keys, INT64_MIN),
 * the default partition count, with_arguments, restarts, and the seeds'
 * "scaling dynamic supervisors" shape: slow child inits under distinct
 * partitions run at the same time.
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/dynamic_supervisor.h"
#include "beamline/gen_server.h"
#include "beamline/partition_supervisor.h"
#include "sup_worker.h"

enum { T_ENTERED = T_WORKER_LAST, T_GO, T_DONE };

/* Workers are sup_worker.h's; with_arguments adds this (a flag the worker ignores). */
#define C_BASE 0x800000

static bl_config g_cfg = {.quiet = true};
static _Atomic int g_with_calls, g_release_calls, g_release_sum;

/* Gives partition p the arg C_BASE + p, plus the flags in the spec's arg for p == 1. */
static void *with_args(void *arg, int p)
{
    atomic_fetch_add(&g_with_calls, 1);
    int flags = (int)(intptr_t)arg;
    return ARG(C_BASE + p + (p == 1 ? flags : 0));
}

static void release_args(void *arg, int p)
{
    atomic_fetch_add(&g_release_calls, 1);
    atomic_fetch_add(&g_release_sum, (int)(intptr_t)arg & 0xffff);
}

/* Counters start at zero in each test (the TSan runner does not fork). */
static void reset_counters(void)
{
    atomic_store(&g_with_calls, 0);
    atomic_store(&g_release_calls, 0);
    atomic_store(&g_release_sum, 0);
}

/* Waits (bounded) until the release hook has run n times. */
static void wait_releases(int n)
{
    for (int i = 0; i < 5000 && atomic_load(&g_release_calls) < n; i++) bl_sleep(1);
    BL_CHECK_EQ(atomic_load(&g_release_calls), n);
}

/* ---- routing ---- */

Test(partition_supervisor, routing_of_integer_and_byte_keys)
{
    /* Integers: rem(abs(key), n), as in the seed (1000 -> partition 1 of 3). */
    cr_assert_eq(bl_partition_of_int(1000, 3), 1);
    cr_assert_eq(bl_partition_of_int(-1000, 3), 1);
    cr_assert_eq(bl_partition_of_int(0, 5), 0);
    cr_assert_eq(bl_partition_of_int(-7, 4), 3);
    cr_assert_eq(bl_partition_of_int(-1, 1), 0);
    /* abs(INT64_MIN) = 2^63 does not fit an int64_t; 2^63 rem 3 = 2, rem 10 = 8. */
    cr_assert_eq(bl_partition_of_int(INT64_MIN, 3), 2);
    cr_assert_eq(bl_partition_of_int(INT64_MIN, 10), 8);
    cr_assert_eq(bl_partition_of_int(INT64_MAX, 10), 7);
    cr_assert_eq(bl_partition_of_int(INT64_MIN + 1, 10), 7);
    cr_assert_eq(bl_partition_of_int(5, 0), -EINVAL);
    cr_assert_eq(bl_partition_of_int(5, -3), -EINVAL);
    /* Bytes: FNV-1a-64 mod n (reference values of the published algorithm). */
    cr_assert_eq(bl_partition_of_bytes("", 0, 1000), 0xcbf29ce484222325ull % 1000);
    cr_assert_eq(bl_partition_of_bytes(NULL, 0, 1000), 37);
    cr_assert_eq(bl_partition_of_bytes("a", 1, 1000), 0xaf63dc4c8601ec8cull % 1000);
    cr_assert_eq(bl_partition_of_bytes("foobar", 6, 1000), 968);
    cr_assert_eq(bl_partition_of_bytes("1000", 4, 1000), 628);
    cr_assert_eq(bl_partition_of_bytes(NULL, 3, 4), -EINVAL);
    cr_assert_eq(bl_partition_of_bytes("a", 1, 0), -EINVAL);
    /* Every partition gets some keys, every result is in range. */
    int hits[7] = {0};
    for (int k = 0; k < 700; k++) {
        char key[16];
        int len = snprintf(key, sizeof key, "key-%d", k);
        int p = bl_partition_of_bytes(key, (size_t)len, 7);
        cr_assert(p >= 0 && p < 7);
        hits[p]++;
    }
    for (int p = 0; p < 7; p++) cr_assert(hits[p] > 50, "partition %d got %d of 700", p, hits[p]);
}

/* ---- a partition supervisor of workers ---- */

static void routing_main(void *arg)
{
    g_test = bl_self();
    reset_counters();
    enum { N = 4 };
    bl_partsup_opts o = {.child = {.start = start_worker},
                         .partitions = N,
                         .with_arguments = with_args,
                         .release_arguments = release_args};
    bl_pid sup, p[N];
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &o), 0);
    for (int i = 0; i < N; i++) p[i] = expect_started(i); /* in order, each with its partition */
    BL_CHECK_EQ(atomic_load(&g_with_calls), N);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), N);
    bl_sup_child v[N];
    BL_CHECK_EQ(bl_partition_supervisor_which_children(sup, v, N), N);
    for (int i = 0; i < N; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        BL_CHECK(strcmp(v[i].id, id) == 0);
        BL_CHECK_EQ(v[i].pid, p[i]);
    }
    bl_sup_counts k;
    BL_CHECK_EQ(bl_partition_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == N && k.active == N && k.workers == N && k.supervisors == 0);
    /* Integer keys, negative ones and the extremes included. */
    int64_t keys[] = {0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5, -6, 1000, -1001, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        bl_pid who = 0;
        int part = -1;
        BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, keys[i], &who, &part), 0);
        int want = bl_partition_of_int(keys[i], N);
        BL_CHECK_EQ(part, want);
        BL_CHECK_EQ(who, p[want]);
    }
    /* INT64_MIN: 2^63 rem 4 = 0. */
    bl_pid who;
    int part;
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, INT64_MIN, &who, &part), 0);
    BL_CHECK_EQ(part, 0);
    /* Byte keys. */
    const char *bkeys[] = {"", "a", "foobar", "1000", "a much longer key than the others"};
    for (size_t i = 0; i < sizeof bkeys / sizeof *bkeys; i++) {
        size_t len = strlen(bkeys[i]);
        BL_CHECK_EQ(bl_partition_supervisor_whereis(sup, bkeys[i], len, &who, &part), 0);
        int want = bl_partition_of_bytes(bkeys[i], len, N);
        BL_CHECK_EQ(part, want);
        BL_CHECK_EQ(who, p[want]);
    }
    BL_CHECK_EQ(bl_partition_supervisor_whereis(sup, NULL, 2, &who, NULL), -EINVAL);
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, 1, NULL, NULL), -EINVAL);

    /* A partition restarts as a one_for_one child, with the same argument. */
    bl_send(p[2], T_CRASH, NULL, 0);
    bl_pid q = expect_started(2);
    BL_CHECK(q != p[2]);
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, 6, &who, &part), 0);
    BL_CHECK_EQ(who, q);
    BL_CHECK_EQ(part, 2);
    BL_CHECK_EQ(atomic_load(&g_with_calls), N); /* not called again */
    /* A terminated partition has no pid to route to. */
    BL_CHECK_EQ(bl_supervisor_terminate_child(sup, "3"), 0);
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, 3, &who, &part), BL_SUP_NOT_FOUND);
    BL_CHECK_EQ(who, 0);
    BL_CHECK_EQ(part, 3);
    BL_CHECK_EQ(bl_supervisor_restart_child(sup, "3", &q), 0);
    BL_CHECK_EQ(expect_started(3), q);
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, -3, &who, &part), 0);
    BL_CHECK_EQ(who, q);

    BL_CHECK_EQ(atomic_load(&g_release_calls), 0);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    wait_releases(N);
    BL_CHECK_EQ(atomic_load(&g_release_sum), 0 + 1 + 2 + 3);
    /* A plain supervisor is not a partition supervisor. */
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), -EINVAL);
    BL_CHECK_EQ(bl_partition_supervisor_whereis_int(sup, 1, &who, NULL), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), -ESRCH);
}

Test(partition_supervisor, routing_with_arguments_and_restart)
{
    bl_test_run(&g_cfg, routing_main, NULL);
}

/* The default: one partition per scheduler. */
static void default_main(void *arg)
{
    g_test = bl_self();
    int n = (int)bl_schedulers();
    BL_CHECK_EQ(n, 3);
    bl_partsup_opts o = {.child = {.start = start_worker}};
    bl_pid sup;
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &o), 0);
    for (int i = 0; i < n; i++) expect_started(0); /* no with_arguments: all get the spec's arg */
    BL_CHECK_EQ(bl_partition_supervisor_partitions(sup), n);
    bl_sup_counts k;
    BL_CHECK_EQ(bl_partition_supervisor_count_children(sup, &k), 0);
    BL_CHECK_EQ(k.specs, n);
    BL_CHECK_EQ(k.active, n);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 10000), 0);
}

Test(partition_supervisor, partitions_default_to_schedulers)
{
    bl_config cfg = g_cfg;
    cfg.schedulers = 3;
    bl_test_run(&cfg, default_main, NULL);
}

/* Bad options, and a partition that fails to start. */
static void invalid_main(void *arg)
{
    g_test = bl_self();
    reset_counters();
    bl_pid sup;
    bl_sup_error err;
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, NULL), -EINVAL);
    bl_partsup_opts bad[] = {
        {.child = {.start = NULL}, .partitions = 2},
        {.child = {.start = start_worker}, .partitions = -1},
        {.child = {.start = start_worker}, .partitions = 2000000},
        {.child = {.start = start_worker, .restart = 5}, .partitions = 2},
        {.child = {.start = start_worker, .shutdown = -9}, .partitions = 2},
        {.child = {.start = start_worker}, .partitions = 2, .max_restarts = -5},
    };
    bl_sup_error_kind kinds[] = {BL_SUP_ERR_MISSING_START, BL_SUP_ERR_BAD_OPTION,
                                 BL_SUP_ERR_BAD_OPTION,    BL_SUP_ERR_BAD_RESTART,
                                 BL_SUP_ERR_BAD_SHUTDOWN,  BL_SUP_ERR_BAD_OPTION};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bad[i].error = &err;
        BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &bad[i]), -EINVAL);
        BL_CHECK_EQ(err.kind, kinds[i]);
    }
    BL_CHECK_EQ(atomic_load(&g_with_calls), 0);
    /* Partition 1 fails: partition 0 is stopped, and every argument released. */
    bl_partsup_opts o = {.child = {.start = start_worker, .arg = ARG(C_FAIL)},
                         .partitions = 3,
                         .with_arguments = with_args,
                         .release_arguments = release_args,
                         .error = &err};
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&sup, &o), BL_SUP_CHILD_FAILED);
    BL_CHECK_EQ(err.kind, BL_SUP_ERR_START_FAILED);
    BL_CHECK_EQ(err.index, 1);
    BL_CHECK_EQ(err.error, -EIO);
    BL_CHECK(strcmp(err.id, "1") == 0);
    expect_started(0);
    bl_msg *m = bl_test_recv_tag(T_STOPPED, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK_EQ(atomic_load(&g_with_calls), 3);
    BL_CHECK_EQ(atomic_load(&g_release_calls), 3); /* before start returned */
    BL_CHECK(bl_test_recv_tag(T_STARTED, 0) == NULL);
}

Test(partition_supervisor, invalid_options_and_failed_partition)
{
    bl_test_run(&g_cfg, invalid_main, NULL);
}

/* ---- the seeds' scaling of a dynamic supervisor ---- */

/* A slow gen_server: its init tells the test it has begun, then waits for T_GO. */
static void slow_init(void *arg, void **state, bl_gs_result *r)
{
    bl_send(g_test, T_ENTERED, NULL, 0);
    bl_msg *m = bl_test_recv_tag(T_GO, 10000);
    if (!m) bl_gs_stop(r, &(bl_reason){.kind = BL_CUSTOM, .code = 1});
    bl_msg_free(m);
}

static const bl_gen_server slow_gs = {.init = slow_init};

static int start_slow(void *arg, bl_pid *pid)
{
    return bl_gen_server_start_link(pid, &slow_gs, NULL, NULL);
}

static bl_pid g_partsup;

typedef struct done {
    int64_t key;
    int partition;
    bl_pid dynsup;
    int rc;
} done;

/* One of the five processes of the seed: start a slow child under the key's partition. */
static void starter(void *arg)
{
    done d = {.key = (int64_t)(intptr_t)arg};
    d.rc = bl_partition_supervisor_whereis_int(g_partsup, d.key, &d.dynsup, &d.partition);
    if (d.rc == 0) {
        bl_child_spec c = {.start = start_slow};
        d.rc = bl_dynamic_supervisor_start_child(d.dynsup, &c, NULL);
    }
    bl_send(g_test, T_DONE, &d, sizeof d);
}

static void slow_main(void *arg)
{
    g_test = bl_self();
    /* Six partitions, each a dynamic supervisor (child_spec: DynamicSupervisor). */
    bl_partsup_opts o = {
        .child = {.start = bl_dynamic_supervisor_start_fn, .type = BL_CHILD_SUPERVISOR},
        .partitions = 6};
    BL_CHECK_EQ(bl_partition_supervisor_start_link(&g_partsup, &o), 0);
    for (int i = 1; i <= 5; i++) BL_CHECK_EQ(bl_spawn(NULL, starter, ARG(i), NULL), 0);
    /*
     * All five inits begin while none has finished: the five start_child
     * calls run at the same time, each in its own dynamic supervisor (one
     * dynamic supervisor would start them one after the other).
     */
    bl_pid slow[5];
    for (int i = 0; i < 5; i++) {
        bl_msg *m = bl_test_recv_tag(T_ENTERED, 5000);
        BL_CHECK(m != NULL);
        slow[i] = m ? m->from : 0;
        bl_msg_free(m);
    }
    BL_CHECK(bl_test_recv_tag(T_DONE, 0) == NULL);
    for (int i = 0; i < 5; i++) bl_send(slow[i], T_GO, NULL, 0);
    bool used[6] = {false};
    for (int i = 0; i < 5; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 5000);
        BL_CHECK(m != NULL);
        if (!m) continue;
        done d;
        memcpy(&d, m->data, sizeof d);
        bl_msg_free(m);
        BL_CHECK_EQ(d.rc, 0);
        BL_CHECK_EQ(d.partition, (int)d.key); /* keys 1..5: rem(key, 6) = key */
        BL_CHECK(d.partition >= 0 && d.partition < 6 && !used[d.partition]);
        if (d.partition >= 0 && d.partition < 6) used[d.partition] = true;
        bl_sup_counts k;
        BL_CHECK_EQ(bl_dynamic_supervisor_count_children(d.dynsup, &k), 0);
        BL_CHECK_EQ(k.active, 1);
    }
    bl_sup_counts k;
    BL_CHECK_EQ(bl_partition_supervisor_count_children(g_partsup, &k), 0);
    BL_CHECK(k.specs == 6 && k.active == 6 && k.supervisors == 6);
    BL_CHECK_EQ(bl_supervisor_stop(g_partsup, NULL, 10000), 0);
    for (int i = 0; i < 5; i++) BL_CHECK(!bl_is_alive(slow[i]));
}

Test(partition_supervisor, slow_children_start_concurrently_across_partitions)
{
    bl_test_run(&g_cfg, slow_main, NULL);
}
