/*
 * examples/bucket_registry/bucket_registry.c: the seed's KV.Bucket and KV.Registry tests,
 * through the example's own functions.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "examples/bucket_registry/bucket_registry.h"

#include "bl_test.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * True once the registry no longer knows name, within 5 s.  The registry
 * hears of a bucket's death through the bucket's DOWN; our lookups come
 * from us, and messages are ordered per sender only, so a lookup made after
 * the bucket is gone may still be answered before the DOWN is handled.
 * Hence a bounded loop of calls (each one waits for the registry), not a
 * single lookup.
 */
static bool forgotten(bl_pid registry, const char *name)
{
    bl_pid bucket;
    for (int64_t end = mono_ms() + 5000; mono_ms() < end; bl_yield())
        if (kv_registry_lookup(registry, name, &bucket) == -ENOENT) return true;
    return false;
}

/* test "spawns buckets" */
static void spawns_buckets(void *arg)
{
    bl_pid registry, bucket = BL_PID_NONE, again = BL_PID_NONE;
    long value = 0;
    BL_CHECK_EQ(kv_registry_start_link(&registry), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &bucket), -ENOENT);
    BL_CHECK_EQ(kv_registry_create(registry, "shopping"), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &bucket), 0);
    BL_CHECK(bl_is_alive(bucket));
    BL_CHECK_EQ(bucket_put(bucket, "milk", 1), 0);
    BL_CHECK_EQ(bucket_get(bucket, "milk", &value), 0);
    BL_CHECK_EQ(value, 1);

    /* Creating an existing name keeps its bucket; another name gets another bucket. */
    BL_CHECK_EQ(kv_registry_create(registry, "shopping"), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &again), 0);
    BL_CHECK_EQ(again, bucket);
    BL_CHECK_EQ(kv_registry_create(registry, "tools"), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "tools", &again), 0);
    BL_CHECK(again != bucket);
    BL_CHECK_EQ(bucket_get(again, "milk", &value), -ENOENT);
}

Test(bucket_registry, spawns_buckets)
{
    bl_test_run(NULL, spawns_buckets, NULL);
}

/* KV.Bucket: stores values by key, deletes them. */
static void bucket_ops(void *arg)
{
    bl_pid bucket;
    long value = -1;
    BL_CHECK_EQ(bucket_start(&bucket), 0);
    BL_CHECK_EQ(bucket_get(bucket, "milk", &value), -ENOENT);
    BL_CHECK_EQ(value, -1);
    BL_CHECK_EQ(bucket_put(bucket, "milk", 3), 0);
    BL_CHECK_EQ(bucket_get(bucket, "milk", &value), 0);
    BL_CHECK_EQ(value, 3);
    BL_CHECK_EQ(bucket_put(bucket, "milk", 4), 0);
    BL_CHECK_EQ(bucket_get(bucket, "milk", &value), 0);
    BL_CHECK_EQ(value, 4);
    BL_CHECK_EQ(bucket_delete(bucket, "milk", &value), 0);
    BL_CHECK_EQ(value, 4);
    BL_CHECK_EQ(bucket_delete(bucket, "milk", &value), -ENOENT);
    BL_CHECK_EQ(bucket_get(bucket, "milk", &value), -ENOENT);

    /* More keys than the first allocation holds. */
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d", i);
        BL_CHECK_EQ(bucket_put(bucket, key, i), 0);
    }
    for (int i = 0; i < 50; i += 7) {
        snprintf(key, sizeof key, "k%d", i);
        BL_CHECK_EQ(bucket_get(bucket, key, &value), 0);
        BL_CHECK_EQ(value, i);
    }
    BL_CHECK_EQ(bucket_delete(bucket, "k0", NULL), 0);
    BL_CHECK_EQ(bucket_get(bucket, "k49", &value), 0);
    BL_CHECK_EQ(value, 49);

    /* Bad keys never reach the bucket; a stopped bucket is noproc. */
    char big[KV_NAME + 1];
    memset(big, 'k', KV_NAME);
    big[KV_NAME] = 0;
    BL_CHECK_EQ(bucket_put(bucket, NULL, 1), -EINVAL);
    BL_CHECK_EQ(bucket_put(bucket, "", 1), -EINVAL);
    BL_CHECK_EQ(bucket_get(bucket, big, &value), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_agent_stop(bucket, NULL, 1000), 0);
    BL_CHECK_EQ(bucket_get(bucket, "k1", &value), -ESRCH);
    BL_CHECK_EQ(bucket_put(bucket, "k1", 1), -ESRCH);
}

Test(bucket_registry, bucket_ops)
{
    bl_test_run(NULL, bucket_ops, NULL);
}

/* test "removes buckets on exit", and on a crash */
static void removes_buckets(void *arg)
{
    bl_pid registry, bucket = BL_PID_NONE, other = BL_PID_NONE;
    BL_CHECK_EQ(kv_registry_start_link(&registry), 0);
    BL_CHECK_EQ(kv_registry_create(registry, "shopping"), 0);
    BL_CHECK_EQ(kv_registry_create(registry, "tools"), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &bucket), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "tools", &other), 0);

    BL_CHECK_EQ(bl_agent_stop(bucket, NULL, 1000), 0);
    BL_CHECK(forgotten(registry, "shopping"));
    /* Only that one. */
    bl_pid still = BL_PID_NONE;
    BL_CHECK_EQ(kv_registry_lookup(registry, "tools", &still), 0);
    BL_CHECK_EQ(still, other);

    /* A crash (an untrappable kill) too; the registry, not linked to it, lives on. */
    BL_CHECK_EQ(bl_exit_pid(other, &BL_REASON(BL_KILL)), 0);
    BL_CHECK(forgotten(registry, "tools"));
    BL_CHECK(bl_is_alive(registry));

    /* The name can be created again: a fresh bucket. */
    BL_CHECK_EQ(kv_registry_create(registry, "shopping"), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &still), 0);
    BL_CHECK(still != bucket && bl_is_alive(still));
    BL_CHECK_EQ(bucket_put(still, "milk", 2), 0);

    /* An unexpected message is logged and ignored (the catch-all handle_info). */
    BL_CHECK_EQ(bl_send(registry, 99, "hello", 5), 0);
    BL_CHECK_EQ(kv_registry_lookup(registry, "shopping", &bucket), 0);
    BL_CHECK_EQ(bucket, still);
}

Test(bucket_registry, removes_buckets_on_exit)
{
    bl_test_run(NULL, removes_buckets, NULL);
}
