/*
 * otp/registry/lookup.c - the readers: lookup, lookup_pid, dispatch, match,
 * count and keys.
 *
 * A reader copies what it needs out of a partition under the read lock
 * (a snap: sized under the lock, grown outside it, filled in a hold that
 * found enough room), then works on the copy with no lock held, so user
 * callbacks (dispatch, match) may call back into the registry.  Partitions
 * are never locked two at a time.  Entries of owners that have exited are
 * skipped before their cleanup comes.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "proc/otp.h"

/* Values and keys in copies start on this boundary (any type fits). */
#define COPY_ALIGN 16

static inline size_t align_up(size_t n)
{
    return (n + COPY_ALIGN - 1) & ~(size_t)(COPY_ALIGN - 1);
}

/* ---- copies ---- */

/* One copied record: a pid and bytes at off in the byte buffer. */
typedef struct rec {
    bl_pid pid;
    size_t off;
    size_t len;
} rec;

#define SNAP_RECS  16
#define SNAP_BYTES 512

/* A growing copy; starts in the caller's stack buffers. */
typedef struct snap {
    rec *r;              /* records */
    size_t n, cap;       /* used and capacity */
    unsigned char *b;    /* bytes */
    size_t used, bcap;   /* used and capacity */
    bool r_heap, b_heap; /* r / b were malloc'd */
    rec r0[SNAP_RECS];
    _Alignas(COPY_ALIGN) unsigned char b0[SNAP_BYTES];
} snap;

static void snap_init(snap *s)
{
    s->r = s->r0;
    s->cap = SNAP_RECS;
    s->b = s->b0;
    s->bcap = SNAP_BYTES;
    s->n = s->used = 0;
    s->r_heap = s->b_heap = false;
}

static void snap_fini(snap *s)
{
    if (s->r_heap) free(s->r);
    if (s->b_heap) free(s->b);
}

/* Room for need_n more records and need_b more bytes.  0 or -ENOMEM. */
static int snap_grow(snap *s, size_t need_n, size_t need_b)
{
    if (s->n + need_n > s->cap) {
        size_t cap = s->cap;
        while (cap < s->n + need_n) cap *= 2;
        rec *nr = s->r_heap ? realloc(s->r, cap * sizeof *nr) : malloc(cap * sizeof *nr);
        if (!nr) return -ENOMEM;
        if (!s->r_heap) memcpy(nr, s->r, s->n * sizeof *nr);
        s->r = nr;
        s->cap = cap;
        s->r_heap = true;
    }
    if (s->used + need_b > s->bcap) {
        size_t cap = s->bcap;
        while (cap < s->used + need_b) cap *= 2;
        unsigned char *nb = s->b_heap ? realloc(s->b, cap) : malloc(cap);
        if (!nb) return -ENOMEM;
        if (!s->b_heap && s->used) memcpy(nb, s->b, s->used);
        s->b = nb;
        s->bcap = cap;
        s->b_heap = true;
    }
    return 0;
}

static inline void snap_put(snap *s, bl_pid pid, const void *bytes, size_t len)
{
    s->r[s->n++] = (rec){pid, s->used, len};
    if (len) memcpy(s->b + s->used, bytes, len);
    s->used += align_up(len);
}

/*
 * Appends to s, from partition p, the live entries of key (pid 0) or the
 * keys of pid's entries.  Sizes under the read lock, grows the copy outside
 * it if needed, and copies in a hold that found enough room.
 */
static int snap_part(part *p, uint64_t h, const void *key, size_t klen, bl_pid pid, snap *s)
{
    for (;;) {
        bl__reg_rdlock(p);
        owner *ow = pid ? bl__reg_find_owner(p, pid) : NULL;
        keynode *kn = pid ? NULL : bl__reg_find_key(p, h, key, klen);
        entry *first = ow ? ow->head : kn ? kn->head : NULL;
        size_t need_n = 0, need_b = 0;
        for (entry *e = first; e; e = pid ? e->onext : e->knext) {
            need_n++;
            need_b += align_up(pid ? e->kn->klen : e->vlen);
        }
        if (s->n + need_n <= s->cap && s->used + need_b <= s->bcap) {
            for (entry *e = first; e; e = pid ? e->onext : e->knext) {
                if (pid)
                    snap_put(s, pid, e->kn->key, e->kn->klen);
                else if (bl_is_alive(e->pid)) /* exited owners are skipped before their cleanup */
                    snap_put(s, e->pid, bl__reg_entry_value(e), e->vlen);
            }
            bl__reg_unlock(p);
            return 0;
        }
        bl__reg_unlock(p);
        int rc = snap_grow(s, need_n, need_b);
        if (rc) return rc;
    }
}

