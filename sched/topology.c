/*
 * sched/topology.c - the only file that talks to hwloc.
 *
 * Building a plan takes three steps: load a topology (the machine's, or a
 * synthetic one for tests), give every scheduler a PU according to the
 * policy, and sort every scheduler's victims from nearest to farthest.  The
 * hwloc topology is kept afterwards only so that scheduler threads can pin
 * themselves.  Nothing here is on a hot path: it runs once, at start-up.
 *
 * Ownership: bl__topo_build allocates t->sched, each victims array and the
 * hwloc topology; bl__topo_free releases all of them and zeroes *t.
 */
#include "sched/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Marks a scheduler whose NUMA node is unknown (unpinned, or hwloc did not say). */
#define NO_NODE UINT_MAX

/* Latencies above this are clamped so that they fit in the upper bits of a sort key. */
#define MAX_LATENCY 0x7fffffffu

/* An index with its sort key; every key in one array is distinct, so qsort is deterministic. */
typedef struct keyed {
    uint64_t key; /* the sort key: encodes every criterion, ties included */
    unsigned idx; /* what is being sorted: a core, a NUMA node or a scheduler */
} keyed;

/* What the victim sort needs to know about NUMA nodes, computed once per plan. */
typedef struct node_info {
    unsigned n;        /* NUMA nodes hwloc reports; 0 in fallback */
    unsigned *rank;    /* rank[a * n + b]: place of node b among a's remote nodes, nearest 0 */
    unsigned *node_of; /* logical NUMA index of each scheduler, or NO_NODE; NULL = all unknown */
} node_info;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static unsigned count(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(topo, type);
    return n > 0 ? (unsigned)n : 0;
}

static int logical_or_none(hwloc_obj_t obj)
{
    return obj ? (int)obj->logical_index : -1;
}

/*
 * Loads the machine's topology, or a synthetic one.  Returns 0, -ENOMEM, or
 * -EINVAL when hwloc rejects the description or the load fails.
 */
static int load(hwloc_topology_t *out, const char *synthetic)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) < 0) return -ENOMEM;
    int err = 0;
    if (synthetic && hwloc_topology_set_synthetic(topo, synthetic) < 0) err = -EINVAL;
    if (!err && hwloc_topology_load(topo) < 0) err = errno == ENOMEM ? -ENOMEM : -EINVAL;
    /* A topology without PUs gives nothing to place schedulers on. */
    if (!err && count(topo, HWLOC_OBJ_PU) == 0) err = -EINVAL;
    if (err) {
        hwloc_topology_destroy(topo);
        return err;
    }
    *out = topo;
    return 0;
}

/* Allocates nsched zeroed entries, each with room for nsched - 1 victims. */
static int alloc_plan(bl_topology *t, unsigned nsched)
{
    t->sched = calloc(nsched, sizeof *t->sched);
    if (!t->sched) return -ENOMEM;
    t->nsched = nsched;
    for (unsigned i = 0; i < nsched; i++) {
        bl_topo_sched *s = &t->sched[i];
        s->nvictims = nsched - 1;
        /* One scheduler has nobody to steal from: leave victims NULL rather than calloc(0). */
        if (s->nvictims > 0 && !(s->victims = calloc(s->nvictims, sizeof *s->victims)))
            return -ENOMEM;
    }
    return 0;
}

/* Marks every scheduler as unpinned with an unknown place in the machine. */
static void unpin_all(bl_topology *t)
{
    for (unsigned i = 0; i < t->nsched; i++) {
        bl_topo_sched *s = &t->sched[i];
        s->pu = s->core = s->l3 = s->numa = s->package = -1;
    }
}

/* Logical index of the NUMA node local to obj, or nnodes when it has none. */
static unsigned home_node(hwloc_topology_t topo, hwloc_obj_t obj, unsigned nnodes)
{
    /* A nodeset lists the nodes local to obj; the lowest OS index is its main memory. */
    int os = obj->nodeset ? hwloc_bitmap_first(obj->nodeset) : -1;
    hwloc_obj_t node = os < 0 ? NULL : hwloc_get_numanode_obj_by_os_index(topo, (unsigned)os);
    return node ? node->logical_index : nnodes;
}

/*
 * Returns the cores (or the PUs, on a machine that reports no cores) sorted
 * in the order the policy fills them, with idx = logical index; NULL on
 * ENOMEM.  Cores are bucketed by home NUMA node (nodeless ones last).
 * BL_BIND_CORES takes bucket by bucket; BL_BIND_SPREAD takes the r-th core
 * of every bucket before any bucket's (r+1)-th.
 */
