/*
 * otp/registry/table.c - a partition's two hash tables (key nodes and owner
 * records) and the entries linked into both: growing them, linking and
 * unlinking entries, and freeing them.
 *
 * Every function here but bl__reg_part_destroy runs under the partition's
 * write lock, taken by its caller.  What a writer unlinks goes on a junk
 * list and is freed after the lock is dropped, so a lock hold never waits
 * on free().  The lookups (bl__reg_find_key, bl__reg_find_owner) are inline
 * in registry_int.h.
 */
#include <stdlib.h>

#include "otp/registry/registry_int.h"

/* Makes sure both bucket arrays exist.  0 or -ENOMEM. */
int bl__reg_tables_ready(part *p)
{
    if (!p->kb) {
        if (!(p->kb = calloc(MIN_BUCKETS, sizeof *p->kb))) return -ENOMEM;
        p->kmask = MIN_BUCKETS - 1;
    }
    if (!p->ob) {
        if (!(p->ob = calloc(MIN_BUCKETS, sizeof *p->ob))) return -ENOMEM;
        p->omask = MIN_BUCKETS - 1;
    }
    return 0;
}

/* Doubles the key buckets when they are full.  Failing to grow only makes chains longer. */
void bl__reg_grow_keys(part *p)
{
    if (p->nkeys <= p->kmask + 1) return;
    size_t nb = 2 * (p->kmask + 1);
    keynode **kb = calloc(nb, sizeof *kb);
    if (!kb) return;
    for (size_t i = 0; i <= p->kmask; i++) {
        for (keynode *kn = p->kb[i], *next; kn; kn = next) {
            next = kn->next;
            kn->next = kb[kn->hash & (nb - 1)];
            kb[kn->hash & (nb - 1)] = kn;
        }
    }
    free(p->kb);
    p->kb = kb;
    p->kmask = nb - 1;
}

void bl__reg_grow_owners(part *p)
{
    if (p->nowners <= p->omask + 1) return;
    size_t nb = 2 * (p->omask + 1);
    owner **ob = calloc(nb, sizeof *ob);
    if (!ob) return;
    for (size_t i = 0; i <= p->omask; i++) {
        for (owner *ow = p->ob[i], *next; ow; ow = next) {
            next = ow->next;
            size_t b = bl__reg_mix64(ow->pid) & (nb - 1);
            ow->next = ob[b];
            ob[b] = ow;
        }
    }
    free(p->ob);
    p->ob = ob;
    p->omask = nb - 1;
}

static void key_unlink(part *p, keynode *kn)
{
    keynode **pp = &p->kb[kn->hash & p->kmask];
    while (*pp != kn) pp = &(*pp)->next;
    *pp = kn->next;
    p->nkeys--;
}

static void owner_unlink(part *p, owner *ow)
{
    owner **pp = &p->ob[bl__reg_mix64(ow->pid) & p->omask];
    while (*pp != ow) pp = &(*pp)->next;
    *pp = ow->next;
    p->nowners--;
}

/* What a writer unlinked under the lock, freed after unlocking. */
void bl__reg_junk_free(junk *j)
{
    for (entry *e = j->entries, *next; e; e = next) {
        next = e->knext;
        free(e);
    }
    for (keynode *kn = j->keys, *next; kn; kn = next) {
        next = kn->next;
        free(kn);
    }
    for (owner *ow = j->owners, *next; ow; ow = next) {
        next = ow->next;
        free(ow);
    }
    *j = (junk){0};
}

/* Unlinks entry e everywhere.  Returns true when its owner record went with it. */
bool bl__reg_remove_entry(part *p, entry *e, junk *j)
{
    keynode *kn = e->kn;
    owner *ow = e->ow;
    *(e->kprev ? &e->kprev->knext : &kn->head) = e->knext;
    *(e->knext ? &e->knext->kprev : &kn->tail) = e->kprev;
    kn->n--;
    *(e->oprev ? &e->oprev->onext : &ow->head) = e->onext;
    *(e->onext ? &e->onext->oprev : &ow->tail) = e->oprev;
    ow->n--;
    /* relaxed: a statistic; the lock orders the writers. */
    atomic_fetch_sub_explicit(&p->count, 1, memory_order_relaxed);
    if (!e->embedded) {
        e->knext = j->entries;
        j->entries = e;
    }
    if (kn->n == 0) {
        key_unlink(p, kn);
        kn->next = j->keys;
        j->keys = kn;
    }
    if (ow->n == 0) {
        owner_unlink(p, ow);
        ow->next = j->owners;
        j->owners = ow;
        return true;
    }
    return false;
}

