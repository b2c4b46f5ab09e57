/*
 * gen_server: every callback result, start outcome, call error and sys call.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"

/* Requests of the test server. */
enum {
    Q_GET = 1,    /* call: reply the counter */
    Q_ADD,        /* cast/call: add the int payload */
    Q_SLOW,       /* call: sleep the int payload ms, then reply */
    Q_DEFER,      /* call: keep from, reply later */
    Q_ANSWER,     /* cast: answer the deferred call with the counter */
    Q_STOP_REPLY, /* call: reply, then stop normal */
    Q_CRASH,      /* call: stop with custom 77 */
    Q_TIMEOUT,    /* call: reply, and ask for a timeout of the int payload ms */
    Q_CONTINUE,   /* call: reply, then continue (adds 100 in handle_continue) */
    Q_CALL_SELF,  /* call: call yourself, reply the error */
    T_LOG = 50,   /* to the test: an event (int payload) */
};

/* Events the server reports to the test process. */
enum { EV_CONTINUE = 1, EV_INFO, EV_TIMEOUT, EV_TERMINATE, EV_INIT, EV_DEFER, EV_SLOW };

typedef struct srv {
    long counter;
    bl_pid test; /* where events go */
    bl_gs_from deferred;
    bool trap;
    bl_reason last_reason;
    int init_mode; /* see init_modes */
} srv;

enum { INIT_OK, INIT_CONTINUE, INIT_IGNORE, INIT_STOP, INIT_SLOW, INIT_TIMEOUT };

static void event(srv *s, int ev)
{
    bl_send(s->test, T_LOG, &ev, sizeof ev);
}

static int next_event(int64_t ms)
{
    bl_msg *m = bl_test_recv_tag(T_LOG, ms);
    if (!m) return -1;
    int ev;
    memcpy(&ev, m->data, sizeof ev);
    bl_msg_free(m);
    return ev;
}

static void s_init(void *arg, void **state, bl_gs_result *r)
{
    srv *s = arg;
    *state = s;
    if (s->trap) bl_trap_exit(true);
    switch (s->init_mode) {
    case INIT_CONTINUE:
        /* A message already queued must wait for handle_continue. */
        bl_send(bl_self(), 7, NULL, 0);
        bl_gs_continue(r, "c", 1);
        break;
    case INIT_IGNORE:
        bl_gs_ignore(r);
        break;
    case INIT_STOP: {
        bl_reason why = {.kind = BL_CUSTOM, .code = 5, .detail = "bad", .detail_len = 3};
        bl_gs_stop(r, &why);
        break;
    }
    case INIT_SLOW:
        bl_sleep(300);
        break;
    case INIT_TIMEOUT:
        bl_gs_timeout(r, 20);
        break;
    }
    event(s, EV_INIT);
}

static int as_int(const bl_msg *m)
{
    int v = 0;
    if (m->len >= sizeof v) memcpy(&v, m->data, sizeof v);
    return v;
}

static void s_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    switch (m->tag) {
    case Q_GET:
        bl_gs_reply(r, &s->counter, sizeof s->counter);
        break;
    case Q_ADD:
        s->counter += as_int(m);
        bl_gs_reply(r, &s->counter, sizeof s->counter);
        break;
    case Q_SLOW:
        event(s, EV_SLOW);
        bl_sleep(as_int(m));
        bl_gs_reply(r, &s->counter, sizeof s->counter);
        break;
    case Q_DEFER:
        s->deferred = r->from;
        event(s, EV_DEFER);
        break;
    case Q_STOP_REPLY:
        bl_gs_reply(r, "bye", 4);
        bl_gs_stop(r, NULL);
        break;
    case Q_CRASH: {
        bl_reason why = {.kind = BL_CUSTOM, .code = 77};
        bl_gs_stop(r, &why);
        break;
    }
    case Q_TIMEOUT:
        bl_gs_reply(r, NULL, 0);
        bl_gs_timeout(r, as_int(m));
        break;
    case Q_CONTINUE:
        bl_gs_reply(r, NULL, 0);
        bl_gs_continue(r, "x", 1);
        break;
    case Q_CALL_SELF: {
        bl_msg *rep = NULL;
        int rc = bl_gen_server_call(bl_self(), Q_GET, NULL, 0, &rep, 100);
        bl_gs_reply(r, &rc, sizeof rc);
        break;
    }
    }
}

