/*
 * The listener's ends (beamline/listener.h): handlers killed or crashing,
 * graceful stops (handlers that finish in time, handlers killed after it,
 * many clients at once), and kills anywhere in the tree while clients
 * come and go, without a descriptor left behind.
 */
#include "listener_test.h"

/* ---- a handler killed mid-response ---- */

/* Sends half a response, tells the test who it is, then waits for ever. */
static void stuck_handler(int fd, const bl_listener_conn *c, void *arg)
{
    bl_pid test = *(bl_pid *)arg;
    char req[4];
    if (bl_io_recv_all(fd, req, sizeof req, 0, 5000) != sizeof req) return;
    if (bl_io_send_all(fd, "half", 4, 0, 5000) != 4) return;
    bl_pid self = bl_self();
    bl_send(test, T_HANDLER, &self, sizeof self);
    uint32_t go = T_GO;
    bl_msg *m;
    if (bl_recv(&m, bl_match_tag, &go, BL_INFINITY, 0) == 0) bl_msg_free(m);
    (void)bl_io_send_all(fd, "rest", 4, 0, 5000);
}

/* Waits for a handler's T_HANDLER: its pid, or BL_PID_NONE. */
static bl_pid handler_began(void)
{
    bl_pid pid = BL_PID_NONE;
    bl_msg *m = bl_test_recv_tag(T_HANDLER, 10000);
    if (m) memcpy(&pid, m->data, sizeof pid);
    bl_msg_free(m);
    return pid;
}

static void killed_main(void *arg)
{
    bl_pid self = bl_self();
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = stuck_handler, .arg = &self, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    int fds0 = bl_test_count_fds();
    for (int k = 0; k < 5; k++) {
        int fd = bl_io_connect_tcp("127.0.0.1", port_of(l), 5000);
        BL_CHECK(fd >= 0);
        BL_CHECK_EQ(bl_io_send_all(fd, "req!", 4, 0, 5000), 4);
        bl_pid h = handler_began();
        BL_CHECK(h != BL_PID_NONE);
        bl_test_kill_wait(h);
        /* The client has the half that was sent, then the end: the socket was closed
         * when the handler died, before its DOWN. */
        char buf[8];
        BL_CHECK_EQ(bl_io_recv_all(fd, buf, 4, 0, 5000), 4);
        BL_CHECK_EQ(bl_io_recv(fd, buf, sizeof buf, 0, 5000), 0);
        bl_io_close(fd);
        BL_CHECK_EQ(bl_test_count_fds(), fds0);
        bl_listener_info i;
        BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
        BL_CHECK_EQ(i.active, 0);
    }
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
}

Test(listener_stop, handler_killed)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, killed_main, NULL);
}

/* ---- a handler that crashes ---- */

/* Crashes (an abnormal exit) at the first byte "!", echoes otherwise. */
static void crashing_handler(int fd, const bl_listener_conn *c, void *arg)
{
    char b;
    while (bl_io_recv(fd, &b, 1, 0, c->idle_ms) == 1) {
        if (b == '!') bl_exit(42);
        if (bl_io_send_all(fd, &b, 1, 0, c->idle_ms) != 1) return;
    }
}

static void crash_main(void *arg)
{
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = crashing_handler, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    bl_listener_info i0;
    BL_CHECK_EQ(bl_listener_info_get(l, &i0), 0);
    int fds0 = bl_test_count_fds();
    /* More crashes than any supervisor's restart intensity would allow. */
    for (int k = 0; k < 20; k++) {
        int fd = bl_io_connect_tcp("127.0.0.1", i0.port, 5000);
        BL_CHECK_EQ(bl_io_send_all(fd, "a!", 2, 0, 5000), 2);
        char buf[4];
        BL_CHECK_EQ(bl_io_recv(fd, buf, 1, 0, 5000), 1);
        BL_CHECK_EQ(bl_io_recv(fd, buf, sizeof buf, 0, 5000), 0); /* closed by the crash */
        bl_io_close(fd);
    }
    BL_CHECK_EQ(wait_active(l, 0), 0);
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
    /* The listener serves on, with the same tree. */
    int fd = bl_io_connect_tcp("127.0.0.1", i0.port, 5000);
    BL_CHECK_EQ(bl_io_send_all(fd, "abc", 3, 0, 5000), 3);
    char buf[4];
    BL_CHECK_EQ(bl_io_recv_all(fd, buf, 3, 0, 5000), 3);
    bl_io_close(fd);
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.sup, i0.sup);
    BL_CHECK(bl_is_alive(i.sup));
    BL_CHECK_EQ(i.accepted, 21);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
}

