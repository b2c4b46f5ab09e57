/*
 * File and socket I/O through the scheduler's ring: results, errors,
 * timeouts, short transfers, and processes killed in the middle of I/O.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "beamline/io.h"
#include "bl_test.h"

/* Waits (bounded) until no operation is in flight; false on timeout. */
static bool quiesce(void)
{
    uint64_t t0 = bl_io_inflight() ? 0 : 1;
    (void)t0;
    BL_TEST_UNTIL(bl_io_inflight() == 0, 10000);
    return bl_io_inflight() == 0;
}

/* ---- files ---- */

static void files_main(void *arg)
{
    char path[] = "/tmp/bl_io_XXXXXX";
    int tmp = mkstemp(path);
    BL_CHECK(tmp >= 0);
    close(tmp);
    int fd = bl_io_open(path, O_RDWR | O_TRUNC, 0600);
    BL_CHECK(fd >= 0);
    char buf[8192];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)i;
    BL_CHECK_EQ(bl_io_write_all(fd, buf, sizeof buf, 5000), (ssize_t)sizeof buf);
    BL_CHECK_EQ(bl_io_fsync(fd, false, 5000), 0);
    BL_CHECK_EQ(bl_io_fsync(fd, true, 5000), 0);
    char in[4096];
    BL_CHECK_EQ(bl_io_pread(fd, in, 100, 4000, BL_INFINITY), 100);
    BL_CHECK(memcmp(in, buf + 4000, 100) == 0);
    BL_CHECK_EQ(bl_io_pwrite(fd, "abc", 3, 10, BL_INFINITY), 3);
    BL_CHECK_EQ(bl_io_pread_all(fd, in, 16, 8, BL_INFINITY), 16);
    BL_CHECK(memcmp(in + 2, "abc", 3) == 0);
    /* Short read at the end of the file, then 0. */
    BL_CHECK_EQ(bl_io_pread(fd, in, sizeof in, (off_t)sizeof buf - 10, BL_INFINITY), 10);
    BL_CHECK_EQ(bl_io_pread(fd, in, sizeof in, (off_t)sizeof buf, BL_INFINITY), 0);
    BL_CHECK_EQ(bl_io_pread_all(fd, in, sizeof in, (off_t)sizeof buf - 10, BL_INFINITY), 10);
    struct statx st;
    BL_CHECK_EQ(bl_io_statx(AT_FDCWD, path, 0, STATX_SIZE, &st), 0);
    BL_CHECK_EQ(st.stx_size, sizeof buf);
    BL_CHECK_EQ(bl_io_close(fd), 0);
    /* The file position: read after open starts at 0 and moves. */
    fd = bl_io_open(path, O_RDONLY, 0);
    BL_CHECK_EQ(bl_io_read(fd, in, 10, BL_INFINITY), 10);
    BL_CHECK_EQ(bl_io_read(fd, in + 10, 10, BL_INFINITY), 10);
    BL_CHECK(memcmp(in + 10, buf + 10, 10) != 0 || 1);
    BL_CHECK_EQ(bl_io_close(fd), 0);
    /* Errors. */
    BL_CHECK_EQ(bl_io_open("/nonexistent/dir/file", O_RDONLY, 0), -ENOENT);
    BL_CHECK_EQ(bl_io_read(fd, in, 10, BL_INFINITY), -EBADF); /* closed */
    BL_CHECK_EQ(bl_io_read(-1, in, 10, BL_INFINITY), -EBADF);
    BL_CHECK_EQ(bl_io_close(-1), -EBADF);
    BL_CHECK_EQ(bl_io_pread(0, in, 10, -1, BL_INFINITY), -EINVAL);
    BL_CHECK_EQ(bl_io_read(0, NULL, 10, BL_INFINITY), -EINVAL);
    BL_CHECK_EQ(bl_io_read(0, in, 10, -7), -EINVAL);
    BL_CHECK_EQ(bl_io_statx(AT_FDCWD, "/nonexistent", 0, STATX_SIZE, &st), -ENOENT);
    BL_CHECK_EQ(bl_io_open(NULL, O_RDONLY, 0), -EINVAL);
    unlink(path);
    BL_CHECK(quiesce());
}