/* Appends e (owner pid already set) to kn's and ow's lists. */
void bl__reg_add_entry(part *p, entry *e, keynode *kn, owner *ow)
{
    e->kn = kn;
    e->ow = ow;
    e->knext = NULL;
    e->kprev = kn->tail;
    *(kn->tail ? &kn->tail->knext : &kn->head) = e;
    kn->tail = e;
    kn->n++;
    e->onext = NULL;
    e->oprev = ow->tail;
    *(ow->tail ? &ow->tail->onext : &ow->head) = e;
    ow->tail = e;
    ow->n++;
    /* relaxed: a statistic; the lock orders the writers. */
    atomic_fetch_add_explicit(&p->count, 1, memory_order_relaxed);
}

/* A key node for key, without entries; with embed, an entry for vlen value bytes follows it. */
keynode *bl__reg_keynode_new(const void *key, size_t klen, uint64_t h, bool embed, size_t vlen)
{
    size_t size = sizeof(keynode) + klen;
    if (embed) {
        size = (size + _Alignof(entry) - 1) & ~(_Alignof(entry) - 1);
        size += sizeof(entry) + vlen;
    }
    keynode *kn = malloc(size);
    if (!kn) return NULL;
    *kn = (keynode){.hash = h, .klen = klen};
    if (klen) memcpy(kn->key, key, klen);
    return kn;
}

entry *bl__reg_embedded_entry(keynode *kn)
{
    size_t off = (sizeof(keynode) + kn->klen + _Alignof(entry) - 1) & ~(_Alignof(entry) - 1);
    return (entry *)((char *)kn + off);
}

/*
 * update_value's growth: fresh takes old's place in its bucket chain and
 * fresh's embedded entry takes the old entry's place on its owner's list,
 * so counts do not change.  Readers, excluded by the write lock, see one
 * node or the other.
 */
void bl__reg_replace_keynode(part *p, keynode *old, keynode *fresh, junk *j)
{
    entry *oe = old->head; /* a unique key's only entry */
    entry *ne = bl__reg_embedded_entry(fresh);
    owner *ow = oe->ow;
    ne->knext = ne->kprev = NULL;
    ne->onext = oe->onext;
    ne->oprev = oe->oprev;
    ne->kn = fresh;
    ne->ow = ow;
    ne->pid = oe->pid;
    ne->embedded = true;
    *(oe->oprev ? &oe->oprev->onext : &ow->head) = ne;
    *(oe->onext ? &oe->onext->oprev : &ow->tail) = ne;
    fresh->head = fresh->tail = ne;
    fresh->n = 1;
    keynode **pp = &p->kb[old->hash & p->kmask];
    while (*pp != old) pp = &(*pp)->next;
    fresh->next = old->next;
    *pp = fresh;
    old->next = j->keys; /* its embedded entry goes with it */
    j->keys = old;
}

void bl__reg_part_destroy(part *p)
{
    for (size_t i = 0; p->kb && i <= p->kmask; i++) {
        for (keynode *kn = p->kb[i], *next; kn; kn = next) {
            next = kn->next;
            for (entry *e = kn->head, *en; e; e = en) {
                en = e->knext;
                if (!e->embedded) free(e);
            }
            free(kn);
        }
    }
    for (size_t i = 0; p->ob && i <= p->omask; i++) {
        for (owner *ow = p->ob[i], *next; ow; ow = next) {
            next = ow->next;
            free(ow);
        }
    }
    free(p->kb);
    free(p->ob);
    free(p->mons.pids);
    free(p->mons.refs);
    bl__reg_locks_free(&p->locks);
    pthread_rwlock_destroy(&p->lock);
}
