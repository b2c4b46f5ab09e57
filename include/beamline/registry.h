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
 * gen_servers (bl_registry_name_value: {:via, Registry, {reg, key, value}}).
 * The owner may change its value in place (update_value) or drop entries by
 * value (unregister_match); listeners named at start hear of every register
 * and unregister; bl_registry_lock serializes callers per lock key.
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
 * entries are copied out first, then dispatch, match, update and
 * unregister_match callbacks run.  Each partition process also keeps the
 * lock table of the lock keys that hash to it.
 * (Allocating memory for a new key or owner happens under the write lock,
 * and so does growing a table, which takes time proportional to its size.)
 * As the BEAM charges ETS calls, register, unregister and lookup cost the
 * calling process a reduction each (a loop of them yields now and then),
 * and a partition purges a dead owner's entries a slice at a time.
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
 * calling process (register, unregister, update_value, unregister_match,
 * lock, start, stop, sync, parallel dispatch) made outside one, -ESRCH when
 * the registry has stopped.
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
 *  - Via names work with unique registries only (Elixir raises for
 *    duplicate ones; here register_name returns -EINVAL and whereis_name
 *    BL_PID_NONE).  bl_registry_name registers an empty value (Elixir's
 *    nil); the {reg, key, value} form is bl_registry_name_value, whose key
 *    and value travel encoded in the name's key bytes.
 *  - update_value takes a callback that points at the new bytes instead
 *    of returning a term, and may refuse (a negative result); it returns
 *    -ENOENT for Elixir's :error and -EINVAL for a duplicate registry
 *    (Elixir raises).  unregister_match takes a predicate, as match does.
 *    Both return counts or errors instead of :ok.
 *  - Listeners are local names resolved at each event (a name with no
 *    process is skipped; Elixir's send to a missing name raises).  An
 *    unregister event goes out only when the caller had entries under the
 *    key and has none left (Elixir also sends one when it had none).
 *  - lock takes a timeout (Elixir's waits as long as its call's default,
 *    then exits the caller) and runs fn(arg), returning 0 or an error
 *    rather than fn's result.
 *  - Parallel dispatch runs each partition's callback in a task not linked
 *    to the caller (Elixir links them): a callback that dies makes dispatch
 *    return -ECONNRESET after the others have finished, instead of taking
 *    the caller down.
 *  - Not provided: select, count_select, values, meta, put_meta.
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
    /*
     * Listeners (Elixir's :listeners): local names (bl_register) of
     * processes told of every register and unregister in this registry
     * (see "Listeners" below).  nlisteners names, each copied at start;
     * NULL with 0 for none.  A name is looked up at each event, so the
     * listener may start after the registry and be restarted.
     */
    const char *const *listeners;
    size_t nlisteners;
} bl_registry_opts;

/* Most listeners a registry may have. */
#define BL_REGISTRY_LISTENERS_MAX 64

/*
 * Process only.  Starts a registry linked to the caller, which becomes its
 * parent.  The registry stops, its top process exiting with the same
 * reason, when the parent exits (any reason, as a gen_server follows its
 * parent) or when any process sends the top process an exit signal other
 * than normal (a supervisor's shutdown; kill too, without delay).  opts may be NULL (defaults).  On
 * success stores a handle with one reference in *reg and returns 0.  Errors: -EEXIST (opts->name is
 * taken; *reg is untouched), -EINVAL (reg NULL, bad keys, more than
 * BL_REGISTRY_PARTITIONS_MAX partitions, a bad name, a NULL or empty
 * listener name, listeners NULL with nlisteners > 0, more than
 * BL_REGISTRY_LISTENERS_MAX listeners), -ENAMETOOLONG (a name over 255 bytes),
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
 * processes have exited too.  NULL is ignored.  Any thread.  From a
 * process, a table still holding 4,096 entries or more is freed on the
 * dirty pool (beamline/dirty.h) while the caller waits parked: a million
 * entries take a few hundred ms to free, and the caller's scheduler runs
 * other processes meanwhile.
 */
void bl_registry_release(bl_registry *reg);

/* The top process (what a supervisor sees), or BL_PID_NONE for NULL. */
bl_pid bl_registry_pid(const bl_registry *reg);

/* Number of partitions (0 for NULL). */
unsigned bl_registry_partitions(const bl_registry *reg);

