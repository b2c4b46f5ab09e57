/*
 * TLS connections whose process is killed: in the middle of a handshake
 * (server and client side), of a read, of a write, and at random moments
 * of many connections at once.  Each time the DOWN comes, then no
 * descriptor, ring operation or memory (ASan's leak check) is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tls_test.h"

static tls_files F;

static void run_tls(bl_entry_fn fn)
{
    cr_assert(tls_make_cert(&F, "srv", "localhost"));
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, fn, NULL);
    tls_files_remove(&F);
}

enum { T_READY = 501 };

/* Waits (bounded) until more ring operations are in flight than base: someone is parked in I/O. */
static bool wait_inflight_above(uint64_t base)
{
    for (int64_t end = bl_test_ms() + 10000; bl_test_ms() < end; bl_yield())
        if (bl_io_inflight() > base) return true;
    return false;
}

/* Waits (bounded) until descriptors and ring operations are back to what they were. */
static void check_back_to(int fds, uint64_t inflight)
{
    for (int64_t end = bl_test_ms() + 10000;
         bl_test_ms() < end && (bl_test_count_fds() != fds || bl_io_inflight() != inflight);)
        bl_yield();
    BL_CHECK_EQ(bl_test_count_fds(), fds);
    BL_CHECK_EQ(bl_io_inflight(), inflight);
}

/* What the server's process does once its handshake is done. */
enum { AFTER_NOTHING, AFTER_READ, AFTER_WRITE };

typedef struct side {
    bl_tls_ctx *ctx; /* server or client context */
    int fd;          /* the socket it gets */
    int after;       /* AFTER_* */
    bl_pid ctl;      /* gets T_READY: data = int, the handshake's result */
} side;

static void server_side(void *arg)
{
    side *s = arg;
    bl_tls_conn *c = NULL;
    if (s->after == AFTER_NOTHING) bl_send(s->ctl, T_READY, NULL, 0);
    int rc = bl_tls_accept(s->ctx, s->fd, BL_INFINITY, &c);
    if (s->after != AFTER_NOTHING) bl_send(s->ctl, T_READY, &rc, sizeof rc);
    if (!c) return;
    if (s->after == AFTER_READ) {
        char buf[100];
        bl_tls_read(c, buf, sizeof buf, BL_INFINITY);
    } else {
        /* More than both socket buffers hold: the send waits for a reader that never reads. */
        size_t len = 64 << 20;
        char *big = calloc(1, len);
        bl_cleanup cl;
        bl_cleanup_push(&cl, free, big);
        bl_tls_write(c, big, len, BL_INFINITY);
        bl_cleanup_pop(&cl, true);
    }
    bl_tls_close(c);
}

static void client_side(void *arg)
{
    side *s = arg;
    bl_tls_conn *c = NULL;
    bl_send(s->ctl, T_READY, NULL, 0);
    bl_tls_connect(s->ctx, s->fd, "localhost", BL_INFINITY, &c);
    bl_tls_close(c);
}

static bl_tls_ctx *server_ctx(void)
{
    bl_tls_opts o = {.cert_file = F.cert, .key_file = F.key};
    bl_tls_ctx *x = bl_tls_server_ctx(&o);
    BL_CHECK(x != NULL);
    return x;
}

/* A connected loopback pair: *a the connecting end, *b the accepted one. */
static void pair(int *a, int *b)
{
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 4, &port);
    *a = bl_io_connect_tcp("127.0.0.1", port, 10000);
    *b = bl_io_accept(lfd, NULL, NULL, 10000);
    BL_CHECK(*a >= 0 && *b >= 0);
    bl_io_close(lfd);
}

