/*
 * otp/registry/register.c - the owner's side: bl_registry_register and
 * bl_registry_unregister, which the owner runs in its own process (then
 * telling the listeners, listen.c).
 *
 * Everything a register may need is allocated before the write lock is
 * taken, and the partition is told to watch the owner (TAG_MON) only after
 * the lock is dropped, since sending may switch to another process.  A
 * unique key held by a process that has exited is taken over at once, as
 * Elixir does, without waiting for the partition's cleanup.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "proc/otp.h"

int bl_registry_register(bl_registry *r, const void *key, size_t klen, const void *value,
                         size_t vlen, bl_pid *holder)
{
    if (holder) *holder = BL_PID_NONE;
    int rc = bl__reg_check_key(r, key, klen);
    if (rc) return rc;
    if (vlen && !value) return -EINVAL;
    if (vlen > SIZE_MAX / 2) return -ENOMEM;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    bool unique = r->kind == BL_REGISTRY_UNIQUE;
    uint64_t h = bl__reg_key_hash(key, klen);
    part *p = unique ? bl__reg_part_of_key(r, h) : bl__reg_part_of_pid(r, self);

    /* Allocate before locking what is certainly needed: the entry (with its
     * key node in a unique registry). */
    keynode *kn_new = NULL;
    entry *e;
    if (unique) {
        if (!(kn_new = bl__reg_keynode_new(key, klen, h, true, vlen))) return -ENOMEM;
        e = bl__reg_embedded_entry(kn_new);
    } else if (!(e = malloc(sizeof *e + vlen))) {
        return -ENOMEM;
    }
    *e = (entry){.pid = self, .vlen = vlen, .embedded = unique};
    if (vlen) memcpy(bl__reg_entry_value(e), value, vlen);

    junk j = {0};
    owner *ow_new = NULL;
    bl__reg_wrlock(p);
    keynode *kn = bl__reg_find_key(p, h, key, klen);
    if (unique && kn) {
        bl_pid old = kn->head->pid;
        if (bl_is_alive(old)) {
            bl__reg_unlock(p);
            free(kn_new);
            if (holder) *holder = old;
            return -EEXIST;
        }
        /* Held by a process that has exited: its cleanup has not come yet. */
        bl__reg_remove_entry(p, kn->head, &j);
        kn = NULL;
    }
    owner *ow = bl__reg_find_owner(p, self);
    /* What else is needed: allocated under the lock, all before anything changes. */
    if (bl__reg_tables_ready(p) != 0 || (!ow && !(ow_new = calloc(1, sizeof *ow_new))) ||
        (!kn && !unique && !(kn_new = bl__reg_keynode_new(key, klen, h, false, 0)))) {
        bl__reg_unlock(p);
        bl__reg_junk_free(&j);
        free(ow_new);
        if (unique)
            free(kn_new);
        else
            free(e), free(kn_new);
        return -ENOMEM;
    }
    if (!kn) {
        kn = kn_new;
        kn->next = p->kb[h & p->kmask];
        p->kb[h & p->kmask] = kn;
        p->nkeys++;
    }
    if (!ow) {
        ow = ow_new;
        ow->pid = self;
        size_t b = bl__reg_mix64(self) & p->omask;
        ow->next = p->ob[b];
        p->ob[b] = ow;
        p->nowners++;
    }
    bl__reg_add_entry(p, e, kn, ow);
    bl__reg_grow_keys(p);
    bl__reg_grow_owners(p);
    bl__reg_unlock(p);
    bl__reg_junk_free(&j);
    if (ow_new) {
        /* Our first entry here: ask the partition to watch us (after
         * unlocking, since sending may switch to another process). */
        rc = bl__send_ex(p->pid, TAG_MON, BL_REF_NONE, NULL, 0, 0);
        if (rc) {
            bl__reg_wrlock(p);
            bl__reg_remove_entry(p, e, &j);
            bl__reg_unlock(p);
            bl__reg_junk_free(&j);
            return rc;
        }
    }
    if (r->nlisteners) bl__reg_notify(r, BL_TAG_REGISTRY_REGISTER, key, klen, value, vlen);
    bl__charge_self(1);
    return 0;
}

int bl_registry_unregister(bl_registry *r, const void *key, size_t klen)
{
    int rc = bl__reg_check_key(r, key, klen);
    if (rc) return rc;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    uint64_t h = bl__reg_key_hash(key, klen);
    bool unique = r->kind == BL_REGISTRY_UNIQUE;
    part *p = unique ? bl__reg_part_of_key(r, h) : bl__reg_part_of_pid(r, self);
    junk j = {0};
    int n = 0;
    bool last = false;
    bl__reg_wrlock(p);
    owner *ow = bl__reg_find_owner(p, self);
    if (ow && unique) {
        keynode *kn = bl__reg_find_key(p, h, key, klen);
        if (kn && kn->head->pid == self) {
            last = bl__reg_remove_entry(p, kn->head, &j);
            n = 1;
        }
    } else if (ow) {
        /* The owner's list is usually much shorter than a topic's. */
        for (entry *e = ow->head, *next; e && !last; e = next) {
            next = e->onext;
            if (bl__reg_key_eq(e->kn, h, key, klen)) {
                last = bl__reg_remove_entry(p, e, &j);
                n++;
            }
        }
    }
    bl__reg_unlock(p);
    bl__reg_junk_free(&j);
    /* If this is lost (no memory), the partition keeps a harmless monitor until we exit. */
    if (last) bl__send_ex(p->pid, TAG_UNMON, BL_REF_NONE, NULL, 0, 0);
    if (n && r->nlisteners) bl__reg_notify(r, BL_TAG_REGISTRY_UNREGISTER, key, klen, NULL, 0);
    bl__charge_self(1);
    return n;
}
