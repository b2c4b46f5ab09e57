/*
 * A process killed while it waits in a behaviour's call leaves nothing
 * behind: the heap copies a call holds across its wait (a child spec with
 * its argument, a large gen_server or agent request) are freed with it.
 * The leak this guards against shows as a LeakSanitizer report in the ASan
 * build; every build checks the calls still work after the kills.
 */
#include <errno.h>

#include "beamline/agent.h"
#include "beamline/dynamic_supervisor.h"
#include "beamline/registry.h"
#include "beamline/task_supervisor.h"
#include "bl_test.h"

enum { T_ENTERED = 1, T_RELEASE, T_DONE };

static bl_pid g_test;
static _Atomic int g_block; /* 1: a child's start waits for T_RELEASE */

/* The children: wait until the runtime stops. */
static void child(void *arg)
{
    bl_msg_free(bl_test_recv_tag(T_DONE, BL_INFINITY));
}

/* A start that tells the test it runs, then (when asked to) waits. */
static int start_slow(void *arg, bl_pid *pid)
{
    bl_send(g_test, T_ENTERED, NULL, 0);
    if (atomic_load(&g_block)) bl_msg_free(bl_test_recv_tag(T_RELEASE, 10000));
    return bl_spawn_link(pid, child, NULL, NULL) == 0 ? 0 : -EIO;
}

typedef struct call_ctx {
    bl_pid sup;
    char arg[100]; /* copied into the request: the 120-byte heap copy */
} call_ctx;

static void caller(void *arg)
{
    call_ctx *c = arg;
    bl_child_spec spec = {.start = start_slow,
                          .arg = c->arg,
                          .arg_len = sizeof c->arg,
                          .restart = BL_RESTART_TEMPORARY};
    bl_pid pid;
    bl_dynamic_supervisor_start_child(c->sup, &spec, &pid);
    bl_send(g_test, T_DONE, NULL, 0);
}

static void kill_and_wait(bl_pid pid)
{
    bl_ref ref;
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(pid, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
}

static void start_child_main(void *arg)
{
    g_test = bl_self();
    bl_pid sup;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
    call_ctx c = {.sup = sup};
    memset(c.arg, 'x', sizeof c.arg);
    for (int i = 0; i < BL_SCALE(50); i++) {
        atomic_store(&g_block, 1);
        bl_pid who;
        BL_CHECK_EQ(bl_spawn(&who, caller, &c, NULL), 0);
        /* The supervisor runs the child's start: the caller waits in its call. */
        bl_msg_free(bl_test_recv_tag(T_ENTERED, 5000));
        kill_and_wait(who);
        atomic_store(&g_block, 0);
        BL_CHECK_EQ(bl_send(sup, T_RELEASE, NULL, 0), 0);
    }
    /* The supervisor is unharmed: a caller that lives gets its child. */
    bl_pid who;
    BL_CHECK_EQ(bl_spawn(&who, caller, &c, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_ENTERED, 5000));
    BL_CHECK(bl_test_recv_tag(T_DONE, 5000) != NULL);
    bl_sup_counts n;
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &n), 0);
    BL_CHECK_EQ(n.active, BL_SCALE(50) + 1);
}

Test(kill_in_call, start_child_request_freed_with_its_caller, .timeout = 120)
{
    bl_test_run(NULL, start_child_main, NULL);
}

/*
 * The supervisor itself killed in the middle of a call's work: while it
 * runs a child's start (holding its copy of the spec's arg), and while it
 * waits for its children to stop (holding the list of them).
 */
static void stubborn_child(void *arg)
{
    bl_trap_exit(true); /* shutdown becomes a message it never reads */
    bl_msg_free(bl_test_recv_tag(T_DONE, BL_INFINITY));
}

static int start_stubborn(void *arg, bl_pid *pid)
{
    return bl_spawn_link(pid, stubborn_child, NULL, NULL) == 0 ? 0 : -EIO;
}

static void stopper(void *arg)
{
    bl_supervisor_stop(*(bl_pid *)arg, NULL, BL_INFINITY);
}

static void sup_killed_main(void *arg)
{
    g_test = bl_self();
    bl_trap_exit(true); /* the supervisors are linked to us */
    for (int i = 0; i < BL_SCALE(20); i++) {
        bl_pid sup;
        BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
        /* In a start: the arg's copy (100 bytes) is the supervisor's. */
        atomic_store(&g_block, 1);
        call_ctx c = {.sup = sup};
        BL_CHECK_EQ(bl_spawn(NULL, caller, &c, NULL), 0);
        bl_msg_free(bl_test_recv_tag(T_ENTERED, 5000));
        kill_and_wait(sup);
        BL_CHECK(bl_test_recv_tag(T_DONE, 5000) != NULL);
        atomic_store(&g_block, 0);
        /* Stopping children that do not stop: killed while it waits for them. */
        BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
        bl_child_spec spec = {.start = start_stubborn, .shutdown = 60000};
        for (int k = 0; k < 3; k++)
            BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &spec, NULL), 0);
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(sup, &ref), 0);
        BL_CHECK_EQ(bl_spawn(NULL, stopper, &sup, NULL), 0);
        /* It is in its terminate once it has told its children to stop. */
        for (int k = 0; k < 1000; k++) {
            bl_proc_info in;
            if (bl_process_info(sup, &in) != 0 || in.status == BL_PROC_WAITING) break;
            bl_yield();
        }
        bl_sleep(5);
        bl_reason kill = BL_REASON(BL_KILL);
        BL_CHECK_EQ(bl_exit_pid(sup, &kill), 0);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
        uint32_t tag = BL_TAG_EXIT;
        bl_msg *m;
        while (bl_recv(&m, bl_match_tag, &tag, 0, 0) == 0) bl_msg_free(m);
    }
}

