/*
 * beamline/http.h's responses and connection ends: a file body spliced
 * (bytes compared), chunked streams, a client that stops reading a big
 * response (bounded memory, the handler's write times out), a handler
 * killed mid-response (no descriptor left), the graceful shutdown of a
 * group, random bytes through the whole request path, and curl as a real
 * client.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>

#include "net/http_test.h"

/* Messages from handlers to the test. */
enum { T_PID = 11, T_GO = 12, T_BIG = 13, T_CURL = 14 };

static bl_pid test_pid;
static char file_path[64];
static size_t file_len;

static int h_file(bl_http_req *req, void *arg)
{
    (void)arg;
    int fd = bl_io_open(file_path, O_RDONLY, 0);
    if (fd < 0) return fd;
    size_t ol;
    const char *off = bl_http_query(req, &ol); /* "?<offset>" */
    off_t o = off ? atol(off) : 0;
    /* Killed mid-response, the handler's own descriptor is its to close. */
    bl_cleanup cl;
    bl_cleanup_push(&cl, close_fd, &fd);
    int rc = bl_http_reply_file(req, 200, fd, o, file_len - (size_t)o);
    bl_cleanup_pop(&cl, true);
    return rc;
}

static int h_chunks(bl_http_req *req, void *arg)
{
    (void)arg;
    int rc = bl_http_stream_begin(req, 200);
    for (int i = 0; rc == 0 && i < 100; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "chunk-%d\n", i);
        rc = bl_http_stream_write(req, line, (size_t)n);
    }
    if (rc == 0) rc = bl_http_stream_write(req, "", 0); /* skipped, not the end */
    return rc ? rc : bl_http_stream_end(req);
}

/* Streams 64 KiB chunks until a write fails; tells the test how far it got. */
static int h_big(bl_http_req *req, void *arg)
{
    (void)arg;
    static char piece[65536];
    memset(piece, 'x', sizeof piece);
    long sent = 0;
    int rc = bl_http_stream_begin(req, 200);
    while (rc == 0 && sent < (1L << 30)) {
        rc = bl_http_stream_write(req, piece, sizeof piece);
        if (rc == 0) sent += (long)sizeof piece;
    }
    long msg[2] = {sent, rc};
    bl_send(test_pid, T_BIG, msg, sizeof msg);
    return rc;
}

/* Starts a response, then waits forever (to be killed). */
static int h_hang(bl_http_req *req, void *arg)
{
    (void)arg;
    BL_CHECK_EQ(bl_http_stream_begin(req, 200), 0);
    BL_CHECK_EQ(bl_http_stream_write(req, "partial", 7), 0);
    BL_CHECK_EQ(bl_http_stream_write(req, NULL, 0), 0);
    bl_pid me = bl_self();
    bl_send(test_pid, T_PID, &me, sizeof me);
    uint32_t never = 999;
    bl_msg *m;
    (void)bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
    return 0;
}

/* Tells the test it has the request, waits for T_GO, answers. */
static int h_slow(bl_http_req *req, void *arg)
{
    (void)arg;
    bl_pid me = bl_self();
    bl_send(test_pid, T_PID, &me, sizeof me);
    bl_msg_free(bl_test_recv_tag(T_GO, 20000));
    return bl_http_reply(req, 200, "slow", 4);
}

static int h_hello(bl_http_req *req, void *arg)
{
    (void)arg;
    return bl_http_reply(req, 200, "hello", 5);
}

