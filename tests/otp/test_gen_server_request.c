/*
 * gen_server asynchronous requests: send_request, wait_response,
 * receive_response, check_response, and request id collections.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"
#include "core/proc.h"
#include "otp/gen_server/gs_int.h"
#include "sched/sched.h"

enum {
    Q_ECHO = 1, /* reply the payload at once */
    Q_DEFER,    /* keep from; answered by Q_ANSWER */
    Q_ANSWER,   /* cast: answer the deferred calls, newest first, with their index */
    Q_DIE,      /* stop with custom 44 without replying */
    Q_FORGET,   /* cast: forget the deferred calls */
};

#define MAX_DEFER 4096

typedef struct srv {
    bl_gs_from deferred[MAX_DEFER];
    int n;
} srv;

static void r_init(void *arg, void **state, bl_gs_result *r)
{
    *state = calloc(1, sizeof(srv));
}

static void r_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ECHO) bl_gs_reply(r, m->data, m->len);
    if (m->tag == Q_DEFER && s->n < MAX_DEFER) s->deferred[s->n++] = r->from;
    if (m->tag == Q_DIE) bl_gs_stop(r, &(bl_reason){.kind = BL_CUSTOM, .code = 44});
}

static void r_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ANSWER)
        while (s->n > 0) {
            int i = --s->n;
            BL_CHECK_EQ(bl_gen_server_reply(s->deferred[i], &i, sizeof i), 0);
        }
    if (m->tag == Q_FORGET) s->n = 0;
}

static void r_release(void *state)
{
    free(state);
}

static const bl_gen_server r_cb = {
    .init = r_init,
    .handle_call = r_call,
    .handle_cast = r_cast,
    .release = r_release,
};

static bl_pid start(void)
{
    bl_pid pid = 0;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &r_cb, NULL, NULL), 0);
    return pid;
}

static int monitors(void)
{
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(bl_self(), &info), 0);
    return (int)info.nmonitors;
}

/* The caller's active aliases (its call alias aside): one per pending request. */
static int aliases(void)
{
    bl_proc *p = bl__self();
    return p && p->sig ? (int)p->sig->naliases : 0;
}

/* A call to the server: everything it sent before its reply is in our mailbox then. */
static void sync_with(bl_pid server)
{
    BL_CHECK_EQ(bl_gen_server_call(server, Q_ECHO, NULL, 0, NULL, 2000), 0);
}

static int as_int(const bl_msg *m)
{
    int v = -1;
    if (m && m->len == sizeof v) memcpy(&v, m->data, sizeof v);
    return v;
}

/* ---- one request ---- */

static void basic_main(void *arg)
{
    bl_pid pid = start();
    bl_gs_reqid id;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, "abc", 4, &id), 0);
    BL_CHECK(id.mon && id.ref && id.server == pid);
    BL_CHECK_EQ(monitors(), 1);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 2000), 0);
    BL_CHECK(m && m->len == 4 && strcmp(m->data, "abc") == 0);
    bl_msg_free(m);
    /* Answered: the monitor is gone, the id spent. */
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(id.mon, 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 10), -EINVAL);
    /* Several out at once, answered in any order; wait keeps a request on timeout. */
    bl_gs_reqid d[3];
    for (int i = 0; i < 3; i++)
        BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &d[i]), 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&d[1], &m, 20), -ETIMEDOUT);
    BL_CHECK(m == NULL && d[1].mon != 0);
    BL_CHECK_EQ(monitors(), 3);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    for (int i = 2; i >= 0; i--) {
        BL_CHECK_EQ(bl_gen_server_receive_response(&d[i], &m, 2000), 0);
        BL_CHECK_EQ(as_int(m), i);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(monitors(), 0);
    /* By name too. */
    BL_CHECK_EQ(bl_register("req_srv", pid), 0);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_LOCAL("req_srv"), Q_ECHO, "n", 2, &id), 0);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 2000), 0);
    BL_CHECK(m && strcmp(m->data, "n") == 0);
    bl_msg_free(m);
    /* A reply too big for the stack. */
    char big[4000];
    memset(big, 'b', sizeof big);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, big, sizeof big, &id), 0);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 2000), 0);
    BL_CHECK(m && m->len == sizeof big && memcmp(m->data, big, sizeof big) == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, send_and_wait)
{
    bl_test_run(NULL, basic_main, NULL);
}

