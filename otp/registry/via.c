/*
 * otp/registry/via.c - a unique registry as a via name module
 * (bl_registry_via), so a gen_server can be started under {via, registry,
 * key} and found by key.
 */
#include <errno.h>

#include "otp/registry/registry_int.h"

static int via_register(void *via, const void *key, size_t klen)
{
    bl_registry *r = via;
    if (!r || r->kind != BL_REGISTRY_UNIQUE) return -EINVAL;
    return bl_registry_register(r, key, klen, NULL, 0, NULL);
}

static int via_unregister(void *via, const void *key, size_t klen)
{
    int n = bl_registry_unregister(via, key, klen);
    return n > 0 ? 0 : n == 0 ? -ENOENT : n;
}

static bl_pid via_whereis(void *via, const void *key, size_t klen)
{
    bl_registry *r = via;
    if (!r || r->kind != BL_REGISTRY_UNIQUE) return BL_PID_NONE;
    return bl_registry_lookup_pid(r, key, klen);
}

const bl_via_ops bl_registry_via = {
    .register_name = via_register,
    .unregister_name = via_unregister,
    .whereis_name = via_whereis,
};

bl_name bl_registry_name(bl_registry *r, const void *key, size_t klen)
{
    return (bl_name){.via = &bl_registry_via, .via_arg = r, .key = key, .key_len = klen};
}
