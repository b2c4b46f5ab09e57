/*
 * tests/sched/test_topology.c - placement and steal order from sched/topology.c.
 *
 * Almost everything runs on hwloc synthetic topologies, so the expected PUs
 * and victims are the same on every machine.  The main one is
 * "pack:2 numa:2 core:4 pu:2": 2 packages x 2 NUMA nodes x 4 cores x 2 PUs,
 * so core c sits on NUMA node c / 4 and package c / 8, and its PUs have OS
 * indexes 2c and 2c + 1.
 */
#include <criterion/criterion.h>
#include <hwloc.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/topology.h"

/* 16 cores, 32 PUs, 4 NUMA nodes, 2 packages, no L3. */
#define BIG "pack:2 numa:2 core:4 pu:2"
/* The same shape with two L3 caches per NUMA node, each shared by 2 cores. */
#define BIG_L3 "pack:2 numa:2 l3:2 core:2 pu:2"
/* One node, two cores, no SMT. */
#define SMALL "core:2 pu:1"

static void build(bl_topology *t, const char *synthetic, unsigned nsched, bl_bind policy)
{
    int rc = bl__topo_build(t, synthetic, nsched, policy);
    cr_assert_eq(rc, 0, "build(\"%s\", %u, %d) = %d", synthetic ? synthetic : "machine", nsched,
                 (int)policy, rc);
}

/* Asserts that scheduler i's victims are exactly the listed schedulers, in order. */
static void assert_victims(const bl_topology *t, unsigned i, const unsigned *want, unsigned n)
{
    cr_assert_eq(t->sched[i].nvictims, n, "sched %u has %u victims, want %u", i,
                 t->sched[i].nvictims, n);
    for (unsigned k = 0; k < n; k++) {
        cr_assert_eq(t->sched[i].victims[k], want[k], "sched %u victim %u is %u, want %u", i, k,
                     t->sched[i].victims[k], want[k]);
    }
}

/* Asserts that every victims array holds each other scheduler exactly once. */
static void assert_permutations(const bl_topology *t)
{
    bool *seen = calloc(t->nsched, sizeof *seen);
    cr_assert_not_null(seen);
    for (unsigned i = 0; i < t->nsched; i++) {
        cr_assert_eq(t->sched[i].nvictims, t->nsched - 1);
        memset(seen, 0, t->nsched * sizeof *seen);
        seen[i] = true;
        for (unsigned k = 0; k < t->sched[i].nvictims; k++) {
            unsigned v = t->sched[i].victims[k];
            cr_assert_lt(v, t->nsched, "sched %u victim %u out of range", i, v);
            cr_assert_not(seen[v], "sched %u lists %u twice (or itself)", i, v);
            seen[v] = true;
        }
    }
    free(seen);
}

Test(topology, counts_and_default_nsched)
{
    bl_topology t;
    build(&t, BIG, 0, BL_BIND_CORES);
    cr_assert_eq(t.nsched, 16, "default nsched is one per core");
    cr_assert_eq(t.npus, 32);
    cr_assert_eq(t.ncores, 16);
    cr_assert_eq(t.nnuma, 4);
    cr_assert_eq(t.npackages, 2);
    cr_assert(t.synthetic);
    cr_assert_not(t.fallback);
    bl__topo_free(&t);

    build(&t, SMALL, 0, BL_BIND_CORES);
    cr_assert_eq(t.nsched, 2);
    cr_assert_eq(t.npus, 2);
    cr_assert_eq(t.ncores, 2);
    cr_assert_eq(t.nnuma, 1);
    cr_assert_eq(t.npackages, 1, "a machine without package objects counts as one package");
    bl__topo_free(&t);
}

Test(topology, cores_fill_one_node_at_a_time)
{
    bl_topology t;
    build(&t, BIG, 0, BL_BIND_CORES);
    for (unsigned i = 0; i < 16; i++) {
        cr_assert_eq(t.sched[i].pu, (int)(2 * i), "sched %u on pu %d", i, t.sched[i].pu);
        cr_assert_eq(t.sched[i].core, (int)i);
        cr_assert_eq(t.sched[i].numa, (int)(i / 4));
        cr_assert_eq(t.sched[i].package, (int)(i / 8));
        cr_assert_eq(t.sched[i].l3, -1, "this topology has no L3");
    }
    bl__topo_free(&t);
}

