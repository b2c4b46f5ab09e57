/*
 * core/names.c - the registered-name table: lock-free lookups, striped-lock
 * writers, fixed memory.
 *
 * Layout.  Everything is allocated by bl__names_init and freed only by
 * bl__names_destroy, so no reader can ever touch freed memory:
 *  - entries[capacity]: one per registered name (name bytes as atomic words,
 *    length, hash, pid, chain links) plus `seq`, the entry's generation;
 *  - heads[nb], nb a power of two >= 2 * capacity: the name index, hashing
 *    with separate chaining; each chain is linked through entries.  A link
 *    is a 64-bit word {generation << 32 | index + 1}, 0 ending the chain;
 *  - pid_heads[nb]: the reverse index pid -> entry, chained through
 *    entry.pid_next, used by writers only (under the pid stripe locks);
 *  - a free stack of entries (lock-free, tagged against ABA) and a bump
 *    counter for entries never used yet, so untouched entries stay unmapped.
 *
 * Writers.  A name chain (bucket b) is changed only under name lock
 * b % NSTRIPES, a pid chain only under its pid lock.  Lock order is always
 * name lock, then pid lock; unregister_pid finds the name's stripe under the
 * pid lock, drops it, takes both in order and re-checks (the entry's
 * generation tells whether it is still the same registration).  Under its
 * locks a writer inserts at the head of the chain, or unlinks an entry by
 * pointing its predecessor's link past it.  An unlinked entry's own `next`
 * is never changed again until the entry is reused.
 *
 * Entry generations (per-entry seqlock).  `seq` changes only while an entry
 * is off every chain: reuse makes it odd, writes the fields, makes it even
 * (the new generation g) and only then publishes link {g, index}.  A reader
 * that followed link {g, index} reads seq (must be g), the fields, then seq
 * again (must still be g); otherwise the entry was reused under it and the
 * lookup restarts from the bucket head.  The fields are release-stored after
 * the odd seq and acquire-loaded before the second seq load, so a reader
 * that saw any field of a newer generation also sees seq != g.  (No fences:
 * ThreadSanitizer does not model them.)  Restarts happen only when a writer
 * completed a reuse, so lookups are lock-free and never wait on a writer.
 *
 * Why lookups are linearizable.  Every link store, and every link load a
 * lookup makes, is seq_cst (free for loads on x86-64 and AArch64), so they
 * form one total order S in which each such load returns the latest link
 * store.  (Writers' own loads under a lock are ordered by the lock.)  In S a chain's live entries
 * are ordered newest first (only head insertions; unlinking keeps the order).  Take a lookup that
 * starts at point s of S: (1) Every entry it reaches was on the chain at some point >= s.  The head
 *      is read at a point >= s.  If it reaches Q through P.next read at t:
 *      if P was on the chain at t, so was its successor Q; if P had been
 *      unlinked at u < t, its next is frozen since u, so Q followed P on the
 *      chain at u, and u >= s because P was on the chain at some point >= s.
 *      Hence a hit returns a pid that held the name at a point inside the
 *      lookup: it is linearized there.  A lookup starting after an
 *      unregister returned never reaches the old entry.
 *  (2) An entry E on the chain during the whole lookup is found.  To skip E
 *      the lookup would follow a link P -> Q with P newer and Q older than E;
 *      at the point that link held in the chain (t or u above) E was on the
 *      chain between P and Q, a contradiction.  So a miss has a point in the
 *      lookup where the name was not registered (names are unique per chain:
 *      writers check under the stripe lock), and a lookup starting after a
 *      register returned finds the entry unless it is concurrently removed.
 *  Paths visit each entry at most once (links go from newer to older
 *  generations and seq never goes back), so a lookup ends after at most
 *  `capacity` hops; a generation would have to wrap 2^31 reuses of one entry
 *  while a single lookup is stalled between two loads to fool the check.
 *
 * Capacity.  -ENOSPC means no free entry: exact, except that a register can
 * see the table full while a concurrent unregister has unlinked its entry
 * but not yet returned it to the free stack.
 */
