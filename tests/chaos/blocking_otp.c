/*
 * tests/chaos/blocking_otp.c - the blocking calls of beamline/gen_server.h,
 * beamline/supervisor.h (and dynamic_supervisor.h) and beamline/task.h
 * (and task_supervisor.h) for blocking_calls.
 *
 * The other side of each call is made slow so that the victim waits in
 * it: a server whose handle_call waits up to 2 ms for a release (the
 * poke), a terminate that sleeps, child start functions that sleep 1 ms
 * (so start_child, restarts and which_children behind them wait), children
 * that trap exits and take 1 ms to stop, tasks that nap.  Heap copies the
 * calls make (a child spec's argument, a large request) must go with a
 * killed caller: the ASan build's leak check sees them otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocking.h"

enum { T_ASK = 1, T_RELEASE = 0x4300 };

/* Traps exits, waits for an exit signal, then takes a millisecond to go. */
static void trap_and_linger(void)
{
    bl_trap_exit(true);
    uint32_t tag = BL_TAG_EXIT;
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0) == 0) bl_msg_free(m);
    bl_sleep(1);
}

/* Traps exits, and takes a millisecond to stop when told to. */
static void slow_exit_child(void *arg)
{
    (void)arg;
    trap_and_linger();
}

/* Child start functions: a millisecond's work first (the supervisor waits). */
static int slow_start(void *arg, bl_pid *pid)
{
    (void)arg;
    bl_sleep(1);
    return bl_spawn_link(pid, chaos_idle, NULL, NULL) == 0 ? 0 : -EIO;
}

static int slow_exit_start(void *arg, bl_pid *pid)
{
    (void)arg;
    return bl_spawn_link(pid, slow_exit_child, NULL, NULL) == 0 ? 0 : -EIO;
}

static char blob[100]; /* a child spec's argument, copied by the call (arg_len) */

/* Stops a supervisor linked to the killer, or kills it if it will not go. */
static void stop_sup(bl_pid *sup)
{
    if (*sup == BL_PID_NONE) return;
    bl_ref ref;
    if (bl_monitor(*sup, &ref) == 0) {
        bl_supervisor_stop(*sup, NULL, 10000);
        if (chaos_wait_down(ref, 10000) != 0) chaos_kill_wait(*sup, 10000);
    }
    *sup = BL_PID_NONE;
}

/* ---- gen_server ---- */

static void gs_init(void *arg, void **state, bl_gs_result *r)
{
    (void)r;
    if (arg) bl_sleep(1); /* a slow init: start_link waits */
    *state = malloc(64);
}

/* Blocked: waits (up to 2 ms) for a release before it answers. */
static void gs_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    (void)m;
    uint32_t tag = T_RELEASE;
    bl_msg *x = NULL;
    if (bl_recv(&x, bl_match_tag, &tag, 2, 0) == 0) bl_msg_free(x);
    bl_gs_reply(r, "ok", 2);
}

static void gs_terminate(void **state, const bl_reason *why)
{
    (void)state;
    (void)why;
    bl_sleep(1);
}

static void gs_release(void *state)
{
    free(state);
}

static const bl_gen_server blocker = {
    .init = gs_init,
    .handle_call = gs_call,
    .terminate = gs_terminate,
    .release = gs_release,
};

static int s_server(bc_fix *x)
{
    return bl_gen_server_start(&x->server, &blocker, NULL, NULL);
}

static void t_server(bc_fix *x)
{
    if (x->server != BL_PID_NONE && bl_gen_server_stop(x->server, NULL, 10000) != 0)
        chaos_kill_wait(x->server, 10000);
    x->server = BL_PID_NONE;
}

static void p_size(bc_fix *x)
{
    /* A small request, or one over the slab's classes (a heap copy). */
    x->param = chaos_one_in(&x->g, 2) ? 100 : 8192;
}

static void poke_release(bc_fix *x)
{
    bl_send(x->server, T_RELEASE, NULL, 0);
}

static char request[8192];

static void e_call(bc_fix *x)
{
    bl_msg *reply = NULL;
    if (bl_gen_server_call(x->server, T_ASK, request, (size_t)x->param, &reply, BL_INFINITY) == 0)
        bl_msg_free(reply);
}