/* One heap block: the array of n elements of esz bytes, then the bytes. */
static void *snap_block(const snap *s, size_t esz, unsigned char **bytes)
{
    size_t head = align_up(s->n * esz);
    unsigned char *blk = malloc(head + s->used);
    if (!blk) return NULL;
    *bytes = blk + head;
    if (s->used) memcpy(*bytes, s->b, s->used);
    return blk;
}

static int snap_out_entries(const snap *s, bl_registry_entry **out)
{
    *out = NULL;
    if (!s->n) return 0;
    if (s->n > INT32_MAX) return -ENOMEM;
    unsigned char *bytes;
    bl_registry_entry *e = snap_block(s, sizeof *e, &bytes);
    if (!e) return -ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        e[i] =
            (bl_registry_entry){s->r[i].pid, s->r[i].len ? bytes + s->r[i].off : NULL, s->r[i].len};
    *out = e;
    return (int)s->n;
}

void bl_registry_free(void *copy)
{
    free(copy);
}

/* ---- looking up ---- */

/* The partitions [*first, *last) that may hold key: one if unique, else all. */
static void key_parts(const bl_registry *r, uint64_t h, unsigned *first, unsigned *last)
{
    *first = 0;
    *last = r->nparts;
    if (r->kind == BL_REGISTRY_UNIQUE) {
        *first = (unsigned)((h >> 32) % r->nparts); /* as bl__reg_part_of_key */
        *last = *first + 1;
    }
}

/* The entries of key in every partition that may hold it, appended to s. */
static int snap_all(bl_registry *r, uint64_t h, const void *key, size_t klen, snap *s)
{
    unsigned first, last;
    key_parts(r, h, &first, &last);
    int rc = 0;
    for (unsigned i = first; i < last && !rc; i++) rc = snap_part(&r->parts[i], h, key, klen, 0, s);
    return rc;
}

int bl_registry_lookup(bl_registry *r, const void *key, size_t klen, bl_registry_entry **out)
{
    if (out) *out = NULL;
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !out) return rc ? rc : -EINVAL;
    if (!bl__reg_alive(r)) return -ESRCH;
    snap s;
    snap_init(&s);
    rc = snap_all(r, bl__reg_key_hash(key, klen), key, klen, &s);
    if (!rc) rc = snap_out_entries(&s, out);
    snap_fini(&s);
    bl__charge_self(1);
    return rc;
}

bl_pid bl_registry_lookup_pid(bl_registry *r, const void *key, size_t klen)
{
    if (bl__reg_check_key(r, key, klen) || !bl__reg_alive(r)) return BL_PID_NONE;
    uint64_t h = bl__reg_key_hash(key, klen);
    unsigned first, last;
    key_parts(r, h, &first, &last);
    bl_pid pid = BL_PID_NONE;
    for (unsigned i = first; i < last && !pid; i++) {
        part *p = &r->parts[i];
        bl__reg_rdlock(p);
        keynode *kn = bl__reg_find_key(p, h, key, klen);
        for (entry *e = kn ? kn->head : NULL; e && !pid; e = e->knext)
            if (bl_is_alive(e->pid)) pid = e->pid;
        bl__reg_unlock(p);
    }
    return pid;
}

