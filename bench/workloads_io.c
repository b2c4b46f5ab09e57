/*
 * bench/workloads_io.c - the Beamline side of the I/O workloads: processes
 * sleeping through the ring, loopback echo and accept rates, and random
 * 4 KiB reads of a file in the page cache.  Every run checks its outcome;
 * a wrong one returns NAN.
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "workloads.h"

enum { T_DONE = 1 };

/* Waits for n T_DONE messages carrying a long each; returns their sum, -1 on a timeout. */
static long collect(int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        bl_msg *m = recv_tag_wait(T_DONE);
        if (!m) return -1;
        long v;
        memcpy(&v, m->data, sizeof v);
        sum += v;
        bl_msg_free(m);
    }
    return sum;
}

static void done(bl_pid to, long v)
{
    bl_send(to, T_DONE, &v, sizeof v);
}

/* ---- io_sleep_100k: 100k processes sleep 10 ms each; ms until the last wakes ---- */

#define SLEEPERS 100000

static void sleeper(void *arg)
{
    bl_sleep(10);
    done((bl_pid)(uintptr_t)arg, 1);
}

static void io_sleep_drv(driver *d)
{
    bl_pid me = bl_self();
    uint64_t t0 = now_ns();
    for (int i = 0; i < SLEEPERS; i++)
        if (bl_spawn(NULL, sleeper, (void *)(uintptr_t)me, NULL) != 0) return;
    if (collect(SLEEPERS) != SLEEPERS) return;
    d->result = (double)(now_ns() - t0) / 1e6;
}

double wl_io_sleep_100k(void)
{
    return drive_with(io_sleep_drv, 0, NAN);
}

/* ---- echo_rps: 64 connections, 32-byte messages in lockstep; round trips per second ---- */

#define ECHO_CONNS  64
#define ECHO_ROUNDS 1000
#define ECHO_MSG    32

typedef struct echo_ctx {
    int lfd;
    uint16_t port;
    bl_pid driver;
} echo_ctx;

static void echo_server_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[ECHO_MSG];
    while (bl_io_recv_all(fd, buf, sizeof buf, 0, WAIT_MS) == (ssize_t)sizeof buf)
        if (bl_io_send_all(fd, buf, sizeof buf, 0, WAIT_MS) != (ssize_t)sizeof buf) break;
    bl_io_close(fd);
}

static void echo_acceptor(void *arg)
{
    echo_ctx *c = arg;
    for (int i = 0; i < ECHO_CONNS; i++) {
        int fd = bl_io_accept(c->lfd, NULL, NULL, WAIT_MS);
        if (fd < 0) return;
        bl_spawn(NULL, echo_server_conn, (void *)(intptr_t)fd, NULL);
    }
}

static void echo_client(void *arg)
{
    echo_ctx *c = arg;
    long ok = 0;
    int fd = bl_io_connect_tcp("127.0.0.1", c->port, WAIT_MS);
    if (fd >= 0) {
        char out[ECHO_MSG], in[ECHO_MSG];
        memset(out, 'e', sizeof out);
        for (int r = 0; r < ECHO_ROUNDS; r++) {
            out[0] = (char)r;
            if (bl_io_send_all(fd, out, sizeof out, 0, WAIT_MS) != (ssize_t)sizeof out) break;
            if (bl_io_recv_all(fd, in, sizeof in, 0, WAIT_MS) != (ssize_t)sizeof in) break;
            if (memcmp(in, out, sizeof in) != 0) break;
            ok++;
        }
        bl_io_close(fd);
    }
    done(c->driver, ok);
}

static void echo_drv(driver *d)
{
    echo_ctx c = {.driver = bl_self()};
    c.lfd = bl_io_listen_tcp("127.0.0.1", 0, 1024, &c.port);
    if (c.lfd < 0) return;
    bl_spawn(NULL, echo_acceptor, &c, NULL);
    uint64_t t0 = now_ns();
    for (int i = 0; i < ECHO_CONNS; i++) bl_spawn(NULL, echo_client, &c, NULL);
    long total = collect(ECHO_CONNS);
    uint64_t dt = now_ns() - t0;
    close(c.lfd);
    if (total == (long)ECHO_CONNS * ECHO_ROUNDS) d->result = (double)total * 1e9 / (double)dt;
}

double wl_echo_rps(void)
{
    return drive_with(echo_drv, 0, NAN);
}