static void e_call_tmo(bc_fix *x)
{
    for (int i = 0; i < 100000; i++) {
        bl_msg *reply = NULL;
        int rc = bl_gen_server_call(x->server, T_ASK, request, (size_t)x->param, &reply, 1);
        if (rc == 0 || rc == -ECONNRESET) bl_msg_free(reply);
        if (rc != -ETIMEDOUT && rc != 0) break;
    }
}

/* stop: a fresh server each time, whose terminate sleeps. */
static void p_stop_server(bc_fix *x)
{
    if (bl_gen_server_start(&x->server, &blocker, NULL, NULL) != 0) x->server = BL_PID_NONE;
}

static void e_stop(bc_fix *x)
{
    (void)bl_gen_server_stop(x->server, NULL, BL_INFINITY);
}

static void a_stop_server(bc_fix *x)
{
    chaos_kill_wait(x->server, 10000);
    x->server = BL_PID_NONE;
}

/* start_link with a slow init: killed, the starter takes the server with it (the link). */
static void e_start_link(bc_fix *x)
{
    (void)x;
    bl_pid pid;
    (void)bl_gen_server_start_link(&pid, &blocker, (void *)1, NULL);
}

/* ---- supervisor ---- */

static int s_sup(bc_fix *x)
{
    bl_child_spec kids[2] = {
        {.id = "slow", .start = slow_start, .arg = blob, .arg_len = sizeof blob},
        {.id = "r", .start = slow_start, .restart = BL_RESTART_TRANSIENT},
    };
    bl_sup_opts o = {.max_restarts = 1000000, .max_seconds = 1};
    return bl_supervisor_start_link(&x->sup, kids, 2, &o);
}

static void t_sup(bc_fix *x)
{
    stop_sup(&x->sup);
}

static void p_id(bc_fix *x)
{
    snprintf(x->id, sizeof x->id, "c%u", x->seq);
}

static void e_sup_start_child(bc_fix *x)
{
    bl_child_spec spec = {.id = x->id,
                          .start = slow_start,
                          .arg = blob,
                          .arg_len = sizeof blob,
                          .restart = BL_RESTART_TEMPORARY};
    bl_pid pid;
    (void)bl_supervisor_start_child(x->sup, &spec, &pid);
}

static void a_terminate_id(bc_fix *x)
{
    (void)bl_supervisor_terminate_child(x->sup, x->id);
}

/* terminate_child: a child that takes its time to stop. */
static void p_slow_child(bc_fix *x)
{
    p_id(x);
    bl_child_spec spec = {
        .id = x->id, .start = slow_exit_start, .restart = BL_RESTART_TEMPORARY, .shutdown = 1000};
    (void)bl_supervisor_start_child(x->sup, &spec, NULL);
}

static void e_sup_terminate(bc_fix *x)
{
    (void)bl_supervisor_terminate_child(x->sup, x->id);
}

/* which_children while the supervisor restarts a child slowly. */
static void p_kill_slow(bc_fix *x)
{
    bl_sup_child kids[2];
    int n = bl_supervisor_which_children(x->sup, kids, 2);
    if (n >= 1 && kids[0].status == BL_CHILD_RUNNING) bl_exit_pid(kids[0].pid, &BL_REASON(BL_KILL));
}

static void e_which(bc_fix *x)
{
    bl_sup_child kids[4];
    (void)bl_supervisor_which_children(x->sup, kids, 4);
}

/* restart_child of a child terminated just before. */
static void p_terminate_r(bc_fix *x)
{
    (void)bl_supervisor_terminate_child(x->sup, "r");
}

static void e_restart(bc_fix *x)
{
    bl_pid pid;
    (void)bl_supervisor_restart_child(x->sup, "r", &pid);
}

/* stop: a fresh supervisor each time, with children slow to stop. */
static void p_sub(bc_fix *x)
{
    bl_child_spec kids[3] = {
        {.id = "a", .start = slow_exit_start, .shutdown = 1000},
        {.id = "b", .start = slow_exit_start, .shutdown = 1000},
        {.id = "c", .start = slow_start, .arg = blob, .arg_len = sizeof blob},
    };
    if (bl_supervisor_start_link(&x->sub, kids, 3, NULL) != 0) x->sub = BL_PID_NONE;
}

