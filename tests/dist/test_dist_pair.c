/*
 * Two Beamline nodes (the second a runtime in a forked child): bl_send
 * messages cross unchanged both ways, in order, and a node that stops
 * answering is taken as down after the net tick time.
 */
#include "dist_test.h"

static char a_name[64], b_name[64];
static unsigned tick_ms;

/* The other node's echo: every plain message goes back to its sender unchanged. */
static void echo(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) continue;
        if (m->tag < BL_TAG_SYSTEM) bl_send_ref(m->from, m->tag, m->ref, m->data, m->len);
        bl_msg_free(m);
    }
}

/* The second node's main process: serves until its stdin closes. */
static void b_main(void *arg)
{
    bl_dist_opts o = {.tick_ms = tick_ms, .log = dt_log};
    if (bl_dist_start(b_name, dt_cookie, &o) != 0) return;
    bl_pid e;
    if (bl_spawn(&e, echo, NULL, NULL) != 0 || bl_register("echo", e) != 0) return;
    if (bl_io_write_all(1, "ready\n", 6, 5000) != 6) return;
    char ch;
    while (bl_io_read(0, &ch, 1, BL_INFINITY) == 1) {
    }
}

static void b_node(void *arg)
{
    bl_config c = {.schedulers = 2};
    _exit(bl_main(&c, b_main, NULL) == 0 ? 0 : 1);
}

static dt_child *b;

/* epmd, the two node names, and the second node running `node`. */
static void pair_setup(void (*node)(void *))
{
    dt_setup();
    char alive[32];
    snprintf(alive, sizeof alive, "bla%d", (int)getpid());
    dt_node(alive, a_name, sizeof a_name);
    snprintf(alive, sizeof alive, "blb%d", (int)getpid());
    dt_node(alive, b_name, sizeof b_name);
    b = dt_fork("blb", node, NULL);
    char line[64];
    cr_assert(dt_read_line(b, line, sizeof line, 20000) && strcmp(line, "ready") == 0,
              "the second node did not start");
}

static void setup(void)
{
    tick_ms = 1200;
    pair_setup(b_node);
}

static void pair_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    o.tick_ms = tick_ms;
    BL_CHECK_EQ(bl_dist_start(a_name, dt_cookie, &o), 0);
    /* The first send connects. */
    bl_pid e = dt_echo_pid(b_name, 1, "first");
    bl_msg *m;

    /* Sizes from empty to past one receive buffer and one write batch, every byte checked. */
    static const size_t sizes[] = {0, 1, 4095, 4096, 70000, 300000};
    static uint8_t buf[300000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        BL_CHECK_EQ(bl_send(e, 100 + (uint32_t)k, buf, sizes[k]), 0);
        m = bl_test_recv_tag(100 + (uint32_t)k, 10000);
        BL_CHECK(m && m->len == sizes[k] && memcmp(m->data, buf, sizes[k]) == 0);
        BL_CHECK(m && m->from == e);
        bl_msg_free(m);
    }
    /* Order: a burst comes back as sent. */
    enum { N = 500 };
    for (uint32_t i = 0; i < N; i++) BL_CHECK_EQ(bl_send(e, 7, &i, sizeof i), 0);
    for (uint32_t i = 0; i < N; i++) {
        m = bl_test_recv_tag(7, 10000);
        BL_CHECK(m && m->len == sizeof i && *(uint32_t *)m->data == i);
        bl_msg_free(m);
        if (!m) break;
    }
    /* bl_send_ref's reference crosses both ways; a remote pid is not "alive" here. */
    BL_CHECK_EQ(bl_send_ref(e, 10, 0x123456789abcdefull, "r", 1), 0);
    m = bl_test_recv_tag(10, 10000);
    BL_CHECK(m && m->ref == 0x123456789abcdefull && m->len == 1);
    bl_msg_free(m);
    BL_CHECK(!bl_is_alive(e));

    /* bl_send_move to a remote pid: copied out, the buffer freed. */
    char *moved = strdup("moved");
    BL_CHECK_EQ(bl_send_move(e, 8, moved, 5, NULL), 0);
    BL_CHECK_EQ(dt_expect(8, "moved", 5), e);

    /* The other node stops answering: down after the tick time. */
    BL_CHECK_EQ(bl_dist_monitor_nodes(true), 0);
    BL_CHECK_EQ(kill(b->pid, SIGSTOP), 0);
    int64_t t0 = bl_test_ms();
    m = bl_test_recv_tag(BL_TAG_DIST_NODEDOWN, 10000);
    BL_CHECK(m && strcmp(m->data, b_name) == 0);
    bl_msg_free(m);
    int64_t took = bl_test_ms() - t0;
    BL_CHECK(took >= tick_ms / 2 && took < 4 * tick_ms);
    BL_CHECK(dt_logged("net tick time"));
    kill(b->pid, SIGCONT);
    /* It answers again: the next send connects anew. */
    BL_CHECK_EQ(bl_dist_connect(b_name), 0);
    dt_echo_pid(b_name, 9, "again");
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_pair, two_beamline_nodes_exchange_messages_unchanged, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, pair_main, NULL);
}

