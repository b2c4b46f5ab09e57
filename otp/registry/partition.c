/*
 * otp/registry/partition.c - the partition process: it watches the owners
 * of its entries and removes the entries of those that die, answers
 * bl_registry_sync (whose caller's side is here too), and keeps the lock
 * table of bl_registry_lock (lock.c).
 *
 * Monitors.  An owner's first entry in a partition creates its owner record
 * and sends the partition TAG_MON; removing its last entry removes the
 * record and sends TAG_UNMON.  Both come from the owner, so they arrive in
 * order, and the partition keeps a private map pid -> monitor reference:
 * MON monitors the pid (once), UNMON demonitors it.  On DOWN the partition
 * removes whatever entries the pid still has.  An owner that is already
 * dead when MON is handled gets DOWN noproc, and is purged at once anyway.
 * The record's lifetime therefore never decides the monitor's, and a DOWN
 * for a pid without a record is harmless.
 *
 * Partitions do not trap exits: they follow the top process if it is
 * killed.  A partition is a handler process, so an idle one holds no stack.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

/* Entries a partition removes per write-lock hold when purging a dead owner. */
#define PURGE_BATCH 64

/* ---- the private monitor map ---- */

static size_t mm_slot(const monmap *m, bl_pid pid)
{
    size_t i = bl__reg_mix64(pid) & m->mask;
    while (m->pids[i] && m->pids[i] != pid) i = (i + 1) & m->mask;
    return i;
}

static bool mm_get(const monmap *m, bl_pid pid, bl_ref *ref)
{
    if (!m->pids) return false;
    size_t i = mm_slot(m, pid);
    if (!m->pids[i]) return false;
    *ref = m->refs[i];
    return true;
}

static int mm_put(monmap *m, bl_pid pid, bl_ref ref)
{
    if (!m->pids || 2 * (m->n + 1) > m->mask + 1) {
        size_t slots = m->pids ? 2 * (m->mask + 1) : MIN_BUCKETS;
        monmap g = {calloc(slots, sizeof(bl_pid)), calloc(slots, sizeof(bl_ref)), slots - 1, 0};
        if (!g.pids || !g.refs) {
            free(g.pids);
            free(g.refs);
            return -ENOMEM;
        }
        for (size_t i = 0; m->pids && i <= m->mask; i++) {
            if (!m->pids[i]) continue;
            size_t j = mm_slot(&g, m->pids[i]);
            g.pids[j] = m->pids[i];
            g.refs[j] = m->refs[i];
            g.n++;
        }
        free(m->pids);
        free(m->refs);
        *m = g;
    }
    size_t i = mm_slot(m, pid);
    if (!m->pids[i]) m->n++;
    m->pids[i] = pid;
    m->refs[i] = ref;
    return 0;
}

/* Removes pid (backward-shift deletion keeps every probe chain unbroken). */
static void mm_del(monmap *m, bl_pid pid)
{
    if (!m->pids) return;
    size_t i = mm_slot(m, pid);
    if (!m->pids[i]) return;
    m->n--;
    for (size_t j = (i + 1) & m->mask; m->pids[j]; j = (j + 1) & m->mask) {
        size_t home = bl__reg_mix64(m->pids[j]) & m->mask;
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->pids[i] = m->pids[j];
            m->refs[i] = m->refs[j];
            i = j;
        }
    }
    m->pids[i] = 0;
}

/* ---- the partition process ---- */

/*
 * Removes every entry of pid in p, PURGE_BATCH entries per lock hold, each
 * entry a reduction: an owner of a million keys is purged over many slices,
 * not in one that holds the scheduler for a second.
 */
static void purge_owner(part *p, bl_pid pid)
{
    bool done = false;
    while (!done) {
        junk j = {0};
        int k = 0;
        bl__reg_wrlock(p);
        owner *ow = bl__reg_find_owner(p, pid);
        done = ow == NULL;
        for (; ow && k < PURGE_BATCH; k++)
            if (bl__reg_remove_entry(p, ow->head, &j)) done = true, ow = NULL;
        bl__reg_unlock(p);
        bl__reg_junk_free(&j);
        if (k) bl__charge_self(k);
    }
}

/* TAG_MON: watch pid once.  A dead pid is purged at once (its DOWN noproc follows). */
static void watch(part *p, bl_pid pid)
{
    bl_ref ref;
    if (mm_get(&p->mons, pid, &ref)) return;
    if (bl_monitor(pid, &ref) == 0 && mm_put(&p->mons, pid, ref) != 0)
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
    /* Without a monitor (out of memory) entries of a live pid stay until a
     * sync finds it dead; a pid dead already is purged now either way. */
    if (!bl_is_alive(pid)) purge_owner(p, pid);
}

