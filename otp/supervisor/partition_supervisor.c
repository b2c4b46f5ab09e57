/*
 * otp/supervisor/partition_supervisor.c - Elixir's PartitionSupervisor: a
 * one_for_one supervisor (supervisor.c) whose children are the partitions,
 * with ids "0".."N-1", and key routing.
 *
 * The supervisor answers lookups itself (a route call carrying the key's
 * unsigned value: |key| for integers, the FNV-1a-64 hash for bytes; it
 * takes the remainder by N), so nothing here outlives it.  The with_arguments
 * results are released through the supervisor's release hook, once it is
 * gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beamline.h"
#include "beamline/partition_supervisor.h"

#include "otp/supervisor/supervisor_int.h"

/* Elixir has no limit; this keeps the id strings and the spec array sane. */
#define MAX_PARTITIONS 1000000

/* What with_arguments made, for release_arguments. */
typedef struct part_args {
    void (*release_arguments)(void *arg, int partition);
    int n;       /* partitions */
    void *arg[]; /* with_arguments(spec.arg, i) */
} part_args;

static void release_args(void *ctx)
{
    part_args *a = ctx;
    for (int i = 0; i < a->n; i++) a->release_arguments(a->arg[i], i);
    free(a);
}

static int bad(bl_sup_error *err, bl_sup_error_kind kind, int index)
{
    if (err) *err = (bl_sup_error){.kind = kind, .index = index, .error = -EINVAL};
    return -EINVAL;
}

int bl_partition_supervisor_start_link(bl_pid *pid, const bl_partsup_opts *o)
{
    if (pid) *pid = BL_PID_NONE;
    if (!o) return -EINVAL;
    int n = o->partitions ? o->partitions : (int)bl_schedulers();
    if (o->partitions < 0 || n > MAX_PARTITIONS) return bad(o->error, BL_SUP_ERR_BAD_OPTION, -1);
    if (n <= 0) return -ESRCH; /* bl_schedulers() is 0: the runtime is not running */
    if (bl_child_spec_check(&o->child, false, o->error)) return -EINVAL;
    if (o->child.significant) return bad(o->error, BL_SUP_ERR_BAD_SIGNIFICANT, 0);
    if (!pid) return bad(o->error, BL_SUP_ERR_BAD_OPTION, -1);

    /* The specs and their ids ("0".."N-1", at most 7 digits). */
    enum { ID_LEN = 8 };
    bl_child_spec *specs = malloc((size_t)n * (sizeof *specs + ID_LEN));
    part_args *args = NULL;
    if (specs && o->with_arguments && o->release_arguments) {
        args = malloc(sizeof *args + (size_t)n * sizeof *args->arg);
        if (args) *args = (part_args){.release_arguments = o->release_arguments, .n = n};
    }
    if (!specs || (o->with_arguments && o->release_arguments && !args)) {
        free(specs);
        free(args);
        return -ENOMEM;
    }
    char *ids = (char *)(specs + n);
    for (int i = 0; i < n; i++) {
        specs[i] = o->child;
        specs[i].id = ids + (size_t)i * ID_LEN;
        snprintf(ids + (size_t)i * ID_LEN, ID_LEN, "%d", i);
        if (o->with_arguments) {
            specs[i].arg = o->with_arguments(o->child.arg, i);
            specs[i].arg_len = 0;
            if (args) args->arg[i] = specs[i].arg;
        }
    }
    bl_sup_opts so = {.strategy = BL_ONE_FOR_ONE,
                      .max_restarts = o->max_restarts,
                      .max_seconds = o->max_seconds,
                      .name = o->name,
                      .error = o->error};
    /* Held while the supervisor starts its children: freed if the caller is killed meanwhile. */
    bl_cleanup c;
    bl_cleanup_push(&c, free, specs);
    int rc =
        bl__supervisor_start_ext(pid, specs, (size_t)n, &so, n, args ? release_args : NULL, args);
    bl_cleanup_pop(&c, true); /* frees specs */
    return rc;
}

int bl_partition_supervisor_start_fn(void *arg, bl_pid *pid)
{
    if (!arg) return -EINVAL;
    bl_partsup_opts o = *(const bl_partsup_opts *)arg;
    o.error = NULL;
    return bl_partition_supervisor_start_link(pid, &o);
}

/* |key| as an unsigned number: INT64_MIN's magnitude 2^63 fits. */
static uint64_t magnitude(int64_t key)
{
    return key < 0 ? (uint64_t)0 - (uint64_t)key : (uint64_t)key;
}

/* FNV-1a, 64 bits: stable, simple, good enough spread for routing. */
static uint64_t fnv1a64(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int bl_partition_of_int(int64_t key, int partitions)
{
    if (partitions <= 0) return -EINVAL;
    return (int)(magnitude(key) % (uint64_t)partitions);
}

int bl_partition_of_bytes(const void *key, size_t len, int partitions)
{
    if (partitions <= 0 || (!key && len > 0)) return -EINVAL;
    return (int)(fnv1a64(key, len) % (uint64_t)partitions);
}

int bl_partition_supervisor_partitions(bl_pid sup)
{
    return bl__supervisor_partitions(sup);
}

int bl_partition_supervisor_resize(bl_pid sup, int partitions)
{
    if (partitions < 0) return -EINVAL;
    return bl__supervisor_resize(sup, partitions);
}

int bl_partition_supervisor_whereis_int(bl_pid sup, int64_t key, bl_pid *pid, int *partition)
{
    if (!pid) return -EINVAL;
    *pid = BL_PID_NONE;
    return bl__supervisor_route(sup, magnitude(key), pid, partition);
}

int bl_partition_supervisor_whereis(bl_pid sup, const void *key, size_t len, bl_pid *pid,
                                    int *partition)
{
    if (!pid) return -EINVAL;
    *pid = BL_PID_NONE;
    if (!key && len > 0) return -EINVAL;
    return bl__supervisor_route(sup, fnv1a64(key, len), pid, partition);
}

int bl_partition_supervisor_which_children(bl_pid sup, bl_sup_child *out, size_t max)
{
    return bl_supervisor_which_children(sup, out, max);
}

int bl_partition_supervisor_count_children(bl_pid sup, bl_sup_counts *out)
{
    return bl_supervisor_count_children(sup, out);
}
