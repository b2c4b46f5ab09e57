/*
 * tests/chaos/blocking_io.c - the blocking calls of beamline/io.h (and
 * the waits of beamline.h and beamline/dirty.h) for blocking_calls.
 *
 * Fixtures: a listener (its backlog drained after each iteration, so the
 * next accept blocks), a TCP pair whose far end the killer writes to, a
 * pipe, a Unix socket pair whose send buffer is kept full, a listener
 * whose backlog is full (so connects to it wait), and a temporary file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blocking.h"

/* ---- fixtures ---- */

static int listener(bc_fix *x, int backlog)
{
    int fd = bl_io_listen_tcp("127.0.0.1", 0, backlog, &x->port);
    if (fd < 0) return fd;
    x->lfd = fd;
    return 0;
}

/* Accepts (without waiting) and closes what waits in the listener's backlog. */
static void drain_backlog(bc_fix *x)
{
    for (int i = 0; i < 1000; i++) {
        int fd = bl_io_accept(x->lfd, NULL, NULL, 0);
        if (fd < 0) break;
        close(fd);
    }
}

static void close_clients(bc_fix *x)
{
    for (int i = 0; i < x->nclients; i++) close(x->clients[i]);
    x->nclients = 0;
}

static void close_all(bc_fix *x)
{
    close_clients(x);
    if (x->lfd >= 0) close(x->lfd);
    if (x->a >= 0) close(x->a);
    if (x->b >= 0) close(x->b);
    if (x->file >= 0) close(x->file);
    x->lfd = x->a = x->b = x->file = -1;
}

/* A connected TCP pair in a (the victim's end) and b (the killer's). */
static int tcp_pair(bc_fix *x)
{
    int rc = listener(x, 16);
    if (rc) return rc;
    x->a = bl_io_connect_tcp("127.0.0.1", x->port, 5000);
    x->b = x->a >= 0 ? bl_io_accept(x->lfd, NULL, NULL, 5000) : -1;
    close(x->lfd);
    x->lfd = -1;
    if (x->a < 0 || x->b < 0) {
        rc = x->a < 0 ? x->a : x->b;
        close_all(x);
        return rc;
    }
    return 0;
}

static int make_pipe(bc_fix *x)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    x->a = p[0];
    x->b = p[1];
    return 0;
}

/* Writes to fd until it would block (fd blocking or not; flags restored). */
static void fill(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    char buf[4096];
    memset(buf, 'f', sizeof buf);
    for (int i = 0; i < 100000 && write(fd, buf, sizeof buf) > 0; i++) {
    }
    fcntl(fd, F_SETFL, fl);
}

/* Reads from fd until it would block (flags restored). */
static void drain(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    char buf[4096];
    for (int i = 0; i < 100000 && read(fd, buf, sizeof buf) > 0; i++) {
    }
    fcntl(fd, F_SETFL, fl);
}

/* A Unix stream pair with small buffers; a's send side is kept full. */
static int full_pair(bc_fix *x)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -errno;
    int sz = 16384;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    x->a = sv[0];
    x->b = sv[1];
    fill(x->a);
    return 0;
}

static int full_pipe(bc_fix *x)
{
    int rc = make_pipe(x);
    if (rc) return rc;
    /* The victim writes to a: swap the ends so that a is the write end. */
    int t = x->a;
    x->a = x->b;
    x->b = t;
    fill(x->a);
    return 0;
}

/* A listener whose backlog is full: a connect to it waits (its SYN is dropped). */
static int full_backlog(bc_fix *x)
{
    int rc = listener(x, 1);
    if (rc) return rc;
    for (int i = 0; i < 16 && x->nclients < BC_CLIENTS; i++) {
        int fd = bl_io_connect_tcp("127.0.0.1", x->port, 200);
        if (fd == -ETIMEDOUT) return 0;
        if (fd < 0) break;
        x->clients[x->nclients++] = fd;
    }
    close_all(x);
    return -ENOSPC; /* could not fill it: connects would not wait */
}

static int temp_file(bc_fix *x)
{
    char path[] = "/tmp/beamline_chaos_XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return -errno;
    unlink(path);
    char buf[4096];
    memset(buf, 'd', sizeof buf);
    for (int i = 0; i < 16; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) break;
    x->file = fd;
    return 0;
}

/* ---- pokes: complete the call right before the kill ---- */

static void poke_connect(bc_fix *x)
{
    if (x->nclients >= BC_CLIENTS) return;
    int fd = bl_io_connect_tcp("127.0.0.1", x->port, 1000);
    if (fd >= 0) x->clients[x->nclients++] = fd;
}

