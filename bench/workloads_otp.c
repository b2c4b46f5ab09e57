/*
 * bench/workloads_otp.c - Beamline implementations of the OTP workloads
 * (gen_server, supervisors, registry, task, agent; the factorial of seed
 * 000).  bench/README.md defines them; bench/beam/bench.exs and bench/go/
 * implement the same ones.
 *
 * As in workloads.c, each workload runs a driver process and waits for it
 * on a semaphore; every workload returns NAN when something went wrong (a
 * start failed, a reply did not come, a result was wrong), which
 * beamline_bench reports as a benchmark error.
 */
#define _GNU_SOURCE
#include "workloads.h"

#include <beamline.h>
#include <beamline/agent.h>
#include <beamline/dynamic_supervisor.h>
#include <beamline/gen_server.h>
#include <beamline/partition_supervisor.h>
#include <beamline/registry.h>
#include <beamline/supervisor.h>
#include <beamline/task.h>
#include <errno.h>
#include <gmp.h>
#include <math.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

enum { T_PING = 1, T_COUNT, T_INC, T_FACT, T_DONE, T_STOP, T_UP, T_NOISE };

/*
 * GMP allocates its temporaries of up to 32 KiB on the stack, several frames
 * deep in the larger multiplications: the processes that multiply big
 * numbers get a 1 MiB stack instead of the default 128 KiB.
 */
#define BIG_STACK (1u << 20)

/* Runs fn as a process (with a big stack) and waits for its result. */
static double drive(void (*fn)(driver *d))
{
    return drive_with(fn, BIG_STACK, NAN);
}

/* ------------------------------------------------------------------------ */
/* factorial(10_000), as seed 000 computes it                               */
/* ------------------------------------------------------------------------ */

#define FACT_N      10000
#define FACT_CHUNK  10
#define FACT_CHUNKS ((FACT_N + FACT_CHUNK - 1) / FACT_CHUNK)

/* The reference result, computed once with mpz_fac_ui (untimed). */
static mpz_t fact_ref;
static bool fact_ref_set;

static void fact_ref_init(void)
{
    if (fact_ref_set) return;
    mpz_init(fact_ref);
    mpz_fac_ui(fact_ref, FACT_N);
    fact_ref_set = true;
}

/* Enum.reduce(lo..hi, 1, &(&1 * &2)) into z. */
static void product_range(mpz_t z, unsigned long lo, unsigned long hi)
{
    mpz_set_ui(z, 1);
    for (unsigned long i = lo; i <= hi; i++) mpz_mul_ui(z, z, i);
}

/* Enum.reduce(list, 1, &(&1 * &2)) over v[0..n) into z (z not in v). */
static void product_list(mpz_t z, mpz_t *v, size_t n)
{
    mpz_set_ui(z, 1);
    for (size_t i = 0; i < n; i++) mpz_mul(z, z, v[i]);
}

/*
 * The seed's rec_stream/1 over v[0..n), in place: while more than 10
 * numbers are left, each chunk of 10 is replaced by its product (Stream.
 * chunk_every + Stream.map(&reduce/1)); then the product of what is left.
 * The product of chunk k lands in v[k], which the chunks before it no
 * longer need.
 */
static void rec_stream(mpz_t z, mpz_t *v, size_t n)
{
    mpz_t t;
    mpz_init(t);
    while (n > FACT_CHUNK) {
        size_t k = 0;
        for (size_t i = 0; i < n; i += FACT_CHUNK, k++) {
            size_t len = n - i < FACT_CHUNK ? n - i : FACT_CHUNK;
            product_list(t, v + i, len);
            mpz_swap(v[k], t);
        }
        n = k;
    }
    product_list(z, v, n);
    mpz_clear(t);
}

/* A heap copy of z as 64-bit little-endian words; *len gets its size. */
static void *export_mpz(const mpz_t z, size_t *len)
{
    size_t words = (mpz_sizeinbase(z, 2) + 63) / 64;
    uint64_t *buf = malloc(words * 8);
    size_t count = 0;
    if (buf) mpz_export(buf, &count, -1, 8, 0, 0, z);
    *len = count * 8;
    return buf;
}

static void import_mpz(mpz_t z, const void *data, size_t len)
{
    mpz_import(z, len / 8, -1, 8, 0, 0, data);
}

/* Records the figure if z is the right factorial (else the result stays NAN). */
static void fact_check(driver *d, mpz_t z, uint64_t t0, uint64_t t1)
{
    if (mpz_cmp(z, fact_ref) == 0) d->result = (double)(t1 - t0) / 1e6;
    mpz_clear(z);
}

