/*
 * otp/registry.c - Elixir's Registry: partitioned tables of key -> {pid,
 * value}, cleaned up by partition processes that monitor the owners.
 *
 * Tables.  Each partition has one hash table of key nodes (a key and the
 * list of its entries in registration order) and one of owner records (a
 * pid and the list of its entries in this partition), both guarded by the
 * partition's reader-writer lock.  An entry is on exactly one key list and
 * one owner list.  In a unique registry a key has one entry, allocated
 * together with its key node.  Unique registries pick the partition from
 * the high bits of the key hash (the bucket uses the low bits), duplicate
 * ones from the owner's pid.
 *
 * Who writes.  The owner itself inserts and removes its entries, under the
 * write lock, from its own process; readers copy entries out under the read
 * lock.  Only three other writers exist: a unique register that finds the
 * key held by a dead process removes that entry (as Elixir does); a
 * partition removes the entries of a dead owner; and freeing the registry.
 * No lock is held across anything that can switch processes, so a lock
 * holder always runs to the end of its section.
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
 * Lifetime.  refs counts the handles given out plus each registry process
 * that has been spawned (top and partitions); a process gives its count
 * back in its handler's release, which the runtime calls after the process
 * is gone whatever killed it (and when the runtime stops), so the memory is
 * freed only once nothing can touch it.  alive goes to 0 when the top
 * process starts stopping or any registry process is released; calls then
 * return -ESRCH.
 *
 * Stopping.  The top process traps exits.  A stop request, an exit signal
 * from its parent, any other non-normal exit signal, or the exit of a
 * partition makes it send shutdown to the partitions still running, wait
 * for their EXITs, and exit with the reason.  Partitions do not trap
 * exits: they follow the top process if it is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beamline.h"
#include "beamline/registry.h"
#include "proc/otp.h"

/* Control messages, reserved tags so that no plain bl_send can forge them. */
#define TAG_MON    (BL_TAG_SYSTEM | 0x40u) /* owner -> partition: monitor me */
#define TAG_UNMON  (BL_TAG_SYSTEM | 0x41u) /* owner -> partition: no entries left here */
#define TAG_SYNC   (BL_TAG_SYSTEM | 0x42u) /* bl_registry_sync -> partition (ref) */
#define TAG_SYNCED (BL_TAG_SYSTEM | 0x43u) /* partition -> caller: the answer (ref) */
#define TAG_STOP   (BL_TAG_SYSTEM | 0x44u) /* bl_registry_stop -> top: a reason */
#define TAG_ACK    (BL_TAG_SYSTEM | 0x45u) /* top -> starter: start status (ref) */

/* Entries a partition removes per write-lock hold when purging a dead owner. */
#define PURGE_BATCH 64
/* Buckets of a table when it gets its first key or owner. */
#define MIN_BUCKETS 16
/* Values and keys in copies start on this boundary (any type fits). */
#define COPY_ALIGN 16

typedef struct keynode keynode;
typedef struct owner owner;

/* One registration. */
typedef struct entry {
    struct entry *knext; /* next on the key's list (also: junk list) */
    struct entry *kprev; /* previous on the key's list */
    struct entry *onext; /* next on the owner's list */
    struct entry *oprev; /* previous on the owner's list */
    keynode *kn;         /* its key */
    owner *ow;           /* its owner's record */
    bl_pid pid;          /* the owner (ow->pid) */
    size_t vlen;         /* value bytes, stored right after the struct */
    bool embedded;       /* allocated inside kn (unique registries) */
} entry;

/* A key and its entries. */
struct keynode {
    keynode *next;       /* bucket chain (also: junk list) */
    entry *head;         /* first entry (oldest) */
    entry *tail;         /* last entry */
    uint64_t hash;       /* key_hash of the key */
    size_t n;            /* entries on the list */
    size_t klen;         /* key bytes */
    unsigned char key[]; /* the key; in a unique registry, then the entry */
};