static void s_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ADD) s->counter += as_int(m);
    if (m->tag == Q_ANSWER) {
        bl_gen_server_reply(s->deferred, &s->counter, sizeof s->counter);
        s->deferred = (bl_gs_from){0};
    }
}

static void s_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    event(s, m->tag == BL_TAG_GS_TIMEOUT ? EV_TIMEOUT : EV_INFO);
}

static void s_continue(void **state, const void *arg, size_t len, bl_gs_result *r)
{
    srv *s = *state;
    s->counter += 100;
    event(s, EV_CONTINUE);
}

static void s_terminate(void **state, const bl_reason *reason)
{
    srv *s = *state;
    s->last_reason = *reason;
    s->last_reason.detail = NULL;
    event(s, EV_TERMINATE);
}

static int s_status(void *state, char *buf, size_t len)
{
    srv *s = state;
    return snprintf(buf, len, "counter=%ld", s->counter);
}

static const bl_gen_server srv_cb = {
    .init = s_init,
    .handle_call = s_call,
    .handle_cast = s_cast,
    .handle_info = s_info,
    .handle_continue = s_continue,
    .terminate = s_terminate,
    .format_status = s_status,
};

static long get(bl_pid pid)
{
    bl_msg *m = NULL;
    long v = -1;
    if (bl_gen_server_call(pid, Q_GET, NULL, 0, &m, 5000) == 0) memcpy(&v, m->data, sizeof v);
    bl_msg_free(m);
    return v;
}

static bl_ref monitor(bl_pid pid)
{
    bl_ref ref = 0;
    bl_monitor(pid, &ref);
    return ref;
}

static int wait_down(bl_ref ref, bl_reason *why)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 5000, 0) != 0) return -1;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    if (why) {
        *why = r;
        why->detail = NULL;
    }
    bl_msg_free(m);
    return r.kind;
}

/* ---- basic call / cast / info / stop ---- */

static void basic_main(void *arg)
{
    srv s = {.test = bl_self()};
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    int five = 5;
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_ADD, &five, sizeof five, &m, 1000), 0);
    BL_CHECK(m && m->len == sizeof(long) && *(long *)m->data == 5);
    bl_msg_free(m);
    for (int i = 0; i < 10; i++) BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ADD, &five, sizeof five), 0);
    /* A call after casts from the same sender sees them all. */
    BL_CHECK_EQ(get(pid), 55);
    /* A plain send goes to handle_info. */
    BL_CHECK_EQ(bl_send(pid, 9, NULL, 0), 0);
    BL_CHECK_EQ(next_event(1000), EV_INFO);
    /* Idle: the server holds no stack. */
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(pid, &info), 0);
    BL_CHECK_EQ(info.stack_bytes, 0);
    BL_CHECK(info.handler);
    /* stop runs terminate with the reason and waits for the exit. */
    bl_ref ref = monitor(pid);
    bl_reason sd = {.kind = BL_SHUTDOWN, .detail = "x", .detail_len = 1};
    BL_CHECK_EQ(bl_gen_server_stop(pid, &sd, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(s.last_reason.kind, BL_SHUTDOWN);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    BL_CHECK(!bl_is_alive(pid));
    /* Dead server: noproc for call and stop; cast still succeeds. */
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_GET, NULL, 0, &m, 1000), -ESRCH);
    BL_CHECK(m == NULL);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), -ESRCH);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ADD, &five, sizeof five), 0);
    /* Bad input. */
    BL_CHECK_EQ(bl_gen_server_call(BL_PID_NONE, Q_GET, NULL, 0, &m, 1000), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call(pid, BL_TAG_SYSTEM, NULL, 0, &m, 1000), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_GET, NULL, 0, &m, -5), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_cast(pid, BL_TAG_SYSTEM | 1, NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_start(&pid, NULL, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call(bl_self(), Q_GET, NULL, 0, &m, 1000), -EDEADLK);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server, call_cast_info_stop)
{
    bl_test_run(NULL, basic_main, NULL);
}