Test(listener_stop, handler_crash)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, crash_main, NULL);
}

/* ---- the tree killed from outside, then stopped ---- */

static void tree_killed_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    int fd = connect_echoed("127.0.0.1", i.port);
    BL_CHECK(fd >= 0);
    /* The handler goes with the tree (by its link to conns), its socket closed. */
    bl_test_kill_wait(i.sup);
    char c;
    BL_CHECK_EQ(bl_io_recv(fd, &c, 1, 0, 5000), 0);
    bl_io_close(fd);
    BL_CHECK(bl_listener_stop(l, 1000) >= 0);
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", i.port, 5000), -ECONNREFUSED);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener_stop, tree_killed)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, tree_killed_main, NULL);
}

/* ---- an acceptor that first runs after the stop ---- */

/* The running child of sup with id, or BL_PID_NONE. */
static bl_pid child_of(bl_pid sup, const char *id)
{
    bl_sup_child kids[8];
    int n = bl_supervisor_which_children(sup, kids, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (strcmp(kids[i].id, id) == 0 && kids[i].status == BL_CHILD_RUNNING) return kids[i].pid;
    return BL_PID_NONE;
}

/* Scheduler 2 is held from before the start, so the acceptors placed there (1 and 3)
 * are spawned but do not run, and the acceptors supervisor is suspended, so it acts on
 * nothing.  Acceptor 0 is killed, the tree too, and the listener stopped.  Then acceptor
 * 1 first runs, and the acceptors supervisor, resumed, restarts acceptor 0 (its EXIT
 * came before its parent's), both after the stop returned: they must find the listener
 * (not freed memory: the ASan build sees such a read) stopping, and end normally. */
static void late_acceptor_body(void *arg)
{
    (void)arg;
    int fds0 = bl_test_count_fds();
    _Atomic int hold;
    BL_CHECK(bl_test_hold(2, &hold));

    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1", .acceptors = 4};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    bl_pid accs = child_of(i.sup, "acceptors");
    bl_pid late = child_of(accs, "acceptor1");
    bl_pid first = child_of(accs, "acceptor0");
    BL_CHECK(late != BL_PID_NONE && first != BL_PID_NONE);
    bl_ref late_mon, accs_mon;
    BL_CHECK_EQ(bl_monitor(late, &late_mon), 0);
    BL_CHECK_EQ(bl_monitor(accs, &accs_mon), 0);
    BL_CHECK_EQ(bl_sys_suspend(accs, 5000), 0);
    BL_CHECK_EQ(bl_test_kill_wait(first), BL_KILLED);
    BL_CHECK_EQ(bl_test_kill_wait(i.sup), BL_KILLED);
    BL_CHECK(bl_listener_stop(l, 1000) >= 0);
    /* The stop did not wait for them. */
    BL_CHECK(bl_is_alive(late));
    BL_CHECK(bl_is_alive(accs));

    bl_test_release(&hold);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &late_mon, 10000, 0), 0);
    bl_reason why = {.kind = BL_KILL};
    if (m) BL_CHECK_EQ(bl_msg_reason(m, &why), 0);
    /* It ended by itself (a monitor still queued when it ends is answered noproc). */
    BL_CHECK(why.kind == BL_NORMAL || why.kind == BL_NOPROC);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_sys_resume(accs, 5000), 0);
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &accs_mon, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", i.port, 5000), -ECONNREFUSED);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener_stop, acceptor_first_runs_after_the_stop)
{
    bl_test_run_bound(1, late_acceptor_body); /* scheduler 2 is the one held */
}

