/*
 * otp/registry/update.c - the owner changing entries it already has:
 * bl_registry_update_value and bl_registry_unregister_match.
 *
 * Both copy the caller's entries out under the read lock, run the user's
 * callback on the copy with no lock held, then write under the write lock.
 * That is safe without holding anything across the callback because only
 * the owner writes its own entries while it lives (registry_int.h): what
 * the caller copied is still there, unless the callback itself changed it,
 * which the write step checks.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "proc/otp.h"

/* Values up to this size are copied to the stack. */
#define COPY_STACK 128
/* Entries of the caller under one key that unregister_match copies to the stack. */
#define MATCH_STACK 16

static inline size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* ---- update_value ---- */

/* The caller's entry under key in p (a unique registry), or NULL. */
static entry *own_unique(part *p, uint64_t h, const void *key, size_t klen, bl_pid self)
{
    keynode *kn = bl__reg_find_key(p, h, key, klen);
    return kn && kn->head->pid == self ? kn->head : NULL;
}

/* Stores v (len bytes) in e, which has room for it. */
static void set_value(entry *e, const void *v, size_t len)
{
    size_t room = e->vlen + e->vspare;
    if (len) memcpy(bl__reg_entry_value(e), v, len);
    e->vlen = len;
    e->vspare = (uint32_t)(room - len);
}

/* e can take len value bytes in place (and the spare still fits its field). */
static bool fits(const entry *e, size_t len)
{
    size_t room = e->vlen + e->vspare;
    return len <= room && room - len <= UINT32_MAX;
}

/* The {new, old} copy: one block, two entries, then the bytes. */
static bl_registry_entry *pair_copy(bl_pid self, const void *nv, size_t nlen, const void *ov,
                                    size_t olen)
{
    size_t head = align16(2 * sizeof(bl_registry_entry));
    if (nlen > SIZE_MAX / 4 || olen > SIZE_MAX / 4) return NULL;
    unsigned char *blk = malloc(head + align16(nlen) + olen);
    if (!blk) return NULL;
    bl_registry_entry *e = (bl_registry_entry *)blk;
    unsigned char *nb = blk + head, *ob = nb + align16(nlen);
    if (nlen) memcpy(nb, nv, nlen);
    if (olen) memcpy(ob, ov, olen);
    e[0] = (bl_registry_entry){self, nlen ? nb : NULL, nlen};
    e[1] = (bl_registry_entry){self, olen ? ob : NULL, olen};
    return e;
}

int bl_registry_update_value(bl_registry *r, const void *key, size_t klen, bl_registry_update_fn fn,
                             void *arg, bl_registry_entry **out)
{
    if (out) *out = NULL;
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !fn) return rc ? rc : -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    if (r->kind != BL_REGISTRY_UNIQUE) return -EINVAL;
    uint64_t h = bl__reg_key_hash(key, klen);
    part *p = bl__reg_part_of_key(r, h);

    /* Copy the old value (it cannot change under us: we are its only writer). */
    _Alignas(16) unsigned char sbuf[COPY_STACK];
    unsigned char *old = sbuf;
    size_t cap = sizeof sbuf, olen;
    const void *nv = NULL;
    size_t nlen = 0;
    bl_registry_entry *pair = NULL;
    keynode *fresh = NULL;
    for (;;) {
        bl__reg_rdlock(p);
        entry *e = own_unique(p, h, key, klen, self);
        olen = e ? e->vlen : 0;
        bool copied = e && olen <= cap;
        if (copied && olen) memcpy(old, bl__reg_entry_value(e), olen);
        bl__reg_unlock(p);
        if (!e) {
            rc = -ENOENT;
            goto done;
        }
        if (copied) break;
        if (old != sbuf) free(old);
        if (!(old = malloc(olen))) return -ENOMEM;
        cap = olen;
    }

    /* The callback runs with no lock held. */
    rc = fn(olen ? old : NULL, olen, arg, &nv, &nlen);
    if (rc > 0) rc = 0;
    if (rc) goto done;
    if (nlen && !nv) {
        rc = -EINVAL;
        goto done;
    }
    if (nlen > SIZE_MAX / 4) {
        rc = -ENOMEM;
        goto done;
    }
    /* Everything that can fail is allocated before anything changes. */
    if (out && !(pair = pair_copy(self, nv, nlen, old, olen))) {
        rc = -ENOMEM;
        goto done;
    }
    for (;;) {
        junk j = {0};
        bl__reg_wrlock(p);
        /* The callback may have unregistered the key, or registered it anew. */
        entry *e = own_unique(p, h, key, klen, self);
        if (!e) {
            rc = -ENOENT;
        } else if (fits(e, nlen)) {
            set_value(e, nv, nlen); /* readers are locked out: they see all or nothing */
        } else if (fresh) {
            entry *fe = bl__reg_embedded_entry(fresh);
            fe->vlen = nlen;
            fe->vspare = 0;
            set_value(fe, nv, nlen);
            bl__reg_replace_keynode(p, e->kn, fresh, &j);
            fresh = NULL;
        } else {
            bl__reg_unlock(p);
            /* Too small: a bigger node, made outside the lock, then try again. */
            if ((fresh = bl__reg_keynode_new(key, klen, h, true, nlen))) continue;
            rc = -ENOMEM;
            break;
        }
        bl__reg_unlock(p);
        bl__reg_junk_free(&j);
        break;
    }
    free(fresh);
    if (!rc && out) *out = pair, pair = NULL;
done:
    free(pair);
    if (old != sbuf) free(old);
    return rc;
}

/* ---- unregister_match ---- */