/* An owner's entries in one partition. */
struct owner {
    owner *next; /* bucket chain (also: junk list) */
    entry *head; /* first entry (oldest) */
    entry *tail; /* last entry */
    bl_pid pid;  /* the owner */
    size_t n;    /* entries on the list */
};

/* A partition's private map pid -> monitor reference (open addressing, pid 0 = empty). */
typedef struct monmap {
    bl_pid *pids; /* keys */
    bl_ref *refs; /* values */
    size_t mask;  /* slots - 1; no slots while pids is NULL */
    size_t n;     /* pids present */
} monmap;

typedef struct part {
    /* Shared: everything up to count is guarded by lock. */
    _Alignas(64) pthread_rwlock_t lock;
    keynode **kb;          /* key buckets, NULL until the first key */
    size_t kmask;          /* key buckets - 1 */
    size_t nkeys;          /* key nodes */
    owner **ob;            /* owner buckets, NULL until the first owner */
    size_t omask;          /* owner buckets - 1 */
    size_t nowners;        /* owner records */
    _Atomic int64_t count; /* entries; written under the lock, read without */
    bl_pid pid;            /* the partition process; set by top init before the ack */
    struct bl_registry *reg;
    /* Private to the partition process. */
    monmap mons;
} part;

struct bl_registry {
    _Atomic long refs;          /* handles + spawned registry processes not yet released */
    _Atomic int alive;          /* 1 from a successful start until stopping */
    bl_registry_kind kind;      /* unique or duplicate */
    unsigned nparts;            /* partitions */
    part *parts;                /* nparts partitions (64-byte aligned) */
    bl_pid top;                 /* the top process; written by its init under list_lock */
    bl_pid parent;              /* the linked starter, or BL_PID_NONE */
    bl_pid starter;             /* who waits for the ack */
    bl_ref start_ref;           /* the ack's reference */
    char *name;                 /* local name, or NULL */
    struct bl_registry *lnext;  /* list of registries (list_lock) */
    struct bl_registry **lprev; /* link pointing at us, NULL when not listed */
    /* Private to the top process. */
    bool stopping;    /* stop begun */
    unsigned pending; /* partitions whose EXIT has not come yet */
    bool *exited;     /* per partition: its EXIT has come */
    bl_reason why;    /* stop reason; detail is a heap copy */
};

/* Registries whose top process lives, for bl_registry_whereis. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static bl_registry *list_head;

/* ---- small helpers ---- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xc2b2ae3d27d4eb4full);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h = h << 31 | h >> 33;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len) memcpy(&w, p, len);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return mix64(h);
}

static inline size_t align_up(size_t n)
{
    return (n + COPY_ALIGN - 1) & ~(size_t)(COPY_ALIGN - 1);
}

static inline unsigned char *entry_value(entry *e)
{
    return (unsigned char *)(e + 1);
}

static inline bool key_eq(const keynode *kn, uint64_t h, const void *key, size_t klen)
{
    return kn->hash == h && kn->klen == klen && (!klen || memcmp(kn->key, key, klen) == 0);
}

static inline bool reg_alive(const bl_registry *r)
{
    /* acquire: pairs with the release store in top_init, so a caller that
     * sees 1 also sees the partitions' pids. */
    return atomic_load_explicit(&r->alive, memory_order_acquire) != 0;
}

static inline void wrlock(part *p)
{
    pthread_rwlock_wrlock(&p->lock);
}
static inline void rdlock(part *p)
{
    pthread_rwlock_rdlock(&p->lock);
}
static inline void unlock(part *p)
{
    pthread_rwlock_unlock(&p->lock);
}

static inline part *part_of_key(bl_registry *r, uint64_t h)
{
    return &r->parts[(h >> 32) % r->nparts];
}
static inline part *part_of_pid(bl_registry *r, bl_pid pid)
{
    return &r->parts[mix64(pid) % r->nparts];
}

/* Validates the common arguments of the key calls. */
static int check_key(const bl_registry *r, const void *key, size_t klen)
{
    if (!r || (klen && !key)) return -EINVAL;
    if (klen > BL_REGISTRY_KEY_MAX) return -ENAMETOOLONG;
    return 0;
}

