/*
 * The frame decoder under mutated real frames: sends, registered sends,
 * links, exits, monitors, their ends and gen_server calls, built with ei,
 * then bit flips, cut frames, changed length fields and overwritten bytes,
 * thousands of them from a seeded generator (the same every run), each on
 * a connection of its own, bounded in count and time.  The node must go
 * on: no crash, and the Elixir node's connection keeps being served.
 */
#include "dist_test.h"
#include "beamline/dirty.h"

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

typedef struct fuzz {
    ei_x_buff frames[8]; /* the real frames */
    int nframes;
    int rounds;  /* mutations to send */
    int64_t end; /* and the deadline (bl_test_ms) */
    int sent;    /* mutations sent */
} fuzz;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Frame i's control message (and message): [len]['p'][131 ctl][131 msg]. */
static ei_x_buff *frame_begin(fuzz *f)
{
    ei_x_buff *x = &f->frames[f->nframes++];
    ei_x_new(x);
    ei_x_append_buf(x, "\0\0\0\0p", 5);
    ei_x_encode_version(x);
    return x;
}

static void frame_end(ei_x_buff *x)
{
    uint32_t n = (uint32_t)x->index - 4;
    x->buff[0] = (char)(n >> 24), x->buff[1] = (char)(n >> 16), x->buff[2] = (char)(n >> 8);
    x->buff[3] = (char)n;
}

/* The real frames: every control message the node handles, to the sink, from the peer `from`. */
static void build(fuzz *f, const erlang_pid *sink, const erlang_pid *from)
{
    erlang_ref ref = {.len = 3, .n = {1, 2, 3}, .creation = from->creation};
    strcpy(ref.node, from->node);
    ei_x_buff *x = frame_begin(f); /* {2, '', Sink} + {'$bl', From, 1, <<"data">>} */
    ei_x_encode_tuple_header(x, 3), ei_x_encode_long(x, 2), ei_x_encode_atom(x, "");
    ei_x_encode_pid(x, sink), ei_x_encode_version(x), ei_x_encode_tuple_header(x, 4);
    ei_x_encode_atom(x, "$bl"), ei_x_encode_pid(x, from), ei_x_encode_long(x, 1);
    ei_x_encode_binary(x, "data", 4), frame_end(x);
    x = frame_begin(f); /* {6, From, '', blsink} + {'$gen_call', {From, [alias|Ref]}, {a, [1,2]}} */
    ei_x_encode_tuple_header(x, 4), ei_x_encode_long(x, 6), ei_x_encode_pid(x, from);
    ei_x_encode_atom(x, ""), ei_x_encode_atom(x, "blsink"), ei_x_encode_version(x);
    ei_x_encode_tuple_header(x, 3), ei_x_encode_atom(x, "$gen_call");
    ei_x_encode_tuple_header(x, 2), ei_x_encode_pid(x, from), ei_x_encode_list_header(x, 1);
    ei_x_encode_atom(x, "alias"), ei_x_encode_ref(x, &ref), ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "a"), ei_x_encode_list_header(x, 2), ei_x_encode_long(x, 1);
    ei_x_encode_long(x, 2), ei_x_encode_empty_list(x), frame_end(x);
    x = frame_begin(f); /* {1, From, Sink}: a link */
    ei_x_encode_tuple_header(x, 3), ei_x_encode_long(x, 1), ei_x_encode_pid(x, from);
    ei_x_encode_pid(x, sink), frame_end(x);
    x = frame_begin(f); /* {3, From, Sink, {shutdown, <<"x">>}} */
    ei_x_encode_tuple_header(x, 4), ei_x_encode_long(x, 3), ei_x_encode_pid(x, from);
    ei_x_encode_pid(x, sink), ei_x_encode_tuple_header(x, 2), ei_x_encode_atom(x, "shutdown");
    ei_x_encode_binary(x, "x", 1), frame_end(x);
    x = frame_begin(f); /* {19, From, blsink, Ref}: a monitor by name */
    ei_x_encode_tuple_header(x, 4), ei_x_encode_long(x, 19), ei_x_encode_pid(x, from);
    ei_x_encode_atom(x, "blsink"), ei_x_encode_ref(x, &ref), frame_end(x);
    x = frame_begin(f); /* {21, From, Sink, Ref, {beamline, 3, <<"d">>}} */
    ei_x_encode_tuple_header(x, 5), ei_x_encode_long(x, 21), ei_x_encode_pid(x, from);
    ei_x_encode_pid(x, sink), ei_x_encode_ref(x, &ref), ei_x_encode_tuple_header(x, 3);
    ei_x_encode_atom(x, "beamline"), ei_x_encode_long(x, 3), ei_x_encode_binary(x, "d", 1);
    frame_end(x);
    x = frame_begin(f); /* {35, 7, From, Sink}: an unlink */
    ei_x_encode_tuple_header(x, 4), ei_x_encode_long(x, 35), ei_x_encode_long(x, 7);
    ei_x_encode_pid(x, from), ei_x_encode_pid(x, sink), frame_end(x);
    x = frame_begin(f); /* {8, From, Sink, kill}: exit/2 (the sink traps exits, kill it cannot) */
    ei_x_encode_tuple_header(x, 4), ei_x_encode_long(x, 8), ei_x_encode_pid(x, from);
    ei_x_encode_pid(x, sink), ei_x_encode_atom(x, "normal"), frame_end(x);
}

