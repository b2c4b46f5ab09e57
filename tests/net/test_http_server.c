/*
 * bl_http_start / bl_http_stop on loopback: a routed server over TCP and
 * over TLS (our client, and curl with the self-signed certificate made
 * here), max_connections reached and released, a handler killed in the
 * middle of its response, a client that stops reading, TLS handshakes that
 * fail or stall, and a graceful stop under wrk's load with raw pipelining
 * clients beside it that check every response they got was whole.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <sys/wait.h>

#include "net/http_test.h"
#include "net/tls_test.h"

static tls_files F;

/* Messages to the test process. */
enum { T_LOAD = 301, T_HOLD, T_BIG, T_CMD, T_RAW };

/* What the handlers count and whom they tell. */
static struct {
    bl_pid test;               /* the test process */
    _Atomic uint64_t started;  /* /plaintext requests handled */
    _Atomic uint64_t finished; /* of which the reply was written whole */
    _Atomic uint64_t wrk;      /* of which wrk's (any Host but the raw clients' "x") */
    uint64_t notify_at;        /* started count at which the test is told (T_LOAD) */
    uint64_t notify_wrk;       /* ... once wrk's count has reached this too */
    _Atomic bool notified;     /* T_LOAD sent */
} G;

static int plaintext(bl_http_req *req, void *arg)
{
    (void)arg;
    uint64_t n = atomic_fetch_add(&G.started, 1) + 1;
    size_t hl = 0;
    const char *host = bl_http_header(req, "Host", &hl);
    bool raw = host && hl == 1 && host[0] == 'x';
    uint64_t w = raw ? atomic_load(&G.wrk) : atomic_fetch_add(&G.wrk, 1) + 1;
    if (G.notify_at && n >= G.notify_at && w >= G.notify_wrk && !atomic_exchange(&G.notified, true))
        bl_send(G.test, T_LOAD, NULL, 0);
    bl_http_set_header(req, "Content-Type", "text/plain");
    int rc = bl_http_reply(req, 200, "Hello, World!", 13);
    if (rc == 0) atomic_fetch_add(&G.finished, 1);
    return rc;
}

/* Starts a chunked response, sends a chunk, tells the test its pid, and waits to be killed. */
static int hold(bl_http_req *req, void *arg)
{
    (void)arg;
    BL_CHECK_EQ(bl_http_stream_begin(req, 200), 0);
    /* Past half the connection's output buffer: written out at once, not gathered. */
    static const char part[65536];
    BL_CHECK_EQ(bl_http_stream_write(req, part, sizeof part), 0);
    bl_pid me = bl_self();
    bl_send(G.test, T_HOLD, &me, sizeof me);
    bl_msg *m = NULL;
    (void)bl_recv(&m, NULL, NULL, 30000, 0);
    bl_msg_free(m);
    return 0;
}

/* What /big tells the test when its stream stopped. */
typedef struct big_report {
    int rc;           /* the failed write's error */
    uint64_t written; /* bytes written before it */
} big_report;

/* Streams up to 256 MiB from one 64 KiB buffer; reports where the writes stopped. */
static int big(bl_http_req *req, void *arg)
{
    (void)arg;
    static const char chunk[65536];
    big_report r = {0};
    r.rc = bl_http_stream_begin(req, 200);
    while (r.rc == 0 && r.written < (256u << 20)) {
        r.rc = bl_http_stream_write(req, chunk, sizeof chunk);
        if (r.rc == 0) r.written += sizeof chunk;
    }
    bl_send(G.test, T_BIG, &r, sizeof r);
    return r.rc;
}