Test(gen_server, process_only)
{
    bl_msg *m = NULL;
    cr_assert_eq(bl_gen_server_call(1, Q_GET, NULL, 0, &m, 10), -EPERM);
    bl_pid pid;
    cr_assert_eq(bl_gen_server_start(&pid, &srv_cb, NULL, NULL), -EPERM);
}

/* ---- init results ---- */

static void init_main(void *arg)
{
    bl_pid pid;
    /* ignore */
    srv s = {.test = bl_self(), .init_mode = INIT_IGNORE};
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), BL_GS_IGNORED);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(pid, BL_PID_NONE);
    /* stop: -ECHILD, the reason, and no terminate. */
    s.init_mode = INIT_STOP;
    bl_msg *err = NULL;
    bl_gen_server_opts o = {.error = &err};
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, &o), -ECHILD);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    bl_reason why, want = {.kind = BL_CUSTOM, .code = 5, .detail = "bad", .detail_len = 3};
    BL_CHECK(err && bl_msg_reason(err, &why) == 0 && bl_reason_eq(&why, &want));
    bl_msg_free(err);
    BL_CHECK_EQ(next_event(50), -1); /* no terminate */
    /* start_link + init stop, trapping: the reason comes back through
     * opts.error, and the EXIT is taken out (test_gen_server_start.c). */
    bl_trap_exit(true);
    o = (bl_gen_server_opts){.error = &err};
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &srv_cb, &s, &o), -ECHILD);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK(err && bl_msg_reason(err, &why) == 0 && bl_reason_eq(&why, &want));
    bl_msg_free(err);
    BL_CHECK(bl_test_recv_tag(BL_TAG_EXIT, 0) == NULL);
    bl_trap_exit(false);
    /* init timeout: the server is killed. */
    s.init_mode = INIT_SLOW;
    o = (bl_gen_server_opts){.timeout = 20};
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, &o), -ETIMEDOUT);
    BL_CHECK_EQ(next_event(1000), -1); /* killed before reporting init */
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* continue runs before the message queued during init. */
    s.init_mode = INIT_CONTINUE;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(next_event(1000), EV_CONTINUE);
    BL_CHECK_EQ(next_event(1000), EV_INFO);
    BL_CHECK_EQ(get(pid), 100);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    /* timeout from init: handle_info(:timeout). */
    s.init_mode = INIT_TIMEOUT;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(next_event(1000), EV_TIMEOUT);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server, init_results)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, init_main, NULL);
}

/* ---- names ---- */

/* A one-slot via module, enough to see that via names are used. */
static struct {
    char key[16];
    bl_pid pid;
} via_slot;

static int via_reg(void *via, const void *key, size_t len)
{
    if (via_slot.pid && bl_is_alive(via_slot.pid)) return -EEXIST;
    memcpy(via_slot.key, key, len);
    via_slot.pid = bl_self();
    return 0;
}

static int via_unreg(void *via, const void *key, size_t len)
{
    via_slot.pid = 0;
    return 0;
}

static bl_pid via_where(void *via, const void *key, size_t len)
{
    return via_slot.pid && bl_is_alive(via_slot.pid) ? via_slot.pid : BL_PID_NONE;
}

static const bl_via_ops test_via = {via_reg, via_unreg, via_where};

