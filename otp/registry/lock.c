/*
 * otp/registry/lock.c - bl_registry_lock (Elixir's Registry.lock/3): the
 * caller's side, and the lock table its key's partition keeps.
 *
 * Protocol.  The caller marks its mailbox, monitors the partition, sets its
 * alias to a fresh reference and sends TAG_LOCK (the key) under it.  The
 * partition, which owns the lock table (no lock guards it: only the
 * partition process touches it), grants a free key at once and queues the
 * request behind a held one.  Granting means monitoring the new holder and
 * sending it TAG_LOCKED (alias-flagged, so a grant that comes after the
 * caller gave up never reaches its mailbox).  The caller runs fn and sends
 * TAG_UNLOCK under the same reference; the partition then demonitors it
 * and grants the next waiter still alive.  A caller that times out sends
 * the same TAG_UNLOCK: a queued request is withdrawn, and a grant that
 * crossed the timeout is released.  If the holder dies, its DOWN passes
 * the lock on.  One caller's messages reach the partition in order, so a
 * TAG_UNLOCK never overtakes its TAG_LOCK.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

/* A request waiting for its key. */
typedef struct waiter {
    struct waiter *next;
    bl_pid pid; /* the caller */
    bl_ref ref; /* its request's reference */
} waiter;

/* A held key. */
struct lockrec {
    lockrec *next;       /* bucket chain */
    uint64_t hash;       /* the key's hash */
    bl_pid holder;       /* who holds it */
    bl_ref href;         /* the holder's request reference */
    bl_ref mref;         /* the partition's monitor on the holder (0: none) */
    waiter *head, *tail; /* the queue, oldest first */
    size_t klen;         /* key bytes */
    unsigned char key[];
};

/* ---- the partition's side ---- */

static lockrec **slot_of(locktab *t, uint64_t h, const void *key, size_t klen)
{
    lockrec **pp = &t->b[h & t->mask];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen &&
                    (!klen || memcmp((*pp)->key, key, klen) == 0)))
        pp = &(*pp)->next;
    return pp;
}

/* Doubles the buckets when full; failing only makes chains longer. */
static void grow(locktab *t)
{
    if (t->n <= t->mask + 1) return;
    size_t nb = 2 * (t->mask + 1);
    lockrec **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i <= t->mask; i++) {
        for (lockrec *l = t->b[i], *next; l; l = next) {
            next = l->next;
            l->next = b[l->hash & (nb - 1)];
            b[l->hash & (nb - 1)] = l;
        }
    }
    free(t->b);
    t->b = b;
    t->mask = nb - 1;
}

static void answer(bl_pid to, bl_ref ref, int32_t status)
{
    /* BL_MSG_ALIAS: dropped if the caller has stopped waiting. */
    bl__send_ex(to, TAG_LOCKED, ref, &status, sizeof status, BL_MSG_ALIAS);
}

/* Makes (pid, ref) the holder of l. */
static void grant(lockrec *l, bl_pid pid, bl_ref ref)
{
    l->holder = pid;
    l->href = ref;
    /* A dead pid gives DOWN noproc, which passes the lock on.  Without a
     * monitor (no memory) the lock still works; only a holder's death
     * would then keep it until the runtime stops. */
    if (bl_monitor(pid, &l->mref) != 0) l->mref = BL_REF_NONE;
    answer(pid, ref, 0);
}

/* The holder of the lock at *pp is done: the next waiter alive gets it, else it goes. */
static void pass_on(locktab *t, lockrec **pp)
{
    lockrec *l = *pp;
    if (l->mref) bl_demonitor(l->mref, BL_DEMONITOR_FLUSH);
    l->mref = BL_REF_NONE;
    while (l->head) {
        waiter *w = l->head;
        l->head = w->next;
        if (!l->head) l->tail = NULL;
        bool alive = bl_is_alive(w->pid);
        bl_pid pid = w->pid;
        bl_ref ref = w->ref;
        free(w);
        if (alive) {
            grant(l, pid, ref);
            return;
        }
    }
    *pp = l->next;
    t->n--;
    free(l);
}

static void lock_req(part *p, const bl_msg *m)
{
    locktab *t = &p->locks;
    size_t klen = m->len;
    if (klen > BL_REGISTRY_KEY_MAX) return; /* not from bl_registry_lock */
    if (!t->b) {
        if (!(t->b = calloc(MIN_BUCKETS, sizeof *t->b))) {
            answer(m->from, m->ref, -ENOMEM);
            return;
        }
        t->mask = MIN_BUCKETS - 1;
    }
    uint64_t h = bl__reg_key_hash(m->data, klen);
    lockrec **pp = slot_of(t, h, m->data, klen);
    if (*pp) {
        waiter *w = malloc(sizeof *w);
        if (!w) {
            answer(m->from, m->ref, -ENOMEM);
            return;
        }
        *w = (waiter){NULL, m->from, m->ref};
        *((*pp)->tail ? &(*pp)->tail->next : &(*pp)->head) = w;
        (*pp)->tail = w;
        return;
    }
    lockrec *l = malloc(sizeof *l + klen);
    if (!l) {
        answer(m->from, m->ref, -ENOMEM);
        return;
    }
    *l = (lockrec){.hash = h, .klen = klen};
    if (klen) memcpy(l->key, m->data, klen);
    *pp = l;
    t->n++;
    grant(l, m->from, m->ref);
    grow(t);
}

