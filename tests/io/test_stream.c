/*
 * Streams: multishot accept and multishot receive into provided buffers,
 * delivered as messages; their end on peer close, and on the owner's death.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "beamline/io.h"
#include "bl_test.h"

static int msg_int(const bl_msg *m)
{
    int v = 0;
    memcpy(&v, m->data, sizeof v);
    return v;
}

typedef struct conn_ctx {
    uint16_t port;
    bl_pid test;
} conn_ctx;

/* Connects, sends "ping", waits for the socket to close, reports. */
static void pinger(void *arg)
{
    conn_ctx *c = arg;
    int fd = bl_io_connect_tcp("127.0.0.1", c->port, 5000);
    BL_CHECK(fd >= 0);
    int ok = 0;
    if (fd >= 0) {
        ok = bl_io_send_all(fd, "ping", 4, 0, 5000) == 4;
        char b[8];
        ssize_t n = bl_io_recv(fd, b, sizeof b, 0, 5000);
        ok = ok && (n == 0 || n == -ECONNRESET);
        bl_io_close(fd);
    }
    bl_send(c->test, 3, &ok, sizeof ok);
}

static void accept_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 256, &port);
    BL_CHECK(lfd >= 0);
    BL_CHECK_EQ(bl_io_accept_stream(lfd), 0);
    int n = BL_SCALE(100);
    conn_ctx c = {port, bl_self()};
    for (int i = 0; i < n; i++) BL_CHECK_EQ(bl_spawn(NULL, pinger, &c, NULL), 0);
    /* Every connection arrives as a message; read its ping, close it. */
    uint32_t tag = BL_TAG_IO_ACCEPT;
    for (int i = 0; i < n; i++) {
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &tag, 10000, 0), 0);
        if (!m) break;
        BL_CHECK_EQ((int)m->ref, lfd);
        int fd = msg_int(m);
        bl_msg_free(m);
        BL_CHECK(fd >= 0);
        char b[4];
        BL_CHECK_EQ(bl_io_recv_all(fd, b, 4, 0, 5000), 4);
        BL_CHECK(memcmp(b, "ping", 4) == 0);
        BL_CHECK_EQ(bl_io_close(fd), 0);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        bl_msg *m = bl_test_recv_tag(3, 10000);
        BL_CHECK(m != NULL);
        if (m) ok += msg_int(m);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(ok, n);
    /* Shutting the listener down ends the stream with an error message. */
    BL_CHECK_EQ(bl_io_shutdown(lfd, SHUT_RDWR), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_IO_ACCEPT, 5000);
    BL_CHECK(m && msg_int(m) < 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_io_close(lfd), 0);
    BL_CHECK_EQ(bl_io_accept_stream(-1), -EBADF);
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
}

Test(stream, accept)
{
    bl_test_run(NULL, accept_main, NULL);
}

/* The owner of an accept stream dies: its stream ends, nothing leaks. */
static void stream_owner(void *arg)
{
    int lfd = *(int *)arg;
    BL_CHECK_EQ(bl_io_accept_stream(lfd), 0);
    bl_send(bl_whereis("stream_test"), 4, NULL, 0);
    bl_msg_free(bl_test_recv_tag(1, BL_INFINITY));
}

static void dead_owner_main(void *arg)
{
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 64, &port);
    int fds0 = bl_test_count_fds();
    BL_CHECK_EQ(bl_register("stream_test", bl_self()), 0);
    bl_pid owner;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&owner, &ref, stream_owner, &lfd, NULL), 0);
    bl_msg_free(bl_test_recv_tag(4, 5000)); /* armed */
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(owner, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    /* A connection now lands on the dead owner's stream, which closes it
     * and ends; or the stream was swept first and it waits in the backlog,
     * where this process picks it up. */
    conn_ctx c = {port, bl_self()};
    BL_CHECK_EQ(bl_spawn(NULL, pinger, &c, NULL), 0);
    bl_msg *m = NULL;
    uint32_t tag = 3;
    while (bl_recv(&m, bl_match_tag, &tag, 100, 0) != 0) {
        int fd = bl_io_accept(lfd, NULL, NULL, 0);
        if (fd >= 0) bl_io_close(fd);
    }
    BL_CHECK(m && msg_int(m) == 1);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_mailbox_len(), 0); /* nothing was delivered to us */
    BL_TEST_UNTIL(bl_test_count_fds() == fds0, 10000);
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
    close(lfd);
}

Test(stream, accept_owner_dies)
{
    bl_test_run(NULL, dead_owner_main, NULL);
}

/* ---- receive streams ---- */

