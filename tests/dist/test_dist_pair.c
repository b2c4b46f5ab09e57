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
        if (m->tag < BL_TAG_SYSTEM) bl_send(m->from, m->tag, m->data, m->len);
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

static void setup(void)
{
    dt_setup();
    char alive[32];
    snprintf(alive, sizeof alive, "bla%d", (int)getpid());
    dt_node(alive, a_name, sizeof a_name);
    snprintf(alive, sizeof alive, "blb%d", (int)getpid());
    dt_node(alive, b_name, sizeof b_name);
    tick_ms = 1200;
    b = dt_fork("blb", b_node, NULL);
    char line[64];
    cr_assert(dt_read_line(b, line, sizeof line, 20000) && strcmp(line, "ready") == 0,
              "the second node did not start");
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