/* One of the caller's entries under the key, as copied. */
typedef struct mrec {
    entry *e;   /* where it was */
    size_t off; /* its value in the byte copy */
    size_t len; /* value bytes */
} mrec;

/* A growing copy of the caller's entries under one key. */
typedef struct mcopy {
    mrec *r;
    size_t n, cap;
    unsigned char *b;
    size_t used, bcap;
    mrec r0[MATCH_STACK];
    _Alignas(16) unsigned char b0[COPY_STACK];
} mcopy;

/* The first entry under key from e on, along e's owner list (the caller's entries). */
static entry *own_from(entry *e, uint64_t h, const void *key, size_t klen)
{
    for (; e; e = e->onext)
        if (bl__reg_key_eq(e->kn, h, key, klen)) return e;
    return NULL;
}

/* The next of the caller's entries under key after e (a unique key has one). */
static entry *next_own(entry *e, bool unique, uint64_t h, const void *key, size_t klen)
{
    return unique ? NULL : own_from(e->onext, h, key, klen);
}

static entry *first_own(part *p, bool unique, uint64_t h, const void *key, size_t klen, bl_pid self)
{
    if (unique) return own_unique(p, h, key, klen, self);
    owner *ow = bl__reg_find_owner(p, self);
    return ow ? own_from(ow->head, h, key, klen) : NULL;
}

/* Copies the caller's entries under key, growing the copy outside the lock. */
static int copy_own(part *p, bool unique, uint64_t h, const void *key, size_t klen, bl_pid self,
                    mcopy *c)
{
    for (;;) {
        size_t need_n = 0, need_b = 0;
        bl__reg_rdlock(p);
        for (entry *e = first_own(p, unique, h, key, klen, self); e;
             e = next_own(e, unique, h, key, klen)) {
            need_n++;
            need_b += align16(e->vlen);
        }
        if (need_n <= c->cap && need_b <= c->bcap) {
            c->n = c->used = 0;
            for (entry *e = first_own(p, unique, h, key, klen, self); e;
                 e = next_own(e, unique, h, key, klen)) {
                c->r[c->n++] = (mrec){e, c->used, e->vlen};
                if (e->vlen) memcpy(c->b + c->used, bl__reg_entry_value(e), e->vlen);
                c->used += align16(e->vlen);
            }
            bl__reg_unlock(p);
            return 0;
        }
        bl__reg_unlock(p);
        if (need_n > c->cap) {
            mrec *nr = malloc(need_n * sizeof *nr);
            if (!nr) return -ENOMEM;
            if (c->r != c->r0) free(c->r);
            c->r = nr;
            c->cap = need_n;
        }
        if (need_b > c->bcap) {
            unsigned char *nb = malloc(need_b);
            if (!nb) return -ENOMEM;
            if (c->b != c->b0) free(c->b);
            c->b = nb;
            c->bcap = need_b;
        }
    }
}

static int cmp_entry(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const mrec *)a)->e, y = (uintptr_t)((const mrec *)b)->e;
    return x < y ? -1 : x > y;
}

int bl_registry_unregister_match(bl_registry *r, const void *key, size_t klen,
                                 bl_registry_match_fn pred, void *arg)
{
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !pred) return rc ? rc : -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    bool unique = r->kind == BL_REGISTRY_UNIQUE;
    uint64_t h = bl__reg_key_hash(key, klen);
    part *p = unique ? bl__reg_part_of_key(r, h) : bl__reg_part_of_pid(r, self);

    mcopy c;
    c.r = c.r0;
    c.cap = MATCH_STACK;
    c.b = c.b0;
    c.bcap = sizeof c.b0;
    c.n = c.used = 0;
    rc = copy_own(p, unique, h, key, klen, self, &c);
    size_t marked = 0;
    if (!rc) {
        /* The predicate runs on the copy, outside every lock. */
        for (size_t i = 0; i < c.n; i++) {
            mrec q = c.r[i];
            if (pred(self, q.len ? c.b + q.off : NULL, q.len, arg)) c.r[marked++] = q;
        }
    }
    int removed = 0;
    bool last = false, left = false;
    if (marked) {
        qsort(c.r, marked, sizeof *c.r, cmp_entry);
        junk j = {0};
        bl__reg_wrlock(p);
        /*
         * Remove the entries that were marked and are unchanged: still ours
         * under key, with the bytes the predicate saw (it may have changed
         * them).  An entry freed and made again at the same address with
         * the same key and bytes is indistinguishable, and matches too.
         */
        for (entry *e = first_own(p, unique, h, key, klen, self), *next; e; e = next) {
            next = next_own(e, unique, h, key, klen);
            mrec k = {e, 0, 0};
            mrec *q = bsearch(&k, c.r, marked, sizeof *c.r, cmp_entry);
            if (q && q->len == e->vlen &&
                (!q->len || memcmp(c.b + q->off, bl__reg_entry_value(e), q->len) == 0)) {
                if (bl__reg_remove_entry(p, e, &j)) last = true;
                removed++;
            } else {
                left = true;
            }
        }
        bl__reg_unlock(p);
        bl__reg_junk_free(&j);
    }
    if (c.r != c.r0) free(c.r);
    if (c.b != c.b0) free(c.b);
    if (rc) return rc;
    if (last) bl__send_ex(p->pid, TAG_UNMON, BL_REF_NONE, NULL, 0, 0);
    /* As unregister: an event when the caller has nothing left under key. */
    if (removed && !left && r->nlisteners)
        bl__reg_notify(r, BL_TAG_REGISTRY_UNREGISTER, key, klen, NULL, 0);
    return removed;
}
