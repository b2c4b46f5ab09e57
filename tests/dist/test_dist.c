/*
 * A Beamline node and a real Elixir node on loopback: sends both ways,
 * terms and plain messages, node monitoring, and a wrong cookie refused.
 */
#include "dist_test.h"

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

/* Answers {ping, Pid, Bin} with {pong, Bin}, once. */
static void pong_server(void *arg)
{
    bl_msg *m = bl_test_recv_tag(BL_TAG_DIST_TERM, 20000);
    BL_CHECK(m != NULL);
    if (!m) return;
    const char *b = m->data;
    int i = 0, v, arity;
    char atom[MAXATOMLEN_UTF8];
    bl_pid from = BL_PID_NONE;
    char bin[64];
    long blen = 0;
    BL_CHECK_EQ(ei_decode_version(b, &i, &v), 0);
    BL_CHECK_EQ(ei_decode_tuple_header(b, &i, &arity), 0);
    BL_CHECK_EQ(arity, 3);
    BL_CHECK_EQ(ei_decode_atom(b, &i, atom), 0);
    BL_CHECK(strcmp(atom, "ping") == 0);
    BL_CHECK_EQ(bl_dist_decode_pid(b, &i, &from), 0);
    BL_CHECK_EQ(ei_decode_binary(b, &i, bin, &blen), 0);
    /* A pid of the Elixir node, and a send to a name: m->from is that process. */
    BL_CHECK(from >> 56);
    BL_CHECK_EQ(m->from, from);
    BL_CHECK(strcmp(bl_dist_pid_node(from), ex_name) == 0);
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "pong");
    ei_x_encode_binary(&x, bin, blen);
    BL_CHECK_EQ(bl_dist_send_term(from, x.buff, (size_t)x.index), 0);
    ei_x_free(&x);
    bl_msg_free(m);
}

static void elixir_calls_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    BL_CHECK(strcmp(bl_dist_node(), me) == 0);
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), -EALREADY);
    BL_CHECK_EQ(bl_dist_monitor_nodes(true), 0);
    bl_pid srv;
    BL_CHECK_EQ(bl_spawn(&srv, pong_server, NULL, NULL), 0);
    BL_CHECK_EQ(bl_register("blsrv", srv), 0);

    char cmd[160], answer[256];
    snprintf(cmd, sizeof cmd, "ping blsrv %s", me);
    BL_CHECK(dt_ask(ex, cmd, answer, sizeof answer));
    BL_CHECK(strcmp(answer, "pong hello") == 0);

    /* The Elixir node connected to us: nodeup, and both sides list it. */
    bl_msg *up = bl_test_recv_tag(BL_TAG_DIST_NODEUP, 5000);
    BL_CHECK(up && strcmp(up->data, ex_name) == 0);
    bl_msg_free(up);
    const char *nodes[4];
    BL_CHECK_EQ(bl_dist_nodes(nodes, 4), 1);
    BL_CHECK(strcmp(nodes[0], ex_name) == 0);
    BL_CHECK(dt_ask(ex, "hidden", answer, sizeof answer));
    BL_CHECK(strcmp(answer, me) == 0);

    /* The Elixir node goes away: nodedown. */
    close(ex->in);
    ex->in = -1;
    bl_msg *down = bl_test_recv_tag(BL_TAG_DIST_NODEDOWN, 20000);
    BL_CHECK(down && strcmp(down->data, ex_name) == 0);
    bl_msg_free(down);
    BL_CHECK_EQ(bl_dist_nodes(nodes, 4), 0);
    BL_CHECK_EQ(bl_dist_stop(), 0);
    BL_CHECK_EQ(bl_dist_stop(), -ENOTCONN);
}

Test(dist, elixir_sends_to_a_registered_process_and_gets_an_answer, .init = setup,
     .fini = dt_stop_all)
{
    bl_test_run(NULL, elixir_calls_main, NULL);
}