/* ---- giving up ---- */

static void abandon_main(void *arg)
{
    bl_pid pid = start();
    bl_gs_reqid a, b;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &a), 0);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &b), 0);
    bl_msg *m = NULL;
    /* receive_response's timeout gives a up: its reply never reaches the mailbox ... */
    BL_CHECK_EQ(bl_gen_server_receive_response(&a, &m, 20), -ETIMEDOUT);
    BL_CHECK(m == NULL && a.mon == 0);
    BL_CHECK_EQ(monitors(), 1);
    BL_CHECK_EQ(bl_gen_server_cast(pid, Q_ANSWER, NULL, 0), 0);
    sync_with(pid);
    /* ... while b, still pending, gets its own. */
    BL_CHECK_EQ(bl_mailbox_len(), 1);
    BL_CHECK_EQ(bl_gen_server_receive_response(&b, &m, 0), 0);
    BL_CHECK_EQ(as_int(m), 1);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    /* A reply already queued when the timeout comes is returned, as Erlang does. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, "q", 2, &a), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_gen_server_receive_response(&a, &m, 0), 0);
    BL_CHECK(m && strcmp(m->data, "q") == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, receive_gives_up)
{
    bl_test_run(NULL, abandon_main, NULL);
}

/* ---- check_response ---- */

static void check_main(void *arg)
{
    bl_pid pid = start();
    bl_gs_reqid id;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, "xyz", 4, &id), 0);
    BL_CHECK_EQ(bl_send(bl_self(), 77, "other", 6), 0);
    int replies = 0, others = 0;
    while (replies == 0) {
        bl_msg *m = bl_receive(2000);
        BL_CHECK(m != NULL);
        if (!m) break;
        int rc = bl_gen_server_check_response(m, &id);
        if (rc == BL_GS_NO_REPLY) {
            BL_CHECK_EQ(m->tag, 77);
            others++;
        } else {
            BL_CHECK_EQ(rc, 0);
            BL_CHECK(m->len == 4 && strcmp(m->data, "xyz") == 0);
            replies++;
        }
        bl_msg_free(m);
    }
    BL_CHECK_EQ(others, 1);
    BL_CHECK_EQ(monitors(), 0);
    /* A server dying before it answers: its DOWN is the answer. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DIE, NULL, 0, &id), 0);
    bl_msg *m = bl_receive(2000);
    BL_CHECK_EQ(bl_gen_server_check_response(m, &id), -ECONNRESET);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.code == 44);
    bl_msg_free(m);
    /* A name nobody holds: noproc, through a message like any other answer. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_LOCAL("nobody"), Q_ECHO, NULL, 0, &id), 0);
    m = bl_receive(2000);
    BL_CHECK_EQ(bl_gen_server_check_response(m, &id), -ESRCH);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_gen_server_check_response(NULL, &id), -EINVAL);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, check_response)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, check_main, NULL);
}

/* ---- dead servers ---- */

static void dead_main(void *arg)
{
    bl_pid pid = start();
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    bl_gs_reqid id;
    bl_msg *m = NULL;
    /* A dead pid and a name nobody holds: noproc, reported at the answer. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, NULL, 0, &id), 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 2000), -ESRCH);
    BL_CHECK(m == NULL);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_LOCAL("gone"), Q_ECHO, NULL, 0, &id), 0);
    BL_CHECK(id.server == BL_PID_NONE);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, 2000), -ESRCH);
    /* Given up before it is looked at: the noproc note goes too. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_LOCAL("gone"), Q_ECHO, NULL, 0, &id), 0);
    bl_gs_reqids c = {0};
    BL_CHECK_EQ(bl_gs_reqids_add(&c, id, 1), 0);
    bl_gs_reqids_free(&c);
    /* A server killed while the request waits: -ECONNRESET with the DOWN. */
    pid = start();
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_DEFER, NULL, 0, &id), 0);
    sync_with(pid);
    BL_CHECK_EQ(bl_exit_pid(pid, &BL_REASON(BL_KILL)), 0);
    BL_CHECK_EQ(bl_gen_server_wait_response(&id, &m, 2000), -ECONNRESET);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_KILLED);
    bl_msg_free(m);
    /* Bad input. */
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), BL_TAG_SYSTEM, NULL, 0, &id), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, NULL, 1, &id), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(pid), Q_ECHO, NULL, 0, NULL), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_send_request((bl_gs_dest){0}, Q_ECHO, NULL, 0, &id), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_REMOTE("x", "n@h"), Q_ECHO, NULL, 0, &id),
                -EHOSTUNREACH);
    BL_CHECK_EQ(bl_gen_server_wait_response(NULL, &m, 10), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, &m, -3), -EINVAL);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, dead_servers)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, dead_main, NULL);
}