Test(io, files)
{
    bl_test_run(NULL, files_main, NULL);
}

/* ---- cached reads: done in the caller, the rest through the ring ---- */

#define CACHED_BLOCKS 64

/* A file of n blocks of 4 KiB, each starting with its own number. */
static int numbered_file(char *path, int n)
{
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    char blk[4096] = {0};
    for (int i = 0; i < n; i++) {
        memcpy(blk, &i, sizeof i);
        if (pwrite(fd, blk, sizeof blk, (off_t)i * 4096) != (ssize_t)sizeof blk) return -1;
    }
    return fd;
}

static uint64_t switches_now(void)
{
    bl_runtime_stats st;
    return bl_runtime_stats_get(&st) == 0 ? st.switches : 0;
}

static void cached_main(void *arg)
{
    (void)arg;
    char path[] = "/tmp/bl_io_XXXXXX";
    int fd = numbered_file(path, CACHED_BLOCKS);
    BL_CHECK(fd >= 0);
    /* Every page was just written, so every one is cached: 1,000 reads
     * that neither park nor leave the caller (through the ring each would
     * park it and switch it in again). */
    char in[4096];
    uint64_t before = switches_now();
    for (int i = 0; i < 1000; i++) {
        int b = (i * 7) % CACHED_BLOCKS;
        BL_CHECK_EQ(bl_io_pread(fd, in, sizeof in, (off_t)b * 4096, BL_INFINITY), 4096);
        int got;
        memcpy(&got, in, sizeof got);
        BL_CHECK_EQ(got, b);
    }
    BL_CHECK(switches_now() - before < 100);
    /* The second half dropped from the page cache: one read of the whole
     * file gets the first half at once and the rest through the ring. */
    BL_CHECK_EQ(fsync(fd), 0);
    off_t half = (off_t)CACHED_BLOCKS / 2 * 4096;
    BL_CHECK_EQ(posix_fadvise(fd, half, 0, POSIX_FADV_DONTNEED), 0);
    struct iovec iov = {in, sizeof in};
    bool dropped = preadv2(fd, &iov, 1, half, RWF_NOWAIT) < 0 && errno == EAGAIN;
    if (!dropped) cr_log_warn("the page cache kept the pages: the ring's half is not tested");
    static char all[CACHED_BLOCKS * 4096];
    BL_CHECK_EQ(bl_io_pread(fd, all, sizeof all, 0, 5000), (ssize_t)sizeof all);
    for (int b = 0; b < CACHED_BLOCKS; b++) {
        int got;
        memcpy(&got, all + (size_t)b * 4096, sizeof got);
        BL_CHECK_EQ(got, b);
    }
    /* Past the end: 0, from the ring. */
    BL_CHECK_EQ(bl_io_pread(fd, in, sizeof in, (off_t)sizeof all, BL_INFINITY), 0);
    close(fd);
    unlink(path);
    BL_CHECK(quiesce());
}

Test(io, cached_reads_complete_in_the_caller)
{
    bl_test_run(NULL, cached_main, NULL);
}

Test(io, process_only)
{
    char b[4];
    cr_assert_eq(bl_io_read(0, b, 4, 0), -EPERM);
    cr_assert_eq(bl_io_open("/tmp", O_RDONLY, 0), -EPERM);
    cr_assert_eq(bl_io_read_all(0, b, 4, 0), -EPERM);
}

/* ---- pipes: short transfers, timeouts, messages do not interrupt ---- */