typedef struct sender_ctx {
    int fd;
    size_t total;
} sender_ctx;

static void sender(void *arg)
{
    sender_ctx *c = arg;
    char *buf = malloc(65536);
    size_t sent = 0;
    uint32_t x = 1;
    while (sent < c->total) {
        size_t n = c->total - sent < 65536 ? c->total - sent : 65536;
        for (size_t i = 0; i < n; i++) buf[i] = (char)((sent + i) * 2654435761u >> 24);
        if (bl_io_send_all(c->fd, buf, n, 0, 10000) != (ssize_t)n) break;
        sent += n;
        x++;
    }
    free(buf);
    bl_io_shutdown(c->fd, SHUT_WR);
}

static void recv_main(void *arg)
{
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sender_ctx c = {sv[1], (size_t)BL_SCALE(16) << 20};
    BL_CHECK_EQ(bl_io_recv_stream(sv[0]), 0);
    BL_CHECK_EQ(bl_spawn(NULL, sender, &c, NULL), 0);
    size_t got = 0;
    bool same = true;
    for (;;) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        if (m->tag == BL_TAG_IO_CLOSED) {
            BL_CHECK_EQ(msg_int(m), 0);
            BL_CHECK_EQ((int)m->ref, sv[0]);
            bl_msg_free(m);
            break;
        }
        BL_CHECK_EQ(m->tag, BL_TAG_IO_DATA);
        const char *d = m->data;
        for (size_t i = 0; i < m->len && same; i++)
            same = d[i] == (char)((got + i) * 2654435761u >> 24);
        got += m->len;
        bl_msg_free(m);
    }
    BL_CHECK(same);
    BL_CHECK_EQ(got, c.total);
    fprintf(stderr, "receive stream: %zu bytes, %llu re-arms\n", got,
            (unsigned long long)bl_io_stream_rearms());
    BL_CHECK(bl_receive(50) == NULL); /* exactly one CLOSED */
    close(sv[0]);
    close(sv[1]);
    BL_CHECK_EQ(bl_io_recv_stream(-1), -EBADF);
}

Test(stream, recv)
{
    bl_test_run(NULL, recv_main, NULL);
}

/* Two buffers only: the kernel runs out, ends the multishot, and the stream
 * is re-armed; the bytes still arrive whole and in order. */
static void exhaust_main(void *arg)
{
    uint64_t before = bl_io_stream_rearms();
    recv_main(arg);
    BL_CHECK(bl_io_stream_rearms() > before);
}

Test(stream, recv_buffers_exhausted)
{
    bl_config c = {.io_buffers = 2};
    bl_test_run(&c, exhaust_main, NULL);
}

/* A tiny ring: a burst of connections overflows the completion queue, the
 * kernel ends the multishot accept, and it is re-armed: none is lost. */
static void accept_small_main(void *arg)
{
    uint64_t before = bl_io_stream_rearms();
    accept_main(arg);
    fprintf(stderr, "accept stream on a tiny ring: %llu re-arms\n",
            (unsigned long long)(bl_io_stream_rearms() - before));
}

Test(stream, accept_small_ring)
{
    bl_config c = {.ring_entries = 4};
    bl_test_run(&c, accept_small_main, NULL);
}

/* ---- single receives (bl_io_recv_once) ---- */

/* The next message with the given tag and descriptor, within 10 s. */
static bl_msg *recv_fd_msg(uint32_t tag, int fd)
{
    bl_msg *m = bl_test_recv_tag(tag, 10000);
    BL_CHECK(m != NULL);
    if (m) BL_CHECK_EQ((int)m->ref, fd);
    return m;
}