static void fact_reduce_drv(driver *d)
{
    uint64_t t0 = now_ns();
    mpz_t z;
    mpz_init(z);
    product_range(z, 1, FACT_N);
    fact_check(d, z, t0, now_ns());
}

double wl_fact10k_reduce(void)
{
    fact_ref_init();
    return drive(fact_reduce_drv);
}

static void fact_stream_drv(driver *d)
{
    uint64_t t0 = now_ns();
    /* Enum.to_list(1..n) */
    mpz_t *v = malloc(sizeof(mpz_t) * FACT_N);
    if (!v) return;
    for (unsigned long i = 0; i < FACT_N; i++) mpz_init_set_ui(v[i], i + 1);
    mpz_t z;
    mpz_init(z);
    rec_stream(z, v, FACT_N);
    for (size_t i = 0; i < FACT_N; i++) mpz_clear(v[i]);
    free(v);
    fact_check(d, z, t0, now_ns());
}

double wl_fact10k_stream(void)
{
    fact_ref_init();
    return drive(fact_stream_drv);
}

/* The seed's FactorialGs: its state is its chunk's first number. */
static void fact_gs_init(void *arg, void **state, bl_gs_result *r)
{
    (void)r;
    *state = arg;
}

/* :factorial: replies with the product of the chunk, as exported words. */
static void fact_gs_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)m;
    unsigned long lo = (unsigned long)(uintptr_t)*state;
    unsigned long hi = lo + FACT_CHUNK - 1 < FACT_N ? lo + FACT_CHUNK - 1 : FACT_N;
    mpz_t z;
    mpz_init(z);
    product_range(z, lo, hi);
    size_t len;
    void *buf = export_mpz(z, &len);
    if (buf)
        bl_gs_reply(r, buf, len);
    else
        bl_gs_stop(r, &(bl_reason){.kind = BL_CUSTOM, .code = ENOMEM});
    free(buf);
    mpz_clear(z);
}

static const bl_gen_server fact_gs = {.init = fact_gs_init, .handle_call = fact_gs_call};

/*
 * The seed's Eval.worker/1: for each chunk of 10, one after the other,
 * GenServer.start, call :factorial, and (not in the seed, which leaves them
 * running) GenServer.stop; then Enum.reduce over the chunk products.
 */
static int fact_worker(mpz_t z)
{
    mpz_t *prod = malloc(sizeof(mpz_t) * FACT_CHUNKS);
    if (!prod) return -ENOMEM;
    int n = 0, rc = 0;
    for (unsigned long lo = 1; lo <= FACT_N && rc == 0; lo += FACT_CHUNK) {
        bl_pid pid;
        bl_msg *reply = NULL;
        rc = bl_gen_server_start(&pid, &fact_gs, (void *)(uintptr_t)lo, NULL);
        if (rc != 0) break;
        rc = bl_gen_server_call(pid, T_FACT, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
        if (rc == 0) {
            mpz_init(prod[n]);
            import_mpz(prod[n++], reply->data, reply->len);
        }
        bl_msg_free(reply);
        /* GenServer.stop's default timeout, :infinity, as in the BEAM anchor. */
        int stop = bl_gen_server_stop(pid, NULL, BL_INFINITY);
        if (rc == 0) rc = stop;
    }
    if (rc == 0) product_list(z, prod, (size_t)n);
    for (int i = 0; i < n; i++) mpz_clear(prod[i]);
    free(prod);
    return rc;
}

static void fact_genserver_drv(driver *d)
{
    uint64_t t0 = now_ns();
    mpz_t z;
    mpz_init(z);
    if (fact_worker(z) != 0) {
        mpz_clear(z);
        return;
    }
    fact_check(d, z, t0, now_ns());
}

double wl_fact10k_genserver(void)
{
    fact_ref_init();
    return drive(fact_genserver_drv);
}

double wl_fact10k_genserver_rate(void)
{
    double ms = wl_fact10k_genserver();
    return isnan(ms) ? NAN : FACT_CHUNKS / ms;
}

/* ------------------------------------------------------------------------ */
/* gen_server                                                               */
/* ------------------------------------------------------------------------ */

#define GS_ROUNDS 10000
#define GS_CALLS  100000
#define GS_CASTS  1000000
#define IDLE_GS   100000
#define GS_QUEUED 500000 /* genserver_call_500k_queued: the caller's unrelated messages */
#define GS_QCALLS 10000  /* and its calls */

/* The genserver_* server: answers T_PING, counts T_INC casts, reports the
 * count on T_COUNT.  Its state is the count itself. */
static void echo_init(void *arg, void **state, bl_gs_result *r)
{
    (void)arg;
    (void)r;
    *state = NULL;
}

static void echo_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    uint64_t n = (uint64_t)(uintptr_t)*state;
    if (m->tag == T_COUNT)
        bl_gs_reply(r, &n, sizeof n);
    else
        bl_gs_reply(r, NULL, 0);
}