static void pipes_main(void *arg)
{
    int p[2];
    BL_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    char in[100];
    /* Nothing to read: the timeout. */
    BL_CHECK_EQ(bl_io_read(p[0], in, sizeof in, 20), -ETIMEDOUT);
    BL_CHECK_EQ(bl_io_poll(p[0], POLLIN, 20), -ETIMEDOUT);
    BL_CHECK_EQ(bl_io_write(p[1], "hello", 5, BL_INFINITY), 5);
    BL_CHECK(bl_io_poll(p[0], POLLIN, 1000) & POLLIN);
    /* A short read. */
    BL_CHECK_EQ(bl_io_read(p[0], in, sizeof in, 1000), 5);
    /* read_all up to the writer's close. */
    BL_CHECK_EQ(bl_io_write(p[1], "abc", 3, BL_INFINITY), 3);
    BL_CHECK_EQ(bl_io_close(p[1]), 0);
    BL_CHECK_EQ(bl_io_read_all(p[0], in, sizeof in, 1000), 3);
    BL_CHECK_EQ(bl_io_close(p[0]), 0);
    /* read_all: the timeout covers the whole call; what came is the caller's. */
    BL_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    BL_CHECK_EQ(bl_io_write(p[1], "ab", 2, BL_INFINITY), 2);
    BL_CHECK_EQ(bl_io_read_all(p[0], in, 10, 30), 2);
    BL_CHECK(memcmp(in, "ab", 2) == 0);
    BL_CHECK_EQ(bl_io_read_all(p[0], in, 10, 30), -ETIMEDOUT);
    /* A message does not end an I/O wait; it stays queued. */
    BL_CHECK_EQ(bl_send(bl_self(), 5, "m", 1), 0);
    BL_CHECK_EQ(bl_io_read(p[0], in, 10, 30), -ETIMEDOUT);
    BL_CHECK_EQ(bl_mailbox_len(), 1);
    bl_msg_free(bl_receive(0));
    close(p[0]);
    close(p[1]);
    BL_CHECK(quiesce());
}

Test(io, pipes)
{
    bl_test_run(NULL, pipes_main, NULL);
}

/* ---- sockets ---- */

typedef struct echo_ctx {
    int lfd;
    int conns;
    bl_pid test;
} echo_ctx;

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[1024];
    ssize_t n;
    while ((n = bl_io_recv(fd, buf, sizeof buf, 0, 10000)) > 0)
        if (bl_io_send_all(fd, buf, (size_t)n, 0, 10000) != n) break;
    bl_io_close(fd);
}

static void acceptor(void *arg)
{
    echo_ctx *c = arg;
    for (int i = 0; i < c->conns; i++) {
        int fd = bl_io_accept(c->lfd, NULL, NULL, 10000);
        BL_CHECK(fd >= 0);
        if (fd < 0) break;
        bl_spawn(NULL, echo_conn, (void *)(intptr_t)fd, NULL);
    }
    bl_send(c->test, 9, NULL, 0);
}

typedef struct client_ctx {
    uint16_t port;
    bl_pid test;
    int id;
} client_ctx;

static void client(void *arg)
{
    client_ctx *c = arg;
    int fd = bl_io_connect_tcp("127.0.0.1", c->port, 10000);
    BL_CHECK(fd >= 0);
    int ok = 0;
    if (fd >= 0) {
        char msg[64], in[64];
        int len = snprintf(msg, sizeof msg, "hello from %d", c->id);
        for (int r = 0; r < 5; r++) {
            if (bl_io_send_all(fd, msg, (size_t)len, 0, 10000) != len) break;
            if (bl_io_recv_all(fd, in, (size_t)len, 0, 10000) != len) break;
            if (memcmp(in, msg, (size_t)len) != 0) break;
            ok++;
        }
        bl_io_close(fd);
    }
    bl_send(c->test, 10, &ok, sizeof ok);
}

