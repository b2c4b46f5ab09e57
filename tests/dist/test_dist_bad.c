/*
 * Bad input from a node: a malformed frame, a frame of an unknown type, an
 * oversized one, an undecodable message term, a frame cut short.  Each
 * closes only the connection it came on, with a log line saying why; the
 * Elixir node connected meanwhile goes on being served, and what came
 * before the bad frame on the same connection was delivered.
 *
 * The bad peer is a plain ei C node (ei's default, blocking sockets) run
 * on the dirty-work pool: it shakes hands properly, then writes raw bytes.
 */
#include "dist_test.h"
#include "beamline/dirty.h"

#define MAX_MESSAGE 4096

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

typedef struct bad_peer {
    const uint8_t *bytes; /* written after a good frame, raw */
    size_t len;
    bool close_after; /* close at once instead of waiting to be closed */
    int result;       /* 1: the node closed the connection, 0: it did not, < 0: set-up */
} bad_peer;

/* {6, Self, '', blsink} + {bad, N}: a good frame to the registered sink, first. */
static int good_frame(ei_cnode *ec, int fd, long n)
{
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "bad");
    ei_x_encode_long(&x, n);
    int rc = ei_reg_send(ec, fd, "blsink", x.buff, x.index);
    ei_x_free(&x);
    return rc;
}

static long run_bad_peer(void *arg)
{
    bad_peer *b = arg;
    static int seq;
    char alive[32], node[96];
    snprintf(alive, sizeof alive, "evil%d_%d", (int)getpid(), seq++);
    snprintf(node, sizeof node, "%s@%s", alive, dt_host);
    ei_cnode ec;
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    if (ei_connect_xinit(&ec, dt_host, alive, node, &lo, dt_cookie, 0) < 0) return -1;
    int fd = ei_connect_tmo(&ec, me, 5000);
    if (fd < 0) return -2;
    if (good_frame(&ec, fd, (long)b->len) < 0) return -3;
    if (write(fd, b->bytes, b->len) != (ssize_t)b->len) return -4;
    if (b->close_after) {
        ei_close_connection(fd);
        return 1;
    }
    /* Closed by the node within 5 s: read sees the end (or a reset). */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    long closed = 0;
    char buf[256];
    for (int i = 0; i < 50 && !closed; i++) {
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(fd, buf, sizeof buf);
        closed = r <= 0;
    }
    ei_close_connection(fd);
    return closed;
}

static _Atomic int sunk; /* good frames the sink got */

static void sink(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (m && m->tag == BL_TAG_DIST_TERM) atomic_fetch_add(&sunk, 1);
        bl_msg_free(m);
    }
}

/* Runs one bad peer; returns its result. */
static int bad(const void *bytes, size_t len, bool close_after)
{
    bad_peer b = {.bytes = bytes, .len = len, .close_after = close_after};
    long r = -100;
    BL_CHECK_EQ(bl_dirty_run(run_bad_peer, &b, &r), 0);
    return (int)r;
}

static void bad_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    o.max_message = MAX_MESSAGE;
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    bl_pid s;
    BL_CHECK_EQ(bl_spawn(&s, sink, NULL, NULL), 0);
    BL_CHECK_EQ(bl_register("blsink", s), 0);
    char cmd[160], answer[64];
    snprintf(cmd, sizeof cmd, "ping echo %s", ex_name); /* Elixir to itself: warm up */
    BL_CHECK(dt_ask(ex, cmd, answer, sizeof answer));
    BL_CHECK_EQ(bl_dist_connect(ex_name), 0);

    /* 'p', a version byte, then a tag that is no term. */
    static const uint8_t garbage[] = {0, 0, 0, 3, 112, 131, 255};
    BL_CHECK_EQ(bad(garbage, sizeof garbage, false), 1);
    BL_CHECK(dt_wait_logged("undecodable control message", 5000));

    static const uint8_t unknown_type[] = {0, 0, 0, 2, 'D', 0};
    BL_CHECK_EQ(bad(unknown_type, sizeof unknown_type, false), 1);
    BL_CHECK(dt_wait_logged("frame of unknown type", 5000));

    static const uint8_t oversized[] = {0, 0, 0x10, 0x01, 112}; /* 4096 + 1 bytes announced */
    BL_CHECK_EQ(bad(oversized, sizeof oversized, false), 1);
    BL_CHECK(dt_wait_logged("oversized message (4097 bytes", 5000));

    /* {2, '', <0.1.0>} and a binary that claims 10 bytes and has 1. */
    ei_x_buff x;
    ei_x_new(&x);
    ei_x_append_buf(&x, "\0\0\0\0p", 5);
    ei_x_encode_version(&x);
    ei_x_encode_tuple_header(&x, 3);
    ei_x_encode_long(&x, 2);
    ei_x_encode_atom(&x, "");
    BL_CHECK_EQ(bl_dist_x_encode_pid(&x, s), 0);
    ei_x_append_buf(&x,
                    "\x83\x6d\0\0\0\x0a"
                    "a",
                    7);
    uint32_t n = (uint32_t)x.index - 4;
    x.buff[0] = (char)(n >> 24), x.buff[1] = (char)(n >> 16), x.buff[2] = (char)(n >> 8);
    x.buff[3] = (char)n;
    BL_CHECK_EQ(bad(x.buff, (size_t)x.index, false), 1);
    ei_x_free(&x);
    BL_CHECK(dt_wait_logged("undecodable message term", 5000));

    /* A frame cut short: 100 bytes announced, 3 sent, then the peer closes. */
    static const uint8_t cut[] = {0, 0, 0, 100, 112, 131, 97};
    BL_CHECK_EQ(bad(cut, sizeof cut, true), 1);
    BL_CHECK(dt_wait_logged("peer closed the connection", 5000));

    /* Each bad peer's good frame, sent before its bad one, was delivered. */
    for (int i = 0; i < 500 && atomic_load(&sunk) < 5; i++) bl_sleep(10);
    BL_CHECK_EQ(atomic_load(&sunk), 5);

    /* The Elixir connection went on all along, and the node still serves it. */
    const char *nodes[4];
    int k = bl_dist_nodes(nodes, 4);
    BL_CHECK(k >= 1);
    bool found = false;
    for (int i = 0; i < k && i < 4; i++) found |= strcmp(nodes[i], ex_name) == 0;
    BL_CHECK(found);
    dt_echo_pid(ex_name, 5, "still");
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_bad, bad_frames_close_only_their_connection, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, bad_main, NULL);
}