#define _GNU_SOURCE
#include "core/names.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define NSTRIPES     32                          /* locks per index (power of two) */
#define NAME_WORDS   ((BL_NAME_MAX + 1 + 7) / 8) /* 64-bit words holding a name */
#define MAX_CAPACITY ((size_t)1 << 30)           /* keeps nb and index + 1 in 32 bits */

typedef struct entry {
    _Alignas(64) _Atomic uint32_t seq; /* generation, odd while rewritten (a line per entry) */
    _Atomic uint32_t len;              /* name length in bytes */
    _Atomic uint64_t hash;             /* hash of the name */
    _Atomic uint64_t pid;              /* the owner */
    _Atomic uint64_t next;             /* next link of the name chain, 0 = end */
    _Atomic uint32_t free_next;        /* free stack: index + 1 of the next, 0 = end */
    uint32_t pid_next;                 /* pid chain: index + 1 of the next (pid lock) */
    _Atomic uint64_t name[NAME_WORDS]; /* the bytes, zero-padded to a whole word */
} entry;

typedef struct stripe {
    _Alignas(64) pthread_mutex_t lock; /* one line each: stripes do not share lines */
} stripe;

/* A name prepared for comparison against entries a word at a time. */
typedef struct key {
    uint64_t w[NAME_WORDS]; /* the bytes, zero-padded to nw words */
    uint64_t hash;          /* hash of w[0..nw) and len */
    uint32_t len;           /* bytes */
    uint32_t nw;            /* words used */
} key;

static struct names {
    /* Set by init, read by every call, cleared by destroy. */
    entry *entries;          /* capacity entries (mmap, zero-filled) */
    _Atomic uint64_t *heads; /* name index: first link of each chain */
    uint32_t *pid_heads;     /* pid index: index + 1 of the first entry (pid locks) */
    size_t map_entries;      /* bytes mapped for entries */
    size_t map_index;        /* bytes mapped for heads and pid_heads together */
    uint32_t capacity;       /* number of entries */
    uint32_t mask;           /* buckets - 1, both indexes */
    bool ready;              /* between init and destroy */

    /* Written by every writer. */
    _Alignas(64) _Atomic uint64_t free_top; /* free stack: pops << 32 | index + 1 */
    _Alignas(64) _Atomic uint32_t fresh;    /* entries ever handed out by the bump */
    _Alignas(64) _Atomic size_t count;      /* names registered */
    stripe name_locks[NSTRIPES];            /* name chain b: name_locks[b % NSTRIPES] */
    stripe pid_locks[NSTRIPES];             /* pid chain b: pid_locks[b % NSTRIPES] */
} t;

/* ---- helpers ---- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t link_make(uint32_t idx, uint32_t gen)
{
    return ((uint64_t)gen << 32) | ((uint64_t)idx + 1);
}
static inline uint32_t link_idx(uint64_t link)
{
    return (uint32_t)link - 1;
}
static inline uint32_t link_gen(uint64_t link)
{
    return (uint32_t)(link >> 32);
}

/* Validates name and fills k.  0, -EINVAL or -ENAMETOOLONG. */
static int key_make(key *k, const char *name)
{
    if (!name || !name[0]) return -EINVAL;
    size_t n = strnlen(name, BL_NAME_MAX + 1);
    if (n > BL_NAME_MAX) return -ENAMETOOLONG;
    k->len = (uint32_t)n;
    k->nw = (uint32_t)((n + 7) / 8);
    memset(k->w, 0, k->nw * sizeof k->w[0]);
    memcpy(k->w, name, n);
    uint64_t h = n * 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < k->nw; i++) {
        h = (h << 29 | h >> 35) ^ k->w[i];
        h *= 0x9e3779b97f4a7c15ull;
    }
    k->hash = mix64(h);
    return 0;
}

static inline uint32_t pid_bucket(bl_pid pid)
{
    return (uint32_t)mix64(pid) & t.mask;
}

static inline pthread_mutex_t *name_lock(uint32_t bucket)
{
    return &t.name_locks[bucket & (NSTRIPES - 1)].lock;
}
static inline pthread_mutex_t *pid_lock(uint32_t bucket)
{
    return &t.pid_locks[bucket & (NSTRIPES - 1)].lock;
}