Test(topology, spread_alternates_nodes)
{
    bl_topology t;
    build(&t, BIG, 0, BL_BIND_SPREAD);
    for (unsigned i = 0; i < 16; i++) {
        /* Round r = i / 4 takes the r-th core of node i % 4. */
        int core = (int)((i % 4) * 4 + i / 4);
        cr_assert_eq(t.sched[i].core, core, "sched %u on core %d", i, t.sched[i].core);
        cr_assert_eq(t.sched[i].pu, 2 * core);
        cr_assert_eq(t.sched[i].numa, (int)(i % 4));
    }
    bl__topo_free(&t);
}

Test(topology, smt_siblings_after_cores_then_wrap)
{
    static const bl_bind policies[] = {BL_BIND_CORES, BL_BIND_SPREAD};
    for (unsigned p = 0; p < 2; p++) {
        bl_topology t;
        build(&t, BIG, 70, policies[p]);
        for (unsigned i = 16; i < 32; i++) {
            /* The second pass puts each scheduler on the sibling of scheduler i - 16's PU. */
            cr_assert_eq(t.sched[i].pu, t.sched[i - 16].pu + 1, "policy %u sched %u", p, i);
            cr_assert_eq(t.sched[i].core, t.sched[i - 16].core);
        }
        for (unsigned i = 32; i < 70; i++) {
            cr_assert_eq(t.sched[i].pu, t.sched[i % 32].pu, "policy %u sched %u wraps", p, i);
        }
        bl__topo_free(&t);
    }
}

Test(topology, none_pins_nothing_and_steals_in_index_order)
{
    bl_topology t;
    build(&t, BIG, 4, BL_BIND_NONE);
    for (unsigned i = 0; i < 4; i++) {
        const bl_topo_sched *s = &t.sched[i];
        cr_assert_eq(s->pu, -1);
        cr_assert_eq(s->core, -1);
        cr_assert_eq(s->l3, -1);
        cr_assert_eq(s->numa, -1);
        cr_assert_eq(s->package, -1);
        cr_assert_eq(bl__topo_bind_thread(&t, i), -ENOTSUP);
    }
    assert_victims(&t, 0, (const unsigned[]){1, 2, 3}, 3);
    assert_victims(&t, 2, (const unsigned[]){3, 0, 1}, 3);
    bl__topo_free(&t);
}

Test(topology, victims_sibling_node_package_then_remote)
{
    bl_topology t;
    build(&t, BIG, 32, BL_BIND_CORES);
    /* Sched k < 16 is on core k's first PU, sched 16 + k on its second. */
    static const unsigned want0[] = {16,                              /* same core */
                                     1,  2,  3,  17, 18, 19,          /* same node */
                                     4,  5,  6,  7,  20, 21, 22, 23,  /* same package */
                                     8,  9,  10, 11, 24, 25, 26, 27,  /* node 2 */
                                     12, 13, 14, 15, 28, 29, 30, 31}; /* node 3 */
    assert_victims(&t, 0, want0, 31);
    /* Sched 21 (core 5, node 1): within a class the order starts after 21 and wraps. */
    static const unsigned want21[] = {5,                               /* same core */
                                      22, 23, 4,  6,  7,  20,          /* same node */
                                      0,  1,  2,  3,  16, 17, 18, 19,  /* same package */
                                      24, 25, 26, 27, 8,  9,  10, 11,  /* node 2 */
                                      28, 29, 30, 31, 12, 13, 14, 15}; /* node 3 */
    assert_victims(&t, 21, want21, 31);
    assert_permutations(&t);
    bl__topo_free(&t);
}