/* ---- links, monitors and gen_server calls between two Beamline nodes ---- */

/* The second node's watcher: links to and monitors whoever sends it a message, acks,
 * and writes each EXIT and DOWN it gets on stdout ("EXIT <reason>"). */
static void watcher(void *arg)
{
    bl_trap_exit(true);
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) continue;
        char line[160], why[128];
        bl_reason r;
        bl_ref ref;
        if (m->tag == BL_TAG_EXIT || m->tag == BL_TAG_DOWN) {
            bl_msg_reason(m, &r);
            bl_reason_format(&r, why, sizeof why);
            int n = snprintf(line, sizeof line, "%s %s\n", m->tag == BL_TAG_EXIT ? "EXIT" : "DOWN",
                             why);
            bl_io_write_all(1, line, (size_t)n, 5000);
        } else if (m->tag < BL_TAG_SYSTEM) {
            bl_link(m->from);
            bl_monitor(m->from, &ref);
            bl_send(m->from, m->tag, m->data, m->len);
        }
        bl_msg_free(m);
    }
}

/* The second node's gen_server: replies with the request's tag and bytes, plus "!". */
static void kv2_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    char out[256];
    size_t n = m->len < 200 ? m->len : 200;
    memcpy(out, m->data, n);
    int k = snprintf(out + n, sizeof out - n, "!%u", m->tag);
    bl_gs_reply(r, out, n + (size_t)k);
}

static const bl_gen_server kv2_cb = {.handle_call = kv2_call};

static void b2_main(void *arg)
{
    bl_dist_opts o = {.log = dt_log};
    if (bl_dist_start(b_name, dt_cookie, &o) != 0) return;
    bl_pid w;
    bl_name name = BL_NAME_LOCAL("kv");
    bl_gen_server_opts go = {.name = &name};
    if (bl_spawn(&w, watcher, NULL, NULL) != 0 || bl_register("watcher", w) != 0 ||
        bl_gen_server_start(NULL, &kv2_cb, NULL, &go) != 0)
        return;
    if (bl_io_write_all(1, "ready\n", 6, 5000) != 6) return;
    char ch;
    while (bl_io_read(0, &ch, 1, BL_INFINITY) == 1) {
    }
}

static void b2_node(void *arg)
{
    bl_config c = {.schedulers = 2};
    _exit(bl_main(&c, b2_main, NULL) == 0 ? 0 : 1);
}

static void setup2(void)
{
    pair_setup(b2_node);
}

/* The next line of the second node is want. */
static void line_is(const char *want)
{
    char line[160];
    BL_CHECK(dt_read_line(b, line, sizeof line, 10000));
    if (strcmp(line, want) != 0) fprintf(stderr, "got \"%s\", want \"%s\"\n", line, want);
    BL_CHECK(strcmp(line, want) == 0);
}

/* Gets the watcher to link to and monitor the caller, then exits with the reason in arg. */
static void watched(void *arg)
{
    BL_CHECK_EQ(bl_dist_send_name("watcher", b_name, 3, "w", 1), 0);
    dt_expect(3, "w", 1);
    bl_exit_reason(arg);
}

static void pair2_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(a_name, dt_cookie, &o), 0);
    /* A call by {name, node}: the tag and bytes arrive as sent, the reply as sent. */
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_REMOTE("kv", b_name), 42, "abc", 3, &m, 5000), 0);
    BL_CHECK(m && m->len == 6 && memcmp(m->data, "abc!42", 6) == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_REMOTE("nokv", b_name), 1, "x", 1, &m, 5000), -ESRCH);

    /* A reason crosses unchanged (the watcher on the other node prints it). */
    static const bl_reason custom = {BL_CUSTOM, 42, "d", 1};
    bl_pid p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, watched, (void *)&custom, NULL), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 10000));
    line_is("EXIT custom 42 (1 bytes of detail)");
    line_is("DOWN custom 42 (1 bytes of detail)");

    /* Linked and monitoring both ways, then the connection goes: noconnection on both sides. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_dist_send_name("watcher", b_name, 4, "v", 1), 0);
    bl_pid w = dt_expect(4, "v", 1);
    BL_CHECK_EQ(bl_link(w), 0);
    BL_CHECK_EQ(bl_monitor(w, &ref), 0);
    BL_CHECK_EQ(bl_dist_send_name("watcher", b_name, 5, "s", 1),
                0); /* after the link and monitor */
    dt_expect(5, "s", 1);
    BL_CHECK_EQ(bl_dist_stop(), 0);
    bl_reason nc = BL_REASON(BL_NOCONNECTION), r;
    m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m && m->from == w && bl_msg_reason(m, &r) == 0 && bl_reason_eq(&r, &nc));
    bl_msg_free(m);
    m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
    BL_CHECK(m && m->ref == ref && bl_msg_reason(m, &r) == 0 && bl_reason_eq(&r, &nc));
    bl_msg_free(m);
    line_is("EXIT noconnection");
    line_is("DOWN noconnection");
}

Test(dist_pair, links_monitors_and_calls_between_beamline_nodes, .init = setup2,
     .fini = dt_stop_all)
{
    bl_test_run(NULL, pair2_main, NULL);
}