static keyed *order_units(hwloc_topology_t topo, bl_bind policy, hwloc_obj_type_t type,
                          unsigned nunits)
{
    unsigned nnodes = count(topo, HWLOC_OBJ_NUMANODE);
    keyed *units = calloc(nunits, sizeof *units);
    unsigned *seen = calloc(nnodes + 1, sizeof *seen); /* units met so far, per bucket */
    if (!units || !seen) {
        free(units);
        free(seen);
        return NULL;
    }
    for (unsigned u = 0; u < nunits; u++) {
        unsigned node = home_node(topo, hwloc_get_obj_by_type(topo, type, u), nnodes);
        uint64_t rank = seen[node]++;
        units[u].idx = u;
        units[u].key =
            policy == BL_BIND_SPREAD ? rank * (nnodes + 1) + node : (uint64_t)node * nunits + rank;
    }
    qsort(units, nunits, sizeof *units, cmp_keyed);
    free(seen);
    return units;
}

/*
 * Lists PUs in placement order: the first PU of every unit, then the second
 * PU (SMT sibling) of every unit that has one, and so on.  Returns how many
 * slots were filled (at most cap).
 */
static unsigned fill_slots(hwloc_topology_t topo, hwloc_obj_type_t type, const keyed *units,
                           unsigned nunits, hwloc_obj_t *slots, unsigned cap)
{
    unsigned n = 0;
    for (unsigned k = 0; n < cap; k++) {
        unsigned before = n;
        for (unsigned u = 0; u < nunits && n < cap; u++) {
            hwloc_obj_t unit = hwloc_get_obj_by_type(topo, type, units[u].idx);
            hwloc_obj_t pu =
                hwloc_get_obj_inside_cpuset_by_type(topo, unit->cpuset, HWLOC_OBJ_PU, k);
            if (pu) slots[n++] = pu;
        }
        /* A pass that finds no k-th PU in any unit means every PU is listed. */
        if (n == before) break;
    }
    return n;
}

/* Records pu, and the core, L3, NUMA node and package above it, for one scheduler. */
static void pin_to(bl_topo_sched *s, hwloc_topology_t topo, hwloc_obj_t pu)
{
    s->pu = (int)pu->os_index;
    s->core = logical_or_none(hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu));
    s->l3 = logical_or_none(hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_L3CACHE, pu));
    s->package = logical_or_none(hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu));
    /* hwloc_bitmap_first returns -1 for an empty nodeset, which is our "unknown". */
    s->numa = pu->nodeset ? hwloc_bitmap_first(pu->nodeset) : -1;
}

/* Gives every scheduler a PU; beyond the last slot the plan wraps around (oversubscribes). */
static int place(bl_topology *t, hwloc_topology_t topo, bl_bind policy)
{
    if (policy == BL_BIND_NONE) {
        unpin_all(t);
        return 0;
    }
    /* Machines that report no cores are planned as if every PU were a core. */
    hwloc_obj_type_t type = count(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    unsigned nunits = count(topo, type);
    keyed *units = order_units(topo, policy, type, nunits);
    hwloc_obj_t *slots = calloc(t->npus, sizeof *slots);
    unsigned nslots = units && slots ? fill_slots(topo, type, units, nunits, slots, t->npus) : 0;
    if (nslots > 0) {
        for (unsigned i = 0; i < t->nsched; i++) pin_to(&t->sched[i], topo, slots[i % nslots]);
    }
    free(units);
    free(slots);
    /* load() guarantees at least one PU, so no slot at all means an allocation failed. */
    return nslots > 0 ? 0 : -ENOMEM;
}

/* The latency matrix between NUMA nodes, or NULL when hwloc has none (synthetic, no SLIT). */
static struct hwloc_distances_s *numa_latencies(hwloc_topology_t topo)
{
    unsigned nr = 1;
    struct hwloc_distances_s *d = NULL;
    if (hwloc_distances_get_by_type(topo, HWLOC_OBJ_NUMANODE, &nr, &d,
                                    HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) < 0 ||
        nr == 0)
        return NULL;
    return d;
}

/*
 * Sort key for remote node b seen from node a: latency first (0 when
 * unknown), then nodes of a's own package before other packages, then the
 * node index, which also makes every key distinct.
 */
static uint64_t node_key(hwloc_topology_t topo, struct hwloc_distances_s *d, unsigned a, unsigned b)
{
    hwloc_obj_t na = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, a);
    hwloc_obj_t nb = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, b);
    hwloc_uint64_t ab = 0, ba = 0;
    if (!d || hwloc_distances_obj_pair_values(d, na, nb, &ab, &ba) < 0) ab = 0;
    uint64_t latency = ab > MAX_LATENCY ? MAX_LATENCY : ab;
    uint64_t other_pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, na) !=
                         hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, nb);
    return latency << 33 | other_pkg << 32 | b;
}