Test(kill_in_call, supervisor_killed_in_its_work_leaks_nothing, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, sup_killed_main, NULL);
}

/*
 * A kill already queued when a call begins: the call's first look at the
 * mailbox (a receive mark, a receive) acts on it and the caller dies there.
 * Whatever the call allocated before that look must go with it.  The victim
 * runs on the other scheduler and spins, touching no runtime function,
 * until the kill is queued; then it calls.
 */
typedef struct queued_kill {
    _Atomic int ready, go;
    int which;
} queued_kill;

enum { Q_GS_START, Q_REGISTRY_START, Q_AWAIT_MANY, Q_YIELD_MANY, Q_STREAM, Q_TSUP_CHILDREN, Q_N };

static void nap_task(void *arg, bl_task_out *out)
{
    bl_sleep(50);
    bl_task_return(out, "x", 1);
}

static void stream_item(void *ctx, void *item, bl_task_out *out)
{
    bl_sleep(50);
    bl_task_return(out, item, sizeof(int));
}

static void gs_init(void *arg, void **state, bl_gs_result *r)
{
    *state = NULL;
}

static const bl_gen_server quiet_server = {.init = gs_init};

static bl_pid q_tsup;

static void queued_victim(void *arg)
{
    queued_kill *q = arg;
    bl_task t[2];
    bl_task_result res[2] = {{0}};
    /* Started before the spin: the spin is the victim's last instruction
     * outside the runtime before the call under test. */
    if (q->which == Q_AWAIT_MANY || q->which == Q_YIELD_MANY)
        for (int i = 0; i < 2; i++) bl_task_async(&t[i], nap_task, NULL, NULL);
    atomic_store(&q->ready, 1);
    while (!atomic_load(&q->go)) {
    }
    switch (q->which) {
    case Q_GS_START: {
        bl_pid pid;
        bl_gen_server_start_link(&pid, &quiet_server, NULL, NULL);
        break;
    }
    case Q_REGISTRY_START: {
        bl_registry *reg;
        bl_registry_start_link(NULL, &reg);
        break;
    }
    case Q_AWAIT_MANY:
        bl_task_await_many(t, 2, 5000, res);
        break;
    case Q_YIELD_MANY:
        bl_task_yield_many(t, 2, 5000, res, NULL);
        break;
    case Q_STREAM: {
        static const int items[4] = {1, 2, 3, 4};
        bl_task_stream *s;
        if (bl_task_stream_open(&s, items, 4, sizeof(int), stream_item, NULL, NULL) == 0) {
            bl_task_stream_next(s, &res[0]);
            bl_task_stream_close(s);
        }
        break;
    }
    case Q_TSUP_CHILDREN: {
        bl_pid kids[4];
        bl_task_supervisor_children(q_tsup, kids, 4);
        break;
    }
    }
    g_test = BL_PID_NONE; /* reached only if the kill was not acted upon: a failure */
}

/*
 * The driver: high priority on scheduler 0, where it stays (only normal
 * processes are stolen), so a victim spinning on scheduler 1 never holds it.
 */
static void queued_driver(void *arg)
{
    g_test = bl_self();
    BL_CHECK_EQ(bl_task_supervisor_start_link(&q_tsup, NULL), 0);
    for (int which = 0; which < Q_N; which++) {
        for (int round = 0; round < 10; round++) {
            queued_kill q = {.which = which};
            bl_spawn_opts other = {.scheduler = 2};
            bl_pid v;
            bl_ref ref;
            BL_CHECK_EQ(bl_spawn_monitor(&v, &ref, queued_victim, &q, &other), 0);
            for (int64_t t0 = bl_test_ms(); !atomic_load(&q.ready) && bl_test_ms() - t0 < 5000;)
                bl_yield();
            bl_reason kill = BL_REASON(BL_KILL);
            BL_CHECK_EQ(bl_exit_pid(v, &kill), 0);
            atomic_store(&q.go, 1);
            bl_msg *down = bl_test_recv_tag(BL_TAG_DOWN, 5000);
            BL_CHECK(down != NULL);
            bl_reason why;
            BL_CHECK(down && bl_msg_reason(down, &why) == 0 && why.kind == BL_KILLED);
            bl_msg_free(down);
            BL_CHECK_EQ(g_test, bl_self());
        }
    }
    bl_supervisor_stop(q_tsup, NULL, 5000);
}

static void queued_main(void *arg)
{
    if (bl_schedulers() < 2) return;
    bl_spawn_opts first = {.scheduler = 1, .priority = BL_PRIO_HIGH};
    bl_pid d;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&d, &ref, queued_driver, NULL, &first), 0);
    BL_CHECK(bl_test_recv_tag(BL_TAG_DOWN, 100000) != NULL);
}

Test(kill_in_call, kill_queued_before_the_call_leaks_nothing, .timeout = 120)
{
    bl_test_run(NULL, queued_main, NULL);
}