static void handshake_kills_main(void *arg)
{
    bl_tls_ctx *sctx = server_ctx();
    bl_tls_ctx *cctx = bl_tls_client_ctx(&(bl_tls_opts){.ca_file = F.cert});
    int fds = bl_test_count_fds();
    uint64_t inflight = bl_io_inflight();

    /* A server waiting for a ClientHello that never comes. */
    int cli, srv;
    pair(&cli, &srv);
    side s = {.ctx = sctx, .fd = srv, .after = AFTER_NOTHING, .ctl = bl_self()};
    bl_pid p;
    BL_CHECK_EQ(bl_spawn(&p, server_side, &s, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    BL_CHECK(wait_inflight_above(inflight)); /* parked in the handshake's receive */
    bl_test_kill_wait(p);
    /* Its socket is closed: the silent client sees the end. */
    char b;
    BL_CHECK_EQ(bl_io_recv(cli, &b, 1, 0, 10000), 0);
    bl_io_close(cli);
    check_back_to(fds, inflight);

    /* A client waiting for a ServerHello that never comes. */
    pair(&cli, &srv);
    s = (side){.ctx = cctx, .fd = cli, .ctl = bl_self()};
    BL_CHECK_EQ(bl_spawn(&p, client_side, &s, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    /* Its ClientHello arrives: then it waits. */
    char hello[5];
    BL_CHECK_EQ(bl_io_recv_all(srv, hello, 5, 0, 10000), 5);
    BL_CHECK_EQ(hello[0], 0x16);
    BL_CHECK(wait_inflight_above(inflight));
    bl_test_kill_wait(p);
    bl_io_close(srv);
    check_back_to(fds, inflight);
    bl_tls_ctx_free(sctx);
    bl_tls_ctx_free(cctx);
}

Test(tls_kill, in_handshake, .timeout = 240)
{
    run_tls(handshake_kills_main);
}

/* Killed blocked in a read, then in a write, after the handshake. */
static void io_kills_main(void *arg)
{
    bl_tls_ctx *sctx = server_ctx();
    bl_tls_ctx *cctx = bl_tls_client_ctx(&(bl_tls_opts){.ca_file = F.cert});
    int fds = bl_test_count_fds();
    uint64_t inflight = bl_io_inflight();
    for (int after = AFTER_READ; after <= AFTER_WRITE; after++) {
        int cli, srv;
        pair(&cli, &srv);
        side s = {.ctx = sctx, .fd = srv, .after = after, .ctl = bl_self()};
        bl_pid p;
        BL_CHECK_EQ(bl_spawn(&p, server_side, &s, NULL), 0);
        bl_tls_conn *c = NULL;
        BL_CHECK_EQ(bl_tls_connect(cctx, cli, "localhost", 10000, &c), 0);
        bl_msg *m = bl_test_recv_tag(T_READY, 10000);
        BL_CHECK(m && *(int *)m->data == 0);
        bl_msg_free(m);
        BL_CHECK(wait_inflight_above(inflight)); /* the server parked in its read / send */
        bl_test_kill_wait(p);
        /* No close_notify came: the client's read says so (after the data, for the write). */
        char buf[64 * 1024];
        ssize_t n;
        while ((n = bl_tls_read(c, buf, sizeof buf, 10000)) > 0) {
        }
        BL_CHECK_EQ(n, -ECONNRESET);
        BL_CHECK(strstr(bl_tls_error(c), "without close_notify") != NULL);
        bl_tls_close(c);
        check_back_to(fds, inflight);
    }
    bl_tls_ctx_free(sctx);
    bl_tls_ctx_free(cctx);
}

Test(tls_kill, in_read_and_write, .timeout = 240)
{
    run_tls(io_kills_main);
}

/* Many connections, both ends killed at arbitrary points of their lives. */
typedef struct pair_arg {
    bl_tls_ctx *ctx; /* the side's context */
    int fd;          /* its socket */
    bl_pid ctl;      /* gets T_READY once the process runs */
} pair_arg;

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

/*
 * The start of a storm process: the socket is guarded by a cleanup handler
 * until bl_tls_accept / connect takes it, with no wait in between.
 */
static pair_arg storm_start(void *arg, bl_cleanup *guard)
{
    pair_arg a = *(pair_arg *)arg;
    free(arg);
    bl_cleanup_push(guard, close_fd, (void *)(intptr_t)a.fd);
    bl_send(a.ctl, T_READY, NULL, 0);
    bl_cleanup_pop(guard, false);
    return a;
}

static void storm_server(void *arg)
{
    bl_cleanup guard;
    pair_arg a = storm_start(arg, &guard);
    bl_tls_conn *c = NULL;
    if (bl_tls_accept(a.ctx, a.fd, 10000, &c) == 0) tls_echo(c);
    if (c) bl_tls_close(c);
}

static void storm_client(void *arg)
{
    bl_cleanup guard;
    pair_arg a = storm_start(arg, &guard);
    bl_tls_conn *c = NULL;
    if (bl_tls_connect(a.ctx, a.fd, "localhost", 10000, &c) == 0)
        for (int i = 0; i < 100 && tls_echo_check(c, 3000); i++) {
        }
    if (c) bl_tls_close(c);
}

static void storm_main(void *arg)
{
    bl_tls_ctx *sctx = server_ctx();
    bl_tls_ctx *cctx = bl_tls_client_ctx(&(bl_tls_opts){.ca_file = F.cert});
    int fds = bl_test_count_fds();
    uint64_t inflight = bl_io_inflight();
    unsigned seed = 42;
    enum { MAX = 64 };
    int n = BL_SCALE(MAX * 5) < MAX ? BL_SCALE(MAX * 5) : MAX;
    bl_pid pids[2 * MAX];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < n; i++) {
            int cli, srv;
            pair(&cli, &srv);
            pair_arg *sa = malloc(sizeof *sa), *ca = malloc(sizeof *ca);
            *sa = (pair_arg){sctx, srv, bl_self()};
            *ca = (pair_arg){cctx, cli, bl_self()};
            BL_CHECK_EQ(bl_spawn(&pids[2 * i], storm_server, sa, NULL), 0);
            BL_CHECK_EQ(bl_spawn(&pids[2 * i + 1], storm_client, ca, NULL), 0);
        }
        /* Every process runs (one killed before its start could not close its socket). */
        for (int i = 0; i < 2 * n; i++) bl_msg_free(bl_test_recv_tag(T_READY, 10000));
        /* Each dies after a random number of our yields: in a handshake, an echo, or done. */
        for (int i = 0; i < 2 * n; i++) {
            for (int y = rand_r(&seed) % 40; y > 0; y--) bl_yield();
            bl_test_kill_wait(pids[i]);
        }
        check_back_to(fds, inflight);
    }
    bl_tls_ctx_free(sctx);
    bl_tls_ctx_free(cctx);
}

Test(tls_kill, storm, .timeout = 240)
{
    run_tls(storm_main);
}