/* ---- graceful stop ---- */

typedef struct stopper_arg {
    bl_listener *l;  /* what to stop */
    int64_t timeout; /* stop's timeout */
    bl_pid test;     /* who gets the result */
} stopper_arg;

enum { T_STOPPED = 10 };

/* Stops the listener from a process of its own, and reports stop's result. */
static void stopper(void *arg)
{
    stopper_arg *s = arg;
    int rc = bl_listener_stop(s->l, s->timeout);
    bl_send(s->test, T_STOPPED, &rc, sizeof rc);
}

/* Opens n connections to l's stuck handlers and collects their pids. */
static void open_stuck(bl_listener *l, int *fds, bl_pid *pids, int n)
{
    for (int k = 0; k < n; k++) {
        fds[k] = bl_io_connect_tcp("127.0.0.1", port_of(l), 5000);
        BL_CHECK_EQ(bl_io_send_all(fds[k], "req!", 4, 0, 5000), 4);
        pids[k] = handler_began();
        BL_CHECK(pids[k] != BL_PID_NONE);
    }
}

static void graceful_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    bl_pid self = bl_self();
    bl_listener_opts o = {.handler = stuck_handler, .arg = &self, .host = "127.0.0.1"};
    enum { N = 3 };
    int fds[N];
    bl_pid pids[N];
    char buf[8];

    /* Handlers that finish within the timeout: stop returns 0, every response is whole. */
    stopper_arg s = {.timeout = 10000, .test = self};
    BL_CHECK_EQ(bl_listener_start(&s.l, &o), 0);
    uint16_t port = port_of(s.l);
    open_stuck(s.l, fds, pids, N);
    BL_CHECK_EQ(bl_spawn(NULL, stopper, &s, NULL), 0);
    /* Stopping: no new connections, the handlers still run. */
    for (int64_t until = bl_test_ms() + 5000;
         bl_listener_state_get(s.l) != BL_LISTENER_STOPPING && bl_test_ms() < until;)
        bl_yield();
    BL_CHECK_EQ(bl_listener_state_get(s.l), BL_LISTENER_STOPPING);
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", port, 5000), -ECONNREFUSED);
    for (int k = 0; k < N; k++) BL_CHECK_EQ(bl_send(pids[k], T_GO, NULL, 0), 0);
    bl_msg *m = bl_test_recv_tag(T_STOPPED, 15000);
    BL_CHECK(m != NULL);
    if (m) BL_CHECK_EQ(*(int *)m->data, 0);
    bl_msg_free(m);
    for (int k = 0; k < N; k++) {
        BL_CHECK_EQ(bl_io_recv_all(fds[k], buf, 8, 0, 5000), 8);
        BL_CHECK_EQ(memcmp(buf, "halfrest", 8), 0);
        BL_CHECK_EQ(bl_io_recv(fds[k], buf, 1, 0, 5000), 0);
        bl_io_close(fds[k]);
    }
    BL_CHECK_EQ(wait_fds(fds0), fds0);

    /* Handlers that do not: killed after the timeout; stop says how many. */
    s.timeout = 100;
    BL_CHECK_EQ(bl_listener_start(&s.l, &o), 0);
    open_stuck(s.l, fds, pids, N);
    int64_t t0 = bl_test_ms();
    bl_listener *l = s.l;
    BL_CHECK_EQ(bl_listener_stop(l, s.timeout), N);
    BL_CHECK(bl_test_ms() - t0 >= 100);
    for (int k = 0; k < N; k++) {
        BL_CHECK(!bl_is_alive(pids[k]));
        BL_CHECK_EQ(bl_io_recv_all(fds[k], buf, 4, 0, 5000), 4);
        BL_CHECK_EQ(bl_io_recv(fds[k], buf, 1, 0, 5000), 0);
        bl_io_close(fds[k]);
    }
    BL_CHECK_EQ(wait_fds(fds0), fds0);

    /* Timeout 0: killed at once. */
    BL_CHECK_EQ(bl_listener_start(&s.l, &o), 0);
    open_stuck(s.l, fds, pids, 1);
    BL_CHECK_EQ(bl_listener_stop(s.l, 0), 1);
    BL_CHECK(!bl_is_alive(pids[0]));
    bl_io_close(fds[0]);

    /* Two stops at a time: the second is refused. */
    BL_CHECK_EQ(bl_listener_start(&s.l, &o), 0);
    open_stuck(s.l, fds, pids, 1);
    s.timeout = 5000;
    BL_CHECK_EQ(bl_spawn(NULL, stopper, &s, NULL), 0);
    for (int64_t until = bl_test_ms() + 5000;
         bl_listener_state_get(s.l) != BL_LISTENER_STOPPING && bl_test_ms() < until;)
        bl_yield();
    BL_CHECK_EQ(bl_listener_stop(s.l, 0), -EBUSY);
    BL_CHECK_EQ(bl_listener_suspend(s.l), -EBUSY);
    bl_test_kill_wait(pids[0]);
    m = bl_test_recv_tag(T_STOPPED, 10000);
    BL_CHECK(m != NULL);
    if (m) BL_CHECK_EQ(*(int *)m->data, 0); /* it ended (killed by us) before the timeout */
    bl_msg_free(m);
    bl_io_close(fds[0]);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener_stop, graceful)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, graceful_main, NULL);
}

