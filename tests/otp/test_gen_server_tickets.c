/*
 * The reply tickets of asynchronous requests (otp/gen_server/ticket.c):
 * requesters that die with requests out leak nothing.  One test per
 * program, so the pool starts empty.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"
#include "otp/gen_server/gs_int.h"

enum { Q_DEFER = 1, Q_ANSWER, Q_FORGET, T_READY = 40 };

#define CHUNK_SLOTS 1024 /* ticket.c's chunk */
#define MAX_DEFER   4096

typedef struct srv {
    bl_gs_from deferred[MAX_DEFER];
    int n;
} srv;

static void t_init(void *arg, void **state, bl_gs_result *r)
{
    *state = calloc(1, sizeof(srv));
}

static void t_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_DEFER && s->n < MAX_DEFER) s->deferred[s->n++] = r->from;
    if (m->tag == 9) bl_gs_reply(r, NULL, 0);
}

static void t_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ANSWER)
        for (int i = 0; i < s->n; i++) bl_gen_server_reply(s->deferred[i], &i, sizeof i);
    s->n = 0;
}

static void t_release(void *state)
{
    free(state);
}

static const bl_gen_server t_cb = {
    .init = t_init, .handle_call = t_call, .handle_cast = t_cast, .release = t_release};

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
    BL_CHECK_EQ(bl_gen_server_call(j->server, 9, NULL, 0, NULL, 5000), 0);
    bl_send(j->test, T_READY, NULL, 0);
    /* Waits for a message that never comes: replies stay queued, unread. */
    uint32_t never = 12345;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/*
 * Starts k requesters of n requests each, waits until all are out, has the
 * server answer them first when `answer` (the replies then sit unread in
 * the requesters' mailboxes), and kills them.
 */
static void requesters_die(bl_pid server, int k, int n, bool answer)
{
    job j = {server, bl_self(), n};
    bl_pid *p = calloc((size_t)k, sizeof *p);
    bl_ref *refs = calloc((size_t)k, sizeof *refs);
    for (int i = 0; i < k; i++)
        BL_CHECK_EQ(bl_spawn_monitor(&p[i], &refs[i], requester, &j, NULL), 0);
    for (int i = 0; i < k; i++) bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    if (answer) {
        BL_CHECK_EQ(bl_gen_server_cast(server, Q_ANSWER, NULL, 0), 0);
        BL_CHECK_EQ(bl_gen_server_call(server, 9, NULL, 0, NULL, 5000), 0);
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
 * The tickets in use, once they are down to `want` (or after 10 s): a dead
 * process's unread messages are dropped on its scheduler just after its
 * DOWN goes out, so their release may trail the DOWN by a moment.
 */
static size_t busy_when(size_t want)
{
    int64_t end = bl_test_ms() + 10000;
    size_t n;
    while ((n = bl__gs_tickets_busy(NULL)) != want && bl_test_ms() < end) bl_sleep(1);
    return n;
}

static void pool_main(void *arg)
{
    bl_pid server;
    BL_CHECK_EQ(bl_gen_server_start(&server, &t_cb, NULL, NULL), 0);
    size_t cap;
    /* Requesters die, then their requests are answered: each reply finds its
     * requester gone (or is dropped with its mailbox) and frees its ticket. */
    requesters_die(server, 4, 100, false);
    BL_CHECK_EQ(bl__gs_tickets_busy(NULL), 400);
    BL_CHECK_EQ(bl_gen_server_cast(server, Q_ANSWER, NULL, 0), 0);
    BL_CHECK_EQ(bl_gen_server_call(server, 9, NULL, 0, NULL, 5000), 0);
    BL_CHECK_EQ(bl__gs_tickets_busy(&cap), 0);
    BL_CHECK_EQ(cap, CHUNK_SLOTS);
    /* Replies queued unread when their requesters die: dropped, and their
     * release frees the tickets. */
    requesters_die(server, 4, 100, true);
    BL_CHECK_EQ(busy_when(0), 0);
    /* Requesters die and nobody ever answers: two chunks of pending tickets
     * whose requesters are gone.  The next ticket needs a third chunk; the
     * sweep before growing frees the dead ones instead. */
    requesters_die(server, 8, 2 * CHUNK_SLOTS / 8, false);
    BL_CHECK_EQ(bl_gen_server_cast(server, Q_FORGET, NULL, 0), 0);
    BL_CHECK_EQ(bl__gs_tickets_busy(&cap), 2 * CHUNK_SLOTS);
    BL_CHECK_EQ(cap, 2 * CHUNK_SLOTS);
    bl_gs_reqid id;
    BL_CHECK_EQ(bl_gen_server_send_request(BL_GS_PID(server), 9, NULL, 0, &id), 0);
    BL_CHECK_EQ(bl__gs_tickets_busy(&cap), 1);
    BL_CHECK_EQ(cap, 2 * CHUNK_SLOTS);
    BL_CHECK_EQ(bl_gen_server_receive_response(&id, NULL, 5000), 0);
    BL_CHECK_EQ(bl__gs_tickets_busy(NULL), 0);
    BL_CHECK_EQ(bl_gen_server_stop(server, NULL, 1000), 0);
}

Test(gen_server_tickets, dead_requesters_leak_nothing)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, pool_main, NULL);
}
