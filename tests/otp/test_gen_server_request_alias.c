/*
 * gen_server asynchronous requests on process aliases: a request's
 * reference is a monitor alias of its requester, the server replies to it,
 * and once the request is given up (or the server's DOWN has come) a late
 * reply, whoever sends it, is dropped before it reaches the mailbox.
 * Requesters that die with requests out leave nothing behind.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"
#include "core/proc.h"
#include "sched/sched.h"

enum {
    Q_REF = 1, /* reply with the call's from.ref */
    Q_DEFER,   /* keep from; answered by Q_ANSWER */
    Q_HANDOFF, /* pass from to the helper (the payload: its pid) */
    Q_SYNC,    /* reply at once */
    Q_ANSWER,  /* cast: answer the deferred calls */
    Q_FORGET,  /* cast: forget the deferred calls */
    Q_SELF,    /* cast: send a request to itself; report its answer to the payload's pid */
    T_FROM = 40,
    T_GO,
    T_DONE,
    T_READY,
    T_SELF,
    T_ALIAS,
};

#define MAX_DEFER 4096

typedef struct srv {
    bl_gs_from deferred[MAX_DEFER];
    int n;
    bl_gs_reqid self_req; /* Q_SELF's request to itself */
    bl_pid report;        /* where its answer goes */
} srv;

static void s_init(void *arg, void **state, bl_gs_result *r)
{
    *state = calloc(1, sizeof(srv));
}

static void s_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    bl_pid helper;
    switch (m->tag) {
    case Q_REF:
        bl_gs_reply(r, &r->from.ref, sizeof r->from.ref);
        break;
    case Q_DEFER:
        if (s->n < MAX_DEFER) s->deferred[s->n++] = r->from;
        break;
    case Q_HANDOFF:
        memcpy(&helper, m->data, sizeof helper);
        BL_CHECK_EQ(bl_send(helper, T_FROM, &r->from, sizeof r->from), 0);
        break;
    case Q_SYNC:
        bl_gs_reply(r, NULL, 0);
        break;
    }
}

static void s_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ANSWER)
        for (int i = 0; i < s->n; i++)
            BL_CHECK_EQ(bl_gen_server_reply(s->deferred[i], &i, sizeof i), 0);
    if (m->tag == Q_ANSWER || m->tag == Q_FORGET) s->n = 0;
    if (m->tag == Q_SELF) {
        memcpy(&s->report, m->data, sizeof s->report);
        BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(bl_self()), Q_REF, NULL, 0, &s->self_req),
                    0);
    }
}

static void s_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (!s->self_req.mon) return;
    bl_gs_reqid id = s->self_req;
    int rc = bl_gen_server_check_response((bl_msg *)m, &s->self_req);
    if (rc == BL_GS_NO_REPLY) return;
    bl_ref got = 0;
    if (rc == 0 && m->len == sizeof got) memcpy(&got, m->data, sizeof got);
    /* 1 when the answer was the reply to our own alias, and that alias is gone now. */
    int ok = rc == 0 && got == id.ref && bl_unalias(id.ref) == 0;
    bl_send(s->report, T_SELF, &ok, sizeof ok);
}

static void s_release(void *state)
{
    free(state);
}

static const bl_gen_server s_cb = {
    .init = s_init,
    .handle_call = s_call,
    .handle_cast = s_cast,
    .handle_info = s_info,
    .release = s_release,
};

static bl_pid start(void)
{
    bl_pid pid = 0;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &s_cb, NULL, NULL), 0);
    return pid;
}

/* Everything the server sent us before this call's reply is in our mailbox then. */
static void sync_with(bl_pid server)
{
    BL_CHECK_EQ(bl_gen_server_call(server, Q_SYNC, NULL, 0, NULL, 5000), 0);
}

static int monitors(void)
{
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(bl_self(), &info), 0);
    return (int)info.nmonitors;
}

/* The caller's active aliases (its call alias aside). */
static int aliases(void)
{
    bl_proc *p = bl__self();
    return p && p->sig ? (int)p->sig->naliases : 0;
}

/* ---- the request's reference is the requester's alias ---- */