int bl_registry_dispatch(bl_registry *r, const void *key, size_t klen, bl_registry_dispatch_fn fn,
                         void *arg)
{
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !fn) return rc ? rc : -EINVAL;
    if (!bl__reg_alive(r)) return -ESRCH;
    uint64_t h = bl__reg_key_hash(key, klen);
    unsigned first, last;
    key_parts(r, h, &first, &last);
    snap s;
    snap_init(&s);
    bl_registry_entry view0[SNAP_RECS];
    bl_registry_entry *view = view0;
    size_t vcap = SNAP_RECS;
    int64_t total = 0;
    for (unsigned i = first; i < last; i++) {
        s.n = s.used = 0;
        if ((rc = snap_part(&r->parts[i], h, key, klen, 0, &s)) != 0) break;
        if (!s.n) continue;
        if (s.n > vcap) {
            bl_registry_entry *nv = malloc(s.n * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            if (view != view0) free(view);
            view = nv;
            vcap = s.n;
        }
        for (size_t k = 0; k < s.n; k++)
            view[k] =
                (bl_registry_entry){s.r[k].pid, s.r[k].len ? s.b + s.r[k].off : NULL, s.r[k].len};
        /* No lock is held: fn may call back into the registry. */
        fn(view, s.n, arg);
        total += (int64_t)s.n;
    }
    if (view != view0) free(view);
    snap_fini(&s);
    if (rc) return rc;
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

/* One partition's part of a dispatch (a parallel dispatch's task runs this). */
int bl__reg_dispatch_one(part *p, uint64_t h, const void *key, size_t klen,
                         bl_registry_dispatch_fn fn, void *arg)
{
    snap s;
    snap_init(&s);
    bl_registry_entry view0[SNAP_RECS];
    bl_registry_entry *view = view0;
    int rc = snap_part(p, h, key, klen, 0, &s);
    if (!rc && s.n > SNAP_RECS && !(view = malloc(s.n * sizeof *view))) rc = -ENOMEM;
    if (!rc && s.n) {
        for (size_t k = 0; k < s.n; k++)
            view[k] =
                (bl_registry_entry){s.r[k].pid, s.r[k].len ? s.b + s.r[k].off : NULL, s.r[k].len};
        fn(view, s.n, arg);
        rc = s.n > INT32_MAX ? INT32_MAX : (int)s.n;
    }
    if (view != view0) free(view);
    snap_fini(&s);
    return rc;
}

int bl_registry_match(bl_registry *r, const void *key, size_t klen, bl_registry_match_fn pred,
                      void *arg, bl_registry_entry **out)
{
    if (out) *out = NULL;
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !pred) return rc ? rc : -EINVAL;
    if (!bl__reg_alive(r)) return -ESRCH;
    snap s;
    snap_init(&s);
    rc = snap_all(r, bl__reg_key_hash(key, klen), key, klen, &s);
    if (!rc) {
        /* The predicate runs on the copy, outside every lock. */
        size_t kept = 0;
        for (size_t i = 0; i < s.n; i++) {
            rec q = s.r[i];
            if (pred(q.pid, q.len ? s.b + q.off : NULL, q.len, arg)) s.r[kept++] = q;
        }
        s.n = kept;
        if (out)
            rc = snap_out_entries(&s, out);
        else
            rc = kept > INT32_MAX ? INT32_MAX : (int)kept;
    }
    snap_fini(&s);
    return rc;
}

int64_t bl_registry_count(bl_registry *r)
{
    if (!r) return -EINVAL;
    if (!bl__reg_alive(r)) return -ESRCH;
    int64_t n = 0;
    /* relaxed: a sum of counters, each exact when its writers are quiet. */
    for (unsigned i = 0; i < r->nparts; i++)
        n += atomic_load_explicit(&r->parts[i].count, memory_order_relaxed);
    return n;
}

int bl_registry_keys(bl_registry *r, bl_pid pid, bl_registry_key **out)
{
    if (out) *out = NULL;
    if (!r || !out) return -EINVAL;
    if (!bl__reg_alive(r)) return -ESRCH;
    if (!pid) return 0; /* names no process (and means "by key" to snap_part) */
    snap s;
    snap_init(&s);
    int rc = 0;
    if (r->kind == BL_REGISTRY_DUPLICATE) {
        rc = snap_part(bl__reg_part_of_pid(r, pid), 0, NULL, 0, pid, &s);
    } else {
        for (unsigned i = 0; i < r->nparts && !rc; i++)
            rc = snap_part(&r->parts[i], 0, NULL, 0, pid, &s);
    }
    if (!rc && s.n) {
        if (s.n > INT32_MAX) {
            rc = -ENOMEM;
        } else {
            unsigned char *bytes;
            bl_registry_key *k = snap_block(&s, sizeof *k, &bytes);
            if (!k) {
                rc = -ENOMEM;
            } else {
                for (size_t i = 0; i < s.n; i++)
                    k[i] = (bl_registry_key){s.r[i].len ? bytes + s.r[i].off : NULL, s.r[i].len};
                *out = k;
                rc = (int)s.n;
            }
        }
    }
    snap_fini(&s);
    return rc;
}
