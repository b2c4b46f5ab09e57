/*
 * gen_server bad results: a result no Elixir tuple could spell stops the
 * server with bad_return_value (BL_GS_EBADRETURN), terminate runs, and a
 * caller waiting on the call gets the exit instead of hanging.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"

/* What a callback does with its result (the request's tag, or the cast's, or the info's). */
enum {
    R_IGNORE = 1,     /* ignore (init only) */
    R_TMO_CONT,       /* timeout + continue */
    R_TMO_HIB,        /* timeout + hibernate */
    R_REPLY_STOP_TMO, /* reply, stop and timeout */
    R_STOP_BAD,       /* stop with a reason of no known kind */
    R_NEG_TMO,        /* timeout -5 */
    R_CONT_IGNORE,    /* continue, whose handle_continue ignores */
    /* valid ones */
    R_REPLY_CONT, /* reply + continue */
    R_INFINITY,   /* reply + timeout infinity */
    R_HIBERNATE,  /* reply + hibernate */
    R_REPLY_STOP, /* reply + stop normal */
    T_TERM = 50,  /* to the test: terminate ran (payload: the reason's code) */
};

typedef struct srv {
    bl_pid test;
    int init_mode;
} srv;

static void apply(int what, bl_gs_result *r)
{
    switch (what) {
    case R_IGNORE:
        bl_gs_ignore(r);
        break;
    case R_TMO_CONT:
        bl_gs_timeout(r, 100);
        bl_gs_continue(r, "x", 1);
        break;
    case R_TMO_HIB:
        bl_gs_timeout(r, 100);
        bl_gs_hibernate(r);
        break;
    case R_REPLY_STOP_TMO:
        bl_gs_reply(r, "late", 5);
        bl_gs_stop(r, NULL);
        bl_gs_timeout(r, 100);
        break;
    case R_STOP_BAD: {
        /* (kill is a valid reason to stop with, as in Erlang: see test_gen_server_stop_kill.c) */
        bl_reason bad = {.kind = (bl_reason_kind)(BL_NOCONNECTION + 1)};
        bl_gs_stop(r, &bad);
        break;
    }
    case R_NEG_TMO:
        bl_gs_timeout(r, -5);
        break;
    case R_CONT_IGNORE:
        bl_gs_continue(r, "i", 1);
        break;
    case R_REPLY_CONT:
        bl_gs_continue(r, "ok", 2);
        break;
    case R_INFINITY:
        bl_gs_timeout(r, BL_INFINITY);
        break;
    case R_HIBERNATE:
        bl_gs_hibernate(r);
        break;
    case R_REPLY_STOP:
        bl_gs_stop(r, NULL);
        break;
    }
}

static void b_init(void *arg, void **state, bl_gs_result *r)
{
    srv *s = arg;
    *state = s;
    if (s->init_mode == R_IGNORE) {
        bl_gs_ignore(r);
        bl_gs_continue(r, "x", 1);
    } else if (s->init_mode) {
        apply(s->init_mode, r);
    }
}

static void b_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    /* The valid results reply first; R_REPLY_STOP_TMO replies in apply. */
    if (m->tag >= R_REPLY_CONT) bl_gs_reply(r, "ok", 3);
    apply((int)m->tag, r);
}

static void b_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    apply((int)m->tag, r);
}

static void b_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    if (m->tag < BL_TAG_SYSTEM) apply((int)m->tag, r);
}

static void b_continue(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    if (len == 1 && *(const char *)arg == 'i') bl_gs_ignore(r);
}

static void b_terminate(void **state, const bl_reason *reason)
{
    srv *s = *state;
    int code = reason->kind == BL_CUSTOM ? reason->code : -1;
    bl_send(s->test, T_TERM, &code, sizeof code);
}

static const bl_gen_server b_cb = {
    .init = b_init,
    .handle_call = b_call,
    .handle_cast = b_cast,
    .handle_info = b_info,
    .handle_continue = b_continue,
    .terminate = b_terminate,
};

static int terminated(void)
{
    bl_msg *m = bl_test_recv_tag(T_TERM, 2000);
    int code = -2;
    if (m) memcpy(&code, m->data, sizeof code);
    bl_msg_free(m);
    return code;
}

/* The detail of a bad_return_value reason, as text; "" for any other reason. */
static void detail_of(const bl_msg *m, char *buf, size_t len)
{
    bl_reason why;
    buf[0] = 0;
    if (!m || bl_msg_reason(m, &why) != 0 || why.kind != BL_CUSTOM ||
        why.code != BL_GS_EBADRETURN || why.detail_len >= len)
        return;
    memcpy(buf, why.detail, why.detail_len);
    buf[why.detail_len] = 0;
}

static bl_pid start(srv *s)
{
    bl_pid pid = 0;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &b_cb, s, NULL), 0);
    return pid;
}