static void poke_write_b(bc_fix *x)
{
    char c[8] = "pokepoke";
    if (send(x->b, c, 1 + chaos_below(&x->g, 8), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* a pipe: write(2) */
        if (write(x->b, c, 1) < 0) {
        }
    }
}

static void poke_drain_b(bc_fix *x)
{
    drain(x->b);
}

/* ---- afters: the fixture back as the next victim needs it ---- */

static void after_accept(bc_fix *x)
{
    close_clients(x);
    drain_backlog(x);
}

static void after_drain_a(bc_fix *x)
{
    drain(x->a);
}

static void after_refill(bc_fix *x)
{
    drain(x->b);
    fill(x->a);
}

static void prepare_tmo(bc_fix *x)
{
    x->param = (int64_t)chaos_below(&x->g, 4); /* 0 to 3 ms */
}

/* ---- the victims ---- */

static void e_accept(bc_fix *x)
{
    int fd = -1;
    bl_cleanup c;
    bl_cleanup_push(&c, bc_close_ptr, &fd);
    fd = bl_io_accept(x->lfd, NULL, NULL, BL_INFINITY);
    bl_cleanup_pop(&c, true);
}

static void e_accept_tmo(bc_fix *x)
{
    for (int i = 0; i < 100000; i++) {
        int fd = -1;
        bl_cleanup c;
        bl_cleanup_push(&c, bc_close_ptr, &fd);
        fd = bl_io_accept(x->lfd, NULL, NULL, x->param);
        bl_cleanup_pop(&c, true);
        if (fd >= 0) break;
    }
}

static void e_accept_stream(bc_fix *x)
{
    if (bl_io_accept_stream(x->lfd) != 0) return;
    /* Connections arrive as messages this process never reads. */
    chaos_wait_never();
}

static void e_recv(bc_fix *x)
{
    char buf[64];
    (void)bl_io_recv(x->a, buf, sizeof buf, 0, BL_INFINITY);
}

static void e_recv_tmo(bc_fix *x)
{
    char buf[64];
    for (int i = 0; i < 100000; i++)
        if (bl_io_recv(x->a, buf, sizeof buf, 0, x->param) != -ETIMEDOUT) break;
}

static void e_recv_all(bc_fix *x)
{
    char buf[64];
    (void)bl_io_recv_all(x->a, buf, sizeof buf, 0, BL_INFINITY);
}

static void e_recv_stream(bc_fix *x)
{
    if (bl_io_recv_stream(x->a) != 0) return;
    chaos_wait_never();
}

static void e_read(bc_fix *x)
{
    char buf[64];
    (void)bl_io_read(x->a, buf, sizeof buf, BL_INFINITY);
}

static void e_read_all(bc_fix *x)
{
    char buf[64];
    (void)bl_io_read_all(x->a, buf, sizeof buf, BL_INFINITY);
}

static void e_poll(bc_fix *x)
{
    (void)bl_io_poll(x->a, POLLIN, BL_INFINITY);
}

static void e_poll_tmo(bc_fix *x)
{
    for (int i = 0; i < 100000; i++)
        if (bl_io_poll(x->a, POLLIN, x->param) != -ETIMEDOUT) break;
}

static char big_out[65536]; /* what the senders send (never read back) */

static void e_send(bc_fix *x)
{
    (void)bl_io_send(x->a, big_out, sizeof big_out, 0, BL_INFINITY);
}

static void e_send_tmo(bc_fix *x)
{
    for (int i = 0; i < 100000; i++)
        if (bl_io_send(x->a, big_out, sizeof big_out, 0, x->param) != -ETIMEDOUT) break;
}

static void e_send_all(bc_fix *x)
{
    (void)bl_io_send_all(x->a, big_out, sizeof big_out, 0, BL_INFINITY);
}

static void e_write(bc_fix *x)
{
    (void)bl_io_write(x->a, big_out, sizeof big_out, BL_INFINITY);
}

static void e_write_all(bc_fix *x)
{
    (void)bl_io_write_all(x->a, big_out, sizeof big_out, BL_INFINITY);
}

static void e_connect_tcp(bc_fix *x)
{
    int fd = -1;
    bl_cleanup c;
    bl_cleanup_push(&c, bc_close_ptr, &fd);
    fd = bl_io_connect_tcp("127.0.0.1", x->port, BL_INFINITY);
    bl_cleanup_pop(&c, true);
}

static void e_connect(bc_fix *x)
{
    int fd = -1;
    bl_cleanup c;
    bl_cleanup_push(&c, bc_close_ptr, &fd);
    fd = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(x->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0) (void)bl_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, BL_INFINITY);
    bl_cleanup_pop(&c, true);
}

static void e_pread(bc_fix *x)
{
    char buf[4096];
    for (int i = 0; i < 100000; i++)
        if (bl_io_pread(x->file, buf, sizeof buf, (off_t)(i % 16) * 4096, BL_INFINITY) < 0) break;
}

static void e_open(bc_fix *x)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", x->file);
    for (int i = 0; i < 100000; i++) {
        int fd = -1;
        bl_cleanup c;
        bl_cleanup_push(&c, bc_close_ptr, &fd);
        fd = bl_io_open(path, O_RDONLY, 0);
        bl_cleanup_pop(&c, true);
        if (fd < 0) break;
    }
}

/*
 * bl_io_close is given the descriptor: from the call on, closing it is the
 * runtime's (the caller forgets it first, or its cleanup could close a
 * number someone else was given meanwhile).  Killed in the call, it must
 * still be closed.
 */