static inline void lock(pthread_mutex_t *m)
{
    int rc = pthread_mutex_lock(m);
    assert(rc == 0); /* default mutexes fail only on misuse */
    (void)rc;
}
static inline void unlock(pthread_mutex_t *m)
{
    int rc = pthread_mutex_unlock(m);
    assert(rc == 0); /* default mutexes fail only on misuse */
    (void)rc;
}

/*
 * Whether entry e holds the name k.  Used by lookups (validated by the
 * caller's seq check) and by writers under the name lock (e is live).
 */
static bool entry_matches(entry *e, const key *k)
{
    /* acquire (these loads and the next four): a lookup's later seq load then
     * sees the odd seq of any newer generation whose value was read here. */
    if (atomic_load_explicit(&e->hash, memory_order_acquire) != k->hash) return false;
    if (atomic_load_explicit(&e->len, memory_order_acquire) != k->len) return false;
    for (uint32_t i = 0; i < k->nw; i++) /* acquire: as above. */
        if (atomic_load_explicit(&e->name[i], memory_order_acquire) != k->w[i]) return false;
    return true;
}

/* ---- the free stack ---- */

/* An entry that is on no chain, or NULL when all capacity entries are in use. */
static entry *entry_alloc(void)
{
    /* acquire: pairs with the release CAS in entry_free, so the previous
     * owner's unlinking and its free_next store happen before our use. */
    uint64_t top = atomic_load_explicit(&t.free_top, memory_order_acquire);
    while ((uint32_t)top) {
        entry *e = &t.entries[(uint32_t)top - 1];
        /* relaxed: if the CAS below succeeds, e was on top all along (the
         * pop count in top rules out ABA), so this is the value its push
         * published, made visible by the acquire load of that push. */
        uint32_t next = atomic_load_explicit(&e->free_next, memory_order_relaxed);
        uint64_t want = ((top >> 32) + 1) << 32 | next;
        /* acquire: as the load above, on success and on retry. */
        if (atomic_compare_exchange_weak_explicit(&t.free_top, &top, want, memory_order_acquire,
                                                  memory_order_acquire))
            return e;
    }
    /* relaxed: the bump only hands out distinct indexes of zero-filled entries
     * that nobody has touched, so there is nothing to synchronise with. */
    uint32_t f = atomic_load_explicit(&t.fresh, memory_order_relaxed);
    while (f < t.capacity) {
        /* relaxed: as above. */
        if (atomic_compare_exchange_weak_explicit(&t.fresh, &f, f + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return &t.entries[f];
    }
    return NULL;
}

/* Returns an unlinked entry to the free stack.  Lookups may still read it. */
static void entry_free(entry *e)
{
    uint32_t i1 = (uint32_t)(e - t.entries) + 1;
    /* relaxed: only a guess at the top; the CAS checks it. */
    uint64_t top = atomic_load_explicit(&t.free_top, memory_order_relaxed);
    do {
        /* relaxed: published by the release CAS below. */
        atomic_store_explicit(&e->free_next, (uint32_t)top, memory_order_relaxed);
        /* release: the next owner must see free_next and everything we did to e. */
    } while (!atomic_compare_exchange_weak_explicit(&t.free_top, &top,
                                                    (top & ~(uint64_t)UINT32_MAX) | i1,
                                                    memory_order_release, memory_order_relaxed));
}

/*
 * Rewrites a free entry for (k, pid) with chain successor `next` and returns
 * its new (even) generation.  The caller then publishes link {gen, index}.
 */
static uint32_t entry_fill(entry *e, const key *k, bl_pid pid, uint64_t next)
{
    /* relaxed: only the entry's owner (us, since entry_alloc) writes seq. */
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    /* relaxed: readers learn of the odd value through the release stores
     * below (see the top of the file), not through this store. */
    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    /* release (every field store): a reader that loads one of these values
     * with acquire also sees the odd seq, so its validation fails. */
    atomic_store_explicit(&e->hash, k->hash, memory_order_release);
    atomic_store_explicit(&e->len, k->len, memory_order_release);
    for (uint32_t i = 0; i < NAME_WORDS; i++)
        /* release: as above.  Words past the name are zeroed so that stale
         * bytes never remain (name_of copies whole words). */
        atomic_store_explicit(&e->name[i], i < k->nw ? k->w[i] : 0, memory_order_release);
    /* release: as above. */
    atomic_store_explicit(&e->pid, pid, memory_order_release);
    /* seq_cst: every link store is, so link accesses form one total order. */
    atomic_store_explicit(&e->next, next, memory_order_seq_cst);
    /* release: a reader that acquires the even seq sees the fields. */
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
    return s + 2;
}

/* ---- chains (writers, under the locks) ---- */

/* Under the name lock of its bucket: the entry named k, and in *prevp the link that points to it.
 */
static entry *name_find(_Atomic uint64_t *head, const key *k, _Atomic uint64_t **prevp)
{
    _Atomic uint64_t *prev = head;
    /* relaxed (this load and the one in the loop): the name lock orders us
     * after every store to this chain's links. */
    uint64_t link = atomic_load_explicit(prev, memory_order_relaxed);
    while (link) {
        entry *e = &t.entries[link_idx(link)];
        if (entry_matches(e, k)) {
            *prevp = prev;
            return e;
        }
        prev = &e->next;
        link = atomic_load_explicit(prev, memory_order_relaxed);
    }
    return NULL;
}

/* Under the name lock of e's bucket: the link that points to the live entry e. */
static _Atomic uint64_t *name_prev_of(_Atomic uint64_t *head, const entry *e)
{
    _Atomic uint64_t *prev = head;
    /* relaxed (this load and the one in the loop): as in name_find. */
    uint64_t link = atomic_load_explicit(prev, memory_order_relaxed);
    while (link && &t.entries[link_idx(link)] != e) {
        prev = &t.entries[link_idx(link)].next;
        link = atomic_load_explicit(prev, memory_order_relaxed);
    }
    assert(link); /* e is live, so it is on its bucket's chain */
    return prev;
}

/* Under the pid lock of pid's bucket: the link (index + 1) that points to pid's entry, or NULL. */
static uint32_t *pid_find(bl_pid pid)
{
    uint32_t *prev = &t.pid_heads[pid_bucket(pid)];
    while (*prev) {
        entry *e = &t.entries[*prev - 1];
        /* relaxed: e is live and its pid was written before we took the
         * pid lock (the registering writer held it). */
        if (atomic_load_explicit(&e->pid, memory_order_relaxed) == pid) return prev;
        prev = &e->pid_next;
    }
    return NULL;
}

/*
 * Under both locks: unlinks the live entry e (reached through name link
 * *prev and pid link *pprev) and frees it.
 */
static void remove_locked(entry *e, _Atomic uint64_t *prev, uint32_t *pprev)
{
    /* relaxed: e's next only changes under the name lock we hold. */
    uint64_t next = atomic_load_explicit(&e->next, memory_order_relaxed);
    /* seq_cst: link stores and loads form one total order (see the top);
     * the store is also a release, so readers of it see Q's fields. */
    atomic_store_explicit(prev, next, memory_order_seq_cst);
    *pprev = e->pid_next;
    /* relaxed: a statistic; its exact value matters only when writers are quiet. */
    atomic_fetch_sub_explicit(&t.count, 1, memory_order_relaxed);
    entry_free(e);
}

/* ---- the API ---- */

int bl__names_init(size_t capacity)
{
    if (capacity == 0) return -EINVAL;
    if (t.ready) return -EALREADY;
    if (capacity > MAX_CAPACITY) return -ENOMEM;
    size_t nb = 2;
    while (nb < 2 * capacity) nb <<= 1;

    /* mmap: zero pages on demand, so a large capacity costs address space
     * until names use it.  All-zero bytes are every field's initial state. */
    size_t me = capacity * sizeof(entry);
    size_t mi = nb * (sizeof(uint64_t) + sizeof(uint32_t));
    void *pe = mmap(NULL, me, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pe == MAP_FAILED) return -ENOMEM;
    void *pi = mmap(NULL, mi, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pi == MAP_FAILED) {
        munmap(pe, me);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < NSTRIPES; i++) {
        pthread_mutex_init(&t.name_locks[i].lock, NULL);
        pthread_mutex_init(&t.pid_locks[i].lock, NULL);
    }
    t.entries = pe;
    t.heads = pi;
    t.pid_heads = (uint32_t *)((char *)pi + nb * sizeof(uint64_t));
    t.map_entries = me;
    t.map_index = mi;
    t.capacity = (uint32_t)capacity;
    t.mask = (uint32_t)(nb - 1);
    /* relaxed (these three): no other thread may use the table during init;
     * whatever hands it the table (thread creation, a lock) orders them. */
    atomic_store_explicit(&t.free_top, 0, memory_order_relaxed);
    atomic_store_explicit(&t.fresh, 0, memory_order_relaxed);
    atomic_store_explicit(&t.count, 0, memory_order_relaxed);
    t.ready = true;
    return 0;
}

void bl__names_destroy(void)
{
    if (!t.ready) return;
    for (unsigned i = 0; i < NSTRIPES; i++) {
        pthread_mutex_destroy(&t.name_locks[i].lock);
        pthread_mutex_destroy(&t.pid_locks[i].lock);
    }
    munmap(t.entries, t.map_entries);
    munmap((void *)t.heads, t.map_index);
    t.entries = NULL;
    t.heads = NULL;
    t.pid_heads = NULL;
    t.capacity = 0;
    t.mask = 0;
    t.ready = false;
}

int bl__names_register(const char *name, bl_pid pid)
{
    key k;
    int rc = key_make(&k, name);
    if (rc) return rc;
    if (pid == BL_PID_NONE) return -EINVAL;
    if (!t.ready) return -ESRCH;

    uint32_t b = (uint32_t)k.hash & t.mask;
    uint32_t pb = pid_bucket(pid);
    _Atomic uint64_t *prev;
    lock(name_lock(b));
    lock(pid_lock(pb));
    if (name_find(&t.heads[b], &k, &prev)) {
        rc = -EEXIST;
    } else if (pid_find(pid)) {
        rc = -EBUSY;
    } else {
        entry *e = entry_alloc();
        if (!e) {
            rc = -ENOSPC;
        } else {
            uint32_t i = (uint32_t)(e - t.entries);
            /* relaxed: the name lock orders us after every store to this head. */
            uint64_t first = atomic_load_explicit(&t.heads[b], memory_order_relaxed);
            uint32_t gen = entry_fill(e, &k, pid, first);
            e->pid_next = t.pid_heads[pb];
            t.pid_heads[pb] = i + 1;
            /* seq_cst: link accesses form one total order (see the top); it
             * is also the release that publishes e's fields to lookups. */
            atomic_store_explicit(&t.heads[b], link_make(i, gen), memory_order_seq_cst);
            /* relaxed: a statistic, as in remove_locked. */
            atomic_fetch_add_explicit(&t.count, 1, memory_order_relaxed);
        }
    }
    unlock(pid_lock(pb));
    unlock(name_lock(b));
    return rc;
}

int bl__names_unregister(const char *name, bl_pid *owner)
{
    key k;
    int rc = key_make(&k, name);
    if (rc) return rc;
    if (!t.ready) return -ENOENT;

    uint32_t b = (uint32_t)k.hash & t.mask;
    _Atomic uint64_t *prev;
    lock(name_lock(b));
    entry *e = name_find(&t.heads[b], &k, &prev);
    if (!e) {
        unlock(name_lock(b));
        return -ENOENT;
    }
    /* relaxed: e is live and we hold the lock its writer held. */
    bl_pid pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
    uint32_t pb = pid_bucket(pid);
    lock(pid_lock(pb));
    uint32_t *pprev = pid_find(pid);
    assert(pprev && &t.entries[*pprev - 1] == e); /* both indexes name the same entry */
    remove_locked(e, prev, pprev);
    unlock(pid_lock(pb));
    unlock(name_lock(b));
    if (owner) *owner = pid;
    return 0;
}

int bl__names_unregister_pid(bl_pid pid)
{
    if (pid == BL_PID_NONE || !t.ready) return -ENOENT;
    uint32_t pb = pid_bucket(pid);
    for (;;) {
        /* Find the name's bucket under the pid lock alone... */
        lock(pid_lock(pb));
        uint32_t *pprev = pid_find(pid);
        if (!pprev) {
            unlock(pid_lock(pb));
            return -ENOENT;
        }
        entry *e = &t.entries[*pprev - 1];
        /* relaxed (both): e is live and the pid lock orders us after its fill. */
        uint32_t gen = atomic_load_explicit(&e->seq, memory_order_relaxed);
        uint32_t b = (uint32_t)atomic_load_explicit(&e->hash, memory_order_relaxed) & t.mask;
        unlock(pid_lock(pb));

        /* ...then take both locks in order and check it is still that registration. */
        lock(name_lock(b));
        lock(pid_lock(pb));
        pprev = pid_find(pid);
        /* relaxed: seq changes only under locks we hold while e is live. */
        if (pprev && &t.entries[*pprev - 1] == e &&
            atomic_load_explicit(&e->seq, memory_order_relaxed) == gen) {
            remove_locked(e, name_prev_of(&t.heads[b], e), pprev);
            unlock(pid_lock(pb));
            unlock(name_lock(b));
            return 0;
        }
        unlock(pid_lock(pb));
        unlock(name_lock(b));
    }
}

/* One pass over a chain: 1 found (*pid set), 0 absent, -1 an entry was reused: restart. */
static int lookup(_Atomic uint64_t *head, const key *k, bl_pid *pid)
{
    /* seq_cst: link loads take part in the total order of links (see the
     * top); as an acquire it also makes the linked entry's fields visible. */
    uint64_t link = atomic_load_explicit(head, memory_order_seq_cst);
    for (uint32_t hops = 0; link; hops++) {
        if (hops > t.capacity) return -1; /* impossible (paths are acyclic): never spin blindly */
        assert(link_idx(link) < t.capacity); /* links only ever hold valid indexes */
        entry *e = &t.entries[link_idx(link)];
        uint32_t gen = link_gen(link);
        /* relaxed: only an early exit for an entry already reused; the link's
         * acquire made generation gen's fields visible, and the seq load
         * after the field loads is what validates them. */
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != gen) return -1;
        /* seq_cst: as the head load; acquire also orders it before the
         * validating seq load below. */
        uint64_t next = atomic_load_explicit(&e->next, memory_order_seq_cst);
        bool hit = entry_matches(e, k);
        /* acquire: as in entry_matches. */
        bl_pid p = atomic_load_explicit(&e->pid, memory_order_acquire);
        /* relaxed: the acquire loads above already order it after them;
         * it sees the odd seq of any newer generation they read from. */
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != gen) return -1;
        if (hit) {
            *pid = p;
            return 1;
        }
        link = next;
    }
    return 0;
}