/* ---- the private monitor map ---- */

static size_t mm_slot(const monmap *m, bl_pid pid)
{
    size_t i = mix64(pid) & m->mask;
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
        size_t home = mix64(m->pids[j]) & m->mask;
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->pids[i] = m->pids[j];
            m->refs[i] = m->refs[j];
            i = j;
        }
    }
    m->pids[i] = 0;
}

/* ---- tables (under the partition lock) ---- */

static keynode *find_key(part *p, uint64_t h, const void *key, size_t klen)
{
    if (!p->kb) return NULL;
    for (keynode *kn = p->kb[h & p->kmask]; kn; kn = kn->next)
        if (key_eq(kn, h, key, klen)) return kn;
    return NULL;
}

static owner *find_owner(part *p, bl_pid pid)
{
    if (!p->ob) return NULL;
    for (owner *ow = p->ob[mix64(pid) & p->omask]; ow; ow = ow->next)
        if (ow->pid == pid) return ow;
    return NULL;
}

/* Makes sure both bucket arrays exist.  0 or -ENOMEM. */
static int tables_ready(part *p)
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
static void grow_keys(part *p)
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

static void grow_owners(part *p)
{
    if (p->nowners <= p->omask + 1) return;
    size_t nb = 2 * (p->omask + 1);
    owner **ob = calloc(nb, sizeof *ob);
    if (!ob) return;
    for (size_t i = 0; i <= p->omask; i++) {
        for (owner *ow = p->ob[i], *next; ow; ow = next) {
            next = ow->next;
            size_t b = mix64(ow->pid) & (nb - 1);
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
    owner **pp = &p->ob[mix64(ow->pid) & p->omask];
    while (*pp != ow) pp = &(*pp)->next;
    *pp = ow->next;
    p->nowners--;
}

/* What a writer unlinked under the lock, freed after unlocking. */
typedef struct junk {
    entry *entries; /* chained through knext */
    keynode *keys;  /* chained through next (an embedded entry goes with its node) */
    owner *owners;  /* chained through next */
} junk;

static void junk_free(junk *j)
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
static bool remove_entry(part *p, entry *e, junk *j)
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
static void add_entry(part *p, entry *e, keynode *kn, owner *ow)
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
static keynode *keynode_new(const void *key, size_t klen, uint64_t h, bool embed, size_t vlen)
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

static entry *embedded_entry(keynode *kn)
{
    size_t off = (sizeof(keynode) + kn->klen + _Alignof(entry) - 1) & ~(_Alignof(entry) - 1);
    return (entry *)((char *)kn + off);
}

/* ---- freeing ---- */

static void part_destroy(part *p)
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
    pthread_rwlock_destroy(&p->lock);
}

static void reg_free(bl_registry *r)
{
    for (unsigned i = 0; i < r->nparts; i++) part_destroy(&r->parts[i]);
    free(r->parts);
    free(r->exited);
    free((void *)r->why.detail);
    free(r->name);
    free(r);
}

void bl_registry_retain(bl_registry *r)
{
    /* relaxed: the caller already holds a reference, which keeps r alive. */
    if (r) atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void bl_registry_release(bl_registry *r)
{
    /* acq_rel: every holder's accesses happen before the last one frees. */
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) reg_free(r);
}

/* ---- the partition process ---- */

/* Removes every entry of pid in p, PURGE_BATCH entries per lock hold. */
static void purge_owner(part *p, bl_pid pid)
{
    bool done = false;
    while (!done) {
        junk j = {0};
        wrlock(p);
        owner *ow = find_owner(p, pid);
        done = ow == NULL;
        for (int k = 0; ow && k < PURGE_BATCH; k++)
            if (remove_entry(p, ow->head, &j)) done = true, ow = NULL;
        unlock(p);
        junk_free(&j);
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
        rdlock(p);
        for (size_t b = 0; p->ob && b <= p->omask && nd < 32; b++)
            for (owner *ow = p->ob[b]; ow && nd < 32; ow = ow->next)
                if (!bl_is_alive(ow->pid)) dead[nd++] = ow->pid;
        unlock(p);
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
    case BL_TAG_DOWN:
        mm_del(&p->mons, m->from);
        purge_owner(p, m->from);
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

static const bl_handler part_handler = {
    .handle = part_handle,
    .release = part_release,
};

/* ---- the top process ---- */

typedef struct ack {
    int status;    /* 0 or a negative errno */
    bl_pid holder; /* -EEXIST: who has the name */
} ack;

/* How a reason travels in TAG_STOP. */
typedef struct wire_reason {
    int32_t kind;
    int32_t code;
    uint64_t detail_len; /* detail bytes follow */
} wire_reason;

static void begin_stop(bl_registry *r, const bl_reason *why)
{
    if (r->stopping) return;
    r->stopping = true;
    /* release: nothing to publish; callers just stop using the tables. */
    atomic_store_explicit(&r->alive, 0, memory_order_release);
    r->why = *why;
    r->why.detail = NULL;
    r->why.detail_len = 0;
    if (why->detail_len) {
        void *d = malloc(why->detail_len);
        if (d) {
            memcpy(d, why->detail, why->detail_len);
            r->why.detail = d;
            r->why.detail_len = why->detail_len;
        }
    }
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].pid && !r->exited[i]) bl_exit_pid(r->parts[i].pid, &sd);
}

static int top_init(void *arg, void **state)
{
    bl_registry *r = arg;
    *state = r;
    bl_trap_exit(true);
    bl_pid self = bl_self();
    pthread_mutex_lock(&list_lock);
    r->top = self;
    r->lnext = list_head;
    if (list_head) list_head->lprev = &r->lnext;
    r->lprev = &list_head;
    list_head = r;
    pthread_mutex_unlock(&list_lock);

    ack a = {0, BL_PID_NONE};
    if (r->name) {
        a.status = bl_register(r->name, self);
        if (a.status == -EEXIST) a.holder = bl_whereis(r->name);
    }
    unsigned nsched = bl_schedulers();
    unsigned spawned = 0;
    for (; !a.status && spawned < r->nparts; spawned++) {
        part *p = &r->parts[spawned];
        bl_spawn_opts so = {.scheduler = nsched ? (int)(spawned % nsched) + 1 : 0};
        bl_ref mref = bl_make_ref();
        /* The partition's reference, given back by its release. */
        bl_registry_retain(r);
        /* Linked before it runs; the monitor only comes with the call. */
        a.status = bl__spawn_handler_monitor(&p->pid, &part_handler, p, &so, true, mref);
        if (a.status) {
            p->pid = BL_PID_NONE;
            bl_registry_release(r);
            break;
        }
        bl_demonitor(mref, BL_DEMONITOR_FLUSH);
    }
    if (!a.status) {
        r->pending = r->nparts;
        /* release: pairs with reg_alive's acquire (partition pids, tables). */
        atomic_store_explicit(&r->alive, 1, memory_order_release);
    } else {
        bl_reason sd = BL_REASON(BL_SHUTDOWN);
        for (unsigned i = 0; i < spawned; i++) bl_exit_pid(r->parts[i].pid, &sd);
    }
    bl__send_ex(r->starter, TAG_ACK, r->start_ref, &a, sizeof a, 0);
    return a.status ? BL_STOP : 0;
}

static int part_index(const bl_registry *r, bl_pid pid)
{
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].pid == pid) return (int)i;
    return -1;
}

