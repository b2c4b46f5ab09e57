/*
 * tests/chaos/restart_storm.c - supervision trees under restart storms.
 *
 *   top (one_for_one, 1000 restarts a second: it must survive)
 *   |-- ofo   one_for_one, 4 permanent workers (Elixir's intensity: 3 in 5 s)
 *   |-- rfo   rest_for_one, 4 workers (permanent and transient)
 *   |-- ofa   one_for_all, 3 workers
 *   |-- nest  one_for_one -> nest2 one_for_one -> 3 workers
 *   |-- dyn   dynamic supervisor (children added by callers)
 *   `-- tasks task supervisor
 *
 * Workers are gen_servers that list themselves in a roster while they
 * live, and fail their init now and then once the storm has begun.  The
 * killer, every 0-3 ms: kills a worker, makes one crash by itself (a stop
 * with a custom reason), kills a subtree's supervisor, or starts a caller
 * of start_child (on dyn or ofo, with a start that takes a millisecond),
 * of a task supervisor's async_nolink + await, and kills that caller in
 * the middle of its call.  The subtrees die of their intensity and top
 * restarts them; top itself must live to the end.
 *
 * Meanwhile, every 200 ms or so, the scenario checks intensity the other
 * way: a "fragile" supervisor (2 restarts in 60 s) of its own gets three of
 * its children killed and must exit with reason shutdown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

enum { T_CRASH = 0x51, T_CALLER_READY = 0x52 };

#define ROSTER  256
#define CALLERS 64

static _Atomic bl_pid roster[ROSTER]; /* live workers */
static _Atomic bool storming;         /* init failures allowed */
static _Atomic uint64_t init_seq;     /* spreads init failures */

typedef struct worker {
    unsigned slot; /* its roster place, ROSTER if none */
    bl_pid self;
} worker;

static void w_init(void *arg, void **state, bl_gs_result *r)
{
    (void)arg;
    /* Relaxed: a counter to pick one init in 16; any interleaving will do. */
    uint64_t n = atomic_fetch_add_explicit(&init_seq, 1, memory_order_relaxed);
    if (atomic_load(&storming) && (n * 0x9E3779B97F4A7C15ull) >> 60 == 0) {
        bl_reason why = {.kind = BL_CUSTOM, .code = 17};
        bl_gs_stop(r, &why);
        return;
    }
    worker *w = malloc(sizeof *w);
    if (!w) {
        bl_gs_stop(r, NULL);
        return;
    }
    w->self = bl_self();
    w->slot = ROSTER;
    unsigned start = (unsigned)(n % ROSTER);
    for (unsigned i = 0; i < ROSTER; i++) {
        unsigned k = (start + i) % ROSTER;
        bl_pid none = BL_PID_NONE;
        if (atomic_compare_exchange_strong(&roster[k], &none, w->self)) {
            w->slot = k;
            break;
        }
    }
    *state = w;
}

static void w_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    if (m->tag == T_CRASH) {
        bl_reason why = {.kind = BL_CUSTOM, .code = 42};
        bl_gs_stop(r, &why);
    }
}

/* Leaves the roster and frees the state, whatever ended the worker. */
static void w_release(void *state)
{
    worker *w = state;
    if (w->slot < ROSTER) {
        bl_pid me = w->self;
        atomic_compare_exchange_strong(&roster[w->slot], &me, BL_PID_NONE);
    }
    free(w);
}

static const bl_gen_server worker_cb = {
    .init = w_init,
    .handle_info = w_info,
    .release = w_release,
};

static int worker_start(void *arg, bl_pid *pid)
{
    (void)arg;
    return bl_gen_server_start_link(pid, &worker_cb, NULL, NULL);
}

/* A start that takes a millisecond: the supervisor, and its callers, wait. */
static int slow_worker_start(void *arg, bl_pid *pid)
{
    bl_sleep(1);
    return worker_start(arg, pid);
}

/* ---- the tree ---- */

#define W(id_, rs)                                                                                 \
    {                                                                                              \
        .id = id_, .start = worker_start, .restart = rs, .shutdown = 1000                          \
    }

static const bl_child_spec ofo_kids[] = {
    W("w1", BL_RESTART_PERMANENT), W("w2", BL_RESTART_PERMANENT), W("w3", BL_RESTART_PERMANENT),
    W("w4", BL_RESTART_PERMANENT)};
static const bl_child_spec rfo_kids[] = {
    W("w1", BL_RESTART_PERMANENT), W("w2", BL_RESTART_TRANSIENT), W("w3", BL_RESTART_PERMANENT),
    W("w4", BL_RESTART_TRANSIENT)};