static void unlock_req(part *p, const bl_msg *m)
{
    locktab *t = &p->locks;
    if (!t->b || m->len > BL_REGISTRY_KEY_MAX) return;
    lockrec **pp = slot_of(t, bl__reg_key_hash(m->data, m->len), m->data, m->len);
    lockrec *l = *pp;
    if (!l) return;
    if (l->holder == m->from && l->href == m->ref) {
        pass_on(t, pp);
        return;
    }
    /* A withdrawn request (its caller timed out). */
    for (waiter **wp = &l->head, *prev = NULL; *wp; prev = *wp, wp = &(*wp)->next) {
        waiter *w = *wp;
        if (w->pid != m->from || w->ref != m->ref) continue;
        *wp = w->next;
        if (l->tail == w) l->tail = prev;
        free(w);
        return;
    }
}

void bl__reg_lock_msg(part *p, const bl_msg *m)
{
    if (m->tag == TAG_LOCK)
        lock_req(p, m);
    else
        unlock_req(p, m);
}

/* Holders that die while holding are rare: a scan of the held keys finds them. */
bool bl__reg_lock_down(part *p, const bl_msg *m)
{
    locktab *t = &p->locks;
    if (!t->n) return false;
    for (size_t i = 0; i <= t->mask; i++)
        for (lockrec **pp = &t->b[i]; *pp; pp = &(*pp)->next)
            if ((*pp)->mref == m->ref) {
                (*pp)->mref = BL_REF_NONE; /* spent with its DOWN */
                pass_on(t, pp);
                return true;
            }
    return false;
}

void bl__reg_locks_free(locktab *t)
{
    for (size_t i = 0; t->b && i <= t->mask; i++) {
        for (lockrec *l = t->b[i], *next; l; l = next) {
            next = l->next;
            for (waiter *w = l->head, *wn; w; w = wn) {
                wn = w->next;
                free(w);
            }
            free(l);
        }
    }
    free(t->b);
    *t = (locktab){0};
}

/* ---- the caller's side ---- */

int bl_registry_lock(bl_registry *r, const void *key, size_t klen, int64_t timeout_ms,
                     bl_registry_lock_fn fn, void *arg)
{
    int rc = bl__reg_check_key(r, key, klen);
    if (rc) return rc;
    if (!fn || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    if (!bl_self()) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    part *p = bl__reg_part_of_key(r, bl__reg_key_hash(key, klen));
    bl_recv_mark();
    /* As a gen_server call's: the monitor's reference (if the registry stops
     * meanwhile, its DOWN ends the wait) is also the request's and the alias,
     * so a grant that comes after we stop waiting is dropped (proc/otp.h). */
    bl__otp_waitref w = {BL_REF_NONE, TAG_LOCKED};
    if ((rc = bl_monitor(p->pid, &w.ref)) != 0) return rc;
    bl__alias_set(w.ref);
    rc = bl__send_ex(p->pid, TAG_LOCK, w.ref, key, klen, 0);
    bl_msg *m = NULL;
    if (!rc) rc = bl_recv(&m, bl__otp_match_answer, &w, timeout_ms, BL_RECV_MARKED);
    bl__alias_set(BL_REF_NONE);
    bool held = false;
    if (rc == 0) {
        int32_t st = -EPROTO;
        if (m->tag == BL_TAG_DOWN)
            st = -ESRCH;
        else if (m->len == sizeof st)
            memcpy(&st, m->data, sizeof st);
        bl_msg_free(m);
        rc = st;
        held = st == 0;
    } else if (rc == -ETIMEDOUT) {
        /* Withdraw the request; a grant that crossed it is released the same way. */
        bl__send_ex(p->pid, TAG_UNLOCK, w.ref, key, klen, 0);
    }
    bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
    /* A grant drained before the alias went is queued (as in a timed-out
     * call, gen_server/client.c): take it out. */
    if (rc == -ETIMEDOUT && bl_recv(&m, bl__otp_match_answer, &w, 0, BL_RECV_MARKED) == 0)
        bl_msg_free(m);
    if (!held) return rc;
    fn(arg);
    /* If this is lost (no memory), our exit releases the lock. */
    bl__send_ex(p->pid, TAG_UNLOCK, w.ref, key, klen, 0);
    return 0;
}