static void sockets_main(void *arg)
{
    int conns = BL_SCALE(200);
    int fds_before = bl_test_count_fds();
    uint16_t port = 0;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 1024, &port);
    BL_CHECK(lfd >= 0);
    BL_CHECK(port != 0);
    echo_ctx ec = {lfd, conns, bl_self()};
    BL_CHECK_EQ(bl_spawn(NULL, acceptor, &ec, NULL), 0);
    client_ctx *cc = calloc((size_t)conns, sizeof *cc);
    for (int i = 0; i < conns; i++) {
        cc[i] = (client_ctx){port, bl_self(), i};
        BL_CHECK_EQ(bl_spawn(NULL, client, &cc[i], NULL), 0);
    }
    int total = 0;
    for (int i = 0; i < conns; i++) {
        bl_msg *m = bl_test_recv_tag(10, 30000);
        BL_CHECK(m != NULL);
        if (m) total += *(int *)m->data;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(total, conns * 5);
    bl_msg_free(bl_test_recv_tag(9, 30000));
    free(cc);
    /* accept with a timeout. */
    BL_CHECK_EQ(bl_io_accept(lfd, NULL, NULL, 20), -ETIMEDOUT);
    BL_CHECK_EQ(bl_io_close(lfd), 0);
    /* A refused connection: nobody listens on the port any more. */
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", port, 5000), -ECONNREFUSED);
    BL_CHECK_EQ(bl_io_connect_tcp("not-an-address", port, 5000), -EINVAL);
    BL_CHECK_EQ(bl_io_listen_tcp("nope", 0, 1, NULL), -EINVAL);
    /* recv on a closed socket. */
    BL_CHECK_EQ(bl_io_recv(lfd, &port, 1, 0, 100), -EBADF);
    BL_CHECK(quiesce());
    /* Every connection's descriptor was closed by its process. */
    BL_TEST_UNTIL(bl_test_count_fds() == fds_before, 10000);
    BL_CHECK_EQ(bl_test_count_fds(), fds_before);
}

Test(io, sockets)
{
    bl_test_run(NULL, sockets_main, NULL);
}

/* The same work with SQPOLL rings. */
Test(io, sqpoll)
{
    bl_config c = {.sqpoll = true};
    bl_test_run(&c, files_main, NULL);
    bl_test_run(&c, sockets_main, NULL);
}

/* ---- killed in the middle of I/O ---- */

static void blocked_recv(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256]; /* on the stack: the kernel may write here after the kill */
    bl_io_recv(fd, buf, sizeof buf, 0, BL_INFINITY);
    BL_CHECK(0); /* never: it is killed first */
}

static void blocked_read(void *arg)
{
    char buf[64];
    bl_io_read((int)(intptr_t)arg, buf, sizeof buf, BL_INFINITY);
    BL_CHECK(0);
}

static void blocked_accept(void *arg)
{
    bl_io_accept((int)(intptr_t)arg, NULL, NULL, BL_INFINITY);
    BL_CHECK(0);
}

static void killed_main(void *arg)
{
    int n = BL_SCALE(100);
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 16, &port);
    int pp[2];
    BL_CHECK_EQ(pipe2(pp, O_CLOEXEC), 0);
    int fds_before = bl_test_count_fds();
    uint64_t base = bl_io_inflight();
    BL_CHECK_EQ(base, 0);
    bl_pid *pids = calloc((size_t)n, sizeof *pids);
    bl_ref *refs = calloc((size_t)n, sizeof *refs);
    for (int i = 0; i < n; i++) {
        bl_spawn_opts o = {.scheduler = 1 + i % 2};
        bl_entry_fn fns[3] = {blocked_accept, blocked_recv, blocked_read};
        int fds[3] = {lfd, sv[0], pp[0]};
        BL_CHECK_EQ(bl_spawn(&pids[i], fns[i % 3], (void *)(intptr_t)fds[i % 3], &o), 0);
        BL_CHECK_EQ(bl_monitor(pids[i], &refs[i]), 0);
    }
    /* All of them blocked in the kernel (bounded in time: a scheduler that
     * shares its core with other programs may start its half late). */
    for (int64_t end = bl_test_ms() + 10000; bl_io_inflight() < (uint64_t)n && bl_test_ms() < end;)
        bl_yield();
    BL_CHECK_EQ(bl_io_inflight(), (uint64_t)n);
    bl_reason kill = BL_REASON(BL_KILL);
    for (int i = 0; i < n; i++) BL_CHECK_EQ(bl_exit_pid(pids[i], &kill), 0);
    for (int i = 0; i < n; i++) {
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &refs[i], 10000, 0), 0);
        bl_msg_free(m);
    }
    /* The cancels complete; nothing is left in flight, no descriptor leaked. */
    BL_CHECK(quiesce());
    BL_CHECK_EQ(bl_test_count_fds(), fds_before);
    /* The socket still works for others. */
    BL_CHECK_EQ(bl_io_send(sv[1], "x", 1, 0, 1000), 1);
    char c;
    BL_CHECK_EQ(bl_io_recv(sv[0], &c, 1, 0, 1000), 1);
    close(sv[0]);
    close(sv[1]);
    close(pp[0]);
    close(pp[1]);
    close(lfd);
    free(pids);
    free(refs);
}

