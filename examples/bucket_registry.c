/*
 * bucket_registry.c - the key-value store of the Elixir guide (seed 002):
 * buckets are agents, and a registry gen_server names them and monitors them.
 *
 *   bucket     an agent holding a map of string keys to numbers: put, get, delete
 *   registry   a gen_server mapping bucket names to bucket pids:
 *                create  cast: starts a bucket under that name (if none)
 *                lookup  call: the bucket's pid, or an error
 *              It monitors every bucket it starts, and its handle_info forgets
 *              a bucket whose DOWN arrives, so it never hands out a dead pid.
 *
 * As the guide concludes, buckets are monitored, not linked: a bucket that
 * crashes must not take the registry down (supervising buckets comes next).
 * Run: ./bucket_registry  (exits 1 if the store does not behave as expected)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the module's API ---- */

#define KV_NAME 64 /* room for a key or a bucket name, NUL included */

/* Starts an empty bucket (unlinked).  Errors as bl_agent_start. */
int bucket_start(bl_pid *bucket);
/* Sets key to value.  0; -EINVAL (NULL or empty key), -ENAMETOOLONG, or an agent call's error. */
int bucket_put(bl_pid bucket, const char *key, long value);
/* The value of key in *value: 0, -ENOENT when the key is absent (Elixir's nil), errors as put. */
int bucket_get(bl_pid bucket, const char *key, long *value);
/* Removes key and returns its value in *value (may be NULL): 0, -ENOENT, errors as put. */
int bucket_delete(bl_pid bucket, const char *key, long *value);

/* Starts a registry linked to the caller.  Errors as bl_gen_server_start. */
int kv_registry_start_link(bl_pid *registry);
/* Makes sure a bucket named name exists (a cast: returns 0 at once; -EINVAL, -ENAMETOOLONG). */
int kv_registry_create(bl_pid registry, const char *name);
/* The bucket named name in *bucket: 0, -ENOENT (Elixir's :error), or a call's error. */
int kv_registry_lookup(bl_pid registry, const char *name, bl_pid *bucket);

/* Copies s into a fixed-size name: 0, -EINVAL (NULL or empty), -ENAMETOOLONG. */
static int kv_name(char out[KV_NAME], const char *s)
{
    if (!s || !s[0]) return -EINVAL;
    size_t len = 0;
    while (len < KV_NAME && s[len]) len++;
    if (len == KV_NAME) return -ENAMETOOLONG;
    memset(out, 0, KV_NAME);
    memcpy(out, s, len);
    return 0;
}

/* ---- buckets: agents ---- */

typedef struct kv_pair {
    char key[KV_NAME];
    long value;
} kv_pair;

typedef struct bucket {
    kv_pair *pairs;
    int n, cap;
} bucket;

static void bucket_init(void **state, void *arg)
{
    *state = calloc(1, sizeof(bucket)); /* NULL when out of memory: every function checks */
}

static void bucket_free(void *state)
{
    bucket *b = state;
    if (b) free(b->pairs);
    free(b);
}

/* The pair with that key, or NULL. */
static kv_pair *bucket_find(bucket *b, const char *key)
{
    for (int i = 0; b && i < b->n; i++)
        if (strcmp(b->pairs[i].key, key) == 0) return &b->pairs[i];
    return NULL;
}

/* A key as the client sends it (kv_name's KV_NAME bytes), or NULL: bytes are not trusted. */
static const char *key_of(const void *arg, size_t len)
{
    return len == KV_NAME && memchr(arg, 0, KV_NAME) ? arg : NULL;
}

/* The functions below run inside the agent, on its state. */

static void put_fn(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    bucket *b = *state;
    kv_pair p;
    if (!b || len != sizeof p) return;
    memcpy(&p, arg, sizeof p);
    p.key[KV_NAME - 1] = 0;
    kv_pair *slot = bucket_find(b, p.key);
    if (!slot && b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 8;
        kv_pair *pairs = realloc(b->pairs, (size_t)cap * sizeof *pairs);
        if (!pairs) return; /* the put is lost; the bucket lives on */
        b->pairs = pairs;
        b->cap = cap;
    }
    if (!slot) slot = &b->pairs[b->n++];
    *slot = p;
}

/* Answers the value, or nothing for nil. */
static void get_fn(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    const char *key = key_of(arg, len);
    kv_pair *p = key ? bucket_find(*state, key) : NULL;
    if (p) bl_gs_reply(r, &p->value, sizeof p->value);
}

/* Map.pop: answers the value (or nothing) and removes the key. */
static void pop_fn(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    bucket *b = *state;
    const char *key = key_of(arg, len);
    kv_pair *p = key ? bucket_find(b, key) : NULL;
    if (!p) return;
    bl_gs_reply(r, &p->value, sizeof p->value);
    *p = b->pairs[--b->n];
}

int bucket_start(bl_pid *pid)
{
    bl_agent_opts opts = {.free_state = bucket_free};
    return bl_agent_start(pid, bucket_init, NULL, &opts);
}

int bucket_put(bl_pid pid, const char *key, long value)
{
    kv_pair p;
    int rc = kv_name(p.key, key);
    p.value = value;
    return rc ? rc : bl_agent_update(pid, put_fn, &p, sizeof p, BL_GS_DEFAULT_TIMEOUT);
}