static void echo_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)m;
    (void)r;
    *state = (void *)((uintptr_t)*state + 1);
}

static const bl_gen_server echo_gs = {
    .init = echo_init, .handle_call = echo_call, .handle_cast = echo_cast};

static int ping(bl_pid pid)
{
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(pid, T_PING, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
    bl_msg_free(reply);
    return rc;
}

static void gs_start_call_stop_drv(driver *d)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < GS_ROUNDS; i++) {
        bl_pid pid;
        if (bl_gen_server_start(&pid, &echo_gs, NULL, NULL) != 0) return;
        int rc = ping(pid);
        /* GenServer.stop's default timeout, :infinity, as in the BEAM anchor. */
        if (bl_gen_server_stop(pid, NULL, BL_INFINITY) != 0 || rc != 0) return;
    }
    d->result = (double)(now_ns() - t0) / GS_ROUNDS;
}

double wl_genserver_start_call_stop(void)
{
    return drive(gs_start_call_stop_drv);
}

static void gs_call_rtt_drv(driver *d)
{
    bl_pid pid;
    if (bl_gen_server_start(&pid, &echo_gs, NULL, NULL) != 0) return;
    uint64_t t0 = now_ns();
    int rc = 0;
    for (int i = 0; i < GS_CALLS && rc == 0; i++) rc = ping(pid);
    uint64_t t1 = now_ns();
    if (bl_gen_server_stop(pid, NULL, WAIT_MS) == 0 && rc == 0)
        d->result = (double)(t1 - t0) / GS_CALLS;
}

double wl_genserver_call_rtt(void)
{
    return drive(gs_call_rtt_drv);
}

/* genserver_call_rtt's calls from a caller with 500k unrelated messages
 * queued: a call must cost what it costs with an empty queue. */
static void gs_call_queued_drv(driver *d)
{
    bl_pid pid, self = bl_self();
    if (bl_gen_server_start(&pid, &echo_gs, NULL, NULL) != 0) return;
    for (int i = 0; i < GS_QUEUED; i++) bl_send(self, T_NOISE, &i, sizeof i);
    bool ok = bl_mailbox_len() == GS_QUEUED; /* the noise is queued before timing starts */
    uint64_t t0 = now_ns();
    int rc = 0;
    for (int i = 0; i < GS_QCALLS && rc == 0; i++) rc = ping(pid);
    uint64_t t1 = now_ns();
    ok = ok && rc == 0 && bl_mailbox_len() == GS_QUEUED;
    bl_msg *m;
    while ((m = bl_receive(0))) bl_msg_free(m);
    if (bl_gen_server_stop(pid, NULL, WAIT_MS) == 0 && ok)
        d->result = (double)(t1 - t0) / GS_QCALLS;
}

double wl_genserver_call_500k_queued(void)
{
    return drive(gs_call_queued_drv);
}

/* 1M casts, then a call: its answer comes after every cast was handled. */
static void gs_cast_drv(driver *d)
{
    bl_pid pid;
    if (bl_gen_server_start(&pid, &echo_gs, NULL, NULL) != 0) return;
    uint64_t t0 = now_ns();
    int rc = 0;
    for (int i = 0; i < GS_CASTS && rc == 0; i++) rc = bl_gen_server_cast(pid, T_INC, NULL, 0);
    bl_msg *reply = NULL;
    if (rc == 0) rc = bl_gen_server_call(pid, T_COUNT, NULL, 0, &reply, BL_INFINITY);
    uint64_t t1 = now_ns();
    uint64_t n = 0;
    if (rc == 0 && reply->len == sizeof n) memcpy(&n, reply->data, sizeof n);
    bl_msg_free(reply);
    if (bl_gen_server_stop(pid, NULL, WAIT_MS) == 0 && n == GS_CASTS)
        d->result = (double)(t1 - t0) / GS_CASTS;
}

double wl_genserver_cast(void)
{
    return drive(gs_cast_drv);
}

/* 100k servers started one at a time (each idle once start returns); RSS
 * growth per server, less the driver's pid array. */
