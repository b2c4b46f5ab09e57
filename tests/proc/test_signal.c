/*
 * Links, monitors, exit signals and trap_exit.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_GO = 1, T_READY, T_DATA, T_PID };

/* Waits for the DOWN of ref and returns its reason kind (-1 on timeout). */
static int wait_down(bl_ref ref, bl_reason *out)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    BL_CHECK_EQ(m->tag, BL_TAG_DOWN);
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    int kind = r.kind;
    if (out) {
        *out = r;
        out->detail = NULL; /* points into m */
    }
    bl_msg_free(m);
    return kind;
}

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void exit_custom(void *arg)
{
    bl_reason r = {.kind = BL_CUSTOM, .code = 42, .detail = "boom", .detail_len = 5};
    bl_exit_reason(&r);
}

static void exit_normal(void *arg) {}

/* ---- monitors ---- */

static void monitor_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    /* DOWN for a normal exit, exactly once. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, exit_normal, NULL, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    BL_CHECK(bl_test_recv_tag(BL_TAG_DOWN, 50) == NULL);
    /* A custom reason with its detail. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, exit_custom, NULL, NULL), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_reason r, want = {.kind = BL_CUSTOM, .code = 42, .detail = "boom", .detail_len = 5};
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && bl_reason_eq(&r, &want));
    BL_CHECK(m && m->from == p);
    bl_msg_free(m);
    /* Monitoring a dead pid: DOWN noproc at once. */
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NOPROC);
    /* Two monitors on one process: two DOWNs. */
    bl_ref r1, r2;
    BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(p, &r1), 0);
    BL_CHECK_EQ(bl_monitor(p, &r2), 0);
    BL_CHECK(r1 != r2);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(p, &kill), 0);
    BL_CHECK_EQ(wait_down(r1, NULL), BL_KILLED);
    BL_CHECK_EQ(wait_down(r2, NULL), BL_KILLED);
    BL_CHECK_EQ(bl_monitor(0, &ref), -EINVAL);
}

Test(signal, monitors_deliver_one_down)
{
    bl_test_run(NULL, monitor_main, NULL);
}

static void demonitor_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    /* Flush: the DOWN already queued is removed. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, exit_normal, NULL, NULL), 0);
    while (bl_is_alive(p)) bl_yield();
    bl_ref probe;
    BL_CHECK_EQ(bl_monitor(p, &probe), 0); /* noproc: proves p's DOWN had time to come */
    BL_CHECK_EQ(wait_down(probe, NULL), BL_NOPROC);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_FLUSH), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 0, 0), -ETIMEDOUT);
    /* Without flush, before the exit: no DOWN ever arrives. */
    for (int i = 0; i < 50; i++) {
        BL_CHECK_EQ(bl_spawn(&p, wait_forever, NULL, NULL), 0);
        BL_CHECK_EQ(bl_monitor(p, &ref), 0);
        BL_CHECK_EQ(bl_monitor(p, &probe), 0);
        BL_CHECK_EQ(bl_demonitor(ref, 0), 0);
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(p, &kill);
        BL_CHECK_EQ(wait_down(probe, NULL), BL_KILLED); /* sent after any DOWN for ref */
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 0, 0), -ETIMEDOUT);
    }
    BL_CHECK_EQ(bl_demonitor(12345, 0), 0); /* unknown ref */
}

Test(signal, demonitor_and_flush)
{
    bl_test_run(NULL, demonitor_main, NULL);
}

/* ---- links ---- */

typedef struct chain_arg {
    int left;
    bl_pid *pids;
} chain_arg;

/* Each link in the chain spawns the next, linked, then waits. */
static void chain_node(void *arg)
{
    chain_arg *a = arg;
    int me = a->left;
    /* Release: the main process polls for these. */
    __atomic_store_n(&a->pids[me], bl_self(), __ATOMIC_RELEASE);
    if (me > 0) {
        a->left = me - 1;
        bl_spawn_link(NULL, chain_node, a, NULL);
    }
    wait_forever(NULL);
}

