/*
 * beamline/registry.h - a local, partitioned key-value process store
 * (Elixir's Registry).
 *
 * A registry maps keys (byte strings) to entries {pid, value}.  A process
 * registers *itself* under a key with a value (bytes, copied); its entries
 * disappear when it exits, for whatever reason (kill included).  A unique
 * registry holds at most one entry per key; a duplicate one any number, also
 * several from the same process (a local pubsub: register under a topic,
 * dispatch to it).  A unique registry also names processes: bl_registry_via
 * and bl_registry_name make {:via, Registry, {reg, key}} names for
 * gen_servers.
 *
 * Structure.  A registry is a top process (Elixir's registry supervisor)
 * linked to its starter, with `partitions` partition processes linked to it.
 * Each partition owns one hash table, guarded by a reader-writer lock, and
 * monitors the processes that registered in it: on their DOWN it removes
 * their entries.  Unique registries choose the partition by key hash,
 * duplicate ones by the registering pid, as Elixir does (a duplicate lookup
 * therefore visits every partition).  Register and unregister write the
 * table directly from the caller; lookups read it from the caller, taking
 * only the read lock of the partition(s) concerned, never a global lock.
 * Critical sections never block on a process and never call user code:
 * entries are copied out first, then dispatch and match callbacks run.
 * (Allocating memory for a new key or owner happens under the write lock,
 * and so does growing a table, which takes time proportional to its size.)
 *
 * Handles.  A bl_registry * is reference-counted: start gives the caller one
 * reference, bl_registry_whereis another; give each back with
 * bl_registry_release.  The memory stays valid until the last reference is
 * released and every registry process has exited, so a handle never
 * dangles; calls on a registry whose processes have stopped return -ESRCH.
 * Processes that receive a handle from another should take their own
 * reference (bl_registry_retain) if they may outlive the giver's.
 *
 * Errors: -EINVAL for NULL or malformed arguments, -ENAMETOOLONG for a key
 * longer than BL_REGISTRY_KEY_MAX, -ENOMEM, -EPERM for a call that needs a
 * calling process (register, unregister, start, stop, sync) made outside
 * one, -ESRCH when the registry has stopped.
 *
 * Differences from Elixir, forced by C or chosen for it:
 *  - Keys and values are byte strings compared bytewise (Elixir: any term,
 *    compared with ===).
 *  - match takes a predicate on {pid, value} instead of a match
 *    specification and guards (C has no patterns); it runs in the caller on
 *    a copy of the key's entries, outside any lock.  The same predicate
 *    style replaces count_match (match with out == NULL).
 *  - lookup, match and keys return a copy: one heap block freed with
 *    bl_registry_free.  dispatch calls its callback once per partition that
 *    has entries for the key (as Elixir does, serially), on a copy.
 *  - A duplicate registry's lookup returns the entries of each partition in
 *    registration order, partitions one after the other (Elixir's order is
 *    unspecified too).
 *  - The cleanup after an owner exits is asynchronous (as in Elixir): its
 *    partition removes the entries when it handles the DOWN.  Until then
 *    lookup, lookup_pid, dispatch and match already skip entries whose
 *    owner is not alive, and a unique register treats a key held by a dead
 *    process as free (as Elixir does); count and keys still see them.
 *    bl_registry_sync waits for the cleanup.
 *  - A partition that dies stops the whole registry (Elixir's registry
 *    supervisor has max_restarts 0); the top process then exits with
 *    reason shutdown.
 *  - Via names register the value as empty (no {reg, key, value} form), and
 *    work with unique registries only (Elixir raises for duplicate ones;
 *    here register_name returns -EINVAL and whereis_name BL_PID_NONE).
 *  - Not provided: select, unregister_match, update_value, values, meta,
 *    listeners, parallel dispatch.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_REGISTRY_H
#define BEAMLINE_REGISTRY_H

#ifdef __cplusplus
extern "C" {
#endif

/* A registry handle (reference-counted; see the top of this file). */
typedef struct bl_registry bl_registry;

/* What a key may hold. */
typedef enum bl_registry_kind {
    BL_REGISTRY_UNIQUE = 0,    /* at most one entry per key */
    BL_REGISTRY_DUPLICATE = 1, /* any number of entries per key */
} bl_registry_kind;

/* Longest key, in bytes.  Keys may be empty. */
#define BL_REGISTRY_KEY_MAX 1024

/* bl_registry_opts.partitions: one per scheduler (bl_schedulers(), at most the maximum). */
#define BL_REGISTRY_SCHEDULERS 0xFFFFFFFFu
/* Most partitions a registry may have. */
#define BL_REGISTRY_PARTITIONS_MAX 1024