static void names_main(void *arg)
{
    srv s = {.test = bl_self()};
    bl_name n = BL_NAME_LOCAL("counter");
    bl_gen_server_opts o = {.name = &n};
    bl_pid a, b;
    BL_CHECK_EQ(bl_gen_server_start(&a, &srv_cb, &s, &o), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(bl_whereis("counter"), a);
    BL_CHECK_EQ(bl_name_whereis(&n), a);
    /* already_started, with the holder. */
    BL_CHECK_EQ(bl_gen_server_start(&b, &srv_cb, &s, &o), -EEXIST);
    BL_CHECK_EQ(b, a);
    BL_CHECK_EQ(next_event(50), -1); /* the second init never ran */
    BL_CHECK_EQ(bl_gen_server_stop(a, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(bl_whereis("counter"), BL_PID_NONE);
    /* Bad names. */
    bl_name empty = BL_NAME_LOCAL("");
    o.name = &empty;
    BL_CHECK_EQ(bl_gen_server_start(&a, &srv_cb, &s, &o), -EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[299] = 0;
    bl_name toolong = BL_NAME_LOCAL(longname);
    o.name = &toolong;
    BL_CHECK_EQ(bl_gen_server_start(&a, &srv_cb, &s, &o), -ENAMETOOLONG);
    /* via */
    bl_name v = {.via = &test_via, .key = "k", .key_len = 1};
    o.name = &v;
    BL_CHECK_EQ(bl_gen_server_start(&a, &srv_cb, &s, &o), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(bl_name_whereis(&v), a);
    BL_CHECK_EQ(bl_gen_server_start(&b, &srv_cb, &s, &o), -EEXIST);
    BL_CHECK_EQ(b, a);
    BL_CHECK_EQ(get(bl_name_whereis(&v)), 0);
    BL_CHECK_EQ(bl_gen_server_stop(a, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
}

Test(gen_server, names)
{
    bl_test_run(NULL, names_main, NULL);
}

/* ---- calls: timeouts, late replies, deaths, deferred replies ---- */

typedef struct pair {
    bl_pid server, test;
} pair;

static void deferred_caller(void *a)
{
    pair *c = a;
    bl_msg *r = NULL;
    int rc = bl_gen_server_call(c->server, Q_DEFER, NULL, 0, &r, 5000);
    long v = rc == 0 ? *(long *)r->data : rc;
    bl_msg_free(r);
    bl_send(c->test, 60, &v, sizeof v);
}

static void slow_caller(void *a)
{
    pair *c = a;
    bl_msg *r = NULL;
    int ms = 2000;
    int rc = bl_gen_server_call(c->server, Q_SLOW, &ms, sizeof ms, &r, 5000);
    bl_reason w = {0};
    if (r) bl_msg_reason(r, &w);
    int out[2] = {rc, w.kind};
    bl_msg_free(r);
    bl_send(c->test, 61, out, sizeof out);
}

static void calls_main(void *arg)
{
    srv s = {.test = bl_self()};
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    /* Timeout, then the late reply never shows up. */
    int ms = 100;
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_SLOW, &ms, sizeof ms, &m, 10), -ETIMEDOUT);
    BL_CHECK(m == NULL);
    BL_CHECK_EQ(next_event(1000), EV_SLOW);
    /* The server answers in order: once this returns, the late reply was sent. */
    BL_CHECK_EQ(get(pid), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK(bl_receive(0) == NULL);
    /* Calling yourself from a callback is an error, not a deadlock. */
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_CALL_SELF, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && *(int *)m->data == -EDEADLK);
    bl_msg_free(m);
    /* Deferred reply: the server keeps answering other calls meanwhile. */
    bl_pid waiter;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_ADD, &(int){3}, sizeof(int), NULL, 1000), 0);
    /* The deferred call is made by a helper process so this one stays free. */
    pair ctx = {pid, bl_self()};
    BL_CHECK_EQ(bl_spawn(&waiter, deferred_caller, &ctx, NULL), 0);
    /* Once the deferred call is in, other calls still get answers. */
    BL_CHECK_EQ(next_event(1000), EV_DEFER);
    BL_CHECK(s.deferred.pid == waiter);
    BL_CHECK_EQ(get(pid), 3);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    bl_msg *d = bl_test_recv_tag(60, 2000);
    BL_CHECK(d && *(long *)d->data == 3);
    bl_msg_free(d);
    /* stop with a reply: the reply comes, then the server is gone. */
    bl_ref ref = monitor(pid);
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_STOP_REPLY, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && strcmp(m->data, "bye") == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    /* A server that dies during the call: -ECONNRESET with its reason. */
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_CRASH, NULL, 0, &m, 1000), -ECONNRESET);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_CUSTOM && why.code == 77);
    bl_msg_free(m);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(s.last_reason.code, 77);
    /* Killed mid-call (no terminate). */
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    pair kctx = {pid, bl_self()};
    BL_CHECK_EQ(bl_spawn(&waiter, slow_caller, &kctx, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_SLOW);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(pid, &kill), 0);
    d = bl_test_recv_tag(61, 5000);
    BL_CHECK(d && ((int *)d->data)[0] == -ECONNRESET && ((int *)d->data)[1] == BL_KILLED);
    bl_msg_free(d);
    BL_CHECK_EQ(next_event(50), -1);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server, calls)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, calls_main, NULL);
}

