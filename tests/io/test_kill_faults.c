/*
 * Processes killed at the wrong moment lose nothing: a completed accept
 * whose acceptor dies before it resumes, connections queued as accept-stream
 * messages when the stream's owner dies, and the streams counted in
 * bl_io_inflight while they are armed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "beamline/io.h"
#include "bl_test.h"

enum { T_READY = 1, T_GO, T_NEVER };

/* Waits, bounded, until the process's descriptors are back to n. */
static int settle_fds(int n)
{
    BL_TEST_UNTIL(bl_test_count_fds() == n, 10000);
    return bl_test_count_fds();
}

/* ---- a completed accept, its acceptor killed before it resumes ---- */

typedef struct acc_ctx {
    int lfd;
    bl_pid test;
} acc_ctx;

/* Accepts forever, closing what it gets; dies only when killed. */
static void accept_loop(void *arg)
{
    acc_ctx *a = arg;
    bl_send(a->test, T_READY, NULL, 0);
    for (;;) {
        int fd = bl_io_accept(a->lfd, NULL, NULL, BL_INFINITY);
        if (fd >= 0) bl_io_close(fd);
    }
}

static void accept_storm_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 4096, &port);
    BL_CHECK(lfd >= 0);
    acc_ctx a = {lfd, bl_self()};
    enum { ACCEPTORS = 16 };
    bl_pid acc[ACCEPTORS];
    for (int i = 0; i < ACCEPTORS; i++) BL_CHECK_EQ(bl_spawn(&acc[i], accept_loop, &a, NULL), 0);
    for (int i = 0; i < ACCEPTORS; i++) bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    /* Connections arrive while acceptors are killed and replaced at once:
     * some kills land between an accept's completion and the acceptor's
     * next run.  Every connection made is closed by the client; every one
     * accepted must be closed by its acceptor or, if it died first, by the
     * runtime. */
    bl_reason kill = BL_REASON(BL_KILL);
    int rounds = BL_SCALE(3000);
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        int fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
        BL_CHECK(fd >= 0);
        if (fd >= 0) bl_io_close(fd);
        seed = seed * 1103515245u + 12345u;
        int victim = (int)((seed >> 16) % ACCEPTORS);
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(acc[victim], &ref), 0);
        BL_CHECK_EQ(bl_exit_pid(acc[victim], &kill), 0);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
        BL_CHECK_EQ(bl_spawn(&acc[victim], accept_loop, &a, NULL), 0);
        bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    }
    for (int i = 0; i < ACCEPTORS; i++) {
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(acc[i], &ref), 0);
        BL_CHECK_EQ(bl_exit_pid(acc[i], &kill), 0);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    }
    bl_io_close(lfd);
    BL_CHECK_EQ(settle_fds(fds0), fds0);
    BL_TEST_UNTIL(bl_io_inflight() == 0, 10000);
    BL_CHECK_EQ(bl_io_inflight(), 0);
}

Test(kill_faults, completed_accept_of_a_killed_acceptor_is_closed, .timeout = 240)
{
    bl_test_run(NULL, accept_storm_main, NULL);
}

/* ---- connections queued in a dead owner's mailbox ---- */