/* Start options; a zeroed struct means a unique, one-partition, unnamed registry. */
typedef struct bl_registry_opts {
    bl_registry_kind keys; /* unique or duplicate */
    unsigned partitions;   /* 0 or 1: one; BL_REGISTRY_SCHEDULERS: one per scheduler */
    /*
     * A local name (bl_register) for the top process, by which
     * bl_registry_whereis finds the registry; NULL for none.  Copied.
     */
    const char *name;
    /*
     * bl_registry_start_fn only: if not NULL, receives a reference to the
     * registry each start creates.  *handle must start as NULL; a restart
     * releases the reference stored before and stores the new one, so any
     * other process keeping the old pointer must hold its own reference.
     */
    bl_registry **handle;
} bl_registry_opts;

/*
 * Process only.  Starts a registry linked to the caller, which becomes its
 * parent.  The registry stops, its top process exiting with the same
 * reason, when the parent exits (any reason, as a gen_server follows its
 * parent) or when any process sends the top process an exit signal other
 * than normal (a supervisor's shutdown; kill too, without delay).  opts may be NULL (defaults).  On
 * success stores a handle with one reference in *reg and returns 0.  Errors: -EEXIST (opts->name is
 * taken; *reg is untouched), -EINVAL (reg NULL, bad keys, more than
 * BL_REGISTRY_PARTITIONS_MAX partitions, a bad name), -ENAMETOOLONG (name),
 * -ENOMEM, -EPERM (not in a process), -ESRCH (runtime not running).
 */
int bl_registry_start_link(const bl_registry_opts *opts, bl_registry **reg);

/* As bl_registry_start_link, without the link (no parent). */
int bl_registry_start(const bl_registry_opts *opts, bl_registry **reg);

/*
 * A bl_start_fn for supervisor child specs: arg points at a
 * bl_registry_opts (which must outlive the child).  Starts the registry
 * linked to the caller and stores its top process in *pid; the handle goes
 * to *opts->handle when set (see bl_registry_opts.handle), else the
 * registry is reached by name.  Returns 0 or the errors of start_link
 * (-EINVAL for a NULL arg or pid).
 */
int bl_registry_start_fn(void *arg, bl_pid *pid);

/*
 * Process only.  Stops the registry (Supervisor.stop): its partitions exit,
 * then the top process exits with reason (NULL = normal; a linked parent
 * that does not trap exits follows any other reason).  Waits up to
 * timeout_ms (BL_INFINITY = forever) for the top process to be gone.
 * Returns 0, -ESRCH (already stopped), -ETIMEDOUT, -EINVAL, -EPERM.  The
 * handle stays valid until released.
 */
int bl_registry_stop(bl_registry *reg, const bl_reason *reason, int64_t timeout_ms);

/*
 * The running registry whose top process is registered as name, with a new
 * reference (release it), or NULL (no such name, not a registry, stopping).
 * Works from any thread.
 */
bl_registry *bl_registry_whereis(const char *name);

/* Takes one more reference.  NULL is ignored. */
void bl_registry_retain(bl_registry *reg);

/*
 * Gives back one reference.  The last one frees the registry once its
 * processes have exited too.  NULL is ignored.  Any thread.
 */
void bl_registry_release(bl_registry *reg);

/* The top process (what a supervisor sees), or BL_PID_NONE for NULL. */
bl_pid bl_registry_pid(const bl_registry *reg);

/* Number of partitions (0 for NULL). */
unsigned bl_registry_partitions(const bl_registry *reg);

/* ------------------------------------------------------------------------ */
/* Registering                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Process only.  Registers the calling process under key[0..key_len) with
 * value[0..value_len) (both copied; value may be NULL when value_len is
 * 0).  Returns 0, or
 *   -EEXIST        unique registry: the key is held by a live process,
 *                  whose pid goes to *holder (may be NULL), the caller
 *                  included (Elixir's {:error, {:already_registered, pid}});
 *   -EINVAL (reg NULL, key NULL with key_len > 0, value NULL with
 *   value_len > 0), -ENAMETOOLONG, -ENOMEM, -EPERM, -ESRCH.
 * A duplicate registry accepts the same key any number of times, also from
 * the same process.
 */
int bl_registry_register(bl_registry *reg, const void *key, size_t key_len, const void *value,
                         size_t value_len, bl_pid *holder);

/*
 * Process only.  Removes every entry of the calling process under key.
 * Returns how many were removed (0 when none: not an error, as in Elixir),
 * or -EINVAL, -ENAMETOOLONG, -EPERM, -ESRCH.
 */
int bl_registry_unregister(bl_registry *reg, const void *key, size_t key_len);

/* ------------------------------------------------------------------------ */
/* Looking up (any thread)                                                  */
/* ------------------------------------------------------------------------ */

/* One entry of a copy returned by lookup, match or dispatch. */
typedef struct bl_registry_entry {
    bl_pid pid;        /* the process that registered it */
    const void *value; /* its value (inside the copy); NULL when empty */
    size_t value_len;  /* value bytes */
} bl_registry_entry;