/* A call whose result is bad: the caller gets the exit, terminate ran. */
static void bad_call(srv *s, int what, const char *want)
{
    bl_pid pid = start(s);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, (uint32_t)what, NULL, 0, &m, 2000), -ECONNRESET);
    char text[128];
    detail_of(m, text, sizeof text);
    BL_CHECK(strcmp(text, want) == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(terminated(), BL_GS_EBADRETURN);
    BL_CHECK(!bl_is_alive(pid));
}

/* A cast or info whose result is bad: the server goes down the same way. */
static void bad_async(srv *s, int what, bool cast, const char *want)
{
    bl_pid pid = start(s);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    if (cast)
        BL_CHECK_EQ(bl_gen_server_cast(pid, (uint32_t)what, NULL, 0), 0);
    else
        BL_CHECK_EQ(bl_send(pid, (uint32_t)what, NULL, 0), 0);
    BL_CHECK_EQ(terminated(), BL_GS_EBADRETURN);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 2000, 0), 0);
    char text[128];
    detail_of(m, text, sizeof text);
    BL_CHECK(strcmp(text, want) == 0);
    bl_msg_free(m);
}

static void calls_main(void *arg)
{
    srv s = {.test = bl_self()};
    bad_call(&s, R_IGNORE, "handle_call: ignore, which only init may give");
    bad_call(&s, R_TMO_CONT, "handle_call: more than one of timeout, hibernate and continue");
    bad_call(&s, R_TMO_HIB, "handle_call: more than one of timeout, hibernate and continue");
    bad_call(&s, R_STOP_BAD, "handle_call: stop with a bad reason");
    bad_call(&s, R_NEG_TMO, "handle_call: a negative timeout");
    bad_call(&s, R_CONT_IGNORE, "handle_continue: ignore, which only init may give");
    /* A reply sent before the bad result stays sent; the server still goes. */
    bl_pid pid = start(&s);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, R_REPLY_STOP_TMO, NULL, 0, &m, 2000), 0);
    BL_CHECK(m && m->len == 5 && strcmp(m->data, "late") == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(terminated(), BL_GS_EBADRETURN);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 2000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_badreturn, handle_call)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, calls_main, NULL);
}

static void async_main(void *arg)
{
    srv s = {.test = bl_self()};
    bad_async(&s, R_IGNORE, true, "handle_cast: ignore, which only init may give");
    bad_async(&s, R_TMO_HIB, true, "handle_cast: more than one of timeout, hibernate and continue");
    bad_async(&s, R_IGNORE, false, "handle_info: ignore, which only init may give");
    bad_async(&s, R_NEG_TMO, false, "handle_info: a negative timeout");
    bad_async(&s, R_CONT_IGNORE, true, "handle_continue: ignore, which only init may give");
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_badreturn, cast_info_continue)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, async_main, NULL);
}

static void init_main(void *arg)
{
    /* ignore + continue from init: start fails, terminate does not run. */
    srv s = {.test = bl_self(), .init_mode = R_IGNORE};
    bl_msg *err = NULL;
    bl_gen_server_opts o = {.error = &err};
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &b_cb, &s, &o), -ECHILD);
    char text[128];
    detail_of(err, text, sizeof text);
    BL_CHECK(strcmp(text, "init: ignore with a timeout, hibernate or continue") == 0);
    bl_msg_free(err);
    s.init_mode = R_STOP_BAD;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &b_cb, &s, &o), -ECHILD);
    detail_of(err, text, sizeof text);
    BL_CHECK(strcmp(text, "init: stop with a bad reason") == 0);
    bl_msg_free(err);
    BL_CHECK(bl_test_recv_tag(T_TERM, 50) == NULL);
    /* Valid results from init still start the server. */
    s.init_mode = R_HIBERNATE;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &b_cb, &s, NULL), 0);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(terminated(), -1);
}

Test(gen_server_badreturn, init)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, init_main, NULL);
}

/* Every valid combination still works. */
static void valid_main(void *arg)
{
    srv s = {.test = bl_self()};
    bl_pid pid = start(&s);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, R_REPLY_CONT, NULL, 0, &m, 1000), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_call(pid, R_INFINITY, NULL, 0, &m, 1000), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_call(pid, R_HIBERNATE, NULL, 0, &m, 1000), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_cast(pid, R_HIBERNATE, NULL, 0), 0);
    BL_CHECK(bl_is_alive(pid));
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    BL_CHECK_EQ(bl_gen_server_call(pid, R_REPLY_STOP, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && strcmp(m->data, "ok") == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(terminated(), -1); /* normal */
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 2000, 0), 0);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_badreturn, valid_results)
{
    bl_test_run(NULL, valid_main, NULL);
}