static bl_http_router *routes(void)
{
    bl_http_router *r;
    BL_CHECK_EQ(bl_http_router_new(&r), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/file", h_file, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/chunks", h_chunks, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/big", h_big, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/hang", h_hang, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/slow", h_slow, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, NULL, "/hello", h_hello, NULL), 0);
    return r;
}

/* A file of n pseudo-random bytes; its contents in *out (malloc). */
static void make_file(size_t n, char **out)
{
    snprintf(file_path, sizeof file_path, "/tmp/bl_http_test_%d", getpid());
    char *b = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (char)x;
    }
    FILE *f = fopen(file_path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    file_len = n;
    *out = b;
}

/*
 * The descriptors open now, once the I/O in flight is back to inflight0
 * and the dirty pool idle (a killed sendfile's pipe is closed there), and
 * the count back to want (bounded: 10 s).
 */
static int fds_settled(uint64_t inflight0, int want)
{
    int64_t t0 = bl_test_ms();
    while ((bl_io_inflight() > inflight0 || bl_dirty_pending() || bl_test_count_fds() != want) &&
           bl_test_ms() - t0 < 10000)
        bl_yield();
    return bl_test_count_fds();
}

/* ---- file bodies and chunked streams ---- */

/* A transport that is not the raw descriptor (as TLS's would be): the copy path. */
static ssize_t t_recv(void *ctx, void *buf, size_t len, int64_t ms)
{
    return bl_io_recv(*(int *)ctx, buf, len, 0, ms);
}

static ssize_t t_send(void *ctx, const void *buf, size_t len, int64_t ms)
{
    return bl_io_send(*(int *)ctx, buf, len, 0, ms);
}

/* A connection served by a process of its own, on a socketpair. */
typedef struct pair {
    int fd;            /* the server's end */
    bl_http_router *r; /* the routes */
    bl_http_opts *o;   /* the options */
} pair;

static void serve_pair(void *a)
{
    pair *p = a;
    bl_send(test_pid, T_GO, NULL, 0);
    BL_CHECK_EQ(bl_http_serve_conn(p->fd, p->r, p->o), 0);
    bl_send(test_pid, T_GO, NULL, 0);
}

static void file_main(void *arg)
{
    (void)arg;
    test_pid = bl_self();
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    char *want;
    make_file(3 * 1024 * 1024 + 123, &want);
    test_srv *s = srv_start(routes(), NULL);
    client *c = cl_open(s->port);
    resp r;
    for (int i = 0; i < 2; i++) {
        BL_CHECK(cl_say(c, i ? "GET /file?1000 HTTP/1.1\r\nHost: x\r\n\r\n"
                             : "GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
        size_t off = i ? 1000 : 0;
        BL_CHECK_EQ(cl_response(c, &r, false), 200);
        BL_CHECK_EQ(r.len, file_len - off);
        BL_CHECK(r.len == file_len - off && memcmp(r.body, want + off, r.len) == 0);
        free(r.body);
    }
    /* HEAD: the length, no bytes; the connection goes on. */
    BL_CHECK(cl_say(c, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET /chunks HTTP/1.1\r\nHost: "
                       "x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, true), 200);
    char v[64];
    BL_CHECK(resp_header(&r, "Content-Length", v, sizeof v) && strtoul(v, NULL, 10) == file_len);
    free(r.body);
    /* A chunked stream. */
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(resp_header(&r, "Transfer-Encoding", v, sizeof v) && strcmp(v, "chunked") == 0);
    char expect[2048] = "";
    for (int i = 0; i < 100; i++) sprintf(expect + strlen(expect), "chunk-%d\n", i);
    BL_CHECK(strcmp(r.body, expect) == 0);
    free(r.body);
    cl_close(c);
    /* To an HTTP/1.0 client: no chunks, the body ends with the connection. */
    c = cl_open(s->port);
    BL_CHECK(cl_say(c, "GET /chunks HTTP/1.0\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strstr(r.head, "Transfer-Encoding") == NULL);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    BL_CHECK(strcmp(r.body, expect) == 0);
    free(r.body);
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);

    /* Through a transport that is not the raw descriptor: the file is read and sent. */
    static int tfd;
    static bl_http_transport tp = {.recv = t_recv, .send = t_send, .ctx = &tfd};
    bl_http_router *rt = routes();
    int sv[2];
    BL_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    tfd = sv[0];
    bl_http_opts o = {.transport = &tp, .idle_ms = 100};
    client *pc = calloc(1, sizeof *pc);
    pc->fd = sv[1];
    BL_CHECK(cl_say(pc, "GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    /* The socket buffers hold less than the file: serve from another process. */
    pair pr = {sv[0], rt, &o};
    BL_CHECK_EQ(bl_spawn(NULL, serve_pair, &pr, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_GO, 10000));
    BL_CHECK_EQ(cl_response(pc, &r, false), 200);
    BL_CHECK(r.len == file_len && memcmp(r.body, want, r.len) == 0);
    free(r.body);
    bl_msg_free(bl_test_recv_tag(T_GO, 10000));
    close(sv[0]);
    cl_close(pc);
    bl_http_router_free(rt);
    unlink(file_path);
    free(want);
    BL_CHECK_EQ(fds_settled(io0, fds0), fds0);
}

Test(http_io, file_and_chunked_bodies, .timeout = 120)
{
    bl_config c = {.quiet = true};
    test_pid = BL_PID_NONE;
    bl_test_run(&c, file_main, NULL);
}

/* ---- a client that stops reading ---- */

static void slow_reader_main(void *arg)
{
    (void)arg;
    test_pid = bl_self();
    bl_http_opts o = {.send_ms = 300};
    test_srv *s = srv_start(routes(), &o);
    client *c = cl_open(s->port);
    int small = 16384;
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    BL_CHECK(cl_say(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    /* The client reads nothing: the handler's write times out, having sent what the
     * kernel's buffers hold (a few MiB), nothing near the 1 GiB it would send. */
    bl_msg *m = bl_test_recv_tag(T_BIG, 30000);
    BL_CHECK(m != NULL);
    if (m) {
        long *v = m->data;
        BL_CHECK_EQ(v[1], -ETIMEDOUT);
        BL_CHECK(v[0] < 64L * 1024 * 1024);
    }
    bl_msg_free(m);
    /* And the connection is closed (after what was sent is read). */
    char buf[65536];
    ssize_t n;
    int64_t t0 = bl_test_ms();
    while ((n = bl_io_recv(c->fd, buf, sizeof buf, 0, 5000)) > 0 && bl_test_ms() - t0 < 20000) {
    }
    BL_CHECK(n == 0 || n == -ECONNRESET);
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
}

Test(http_io, slow_reader, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, slow_reader_main, NULL);
}

/* ---- a handler killed mid-response ---- */

static void killed_main(void *arg)
{
    (void)arg;
    test_pid = bl_self();
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    char *want;
    make_file(48 * 1024 * 1024, &want);
    test_srv *s = srv_start(routes(), NULL);
    bl_reason kill = BL_REASON(BL_KILL);
    for (int round = 0; round < 2; round++) {
        client *c = cl_open(s->port);
        if (round == 0) {
            /* In the middle of a chunked stream, waiting in a receive. */
            BL_CHECK(cl_say(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n"));
            bl_msg *m = bl_test_recv_tag(T_PID, 10000);
            BL_CHECK(m != NULL);
            bl_pid victim = m ? *(bl_pid *)m->data : BL_PID_NONE;
            bl_msg_free(m);
            bl_ref ref;
            BL_CHECK_EQ(bl_monitor(victim, &ref), 0);
            BL_CHECK_EQ(bl_exit_pid(victim, &kill), 0);
            bl_msg *down = bl_test_recv_tag(BL_TAG_DOWN, 10000);
            BL_CHECK(down != NULL);
            bl_msg_free(down);
        } else {
            /* In the middle of a file splice to a client that does not read (the file
             * is larger than what the kernel's buffers hold). */
            BL_CHECK(cl_say(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
            /* The response has begun: its head is here. */
            while (!memmem(c->buf, c->have, "\r\n\r\n", 4))
                if (cl_more(c, 10000) <= 0) break;
            BL_CHECK(srv_wait_conns(s, 1));
            /* The group's shutdown kills it when its timeout passes (and waits for it). */
            BL_CHECK_EQ(srv_stop(s, 200), -ETIMEDOUT);
        }
        /* The client sees the end: no last chunk, the connection closed. */
        int64_t t0 = bl_test_ms();
        ssize_t n;
        long total = 0;
        do {
            c->have = 0;
            n = cl_more(c, 10000);
            if (n > 0) total += n;
        } while (n > 0 && bl_test_ms() - t0 < 20000);
        BL_CHECK(total < (long)file_len); /* cut short */
        BL_CHECK(n == 0 || n == -ECONNRESET);
        cl_close(c);
    }
    unlink(file_path);
    free(want);
    BL_CHECK_EQ(fds_settled(io0, fds0), fds0);
}

Test(http_io, handler_killed_mid_response, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, killed_main, NULL);
}

/* ---- graceful shutdown ---- */

typedef struct stopper_ctx {
    test_srv *s; /* the server */
    int64_t ms;  /* the shutdown's timeout */
} stopper_ctx;

static void stopper(void *arg)
{
    stopper_ctx *x = arg;
    int rc = srv_stop(x->s, x->ms);
    bl_send(test_pid, T_GO + 100, &rc, sizeof rc);
}

static void shutdown_main(void *arg)
{
    (void)arg;
    test_pid = bl_self();
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    test_srv *s = srv_start(routes(), NULL);
    resp r;
    /* idle: between requests; busy: its handler runs; half: half a head sent. */
    client *idle = cl_open(s->port);
    BL_CHECK(cl_say(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(idle, &r, false), 200);
    free(r.body);
    client *busy = cl_open(s->port);
    BL_CHECK(cl_say(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    bl_msg *m = bl_test_recv_tag(T_PID, 10000);
    bl_pid handler = m ? *(bl_pid *)m->data : BL_PID_NONE;
    bl_msg_free(m);
    client *half = cl_open(s->port);
    BL_CHECK(cl_say(half, "GET /hello HTTP/1.1\r\n"));
    BL_CHECK(srv_wait_conns(s, 3));
    int64_t t0 = bl_test_ms();
    while (bl_http_group_idle(s->g) != 1 && bl_test_ms() - t0 < 10000) bl_yield();
    BL_CHECK_EQ(bl_http_group_idle(s->g), 1);

    stopper_ctx x = {s, 10000};
    BL_CHECK_EQ(bl_spawn(NULL, stopper, &x, NULL), 0);
    /* The idle connection is closed without an answer. */
    BL_CHECK(cl_sees_eof(idle, 5000));
    /* The others answer with Connection: close and close. */
    bl_send(handler, T_GO, NULL, 0);
    BL_CHECK_EQ(cl_response(busy, &r, false), 200);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    free(r.body);
    BL_CHECK(cl_sees_eof(busy, 5000));
    BL_CHECK(cl_say(half, "Host: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(half, &r, false), 200);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    free(r.body);
    BL_CHECK(cl_sees_eof(half, 5000));
    m = bl_test_recv_tag(T_GO + 100, 20000);
    BL_CHECK(m && *(int *)m->data == 0);
    bl_msg_free(m);
    cl_close(idle);
    cl_close(busy);
    cl_close(half);
    BL_CHECK_EQ(fds_settled(io0, fds0), fds0);

    /* A group refuses connections once shut down; twice is an error. */
    bl_http_group *g;
    BL_CHECK_EQ(bl_http_group_new(&g, 1), 0);
    BL_CHECK_EQ(bl_http_group_shutdown(g, 0), 0);
    BL_CHECK_EQ(bl_http_group_shutdown(g, 0), -EALREADY);
    bl_http_router *rt = routes();
    bl_http_opts o = {.group = g};
    BL_CHECK_EQ(bl_http_serve_conn(0, rt, &o), -ESHUTDOWN);
    BL_CHECK_EQ(bl_http_group_free(g), 0);
    bl_http_router_free(rt);
}

Test(http_io, graceful_shutdown, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, shutdown_main, NULL);
}

/* ---- random bytes through the whole request path ---- */

static void fuzz_main(void *arg)
{
    (void)arg;
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    bl_http_opts o = {.header_ms = 200, .idle_ms = 200, .body_ms = 200, .max_head = 1024};
    test_srv *s = srv_start(routes(), &o);
    static const char *const seeds[] = {
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "GET /chunks HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int n = BL_SCALE(400);
    for (int i = 0; i < n; i++) {
        char buf[512];
        const char *seed = seeds[i % 4];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        for (int k = 0; k < 1 + i % 5; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % len);
            buf[at] = (x >> 20) % 3 ? (char)(x >> 32) : "\r\n :0;"[(x >> 40) % 6];
        }
        if (i % 7 == 0) len = (size_t)(x >> 8) % len; /* cut short */
        client *c = cl_open(s->port);
        BL_CHECK(cl_send(c, buf, len));
        /* Whatever comes back, the connection ends (a response or not) in bounded time. */
        ssize_t r;
        int64_t t0 = bl_test_ms();
        do {
            c->have = 0;
            r = cl_more(c, 5000);
        } while (r > 0 && bl_test_ms() - t0 < 10000);
        BL_CHECK(r == 0 || r == -ECONNRESET);
        cl_close(c);
    }
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
    BL_CHECK_EQ(fds_settled(io0, fds0), fds0);
}

Test(http_io, random_requests, .timeout = 240)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, fuzz_main, NULL);
}

/* ---- curl ---- */

typedef struct curl_job {
    char cmd[512];  /* the command */
    char out[4096]; /* what it printed */
} curl_job;

/* A plain thread runs curl (it blocks), then tells the test: bl_send works from any thread. */
static void *curl_thread(void *arg)
{
    curl_job *j = arg;
    FILE *p = popen(j->cmd, "r");
    size_t n = p ? fread(j->out, 1, sizeof j->out - 1, p) : 0;
    j->out[n] = 0;
    int rc = p ? pclose(p) : -1;
    bl_send(test_pid, T_CURL, &rc, sizeof rc);
    return NULL;
}

static int run_curl(curl_job *j)
{
    pthread_t t;
    pthread_create(&t, NULL, curl_thread, j);
    bl_msg *m = bl_test_recv_tag(T_CURL, 60000);
    int rc = m ? *(int *)m->data : -1;
    bl_msg_free(m);
    pthread_join(t, NULL);
    return rc;
}

static void curl_main(void *arg)
{
    (void)arg;
    test_pid = bl_self();
    char *want;
    make_file(1000000, &want);
    test_srv *s = srv_start(routes(), NULL);
    curl_job *j = calloc(1, sizeof *j);
    /* Two requests on one connection (keep-alive), then a chunked body. */
    snprintf(j->cmd, sizeof j->cmd,
             "curl -s -S --max-time 20 http://127.0.0.1:%u/hello http://127.0.0.1:%u/hello "
             "http://127.0.0.1:%u/chunks 2>&1 | head -c 3000",
             s->port, s->port, s->port);
    BL_CHECK_EQ(run_curl(j), 0);
    BL_CHECK(strncmp(j->out, "hellohellochunk-0\n", 18) == 0);
    BL_CHECK(strstr(j->out, "chunk-99\n") != NULL);
    /* A file, compared by curl itself. */
    snprintf(j->cmd, sizeof j->cmd,
             "curl -s -S --max-time 20 -o %s.got http://127.0.0.1:%u/file && cmp %s %s.got "
             "&& echo same; rm -f %s.got",
             file_path, s->port, file_path, file_path, file_path);
    BL_CHECK_EQ(run_curl(j), 0);
    BL_CHECK(strcmp(j->out, "same\n") == 0);
    /* A chunked upload (curl sends Transfer-Encoding: chunked for a pipe). */
    snprintf(j->cmd, sizeof j->cmd,
             "printf 'up' | curl -s -S --max-time 20 -T - -X POST -o /dev/null -w '%%{http_code}' "
             "http://127.0.0.1:%u/hello",
             s->port);
    BL_CHECK_EQ(run_curl(j), 0);
    BL_CHECK(strcmp(j->out, "200") == 0);
    free(j);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
    unlink(file_path);
    free(want);
}

Test(http_io, curl, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, curl_main, NULL);
}