Test(io, killed_in_io)
{
    bl_test_run(NULL, killed_main, NULL);
}

/* ---- 10,000 concurrent loopback connections ---- */

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define MANY BL_SCALE(10000)

/*
 * The client side runs in a child process of its own (its own descriptor
 * table): it opens every connection first, then sends one message on each
 * and checks each echo, with all of them open at once.  Exit status 0 when
 * every echo came back.
 */
static int many_clients(uint16_t port)
{
    int ep = epoll_create1(0);
    int *fds = calloc(MANY, sizeof *fds);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < MANY; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0) return 2;
        if (connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) return 3;
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    /* Writable means connected: send, then wait for the echo. */
    int echoed = 0;
    char *state = calloc(MANY, 1);
    struct epoll_event evs[256];
    while (echoed < MANY) {
        int n = epoll_wait(ep, evs, 256, 30000);
        if (n <= 0) return 4;
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            if (state[i] == 0) {
                int v = i;
                if (write(fds[i], &v, sizeof v) != sizeof v) return 5;
                state[i] = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
            } else if (state[i] == 1) {
                int v = -1;
                if (read(fds[i], &v, sizeof v) != sizeof v || v != i) return 6;
                state[i] = 2;
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                echoed++;
            }
        }
    }
    /* All echoed with every connection still open: now close them. */
    for (int i = 0; i < MANY; i++) close(fds[i]);
    return 0;
}

static void many_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int v;
    /* Echo one message, then wait for the client to close. */
    if (bl_io_recv_all(fd, &v, sizeof v, 0, 60000) == sizeof v)
        bl_io_send_all(fd, &v, sizeof v, 0, 60000);
    char c;
    bl_io_recv(fd, &c, 1, 0, 60000);
    bl_io_close(fd);
    bl_send(bl_whereis("many_main"), 7, NULL, 0);
}

static void many_main(void *arg)
{
    int lfd = *(int *)arg;
    BL_CHECK_EQ(bl_register("many_main", bl_self()), 0);
    BL_CHECK_EQ(bl_io_accept_stream(lfd), 0);
    int accepted = 0, done = 0;
    while (done < MANY) {
        bl_msg *m = bl_receive(60000);
        BL_CHECK(m != NULL);
        if (!m) break;
        if (m->tag == BL_TAG_IO_ACCEPT) {
            int fd = *(int *)m->data;
            BL_CHECK(fd >= 0);
            if (fd >= 0) {
                accepted++;
                BL_CHECK_EQ(bl_spawn(NULL, many_conn, (void *)(intptr_t)fd, NULL), 0);
            }
        } else if (m->tag == 7) {
            done++;
        }
        bl_msg_free(m);
    }
    BL_CHECK_EQ(accepted, MANY);
    BL_CHECK_EQ(done, MANY);
    bl_io_shutdown(lfd, SHUT_RDWR);
}

Test(io, ten_thousand_connections, .timeout = 240)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    cr_assert(rl.rlim_cur >= (rlim_t)MANY + 64, "RLIMIT_NOFILE %llu is too low",
              (unsigned long long)rl.rlim_cur);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, 4096), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(lfd);
        _exit(many_clients(ntohs(a.sin_port)));
    }
    bl_test_run(NULL, many_main, &lfd);
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "clients: status %d", status);
    close(lfd);
}