/* ---- results: timeout, continue, terminate on the parent's exit ---- */

static void child_of(void *arg)
{
    srv *s = arg;
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &srv_cb, s, NULL), 0);
    bl_send(s->test, 62, &pid, sizeof pid);
    bl_msg_free(bl_test_recv_tag(63, 5000));
    bl_reason why = {.kind = BL_CUSTOM, .code = 9};
    bl_exit_reason(&why);
}

static void results_main(void *arg)
{
    srv s = {.test = bl_self()};
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    /* A timeout fires when nothing comes ... */
    int ms = 10;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_TIMEOUT, &ms, sizeof ms, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TIMEOUT);
    /* ... and any message cancels it. */
    ms = 200;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_TIMEOUT, &ms, sizeof ms, NULL, 1000), 0);
    BL_CHECK_EQ(get(pid), 0);
    BL_CHECK_EQ(next_event(400), -1);
    /* continue after a reply runs before the next call. */
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_CONTINUE, NULL, 0, NULL, 1000), 0);
    BL_CHECK_EQ(get(pid), 100);
    BL_CHECK_EQ(next_event(1000), EV_CONTINUE);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    /* A trapping server follows its parent's exit through terminate. */
    srv t = {.test = bl_self(), .trap = true};
    bl_pid parent;
    BL_CHECK_EQ(bl_spawn(&parent, child_of, &t, NULL), 0);
    bl_msg *m = bl_test_recv_tag(62, 1000);
    BL_CHECK(m != NULL);
    if (m) memcpy(&pid, m->data, sizeof pid);
    bl_msg_free(m);
    bl_ref ref = monitor(pid);
    BL_CHECK_EQ(bl_send(parent, 63, NULL, 0), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(t.last_reason.kind, BL_CUSTOM);
    BL_CHECK_EQ(t.last_reason.code, 9);
    bl_reason why;
    BL_CHECK_EQ(wait_down(ref, &why), BL_CUSTOM);
    BL_CHECK_EQ(why.code, 9);
}

Test(gen_server, results)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, results_main, NULL);
}

/* ---- missing callbacks ---- */

static const bl_gen_server bare_cb = {0};

static void bare_main(void *arg)
{
    bl_pid pid;
    int state = 42;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &bare_cb, &state, NULL), 0);
    void *st = NULL;
    BL_CHECK_EQ(bl_sys_get_state(pid, &st, 1000), 0);
    BL_CHECK(st == &state);
    BL_CHECK_EQ(bl_send(pid, 3, NULL, 0), 0); /* dropped */
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, 1, NULL, 0, &m, 1000), -ECONNRESET);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.code == BL_GS_EBADCALL);
    bl_msg_free(m);
}

Test(gen_server, missing_callbacks)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, bare_main, NULL);
}

/* ---- sys ---- */

static _Atomic int trace_lines;

static void count_trace(bl_pid server, const char *line, void *arg)
{
    if (strncmp(line, "*DBG* <0.", 9) == 0) atomic_fetch_add(&trace_lines, 1);
}

static void bump(void **state, void *arg)
{
    ((srv *)*state)->counter += *(int *)arg;
}