static void idle_gs_drv(driver *d)
{
    bl_pid *pids = malloc(sizeof(bl_pid) * IDLE_GS);
    if (!pids) return;
    long before = rss_bytes();
    int n = 0;
    for (; n < IDLE_GS; n++)
        if (bl_gen_server_start(&pids[n], &echo_gs, NULL, NULL) != 0) break;
    long after = rss_bytes();
    bool ok = n == IDLE_GS;
    for (int i = 0; i < n; i++)
        if (bl_gen_server_stop(pids[i], NULL, WAIT_MS) != 0) ok = false;
    if (ok) d->result = (double)(after - before - (long)(sizeof(bl_pid) * IDLE_GS)) / IDLE_GS;
    free(pids);
}

double wl_idle_genserver_bytes(void)
{
    return drive(idle_gs_drv);
}

/* ------------------------------------------------------------------------ */
/* Agent                                                                    */
/* ------------------------------------------------------------------------ */

#define AGENT_N 100000

/* The agent's state is an integer kept in the pointer itself. */
static void agent_zero(void **state, void *arg)
{
    (void)arg;
    *state = NULL;
}

/* &(&1 + 1) */
static void agent_inc(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    (void)arg;
    (void)len;
    (void)r;
    *state = (void *)((uintptr_t)*state + 1);
}

/* & &1 */
static void agent_read(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    (void)arg;
    (void)len;
    uint64_t n = (uint64_t)(uintptr_t)*state;
    bl_gs_reply(r, &n, sizeof n);
}

static void agent_update_drv(driver *d)
{
    bl_pid agent;
    if (bl_agent_start_link(&agent, agent_zero, NULL, NULL) != 0) return;
    uint64_t t0 = now_ns();
    int rc = 0;
    for (int i = 0; i < AGENT_N && rc == 0; i++)
        rc = bl_agent_update(agent, agent_inc, NULL, 0, BL_GS_DEFAULT_TIMEOUT);
    uint64_t t1 = now_ns();
    bl_msg *reply = NULL;
    uint64_t n = 0;
    if (rc == 0 && bl_agent_get(agent, agent_read, NULL, 0, &reply, WAIT_MS) == 0 &&
        reply->len == sizeof n)
        memcpy(&n, reply->data, sizeof n);
    bl_msg_free(reply);
    if (bl_agent_stop(agent, NULL, WAIT_MS) == 0 && n == AGENT_N)
        d->result = (double)(t1 - t0) / AGENT_N;
}

double wl_agent_update(void)
{
    return drive(agent_update_drv);
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */
/* ------------------------------------------------------------------------ */

#define REG_N           100000
#define DISPATCH_SUBS   1000
#define DISPATCH_ROUNDS 100

enum { T_BCAST = 20, T_GOT };

static long reg_n; /* REG_N, or BENCH_SIZE */

/* A unique registry of one partition, keys 1..reg_n (8-byte integers)
 * registered by the driver with an empty value. */
static int register_keys(bl_registry *reg)
{
    for (uint64_t k = 1; k <= (uint64_t)reg_n; k++) {
        int rc = bl_registry_register(reg, &k, sizeof k, NULL, 0, NULL);
        if (rc != 0) return rc;
    }
    return 0;
}

static void registry_register_drv(driver *d)
{
    bl_registry *reg;
    if (bl_registry_start_link(NULL, &reg) != 0) return;
    uint64_t t0 = now_ns();
    int rc = register_keys(reg);
    uint64_t t1 = now_ns();
    if (bl_registry_stop(reg, NULL, WAIT_MS) == 0 && rc == 0)
        d->result = (double)(t1 - t0) / (double)reg_n;
    bl_registry_release(reg);
}

double wl_registry_register(void)
{
    reg_n = bench_size(REG_N);
    return reg_n < 1 ? NAN : drive(registry_register_drv);
}

/* Registry.lookup: a copy of the entries, checked and freed. */
static void registry_lookup_drv(driver *d)
{
    bl_registry *reg;
    if (bl_registry_start_link(NULL, &reg) != 0) return;
    bool ok = register_keys(reg) == 0;
    bl_pid self = bl_self();
    uint64_t t0 = now_ns();
    for (uint64_t k = 1; ok && k <= (uint64_t)reg_n; k++) {
        bl_registry_entry *e = NULL;
        ok = bl_registry_lookup(reg, &k, sizeof k, &e) == 1 && e[0].pid == self;
        bl_registry_free(e);
    }
    uint64_t t1 = now_ns();
    if (bl_registry_stop(reg, NULL, WAIT_MS) == 0 && ok)
        d->result = (double)(t1 - t0) / (double)reg_n;
    bl_registry_release(reg);
}

double wl_registry_lookup(void)
{
    reg_n = bench_size(REG_N);
    return reg_n < 1 ? NAN : drive(registry_lookup_drv);
}

static const char TOPIC[] = "topic";

typedef struct sub_arg {
    bl_registry *reg;
    bl_pid driver;
} sub_arg;

/* Registers under the topic, says so, then answers every broadcast. */
static void subscriber(void *arg)
{
    sub_arg *a = arg;
    bool ok = bl_registry_register(a->reg, TOPIC, sizeof TOPIC - 1, NULL, 0, NULL) == 0;
    bl_send(a->driver, ok ? T_UP : T_STOP, NULL, 0);
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        uint32_t tag = m->tag;
        if (tag == T_BCAST) bl_send(a->driver, T_GOT, m->data, m->len);
        bl_msg_free(m);
        if (tag == T_STOP) {
            bl_send(a->driver, T_DONE, NULL, 0);
            return;
        }
    }
}