/* Fills nodes->rank: for each node, its remote nodes from nearest to farthest. */
static int rank_nodes(node_info *nodes, hwloc_topology_t topo)
{
    unsigned n = nodes->n;
    keyed *order = calloc(n, sizeof *order);
    nodes->rank = calloc((size_t)n * n, sizeof *nodes->rank);
    if (!order || !nodes->rank) {
        free(order);
        return -ENOMEM;
    }
    struct hwloc_distances_s *d = numa_latencies(topo);
    for (unsigned a = 0; a < n; a++) {
        unsigned m = 0;
        for (unsigned b = 0; b < n; b++) {
            if (b != a) order[m++] = (keyed){node_key(topo, d, a, b), b};
        }
        qsort(order, m, sizeof *order, cmp_keyed);
        for (unsigned k = 0; k < m; k++) nodes->rank[a * n + order[k].idx] = k;
    }
    if (d) hwloc_distances_release(topo, d);
    free(order);
    return 0;
}

/* Fills nodes->node_of from each scheduler's NUMA OS index. */
static int locate_scheds(node_info *nodes, const bl_topology *t, hwloc_topology_t topo)
{
    nodes->node_of = calloc(t->nsched, sizeof *nodes->node_of);
    if (!nodes->node_of) return -ENOMEM;
    for (unsigned i = 0; i < t->nsched; i++) {
        int os = t->sched[i].numa;
        hwloc_obj_t node = os < 0 ? NULL : hwloc_get_numanode_obj_by_os_index(topo, (unsigned)os);
        nodes->node_of[i] = node ? node->logical_index : NO_NODE;
    }
    return 0;
}

static unsigned node_of(const node_info *nodes, unsigned i)
{
    return nodes->node_of ? nodes->node_of[i] : NO_NODE;
}

/*
 * Closeness class of scheduler j seen from scheduler i: 0 same core, 1 same
 * L3, 2 same NUMA node, 3 same package, 4 + rank for other NUMA nodes, and
 * 4 + nodes->n (farthest) when j's place is unknown.
 */
static unsigned closeness(const bl_topology *t, const node_info *nodes, unsigned i, unsigned j)
{
    const bl_topo_sched *a = &t->sched[i], *b = &t->sched[j];
    unsigned na = node_of(nodes, i), nb = node_of(nodes, j);
    if (a->core >= 0 && a->core == b->core) return 0;
    if (a->l3 >= 0 && a->l3 == b->l3) return 1;
    if (na != NO_NODE && na == nb) return 2;
    if (a->package >= 0 && a->package == b->package) return 3;
    if (na != NO_NODE && nb != NO_NODE) return 4 + nodes->rank[na * nodes->n + nb];
    return 4 + nodes->n;
}

/*
 * Sorts every scheduler's victims by (closeness class, (j - i + n) % n).  The
 * rotation inside a class spreads the first steal attempts of neighbouring
 * schedulers over different victims instead of all hitting the lowest index.
 */
static int sort_victims(bl_topology *t, const node_info *nodes)
{
    unsigned n = t->nsched;
    keyed *tmp = calloc(n, sizeof *tmp);
    if (!tmp) return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        for (unsigned r = 1; r < n; r++) {
            unsigned j = (i + r) % n;
            tmp[r - 1] = (keyed){(uint64_t)closeness(t, nodes, i, j) << 32 | r, j};
        }
        qsort(tmp, n - 1, sizeof *tmp, cmp_keyed);
        for (unsigned k = 0; k + 1 < n; k++) t->sched[i].victims[k] = tmp[k].idx;
    }
    free(tmp);
    return 0;
}