static void alias_main(void *arg)
{
    bl_pid pid = start();
    bl_gs_reqid id;
    bl_msg *m = NULL;
    /* The server sees the request's reference as its from.ref, as a call's. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_REF, NULL, 0, &id), 0);
    BL_CHECK(id.mon != 0 && id.ref == id.mon);
    bl_ref sent = id.ref;
    BL_CHECK_EQ(aliases(), 1);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 5000), 0);
    bl_ref seen = 0;
    if (m && m->len == sizeof seen) memcpy(&seen, m->data, sizeof seen);
    BL_CHECK_EQ(seen, sent);
    BL_CHECK(m && m->ref == sent);
    bl_msg_free(m);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(bl_unalias(sent), 0);
    /* While a request is pending, anyone may send to its alias ... */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &id), 0);
    sent = id.ref;
    BL_CHECK_EQ(bl_send_alias(bl_self(), T_ALIAS, sent, "a", 2), 0);
    m = bl_test_recv_tag(T_ALIAS, 5000);
    BL_CHECK(m && m->ref == sent);
    bl_msg_free(m);
    /* ... and not once it is given up. */
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 0), -ETIMEDOUT);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_send_alias(bl_self(), T_ALIAS, sent, "b", 2), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_unalias(sent), 0);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_FORGET, NULL, 0), 0);
    /* A request to a dead server makes no alias: its DOWN noproc is the answer. */
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_REF, NULL, 0, &id), 0);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 5000), -ESRCH);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_request_alias, request_reference_is_an_alias)
{
    bl_test_run(NULL, alias_main, NULL);
}

/* ---- late replies ---- */

/* Waits for a from, then for GO, replies to it, and tells the test. */
static void helper(void *arg)
{
    bl_pid test = *(bl_pid *)arg;
    bl_msg *m = bl_test_recv_tag(T_FROM, 5000);
    BL_CHECK(m && m->len == sizeof(bl_gs_from));
    bl_gs_from from = {0};
    if (m) memcpy(&from, m->data, sizeof from);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_send(test, T_READY, NULL, 0), 0);
    bl_msg_free(bl_test_recv_tag(T_GO, 5000));
    int v = 7;
    BL_CHECK_EQ(bl_gen_server_reply(from, &v, sizeof v), 0);
    /* Sent after the reply: once DONE is in, the reply was drained (or dropped). */
    BL_CHECK_EQ(bl_send(test, T_DONE, NULL, 0), 0);
}

/* A helper holding a request's from, ready to reply on GO. */
static bl_pid handoff(bl_pid server, bl_gs_reqid *id)
{
    bl_pid me = bl_self(), h = 0;
    BL_CHECK_EQ(bl_spawn(&h, helper, &me, NULL), 0);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(server), Q_HANDOFF, &h, sizeof h, id), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    return h;
}

static void reply_late(bl_pid h)
{
    BL_CHECK_EQ(bl_send(h, T_GO, NULL, 0), 0);
    bl_msg *m = bl_test_recv_tag(T_DONE, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
}

static void late_main(void *arg)
{
    bl_pid pid = start();
    bl_gs_reqid id;
    bl_msg *m = NULL;
    /* The server answers after receive_response gave up. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &id), 0);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 20), -ETIMEDOUT);
    BL_CHECK(m == NULL);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Another process answers for the server, after the requester gave up. */
    bl_pid h = handoff(pid, &id);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 0), -ETIMEDOUT);
    reply_late(h);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* ... or after the server died: its DOWN ended the alias. */
    h = handoff(pid, &id);
    BL_CHECK_EQ(bl_exit_pid(pid, &BL_REASON(BL_KILL)), 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 5000), -ECONNRESET);
    bl_msg_free(m);
    reply_late(h);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Many given up at once, answered later. */
    pid = start();
    int n = BL_SCALE(2000);
    for (int i = 0; i < n; i++) {
        BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &id), 0);
        BL_CHECK_EQ(bl_gen_server_receive_response(&id, NULL, 0), -ETIMEDOUT);
    }
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Collections: receive_response/3's timeout and reqids_free give up all. */
    bl_gs_reqids c;
    bl_gs_reqids_init(&c);
    for (int i = 0; i < 8; i++)
        BL_CHECK_EQ(bl_gs_reqids_send(&c, (uint64_t)i, BL_GS_PID(pid), Q_DEFER, NULL, 0), 0);
    BL_CHECK_EQ(aliases(), 8);
    BL_CHECK_EQ(bl_gs_reqids_receive(&c, true, &m, NULL, 10), -ETIMEDOUT);
    BL_CHECK_EQ(aliases(), 0);
    for (int i = 0; i < 8; i++)
        BL_CHECK_EQ(bl_gs_reqids_send(&c, (uint64_t)i, BL_GS_PID(pid), Q_DEFER, NULL, 0), 0);
    bl_gs_reqids_free(&c);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* Replies already queued when reqids_free gives up are taken out. */
    for (int i = 0; i < 4; i++)
        BL_CHECK_EQ(bl_gs_reqids_send(&c, (uint64_t)i, BL_GS_PID(pid), Q_DEFER, NULL, 0), 0);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_mailbox_len(), 4);
    bl_gs_reqids_free(&c);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
}

