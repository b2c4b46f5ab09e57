/*
 * beamline/partition_supervisor.h - Elixir's PartitionSupervisor: N copies
 * of one child spec, one per partition, and routing of keys to them.
 *
 * A partition supervisor is a one_for_one supervisor (beamline/supervisor.h)
 * whose children are the partitions 0..N-1, started in order, with ids "0",
 * "1", ... (Elixir's integer ids, in decimal).  Partitions are restarted
 * like any one_for_one child, with the spec's restart rule and the
 * supervisor's intensity.  bl_supervisor_which_children, _count_children,
 * _terminate_child etc. work on it; the wrappers below are for symmetry.
 *
 * Routing (Elixir's {:via, PartitionSupervisor, {name, key}}):
 *  - an integer key goes to partition rem(abs(key), N), computed on the
 *    unsigned magnitude so that INT64_MIN (whose abs does not fit in an
 *    int64_t) routes to 2^63 mod N, as Elixir's bignums do;
 *  - any other key is a byte string and goes to FNV-1a-64(key) mod N.
 *    Elixir uses :erlang.phash2, which hashes terms, not bytes: the same
 *    key may land on another partition than on the BEAM, but the hash is
 *    stable across runs, machines and versions of Beamline.
 *
 * with_arguments (Elixir's :with_arguments): when set, it is called once
 * per partition, in order, in the process calling start, as
 * with_arguments(spec.arg, partition); the pointer it returns is that
 * partition's start argument for all its starts and restarts.  If
 * release_arguments is set, it is called as release_arguments(ptr,
 * partition) for each of them once the supervisor is gone (whatever the
 * reason, a kill included: on a scheduler thread, outside any process, so
 * it may only free memory), or before start returns when start fails.
 * Without with_arguments each partition gets spec.arg (copied per
 * partition when spec.arg_len > 0).
 *
 * Lookups are calls to the partition supervisor (Elixir reads an ETS table
 * without asking the supervisor): they cost a call round trip, and wait
 * while the supervisor is busy restarting a partition.
 *
 * Resizing (Elixir 1.18's resize!/2): bl_partition_supervisor_resize routes
 * keys over a new number of partitions, from 0 up to the number the
 * supervisor was started with.  Partitions above the new number are shut
 * down (terminate_child: their specs stay, listed without a pid); growing
 * starts them again (restart_child), with their with_arguments argument.
 *
 * As in Elixir, the child spec may not be significant (no auto_shutdown).
 *
 * Scaling a dynamic supervisor (the seeds' "partsup_5_slow_children"):
 * make each partition a dynamic supervisor (spec.start =
 * bl_dynamic_supervisor_start_fn, type BL_CHILD_SUPERVISOR), look one up
 * per key with bl_partition_supervisor_whereis_int and call
 * bl_dynamic_supervisor_start_child on it.  Only that partition is busy
 * while its child initialises, so slow children under distinct partitions
 * start concurrently.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_PARTITION_SUPERVISOR_H
#define BEAMLINE_PARTITION_SUPERVISOR_H

#include "beamline/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options.  child.start is required; the rest zeroed means Elixir's defaults. */
typedef struct bl_partsup_opts {
    bl_child_spec child; /* every partition's spec; its id is ignored (may be NULL) */
    int partitions;      /* 0 = bl_schedulers(); at most 1,000,000 */
    /* Each partition's start argument (see the header comment); NULL = child.arg. */
    void *(*with_arguments)(void *arg, int partition);
    /* Frees what with_arguments returned; NULL = nothing to free. */
    void (*release_arguments)(void *arg, int partition);
    int max_restarts;    /* 0 = 3; BL_SUP_NO_RESTARTS = none allowed */
    int max_seconds;     /* 0 = 5 */
    const bl_name *name; /* register under this name; NULL = none */
    bl_sup_error *error; /* if not NULL: why start failed (index = the partition) */
} bl_partsup_opts;

/*
 * Starts a partition supervisor linked to the caller (process only) and its
 * partitions, in order.  Results of bl_supervisor_start_link: 0, -EINVAL
 * (opts NULL, a bad or significant spec, negative or too many partitions,
 * bad intensity),
 * BL_SUP_CHILD_FAILED (a partition failed to start; error->index is it),
 * -EEXIST (name taken: *pid is its holder), -ENOMEM, -EPERM, -ESRCH.
 */
int bl_partition_supervisor_start_link(bl_pid *pid, const bl_partsup_opts *opts);

/*
 * A bl_start_fn: arg is a const bl_partsup_opts *, which must stay valid as
 * long as the spec is in the parent (its error field is ignored).
 */
int bl_partition_supervisor_start_fn(void *arg, bl_pid *pid);

/* The partition an integer key routes to: rem(abs(key), partitions); -EINVAL if partitions <= 0. */
int bl_partition_of_int(int64_t key, int partitions);

/* The partition a byte key routes to: FNV-1a-64 mod partitions; -EINVAL (partitions <= 0, key NULL
 * with len > 0). */
int bl_partition_of_bytes(const void *key, size_t len, int partitions);

/*
 * The number of partitions keys are routed to (> 0, or 0 after a resize to
 * none), -EINVAL if sup is not a partition supervisor, or a call error.
 */
int bl_partition_supervisor_partitions(bl_pid sup);

/*
 * PartitionSupervisor.resize!: routes keys over partitions partitions from
 * now on.  Growing starts the partitions current..partitions-1 again, in
 * order; shrinking first routes to the new number, then shuts partitions
 * partitions..current-1 down, in order.  Returns the previous number
 * (>= 0), or
 *   -EINVAL   partitions < 0 or above the number given at start, or sup is
 *             not a partition supervisor;
 *   BL_SUP_NOT_FOUND, BL_SUP_RUNNING, BL_SUP_RESTARTING, or a partition's
 *             own start error: a partition to grow into could not start
 *             (its spec was deleted, it was started by hand, or its start
 *             failed): the partitions this call started are shut down
 *             again and the number stays (Elixir raises, and keeps the
 *             partitions it started running);
 *   or a call error.
 */
int bl_partition_supervisor_resize(bl_pid sup, int partitions);

/*
 * The child of the partition key routes to (Elixir's GenServer.whereis({:via,
 * PartitionSupervisor, {name, key}})).  Returns 0 (*pid is it),
 * BL_SUP_RESTARTING or BL_SUP_NOT_FOUND (that partition's child is not
 * running, or its spec was deleted, or there are 0 partitions after a
 * resize: *pid is BL_PID_NONE, *partition -1), -EINVAL (sup is not a
 * partition supervisor, pid NULL), or a call error.  The partition number
 * goes to *partition when it is not NULL.
 */
int bl_partition_supervisor_whereis_int(bl_pid sup, int64_t key, bl_pid *pid, int *partition);

/* As _whereis_int for a byte key (FNV-1a-64 routing).  -EINVAL also for key NULL with len > 0. */
int bl_partition_supervisor_whereis(bl_pid sup, const void *key, size_t len, bl_pid *pid,
                                    int *partition);

/* bl_supervisor_which_children: ids are the partitions in decimal, in order. */
int bl_partition_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max);

/* bl_supervisor_count_children. */
int bl_partition_supervisor_count_children(bl_pid sup, bl_sup_counts *out);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_PARTITION_SUPERVISOR_H */