static int top_handle(void *state, bl_msg *m)
{
    bl_registry *r = state;
    bl_reason why;
    if (m->tag == TAG_STOP && m->len >= sizeof(wire_reason)) {
        wire_reason w;
        memcpy(&w, m->data, sizeof w);
        if (w.detail_len == m->len - sizeof w && (unsigned)w.kind <= BL_CUSTOM &&
            w.kind != BL_KILL) {
            why = (bl_reason){(bl_reason_kind)w.kind, w.code, (char *)m->data + sizeof w,
                              (size_t)w.detail_len};
            begin_stop(r, &why);
        }
    } else if (m->tag == BL_TAG_EXIT && bl_msg_reason(m, &why) == 0) {
        int i = part_index(r, m->from);
        if (i >= 0) {
            if (!r->exited[i]) {
                r->exited[i] = true;
                r->pending--;
            }
            /* A partition died on its own: the registry cannot go on. */
            bl_reason sd = BL_REASON(BL_SHUTDOWN);
            begin_stop(r, &sd);
        } else if ((r->parent && m->from == r->parent) || why.kind != BL_NORMAL) {
            begin_stop(r, &why);
        }
    }
    /* Anything else is ignored, as a supervisor ignores unexpected messages. */
    if (!r->stopping || r->pending) return BL_CONTINUE;
    if (r->why.kind == BL_NORMAL) return BL_STOP;
    return bl_handler_exit(&r->why); /* copies the reason at once */
}