Test(topology, victims_same_l3_before_same_node)
{
    bl_topology t;
    build(&t, BIG_L3, 0, BL_BIND_CORES);
    cr_assert_eq(t.nsched, 16);
    cr_assert_eq(t.sched[0].l3, 0);
    cr_assert_eq(t.sched[2].l3, 1);
    static const unsigned want0[] = {1,                             /* same L3 */
                                     2, 3,                          /* same node */
                                     4, 5, 6,  7,                   /* same package */
                                     8, 9, 10, 11, 12, 13, 14, 15}; /* remote */
    assert_victims(&t, 0, want0, 15);
    /* Core 2 shares sched 3's L3 yet comes last by rotation: only the L3 class puts it first. */
    static const unsigned want3[] = {2, 0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert_victims(&t, 3, want3, 15);
    static const unsigned want14[] = {15, 12, 13, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7};
    assert_victims(&t, 14, want14, 15);
    bl__topo_free(&t);
}

Test(topology, small_single_node)
{
    bl_topology t;
    build(&t, SMALL, 0, BL_BIND_SPREAD);
    cr_assert_eq(t.sched[0].pu, 0);
    cr_assert_eq(t.sched[1].pu, 1);
    cr_assert_eq(t.sched[0].numa, 0);
    cr_assert_eq(t.sched[0].package, -1);
    assert_victims(&t, 0, (const unsigned[]){1}, 1);
    assert_victims(&t, 1, (const unsigned[]){0}, 1);
    bl__topo_free(&t);

    /* Three schedulers on two PUs: 2 shares PU 0 with 0, so each is the other's first victim. */
    build(&t, SMALL, 3, BL_BIND_CORES);
    cr_assert_eq(t.sched[2].pu, 0);
    assert_victims(&t, 0, (const unsigned[]){2, 1}, 2);
    assert_victims(&t, 2, (const unsigned[]){0, 1}, 2);
    assert_victims(&t, 1, (const unsigned[]){2, 0}, 2);
    bl__topo_free(&t);
}

Test(topology, one_scheduler_has_no_victims)
{
    bl_topology t;
    build(&t, BIG, 1, BL_BIND_CORES);
    cr_assert_eq(t.sched[0].nvictims, 0);
    cr_assert_eq(t.sched[0].pu, 0);
    bl__topo_free(&t);
}

Test(topology, every_victim_list_is_a_permutation)
{
    static const char *shapes[] = {BIG, BIG_L3, SMALL, "pack:3 numa:1 core:3 pu:1"};
    static const unsigned counts[] = {0, 1, 2, 3, 5, 16, 31, 32, 33, 70};
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        for (unsigned p = BL_BIND_CORES; p <= BL_BIND_SPREAD; p++) {
            for (unsigned c = 0; c < sizeof counts / sizeof *counts; c++) {
                bl_topology t;
                build(&t, shapes[s], counts[c], (bl_bind)p);
                assert_permutations(&t);
                bl__topo_free(&t);
            }
        }
    }
}

Test(topology, errors_are_values)
{
    bl_topology t;
    cr_assert_eq(bl__topo_build(&t, "pack:2 bogus:3", 0, BL_BIND_CORES), -EINVAL);
    cr_assert_eq(bl__topo_build(&t, "", 0, BL_BIND_CORES), -EINVAL);
    cr_assert_eq(bl__topo_build(&t, BIG, 0, (bl_bind)3), -EINVAL);
    cr_assert_eq(bl__topo_build(&t, BIG, 0, (bl_bind)-1), -EINVAL);
    cr_assert_eq(bl__topo_build(NULL, BIG, 0, BL_BIND_CORES), -EINVAL);
    /* A failed build leaves the struct zeroed, so freeing it is still safe. */
    bl__topo_free(&t);

    build(&t, BIG, 2, BL_BIND_CORES);
    cr_assert_eq(bl__topo_bind_thread(&t, 0), -ENOTSUP, "synthetic plans never bind");
    cr_assert_eq(bl__topo_bind_thread(&t, 2), -EINVAL);
    bl__topo_free(&t);
    bl__topo_free(&t);

    bl_topology zero = {0};
    bl__topo_free(&zero);
}

Test(topology, describe)
{
    bl_topology t;
    char buf[160];
    build(&t, SMALL, 0, BL_BIND_CORES);
    bl__topo_describe(&t, buf, sizeof buf);
    cr_assert_str_eq(buf, "2 schedulers on 2 cores / 2 PUs / 1 NUMA node / 1 package, "
                          "policy cores (synthetic: nothing pinned)");
    bl__topo_free(&t);

    build(&t, BIG, 1, BL_BIND_SPREAD);
    bl__topo_describe(&t, buf, 12);
    cr_assert_str_eq(buf, "1 scheduler", "truncated to fit");
    bl__topo_free(&t);
}