static void sys_main(void *arg)
{
    srv s = {.test = bl_self(), .counter = 1};
    bl_pid pid;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &srv_cb, &s, NULL), 0);
    BL_CHECK_EQ(next_event(1000), EV_INIT);
    void *st = NULL;
    BL_CHECK_EQ(bl_sys_get_state(pid, &st, 1000), 0);
    BL_CHECK(st == &s);
    BL_CHECK_EQ(bl_sys_replace_state(pid, bump, &(int){41}, 1000), 0);
    BL_CHECK_EQ(get(pid), 42);
    char buf[128];
    BL_CHECK_EQ(bl_sys_get_status(pid, buf, sizeof buf, 1000), 0);
    BL_CHECK(strstr(buf, "counter=42") != NULL);
    BL_CHECK(strstr(buf, "running") != NULL);
    /* trace: a call in, a reply out, a cast in. */
    atomic_store(&trace_lines, 0);
    BL_CHECK_EQ(bl_sys_trace(pid, true, count_trace, NULL, 1000), 0);
    BL_CHECK_EQ(get(pid), 42);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ADD, &(int){1}, sizeof(int)), 0);
    BL_CHECK_EQ(bl_sys_trace(pid, false, NULL, NULL, 1000), 0);
    BL_CHECK_EQ(atomic_load(&trace_lines), 3);
    /* suspend: calls wait, sys calls are answered; resume answers them. */
    BL_CHECK_EQ(bl_sys_suspend(pid, 1000), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call(pid, Q_GET, NULL, 0, &m, 50), -ETIMEDOUT);
    BL_CHECK_EQ(bl_sys_get_status(pid, buf, sizeof buf, 1000), 0);
    BL_CHECK(strstr(buf, "suspended") != NULL);
    BL_CHECK_EQ(bl_sys_resume(pid, 1000), 0);
    BL_CHECK_EQ(get(pid), 43);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_sys_get_state(pid, NULL, 1000), -EINVAL);
    BL_CHECK_EQ(bl_sys_get_status(pid, buf, 0, 1000), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    BL_CHECK_EQ(bl_sys_get_state(pid, &st, 1000), -ESRCH);
}

Test(gen_server, sys)
{
    bl_test_run(NULL, sys_main, NULL);
}

/* ---- many servers, many callers, both schedulers ---- */

#define SERVERS 50
#define CALLERS 20

typedef struct load {
    bl_pid servers[SERVERS];
    bl_pid test;
} load;

static void caller(void *arg)
{
    load *l = arg;
    int n = BL_SCALE(2000);
    long ok = 0;
    for (int i = 0; i < n; i++) {
        bl_msg *m = NULL;
        if (bl_gen_server_call(l->servers[i % SERVERS], Q_ADD, &(int){1}, sizeof(int), &m, 5000) ==
            0)
            ok++;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    bl_send(l->test, 63, &ok, sizeof ok);
}

static void load_main(void *arg)
{
    static srv states[SERVERS];
    load l = {.test = bl_self()};
    for (int i = 0; i < SERVERS; i++) {
        states[i] = (srv){.test = bl_self()};
        bl_spawn_opts o = {.scheduler = 1 + i % 2};
        bl_gen_server_opts go = {.spawn = o};
        BL_CHECK_EQ(bl_gen_server_start(&l.servers[i], &srv_cb, &states[i], &go), 0);
        BL_CHECK_EQ(next_event(1000), EV_INIT);
    }
    for (int i = 0; i < CALLERS; i++) BL_CHECK_EQ(bl_spawn(NULL, caller, &l, NULL), 0);
    long total = 0;
    for (int i = 0; i < CALLERS; i++) {
        bl_msg *m = bl_test_recv_tag(63, 60000);
        BL_CHECK(m != NULL);
        if (m) total += *(long *)m->data;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(total, (long)CALLERS * BL_SCALE(2000));
    long sum = 0;
    for (int i = 0; i < SERVERS; i++) sum += get(l.servers[i]);
    BL_CHECK_EQ(sum, total);
    for (int i = 0; i < SERVERS; i++) {
        BL_CHECK_EQ(bl_gen_server_stop(l.servers[i], NULL, 1000), 0);
        BL_CHECK_EQ(next_event(1000), EV_TERMINATE);
    }
}

Test(gen_server, concurrent_calls)
{
    bl_test_run(NULL, load_main, NULL);
}