Test(gen_server_request_alias, late_reply_never_reaches_mailbox)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, late_main, NULL);
}

/* ---- a server's request to itself ---- */

static void self_main(void *arg)
{
    bl_pid pid = start(), me = bl_self();
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_SELF, &me, sizeof me), 0);
    bl_msg *m = bl_test_recv_tag(T_SELF, 5000);
    BL_CHECK(m && m->len == sizeof(int) && *(int *)m->data == 1);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
}

Test(gen_server_request_alias, request_to_self)
{
    bl_test_run(NULL, self_main, NULL);
}

/* ---- requesters that die with requests out ---- */

typedef struct job {
    bl_pid server, test;
    int n;
} job;

/* Sends n requests, says so, and waits to be killed. */
static void requester(void *arg)
{
    job *j = arg;
    for (int i = 0; i < j->n; i++) {
        bl_gs_reqid id;
        BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(j->server), Q_DEFER, NULL, 0, &id), 0);
    }
    /* The server has every request once it answers this call. */
    sync_with(j->server);
    bl_send(j->test, T_READY, NULL, 0);
    /* Waits for a message that never comes: replies stay queued, unread. */
    uint32_t never = 12345;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/*
 * Starts k requesters of n requests each (on both schedulers), waits until
 * all are out, has the server answer them first when `answer` (the replies
 * then sit unread in the requesters' mailboxes), and kills them.
 */
static void requesters_die(bl_pid server, int k, int n, bool answer)
{
    job j = {server, bl_self(), n};
    bl_pid *p = calloc((size_t)k, sizeof *p);
    bl_ref *refs = calloc((size_t)k, sizeof *refs);
    for (int i = 0; i < k; i++) {
        bl_spawn_opts o = {.scheduler = 1 + i % 2};
        BL_CHECK_EQ(bl_spawn_monitor(&p[i], &refs[i], requester, &j, &o), 0);
    }
    for (int i = 0; i < k; i++) bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    if (answer) {
        BL_CHECK_EQ(bl_gen_server_cast(server, Q_ANSWER, NULL, 0), 0);
        sync_with(server);
    }
    for (int i = 0; i < k; i++) {
        BL_CHECK_EQ(bl_exit_pid(p[i], &BL_REASON(BL_KILL)), 0);
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &refs[i], 10000, 0), 0);
        bl_msg_free(m);
    }
    free(p);
    free(refs);
}

/*
 * The monitors on the server, once they are down to 0 (or after 10 s): a
 * dead requester tells the servers it monitored just after its DOWN goes
 * out, and the server acts on it when it next runs.
 */
static uint32_t monitored_by(bl_pid server)
{
    int64_t end = bl_test_ms() + 10000;
    bl_proc_info info = {0};
    for (;;) {
        BL_CHECK_EQ(bl_process_info(server, &info), 0);
        if (info.nmonitored_by == 0 || bl_test_ms() >= end) return info.nmonitored_by;
        bl_sleep(1);
    }
}

static void dead_main(void *arg)
{
    bl_pid server = start();
    /* Requesters die, then their requests are answered: each reply goes to a
     * dead process and is dropped. */
    requesters_die(server, 4, BL_SCALE(500), false);
    BL_CHECK_EQ(monitored_by(server), 0);
    BL_CHECK_EQ(bl_gen_server_cast(server, Q_ANSWER, NULL, 0), 0);
    sync_with(server);
    /* Replies queued unread when their requesters die go with their mailboxes. */
    requesters_die(server, 4, BL_SCALE(500), true);
    BL_CHECK_EQ(monitored_by(server), 0);
    /* Requesters die and nobody ever answers. */
    requesters_die(server, 8, BL_SCALE(500), false);
    BL_CHECK_EQ(bl_gen_server_cast(server, Q_FORGET, NULL, 0), 0);
    BL_CHECK_EQ(monitored_by(server), 0);
    /* The server still serves requests. */
    bl_gs_reqid id;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(server), Q_SYNC, NULL, 0, &id), 0);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, NULL, 5000), 0);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(bl_gen_server_stop(server, NULL, 1000), 0);
}

Test(gen_server_request_alias, dead_requesters_leak_nothing)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, dead_main, NULL);
}