static void top_release(void *state)
{
    bl_registry *r = state;
    pthread_mutex_lock(&list_lock);
    if (r->lprev) {
        *r->lprev = r->lnext;
        if (r->lnext) r->lnext->lprev = r->lprev;
        r->lprev = NULL;
    }
    pthread_mutex_unlock(&list_lock);
    /* release: as in part_release. */
    atomic_store_explicit(&r->alive, 0, memory_order_release);
    bl_registry_release(r);
}

static const bl_handler top_handler = {
    .init = top_init,
    .handle = top_handle,
    .release = top_release,
};

/* ---- starting and stopping ---- */

typedef struct waitref {
    bl_ref ref;   /* the reference waited for */
    uint32_t tag; /* the answer's tag (DOWN also matches) */
} waitref;

static bool match_answer(const bl_msg *m, void *arg)
{
    const waitref *w = arg;
    return m->ref == w->ref && (m->tag == w->tag || m->tag == BL_TAG_DOWN);
}

static bool match_exit_from(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_EXIT && m->from == *(const bl_pid *)arg;
}

static bl_registry *reg_new(const bl_registry_opts *o, unsigned nparts)
{
    bl_registry *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = o->keys;
    r->nparts = nparts;
    r->parts = aligned_alloc(64, ((nparts * sizeof(part)) + 63) & ~(size_t)63);
    r->exited = calloc(nparts, sizeof(bool));
    r->name = o->name ? strdup(o->name) : NULL;
    if (!r->parts || !r->exited || (o->name && !r->name)) {
        free(r->parts);
        free(r->exited);
        free(r->name);
        free(r);
        return NULL;
    }
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* Writers first: a stream of lookups must not starve register. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (unsigned i = 0; i < nparts; i++) {
        part *p = &r->parts[i];
        memset(p, 0, sizeof *p);
        pthread_rwlock_init(&p->lock, &a);
        p->reg = r;
    }
    pthread_rwlockattr_destroy(&a);
    return r;
}