/* ---- accept_rate: 4 clients connect and close; new connections per second ---- */

#define ACCEPT_CLIENTS 4
#define ACCEPT_EACH    2500

/* One multishot accept: every connection arrives as a message. */
static void accept_server(void *arg)
{
    echo_ctx *c = arg;
    long n = 0;
    if (bl_io_accept_stream(c->lfd) == 0) {
        for (; n < ACCEPT_CLIENTS * ACCEPT_EACH; n++) {
            bl_msg *m = recv_tag_wait(BL_TAG_IO_ACCEPT);
            int fd = -1;
            if (m) memcpy(&fd, m->data, sizeof fd);
            bl_msg_free(m);
            if (fd < 0) break;
            close(fd);
        }
    }
    done(c->driver, n);
}

static void accept_client(void *arg)
{
    echo_ctx *c = arg;
    long ok = 0;
    /* Plain closes: loopback reuses TIME_WAIT ports (tcp_tw_reuse's default). */
    for (int i = 0; i < ACCEPT_EACH; i++) {
        int fd = bl_io_connect_tcp("127.0.0.1", c->port, WAIT_MS);
        if (fd < 0) break;
        close(fd);
        ok++;
    }
    done(c->driver, ok);
}

static void accept_drv(driver *d)
{
    echo_ctx c = {.driver = bl_self()};
    c.lfd = bl_io_listen_tcp("127.0.0.1", 0, 4096, &c.port);
    if (c.lfd < 0) return;
    uint64_t t0 = now_ns();
    bl_spawn(NULL, accept_server, &c, NULL);
    for (int i = 0; i < ACCEPT_CLIENTS; i++) bl_spawn(NULL, accept_client, &c, NULL);
    long total = collect(ACCEPT_CLIENTS + 1);
    uint64_t dt = now_ns() - t0;
    close(c.lfd);
    long want = 2L * ACCEPT_CLIENTS * ACCEPT_EACH;
    if (total == want) d->result = (double)(want / 2) * 1e9 / (double)dt;
}

double wl_accept_rate(void)
{
    return drive_with(accept_drv, 0, NAN);
}

/* ---- file_read_4k_iops: 16 processes, random 4 KiB preads of a cached 64 MiB file ---- */

#define FILE_BYTES (64u << 20)
#define READERS    16
#define READS_EACH 4000
#define BLOCK      4096

static int read_fd = -1;

static void reader(void *arg)
{
    bl_pid drv = (bl_pid)(uintptr_t)arg;
    char buf[BLOCK];
    uint64_t x = now_ns() | 1;
    long ok = 0;
    for (int i = 0; i < READS_EACH; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)(x % (FILE_BYTES / BLOCK)) * BLOCK;
        /* No timeout, as the anchors' preads have none: a deadline costs a
         * timer on the wheel per read. */
        if (bl_io_pread(read_fd, buf, BLOCK, off, BL_INFINITY) != BLOCK) break;
        /* Each block starts with its own number. */
        uint32_t tag;
        memcpy(&tag, buf, sizeof tag);
        if (tag != (uint32_t)(off / BLOCK)) break;
        ok++;
    }
    done(drv, ok);
}

static int make_file(void)
{
    char path[] = "/tmp/bl_bench_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    unlink(path);
    char *blk = calloc(1, BLOCK);
    for (uint32_t i = 0; i < FILE_BYTES / BLOCK; i++) {
        memcpy(blk, &i, sizeof i);
        if (pwrite(fd, blk, BLOCK, (off_t)i * BLOCK) != BLOCK) {
            free(blk);
            close(fd);
            return -1;
        }
    }
    free(blk);
    return fd; /* written through the page cache: every page is cached */
}

static void file_drv(driver *d)
{
    bl_pid me = bl_self();
    uint64_t t0 = now_ns();
    for (int i = 0; i < READERS; i++) bl_spawn(NULL, reader, (void *)(uintptr_t)me, NULL);
    long total = collect(READERS);
    uint64_t dt = now_ns() - t0;
    if (total == (long)READERS * READS_EACH) d->result = (double)total * 1e9 / (double)dt;
}

double wl_file_read_4k_iops(void)
{
    if (read_fd < 0 && (read_fd = make_file()) < 0) return NAN;
    return drive_with(file_drv, 0, NAN);
}