static void e_sup_stop(bc_fix *x)
{
    (void)bl_supervisor_stop(x->sub, NULL, BL_INFINITY);
}

static void a_sub(bc_fix *x)
{
    stop_sup(&x->sub);
}

/* ---- dynamic supervisor ---- */

static int s_dsup(bc_fix *x)
{
    bl_dynsup_opts o = {.max_restarts = 1000000, .max_seconds = 1};
    return bl_dynamic_supervisor_start_link(&x->dsup, &o);
}

static void t_dsup(bc_fix *x)
{
    stop_sup(&x->dsup);
}

static void e_dsup_start_child(bc_fix *x)
{
    bl_child_spec spec = {
        .start = slow_start, .arg = blob, .arg_len = sizeof blob, .restart = BL_RESTART_TEMPORARY};
    bl_pid pid;
    (void)bl_dynamic_supervisor_start_child(x->dsup, &spec, &pid);
}

/* The children started by killed callers pile up: terminate them now and then. */
static void a_dsup_trim(bc_fix *x)
{
    if (x->seq % 32) return;
    bl_sup_child kids[64];
    int n = bl_dynamic_supervisor_which_children(x->dsup, kids, 64);
    for (int i = 0; i < n && i < 64; i++)
        bl_dynamic_supervisor_terminate_child(x->dsup, kids[i].pid);
}

static void p_dsup_slow_child(bc_fix *x)
{
    bl_child_spec spec = {
        .start = slow_exit_start, .restart = BL_RESTART_TEMPORARY, .shutdown = 1000};
    if (bl_dynamic_supervisor_start_child(x->dsup, &spec, &x->server) != 0) x->server = BL_PID_NONE;
}

static void e_dsup_terminate(bc_fix *x)
{
    (void)bl_dynamic_supervisor_terminate_child(x->dsup, x->server);
}

static void a_dsup_child(bc_fix *x)
{
    chaos_kill_wait(x->server, 10000);
    x->server = BL_PID_NONE;
}

/* ---- task ---- */

static void task_nap(void *arg, bl_task_out *out)
{
    bl_sleep((int64_t)(intptr_t)arg);
    bl_task_return(out, "r", 1);
}

/* Traps exits and takes a millisecond to go when shut down. */
static void task_trapper(void *arg, bl_task_out *out)
{
    (void)arg;
    (void)out;
    trap_and_linger();
}

static void p_nap(bc_fix *x)
{
    x->param = (int64_t)chaos_below(&x->g, 3);
}

static void e_await(bc_fix *x)
{
    bl_task t;
    if (bl_task_async(&t, task_nap, (void *)(intptr_t)x->param, NULL) == 0) chaos_await(&t);
}

static void e_yield(bc_fix *x)
{
    bl_task t;
    if (bl_task_async(&t, task_nap, (void *)(intptr_t)(x->param + 1), NULL) != 0) return;
    for (int i = 0; i < 100000; i++) {
        bl_task_result res = {0};
        int st = bl_task_yield(&t, 1, &res);
        bl_task_result_free(&res);
        if (st != BL_TASK_NIL) break;
    }
}

static void e_shutdown(bc_fix *x)
{
    (void)x;
    bl_task t;
    if (bl_task_async(&t, task_trapper, NULL, NULL) != 0) return;
    bl_yield(); /* let it trap exits first, most of the time */
    bl_task_result res = {0};
    (void)bl_task_shutdown(&t, 5000, &res);
    bl_task_result_free(&res);
}

static void e_await_many(bc_fix *x)
{
    bl_task t[4];
    bl_task_result res[4];
    memset(res, 0, sizeof res);
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        if (bl_task_async(&t[n], task_nap, (void *)(intptr_t)((x->param + (int64_t)i) % 3), NULL) ==
            0)
            n++;
    (void)bl_task_await_many(t, n, BL_INFINITY, res);
    for (size_t i = 0; i < n; i++) bl_task_result_free(&res[i]);
}

