/*
 * main.c - bucket_registry, the program: a registry (bucket_registry.h)
 * creates a bucket, the bucket stores and deletes keys, and a bucket that
 * stops or is killed is forgotten while the registry lives on.
 *
 * Run: ./bucket_registry  (exits 1 if the store does not behave as expected)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "bucket_registry.h"

/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bucket_registry: expected %s (line %d)\n", #cond, __LINE__);          \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits (up to 5 s) until the registry no longer knows name.  Why a loop:
 * the registry learns of the bucket's death from the bucket's DOWN, while
 * our lookups come from us.  Messages are ordered per sender only, so a
 * lookup sent after the bucket died may still be served before that DOWN.
 * Each lookup is a call, so the loop never spins on a stale answer for long.
 */
static bool forgotten(bl_pid registry, const char *name)
{
    bl_pid bucket;
    for (int64_t end = now_ms() + 5000; now_ms() < end; bl_yield())
        if (kv_registry_lookup(registry, name, &bucket) == -ENOENT) return true;
    return false;
}

static void scenario(void *arg)
{
    bl_pid registry, bucket = BL_PID_NONE;
    long value = 0;
    EXPECT(kv_registry_start_link(&registry) == 0);
    EXPECT(kv_registry_lookup(registry, "shopping", &bucket) == -ENOENT);
    printf("lookup shopping: :error\n");

    /* The cast and then the call, from this process: the call sees the bucket. */
    EXPECT(kv_registry_create(registry, "shopping") == 0);
    EXPECT(kv_registry_lookup(registry, "shopping", &bucket) == 0);
    printf("lookup shopping: {:ok, bucket}\n");

    EXPECT(bucket_put(bucket, "milk", 1) == 0);
    EXPECT(bucket_get(bucket, "milk", &value) == 0 && value == 1);
    printf("milk: %ld\n", value);
    EXPECT(bucket_put(bucket, "eggs", 3) == 0);
    EXPECT(bucket_delete(bucket, "eggs", &value) == 0 && value == 3);
    printf("deleted eggs: %ld\n", value);
    EXPECT(bucket_get(bucket, "eggs", &value) == -ENOENT);
    printf("eggs: nil\n");

    /* A bucket that stops is forgotten. */
    EXPECT(bl_agent_stop(bucket, NULL, 1000) == 0);
    EXPECT(forgotten(registry, "shopping"));
    printf("after the bucket stopped, lookup shopping: :error\n");

    /* So is one that crashes, and the registry lives on. */
    EXPECT(kv_registry_create(registry, "tools") == 0);
    EXPECT(kv_registry_lookup(registry, "tools", &bucket) == 0);
    EXPECT(bl_exit_pid(bucket, &BL_REASON(BL_KILL)) == 0);
    EXPECT(forgotten(registry, "tools"));
    printf("after the bucket was killed, lookup tools: :error\n");
    EXPECT(bl_is_alive(registry));
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