/* The victim order for a plan made from a loaded topology. */
static int plan_victims(bl_topology *t, hwloc_topology_t topo)
{
    node_info nodes = {.n = count(topo, HWLOC_OBJ_NUMANODE)};
    int err = rank_nodes(&nodes, topo);
    if (!err) err = locate_scheds(&nodes, t, topo);
    if (!err) err = sort_victims(t, &nodes);
    free(nodes.rank);
    free(nodes.node_of);
    return err;
}

/* The plan when hwloc cannot describe this machine: nothing pinned, index order. */
static int plan_fallback(bl_topology *t, unsigned nsched)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned ncpu = online > 0 && online <= UINT_MAX ? (unsigned)online : 1;
    t->fallback = true;
    t->npus = t->ncores = ncpu;
    t->nnuma = t->npackages = 1;
    int err = alloc_plan(t, nsched ? nsched : ncpu);
    if (err) return err;
    unpin_all(t);
    node_info none = {0};
    return sort_victims(t, &none);
}

/* Counts what the machine has; nnuma and npackages are at least 1, as in fallback. */
static void count_objects(bl_topology *t, hwloc_topology_t topo)
{
    t->npus = count(topo, HWLOC_OBJ_PU);
    t->ncores = count(topo, HWLOC_OBJ_CORE);
    if (t->ncores == 0) t->ncores = t->npus;
    t->nnuma = count(topo, HWLOC_OBJ_NUMANODE);
    if (t->nnuma == 0) t->nnuma = 1;
    t->npackages = count(topo, HWLOC_OBJ_PACKAGE);
    if (t->npackages == 0) t->npackages = 1;
}

int bl__topo_build(bl_topology *t, const char *synthetic, unsigned nsched, bl_bind policy)
{
    if (!t) return -EINVAL;
    /* Zero first so that bl__topo_free is safe after any failure below. */
    memset(t, 0, sizeof *t);
    if ((unsigned)policy > BL_BIND_SPREAD) return -EINVAL;
    t->policy = policy;
    hwloc_topology_t topo;
    int err = load(&topo, synthetic);
    if (err) return synthetic ? err : plan_fallback(t, nsched);
    t->hwloc = topo;
    /* A topology imported through HWLOC_XMLFILE or HWLOC_SYNTHETIC is not this machine either. */
    t->synthetic = synthetic != NULL || !hwloc_topology_is_thissystem(topo);
    count_objects(t, topo);
    err = alloc_plan(t, nsched ? nsched : t->ncores);
    if (!err) err = place(t, topo, policy);
    if (!err) err = plan_victims(t, topo);
    if (err) bl__topo_free(t);
    return err;
}

int bl__topo_bind_thread(const bl_topology *t, unsigned i)
{
    if (!t || i >= t->nsched) return -EINVAL;
    if (t->fallback || t->synthetic || !t->hwloc || t->sched[i].pu < 0) return -ENOTSUP;
    hwloc_topology_t topo = t->hwloc;
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, (unsigned)t->sched[i].pu);
    if (!pu) return -EINVAL;
    if (hwloc_set_cpubind(topo, pu->cpuset, HWLOC_CPUBIND_THREAD) < 0) return errno ? -errno : -EIO;
    return 0;
}

void bl__topo_free(bl_topology *t)
{
    if (!t) return;
    for (unsigned i = 0; t->sched && i < t->nsched; i++) free(t->sched[i].victims);
    free(t->sched);
    if (t->hwloc) hwloc_topology_destroy(t->hwloc);
    /* Zeroing makes a second call a no-op instead of a double free. */
    memset(t, 0, sizeof *t);
}

static const char *policy_name(bl_bind policy)
{
    switch (policy) {
    case BL_BIND_CORES:
        return "cores";
    case BL_BIND_NONE:
        return "none";
    case BL_BIND_SPREAD:
        return "spread";
    }
    return "unknown";
}

static const char *plural(unsigned n)
{
    return n == 1 ? "" : "s";
}

void bl__topo_describe(const bl_topology *t, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (!t) {
        snprintf(buf, len, "no topology");
        return;
    }
    const char *note = t->fallback    ? " (hwloc failed: nothing pinned)"
                       : t->synthetic ? " (synthetic: nothing pinned)"
                                      : "";
    snprintf(buf, len,
             "%u scheduler%s on %u core%s / %u PU%s / %u NUMA node%s / %u package%s, policy %s%s",
             t->nsched, plural(t->nsched), t->ncores, plural(t->ncores), t->npus, plural(t->npus),
             t->nnuma, plural(t->nnuma), t->npackages, plural(t->npackages), policy_name(t->policy),
             note);
}