static void e_yield_many(bc_fix *x)
{
    bl_task t[4];
    bool done[4] = {false};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        if (bl_task_async(&t[n], task_nap, (void *)(intptr_t)((x->param + (int64_t)i) % 3 + 1),
                          NULL) == 0)
            n++;
    size_t left = n;
    for (int round = 0; round < 100000 && left; round++) {
        /* The tasks that have not answered yet, packed. */
        bl_task live[4];
        size_t map[4], k = 0;
        for (size_t i = 0; i < n; i++)
            if (!done[i]) {
                live[k] = t[i];
                map[k++] = i;
            }
        bl_task_result res[4];
        memset(res, 0, sizeof res);
        if (bl_task_yield_many(live, k, 1, res, NULL) < 0) break;
        for (size_t j = 0; j < k; j++) {
            if (res[j].status != BL_TASK_NIL) {
                done[map[j]] = true;
                left--;
            } else {
                t[map[j]] = live[j]; /* still running: the struct stays usable */
            }
            bl_task_result_free(&res[j]);
        }
    }
}

static void stream_item(void *ctx, void *item, bl_task_out *out)
{
    (void)ctx;
    int v = *(int *)item;
    bl_sleep(v % 3);
    bl_task_return(out, &v, sizeof v);
}

/*
 * Takes up to 100 results from s, until it ends.  With leave >= 0, stops
 * right after result number leave and returns false (the caller is to
 * leave without closing s); otherwise returns true.
 */
static bool take_items(bl_task_stream *s, int leave)
{
    for (int i = 0; i < 100; i++) {
        bl_task_result res = {0};
        int rc = bl_task_stream_next(s, &res);
        bl_task_result_free(&res);
        if (rc != 1) break;
        if (i == leave) return false;
    }
    return true;
}