/* ---- stop with many clients connected ---- */

static void busy_stop_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    uint16_t port = port_of(l);
    int n = BL_SCALE(300), rounds = 20;
    client_ctx *cc = calloc((size_t)n, sizeof *cc);
    for (int i = 0; i < n; i++) {
        cc[i] = (client_ctx){"127.0.0.1", port, bl_self(), i, rounds};
        BL_CHECK_EQ(bl_spawn(NULL, client, &cc[i], NULL), 0);
    }
    /* Stop once some are served, while others connect or are mid-way. */
    bl_listener_info i = {0};
    for (int64_t until = bl_test_ms() + 10000;
         bl_listener_info_get(l, &i) == 0 && i.accepted < (uint64_t)n / 3 && bl_test_ms() < until;)
        bl_yield();
    BL_CHECK_EQ(bl_listener_stop(l, 30000), 0);
    /* Every client whose first round was echoed made all its rounds: the others were
     * refused or reset before their connection was accepted. */
    int served = 0, refused = 0;
    for (int k = 0; k < n; k++) {
        bl_msg *m = bl_test_recv_tag(T_CLIENT, 30000);
        BL_CHECK(m != NULL);
        if (!m) break;
        client_result *r = m->data;
        BL_CHECK(r->rounds == 0 || r->rounds == rounds);
        BL_CHECK_EQ(r->failed, 0);
        if (r->rounds == rounds) served++;
        if (r->rounds == 0) refused++;
        bl_msg_free(m);
    }
    /* (Accepted but refused: the connections of acceptors killed in the hand-over.) */
    BL_CHECK(served >= n / 3 - BL_LISTENER_MAX_ACCEPTORS);
    BL_CHECK_EQ(served + refused, n);
    free(cc);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener_stop, stop_with_clients, .timeout = 240)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, busy_stop_main, NULL);
}

/* ---- kills anywhere, while clients come and go ---- */

typedef struct storm {
    bl_listener *l;  /* the listener under fire */
    bl_pid test;     /* who gets T_CLIENT reports */
    _Atomic bool on; /* clients and killer go on while set */
    uint64_t seed;   /* the killer's random state */
} storm;