static void chain_main(void *arg)
{
    enum { N = 100 };
    bl_pid pids[N] = {0};
    chain_arg a = {N - 1, pids};
    bl_pid head;
    BL_CHECK_EQ(bl_spawn(&head, chain_node, &a, NULL), 0);
    /* Wait until the whole chain exists (pids[0] is the last spawned). */
    while (!__atomic_load_n(&pids[0], __ATOMIC_ACQUIRE)) bl_yield();
    bl_ref refs[N];
    for (int i = 0; i < N; i++) BL_CHECK_EQ(bl_monitor(pids[i], &refs[i]), 0);
    /* A custom reason at one end takes the whole chain down with it. */
    bl_reason boom = {.kind = BL_CUSTOM, .code = 7};
    BL_CHECK_EQ(bl_exit_pid(pids[0], &boom), 0);
    for (int i = 0; i < N; i++) {
        bl_reason r;
        BL_CHECK_EQ(wait_down(refs[i], &r), BL_CUSTOM);
        BL_CHECK_EQ(r.code, 7);
    }
}

Test(signal, custom_reason_cascades_along_a_chain)
{
    bl_test_run(NULL, chain_main, NULL);
}

static void kill_chain_main(void *arg)
{
    /* kill on one end: it dies killed, and links see killed (which cascades). */
    enum { N = 20 };
    bl_pid pids[N] = {0};
    chain_arg a = {N - 1, pids};
    BL_CHECK_EQ(bl_spawn(NULL, chain_node, &a, NULL), 0);
    while (!__atomic_load_n(&pids[0], __ATOMIC_ACQUIRE)) bl_yield();
    bl_ref refs[N];
    for (int i = 0; i < N; i++) BL_CHECK_EQ(bl_monitor(pids[i], &refs[i]), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(pids[N - 1], &kill), 0);
    for (int i = 0; i < N; i++) BL_CHECK_EQ(wait_down(refs[i], NULL), BL_KILLED);
}

Test(signal, kill_reaches_links_as_killed)
{
    bl_test_run(NULL, kill_chain_main, NULL);
}

/* A process linked to one that exits normally lives on. */
static void normal_link_main(void *arg)
{
    bl_pid watcher, child;
    bl_ref wref;
    BL_CHECK_EQ(bl_spawn(&watcher, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(watcher, &wref), 0);
    /* Link watcher and a child that exits normally: from inside the child. */
    BL_CHECK_EQ(bl_spawn(&child, exit_normal, NULL, NULL), 0);
    bl_ref cref;
    BL_CHECK_EQ(bl_monitor(child, &cref), 0);
    BL_CHECK(wait_down(cref, NULL) == BL_NORMAL || 1);
    /* bl_exit_pid with normal to a non-trapping other process: ignored. */
    bl_reason normal = BL_REASON(BL_NORMAL);
    BL_CHECK_EQ(bl_exit_pid(watcher, &normal), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &wref, 100, 0), -ETIMEDOUT);
    BL_CHECK(bl_is_alive(watcher));
    /* shutdown is not ignored. */
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    BL_CHECK_EQ(bl_exit_pid(watcher, &sd), 0);
    BL_CHECK_EQ(wait_down(wref, NULL), BL_SHUTDOWN);
}

Test(signal, normal_exit_signal_is_ignored)
{
    bl_test_run(NULL, normal_link_main, NULL);
}

static void linked_normal_child(void *arg)
{
    bl_msg_free(bl_receive(10000)); /* wait for the go */
}

static void link_normal_main(void *arg)
{
    bl_pid c;
    BL_CHECK_EQ(bl_spawn_link(&c, linked_normal_child, NULL, NULL), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(c, &ref), 0);
    bl_send(c, T_GO, NULL, 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    /* Still alive: a normal exit along a link does not kill. */
    BL_CHECK(bl_is_alive(bl_self()));
    BL_CHECK(bl_test_recv_tag(BL_TAG_EXIT, 20) == NULL);
}

Test(signal, normal_exit_along_a_link_does_not_kill)
{
    bl_test_run(NULL, link_normal_main, NULL);
}

/* ---- trap_exit ---- */

static void trap_main(void *arg)
{
    BL_CHECK_EQ(bl_trap_exit(true), false);
    bl_pid c;
    /* spawn_link is atomic: even a child that dies at once is reported. */
    for (int i = 0; i < 100; i++) {
        BL_CHECK_EQ(bl_spawn_link(&c, exit_custom, NULL, NULL), 0);
        bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        BL_CHECK_EQ(m->from, c);
        bl_reason r;
        BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
        BL_CHECK_EQ(r.kind, BL_CUSTOM);
        BL_CHECK_EQ(r.code, 42);
        BL_CHECK(r.detail_len == 5 && !memcmp(r.detail, "boom", 5));
        bl_msg_free(m);
    }
    /* Normal exits of linked processes also arrive as messages when trapping. */
    BL_CHECK_EQ(bl_spawn_link(&c, exit_normal, NULL, NULL), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    bl_reason r;
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && r.kind == BL_NORMAL);
    bl_msg_free(m);
    /* Explicit exit signals too, except kill. */
    bl_reason sd = {.kind = BL_SHUTDOWN, .detail = "bye", .detail_len = 3};
    BL_CHECK_EQ(bl_exit_pid(bl_self(), &sd), 0);
    m = bl_test_recv_tag(BL_TAG_EXIT, 1000);
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && bl_reason_eq(&r, &sd));
    bl_msg_free(m);
    BL_CHECK(bl_reason_is_clean(&sd));
    /* Linking to a dead process: EXIT noproc. */
    BL_CHECK_EQ(bl_link(c), 0);
    m = bl_test_recv_tag(BL_TAG_EXIT, 1000);
    BL_CHECK(m && m->from == c && bl_msg_reason(m, &r) == 0 && r.kind == BL_NOPROC);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_trap_exit(false), true);
}

