/*
 * gen_server over the wire with a real Elixir node: GenServer.call and
 * cast from Elixir to a Beamline server, bl_gen_server_call / cast to an
 * Elixir GenServer by {name, node} and by pid; noproc, timeouts (the late
 * reply never reaching the mailbox), a server dying, a node out of reach.
 */
#include "dist_test.h"

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

#define ask(...) dt_ask_is(ex, __VA_ARGS__)

/* ---- a Beamline server for Elixir to call ---- */

typedef struct kv {
    char last_cast[256]; /* the last cast's term */
    size_t last_len;
} kv;

static bool is_atom(const bl_msg *m, const char *want)
{
    int i = 1;
    char atom[MAXATOMLEN_UTF8];
    return m->tag == BL_TAG_DIST_TERM && ei_decode_atom(m->data, &i, atom) == 0 &&
           strcmp(atom, want) == 0;
}

/* {got, Request}; `last_cast` gets the last cast; `slow` no reply; `crash` stops with custom 9. */
static void kv_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    kv *s = *state;
    if (is_atom(m, "slow")) return;
    if (is_atom(m, "crash")) {
        bl_reason nine = {BL_CUSTOM, 9, NULL, 0};
        bl_gs_stop(r, &nine);
        return;
    }
    if (is_atom(m, "last_cast")) {
        bl_gs_reply(r, s->last_cast, s->last_len);
        return;
    }
    ei_x_buff x;
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_atom(&x, "got");
    if (m->tag == BL_TAG_DIST_TERM)
        ei_x_append_buf(&x, (const char *)m->data + 1, (int)m->len - 1);
    else /* bytes from a Beamline caller: {tag, bytes} */
        ei_x_encode_tuple_header(&x, 2), ei_x_encode_long(&x, m->tag),
            ei_x_encode_binary(&x, m->data, (long)m->len);
    bl_gs_reply(r, x.buff, (size_t)x.index);
    ei_x_free(&x);
}

static void kv_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    kv *s = *state;
    if (m->tag == BL_TAG_DIST_TERM && m->len <= sizeof s->last_cast) {
        memcpy(s->last_cast, m->data, m->len);
        s->last_len = m->len;
    }
}

static const bl_gen_server kv_cb = {.handle_call = kv_call, .handle_cast = kv_cast};

static void elixir_calls_beamline(void)
{
    static kv state;
    bl_name name = BL_NAME_LOCAL("kv");
    bl_gen_server_opts o = {.name = &name};
    bl_pid srv;
    BL_CHECK_EQ(bl_gen_server_start(&srv, &kv_cb, &state, &o), 0);
    ask("{:got, {:hello, 1, \"two\"}}", "call kv %s 5000 {:hello, 1, \"two\"}", me);
    ask("ok", "cast kv %s {:note, 5}", me);
    ask("{:note, 5}", "call kv %s 5000 :last_cast", me);
    ask("exit :noproc", "call nokv %s 5000 :x", me);
    ask("exit :timeout", "call kv %s 300 :slow", me);
    ask("{:got, :after}", "call kv %s 5000 :after", me);
    ask("exit {:beamline, 9}", "call kv %s 5000 :crash", me);
}

/* ---- Beamline calls the Elixir GenServer :exkv ---- */

/* A term of one atom, or a tuple {a, b, c} of atom, atom, int. */
static void term(ei_x_buff *x, const char *a, const char *b, long c, int arity)
{
    ei_x_new_with_version(x);
    if (arity > 1) ei_x_encode_tuple_header(x, arity);
    ei_x_encode_atom(x, a);
    if (arity > 1) ei_x_encode_atom(x, b);
    if (arity > 2) ei_x_encode_long(x, c);
}

/* The reply m is the term t. */
static void reply_is(bl_msg *m, const ei_x_buff *t)
{
    BL_CHECK(m != NULL);
    if (!m) return;
    BL_CHECK(m->len == (size_t)t->index && memcmp(m->data, t->buff, m->len) == 0);
    bl_msg_free(m);
}

