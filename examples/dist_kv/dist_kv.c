/*
 * dist_kv.c - the `kv` gen_server (see dist_kv.h): decodes each request term
 * with ei, acts on the bucket registry, encodes the answer term.
 */
#include "dist_kv.h"

#include <beamline/dist.h>
#include <beamline/gen_server.h>
#include <ei.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../bucket_registry/bucket_registry.h"

/* A request, decoded: the operation and up to three arguments. */
typedef struct request {
    char op[MAXATOMLEN];
    char bucket[KV_NAME], key[KV_NAME];
    long value;
} request;

/* A binary of at most KV_NAME - 1 bytes into out, NUL-terminated. */
static int decode_name(const char *buf, int *i, char out[KV_NAME])
{
    int type, size;
    long len;
    if (ei_get_type(buf, i, &type, &size) != 0 || type != ERL_BINARY_EXT || size >= KV_NAME)
        return -1;
    if (ei_decode_binary(buf, i, out, &len) != 0) return -1;
    out[len] = 0;
    return memchr(out, 0, (size_t)len) ? -1 : 0; /* a NUL inside: not a name */
}

/* {op, bucket[, key[, value]]} with the arity op needs; 0 or -1. */
static int decode(const bl_msg *m, request *q)
{
    const char *buf = m->data;
    int i = 0, version, arity;
    if (m->tag != BL_TAG_DIST_TERM || ei_decode_version(buf, &i, &version) != 0 ||
        ei_decode_tuple_header(buf, &i, &arity) != 0 || arity < 2 ||
        ei_decode_atom(buf, &i, q->op) != 0 || decode_name(buf, &i, q->bucket) != 0)
        return -1;
    int want = strcmp(q->op, "put") == 0                                      ? 4
               : strcmp(q->op, "get") == 0 || strcmp(q->op, "delete") == 0    ? 3
               : strcmp(q->op, "create") == 0 || strcmp(q->op, "lookup") == 0 ? 2
                                                                              : -1;
    if (arity != want) return -1;
    if (arity >= 3 && decode_name(buf, &i, q->key) != 0) return -1;
    if (arity == 4 && ei_decode_long(buf, &i, &q->value) != 0) return -1;
    return 0;
}

/* Answers tag, or {tag, atom}, or {tag, *value}: :ok, {:error, :badarg}, {:ok, 3}. */
static void answer(bl_gs_result *r, const char *tag, const char *atom, const long *value)
{
    char buf[64];
    int i = 0;
    ei_encode_version(buf, &i);
    if (atom || value) {
        ei_encode_tuple_header(buf, &i, 2);
        ei_encode_atom(buf, &i, tag);
        if (atom)
            ei_encode_atom(buf, &i, atom);
        else
            ei_encode_long(buf, &i, *value);
    } else {
        ei_encode_atom(buf, &i, tag);
    }
    bl_gs_reply(r, buf, (size_t)i);
}

static void kv_init(void *arg, void **state, bl_gs_result *r)
{
    bl_pid registry;
    int rc = kv_registry_start_link(&registry);
    if (rc != 0) {
        bl_reason why = {.kind = BL_CUSTOM, .code = -rc};
        bl_gs_stop(r, &why);
        return;
    }
    *state = (void *)(uintptr_t)registry;
}

static void kv_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    bl_pid registry = (bl_pid)(uintptr_t)*state, bucket;
    request q;
    if (decode(m, &q) != 0) {
        answer(r, "error", "badarg", NULL);
        return;
    }
    if (strcmp(q.op, "create") == 0) {
        /* A cast, then a lookup: the lookup is served after the create. */
        int rc = kv_registry_create(registry, q.bucket);
        if (rc == 0) rc = kv_registry_lookup(registry, q.bucket, &bucket);
        answer(r, rc == 0 ? "ok" : "error", NULL, NULL);
        return;
    }
    int rc = kv_registry_lookup(registry, q.bucket, &bucket);
    long value;
    if (rc != 0 || strcmp(q.op, "lookup") == 0) {
        answer(r, rc == 0 ? "ok" : "error", NULL, NULL);
    } else if (strcmp(q.op, "put") == 0) {
        answer(r, bucket_put(bucket, q.key, q.value) == 0 ? "ok" : "error", NULL, NULL);
    } else {
        rc = strcmp(q.op, "get") == 0 ? bucket_get(bucket, q.key, &value)
                                      : bucket_delete(bucket, q.key, &value);
        answer(r, rc == 0 ? "ok" : "error", NULL, rc == 0 ? &value : NULL);
    }
}

/* The registry goes with kv (a normal exit signal would leave it running). */
static void kv_terminate(void **state, const bl_reason *reason)
{
    (void)reason;
    bl_gen_server_stop((bl_pid)(uintptr_t)*state, NULL, 5000);
}

static const bl_gen_server kv = {
    .init = kv_init, .handle_call = kv_call, .terminate = kv_terminate};

int dist_kv_start_link(bl_pid *pid)
{
    bl_gen_server_opts o = {.name = &(bl_name){.local = DIST_KV_NAME}};
    return bl_gen_server_start_link(pid, &kv, NULL, &o);
}