static const int items[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void e_stream(bc_fix *x)
{
    (void)x;
    bl_task_stream *s;
    bl_task_stream_opts o = {.max_concurrency = 4};
    if (bl_task_stream_open(&s, items, 16, sizeof(int), stream_item, NULL, &o) != 0) return;
    if (take_items(s, -1)) bl_task_stream_close(s);
}

/* A stream killed in its close: the tasks (still running) are being killed. */
static void e_stream_close(bc_fix *x)
{
    (void)x;
    bl_task_stream *s;
    bl_task_stream_opts o = {.max_concurrency = 8};
    if (bl_task_stream_open(&s, items, 16, sizeof(int), stream_item, NULL, &o) != 0) return;
    bl_task_result res = {0};
    bl_task_stream_next(s, &res);
    bl_task_result_free(&res);
    bl_task_stream_close(s);
}

/* A generator's items, 40 bytes each (past the inline copy). */
typedef struct big_item {
    int v;
    char pad[36];
} big_item;

static int gen_items(void *state, void *item)
{
    int *n = state;
    if (*n >= 16) return 0;
    big_item b = {.v = (*n)++};
    memcpy(item, &b, sizeof b);
    return 1;
}

static void gen_item(void *ctx, void *item, bl_task_out *out)
{
    (void)ctx;
    big_item b;
    memcpy(&b, item, sizeof b);
    bl_sleep(b.v % 3);
    bl_task_return(out, &b.v, sizeof b.v);
}

/* A generator stream, unordered; the consumer may also just return without closing. */
static void e_stream_gen(bc_fix *x)
{
    int n = 0;
    bl_task_stream *s;
    bl_task_stream_opts o = {.max_concurrency = 4, .unordered = true};
    if (bl_task_stream_open_gen(&s, gen_items, &n, sizeof(big_item), gen_item, NULL, &o) != 0)
        return;
    /* With param 0, gone without close after 3 items: the stream goes with us. */
    if (take_items(s, x->param == 0 ? 2 : -1)) bl_task_stream_close(s);
}

/* ---- task supervisor ---- */

static int s_tsup(bc_fix *x)
{
    return bl_task_supervisor_start_link(&x->tsup, NULL);
}

static void t_tsup(bc_fix *x)
{
    stop_sup(&x->tsup);
}

static void e_tsup_nolink(bc_fix *x)
{
    bl_task t;
    if (bl_task_supervisor_async_nolink(x->tsup, &t, task_nap, (void *)(intptr_t)x->param) == 0)
        chaos_await(&t);
}

/* A supervisor's stream: its tasks are not linked to the consumer. */
static void e_tsup_stream(bc_fix *x)
{
    bl_task_stream *s;
    if (bl_task_supervisor_stream(&s, &x->tsup, items, 16, sizeof(int), stream_item, NULL, NULL) !=
        0)
        return;
    if (take_items(s, -1)) bl_task_stream_close(s);
}

static void e_tsup_children(bc_fix *x)
{
    bl_pid kids[8];
    for (int i = 0; i < 100000; i++)
        if (bl_task_supervisor_children(x->tsup, kids, 8) < 0) break;
}

static void e_tsup_async(bc_fix *x)
{
    bl_task t;
    if (bl_task_supervisor_async(x->tsup, &t, task_nap, (void *)(intptr_t)x->param) == 0)
        chaos_await(&t);
}

const bc_call bc_otp_calls[] = {
    {"gen_server.h", "bl_gen_server_call (server blocked)", s_server, p_size, e_call, poke_release,
     NULL, t_server},
    {"gen_server.h", "bl_gen_server_call (1 ms timeout, looped)", s_server, p_size, e_call_tmo,
     poke_release, NULL, t_server},
    {"gen_server.h", "bl_gen_server_stop (slow terminate)", NULL, p_stop_server, e_stop, NULL,
     a_stop_server, NULL},
    {"gen_server.h", "bl_gen_server_start_link (slow init)", NULL, NULL, e_start_link, NULL, NULL,
     NULL},
    {"supervisor.h", "bl_supervisor_start_child (slow start)", s_sup, p_id, e_sup_start_child, NULL,
     a_terminate_id, t_sup},
    {"supervisor.h", "bl_supervisor_terminate_child (slow stop)", s_sup, p_slow_child,
     e_sup_terminate, NULL, a_terminate_id, t_sup},
    {"supervisor.h", "bl_supervisor_which_children (restarting)", s_sup, p_kill_slow, e_which, NULL,
     NULL, t_sup},
    {"supervisor.h", "bl_supervisor_restart_child (slow start)", s_sup, p_terminate_r, e_restart,
     NULL, NULL, t_sup},
    {"supervisor.h", "bl_supervisor_stop (children slow to stop)", NULL, p_sub, e_sup_stop, NULL,
     a_sub, NULL},
    {"dynamic_sup.h", "bl_dynamic_supervisor_start_child (slow)", s_dsup, NULL, e_dsup_start_child,
     NULL, a_dsup_trim, t_dsup},
    {"dynamic_sup.h", "bl_dynamic_supervisor_terminate_child", s_dsup, p_dsup_slow_child,
     e_dsup_terminate, NULL, a_dsup_child, t_dsup},
    {"task.h", "bl_task_await", NULL, p_nap, e_await, NULL, NULL, NULL},
    {"task.h", "bl_task_yield (1 ms, looped)", NULL, p_nap, e_yield, NULL, NULL, NULL},
    {"task.h", "bl_task_shutdown (task traps exits)", NULL, NULL, e_shutdown, NULL, NULL, NULL},
    {"task.h", "bl_task_await_many (4 tasks)", NULL, p_nap, e_await_many, NULL, NULL, NULL},
    {"task.h", "bl_task_yield_many (4 tasks, 1 ms, looped)", NULL, p_nap, e_yield_many, NULL, NULL,
     NULL},
    {"task.h", "bl_task_stream_next (16 items, 4 at once)", NULL, NULL, e_stream, NULL, NULL, NULL},
    {"task.h", "bl_task_stream_close (tasks running)", NULL, NULL, e_stream_close, NULL, NULL,
     NULL},
    {"task.h", "bl_task_stream_next (generator, or no close)", NULL, p_nap, e_stream_gen, NULL,
     NULL, NULL},
    {"task_sup.h", "bl_task_supervisor_async_nolink + await", s_tsup, p_nap, e_tsup_nolink, NULL,
     NULL, t_tsup},
    {"task_sup.h", "bl_task_supervisor_async + await", s_tsup, p_nap, e_tsup_async, NULL, NULL,
     t_tsup},
    {"task_sup.h", "bl_task_supervisor_stream (nolink tasks)", s_tsup, NULL, e_tsup_stream, NULL,
     NULL, t_tsup},
    {"task_sup.h", "bl_task_supervisor_children (looped)", s_tsup, NULL, e_tsup_children, NULL,
     NULL, t_tsup},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