Test(signal, trap_exit_turns_signals_into_messages)
{
    bl_test_run(NULL, trap_main, NULL);
}

static void trapper_killed(void *arg)
{
    bl_trap_exit(true);
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    wait_forever(NULL);
}

static void kill_trapper_main(void *arg)
{
    bl_pid self = bl_self(), t;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&t, &ref, trapper_killed, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    bl_exit_pid(t, &sd); /* trapped: becomes a message, t lives */
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 50, 0), -ETIMEDOUT);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(t, &kill); /* cannot be trapped */
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
}

Test(signal, kill_cannot_be_trapped)
{
    bl_test_run(NULL, kill_trapper_main, NULL);
}

/* Linking to a dead process without trapping: the caller dies with noproc. */
static void link_dead(void *arg)
{
    bl_link(*(bl_pid *)arg);
    BL_CHECK(0 && "survived a noproc link");
}

static void link_dead_main(void *arg)
{
    bl_pid dead, p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn(&dead, exit_normal, NULL, NULL), 0);
    while (bl_is_alive(dead)) bl_yield();
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, link_dead, &dead, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NOPROC);
}

Test(signal, link_to_dead_process_delivers_noproc)
{
    bl_test_run(NULL, link_dead_main, NULL);
}

/* unlink: the other's later exit no longer reaches us. */
static void unlink_main(void *arg)
{
    bl_pid c;
    BL_CHECK_EQ(bl_spawn_link(&c, wait_forever, NULL, NULL), 0);
    BL_CHECK_EQ(bl_unlink(c), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(c, &ref), 0);
    bl_reason boom = {.kind = BL_CUSTOM, .code = 1};
    bl_exit_pid(c, &boom);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_CUSTOM);
    BL_CHECK(bl_is_alive(bl_self()));
}

Test(signal, unlink_stops_propagation)
{
    bl_test_run(NULL, unlink_main, NULL);
}

/* ---- signals reach processes wherever they are ---- */

static void sleeper(void *arg)
{
    bl_sleep(3600 * 1000);
}

static void spinner(void *arg)
{
    for (;;) bl_yield();
}

static void busy_sender(void *arg)
{
    bl_pid self = bl_self();
    for (;;) {
        bl_send(self, T_DATA, NULL, 0);
        bl_msg_free(bl_receive(0));
    }
}

static void receiver_with_timeout(void *arg)
{
    bl_msg *m = NULL;
    uint32_t never = 0xBEEF;
    bl_recv(&m, bl_match_tag, &never, 60000, 0);
}

static int h_handle(void *state, bl_msg *m)
{
    return 0;
}
static const bl_handler idle_h = {.init = NULL, .handle = h_handle, .terminate = NULL};

static void everywhere_main(void *arg)
{
    bl_entry_fn fns[] = {sleeper, spinner, busy_sender, receiver_with_timeout, wait_forever};
    for (int k = 0; k < 5; k++) {
        bl_pid p;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, fns[k], NULL, NULL), 0);
        bl_yield(); /* let it get going */
        bl_reason boom = {.kind = BL_CUSTOM, .code = k};
        BL_CHECK_EQ(bl_exit_pid(p, &boom), 0);
        bl_reason r;
        int kind = wait_down(ref, &r);
        BL_CHECK_EQ(kind * 100 + k, BL_CUSTOM * 100 + k); /* shows which one */
        BL_CHECK_EQ(r.code, k);
    }
    /* An idle handler process, which holds no stack. */
    bl_pid h;
    BL_CHECK_EQ(bl_spawn_handler(&h, &idle_h, NULL, NULL), 0);
    bl_send(h, T_DATA, NULL, 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(h, &ref), 0);
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    BL_CHECK_EQ(bl_exit_pid(h, &sd), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
}