/* TAG_UNMON: pid has no entries here any more. */
static void unwatch(part *p, bl_pid pid)
{
    bl_ref ref;
    if (!mm_get(&p->mons, pid, &ref)) return;
    bl_demonitor(ref, BL_DEMONITOR_FLUSH);
    mm_del(&p->mons, pid);
}

/*
 * Sync: purge every owner that has exited, whether or not its DOWN has come
 * (and whether or not it could be monitored).  Looks at every owner record.
 */
static void sweep(part *p)
{
    bl_pid dead[32];
    size_t nd;
    do {
        nd = 0;
        bl__reg_rdlock(p);
        for (size_t b = 0; p->ob && b <= p->omask && nd < 32; b++)
            for (owner *ow = p->ob[b]; ow && nd < 32; ow = ow->next)
                if (!bl_is_alive(ow->pid)) dead[nd++] = ow->pid;
        bl__reg_unlock(p);
        for (size_t i = 0; i < nd; i++) purge_owner(p, dead[i]);
    } while (nd == 32);
}

static int part_handle(void *state, bl_msg *m)
{
    part *p = state;
    switch (m->tag) {
    case TAG_MON:
        watch(p, m->from);
        break;
    case TAG_UNMON:
        unwatch(p, m->from);
        break;
    case BL_TAG_DOWN: {
        /* An owner's (its monitor is in the map), else maybe a lock holder's (lock.c). */
        bl_ref ref;
        bool owner = mm_get(&p->mons, m->from, &ref) && ref == m->ref;
        if (!owner && bl__reg_lock_down(p, m)) break;
        mm_del(&p->mons, m->from);
        purge_owner(p, m->from);
        break;
    }
    case TAG_LOCK:
    case TAG_UNLOCK:
        bl__reg_lock_msg(p, m);
        break;
    case TAG_SYNC:
        sweep(p);
        /* BL_MSG_ALIAS: dropped if the caller has stopped waiting. */
        bl__send_ex(m->from, TAG_SYNCED, m->ref, NULL, 0, BL_MSG_ALIAS);
        break;
    default:
        break; /* not ours: ignored */
    }
    return BL_CONTINUE;
}

static void part_release(void *state)
{
    part *p = state;
    bl_registry *r = p->reg;
    /* release: a partition gone means the registry no longer works. */
    atomic_store_explicit(&r->alive, 0, memory_order_release);
    bl_registry_release(r);
}

const bl_handler bl__reg_part_handler = {
    .handle = part_handle,
    .release = part_release,
};

/* ---- sync: the caller's side (the partition answers in part_handle) ---- */

typedef struct syncwait {
    bl_ref ref;  /* the sync's reference (answers) */
    bl_ref mref; /* the monitor on the top process */
} syncwait;

static bool match_sync(const bl_msg *m, void *arg)
{
    const syncwait *w = arg;
    return (m->tag == TAG_SYNCED && m->ref == w->ref) ||
           (m->tag == BL_TAG_DOWN && m->ref == w->mref);
}

int bl_registry_sync(bl_registry *r, int64_t timeout_ms)
{
    if (!r || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    if (!bl_self()) return -EPERM;
    bl_recv_mark();
    syncwait w = {bl_make_ref(), 0};
    if (!bl__reg_alive(r)) return -ESRCH;
    /* If the registry stops meanwhile, the top's DOWN ends the wait. */
    int rc = bl_monitor(r->top, &w.mref);
    if (rc) return rc;
    /* Answers that come after we stop waiting are dropped (proc/otp.h). */
    bl__alias_set(w.ref);
    int64_t deadline = timeout_ms == BL_INFINITY ? 0 : bl__otp_now_ms() + timeout_ms;
    unsigned got = 0;
    for (unsigned i = 0; i < r->nparts && !rc; i++)
        rc = bl__send_ex(r->parts[i].pid, TAG_SYNC, w.ref, NULL, 0, 0);
    while (!rc && got < r->nparts) {
        int64_t left = BL_INFINITY;
        if (timeout_ms != BL_INFINITY) {
            left = deadline - bl__otp_now_ms();
            if (left < 0) left = 0;
        }
        bl_msg *m = NULL;
        rc = bl_recv(&m, match_sync, &w, left, BL_RECV_MARKED);
        if (rc) break;
        if (m->tag == BL_TAG_DOWN) rc = -ESRCH;
        got++;
        bl_msg_free(m);
    }
    bl__alias_set(BL_REF_NONE);
    bl_demonitor(w.mref, BL_DEMONITOR_FLUSH);
    return rc;
}