Test(gen_server_request, process_only)
{
    bl_gs_reqid id = {.mon = 1};
    cr_assert_eq(bl_gen_server_send_request(BL_GS_PID(1), Q_ECHO, NULL, 0, &id), -EPERM);
    cr_assert_eq(bl_gen_server_wait_response(&id, NULL, 0), -EPERM);
}

/* ---- collections ---- */

static void col_main(void *arg)
{
    bl_pid a = start(), b = start();
    bl_gs_reqids c;
    bl_gs_reqids_init(&c);
    bl_msg *m = NULL;
    bl_gs_reqid_label which;
    BL_CHECK_EQ(bl_gs_reqids_wait(&c, true, &m, &which, 10), BL_GS_NO_REQUEST);
    BL_CHECK_EQ(bl_gs_reqids_send(&c, 100, BL_GS_PID(a), Q_DEFER, NULL, 0), 0);
    BL_CHECK_EQ(bl_gs_reqids_send(&c, 200, BL_GS_PID(b), Q_ECHO, "b", 2), 0);
    bl_gs_reqid extra;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_LOCAL("nobody"), Q_ECHO, NULL, 0, &extra), 0);
    BL_CHECK_EQ(bl_gs_reqids_add(&c, extra, 300), 0);
    BL_CHECK_EQ(bl_gs_reqids_add(&c, extra, 301), -EEXIST);
    BL_CHECK_EQ(bl_gs_reqids_size(&c), 3);
    bl_gs_reqid_label list[4];
    BL_CHECK_EQ(bl_gs_reqids_to_list(&c, list, 4), 3);
    BL_CHECK(list[0].label == 100 && list[1].label == 200 && list[2].label == 300);
    BL_CHECK(list[2].id.mon == extra.mon);
    /* b's reply and the noproc come first; a waits for its answer. */
    uint64_t seen = 0;
    for (int i = 0; i < 2; i++) {
        int rc = bl_gs_reqids_wait(&c, true, &m, &which, 2000);
        if (which.label == 200) {
            BL_CHECK_EQ(rc, 0);
            BL_CHECK(m && strcmp(m->data, "b") == 0);
        } else {
            BL_CHECK_EQ(which.label, 300);
            BL_CHECK_EQ(rc, -ESRCH);
            BL_CHECK(m == NULL);
        }
        seen += which.label;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(seen, 500);
    BL_CHECK_EQ(bl_gs_reqids_size(&c), 1);
    BL_CHECK_EQ(bl_gs_reqids_wait(&c, true, &m, &which, 20), -ETIMEDOUT);
    BL_CHECK_EQ(bl_gs_reqids_size(&c), 1);
    /* check on a collection: an unrelated message, then the answer (kept: del false). */
    BL_CHECK_EQ(bl_gen_server_cast(a, Q_ANSWER, NULL, 0), 0);
    BL_CHECK_EQ(bl_send(bl_self(), 9, NULL, 0), 0);
    int answered = 0;
    while (!answered) {
        bl_msg *x = bl_receive(2000);
        BL_CHECK(x != NULL);
        if (!x) break;
        int rc = bl_gs_reqids_check(&c, x, false, &which);
        if (rc == 0) {
            answered = 1;
            BL_CHECK_EQ(which.label, 100);
            BL_CHECK_EQ(as_int(x), 0);
        } else {
            BL_CHECK_EQ(rc, BL_GS_NO_REPLY);
        }
        bl_msg_free(x);
    }
    BL_CHECK_EQ(bl_gs_reqids_size(&c), 1); /* not deleted */
    BL_CHECK_EQ(monitors(), 0);
    /* receive_response/3 gives everything up on timeout. */
    bl_gs_reqids_free(&c);
    for (int i = 0; i < 4; i++)
        BL_CHECK_EQ(bl_gs_reqids_send(&c, (uint64_t)i, BL_GS_PID(i % 2 ? a : b), Q_DEFER, NULL, 0),
                    0);
    BL_CHECK_EQ(monitors(), 4);
    BL_CHECK_EQ(bl_gs_reqids_receive(&c, true, &m, &which, 20), -ETIMEDOUT);
    BL_CHECK_EQ(bl_gs_reqids_size(&c), 0);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_gen_server_cast(a, Q_ANSWER, NULL, 0), 0);
    BL_CHECK_EQ(bl_gen_server_cast(b, Q_ANSWER, NULL, 0), 0);
    sync_with(a);
    sync_with(b);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_gs_reqids_check(&c, NULL, true, &which), BL_GS_NO_REQUEST);
    /* bl_gs_reqids_free gives up what is pending. */
    BL_CHECK_EQ(bl_gs_reqids_send(&c, 1, BL_GS_PID(a), Q_DEFER, NULL, 0), 0);
    bl_gs_reqids_free(&c);
    BL_CHECK_EQ(bl_gen_server_cast(a, Q_ANSWER, NULL, 0), 0);
    sync_with(a);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(monitors(), 0);
    BL_CHECK_EQ(bl_gen_server_stop(a, NULL, 1000), 0);
    BL_CHECK_EQ(bl_gen_server_stop(b, NULL, 1000), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, collections)
{
    bl_test_run(NULL, col_main, NULL);
}