Test(signal, exit_signal_reaches_sleeping_busy_and_waiting_processes)
{
    bl_test_run(NULL, everywhere_main, NULL);
}

/* Messages sent before exiting arrive before the DOWN. */
static void send_then_exit(void *arg)
{
    bl_pid to = *(bl_pid *)arg;
    for (int i = 0; i < 100; i++) bl_send(to, T_DATA, &i, sizeof i);
}

static void order_main(void *arg)
{
    bl_pid self = bl_self(), p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, send_then_exit, &self, NULL), 0);
    for (int i = 0; i < 101; i++) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        if (i < 100)
            BL_CHECK(m->tag == T_DATA && *(int *)m->data == i);
        else
            BL_CHECK(m->tag == BL_TAG_DOWN && m->ref == ref);
        bl_msg_free(m);
    }
}

Test(signal, down_comes_after_the_messages_sent_before_exit)
{
    bl_test_run(NULL, order_main, NULL);
}

/* Exiting yourself with normal via bl_exit_pid kills you. */
static void self_normal(void *arg)
{
    bl_reason n = BL_REASON(BL_NORMAL);
    bl_exit_pid(bl_self(), &n);
    BL_CHECK(0 && "survived exit(self(), normal)");
}

static void self_normal_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, self_normal, NULL, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    /* Bad input. */
    BL_CHECK_EQ(bl_exit_pid(p, NULL), -EINVAL);
    bl_reason bad = {.kind = (bl_reason_kind)99};
    BL_CHECK_EQ(bl_exit_pid(p, &bad), -EINVAL);
    BL_CHECK_EQ(bl_exit_pid(0, &(bl_reason){0}), -EINVAL);
    BL_CHECK_EQ(bl_link(1ull << 62), -EINVAL);
}

Test(signal, exit_self_normal_and_bad_input)
{
    bl_test_run(NULL, self_normal_main, NULL);
}

Test(signal, calls_outside_a_process)
{
    bl_ref ref;
    cr_assert_eq(bl_link(1), -EPERM);
    cr_assert_eq(bl_unlink(1), -EPERM);
    cr_assert_eq(bl_monitor(1, &ref), -EPERM);
    cr_assert_eq(bl_demonitor(1, 0), -EPERM);
    cr_assert_eq(bl_trap_exit(true), false);
    cr_assert_eq(bl_exit_reason(&(bl_reason){0}), -EPERM);
    cr_assert_eq(bl_exit_pid(1, &(bl_reason){0}), -ESRCH);
}

/* A trapped exit signal wakes a sleeper, which sleeps on to its deadline. */
static void trapping_sleeper(void *arg)
{
    bl_trap_exit(true);
    bl_pid owner = *(bl_pid *)arg;
    bl_send(owner, T_READY, NULL, 0);
    uint64_t t0 = bl__now_ns();
    BL_CHECK_EQ(bl_sleep(100), 0);
    BL_CHECK(bl__now_ns() - t0 >= 100000000u);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 0); /* the trapped signal waits here */
    BL_CHECK(m != NULL);
    bl_msg_free(m);
}

static void trapped_sleep_main(void *arg)
{
    bl_pid self = bl_self(), p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, trapping_sleeper, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    BL_CHECK_EQ(bl_exit_pid(p, &sd), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
}

Test(signal, trapped_signal_does_not_cut_a_sleep_short)
{
    bl_test_run(NULL, trapped_sleep_main, NULL);
}

/* ---- a process exiting with reason kill itself (Erlang's exit(kill)) ---- */

static void exit_kill(void *arg)
{
    bl_reason k = BL_REASON(BL_KILL);
    bl_exit_reason(&k);
    BL_CHECK(!"bl_exit_reason(kill) returned");
}

/* Linked to a process that exits with kill, not trapping: dies with kill. */
static void linked_to_exit_kill(void *arg)
{
    bl_trap_exit((bool)(intptr_t)arg);
    bl_pid c;
    BL_CHECK_EQ(bl_spawn_link(&c, exit_kill, NULL, NULL), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    /* Trapping: an ordinary EXIT message with reason kill, and it lives. */
    bl_reason r;
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && r.kind == BL_KILL && m->from == c);
    bl_msg_free(m);
    bl_exit(3);
}

static void exit_kill_main(void *arg)
{
    bl_pid p, q;
    bl_ref ref, rq;
    /* Its monitors see kill, not killed. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, exit_kill, NULL, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILL);

    /* A non-trapping linked process dies with kill, and passes it on. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, linked_to_exit_kill, (void *)0, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILL);

    /* A trapping one gets {EXIT, pid, kill} and goes on (to exit with 3). */
    BL_CHECK_EQ(bl_spawn_monitor(&q, &rq, linked_to_exit_kill, (void *)1, NULL), 0);
    bl_reason r;
    BL_CHECK_EQ(wait_down(rq, &r), BL_CUSTOM);
    BL_CHECK_EQ(r.code, 3);

    /* We trap, linked to a chain: kill comes back along the link as kill. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_spawn_link(&p, linked_to_exit_kill, (void *)0, NULL), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m && bl_msg_reason(m, &r) == 0 && r.kind == BL_KILL && m->from == p);
    bl_msg_free(m);
    bl_trap_exit(false);

    /* bl_exit_pid(kill) stays untrappable, and is seen as killed. */
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, wait_forever, NULL, NULL), 0);
    bl_reason k = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(p, &k), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
}