static void broadcast(const bl_registry_entry *entries, size_t n, void *arg)
{
    for (size_t i = 0; i < n; i++) bl_send(entries[i].pid, T_BCAST, arg, sizeof(uint32_t));
}

static bool is_up_or_stop(const bl_msg *m, void *arg)
{
    (void)arg;
    return m->tag == T_UP || m->tag == T_STOP;
}

static void registry_dispatch_drv(driver *d)
{
    bl_registry *reg;
    bl_registry_opts o = {.keys = BL_REGISTRY_DUPLICATE};
    if (bl_registry_start_link(&o, &reg) != 0) return;
    sub_arg a = {reg, bl_self()};
    bl_pid *subs = malloc(sizeof(bl_pid) * DISPATCH_SUBS);
    int n = 0;
    bool ok = subs != NULL;
    for (; ok && n < DISPATCH_SUBS; n++)
        if (bl_spawn(&subs[n], subscriber, &a, NULL) != 0) break;
    ok = ok && n == DISPATCH_SUBS;
    for (int i = 0; i < n; i++) {
        bl_msg *m = NULL;
        if (bl_recv(&m, is_up_or_stop, NULL, WAIT_MS, 0) != 0 || m->tag != T_UP) ok = false;
        bl_msg_free(m);
    }
    uint64_t t0 = now_ns();
    for (uint32_t r = 0; ok && r < DISPATCH_ROUNDS; r++) {
        if (bl_registry_dispatch(reg, TOPIC, sizeof TOPIC - 1, broadcast, &r) != DISPATCH_SUBS)
            ok = false;
        for (int i = 0; ok && i < DISPATCH_SUBS; i++) {
            bl_msg *m = recv_tag_wait(T_GOT);
            uint32_t got = UINT32_MAX;
            if (m && m->len == sizeof got) memcpy(&got, m->data, sizeof got);
            if (got != r) ok = false;
            bl_msg_free(m);
        }
    }
    uint64_t t1 = now_ns();
    for (int i = 0; i < n; i++) bl_send(subs[i], T_STOP, NULL, 0);
    for (int i = 0; i < n; i++) {
        bl_msg *m = recv_tag_wait(T_DONE);
        if (!m) ok = false;
        bl_msg_free(m);
    }
    if (bl_registry_stop(reg, NULL, WAIT_MS) == 0 && ok)
        d->result = (double)(t1 - t0) / DISPATCH_ROUNDS / 1e3;
    bl_registry_release(reg);
    free(subs);
}

double wl_registry_dispatch_1000(void)
{
    return drive(registry_dispatch_drv);
}

/* ------------------------------------------------------------------------ */
/* Task                                                                     */
/* ------------------------------------------------------------------------ */

#define TASK_N 100000

static void task_nothing(void *arg, bl_task_out *out)
{
    (void)arg;
    (void)out;
}

/* Task.await(Task.async(fn -> :ok end)), 100k times. */
static void task_async_await_drv(driver *d)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < TASK_N; i++) {
        bl_task t;
        bl_task_result r = {0};
        if (bl_task_async(&t, task_nothing, NULL, NULL) != 0) return;
        int rc = bl_task_await(&t, BL_TASK_DEFAULT_TIMEOUT, &r);
        bl_task_result_free(&r);
        if (rc != 0) return;
    }
    d->result = (double)(now_ns() - t0) / TASK_N;
}

double wl_task_async_await(void)
{
    return drive(task_async_await_drv);
}