Test(topology, real_machine_builds_and_binds)
{
    bl_topology t;
    build(&t, NULL, 0, BL_BIND_CORES);
    cr_assert_geq(t.nsched, 1);
    cr_assert_geq(t.npus, t.ncores);
    assert_permutations(&t);
    int rc = bl__topo_bind_thread(&t, 0);
    if (t.fallback || t.synthetic)
        cr_assert_eq(rc, -ENOTSUP);
    else
        cr_assert_eq(rc, 0, "binding sched 0 to pu %d: %s", t.sched[0].pu, strerror(-rc));
    bl__topo_free(&t);
}

Test(topology, fallback_when_hwloc_fails)
{
    /* HWLOC_COMPONENTS=stop leaves hwloc no discovery component, so loading fails. */
    char *saved = getenv("HWLOC_COMPONENTS");
    saved = saved ? strdup(saved) : NULL;
    setenv("HWLOC_COMPONENTS", "stop", 1);
    bl_topology t;
    int rc = bl__topo_build(&t, NULL, 3, BL_BIND_CORES);
    if (saved)
        setenv("HWLOC_COMPONENTS", saved, 1);
    else
        unsetenv("HWLOC_COMPONENTS");
    free(saved);

    cr_assert_eq(rc, 0);
    cr_assert(t.fallback);
    cr_assert_eq(t.nsched, 3);
    cr_assert_eq(t.nnuma, 1);
    cr_assert_eq(t.npackages, 1);
    cr_assert_eq(t.ncores, t.npus);
    for (unsigned i = 0; i < 3; i++) {
        cr_assert_eq(t.sched[i].pu, -1);
        cr_assert_eq(bl__topo_bind_thread(&t, i), -ENOTSUP);
    }
    assert_victims(&t, 1, (const unsigned[]){2, 0}, 2);
    bl__topo_free(&t);
}

/*
 * Writes "pack:2 numa:2 core:1 pu:1" with a NUMA latency matrix to an XML
 * file, since synthetic descriptions cannot carry distances.  Seen from node
 * 0, node 3 is nearer than node 2.
 */
static void write_xml_with_latencies(const char *path)
{
    /* Not const: hwloc_distances_add_values takes a non-const pointer. */
    hwloc_uint64_t lat[16] = {10, 30, 40, 20, 30, 10, 20, 40, 40, 20, 10, 30, 20, 40, 30, 10};
    hwloc_topology_t topo;
    hwloc_obj_t nodes[4];
    cr_assert_eq(hwloc_topology_init(&topo), 0);
    cr_assert_eq(hwloc_topology_set_synthetic(topo, "pack:2 numa:2 core:1 pu:1"), 0);
    cr_assert_eq(hwloc_topology_load(topo), 0);
    for (unsigned i = 0; i < 4; i++) nodes[i] = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
    hwloc_distances_add_handle_t h = hwloc_distances_add_create(
        topo, "test", HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
    cr_assert_not_null(h);
    cr_assert_eq(hwloc_distances_add_values(topo, h, 4, nodes, lat, 0), 0);
    cr_assert_eq(hwloc_distances_add_commit(topo, h, 0), 0);
    cr_assert_eq(hwloc_topology_export_xml(topo, path, 0), 0);
    hwloc_topology_destroy(topo);
}

Test(topology, remote_nodes_follow_latency)
{
    char path[] = "/tmp/bl_topo_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_xml_with_latencies(path);
    /* HWLOC_XMLFILE makes the "real machine" load read this file instead. */
    setenv("HWLOC_XMLFILE", path, 1);
    bl_topology t;
    int rc = bl__topo_build(&t, NULL, 0, BL_BIND_CORES);
    unsetenv("HWLOC_XMLFILE");
    unlink(path);

    cr_assert_eq(rc, 0);
    cr_assert_not(t.fallback);
    cr_assert(t.synthetic, "an imported topology is not this machine: binding is disabled");
    cr_assert_eq(t.nsched, 4);
    /* Same package first regardless of latency, then node 3 (20) before node 2 (40). */
    assert_victims(&t, 0, (const unsigned[]){1, 3, 2}, 3);
    /* From node 2: node 3 shares its package, then node 1 (20) before node 0 (40). */
    assert_victims(&t, 2, (const unsigned[]){3, 1, 0}, 3);
    bl__topo_free(&t);
}