/* Arms an accept stream, says so, and never reads its mailbox. */
static void stream_owner(void *arg)
{
    acc_ctx *a = arg;
    BL_CHECK_EQ(bl_io_accept_stream(a->lfd), 0);
    bl_send(a->test, T_READY, NULL, 0);
    bl_msg *m = NULL;
    uint32_t never = T_NEVER;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void queued_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t inflight0 = bl_io_inflight();
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 64, &port);
    BL_CHECK(lfd >= 0);
    acc_ctx a = {lfd, bl_self()};
    bl_pid owner;
    BL_CHECK_EQ(bl_spawn(&owner, stream_owner, &a, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    /* An armed stream counts in bl_io_inflight. */
    BL_CHECK_EQ(bl_io_inflight(), inflight0 + 1);
    enum { N = 10 };
    int cl[N];
    for (int i = 0; i < N; i++) BL_CHECK((cl[i] = bl_io_connect_tcp("127.0.0.1", port, 5000)) >= 0);
    /* All ten wait in the owner's mailbox as BL_TAG_IO_ACCEPT messages. */
    bl_proc_info in = {0};
    for (int i = 0; i < 200000; i++) {
        if (bl_process_info(owner, &in) == 0 && in.message_queue_len >= N) break;
        bl_yield();
    }
    BL_CHECK_EQ(in.message_queue_len, N);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(owner, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(owner, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    /* Each queued connection was closed with the dead mailbox: its client reads the end. */
    for (int i = 0; i < N; i++) {
        char c;
        if (cl[i] < 0) continue;
        ssize_t n = bl_io_recv(cl[i], &c, 1, 0, 5000);
        BL_CHECK(n == 0 || n == -ECONNRESET);
        bl_io_close(cl[i]);
    }
    /* The stream ends too (the owner is gone): the count goes back. */
    BL_TEST_UNTIL(bl_io_inflight() == inflight0, 10000);
    BL_CHECK_EQ(bl_io_inflight(), inflight0);
    bl_io_close(lfd);
    BL_CHECK_EQ(settle_fds(fds0), fds0);
}

Test(kill_faults, connections_queued_for_a_dead_owner_are_closed, .timeout = 240)
{
    bl_test_run(NULL, queued_main, NULL);
}

/* ---- a dead owner's accept stream, its listener closed: the port is free at once ---- */

static void closed_listener_main(void *arg)
{
    if (bl_schedulers() < 2) return;
    for (int round = 0; round < 5; round++) {
        uint16_t port;
        int lfd = bl_io_listen_tcp("127.0.0.1", 0, 16, &port);
        BL_CHECK(lfd >= 0);
        acc_ctx a = {lfd, bl_self()};
        /* On the other scheduler, which then has nothing to do and sleeps. */
        bl_spawn_opts other = {.scheduler = 2};
        bl_pid owner;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&owner, &ref, stream_owner, &a, &other), 0);
        bl_msg_free(bl_test_recv_tag(T_READY, 5000));
        bl_reason kill = BL_REASON(BL_KILL);
        BL_CHECK_EQ(bl_exit_pid(owner, &kill), 0);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
        bl_io_close(lfd);
        /* The stream went with its owner: nothing keeps the socket listening.
         * (It used to wait for its scheduler's 64th idle round, which an
         * idle scheduler asleep in its ring never reaches.) */
        bl_sleep(200);
        BL_CHECK_EQ(bl_io_inflight(), 0);
        int again = bl_io_listen_tcp("127.0.0.1", port, 16, NULL);
        BL_CHECK(again >= 0);
        if (again >= 0) bl_io_close(again);
    }
}

Test(kill_faults, closed_listener_of_a_dead_stream_owner_is_free, .timeout = 120)
{
    bl_test_run(NULL, closed_listener_main, NULL);
}

/* ---- bl_io_close takes the descriptor: killed in the call, it is still closed ---- */

typedef struct close_ctx {
    _Atomic int ready, go;
    int fd;
} close_ctx;

static void closer(void *arg)
{
    close_ctx *c = arg;
    atomic_store(&c->ready, 1);
    while (!atomic_load(&c->go)) {
    }
    bl_io_close(c->fd);
    bl_msg *m = NULL;
    uint32_t never = T_NEVER;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/* High priority on scheduler 0, where it stays: a closer spinning on 1 never holds it. */
static void close_driver(void *arg)
{
    int fds0 = bl_test_count_fds();
    for (int round = 0; round < 50; round++) {
        close_ctx c = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        BL_CHECK(c.fd >= 0);
        bl_spawn_opts other = {.scheduler = 2};
        bl_pid v;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&v, &ref, closer, &c, &other), 0);
        BL_CHECK(BL_TEST_UNTIL(atomic_load(&c.ready), 10000));
        /* Queued before the call: acted upon at its first chance. */
        bl_reason kill = BL_REASON(BL_KILL);
        BL_CHECK_EQ(bl_exit_pid(v, &kill), 0);
        atomic_store(&c.go, 1);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    }
    BL_CHECK_EQ(settle_fds(fds0), fds0);
}

static void close_main(void *arg)
{
    if (bl_schedulers() < 2) return;
    bl_spawn_opts first = {.scheduler = 1, .priority = BL_PRIO_HIGH};
    bl_pid d;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&d, &ref, close_driver, NULL, &first), 0);
    BL_CHECK(bl_test_recv_tag(BL_TAG_DOWN, 100000) != NULL);
}

Test(kill_faults, close_killed_in_the_call_still_closes, .timeout = 120)
{
    /* One reduction a slice: every call's charge is a yield, where a kill
     * queued before the call is acted upon. */
    bl_config c = {.reductions = 1};
    bl_test_run(&c, close_main, NULL);
}