/*
 * fact10k_concurrent: the chunks split into one contiguous slice per
 * scheduler; each slice's product computed by rec_stream in a Task; the
 * driver awaits them in order and multiplies the slice products.
 */
typedef struct slice_arg {
    unsigned long lo, hi;
} slice_arg;

/* Returns the slice's product; an empty result when out of memory. */
static void slice_task(void *arg, bl_task_out *out)
{
    slice_arg *a = arg;
    size_t n = a->hi - a->lo + 1;
    mpz_t *v = malloc(sizeof(mpz_t) * n);
    if (!v) return;
    mpz_t z;
    mpz_init(z);
    for (size_t i = 0; i < n; i++) mpz_init_set_ui(v[i], a->lo + i);
    rec_stream(z, v, n);
    for (size_t i = 0; i < n; i++) mpz_clear(v[i]);
    free(v);
    size_t len = 0;
    void *buf = export_mpz(z, &len);
    mpz_clear(z);
    if (buf) bl_task_return(out, buf, len);
    free(buf);
}

static void fact_concurrent_drv(driver *d)
{
    unsigned s = bl_schedulers();
    slice_arg *args = calloc(s, sizeof *args);
    bl_task *tasks = calloc(s, sizeof *tasks);
    mpz_t *prod = calloc(s, sizeof(mpz_t));
    unsigned n = 0, got = 0;
    bool ok = args && tasks && prod;
    uint64_t t0 = now_ns();
    unsigned long per = (FACT_CHUNKS + s - 1) / s * FACT_CHUNK;
    bl_spawn_opts o = {.stack_size = BIG_STACK};
    /* n counts the tasks started: the ones to await. */
    for (unsigned long lo = 1; ok && lo <= FACT_N; lo += per) {
        args[n] = (slice_arg){lo, lo + per - 1 < FACT_N ? lo + per - 1 : FACT_N};
        if (bl_task_async(&tasks[n], slice_task, &args[n], &o) == 0)
            n++;
        else
            ok = false;
    }
    for (unsigned i = 0; i < n; i++) {
        bl_task_result r = {0};
        if (bl_task_await(&tasks[i], BL_INFINITY, &r) == 0 && r.len > 0) {
            mpz_init(prod[got]);
            import_mpz(prod[got++], r.data, r.len);
        } else {
            ok = false;
        }
        bl_task_result_free(&r);
    }
    mpz_t z;
    mpz_init(z);
    if (ok) product_list(z, prod, got);
    uint64_t t1 = now_ns();
    for (unsigned i = 0; i < got; i++) mpz_clear(prod[i]);
    if (ok)
        fact_check(d, z, t0, t1);
    else
        mpz_clear(z);
    free(prod);
    free(tasks);
    free(args);
}

double wl_fact10k_concurrent(void)
{
    fact_ref_init();
    return drive(fact_concurrent_drv);
}

/* ------------------------------------------------------------------------ */
/* Sleep-bound: Task, async_stream, DynamicSupervisor, PartitionSupervisor  */
/* ------------------------------------------------------------------------ */

static double ms_since(uint64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

/* send_email: sleeps 1 s, returns the address. */
static void sleep_1s(void *arg, bl_task_out *out)
{
    bl_sleep(1000);
    bl_task_return(out, arg, strlen(arg));
}

/* Seed 000's Email1, awaited: two tasks that each sleep 1 s. */
static void two_email_drv(driver *d)
{
    static char emails[2][8] = {"a@com", "b@com"};
    bl_task t[2];
    uint64_t t0 = now_ns();
    for (int i = 0; i < 2; i++)
        if (bl_task_async(&t[i], sleep_1s, emails[i], NULL) != 0) return;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        bl_task_result r = {0};
        if (bl_task_await(&t[i], BL_TASK_DEFAULT_TIMEOUT, &r) != 0) ok = false;
        bl_task_result_free(&r);
    }
    if (ok) d->result = ms_since(t0);
}

double wl_two_email_tasks_1s(void)
{
    return drive(two_email_drv);
}

/* Task.Supervisor.async_stream_nolink: each task a temporary child of a
 * dynamic supervisor (what a Task.Supervisor is). */
static int task_sup_spawner(void *ctx, int (*start)(void *start_arg, bl_pid *pid), void *start_arg,
                            bl_pid *pid)
{
    bl_child_spec spec = {.start = start, .arg = start_arg, .restart = BL_RESTART_TEMPORARY};
    return bl_dynamic_supervisor_start_child(*(bl_pid *)ctx, &spec, pid);
}

