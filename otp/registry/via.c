/*
 * otp/registry/via.c - a unique registry as a via name module
 * (bl_registry_via), so a gen_server can be started under {via, registry,
 * key} and found by key; and bl_registry_via_value, whose names also carry
 * the value to register ({via, registry, {key, value}}).
 */
#include <errno.h>
#include <string.h>

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

/* ---- {:via, Registry, {reg, key, value}} ---- */

/*
 * The name's key bytes: the key's length (8 bytes, native order), the key,
 * then the value.  Decodes them; false when malformed.
 */
static bool unpack(const void *name, size_t len, const void **key, size_t *klen, const void **value,
                   size_t *vlen)
{
    uint64_t k;
    if (!name || len < sizeof k) return false;
    memcpy(&k, name, sizeof k);
    if (k > BL_REGISTRY_KEY_MAX || k > len - sizeof k) return false;
    const unsigned char *p = (const unsigned char *)name + sizeof k;
    *klen = (size_t)k;
    *key = k ? p : NULL;
    *vlen = len - sizeof k - (size_t)k;
    *value = *vlen ? p + k : NULL;
    return true;
}

static int viav_register(void *via, const void *name, size_t len)
{
    bl_registry *r = via;
    const void *key, *value;
    size_t klen, vlen;
    if (!r || r->kind != BL_REGISTRY_UNIQUE || !unpack(name, len, &key, &klen, &value, &vlen))
        return -EINVAL;
    return bl_registry_register(r, key, klen, value, vlen, NULL);
}

static int viav_unregister(void *via, const void *name, size_t len)
{
    const void *key, *value;
    size_t klen, vlen;
    if (!unpack(name, len, &key, &klen, &value, &vlen)) return -EINVAL;
    return via_unregister(via, key, klen);
}

static bl_pid viav_whereis(void *via, const void *name, size_t len)
{
    const void *key, *value;
    size_t klen, vlen;
    if (!unpack(name, len, &key, &klen, &value, &vlen)) return BL_PID_NONE;
    return via_whereis(via, key, klen);
}

const bl_via_ops bl_registry_via_value = {
    .register_name = viav_register,
    .unregister_name = viav_unregister,
    .whereis_name = viav_whereis,
};

int bl_registry_name_value(bl_name *name, bl_registry *r, const void *key, size_t klen,
                           const void *value, size_t vlen, void *buf, size_t size)
{
    if (!name || !r || !buf || (klen && !key) || (vlen && !value)) return -EINVAL;
    if (klen > BL_REGISTRY_KEY_MAX) return -ENAMETOOLONG;
    uint64_t k = klen;
    if (vlen > SIZE_MAX - sizeof k - klen || size < sizeof k + klen + vlen) return -ENOBUFS;
    unsigned char *p = buf;
    memcpy(p, &k, sizeof k);
    if (klen) memcpy(p + sizeof k, key, klen);
    if (vlen) memcpy(p + sizeof k + klen, value, vlen);
    *name = (bl_name){
        .via = &bl_registry_via_value, .via_arg = r, .key = buf, .key_len = sizeof k + klen + vlen};
    return 0;
}