/* One mutation of frame src into dst: its length. */
static size_t mutate(uint64_t *s, const ei_x_buff *src, uint8_t *dst)
{
    size_t len = (size_t)src->index;
    memcpy(dst, src->buff, len);
    switch (rnd(s) % 4) {
    case 0: /* bit flips past the length */
        for (int k = 1 + (int)(rnd(s) % 3); k-- > 0;) {
            size_t at = 4 + rnd(s) % (len - 4);
            dst[at] ^= (uint8_t)(1u << (rnd(s) % 8));
        }
        break;
    case 1: { /* cut short, the length saying so */
        size_t cut = 5 + rnd(s) % (len - 5);
        uint32_t n = (uint32_t)cut - 4;
        dst[0] = (uint8_t)(n >> 24), dst[1] = (uint8_t)(n >> 16), dst[2] = (uint8_t)(n >> 8);
        dst[3] = (uint8_t)n;
        len = cut;
        break;
    }
    case 2: { /* a length field that lies, in the frame or in a term */
        uint32_t n = (uint32_t)(rnd(s) % (2 * len));
        size_t at = rnd(s) % 2 ? 0 : 4 + rnd(s) % (len - 8);
        dst[at] = (uint8_t)(n >> 24), dst[at + 1] = (uint8_t)(n >> 16);
        dst[at + 2] = (uint8_t)(n >> 8), dst[at + 3] = (uint8_t)n;
        break;
    }
    default: /* bytes overwritten, tags among them */
        for (int k = 1 + (int)(rnd(s) % 3); k-- > 0;) dst[4 + rnd(s) % (len - 4)] = (uint8_t)rnd(s);
        break;
    }
    return len;
}

static long run_fuzz(void *arg)
{
    fuzz *f = arg;
    char alive[32], node[96];
    snprintf(alive, sizeof alive, "fuzz%d", (int)getpid());
    snprintf(node, sizeof node, "%s@%s", alive, dt_host);
    ei_cnode ec;
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    if (ei_connect_xinit(&ec, dt_host, alive, node, &lo, dt_cookie, 0) < 0) return -1;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    static uint8_t buf[4096];
    for (f->sent = 0; f->sent < f->rounds && bl_test_ms() < f->end; f->sent++) {
        int fd = ei_connect_tmo(&ec, me, 5000);
        if (fd < 0) return -2;
        const ei_x_buff *src = &f->frames[rnd(&seed) % (uint64_t)f->nframes];
        size_t len = mutate(&seed, src, buf);
        ssize_t w = write(fd, buf, len);
        (void)w; /* the node may have closed it already */
        ei_close_connection(fd);
    }
    return 0;
}

static void sink(void *arg)
{
    bl_trap_exit(true);
    for (;;) bl_msg_free(bl_receive(BL_INFINITY));
}

static void fuzz_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    o.max_message = 4096;
    /* A mutated LINK may name this process (any local pid is fair game to a
     * peer): the link's exit, noconnection when the fuzzing connection
     * closes, must arrive as a message, as Erlang's would to a trapper. */
    bl_trap_exit(true);
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    bl_pid s;
    BL_CHECK_EQ(bl_spawn(&s, sink, NULL, NULL), 0);
    BL_CHECK_EQ(bl_register("blsink", s), 0);
    dt_echo_pid(ex_name, 1, "before");

    static fuzz f;
    erlang_pid sink_ep, from = {.num = 1, .serial = 0, .creation = 7};
    int i = 0;
    ei_x_buff x;
    ei_x_new(&x);
    BL_CHECK_EQ(bl_dist_x_encode_pid(&x, s), 0);
    BL_CHECK_EQ(ei_decode_pid(x.buff, &i, &sink_ep), 0);
    ei_x_free(&x);
    snprintf(from.node, sizeof from.node, "fuzz%d@%s", (int)getpid(), dt_host);
    build(&f, &sink_ep, &from);
    f.rounds = BL_SCALE(2000);
    f.end = bl_test_ms() + 60000;
    long r = -100;
    BL_CHECK_EQ(bl_dirty_run(run_fuzz, &f, &r), 0);
    BL_CHECK_EQ(r, 0);
    BL_CHECK(f.sent >= BL_SCALE(2000) / 4);        /* most of them within the time */
    BL_CHECK(dt_wait_logged("undecodable", 5000)); /* they reached the decoder */
    for (int k = 0; k < f.nframes; k++) ei_x_free(&f.frames[k]);

    /* Still a node: the sink lives, and the Elixir connection is served. */
    BL_CHECK(bl_is_alive(s));
    dt_echo_pid(ex_name, 2, "after");
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_fuzz, mutated_frames_never_take_the_node_down, .init = setup, .fini = dt_stop_all,
     .timeout = 200)
{
    bl_test_run(NULL, fuzz_main, NULL);
}