static void send_email_500ms(void *ctx, void *item, bl_task_out *out)
{
    (void)ctx;
    bl_sleep(500);
    bl_task_return(out, item, strlen(item));
}

/* Seed 000's MyTasks.back_pressured: 12 emails of 500 ms, at most 4 tasks at
 * a time, unordered, under a task supervisor started outside the timing. */
static void async_stream_drv(driver *d)
{
    char emails[12][8];
    for (int i = 0; i < 12; i++) snprintf(emails[i], sizeof emails[i], "%c@com", 'a' + i);
    bl_pid tsup;
    if (bl_dynamic_supervisor_start_link(&tsup, NULL) != 0) return;
    bl_task_stream_opts o = {.max_concurrency = 4,
                             .unordered = true,
                             .nolink = true,
                             .spawner = task_sup_spawner,
                             .spawner_ctx = &tsup};
    bl_task_stream *s;
    uint64_t t0 = now_ns();
    bool ok =
        bl_task_stream_open(&s, emails, 12, sizeof emails[0], send_email_500ms, NULL, &o) == 0;
    int got = 0;
    if (ok) {
        bl_task_result r = {0};
        int rc;
        while ((rc = bl_task_stream_next(s, &r)) == 1) {
            if (r.status == BL_TASK_OK) got++;
            bl_task_result_free(&r);
        }
        ok = rc == 0 && got == 12;
        bl_task_stream_close(s);
    }
    double ms = ms_since(t0);
    if (bl_supervisor_stop(tsup, NULL, WAIT_MS) == 0 && ok) d->result = ms;
}

double wl_async_stream_12x500ms_c4(void)
{
    return drive(async_stream_drv);
}

/* Seed 001's SlowGenServer: init sleeps 1 s. */
static void slow_init(void *arg, void **state, bl_gs_result *r)
{
    (void)arg;
    (void)r;
    bl_sleep(1000);
    *state = NULL;
}

static const bl_gen_server slow_gs = {.init = slow_init};

static int slow_start(void *arg, bl_pid *pid)
{
    (void)arg;
    return bl_gen_server_start_link(pid, &slow_gs, NULL, NULL);
}

static const bl_child_spec slow_spec = {.start = slow_start};

typedef struct starter_arg {
    bl_pid driver;
    bl_pid sup;         /* the dynamic supervisor, or ... */
    bool via_partition; /* ... the partition supervisor, routed by key */
    int64_t key;
} starter_arg;

/* Starts one SlowGenServer and tells the driver (T_UP, or T_STOP on failure). */
static void slow_starter(void *arg)
{
    starter_arg a = *(starter_arg *)arg;
    bl_pid sup = a.sup;
    int rc = 0;
    if (a.via_partition) rc = bl_partition_supervisor_whereis_int(a.sup, a.key, &sup, NULL);
    if (rc == 0) rc = bl_dynamic_supervisor_start_child(sup, &slow_spec, NULL);
    bl_send(a.driver, rc == 0 ? T_UP : T_STOP, NULL, 0);
}

/* 5 processes each start a slow child (keys 1..5); ms until all 5 started. */
static double start_5_slow(bl_pid sup, bool via_partition)
{
    starter_arg a[5];
    uint64_t t0 = now_ns();
    for (int i = 0; i < 5; i++) {
        a[i] = (starter_arg){bl_self(), sup, via_partition, i + 1};
        if (bl_spawn(NULL, slow_starter, &a[i], NULL) != 0) return NAN;
    }
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        bl_msg *m = NULL;
        if (bl_recv(&m, is_up_or_stop, NULL, WAIT_MS, 0) != 0 || m->tag != T_UP) ok = false;
        bl_msg_free(m);
    }
    return ok ? ms_since(t0) : NAN;
}

static void dynsup_drv(driver *d)
{
    bl_pid sup;
    if (bl_dynamic_supervisor_start_link(&sup, NULL) != 0) return;
    double ms = start_5_slow(sup, false);
    if (bl_supervisor_stop(sup, NULL, WAIT_MS) == 0) d->result = ms;
}

double wl_dynsup_5_slow_children(void)
{
    return drive(dynsup_drv);
}

/* A partition supervisor of 6 dynamic supervisors: keys 1..5 route to
 * partitions 1..5, one slow child each. */