static int start(const bl_registry_opts *o, bl_registry **out, bool link)
{
    static const bl_registry_opts defaults;
    if (!o) o = &defaults;
    if (!out) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (o->keys != BL_REGISTRY_UNIQUE && o->keys != BL_REGISTRY_DUPLICATE) return -EINVAL;
    unsigned n = o->partitions;
    if (n == BL_REGISTRY_SCHEDULERS) {
        n = bl_schedulers();
        if (n > BL_REGISTRY_PARTITIONS_MAX) n = BL_REGISTRY_PARTITIONS_MAX;
    }
    if (n == 0) n = 1;
    if (n > BL_REGISTRY_PARTITIONS_MAX) return -EINVAL;

    bl_registry *r = reg_new(o, n);
    if (!r) return -ENOMEM;
    /* One reference for the caller, one for the top process (its release). */
    atomic_init(&r->refs, 2);
    atomic_init(&r->alive, 0);
    r->starter = self;
    r->parent = link ? self : BL_PID_NONE;
    bl_recv_mark();
    waitref w = {bl_make_ref(), TAG_ACK};
    r->start_ref = w.ref;
    bl_pid top;
    int rc = bl__spawn_handler_monitor(&top, &top_handler, r, NULL, link, w.ref);
    if (rc) {
        reg_free(r);
        return rc;
    }
    bl_msg *m = NULL;
    bl_recv(&m, match_answer, &w, BL_INFINITY, BL_RECV_MARKED);
    if (m->tag == BL_TAG_DOWN) {
        /* Killed before it could answer. */
        bl_msg_free(m);
        bl_registry_release(r);
        return -ESRCH;
    }
    ack a;
    memcpy(&a, m->data, sizeof a);
    bl_msg_free(m);
    if (a.status == 0) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        *out = r;
        return 0;
    }
    /* The top process exits normally: return once it has, leaving no EXIT behind. */
    bl_recv(&m, match_answer, &w, BL_INFINITY, BL_RECV_MARKED);
    bl_msg_free(m);
    if (link) {
        bl_unlink(top);
        while (bl_recv(&m, match_exit_from, &top, 0, 0) == 0) bl_msg_free(m);
    }
    bl_registry_release(r);
    return a.status;
}

int bl_registry_start_link(const bl_registry_opts *opts, bl_registry **reg)
{
    return start(opts, reg, true);
}

int bl_registry_start(const bl_registry_opts *opts, bl_registry **reg)
{
    return start(opts, reg, false);
}

int bl_registry_start_fn(void *arg, bl_pid *pid)
{
    bl_registry_opts *o = arg;
    if (!o || !pid) return -EINVAL;
    bl_registry *r;
    int rc = start(o, &r, true);
    if (rc) return rc;
    *pid = r->top;
    if (o->handle) {
        bl_registry_release(*o->handle);
        *o->handle = r;
    } else {
        bl_registry_release(r);
    }
    return 0;
}

int bl_registry_stop(bl_registry *r, const bl_reason *reason, int64_t timeout_ms)
{
    if (!r || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    bl_reason normal = BL_REASON(BL_NORMAL);
    if (!reason) reason = &normal;
    if ((unsigned)reason->kind > BL_CUSTOM || reason->kind == BL_KILL ||
        (reason->detail_len && !reason->detail))
        return -EINVAL;
    if (!bl_self()) return -EPERM;
    /* No alive check: a registry already stopping is waited for.  A top
     * process that is gone answers DOWN noproc. */
    if (!r->top) return -ESRCH;
    bl_recv_mark();
    waitref w = {0, BL_TAG_DOWN};
    int rc = bl_monitor(r->top, &w.ref);
    if (rc) return rc;
    size_t len = sizeof(wire_reason) + reason->detail_len;
    wire_reason *q = malloc(len);
    if (!q) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return -ENOMEM;
    }
    *q = (wire_reason){reason->kind, reason->code, reason->detail_len};
    if (reason->detail_len) memcpy(q + 1, reason->detail, reason->detail_len);
    rc = bl__send_ex(r->top, TAG_STOP, BL_REF_NONE, q, len, 0);
    free(q);
    if (rc) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return rc;
    }
    bl_msg *m = NULL;
    rc = bl_recv(&m, match_answer, &w, timeout_ms, BL_RECV_MARKED);
    if (rc) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return rc;
    }
    bl_reason got;
    rc = bl_msg_reason(m, &got) == 0 && got.kind == BL_NOPROC ? -ESRCH : 0;
    bl_msg_free(m);
    return rc;
}

bl_registry *bl_registry_whereis(const char *name)
{
    if (!name) return NULL;
    bl_pid pid = bl_whereis(name);
    if (!pid) return NULL;
    pthread_mutex_lock(&list_lock);
    bl_registry *r = list_head;
    while (r && !(r->top == pid && reg_alive(r))) r = r->lnext;
    /* Listed means the top process's reference is still held: r is valid. */
    bl_registry_retain(r);
    pthread_mutex_unlock(&list_lock);
    return r;
}