static void e_close(bc_fix *x)
{
    for (int i = 0; i < 100000; i++) {
        int fd = -1;
        bl_cleanup c;
        bl_cleanup_push(&c, bc_close_ptr, &fd);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int t = fd;
        fd = -1;
        bl_cleanup_pop(&c, false);
        if (t < 0 || bl_io_close(t) != 0) break;
    }
}

static void e_fsync(bc_fix *x)
{
    for (int i = 0; i < 100000; i++)
        if (bl_io_fsync(x->file, (i & 1) != 0, BL_INFINITY) != 0) break;
}

static void e_sleep(bc_fix *x)
{
    for (int i = 0; i < 100000; i++) bl_sleep(x->param);
}

static void e_recv_msg(bc_fix *x)
{
    for (int i = 0; i < 100000; i++) bl_msg_free(chaos_recv_tag(CHAOS_T_NEVER, x->param));
}

static long dirty_nap(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    return 0;
}

static void e_dirty(bc_fix *x)
{
    long res;
    (void)bl_dirty_run(dirty_nap, (void *)(intptr_t)(200 + x->param * 300), &res);
}

/* ---- setups and teardowns ---- */

static int s_listener(bc_fix *x)
{
    return listener(x, 256);
}

static int s_listener_tmo(bc_fix *x)
{
    return listener(x, 256);
}

static void t_all(bc_fix *x)
{
    close_all(x);
}

const bc_call bc_io_calls[] = {
    {"io.h", "bl_io_accept", s_listener, NULL, e_accept, poke_connect, after_accept, t_all},
    {"io.h", "bl_io_accept (0-3 ms timeout, looped)", s_listener_tmo, prepare_tmo, e_accept_tmo,
     poke_connect, after_accept, t_all},
    {"io.h", "bl_io_accept_stream (+ waiting)", s_listener, NULL, e_accept_stream, poke_connect,
     after_accept, t_all},
    {"io.h", "bl_io_connect_tcp (backlog full)", full_backlog, NULL, e_connect_tcp, NULL, NULL,
     t_all},
    {"io.h", "bl_io_connect (backlog full)", full_backlog, NULL, e_connect, NULL, NULL, t_all},
    {"io.h", "bl_io_recv (tcp)", tcp_pair, NULL, e_recv, poke_write_b, after_drain_a, t_all},
    {"io.h", "bl_io_recv (0-3 ms timeout, looped)", tcp_pair, prepare_tmo, e_recv_tmo, poke_write_b,
     after_drain_a, t_all},
    {"io.h", "bl_io_recv_all (tcp)", tcp_pair, NULL, e_recv_all, poke_write_b, after_drain_a,
     t_all},
    {"io.h", "bl_io_recv_stream (+ waiting)", tcp_pair, NULL, e_recv_stream, poke_write_b,
     after_drain_a, t_all},
    {"io.h", "bl_io_poll (tcp)", tcp_pair, NULL, e_poll, poke_write_b, after_drain_a, t_all},
    {"io.h", "bl_io_poll (0-3 ms timeout, looped)", tcp_pair, prepare_tmo, e_poll_tmo, poke_write_b,
     after_drain_a, t_all},
    {"io.h", "bl_io_read (pipe)", make_pipe, NULL, e_read, poke_write_b, after_drain_a, t_all},
    {"io.h", "bl_io_read_all (pipe)", make_pipe, NULL, e_read_all, poke_write_b, after_drain_a,
     t_all},
    {"io.h", "bl_io_send (socket buffer full)", full_pair, NULL, e_send, poke_drain_b, after_refill,
     t_all},
    {"io.h", "bl_io_send (full, 0-3 ms timeout, looped)", full_pair, prepare_tmo, e_send_tmo,
     poke_drain_b, after_refill, t_all},
    {"io.h", "bl_io_send_all (socket buffer full)", full_pair, NULL, e_send_all, poke_drain_b,
     after_refill, t_all},
    {"io.h", "bl_io_write (pipe full)", full_pipe, NULL, e_write, poke_drain_b, after_refill,
     t_all},
    {"io.h", "bl_io_write_all (pipe full)", full_pipe, NULL, e_write_all, poke_drain_b,
     after_refill, t_all},
    {"io.h", "bl_io_open (looped)", temp_file, NULL, e_open, NULL, NULL, t_all},
    {"io.h", "bl_io_close (looped)", NULL, NULL, e_close, NULL, NULL, NULL},
    {"io.h", "bl_io_pread (file, looped)", temp_file, NULL, e_pread, NULL, NULL, t_all},
    {"io.h", "bl_io_fsync (file, looped)", temp_file, NULL, e_fsync, NULL, NULL, t_all},
    {"beamline.h", "bl_sleep (0-3 ms, looped)", NULL, prepare_tmo, e_sleep, NULL, NULL, NULL},
    {"beamline.h", "bl_recv (0-3 ms timeout, looped)", NULL, prepare_tmo, e_recv_msg, NULL, NULL,
     NULL},
    {"dirty.h", "bl_dirty_run (0.2-1.1 ms job)", NULL, prepare_tmo, e_dirty, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