/* {get, key} to the server answers value. */
static void get_is(bl_gs_dest server, const char *key, long value, int64_t timeout)
{
    ei_x_buff q, want;
    bl_msg *m = NULL;
    term(&q, "get", key, 0, 2);
    BL_CHECK_EQ(bl_gen_server_call_to(server, 1, q.buff, (size_t)q.index, &m, timeout), 0);
    ei_x_new_with_version(&want);
    ei_x_encode_long(&want, value);
    reply_is(m, &want);
    ei_x_free(&q);
    ei_x_free(&want);
}

static void beamline_calls_elixir(void)
{
    bl_gs_dest exkv = BL_GS_REMOTE("exkv", ex_name);
    ei_x_buff q, want;
    bl_msg *m = NULL;
    term(&q, "put", "a", 1, 3);
    BL_CHECK_EQ(bl_gen_server_call_to(exkv, 1, q.buff, (size_t)q.index, &m, 5000), 0);
    term(&want, "ok", NULL, 0, 1);
    reply_is(m, &want);
    ei_x_free(&q);
    ei_x_free(&want);
    term(&q, "put", "b", 2, 3);
    BL_CHECK_EQ(bl_gen_server_cast_to(exkv, 1, q.buff, (size_t)q.index), 0);
    ei_x_free(&q);
    get_is(exkv, "b", 2, 5000);

    /* Bytes that are no term travel as {'$bl', Tag, Bin}: ExKv echoes them. */
    BL_CHECK_EQ(bl_gen_server_call_to(exkv, 7, "raw", 3, &m, 5000), 0);
    ei_x_new_with_version(&want);
    ei_x_encode_tuple_header(&want, 2);
    ei_x_encode_atom(&want, "echo");
    ei_x_encode_tuple_header(&want, 3);
    ei_x_encode_atom(&want, "$bl");
    ei_x_encode_long(&want, 7);
    ei_x_encode_binary(&want, "raw", 3);
    reply_is(m, &want);
    ei_x_free(&want);

    /* By pid: the server's pid from its own answer. */
    term(&q, "whoami", NULL, 0, 1);
    BL_CHECK_EQ(bl_gen_server_call_to(exkv, 1, q.buff, (size_t)q.index, &m, 5000), 0);
    bl_pid pid = BL_PID_NONE;
    int i = 1;
    BL_CHECK(m && bl_dist_decode_pid(m->data, &i, &pid) == 0 && (pid >> 56));
    bl_msg_free(m);
    term(&want, "echo", "x", 0, 2);
    ei_x_free(&q);
    term(&q, "x", NULL, 0, 1);
    BL_CHECK_EQ(bl_gen_server_call(pid, 1, q.buff, (size_t)q.index, &m, 5000), 0);
    reply_is(m, &want);
    ei_x_free(&q);
    ei_x_free(&want);

    /* noproc, and a node nobody runs: nodedown. */
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_REMOTE("nosuch", ex_name), 1, "x", 1, &m, 5000),
                -ESRCH);
    char nowhere[64];
    dt_node("nosuch", nowhere, sizeof nowhere);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_REMOTE("exkv", nowhere), 1, "x", 1, &m, 5000),
                -EHOSTUNREACH);
    BL_CHECK_EQ(bl_gen_server_stop_to(exkv, NULL, 1000), -EOPNOTSUPP);

    /* A timeout; the late reply comes before the next call's and never shows. */
    term(&q, "slow", NULL, 0, 1);
    BL_CHECK_EQ(bl_gen_server_call_to(exkv, 1, q.buff, (size_t)q.index, &m, 300), -ETIMEDOUT);
    ei_x_free(&q);
    get_is(exkv, "a", 1, 10000);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* The server dies in the call: its DOWN, with Erlang's reason. */
    term(&q, "crash", NULL, 0, 1);
    BL_CHECK_EQ(bl_gen_server_call_to(exkv, 1, q.buff, (size_t)q.index, &m, 5000), -ECONNRESET);
    ei_x_free(&q);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_CUSTOM &&
             why.code == BL_DIST_REASON_TERM);
    bl_msg_free(m);
}

static void gs_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    elixir_calls_beamline();
    beamline_calls_elixir();
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_gs, gen_server_calls_cross_both_ways, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, gs_main, NULL);
}