static void beamline_calls_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    BL_CHECK_EQ(bl_dist_connect(ex_name), 0);
    BL_CHECK_EQ(bl_dist_connect(ex_name), 0); /* connected already */

    /* A plain message to {echo, node} comes back unchanged, from the echo process. */
    bl_pid echo = dt_echo_pid(ex_name, 7, "abc");
    char text[64];
    BL_CHECK(bl_pid_format(echo, text, sizeof text) > 0);
    BL_CHECK(text[0] == '<' && text[1] != '0');

    /* bl_send to the remote pid itself; an empty payload too. */
    BL_CHECK_EQ(bl_send(echo, 8, "xyz", 3), 0);
    BL_CHECK_EQ(bl_send(echo, 9, NULL, 0), 0);
    BL_CHECK_EQ(dt_expect(8, "xyz", 3), echo);
    BL_CHECK_EQ(dt_expect(9, NULL, 0), echo);

    /* A term: {ping, self(), <<"hi">>} answered with {pong, <<"hi">>}. */
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 3);
    ei_x_encode_atom(&x, "ping");
    BL_CHECK_EQ(bl_dist_x_encode_pid(&x, bl_self()), 0);
    ei_x_encode_binary(&x, "hi", 2);
    BL_CHECK_EQ(bl_dist_send_term_name("echo", ex_name, x.buff, (size_t)x.index), 0);
    ei_x_free(&x);
    bl_msg *m = bl_test_recv_tag(BL_TAG_DIST_TERM, 10000);
    BL_CHECK(m != NULL);
    if (m) {
        int i = 0, v, arity;
        char atom[MAXATOMLEN_UTF8], bin[8];
        long blen = 0;
        BL_CHECK_EQ(ei_decode_version(m->data, &i, &v), 0);
        BL_CHECK_EQ(ei_decode_tuple_header(m->data, &i, &arity), 0);
        BL_CHECK_EQ(ei_decode_atom(m->data, &i, atom), 0);
        BL_CHECK(strcmp(atom, "pong") == 0);
        BL_CHECK_EQ(ei_decode_binary(m->data, &i, bin, &blen), 0);
        BL_CHECK(blen == 2 && memcmp(bin, "hi", 2) == 0);
        BL_CHECK_EQ((size_t)i, m->len);
    }
    bl_msg_free(m);

    /* Bad input is an error for the caller. */
    BL_CHECK_EQ(bl_dist_send_term(echo, "\x83\x61", 2), -EINVAL); /* truncated */
    BL_CHECK_EQ(bl_dist_send_term(echo, "abc", 3), -EINVAL);      /* no version byte */
    BL_CHECK_EQ(bl_send(echo, BL_TAG_SYSTEM, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_dist_send_name("echo", "nohostpart", 1, "x", 1), -EINVAL);
    BL_CHECK_EQ(bl_dist_connect(me), -EINVAL);
    char nohost[96];
    snprintf(nohost, sizeof nohost, "nobody%d@%s", (int)getpid(), dt_host);
    BL_CHECK_EQ(bl_dist_connect(nohost), -EHOSTUNREACH);
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist, beamline_sends_to_an_elixir_process_and_gets_an_answer, .init = setup,
     .fini = dt_stop_all)
{
    bl_test_run(NULL, beamline_calls_main, NULL);
}

static void wrong_cookie_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, "not-the-cookie", &o), 0);
    /* Elixir connects to us: refused, and logged with its name. */
    char cmd[160], answer[64], line[160];
    snprintf(cmd, sizeof cmd, "connect %s", me);
    BL_CHECK(dt_ask(ex, cmd, answer, sizeof answer));
    BL_CHECK(strcmp(answer, "false") == 0);
    snprintf(line, sizeof line, "refused connection from %s", ex_name);
    BL_CHECK(dt_wait_logged(line, 5000));
    /* We connect to Elixir: it refuses. */
    BL_CHECK_EQ(bl_dist_connect(ex_name), -ECONNREFUSED);
    const char *nodes[2];
    BL_CHECK_EQ(bl_dist_nodes(nodes, 2), 0);
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist, a_wrong_cookie_is_refused_and_logged, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, wrong_cookie_main, NULL);
}