bl_pid bl__names_whereis(const char *name)
{
    key k;
    if (key_make(&k, name) != 0 || !t.ready) return BL_PID_NONE;
    _Atomic uint64_t *head = &t.heads[(uint32_t)k.hash & t.mask];
    bl_pid pid;
    int r;
    while ((r = lookup(head, &k, &pid)) < 0) {
    }
    return r ? pid : BL_PID_NONE;
}

int bl__names_name_of(bl_pid pid, char *buf, size_t len)
{
    if (!buf && len) return -EINVAL;
    if (pid == BL_PID_NONE || !t.ready) return -ENOENT;
    uint32_t pb = pid_bucket(pid);
    int rc = 0;
    lock(pid_lock(pb));
    uint32_t *pprev = pid_find(pid);
    if (!pprev) {
        rc = -ENOENT;
    } else {
        /* e cannot be unregistered or reused while we hold its pid lock. */
        entry *e = &t.entries[*pprev - 1];
        /* relaxed: e is live; its fill happened before the pid lock passed to us. */
        uint32_t n = atomic_load_explicit(&e->len, memory_order_relaxed);
        if ((size_t)n + 1 > len) {
            rc = -ERANGE;
        } else {
            uint64_t w[NAME_WORDS];
            for (uint32_t i = 0; i < (n + 7) / 8; i++) /* relaxed: as above. */
                w[i] = atomic_load_explicit(&e->name[i], memory_order_relaxed);
            memcpy(buf, w, n);
            buf[n] = '\0';
        }
    }
    unlock(pid_lock(pb));
    return rc;
}

size_t bl__names_count(void)
{
    /* relaxed: a snapshot; exact once the writers are quiet (and joined). */
    return t.ready ? atomic_load_explicit(&t.count, memory_order_relaxed) : 0;
}
