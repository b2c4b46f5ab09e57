/*
 * otp/registry/registry_int.h - what the pieces of Elixir's Registry share
 * (internal to otp/registry/): the control tags, the tables and their
 * locking, and the read path every call takes.
 *
 * A registry is a top process (top.c) and N partition processes
 * (partition.c); register.c and update.c write the tables, lookup.c copies
 * out of them (dispatch.c in parallel), table.c keeps them, listen.c tells
 * the listeners, lock.c keeps the lock keys (a partition's private table),
 * via.c makes a registry a name module.
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
 * Who writes.  The owner itself inserts, changes (update_value) and removes
 * its entries, under the write lock, from its own process; readers copy
 * entries out under the read lock.  Only three other writers exist: a
 * unique register that finds the key held by a dead process removes that
 * entry (as Elixir does); a partition removes the entries of a dead owner;
 * and freeing the registry.  None of them touches a live owner's entries,
 * so an owner may copy its entries, drop the lock, run a callback and
 * write again without anything else having changed them.
 * No lock is held across anything that can switch processes, so a lock
 * holder always runs to the end of its section.
 *
 * The hash, the bucket walks and the locks are static inline here: register,
 * lookup and dispatch run them on every call (bench: registry_register,
 * registry_lookup, registry_dispatch_1000).
 */
#ifndef BL_OTP_REGISTRY_INT_H
#define BL_OTP_REGISTRY_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "beamline.h"
#include "beamline/registry.h"

/* Control messages, reserved tags so that no plain bl_send can forge them. */
#define TAG_MON    (BL_TAG_SYSTEM | 0x40u) /* owner -> partition: monitor me */
#define TAG_UNMON  (BL_TAG_SYSTEM | 0x41u) /* owner -> partition: no entries left here */
#define TAG_SYNC   (BL_TAG_SYSTEM | 0x42u) /* bl_registry_sync -> partition (ref) */
#define TAG_SYNCED (BL_TAG_SYSTEM | 0x43u) /* partition -> caller: the answer (ref) */
#define TAG_STOP   (BL_TAG_SYSTEM | 0x44u) /* bl_registry_stop -> top: a reason */
#define TAG_ACK    (BL_TAG_SYSTEM | 0x45u) /* top -> starter: start status (ref) */
/* 0x46, 0x47: the listener events (BL_TAG_REGISTRY_REGISTER / _UNREGISTER). */
#define TAG_LOCK   (BL_TAG_SYSTEM | 0x48u) /* bl_registry_lock -> partition: key (ref) */
#define TAG_LOCKED (BL_TAG_SYSTEM | 0x49u) /* partition -> locker: int32 status (ref) */
#define TAG_UNLOCK (BL_TAG_SYSTEM | 0x4Au) /* locker -> partition: key (ref), release/withdraw */

/* Buckets of a table (and slots of a monitor map) when it gets its first key or owner. */
#define MIN_BUCKETS 16

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
    uint32_t vspare;     /* allocated value bytes beyond vlen (update_value shrank it) */
} entry;

/* A key and its entries. */
struct keynode {
    keynode *next;       /* bucket chain (also: junk list) */
    entry *head;         /* first entry (oldest) */
    entry *tail;         /* last entry */
    uint64_t hash;       /* bl__reg_key_hash of the key */
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

/* A partition's lock table (lock.c): held keys, each with its holder and waiters. */
typedef struct lockrec lockrec;
typedef struct locktab {
    lockrec **b; /* buckets by key hash, NULL until the first lock */
    size_t mask; /* buckets - 1 */
    size_t n;    /* keys held */
} locktab;

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
    locktab locks;
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
    char **listeners;           /* listener names (copies), nlisteners of them */
    size_t nlisteners;          /* 0: no events are built */
    struct bl_registry *lnext;  /* list of registries (list_lock) */
    struct bl_registry **lprev; /* link pointing at us, NULL when not listed */
    /* Private to the top process. */
    bool stopping;    /* stop begun */
    unsigned pending; /* partitions whose EXIT has not come yet */
    bool *exited;     /* per partition: its EXIT has come */
    bl_reason why;    /* stop reason; detail is a heap copy */
};

/* What a writer unlinked under the lock, freed after unlocking (bl__reg_junk_free). */
typedef struct junk {
    entry *entries; /* chained through knext */
    keynode *keys;  /* chained through next (an embedded entry goes with its node) */
    owner *owners;  /* chained through next */
} junk;

/* ---- the read path (any process, any thread) ---- */

static inline uint64_t bl__reg_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t bl__reg_key_hash(const void *key, size_t len)
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
    return bl__reg_mix64(h);
}

static inline unsigned char *bl__reg_entry_value(entry *e)
{
    return (unsigned char *)(e + 1);
}

static inline bool bl__reg_key_eq(const keynode *kn, uint64_t h, const void *key, size_t klen)
{
    return kn->hash == h && kn->klen == klen && (!klen || memcmp(kn->key, key, klen) == 0);
}

