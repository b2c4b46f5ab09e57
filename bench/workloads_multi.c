/*
 * bench/workloads_multi.c - Beamline implementations of the workloads that
 * keep every scheduler busy at once: many clients calling one gen_server
 * (or one server per scheduler behind a partition supervisor), and the
 * skynet tree of a million processes.  bench/README.md defines them;
 * bench/beam/multi.exs and bench/go/multi.go implement the same ones.
 *
 * As in workloads.c, each workload runs a driver process and waits for it
 * on a semaphore; every workload returns NAN when something went wrong (a
 * spawn or start failed, a call failed, a reply did not come within
 * WAIT_MS, the skynet sum was wrong), which beamline_bench reports as a
 * benchmark error.
 */
#define _GNU_SOURCE
#include "workloads.h"

#include <beamline.h>
#include <beamline/gen_server.h>
#include <beamline/partition_supervisor.h>
#include <beamline/supervisor.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

enum { T_READY = 1, T_GO, T_DONE, T_FAIL, T_PING, T_SKY };

static double drive(void (*fn)(driver *d))
{
    return drive_with(fn, 0, NAN);
}

/* The first message tagged a or b, or NULL after WAIT_MS. */
typedef struct two_tags {
    uint32_t a, b;
} two_tags;

static bool match_two(const bl_msg *m, void *arg)
{
    const two_tags *t = arg;
    return m->tag == t->a || m->tag == t->b;
}

static bl_msg *recv_either(uint32_t a, uint32_t b)
{
    two_tags t = {a, b};
    bl_msg *m = NULL;
    return bl_recv(&m, match_two, &t, WAIT_MS, 0) == 0 ? m : NULL;
}

/* ------------------------------------------------------------------------ */
/* many_to_one_call, many_to_one_call_partitioned                           */
/* ------------------------------------------------------------------------ */

/* Calls per client (bench/README.md: scaled so that a run stays within
 * about 5 s on 2 cores). */
#define M2O_CALLS 100000

/* The server: answers every call with an empty reply (genserver_call_rtt's
 * T_PING). */
static void m2o_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    (void)m;
    bl_gs_reply(r, NULL, 0);
}

static const bl_gen_server m2o_gs = {.handle_call = m2o_call};

typedef struct m2o_client {
    bl_pid driver;  /* told T_READY, then T_DONE, or T_FAIL instead of either */
    bl_pid server;  /* the server to call, or BL_PID_NONE: ... */
    bl_pid partsup; /* ... the one that key routes to in this partition supervisor */
    int64_t key;    /* the client's index */
} m2o_client;

/*
 * Finds its server (once: the lookup is a call to the partition supervisor,
 * which every client asking on every call would turn into the bottleneck),
 * says it is ready, waits for T_GO, makes M2O_CALLS calls, reports.
 */