/* One entry of a copy returned by lookup, match, update_value or dispatch. */
typedef struct bl_registry_entry {
    bl_pid pid;        /* the process that registered it */
    const void *value; /* its value (inside the copy); NULL when empty */
    size_t value_len;  /* value bytes */
} bl_registry_entry;

/* A match predicate: true to select the entry.  Runs in the caller, outside any lock. */
typedef bool (*bl_registry_match_fn)(bl_pid pid, const void *value, size_t value_len, void *arg);

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
 * the same process.  Listeners get a register event (see "Listeners").
 */
int bl_registry_register(bl_registry *reg, const void *key, size_t key_len, const void *value,
                         size_t value_len, bl_pid *holder);

/*
 * Process only.  Removes every entry of the calling process under key.
 * Returns how many were removed (0 when none: not an error, as in Elixir),
 * or -EINVAL, -ENAMETOOLONG, -EPERM, -ESRCH.  Listeners get an unregister
 * event when some were.
 */
int bl_registry_unregister(bl_registry *reg, const void *key, size_t key_len);

/*
 * An update: given the caller's current value (old[0..old_len), a copy,
 * NULL when empty), points *value / *value_len at the new value, which
 * must stay valid until bl_registry_update_value returns (it is copied).
 * Returns 0 to apply it, or a negative errno to leave the value as it was
 * (update_value then returns that).  Runs in the caller, outside any lock.
 */
typedef int (*bl_registry_update_fn)(const void *old, size_t old_len, void *arg, const void **value,
                                     size_t *value_len);

/*
 * Process only, unique registries only (Registry.update_value/3).  If the
 * caller holds key, runs fn on its value and stores the value fn gives.
 * With out not NULL, stores in *out a copy (bl_registry_free) of two
 * entries, the new one then the old one (Elixir's {new, old}).  Returns 0,
 * or
 *   -ENOENT  the key is not held by the caller (Elixir's :error);
 *   -EINVAL  reg or fn NULL, key NULL with key_len > 0, a duplicate
 *            registry, fn's value NULL with a length;
 *   fn's negative result (nothing changed), -ENAMETOOLONG, -ENOMEM,
 *   -EPERM, -ESRCH.
 * Listeners are not told (as in Elixir).  Readers see the old or the new
 * value, never a mix.
 */
int bl_registry_update_value(bl_registry *reg, const void *key, size_t key_len,
                             bl_registry_update_fn fn, void *arg, bl_registry_entry **out);

/*
 * Process only (Registry.unregister_match/4).  Removes the caller's entries
 * under key whose value satisfies pred(pid, value, value_len, arg) (the
 * predicate stands for the pattern and guards; see bl_registry_match).
 * pred runs in the caller on copies, outside any lock, and may call the
 * registry; an entry it changed meanwhile is left alone.  Returns how many
 * were removed (0: none matched), or -EINVAL (reg or pred NULL, ...),
 * -ENAMETOOLONG, -ENOMEM, -EPERM, -ESRCH.
 */
int bl_registry_unregister_match(bl_registry *reg, const void *key, size_t key_len,
                                 bl_registry_match_fn pred, void *arg);

/* ------------------------------------------------------------------------ */
/* Listeners                                                                */
/* ------------------------------------------------------------------------ */

/*
 * A process named in opts.listeners gets, from the process that made the
 * change (m->from):
 *   BL_TAG_REGISTRY_REGISTER    after each successful register (Elixir's
 *                               {:register, registry, key, pid, value});
 *   BL_TAG_REGISTRY_UNREGISTER  after an unregister or unregister_match
 *                               that left the caller no entry under the key
 *                               ({:unregister, registry, key, pid}).
 * Both carry a bl_registry_event followed by key_len key bytes, then
 * value_len value bytes (0 for unregister); bl_registry_event_decode reads
 * them.  Nothing is sent when an owner exits: a listener that cares
 * monitors the pid (as in Elixir).  Events from one process arrive in the
 * order it made them.  An event that cannot be sent (no memory, no process
 * under the name) is lost.
 */
#define BL_TAG_REGISTRY_REGISTER   (BL_TAG_SYSTEM | 0x46u)
#define BL_TAG_REGISTRY_UNREGISTER (BL_TAG_SYSTEM | 0x47u)