static bl_http_router *routes(void)
{
    bl_http_router *r = NULL;
    BL_CHECK_EQ(bl_http_router_new(&r), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/plaintext", plaintext, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/hold", hold, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/big", big, NULL), 0);
    return r;
}

static void reset(void)
{
    G.test = bl_self();
    atomic_store(&G.started, 0);
    atomic_store(&G.finished, 0);
    atomic_store(&G.wrk, 0);
    atomic_store(&G.notified, false);
    G.notify_at = 0;
    G.notify_wrk = 0;
}

static bl_http_server_info info(bl_http_server *s)
{
    bl_http_server_info i = {0};
    BL_CHECK_EQ(bl_http_server_info_get(s, &i), 0);
    return i;
}

/* ---- external commands (curl, wrk), on the dirty-work pool: they block ---- */

typedef struct command {
    char line[1024]; /* for sh -c */
    char out[8192];  /* its output (and error), NUL-terminated */
    int status;      /* exit status, -1 if it could not run */
} command;

static long run_command(void *arg)
{
    command *c = arg;
    c->status = -1;
    c->out[0] = 0;
    FILE *p = popen(c->line, "r");
    if (!p) return 0;
    size_t n = fread(c->out, 1, sizeof c->out - 1, p);
    c->out[n] = 0;
    int st = pclose(p);
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 0;
}

static int run(command *c)
{
    BL_CHECK_EQ(bl_dirty_run(run_command, c, NULL), 0);
    return c->status;
}

/* ---- plain and TLS ---- */

static void serve_main(void *arg)
{
    (void)arg;
    reset();
    int fds = bl_test_count_fds();
    bl_http_router *r = routes();
    bl_http_server *s = NULL;
    bl_http_server_opts o = {.router = r, .listener.host = "127.0.0.1"};
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    uint16_t port = info(s).listener.port;
    BL_CHECK(port != 0);
    resp rs;
    BL_CHECK_EQ(one_shot(port, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", &rs), 200);
    BL_CHECK(rs.body && strcmp(rs.body, "Hello, World!") == 0);
    free(rs.body);
    BL_CHECK_EQ(one_shot(port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", &rs), 404);
    free(rs.body);
    BL_CHECK(bl_http_server_listener(s) != NULL);
    BL_CHECK_EQ(bl_http_stop(s, 5000), 0);
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", port, 5000), -ECONNREFUSED);

    /* TLS from the files: our client, then curl trusting the certificate. */
    o.cert_file = F.cert;
    o.key_file = F.key;
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    port = info(s).listener.port;
    bl_tls_opts co = {.ca_file = F.cert, .alpn = "http/1.1"};
    bl_tls_ctx *cx = bl_tls_client_ctx(&co);
    BL_CHECK(cx != NULL);
    int rc;
    bl_tls_conn *c = tls_dial(cx, port, "localhost", &rc);
    BL_CHECK_EQ(rc, 0);
    if (c) {
        BL_CHECK(bl_tls_alpn(c) && strcmp(bl_tls_alpn(c), "http/1.1") == 0);
        const char *req = "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        BL_CHECK_EQ(bl_tls_write(c, req, strlen(req), 5000), (ssize_t)strlen(req));
        char buf[1024];
        size_t have = 0;
        ssize_t n;
        while ((n = bl_tls_read(c, buf + have, sizeof buf - 1 - have, 5000)) > 0) have += (size_t)n;
        buf[have] = 0;
        BL_CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        BL_CHECK(have > 13 && memcmp(buf + have - 13, "Hello, World!", 13) == 0);
        bl_tls_close(c);
    }
    command cmd;
    snprintf(cmd.line, sizeof cmd.line,
             "curl -sS --max-time 10 --cacert %s https://127.0.0.1:%u/plaintext 2>&1", F.cert,
             port);
    BL_CHECK_EQ(run(&cmd), 0);
    BL_CHECK(strcmp(cmd.out, "Hello, World!") == 0);
    /* curl not trusting it fails; the server goes on. */
    snprintf(cmd.line, sizeof cmd.line,
             "curl -sS --max-time 10 https://127.0.0.1:%u/plaintext >/dev/null 2>&1", port);
    BL_CHECK(run(&cmd) != 0);
    BL_CHECK_EQ(bl_http_stop(s, 5000), 0);

    /* TLS from a context of the program's, which keeps its own reference. */
    bl_tls_opts so = {.cert_file = F.cert, .key_file = F.key};
    bl_tls_ctx *sx = bl_tls_server_ctx(&so);
    BL_CHECK(sx != NULL);
    bl_http_server_opts o2 = {.router = r, .listener.host = "127.0.0.1", .tls = sx};
    BL_CHECK_EQ(bl_http_start(&s, &o2), 0);
    bl_tls_ctx_free(sx);
    port = info(s).listener.port;
    c = tls_dial(cx, port, "localhost", &rc);
    BL_CHECK_EQ(rc, 0);
    if (c) bl_tls_close(c);
    BL_CHECK_EQ(bl_http_stop(s, 5000), 0);
    bl_tls_ctx_free(cx);

    /* Bad options. */
    bl_http_server_opts bad = {.router = NULL};
    BL_CHECK_EQ(bl_http_start(&s, &bad), -EINVAL);
    bad = (bl_http_server_opts){.router = r, .cert_file = F.cert};
    BL_CHECK_EQ(bl_http_start(&s, &bad), -EINVAL);
    bad = (bl_http_server_opts){.router = r, .handshake_ms = -2};
    BL_CHECK_EQ(bl_http_start(&s, &bad), -EINVAL);
    bad = (bl_http_server_opts){.router = r, .cert_file = "/nonexistent", .key_file = F.key};
    BL_CHECK(bl_http_start(&s, &bad) < 0);
    BL_CHECK(s == NULL);
    BL_CHECK_EQ(bl_http_stop(NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_http_start(NULL, &o), -EINVAL);
    bl_http_router_free(r);
    BL_CHECK_EQ(bl_test_count_fds(), fds);
}

Test(http_server, plain_and_tls, .timeout = 120)
{
    cr_assert(tls_make_cert(&F, "srv", "localhost"));
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, serve_main, NULL);
    tls_files_remove(&F);
}

/* ---- limits and failures ---- */

static void limits_main(void *arg)
{
    (void)arg;
    reset();
    int fds = bl_test_count_fds();
    bl_http_router *r = routes();
    bl_http_server *s = NULL;
    bl_http_server_opts o = {
        .router = r,
        .listener = {.host = "127.0.0.1", .max_connections = 2, .acceptors = 1},
        .http = {.send_ms = 300},
    };
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    uint16_t port = info(s).listener.port;
    const char *get = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    resp rs;

    /* Two keep-alive connections take both slots; a third waits unaccepted. */
    client *a = cl_open(port), *b = cl_open(port), *c = cl_open(port);
    BL_CHECK(cl_say(a, get) && cl_say(b, get));
    BL_CHECK_EQ(cl_response(a, &rs, false), 200);
    free(rs.body);
    BL_CHECK_EQ(cl_response(b, &rs, false), 200);
    free(rs.body);
    BL_CHECK(cl_say(c, get));
    BL_CHECK_EQ(cl_more(c, 300), -ETIMEDOUT);
    BL_CHECK_EQ(info(s).listener.active, 2);
    /* One leaves: the third is accepted and answered. */
    cl_close(a);
    BL_CHECK_EQ(cl_response(c, &rs, false), 200);
    free(rs.body);
    BL_CHECK(info(s).listener.limit_hits > 0);
    BL_CHECK(info(s).listener.active <= 2);
    cl_close(b);

    /* A handler killed in the middle of its response: the connection closes, nothing leaks. */
    BL_CHECK(cl_say(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
    bl_msg *m = bl_test_recv_tag(T_HOLD, 10000);
    BL_CHECK(m != NULL);
    if (m) {
        bl_pid pid = *(bl_pid *)m->data;
        bl_msg_free(m);
        bl_ref ref;
        BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
        bl_reason kill = BL_REASON(BL_KILL);
        BL_CHECK_EQ(bl_exit_pid(pid, &kill), 0);
        m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    /* The response was cut: the client sees its start, then the end of the connection. */
    BL_CHECK_EQ(cl_response(c, &rs, false), -EPIPE);
    free(rs.body);
    cl_close(c);

    /* A client that stops reading: the writes time out, a few socket buffers in. */
    c = cl_open(port);
    BL_CHECK(cl_say(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    m = bl_test_recv_tag(T_BIG, 20000);
    BL_CHECK(m != NULL);
    if (m) {
        big_report br = *(big_report *)m->data;
        BL_CHECK_EQ(br.rc, -ETIMEDOUT);
        BL_CHECK(br.written < (64u << 20));
        bl_msg_free(m);
    }
    cl_close(c);
    BL_CHECK_EQ(one_shot(port, get, &rs), 200);
    free(rs.body);
    BL_CHECK_EQ(bl_http_stop(s, 5000), 0);
    bl_http_router_free(r);
    BL_CHECK_EQ(bl_test_count_fds(), fds);
}

Test(http_server, limits_kill_and_slow_reader, .timeout = 120)
{
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, limits_main, NULL);
}

static void handshake_main(void *arg)
{
    (void)arg;
    reset();
    int fds = bl_test_count_fds();
    bl_http_router *r = routes();
    bl_http_server *s = NULL;
    bl_http_server_opts o = {.router = r,
                             .listener.host = "127.0.0.1",
                             .cert_file = F.cert,
                             .key_file = F.key,
                             .handshake_ms = 300};
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    uint16_t port = info(s).listener.port;

    /* Plain HTTP to the TLS port: the handshake fails, the connection closes. */
    client *c = cl_open(port);
    BL_CHECK(cl_say(c, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"));
    int64_t t0 = bl_test_ms();
    while (cl_more(c, 5000) > 0 && bl_test_ms() - t0 < 5000) c->have = 0;
    cl_close(c);
    /* A client that connects and never sends its hello: dropped after handshake_ms. */
    c = cl_open(port);
    t0 = bl_test_ms();
    BL_CHECK(cl_sees_eof(c, 5000));
    BL_CHECK(bl_test_ms() - t0 >= 250);
    cl_close(c);
    /* A client that does not trust the server's certificate. */
    tls_files other = {0};
    BL_CHECK(tls_make_cert(&other, "other", "localhost"));
    bl_tls_opts co = {.ca_file = other.cert};
    bl_tls_ctx *cx = bl_tls_client_ctx(&co);
    int rc;
    BL_CHECK(tls_dial(cx, port, "localhost", &rc) == NULL);
    BL_CHECK_EQ(rc, -EKEYREJECTED);
    bl_tls_ctx_free(cx);
    tls_files_remove(&other);
    /* The server is fine. */
    co = (bl_tls_opts){.ca_file = F.cert};
    cx = bl_tls_client_ctx(&co);
    bl_tls_conn *ok = tls_dial(cx, port, "localhost", &rc);
    BL_CHECK_EQ(rc, 0);
    if (ok) bl_tls_close(ok);
    bl_tls_ctx_free(cx);
    t0 = bl_test_ms();
    while (info(s).handshake_failures < 3 && bl_test_ms() - t0 < 5000) bl_sleep(5);
    BL_CHECK_EQ(info(s).handshake_failures, 3);

    BL_CHECK_EQ(bl_http_stop(s, 5000), 0);

    /* A stalled handshake while the server stops: it is killed at the timeout.  (A
     * server of its own, whose handshake time cannot run out first on a loaded machine.) */
    o.handshake_ms = 60000;
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    port = info(s).listener.port;
    c = cl_open(port);
    t0 = bl_test_ms();
    while (info(s).listener.active == 0 && bl_test_ms() - t0 < 5000) bl_sleep(5);
    BL_CHECK_EQ(info(s).listener.active, 1);
    BL_CHECK_EQ(bl_http_stop(s, 50), -ETIMEDOUT);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    bl_http_router_free(r);
    BL_CHECK_EQ(bl_test_count_fds(), fds);
}

Test(http_server, tls_handshakes_fail_or_stall, .timeout = 120)
{
    cr_assert(tls_make_cert(&F, "srv", "localhost"));
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, handshake_main, NULL);
    tls_files_remove(&F);
}

/* ---- graceful stop under load ---- */

/* What a raw client tells the test when the server has gone. */
typedef struct raw_report {
    uint64_t whole; /* responses received whole */
    uint64_t cut;   /* responses that began and did not end */
    uint64_t other; /* responses that were not 200 "Hello, World!" */
} raw_report;

/*
 * Connects again and again, sends 8 pipelined requests on each connection
 * and reads the responses until the connection ends; a response begun and
 * not ended is counted as cut.  Stops when connecting fails (the server
 * stopped) or after 30 s.
 */
static void raw_client(void *arg)
{
    uint16_t port = (uint16_t)(uintptr_t)arg;
    static const char req[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    char eight[8 * sizeof req];
    for (int i = 0; i < 8; i++) memcpy(eight + i * (sizeof req - 1), req, sizeof req - 1);
    raw_report rr = {0};
    int64_t t0 = bl_test_ms();
    while (bl_test_ms() - t0 < 30000) {
        int fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
        if (fd < 0) break;
        client *c = calloc(1, sizeof *c);
        c->fd = fd;
        if (cl_send(c, eight, 8 * (sizeof req - 1))) {
            for (int i = 0; i < 8; i++) {
                resp rs;
                int st = cl_response(c, &rs, false);
                if (st == 0 && c->have == 0) {
                    free(rs.body);
                    break; /* closed between responses */
                }
                if (st == 200 && rs.len == 13 && memcmp(rs.body, "Hello, World!", 13) == 0)
                    rr.whole++;
                else if (st == -EPIPE || st == 0)
                    rr.cut++;
                else if (st > 0)
                    rr.other++;
                free(rs.body);
                if (st <= 0) break;
            }
        }
        cl_close(c);
    }
    bl_send(G.test, T_RAW, &rr, sizeof rr);
}

static long run_wrk(void *arg)
{
    return run_command(arg);
}

static void wrk_proc(void *arg)
{
    command *cmd = arg;
    (void)bl_dirty_run(run_wrk, cmd, NULL);
    bl_send(G.test, T_CMD, NULL, 0);
}

static void graceful_main(void *arg)
{
    (void)arg;
    reset();
    /* The stop comes in the middle of wrk's load as well as the raw clients':
     * those alone can reach 2,000 before wrk's first connection (a process
     * to start), and wrk finding no server fails the run. */
    G.notify_at = 2000;
    G.notify_wrk = 200;
    int fds = bl_test_count_fds();
    bl_http_router *r = routes();
    bl_http_server *s = NULL;
    bl_http_server_opts o = {.router = r, .listener.host = "127.0.0.1"};
    BL_CHECK_EQ(bl_http_start(&s, &o), 0);
    uint16_t port = info(s).listener.port;
    static command cmd;
    snprintf(cmd.line, sizeof cmd.line, "wrk -t1 -c16 -d3s http://127.0.0.1:%u/plaintext 2>&1",
             port);
    BL_CHECK_EQ(bl_spawn(NULL, wrk_proc, &cmd, NULL), 0);
    enum { RAW = 4 };
    for (int i = 0; i < RAW; i++)
        BL_CHECK_EQ(bl_spawn(NULL, raw_client, (void *)(uintptr_t)port, NULL), 0);
    /* Stop in the middle of the load. */
    bl_msg *m = bl_test_recv_tag(T_LOAD, 30000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_http_stop(s, 10000), 0);
    uint64_t started = atomic_load(&G.started), finished = atomic_load(&G.finished);
    /* Every request a handler took was answered whole (none killed, none cut). */
    BL_CHECK_EQ(started, finished);
    raw_report sum = {0};
    for (int i = 0; i < RAW; i++) {
        m = bl_test_recv_tag(T_RAW, 40000);
        BL_CHECK(m != NULL);
        if (!m) continue;
        raw_report rr = *(raw_report *)m->data;
        sum.whole += rr.whole;
        sum.cut += rr.cut;
        sum.other += rr.other;
        bl_msg_free(m);
    }
    BL_CHECK(sum.whole > 0);
    BL_CHECK_EQ(sum.cut, 0);
    BL_CHECK_EQ(sum.other, 0);
    m = bl_test_recv_tag(T_CMD, 40000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK_EQ(cmd.status, 0);
    /* wrk counts only responses it parsed whole; they are among those written whole. */
    const char *p = strstr(cmd.out, " requests in ");
    uint64_t wrk_done = 0;
    if (p) {
        while (p > cmd.out && p[-1] >= '0' && p[-1] <= '9') p--;
        wrk_done = strtoull(p, NULL, 10);
    }
    BL_CHECK(wrk_done > 0);
    BL_CHECK(wrk_done + sum.whole <= finished);
    fprintf(stderr, "graceful stop: %llu handled, wrk %llu, raw %llu\n%s",
            (unsigned long long)finished, (unsigned long long)wrk_done,
            (unsigned long long)sum.whole, cmd.out);
    bl_http_router_free(r);
    BL_CHECK_EQ(bl_test_count_fds(), fds);
}

Test(http_server, graceful_stop_under_wrk, .timeout = 180)
{
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, graceful_main, NULL);
}