static void m2o_client_proc(void *arg)
{
    m2o_client c = *(m2o_client *)arg;
    bl_pid srv = c.server;
    int rc = 0;
    if (srv == BL_PID_NONE) rc = bl_partition_supervisor_whereis_int(c.partsup, c.key, &srv, NULL);
    bl_send(c.driver, rc == 0 ? T_READY : T_FAIL, NULL, 0);
    if (rc != 0) return;
    bl_msg *go = recv_tag_wait(T_GO);
    if (!go) rc = -ETIMEDOUT;
    bl_msg_free(go);
    for (int i = 0; i < M2O_CALLS && rc == 0; i++) {
        bl_msg *reply = NULL;
        rc = bl_gen_server_call(srv, T_PING, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
        bl_msg_free(reply);
    }
    bl_send(c.driver, rc == 0 ? T_DONE : T_FAIL, NULL, 0);
}

/*
 * 2 x schedulers clients, client i on scheduler i mod n, all released at
 * once; calls per second from T_GO to the last T_DONE.  NAN on any failure.
 */
static double m2o_run(bl_pid server, bl_pid partsup)
{
    int n = (int)bl_schedulers(), clients = 2 * n, spawned = 0, ready = 0;
    m2o_client *args = malloc(sizeof *args * (size_t)clients);
    bl_pid *pids = malloc(sizeof *pids * (size_t)clients);
    bool ok = args && pids;
    for (int i = 0; ok && i < clients; i++) {
        args[i] = (m2o_client){bl_self(), server, partsup, i};
        bl_spawn_opts o = {.scheduler = i % n + 1};
        if (bl_spawn(&pids[i], m2o_client_proc, &args[i], &o) == 0)
            spawned++;
        else
            ok = false;
    }
    /* Every client has read its argument and found its server. */
    for (int i = 0; i < spawned; i++) {
        bl_msg *m = recv_either(T_READY, T_FAIL);
        if (m && m->tag == T_READY)
            ready++;
        else
            ok = false;
        bl_msg_free(m);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < spawned; i++) bl_send(pids[i], T_GO, NULL, 0);
    for (int i = 0; i < ready; i++) {
        bl_msg *m = recv_either(T_DONE, T_FAIL);
        if (!m || m->tag != T_DONE) ok = false;
        bl_msg_free(m);
    }
    uint64_t t1 = now_ns();
    free(pids);
    free(args);
    return ok ? (double)clients * M2O_CALLS * 1e9 / (double)(t1 - t0) : NAN;
}

/* One server, started by the driver (on the driver's scheduler). */
static void m2o_drv(driver *d)
{
    bl_pid srv;
    if (bl_gen_server_start(&srv, &m2o_gs, NULL, NULL) != 0) return;
    double rate = m2o_run(srv, BL_PID_NONE);
    if (bl_gen_server_stop(srv, NULL, WAIT_MS) == 0) d->result = rate;
}

double wl_many_to_one_call(void)
{
    return drive(m2o_drv);
}

/* Partition p's server starts on scheduler p + 1: the clients of key i
 * (partition i mod n) run on the same scheduler as their server. */
static int m2o_server_start(void *arg, bl_pid *pid)
{
    int partition = (int)(uintptr_t)arg;
    bl_gen_server_opts o = {.spawn = {.scheduler = partition % (int)bl_schedulers() + 1}};
    return bl_gen_server_start_link(pid, &m2o_gs, NULL, &o);
}

static void *m2o_partition_arg(void *arg, int partition)
{
    (void)arg;
    return (void *)(uintptr_t)partition;
}

/* A partition supervisor of one server per scheduler; client i routes by key i. */
static void m2o_partitioned_drv(driver *d)
{
    bl_partsup_opts o = {.child = {.start = m2o_server_start},
                         .partitions = (int)bl_schedulers(),
                         .with_arguments = m2o_partition_arg};
    bl_pid sup;
    if (bl_partition_supervisor_start_link(&sup, &o) != 0) return;
    double rate = m2o_run(BL_PID_NONE, sup);
    if (bl_supervisor_stop(sup, NULL, WAIT_MS) == 0) d->result = rate;
}

double wl_many_to_one_call_partitioned(void)
{
    return drive(m2o_partitioned_drv);
}

/* ------------------------------------------------------------------------ */
/* skynet_1m                                                                */
/* ------------------------------------------------------------------------ */

#define SKY_LEAVES 1000000
#define SKY_FANOUT 10
#define SKY_SUM    499999500000LL /* 0 + 1 + ... + 999,999 */

typedef struct sky_arg {
    bl_pid parent; /* gets this subtree's sum (T_SKY), or T_FAIL */
    int64_t num;   /* the first leaf number of this subtree */
    int64_t size;  /* its leaves */
} sky_arg;

/*
 * A leaf sends its number; an inner node spawns SKY_FANOUT children over
 * equal slices of its leaves and sends the sum of their answers.  The
 * children's arguments live in the node's frame, which outlives them: the
 * node waits for every child's answer.
 */
static void sky_node(void *arg)
{
    sky_arg a = *(sky_arg *)arg;
    if (a.size == 1) {
        bl_send(a.parent, T_SKY, &a.num, sizeof a.num);
        return;
    }
    sky_arg kids[SKY_FANOUT];
    int64_t sub = a.size / SKY_FANOUT, sum = 0;
    int spawned = 0;
    bool ok = true;
    for (; spawned < SKY_FANOUT; spawned++) {
        kids[spawned] = (sky_arg){bl_self(), a.num + spawned * sub, sub};
        if (bl_spawn(NULL, sky_node, &kids[spawned], NULL) != 0) {
            ok = false;
            break;
        }
    }
    for (int i = 0; i < spawned; i++) {
        bl_msg *m = recv_either(T_SKY, T_FAIL);
        int64_t v;
        if (m && m->tag == T_SKY && m->len == sizeof v) {
            memcpy(&v, m->data, sizeof v);
            sum += v;
        } else {
            ok = false;
        }
        bl_msg_free(m);
        if (!m) break; /* one lost answer: the others may be lost too */
    }
    if (ok)
        bl_send(a.parent, T_SKY, &sum, sizeof sum);
    else
        bl_send(a.parent, T_FAIL, NULL, 0);
}

static void skynet_drv(driver *d)
{
    sky_arg root = {bl_self(), 0, SKY_LEAVES};
    uint64_t t0 = now_ns();
    if (bl_spawn(NULL, sky_node, &root, NULL) != 0) return;
    bl_msg *m = recv_either(T_SKY, T_FAIL);
    uint64_t t1 = now_ns();
    int64_t sum = 0;
    if (m && m->tag == T_SKY && m->len == sizeof sum) memcpy(&sum, m->data, sizeof sum);
    bl_msg_free(m);
    if (sum == SKY_SUM) d->result = (double)(t1 - t0) / 1e6;
}

double wl_skynet_1m(void)
{
    return drive(skynet_drv);
}