static void once_main(void *arg)
{
    (void)arg;
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint64_t inflight0 = bl_io_inflight();
    /* One receive, one message; nothing more until the next is armed. */
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, 0), 0);
    BL_CHECK_EQ(write(sv[1], "abc", 3), 3);
    bl_msg *m = recv_fd_msg(BL_TAG_IO_DATA, sv[0]);
    BL_CHECK(m && m->len == 3 && memcmp(m->data, "abc", 3) == 0);
    bl_msg_free(m);
    BL_CHECK_EQ(write(sv[1], "de", 2), 2);
    BL_CHECK(bl_receive(50) == NULL);
    /* At most max bytes; the rest waits for the next receive. */
    BL_CHECK_EQ(write(sv[1], "fghij", 5), 5);
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 4, 0), 0);
    m = recv_fd_msg(BL_TAG_IO_DATA, sv[0]);
    BL_CHECK(m && m->len == 4 && memcmp(m->data, "defg", 4) == 0);
    bl_msg_free(m);
    /* A delay gathers what is written meanwhile into one message (the
     * writes are done before this process lets the scheduler run, so
     * before the delay is even armed). */
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, BL_IO_ONCE_DELAY_MAX_US), 0);
    for (int i = 0; i < 3; i++) BL_CHECK_EQ(write(sv[1], "xyz" + i, 1), 1);
    m = recv_fd_msg(BL_TAG_IO_DATA, sv[0]);
    BL_CHECK(m && m->len == 6 && memcmp(m->data, "hijxyz", 6) == 0);
    bl_msg_free(m);
    /* The peer's close: one BL_TAG_IO_CLOSED with 0. */
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, 0), 0);
    close(sv[1]);
    m = recv_fd_msg(BL_TAG_IO_CLOSED, sv[0]);
    BL_CHECK(m && msg_int(m) == 0);
    bl_msg_free(m);
    BL_CHECK(BL_TEST_UNTIL(bl_io_inflight() == inflight0, 10000));
    close(sv[0]);
    /* Bad arguments. */
    BL_CHECK_EQ(bl_io_recv_once(-1, 64, 0), -EBADF);
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 0, 0), -EINVAL);
    BL_CHECK_EQ(bl_io_recv_once(sv[0], BL_IO_ONCE_MAX + 1, 0), -EINVAL);
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, BL_IO_ONCE_DELAY_MAX_US + 1), -EINVAL);
}

Test(stream, recv_once)
{
    bl_test_run(NULL, once_main, NULL);
    cr_assert_eq(bl_io_recv_once(0, 64, 0), -EPERM);
}

/*
 * Short delays, shorter than the idle spin: the delay ends while the
 * scheduler spins, its reap arms the receive, and the scheduler must
 * submit that receive before it sleeps (a sleep with it unsubmitted waits
 * for nothing that can come).
 */
static void once_short_main(void *arg)
{
    (void)arg;
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int rounds = BL_SCALE(500);
    for (int i = 0; i < rounds; i++) {
        BL_CHECK_EQ(write(sv[1], "q", 1), 1);
        BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, 1 + (unsigned)i % 40), 0);
        bl_msg *m = recv_fd_msg(BL_TAG_IO_DATA, sv[0]);
        bool ok = m && m->len == 1;
        bl_msg_free(m);
        BL_CHECK(ok);
        if (!ok) break;
    }
    close(sv[0]);
    close(sv[1]);
}

Test(stream, recv_once_short_delays, .timeout = 120)
{
    bl_test_run(NULL, once_short_main, NULL);
}

typedef struct once_victim {
    int fd;
    unsigned delay_us;
    bl_pid test;
} once_victim;

/* Arms a receive that nothing will complete, says so, and waits to be killed. */
static void once_armer(void *arg)
{
    once_victim *v = arg;
    BL_CHECK_EQ(bl_io_recv_once(v->fd, 64, v->delay_us), 0);
    bl_send(v->test, 1, NULL, 0);
    bl_msg_free(bl_receive(BL_INFINITY));
}

/* The owner dies with its receive (or the delay before it) in flight: the op ends, nothing leaks.
 */
static void once_dies_main(void *arg)
{
    (void)arg;
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint64_t inflight0 = bl_io_inflight();
    unsigned delays[] = {0, BL_IO_ONCE_DELAY_MAX_US};
    for (int k = 0; k < 2; k++) {
        once_victim v = {sv[0], delays[k], bl_self()};
        bl_pid pid;
        BL_CHECK_EQ(bl_spawn(&pid, once_armer, &v, NULL), 0);
        bl_msg_free(bl_test_recv_tag(1, 10000));
        BL_CHECK(bl_io_inflight() > inflight0);
        bl_test_kill_wait(pid);
        BL_CHECK(BL_TEST_UNTIL(bl_io_inflight() == inflight0, 10000));
    }
    /* The descriptor is free for a new owner, and the data is all there. */
    BL_CHECK_EQ(write(sv[1], "ok", 2), 2);
    BL_CHECK_EQ(bl_io_recv_once(sv[0], 64, 0), 0);
    bl_msg *m = recv_fd_msg(BL_TAG_IO_DATA, sv[0]);
    BL_CHECK(m && m->len == 2 && memcmp(m->data, "ok", 2) == 0);
    bl_msg_free(m);
    close(sv[0]);
    close(sv[1]);
}

Test(stream, recv_once_owner_dies, .timeout = 60)
{
    bl_test_run(NULL, once_dies_main, NULL);
}
