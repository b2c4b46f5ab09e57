/*
 * bucket_registry.c - the key-value store (see bucket_registry.h): buckets
 * as agents, and the registry gen_server that starts and monitors them.
 */
#include <beamline.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket_registry.h"

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