static const bl_child_spec ofa_kids[] = {
    W("w1", BL_RESTART_PERMANENT), W("w2", BL_RESTART_PERMANENT), W("w3", BL_RESTART_TRANSIENT)};
static const bl_child_spec nest2_kids[] = {
    W("w1", BL_RESTART_PERMANENT), W("w2", BL_RESTART_PERMANENT), W("w3", BL_RESTART_PERMANENT)};

static const bl_sup_init ofo_init = {
    .children = ofo_kids, .nchildren = 4, .opts = {.strategy = BL_ONE_FOR_ONE}};
static const bl_sup_init rfo_init = {
    .children = rfo_kids, .nchildren = 4, .opts = {.strategy = BL_REST_FOR_ONE, .max_restarts = 5}};
static const bl_sup_init ofa_init = {
    .children = ofa_kids, .nchildren = 3, .opts = {.strategy = BL_ONE_FOR_ALL, .max_restarts = 5}};
static const bl_sup_init nest2_init = {
    .children = nest2_kids, .nchildren = 3, .opts = {.strategy = BL_ONE_FOR_ONE}};
static const bl_child_spec nest_kids[] = {{.id = "nest2",
                                           .start = bl_supervisor_start_fn,
                                           .arg = (void *)&nest2_init,
                                           .type = BL_CHILD_SUPERVISOR}};
static const bl_sup_init nest_init = {
    .children = nest_kids, .nchildren = 1, .opts = {.strategy = BL_ONE_FOR_ONE}};
static const bl_dynsup_opts dyn_opts = {.max_restarts = 10, .max_seconds = 1};
static const bl_task_sup_opts tasks_opts = {.max_restarts = 10, .max_seconds = 1};

#define SUB(id_, fn, arg_)                                                                         \
    {                                                                                              \
        .id = id_, .start = fn, .arg = (void *)(arg_), .type = BL_CHILD_SUPERVISOR                 \
    }
static const bl_child_spec top_kids[] = {
    SUB("ofo", bl_supervisor_start_fn, &ofo_init),
    SUB("rfo", bl_supervisor_start_fn, &rfo_init),
    SUB("ofa", bl_supervisor_start_fn, &ofa_init),
    SUB("nest", bl_supervisor_start_fn, &nest_init),
    SUB("dyn", bl_dynamic_supervisor_start_fn, &dyn_opts),
    SUB("tasks", bl_task_supervisor_start_fn, &tasks_opts),
};
#define NTOP (sizeof top_kids / sizeof top_kids[0])

/* The pid of top's child id (BL_PID_NONE when it is not running). */
static bl_pid sub_pid(bl_pid top, const char *id)
{
    bl_sup_child kids[NTOP];
    int n = bl_supervisor_which_children(top, kids, NTOP);
    for (int i = 0; i < n && i < (int)NTOP; i++)
        if (strcmp(kids[i].id, id) == 0 && kids[i].status == BL_CHILD_RUNNING) return kids[i].pid;
    return BL_PID_NONE;
}

/* ---- callers killed in their calls ---- */

typedef struct caller_arg {
    int kind;     /* 0 dyn start_child, 1 ofo start_child, 2 task async_nolink + await */
    bl_pid sup;   /* whom it calls */
    unsigned seq; /* a unique id for ofo's children */
    bl_restart restart;
} caller_arg;

static caller_arg cargs[CALLERS];

static void task_nap(void *arg, bl_task_out *out)
{
    bl_sleep((int64_t)(intptr_t)arg);
    bl_task_return(out, "t", 1);
}

static void caller(void *arg)
{
    caller_arg *c = arg;
    char id[32];
    snprintf(id, sizeof id, "x%u", c->seq);
    char blob[96] = {0}; /* copied with the spec: the call holds the copy */
    bl_child_spec spec = {.id = id,
                          .start = slow_worker_start,
                          .arg = blob,
                          .arg_len = sizeof blob,
                          .restart = c->restart,
                          .shutdown = 1000};
    bl_pid pid;
    if (c->kind == 0) {
        (void)bl_dynamic_supervisor_start_child(c->sup, &spec, &pid);
    } else if (c->kind == 1) {
        spec.restart = BL_RESTART_TEMPORARY;
        (void)bl_supervisor_start_child(c->sup, &spec, &pid);
    } else {
        bl_task t;
        void *nap = (void *)(intptr_t)(c->seq % 3);
        if (bl_task_supervisor_async_nolink(c->sup, &t, task_nap, nap) == 0) chaos_await(&t);
    }
}