bl_pid bl_registry_pid(const bl_registry *r)
{
    return r ? r->top : BL_PID_NONE;
}

unsigned bl_registry_partitions(const bl_registry *r)
{
    return r ? r->nparts : 0;
}

/* ---- registering ---- */

int bl_registry_register(bl_registry *r, const void *key, size_t klen, const void *value,
                         size_t vlen, bl_pid *holder)
{
    if (holder) *holder = BL_PID_NONE;
    int rc = check_key(r, key, klen);
    if (rc) return rc;
    if (vlen && !value) return -EINVAL;
    if (vlen > SIZE_MAX / 2) return -ENOMEM;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!reg_alive(r)) return -ESRCH;
    bool unique = r->kind == BL_REGISTRY_UNIQUE;
    uint64_t h = key_hash(key, klen);
    part *p = unique ? part_of_key(r, h) : part_of_pid(r, self);

    /* Allocate before locking what is certainly needed: the entry (with its
     * key node in a unique registry). */
    keynode *kn_new = NULL;
    entry *e;
    if (unique) {
        if (!(kn_new = keynode_new(key, klen, h, true, vlen))) return -ENOMEM;
        e = embedded_entry(kn_new);
    } else if (!(e = malloc(sizeof *e + vlen))) {
        return -ENOMEM;
    }
    *e = (entry){.pid = self, .vlen = vlen, .embedded = unique};
    if (vlen) memcpy(entry_value(e), value, vlen);

    junk j = {0};
    owner *ow_new = NULL;
    wrlock(p);
    keynode *kn = find_key(p, h, key, klen);
    if (unique && kn) {
        bl_pid old = kn->head->pid;
        if (bl_is_alive(old)) {
            unlock(p);
            free(kn_new);
            if (holder) *holder = old;
            return -EEXIST;
        }
        /* Held by a process that has exited: its cleanup has not come yet. */
        remove_entry(p, kn->head, &j);
        kn = NULL;
    }
    owner *ow = find_owner(p, self);
    /* What else is needed: allocated under the lock, all before anything changes. */
    if (tables_ready(p) != 0 || (!ow && !(ow_new = calloc(1, sizeof *ow_new))) ||
        (!kn && !unique && !(kn_new = keynode_new(key, klen, h, false, 0)))) {
        unlock(p);
        junk_free(&j);
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
        size_t b = mix64(self) & p->omask;
        ow->next = p->ob[b];
        p->ob[b] = ow;
        p->nowners++;
    }
    add_entry(p, e, kn, ow);
    grow_keys(p);
    grow_owners(p);
    unlock(p);
    junk_free(&j);
    if (!ow_new) return 0;
    /* Our first entry here: ask the partition to watch us (after unlocking,
     * since sending may switch to another process). */
    rc = bl__send_ex(p->pid, TAG_MON, BL_REF_NONE, NULL, 0, 0);
    if (rc) {
        wrlock(p);
        remove_entry(p, e, &j);
        unlock(p);
        junk_free(&j);
    }
    return rc;
}