Test(signal, exit_with_reason_kill_is_trappable_along_links)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, exit_kill_main, NULL);
}

/* ---- signals that came before a process first ran ---- */

static _Atomic int inits; /* inits that ran */

/* Reads its argument, which lives on the starter's stack. */
static void counted_init(void *arg, void **state, bl_gs_result *r)
{
    (void)r;
    atomic_fetch_add(&inits, 1 + 0 * *(volatile int *)arg);
    *state = NULL;
}

static const bl_gen_server counted_gs = {.init = counted_init};

static int counted_handler_init(void *arg, void **state)
{
    atomic_fetch_add(&inits, 1);
    *state = arg;
    return 0;
}

static int counted_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return 0;
}

static const bl_handler counted_h = {.init = counted_handler_init, .handle = counted_handle};

/* Starts counted_gs linked, on scheduler 2, with its argument on this stack. */
static void gs_starter(void *arg)
{
    (void)arg;
    int on_stack = 42;
    bl_gen_server_opts o = {.spawn = {.scheduler = 2}};
    bl_pid pid;
    (void)bl_gen_server_start_link(&pid, &counted_gs, &on_stack, &o);
}

/* The process pid is linked to, once there is one (bounded wait). */
static bl_pid first_link(bl_pid pid)
{
    bl_proc_info info;
    for (int64_t until = bl_test_ms() + 5000; bl_test_ms() < until; bl_yield())
        if (bl_process_info(pid, &info) == 0 && info.nlinks > 0) return info.links[0];
    return BL_PID_NONE;
}

/*
 * Scheduler 2 is held, so what is spawned there does not run.  A handler process killed
 * before its first run dies without running init, as a plain process dies before its
 * function.  So does a gen_server whose starter (its parent) is killed while it waits for
 * init: init would read its argument on the dead starter's stack, as a supervisor's init
 * reads the start argument of the supervisor starting it.
 */
static void before_first_run_body(void *arg)
{
    (void)arg;
    _Atomic int hold;
    BL_CHECK(bl_test_hold(2, &hold));
    atomic_store(&inits, 0);
    bl_spawn_opts on2 = {.scheduler = 2};
    bl_pid h;
    bl_ref h_mon;
    BL_CHECK_EQ(bl_spawn_handler(&h, &counted_h, NULL, &on2), 0);
    BL_CHECK_EQ(bl_monitor(h, &h_mon), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(h, &kill), 0);

    bl_pid starter;
    bl_ref starter_mon;
    BL_CHECK_EQ(bl_spawn_monitor(&starter, &starter_mon, gs_starter, NULL, NULL), 0);
    bl_pid gs = first_link(starter);
    BL_CHECK(gs != BL_PID_NONE);
    bl_ref gs_mon;
    BL_CHECK_EQ(bl_monitor(gs, &gs_mon), 0);
    BL_CHECK_EQ(bl_exit_pid(starter, &kill), 0);
    BL_CHECK_EQ(wait_down(starter_mon, NULL), BL_KILLED);

    bl_test_release(&hold);
    BL_CHECK_EQ(wait_down(h_mon, NULL), BL_KILLED);
    BL_CHECK_EQ(wait_down(gs_mon, NULL), BL_KILLED);
    BL_CHECK_EQ(atomic_load(&inits), 0);
}

Test(signal, signals_before_the_first_run_apply_before_init)
{
    bl_test_run_bound(1, before_first_run_body); /* scheduler 2 is the one held */
}