/* ---- the intensity check ---- */

/* fragile's children never fail to start: each restart is one kill's. */
static int fragile_start(void *arg, bl_pid *pid)
{
    (void)arg;
    return bl_spawn_link(pid, chaos_idle, NULL, NULL) == 0 ? 0 : -EIO;
}

static const bl_child_spec fragile_kids[] = {
    {.id = "f1", .start = fragile_start, .shutdown = BL_SHUTDOWN_BRUTAL_KILL},
    {.id = "f2", .start = fragile_start, .shutdown = BL_SHUTDOWN_BRUTAL_KILL}};

/* The running pid of sup's child i other than not, waiting (bounded) for a restart. */
static bl_pid child_of(bl_pid sup, int i, bl_pid not )
{
    bl_sup_child kids[2];
    for (int64_t until = chaos_ms() + 5000; chaos_ms() < until;) {
        int n = bl_supervisor_which_children(sup, kids, 2);
        if (n < 0) return BL_PID_NONE;
        if (n > i && kids[i].status == BL_CHILD_RUNNING && kids[i].pid != not ) return kids[i].pid;
        bl_yield();
    }
    return BL_PID_NONE;
}

/*
 * Three kills within 60 s are one more than fragile's intensity (2): it
 * must give up, with reason shutdown.  Each kill waits for the restart of
 * the one before, so that every kill is a death the supervisor sees.
 * Returns true when it gave up as it should.
 */
static bool fragile_round(chaos_run *r, chaos_rng *g)
{
    bl_pid sup;
    bl_sup_opts o = {.max_restarts = 2, .max_seconds = 60};
    int rc = bl_supervisor_start_link(&sup, fragile_kids, 2, &o);
    if (rc != 0) {
        chaos_fail(r, "restart_storm: fragile did not start: %d", rc);
        return false;
    }
    bl_ref ref;
    bl_monitor(sup, &ref);
    for (int k = 0; k < 3; k++) {
        int i = (int)chaos_below(g, 2);
        bl_pid victim = child_of(sup, i, BL_PID_NONE);
        if (victim == BL_PID_NONE) break;
        bl_exit_pid(victim, &BL_REASON(BL_KILL));
        if (k < 2 && child_of(sup, i, victim) == BL_PID_NONE) break;
    }
    bl_msg *m = NULL;
    bool ok = false;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) == 0) {
        bl_reason why;
        ok = bl_msg_reason(m, &why) == 0 && why.kind == BL_SHUTDOWN;
        if (!ok) {
            char txt[64];
            bl_reason_format(&why, txt, sizeof txt);
            chaos_fail(r, "restart_storm: fragile exited with %s, not shutdown", txt);
        }
        bl_msg_free(m);
    } else {
        chaos_fail(r, "restart_storm: fragile outlived three kills (intensity 2)");
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
        bl_supervisor_stop(sup, NULL, 10000);
    }
    /* Its EXIT (we trap exits). */
    uint32_t tag = BL_TAG_EXIT;
    while (bl_recv(&m, bl_match_tag, &tag, 0, 0) == 0) bl_msg_free(m);
    return ok;
}

/* A live worker from the roster (a few random looks), or BL_PID_NONE. */
static bl_pid some_worker(chaos_rng *g)
{
    for (int i = 0; i < 64; i++) {
        bl_pid w = atomic_load(&roster[chaos_below(g, ROSTER)]);
        if (w != BL_PID_NONE) return w;
    }
    return BL_PID_NONE;
}