/* A client that connects, makes one round, and closes, until told to stop. */
static void storm_client(void *arg)
{
    storm *s = arg;
    client_result r = {0};
    uint16_t port = port_of(s->l);
    while (atomic_load(&s->on)) {
        int fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
        if (fd < 0) continue;
        if (echo_round(fd, 0, r.connected)) r.rounds++;
        r.connected++;
        bl_io_close(fd);
    }
    bl_send(s->test, T_CLIENT, &r, sizeof r);
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Kills, at random, a handler (most often), an acceptor, or conns. */
static void killer(void *arg)
{
    storm *s = arg;
    bl_listener_info i;
    bl_listener_info_get(s->l, &i);
    bl_reason kill = BL_REASON(BL_KILL);
    int conns_kills = 0, acc_kills = 0;
    while (atomic_load(&s->on)) {
        uint64_t r = next_rand(&s->seed);
        bl_pid victim = BL_PID_NONE;
        bl_sup_child kids[8];
        if (r % 64 == 0 && conns_kills < 2) {
            /* conns, at most twice: the top supervisor's intensity is 3 restarts in 5 s. */
            victim = child_of(i.sup, "conns");
            conns_kills++;
        } else if (r % 64 < 4 && acc_kills < 2) {
            /* An acceptor, twice (the acceptors' supervisor's intensity, likewise). */
            bl_pid acc = child_of(i.sup, "acceptors");
            int n = acc ? bl_supervisor_which_children(acc, kids, 8) : 0;
            if (n > 0) victim = kids[(r >> 8) % (uint64_t)(n < 8 ? n : 8)].pid;
            if (victim) acc_kills++;
        } else {
            bl_pid conns = child_of(i.sup, "conns");
            int n = conns ? bl_dynamic_supervisor_which_children(conns, kids, 8) : 0;
            if (n > 0) victim = kids[(r >> 8) % (uint64_t)(n < 8 ? n : 8)].pid;
        }
        if (victim) bl_exit_pid(victim, &kill);
        bl_yield();
    }
    bl_send(s->test, T_STOPPED, NULL, 0);
}

static void storm_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    storm s = {.test = bl_self(), .seed = 0x9e3779b97f4a7c15ull};
    atomic_store(&s.on, true);
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1", .max_connections = 16};
    BL_CHECK_EQ(bl_listener_start(&s.l, &o), 0);
    enum { CLIENTS = 8 };
    for (int k = 0; k < CLIENTS; k++) BL_CHECK_EQ(bl_spawn(NULL, storm_client, &s, NULL), 0);
    BL_CHECK_EQ(bl_spawn(NULL, killer, &s, NULL), 0);
    /* Until enough connections went through the fire (bounded in time). */
    bl_listener_info i = {0};
    uint64_t want = (uint64_t)BL_SCALE(2000);
    for (int64_t until = bl_test_ms() + 20000;
         bl_listener_info_get(s.l, &i) == 0 && i.accepted < want && bl_test_ms() < until;)
        bl_msg_free(bl_receive(10));
    atomic_store(&s.on, false);
    int rounds = 0;
    for (int k = 0; k < CLIENTS; k++) {
        bl_msg *m = bl_test_recv_tag(T_CLIENT, 30000);
        BL_CHECK(m != NULL);
        if (m) rounds += ((client_result *)m->data)->rounds;
        bl_msg_free(m);
    }
    bl_msg_free(bl_test_recv_tag(T_STOPPED, 30000));
    BL_CHECK(rounds > 0);
    /* Still serving after all that. */
    BL_CHECK(bl_is_alive(i.sup));
    int served = 0;
    for (int k = 0; k < 50 && !served; k++) served = run_clients("127.0.0.1", i.port, 1, 1);
    BL_CHECK_EQ(served, 1);
    BL_CHECK(bl_listener_stop(s.l, 5000) >= 0);
    /* Not one descriptor left: every socket was closed exactly once. */
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener_stop, kill_storm, .timeout = 240)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, storm_main, NULL);
}