static inline bool bl__reg_alive(const bl_registry *r)
{
    /* acquire: pairs with the release store in top_init, so a caller that
     * sees 1 also sees the partitions' pids. */
    return atomic_load_explicit(&r->alive, memory_order_acquire) != 0;
}

static inline void bl__reg_wrlock(part *p)
{
    pthread_rwlock_wrlock(&p->lock);
}
static inline void bl__reg_rdlock(part *p)
{
    pthread_rwlock_rdlock(&p->lock);
}
static inline void bl__reg_unlock(part *p)
{
    pthread_rwlock_unlock(&p->lock);
}

static inline part *bl__reg_part_of_key(bl_registry *r, uint64_t h)
{
    return &r->parts[(h >> 32) % r->nparts];
}
static inline part *bl__reg_part_of_pid(bl_registry *r, bl_pid pid)
{
    return &r->parts[bl__reg_mix64(pid) % r->nparts];
}

/* Validates the common arguments of the key calls. */
static inline int bl__reg_check_key(const bl_registry *r, const void *key, size_t klen)
{
    if (!r || (klen && !key)) return -EINVAL;
    if (klen > BL_REGISTRY_KEY_MAX) return -ENAMETOOLONG;
    return 0;
}

static inline keynode *bl__reg_find_key(part *p, uint64_t h, const void *key, size_t klen)
{
    if (!p->kb) return NULL;
    for (keynode *kn = p->kb[h & p->kmask]; kn; kn = kn->next)
        if (bl__reg_key_eq(kn, h, key, klen)) return kn;
    return NULL;
}

static inline owner *bl__reg_find_owner(part *p, bl_pid pid)
{
    if (!p->ob) return NULL;
    for (owner *ow = p->ob[bl__reg_mix64(pid) & p->omask]; ow; ow = ow->next)
        if (ow->pid == pid) return ow;
    return NULL;
}

/* ---- table.c: writing (under the write lock) and freeing ---- */

/* Makes sure both bucket arrays exist.  0 or -ENOMEM. */
int bl__reg_tables_ready(part *p);
/* Double the key / owner buckets when they are full; failing to grow only makes chains longer. */
void bl__reg_grow_keys(part *p);
void bl__reg_grow_owners(part *p);
/* Appends e (owner pid already set) to kn's and ow's lists. */
void bl__reg_add_entry(part *p, entry *e, keynode *kn, owner *ow);
/* Unlinks entry e everywhere, into j.  Returns true when its owner record went with it. */
bool bl__reg_remove_entry(part *p, entry *e, junk *j);
/* Frees what a writer unlinked, after it has unlocked. */
void bl__reg_junk_free(junk *j);
/* A key node for key, without entries; with embed, an entry for vlen value bytes follows it. */
keynode *bl__reg_keynode_new(const void *key, size_t klen, uint64_t h, bool embed, size_t vlen);
/* The entry allocated inside kn (unique registries). */
entry *bl__reg_embedded_entry(keynode *kn);
/* Frees a partition's tables, entries, monitor map and lock (no process may use it). */
void bl__reg_part_destroy(part *p);
/* Puts fresh (a key node with an embedded entry, its value set) in the place of unique key
 * node old, which goes to j with its entry. */
void bl__reg_replace_keynode(part *p, keynode *old, keynode *fresh, junk *j);

/* ---- lookup.c ---- */

/* Calls fn on a copy of key's live entries in p, if any.  Entries dispatched, or -ENOMEM. */
int bl__reg_dispatch_one(part *p, uint64_t h, const void *key, size_t klen,
                         bl_registry_dispatch_fn fn, void *arg);

/* ---- listen.c ---- */

/* Checks opts' listener names: 0, -EINVAL or -ENAMETOOLONG. */
int bl__reg_listeners_check(const bl_registry_opts *o);
/* Copies opts' (checked) listener names into r.  0 or -ENOMEM. */
int bl__reg_listeners_copy(bl_registry *r, const bl_registry_opts *o);
/* Frees r's copies. */
void bl__reg_listeners_free(bl_registry *r);

/* Sends event tag (key, value) from the calling process to r's listeners.  Cold unless set. */
void bl__reg_notify(bl_registry *r, uint32_t tag, const void *key, size_t klen, const void *value,
                    size_t vlen);

/* ---- lock.c: the partition's side ---- */

/* TAG_LOCK or TAG_UNLOCK m for the partition p. */
void bl__reg_lock_msg(part *p, const bl_msg *m);
/* A DOWN: true if it was a lock holder's (the lock then passes on). */
bool bl__reg_lock_down(part *p, const bl_msg *m);
/* Frees the lock table (no process may use it). */
void bl__reg_locks_free(locktab *t);

/* ---- partition.c ---- */

/* The partition process's handler: its state is the part, its release drops a reference. */
extern const bl_handler bl__reg_part_handler;

#endif /* BL_OTP_REGISTRY_INT_H */