void chaos_restart_storm(chaos_run *r)
{
    int c_restarts = chaos_counter(r, CHAOS_WORK, "worker_starts");
    int c_calls = chaos_counter(r, CHAOS_WORK, "calls");
    int k_worker = chaos_counter(r, CHAOS_FAULT, "worker_kill");
    int k_crash = chaos_counter(r, CHAOS_FAULT, "worker_crash");
    int k_sup = chaos_counter(r, CHAOS_FAULT, "sup_kill");
    int k_caller = chaos_counter(r, CHAOS_FAULT, "caller_kill");
    int k_fragile = chaos_counter(r, CHAOS_FAULT, "fragile_kills");
    int i_gaveup = chaos_counter(r, CHAOS_INFO, "fragile_gave_up");
    for (int i = 0; i < ROSTER; i++) atomic_store(&roster[i], BL_PID_NONE);
    atomic_store(&storming, false);
    atomic_store(&init_seq, 0);
    chaos_rng g = chaos_rng_for(r, 1);
    bl_trap_exit(true);

    bl_pid top;
    bl_sup_opts o = {.max_restarts = 1000, .max_seconds = 1};
    int rc = bl_supervisor_start_link(&top, top_kids, NTOP, &o);
    if (rc != 0) {
        chaos_fail(r, "restart_storm: the tree did not start: %d", rc);
        bl_trap_exit(false);
        return;
    }
    bl_ref top_ref;
    bl_monitor(top, &top_ref);
    uint64_t seq0 = atomic_load(&init_seq);
    atomic_store(&storming, true);

    bl_pid callers[CALLERS] = {0};
    int64_t next_fragile = chaos_ms() + 200;
    for (int k = 0; k < 10000000 && chaos_running(r); k++) {
        chaos_delay_us((int64_t)chaos_below(&g, 3001));
        uint64_t x = chaos_below(&g, 100);
        if (x < 55) {
            bl_pid w = some_worker(&g);
            if (w == BL_PID_NONE) continue;
            bl_exit_pid(w, &BL_REASON(BL_KILL));
            chaos_add(r, k_worker, 1);
        } else if (x < 70) {
            bl_pid w = some_worker(&g);
            if (w == BL_PID_NONE) continue;
            bl_send(w, T_CRASH, NULL, 0);
            chaos_add(r, k_crash, 1);
        } else if (x < 73) {
            bl_pid s = sub_pid(top, top_kids[chaos_below(&g, NTOP)].id);
            if (s == BL_PID_NONE) continue;
            bl_exit_pid(s, &BL_REASON(BL_KILL));
            chaos_add(r, k_sup, 1);
        } else {
            /* A caller, killed in its call 0-2 ms after it starts. */
            unsigned i = (unsigned)chaos_below(&g, CALLERS);
            if (callers[i]) chaos_kill_wait(callers[i], 10000);
            callers[i] = BL_PID_NONE;
            int kind = (int)chaos_below(&g, 3);
            bl_pid sup = sub_pid(top, kind == 0 ? "dyn" : kind == 1 ? "ofo" : "tasks");
            if (sup == BL_PID_NONE) continue;
            cargs[i] = (caller_arg){kind, sup, (unsigned)k, (bl_restart)chaos_below(&g, 3)};
            if (bl_spawn(&callers[i], caller, &cargs[i], NULL) != 0) continue;
            chaos_add(r, c_calls, 1);
            chaos_delay_us((int64_t)chaos_below(&g, 2001));
            bl_exit_pid(callers[i], &BL_REASON(BL_KILL));
            chaos_add(r, k_caller, 1);
        }
        if (chaos_ms() >= next_fragile) {
            chaos_add(r, i_gaveup, fragile_round(r, &g));
            chaos_add(r, k_fragile, 3);
            next_fragile = chaos_ms() + 200;
        }
        /* top's EXITs never come while it lives; other links' do not exist. */
        uint32_t tag = BL_TAG_EXIT;
        bl_msg *m;
        while (bl_recv(&m, bl_match_tag, &tag, 0, 0) == 0) bl_msg_free(m);
    }

    /* top lived through it (its intensity is far above the storm's rate). */
    bl_msg *down = NULL;
    if (bl_recv(&down, bl_match_ref, &top_ref, 0, 0) == 0) {
        chaos_fail(r, "restart_storm: top died during the storm");
        bl_msg_free(down);
    } else {
        bl_demonitor(top_ref, BL_DEMONITOR_FLUSH);
    }
    chaos_add(r, c_restarts, atomic_load(&init_seq) - seq0);
    atomic_store(&storming, false);
    for (int i = 0; i < CALLERS; i++)
        if (callers[i]) chaos_kill_wait(callers[i], 10000);
    bl_ref ref;
    if (bl_monitor(top, &ref) == 0) {
        rc = bl_supervisor_stop(top, NULL, 60000);
        if (rc != 0 && rc != -ESRCH) chaos_fail(r, "restart_storm: stopping top: %d", rc);
        if (chaos_wait_down(ref, 30000) != 0) chaos_fail(r, "restart_storm: top did not stop");
    }
    chaos_flush();
    bl_trap_exit(false);
    for (int i = 0; i < ROSTER; i++)
        if (atomic_load(&roster[i]) != BL_PID_NONE) {
            chaos_fail(r, "restart_storm: a worker outlived its tree");
            break;
        }
}