/* The start of a listener message's data. */
typedef struct bl_registry_event {
    bl_pid registry;    /* the registry's top process (bl_registry_pid) */
    bl_pid pid;         /* the process that registered or unregistered */
    uint64_t key_len;   /* key bytes following this header */
    uint64_t value_len; /* value bytes following the key (0: unregister) */
} bl_registry_event;

/*
 * Decodes listener message m: copies its header to *ev and points *key and
 * *value (each may be NULL) at the bytes inside m (NULL when empty).
 * Returns 0, or -EINVAL when m is not a well-formed listener message.
 */
int bl_registry_event_decode(const bl_msg *m, bl_registry_event *ev, const void **key,
                             const void **value);

/* ------------------------------------------------------------------------ */
/* Looking up (any thread)                                                  */
/* ------------------------------------------------------------------------ */

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

/* bl_registry_dispatch_ex flags */
#define BL_REGISTRY_PARALLEL 1u /* Elixir's parallel: true */

/*
 * As bl_registry_dispatch; with BL_REGISTRY_PARALLEL, process only, a
 * duplicate registry with more than one partition runs fn for each
 * partition that has entries under key in a task of its own (on that
 * partition's scheduler), concurrently, and returns once every one has
 * returned; fn and arg must then be safe to use from several processes at
 * once.  (A unique registry, or a single partition, dispatches in the
 * caller, as Elixir does.)  Returns the number of entries dispatched, or,
 * once every task has ended, -ECONNRESET when fn's process died in some
 * partition, a spawn error (-ENOMEM, ...), or the errors of dispatch; -EINVAL
 * for unknown flags, -EPERM for a parallel dispatch outside a process.
 */
int bl_registry_dispatch_ex(bl_registry *reg, const void *key, size_t key_len,
                            bl_registry_dispatch_fn fn, void *arg, unsigned flags);

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
/* Locks (Registry.lock/3)                                                  */
/* ------------------------------------------------------------------------ */

/* What runs while the lock is held. */
typedef void (*bl_registry_lock_fn)(void *arg);

/*
 * Process only.  Runs fn(arg) in the caller while holding the lock named
 * key in reg: callers of the same key run one at a time, in the order
 * their requests reach the key's partition; different keys do not wait on
 * each other.  Lock keys are their own namespace (registering a key does
 * not lock it).  If the holder exits while fn runs (killed, say), the lock
 * passes to the next caller.  Waits up to timeout_ms (BL_INFINITY:
 * forever) for the lock.  Not reentrant: a caller that locks a key it
 * already holds waits for itself until its timeout.  key[0..key_len) is
 * read again when fn returns (to release it): keep it unchanged meanwhile.
 * Returns 0 once fn has returned, or -ETIMEDOUT (fn did not run; the
 * request is withdrawn),
 * -EINVAL (reg or fn NULL, key NULL with key_len > 0, a bad timeout),
 * -ENAMETOOLONG, -ENOMEM, -EPERM, -ESRCH (the registry stopped).
 */
int bl_registry_lock(bl_registry *reg, const void *key, size_t key_len, int64_t timeout_ms,
                     bl_registry_lock_fn fn, void *arg);

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

/*
 * The via module of {:via, Registry, {reg, key, value}} names: as
 * bl_registry_via, but the name's key bytes hold the key and the value
 * (bl_registry_name_value encodes them) and register_name registers the
 * value.  whereis_name and unregister_name use the key alone.  Malformed
 * key bytes give -EINVAL (whereis_name: BL_PID_NONE).
 */
extern const bl_via_ops bl_registry_via_value;

/* Bytes bl_registry_name_value needs in buf. */
#define BL_REGISTRY_NAME_VALUE_SIZE(key_len, value_len) (8u + (key_len) + (value_len))

/*
 * Makes in *name a gen_server name for key in reg that registers value
 * ({:via, Registry, {reg, key, value}}), encoding key and value into buf
 * (buf_size bytes, at least BL_REGISTRY_NAME_VALUE_SIZE): name->key points
 * at buf, which must stay valid while the name is used (the gen_server
 * copies it at start).  Returns 0, -EINVAL (name, reg or buf NULL, key or
 * value NULL with a length), -ENAMETOOLONG (key), -ENOBUFS (buf too small).
 */
int bl_registry_name_value(bl_name *name, bl_registry *reg, const void *key, size_t key_len,
                           const void *value, size_t value_len, void *buf, size_t buf_size);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_REGISTRY_H */