/* ---- races: replies and give-ups from both schedulers ---- */

#define RACE_REQS 2000

typedef struct race {
    bl_pid server, test;
} race;

static void racer(void *arg)
{
    race *r = arg;
    int n = BL_SCALE(RACE_REQS), got = 0, gave_up = 0;
    for (int i = 0; i < n; i++) {
        bl_gs_reqid id;
        BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(r->server), Q_ECHO, &i, sizeof i, &id), 0);
        if (i % 3 == 0) bl_yield();
        bl_msg *m = NULL;
        /* Timeout 0: gives up at once unless the reply is already in. */
        int rc = bl_gen_server_receive_response(&id, &m, 0);
        if (rc == 0) {
            BL_CHECK_EQ(as_int(m), i);
            got++;
        } else {
            BL_CHECK_EQ(rc, -ETIMEDOUT);
            gave_up++;
        }
        bl_msg_free(m);
    }
    sync_with(r->server);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(aliases(), 0);
    BL_CHECK_EQ(monitors(), 0);
    int out[2] = {got, gave_up};
    bl_send(r->test, 5, out, sizeof out);
}

static void race_main(void *arg)
{
    bl_spawn_opts o2 = {.scheduler = 2};
    bl_pid server;
    bl_gen_server_opts go = {.spawn = o2};
    BL_CHECK_EQ(bl_gen_server_start(&server, &r_cb, NULL, &go), 0);
    race r = {server, bl_self()};
    bl_spawn_opts o1 = {.scheduler = 1};
    for (int i = 0; i < 4; i++) BL_CHECK_EQ(bl_spawn(NULL, racer, &r, &o1), 0);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        bl_msg *m = bl_test_recv_tag(5, 60000);
        BL_CHECK(m != NULL);
        if (m) total += ((int *)m->data)[0] + ((int *)m->data)[1];
        bl_msg_free(m);
    }
    BL_CHECK_EQ(total, 4 * BL_SCALE(RACE_REQS));
    BL_CHECK_EQ(bl_gen_server_stop(server, NULL, 1000), 0);
    BL_CHECK_EQ(aliases(), 0);
}

Test(gen_server_request, give_up_races)
{
    bl_test_run(NULL, race_main, NULL);
}
