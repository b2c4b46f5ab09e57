/*
 * sched/topology.h - where schedulers run and whom they steal from.
 *
 * The only file that talks to hwloc is topology.c.  It turns the machine (or
 * an hwloc synthetic description, for tests) plus a scheduler count and a
 * binding policy into a plan: for each scheduler, the PU to pin to, its NUMA
 * node, and the order in which it visits the other schedulers when stealing.
 * If hwloc fails, the plan falls back to "no pinning, one node, index order".
 */
#ifndef BL_SCHED_TOPOLOGY_H
#define BL_SCHED_TOPOLOGY_H

#include <stdbool.h>
#include "beamline.h"

typedef struct bl_topo_sched {
    int pu;            /* OS index of the PU to pin to; -1 = do not pin */
    int core;          /* logical index of its core; -1 if unknown */
    int l3;            /* logical index of its L3 cache; -1 if none/unknown */
    int numa;          /* OS index of its NUMA node; -1 if unknown */
    int package;       /* logical index of its package; -1 if unknown */
    unsigned *victims; /* the other schedulers, in steal order */
    unsigned nvictims; /* = nsched - 1 */
} bl_topo_sched;

typedef struct bl_topology {
    unsigned nsched;      /* schedulers planned */
    bl_topo_sched *sched; /* nsched entries */
    unsigned npus;        /* PUs in the machine (or synthetic topology) */
    unsigned ncores;      /* physical cores */
    unsigned nnuma;       /* NUMA nodes (1 when none is reported) */
    unsigned npackages;   /* packages */
    bool fallback;        /* hwloc failed: nothing is pinned */
    bool synthetic;       /* built from a synthetic description: binding disabled */
    void *hwloc;          /* hwloc_topology_t, kept for binding; NULL in fallback */
    bl_bind policy;       /* the policy the plan was built with, for bl__topo_describe */
} bl_topology;

/*
 * Builds the plan.  synthetic: an hwloc synthetic description such as
 * "pack:2 numa:2 core:4 pu:2", or NULL for the real machine.  nsched: 0 means
 * one per physical core.  Returns 0 or -EINVAL (bad synthetic string, bad
 * policy), -ENOMEM.  On any hwloc failure with synthetic == NULL it returns 0
 * with t->fallback set (and nsched defaulting to the online CPU count).
 */
int bl__topo_build(bl_topology *t, const char *synthetic, unsigned nsched, bl_bind policy);

/*
 * Pins the calling thread to scheduler i's PU.  Returns 0, or -ENOTSUP
 * (fallback or synthetic plan, or pu == -1: nothing to do), or the negative
 * errno from the binding call.
 */
int bl__topo_bind_thread(const bl_topology *t, unsigned i);

/* Frees everything bl__topo_build allocated.  Safe on a zeroed struct. */
void bl__topo_free(bl_topology *t);

/*
 * A one-line human description, e.g. "2 schedulers on 2 cores / 2 PUs /
 * 1 NUMA node / 1 package, policy cores".  Truncated to fit len.
 */
void bl__topo_describe(const bl_topology *t, char *buf, size_t len);

#endif /* BL_SCHED_TOPOLOGY_H */