/* get reads the state (Agent.get); delete changes it too (Agent.get_and_update). */
static int bucket_fetch(bl_pid pid, bool update, const char *key, long *value)
{
    char k[KV_NAME];
    int rc = kv_name(k, key);
    if (rc) return rc;
    bl_msg *reply = NULL;
    if (update)
        rc = bl_agent_get_and_update(pid, pop_fn, k, sizeof k, &reply, BL_GS_DEFAULT_TIMEOUT);
    else
        rc = bl_agent_get(pid, get_fn, k, sizeof k, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0 && reply->len != sizeof(long)) rc = -ENOENT;
    if (rc == 0 && value) memcpy(value, reply->data, sizeof *value);
    bl_msg_free(reply);
    return rc;
}

int bucket_get(bl_pid pid, const char *key, long *value)
{
    return bucket_fetch(pid, false, key, value);
}

int bucket_delete(bl_pid pid, const char *key, long *value)
{
    return bucket_fetch(pid, true, key, value);
}

/* ---- the registry: a gen_server ---- */

enum { KV_CREATE = 1, KV_LOOKUP };

/*
 * The guide keeps two maps, name -> pid and monitor ref -> name; one array
 * of entries holding all three does the same job here.
 */
typedef struct kv_entry {
    char name[KV_NAME];
    bl_pid bucket;
    bl_ref monitor;
} kv_entry;

typedef struct kv_registry {
    kv_entry *entries;
    int n, cap;
} kv_registry;

static kv_entry *registry_find(kv_registry *reg, const char *name)
{
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->entries[i].name, name) == 0) return &reg->entries[i];
    return NULL;
}

static void registry_init(void *arg, void **state, bl_gs_result *r)
{
    kv_registry *reg = calloc(1, sizeof *reg);
    if (!reg) bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start returns -ECHILD */
    *state = reg;
}

static void registry_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    kv_registry *reg = *state;
    if (m->tag != KV_LOOKUP || m->len != KV_NAME || !memchr(m->data, 0, KV_NAME)) return;
    /* {:ok, pid} is the pid; :error is an empty reply. */
    kv_entry *e = registry_find(reg, m->data);
    bl_gs_reply(r, e ? &e->bucket : NULL, e ? sizeof e->bucket : 0);
}

static void registry_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    kv_registry *reg = *state;
    if (m->tag != KV_CREATE || m->len != KV_NAME || !memchr(m->data, 0, KV_NAME)) return;
    if (registry_find(reg, m->data)) return; /* already there */
    if (reg->n == reg->cap) {
        int cap = reg->cap ? 2 * reg->cap : 8;
        kv_entry *e = realloc(reg->entries, (size_t)cap * sizeof *e);
        if (!e) return; /* out of memory: no bucket, lookups say so */
        reg->entries = e;
        reg->cap = cap;
    }
    kv_entry *e = &reg->entries[reg->n];
    memcpy(e->name, m->data, KV_NAME);
    /* Starting the bucket waits for its init: this handler borrows a stack meanwhile. */
    if (bucket_start(&e->bucket) != 0) return;
    /* Monitor, don't link: we want to hear of the bucket's death, not share it. */
    if (bl_monitor(e->bucket, &e->monitor) != 0) {
        bl_agent_stop(e->bucket, NULL, BL_GS_DEFAULT_TIMEOUT);
        return;
    }
    reg->n++;
}

static void registry_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    kv_registry *reg = *state;
    if (m->tag != BL_TAG_DOWN) {
        /* The catch-all clause: an unexpected message must not crash the registry. */
        printf("Unexpected message in KV.Registry: tag %u\n", m->tag);
        return;
    }
    /* {:DOWN, ref, :process, pid, reason}: forget the bucket that monitor watched. */
    for (int i = 0; i < reg->n; i++) {
        if (reg->entries[i].monitor == m->ref) {
            reg->entries[i] = reg->entries[--reg->n];
            return;
        }
    }
}

static void registry_release(void *state)
{
    kv_registry *reg = state;
    free(reg->entries);
    free(reg);
}

static const bl_gen_server registry_callbacks = {
    .init = registry_init,
    .handle_call = registry_call,
    .handle_cast = registry_cast,
    .handle_info = registry_info,
    .release = registry_release,
};

int kv_registry_start_link(bl_pid *registry)
{
    return bl_gen_server_start_link(registry, &registry_callbacks, NULL, NULL);
}

int kv_registry_create(bl_pid registry, const char *name)
{
    char n[KV_NAME];
    int rc = kv_name(n, name);
    return rc ? rc : bl_gen_server_cast(registry, KV_CREATE, n, sizeof n);
}

int kv_registry_lookup(bl_pid registry, const char *name, bl_pid *bucket)
{
    char n[KV_NAME];
    int rc = kv_name(n, name);
    if (rc) return rc;
    bl_msg *reply;
    rc = bl_gen_server_call(registry, KV_LOOKUP, n, sizeof n, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0 && reply->len != sizeof *bucket) rc = -ENOENT;
    if (rc == 0) memcpy(bucket, reply->data, sizeof *bucket);
    bl_msg_free(reply);
    return rc;
}

#ifndef BL_EXAMPLE_NO_MAIN
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
#endif