int bl_registry_unregister(bl_registry *r, const void *key, size_t klen)
{
    int rc = check_key(r, key, klen);
    if (rc) return rc;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (!reg_alive(r)) return -ESRCH;
    uint64_t h = key_hash(key, klen);
    bool unique = r->kind == BL_REGISTRY_UNIQUE;
    part *p = unique ? part_of_key(r, h) : part_of_pid(r, self);
    junk j = {0};
    int n = 0;
    bool last = false;
    wrlock(p);
    owner *ow = find_owner(p, self);
    if (ow && unique) {
        keynode *kn = find_key(p, h, key, klen);
        if (kn && kn->head->pid == self) {
            last = remove_entry(p, kn->head, &j);
            n = 1;
        }
    } else if (ow) {
        /* The owner's list is usually much shorter than a topic's. */
        for (entry *e = ow->head, *next; e && !last; e = next) {
            next = e->onext;
            if (key_eq(e->kn, h, key, klen)) {
                last = remove_entry(p, e, &j);
                n++;
            }
        }
    }
    unlock(p);
    junk_free(&j);
    /* If this is lost (no memory), the partition keeps a harmless monitor until we exit. */
    if (last) bl__send_ex(p->pid, TAG_UNMON, BL_REF_NONE, NULL, 0, 0);
    return n;
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
        rdlock(p);
        owner *ow = pid ? find_owner(p, pid) : NULL;
        keynode *kn = pid ? NULL : find_key(p, h, key, klen);
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
                    snap_put(s, e->pid, entry_value(e), e->vlen);
            }
            unlock(p);
            return 0;
        }
        unlock(p);
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
        *first = (unsigned)((h >> 32) % r->nparts); /* as part_of_key */
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
    int rc = check_key(r, key, klen);
    if (rc || !out) return rc ? rc : -EINVAL;
    if (!reg_alive(r)) return -ESRCH;
    snap s;
    snap_init(&s);
    rc = snap_all(r, key_hash(key, klen), key, klen, &s);
    if (!rc) rc = snap_out_entries(&s, out);
    snap_fini(&s);
    return rc;
}

bl_pid bl_registry_lookup_pid(bl_registry *r, const void *key, size_t klen)
{
    if (check_key(r, key, klen) || !reg_alive(r)) return BL_PID_NONE;
    uint64_t h = key_hash(key, klen);
    unsigned first, last;
    key_parts(r, h, &first, &last);
    bl_pid pid = BL_PID_NONE;
    for (unsigned i = first; i < last && !pid; i++) {
        part *p = &r->parts[i];
        rdlock(p);
        keynode *kn = find_key(p, h, key, klen);
        for (entry *e = kn ? kn->head : NULL; e && !pid; e = e->knext)
            if (bl_is_alive(e->pid)) pid = e->pid;
        unlock(p);
    }
    return pid;
}

int bl_registry_dispatch(bl_registry *r, const void *key, size_t klen, bl_registry_dispatch_fn fn,
                         void *arg)
{
    int rc = check_key(r, key, klen);
    if (rc || !fn) return rc ? rc : -EINVAL;
    if (!reg_alive(r)) return -ESRCH;
    uint64_t h = key_hash(key, klen);
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

int bl_registry_match(bl_registry *r, const void *key, size_t klen, bl_registry_match_fn pred,
                      void *arg, bl_registry_entry **out)
{
    if (out) *out = NULL;
    int rc = check_key(r, key, klen);
    if (rc || !pred) return rc ? rc : -EINVAL;
    if (!reg_alive(r)) return -ESRCH;
    snap s;
    snap_init(&s);
    rc = snap_all(r, key_hash(key, klen), key, klen, &s);
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
    if (!reg_alive(r)) return -ESRCH;
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
    if (!reg_alive(r)) return -ESRCH;
    if (!pid) return 0; /* names no process (and means "by key" to snap_part) */
    snap s;
    snap_init(&s);
    int rc = 0;
    if (r->kind == BL_REGISTRY_DUPLICATE) {
        rc = snap_part(part_of_pid(r, pid), 0, NULL, 0, pid, &s);
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

/* ---- sync ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    if (!reg_alive(r)) return -ESRCH;
    /* If the registry stops meanwhile, the top's DOWN ends the wait. */
    int rc = bl_monitor(r->top, &w.mref);
    if (rc) return rc;
    /* Answers that come after we stop waiting are dropped (proc/otp.h). */
    bl__alias_set(w.ref);
    int64_t deadline = timeout_ms == BL_INFINITY ? 0 : now_ms() + timeout_ms;
    unsigned got = 0;
    for (unsigned i = 0; i < r->nparts && !rc; i++)
        rc = bl__send_ex(r->parts[i].pid, TAG_SYNC, w.ref, NULL, 0, 0);
    while (!rc && got < r->nparts) {
        int64_t left = BL_INFINITY;
        if (timeout_ms != BL_INFINITY) {
            left = deadline - now_ms();
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

/* ---- via names ---- */

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