static void partsup_drv(driver *d)
{
    bl_partsup_opts o = {
        .child = {.start = bl_dynamic_supervisor_start_fn, .type = BL_CHILD_SUPERVISOR},
        .partitions = 6};
    bl_pid sup;
    if (bl_partition_supervisor_start_link(&sup, &o) != 0) return;
    double ms = start_5_slow(sup, true);
    if (bl_supervisor_stop(sup, NULL, WAIT_MS) == 0) d->result = ms;
}

double wl_partsup_5_slow_children(void)
{
    return drive(partsup_drv);
}

static void sleep_i_100ms(void *arg, bl_task_out *out)
{
    uint32_t i = (uint32_t)(uintptr_t)arg;
    bl_sleep(100 * (int64_t)i);
    bl_task_return(out, &i, sizeof i);
}

/* Seed 001's yield_many example at 1/10 scale: 10 tasks sleep i x 100 ms,
 * yield_many waits 500 ms, the tasks that did not answer are shut down
 * (brutal_kill).  Tasks 1-4 must answer, 6-10 not; 5 may go either way. */
static void yield_many_drv(driver *d)
{
    bl_task t[10];
    bl_task_result r[10] = {0};
    uint64_t t0 = now_ns();
    for (uintptr_t i = 0; i < 10; i++)
        if (bl_task_async(&t[i], sleep_i_100ms, (void *)(i + 1), NULL) != 0) return;
    bool ok = bl_task_yield_many(t, 10, 500, r, NULL) >= 0;
    int answered = 0;
    for (int i = 0; ok && i < 10; i++) {
        if (r[i].status == BL_TASK_OK) {
            uint32_t v = 0;
            if (r[i].len == sizeof v) memcpy(&v, r[i].data, sizeof v);
            if (v != (uint32_t)i + 1 || answered != i) ok = false;
            answered++;
        } else if (r[i].status == BL_TASK_NIL) {
            if (bl_task_shutdown(&t[i], BL_TASK_BRUTAL_KILL, NULL) < 0) ok = false;
        } else {
            ok = false;
        }
    }
    double ms = ms_since(t0);
    for (int i = 0; i < 10; i++) bl_task_result_free(&r[i]);
    if (ok && answered >= 4 && answered <= 5) d->result = ms;
}

double wl_yield_many_timeouts(void)
{
    return drive(yield_many_drv);
}

/* ------------------------------------------------------------------------ */
/* Supervisor                                                               */
/* ------------------------------------------------------------------------ */

#define RESTART_ROUNDS 1000

/* The supervised child: its init tells the driver (its start argument, the
 * same at every restart) that it is up. */
static void restart_init(void *arg, void **state, bl_gs_result *r)
{
    (void)r;
    bl_pid self = bl_self();
    bl_send(*(bl_pid *)arg, T_UP, &self, sizeof self);
    *state = NULL;
}

static void restart_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    (void)m;
    bl_gs_reply(r, NULL, 0);
}

static const bl_gen_server restart_gs = {.init = restart_init, .handle_call = restart_call};

static int restart_child_start(void *arg, bl_pid *pid)
{
    return bl_gen_server_start_link(pid, &restart_gs, arg, NULL);
}

static bl_pid recv_up(void)
{
    bl_pid pid = BL_PID_NONE;
    bl_msg *m = recv_tag_wait(T_UP);
    if (m && m->len == sizeof pid) memcpy(&pid, m->data, sizeof pid);
    bl_msg_free(m);
    return pid;
}

/* A one_for_one supervisor with one gen_server child (intensity raised so
 * it never gives up).  1000 rounds: kill the child, time until the restarted
 * child has answered a call.  us per round. */
static void restart_drv(driver *d)
{
    bl_pid self = bl_self(), sup;
    bl_child_spec spec = {
        .id = "child", .start = restart_child_start, .arg = &self, .arg_len = sizeof self};
    bl_sup_opts o = {.max_restarts = 1000000, .max_seconds = 1};
    if (bl_supervisor_start_link(&sup, &spec, 1, &o) != 0) return;
    bl_pid child = recv_up();
    uint64_t total = 0;
    bool ok = child != BL_PID_NONE;
    for (int i = 0; ok && i < RESTART_ROUNDS; i++) {
        uint64_t t0 = now_ns();
        bl_exit_pid(child, &(bl_reason){.kind = BL_KILL});
        child = recv_up();
        ok = child != BL_PID_NONE && ping(child) == 0;
        total += now_ns() - t0;
    }
    if (bl_supervisor_stop(sup, NULL, WAIT_MS) == 0 && ok)
        d->result = (double)total / RESTART_ROUNDS / 1e3;
}

double wl_supervisor_restart_latency(void)
{
    return drive(restart_drv);
}