/* One key of a copy returned by bl_registry_keys. */
typedef struct bl_registry_key {
    const void *key; /* the key bytes (inside the copy); NULL when empty */
    size_t len;      /* key bytes */
} bl_registry_key;

/*
 * The entries under key: stores a copy in *out (free it with
 * bl_registry_free; NULL when there are none) and returns how many.  Errors:
 * -EINVAL (reg or out NULL, key NULL with key_len > 0), -ENAMETOOLONG,
 * -ENOMEM, -ESRCH.
 */
int bl_registry_lookup(bl_registry *reg, const void *key, size_t key_len, bl_registry_entry **out);

/*
 * The pid of the (first) entry under key, without copying anything: a
 * unique registry's whereis.  BL_PID_NONE when there is none, on any error,
 * and when the registry has stopped.
 */
bl_pid bl_registry_lookup_pid(bl_registry *reg, const void *key, size_t key_len);

/* A dispatch callback: n >= 1 entries of one partition, valid during the call. */
typedef void (*bl_registry_dispatch_fn)(const bl_registry_entry *entries, size_t n, void *arg);

/*
 * Calls fn(entries, n, arg) in the caller for the entries under key, once
 * per partition that has any (a unique registry: at most once), on a copy
 * taken under that partition's read lock and released before fn runs.  fn
 * may call any registry function.  Returns the number of entries
 * dispatched (0: fn was not called), or -EINVAL (fn NULL, ...),
 * -ENAMETOOLONG, -ENOMEM, -ESRCH.
 */
int bl_registry_dispatch(bl_registry *reg, const void *key, size_t key_len,
                         bl_registry_dispatch_fn fn, void *arg);

/* A match predicate: true to keep the entry.  Runs in the caller, outside any lock. */
typedef bool (*bl_registry_match_fn)(bl_pid pid, const void *value, size_t value_len, void *arg);

/*
 * The entries under key for which pred(pid, value, value_len, arg) is true
 * (Elixir's match/4, with a predicate standing in for the match
 * specification and guards; see the top of this file).  With out not NULL
 * stores a copy of them (bl_registry_free; NULL when none); with out NULL
 * only counts them (count_match).  Returns how many matched, or the errors
 * of lookup (-EINVAL for a NULL pred).
 */
int bl_registry_match(bl_registry *reg, const void *key, size_t key_len, bl_registry_match_fn pred,
                      void *arg, bl_registry_entry **out);

/*
 * The number of entries in the registry (all keys, all partitions): a sum
 * of per-partition counters, exact when no register or cleanup runs
 * concurrently.  -EINVAL, -ESRCH.
 */
int64_t bl_registry_count(bl_registry *reg);

/*
 * The keys pid has registered (Registry.keys/2), one per entry: a key
 * registered twice in a duplicate registry appears twice.  Stores a copy in
 * *out (bl_registry_free; NULL when none) and returns how many.  A unique
 * registry looks in every partition, a duplicate one in pid's only.
 * -EINVAL (reg or out NULL), -ENOMEM, -ESRCH.
 */
int bl_registry_keys(bl_registry *reg, bl_pid pid, bl_registry_key **out);

/* Frees a copy returned by lookup, match or keys.  NULL is ignored. */
void bl_registry_free(void *copy);

/*
 * Process only.  Waits until every partition has handled everything sent
 * to it before the call, and has removed the entries of every process that
 * had exited before the call began (each partition checks the processes it
 * monitors, so this costs time proportional to them: a call for tests and
 * orderly shutdowns, not for hot paths).  Returns 0, -ETIMEDOUT (a
 * partition did not answer within timeout_ms), -ESRCH, -EINVAL, -EPERM,
 * -ENOMEM.
 */
int bl_registry_sync(bl_registry *reg, int64_t timeout_ms);

/* ------------------------------------------------------------------------ */
/* Naming gen_servers ({:via, Registry, {reg, key}})                        */
/* ------------------------------------------------------------------------ */

/*
 * The via module of registries: via_arg is a bl_registry * of a unique
 * registry, which the caller must keep a reference to while the name is in
 * use.  register_name registers the caller under the key with an empty
 * value (0 or -EEXIST, or the errors of bl_registry_register; -EINVAL for a
 * duplicate registry); unregister_name removes the caller's entry (0 or
 * -ENOENT); whereis_name looks the key up (BL_PID_NONE when absent).
 */
extern const bl_via_ops bl_registry_via;

/*
 * A gen_server name for key in reg: {.via = &bl_registry_via, .via_arg =
 * reg, .key = key, .key_len = key_len}.  key is not copied here (the
 * gen_server copies it at start).
 */
bl_name bl_registry_name(bl_registry *reg, const void *key, size_t key_len);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_REGISTRY_H */
