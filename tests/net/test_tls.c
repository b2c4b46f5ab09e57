/*
 * TLS between Beamline processes over loopback: handshakes and echoes in
 * TLS 1.2 and 1.3, with kTLS where the kernel has it and with OpenSSL's
 * record layer forced; many connections at once; ALPN; certificates that
 * do not verify; a client that never speaks, garbage instead of a
 * ClientHello, a peer gone without close_notify; contexts refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "net/tls_conn.h"
#include "net/tls_test.h"

static tls_files F; /* srv: the server's certificate; other: one nobody trusts */

static void run_tls(bl_entry_fn fn)
{
    /* F.cert and F.key name the last one made: srv. */
    cr_assert(tls_make_cert(&F, "other", "other"));
    cr_assert(tls_make_cert(&F, "srv", "localhost"));
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, fn, NULL);
    tls_files_remove(&F);
}

static bl_tls_ctx *server_ctx(const char *alpn, bool no_ktls)
{
    bl_tls_opts o = {.cert_file = F.cert, .key_file = F.key, .alpn = alpn, .no_ktls = no_ktls};
    bl_tls_ctx *x = bl_tls_server_ctx(&o);
    if (!x) fprintf(stderr, "server ctx: %s\n", bl_tls_error(NULL));
    BL_CHECK(x != NULL);
    return x;
}

static bl_tls_ctx *client_ctx(uint16_t version, const char *alpn, bool no_ktls)
{
    bl_tls_opts o = {.ca_file = F.cert, .alpn = alpn, .no_ktls = no_ktls};
    o.min_version = o.max_version = version;
    bl_tls_ctx *x = bl_tls_client_ctx(&o);
    if (!x) fprintf(stderr, "client ctx: %s\n", bl_tls_error(NULL));
    BL_CHECK(x != NULL);
    return x;
}

/* A client of cc is served by the server on port: what a server that survived must do. */
static void check_served(bl_tls_ctx *cc, uint16_t port, size_t len)
{
    int rc;
    bl_tls_conn *c = tls_dial(cc, port, "localhost", &rc);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(tls_next_report().rc, 0);
    BL_CHECK(c && tls_echo_check(c, len));
    if (c) BL_CHECK_EQ(bl_tls_close(c), 0);
}

/* ---- handshake and echo, each version, each record layer ---- */

enum { KTLS_AUTO, KTLS_OFF, KTLS_OFF_EXACT };

/* One connection: the version agreed, kTLS as asked, payloads of every size back whole. */
static void echo_case(uint16_t version, int mode)
{
    tls_server s = {.ctx = server_ctx(NULL, mode != KTLS_AUTO)};
    bl_tls_ctx *cc = client_ctx(version, NULL, mode != KTLS_AUTO);
    if (!s.ctx || !cc) return;
    if (mode == KTLS_OFF_EXACT) s.ctx->exact = cc->exact = true; /* kTLS's record-exact reads */
    tls_server_start(&s);
    int rc;
    bl_tls_conn *c = tls_dial(cc, s.port, "localhost", &rc);
    BL_CHECK_EQ(rc, 0);
    tls_report r = tls_next_report();
    BL_CHECK_EQ(r.rc, 0);
    BL_CHECK_EQ(r.version, version);
    BL_CHECK(strcmp(r.sni, "localhost") == 0); /* SNI sent, and seen by the server */
    if (c) {
        BL_CHECK_EQ(bl_tls_version(c), version);
        BL_CHECK(bl_tls_cipher(c) && bl_tls_cipher(c)[0]);
        BL_CHECK(bl_tls_alpn(c) == NULL);
        if (mode != KTLS_AUTO) BL_CHECK_EQ(bl_tls_ktls(c), 0);
        if (mode == KTLS_AUTO && bl_tls_ktls_available()) BL_CHECK(bl_tls_ktls(c) & BL_TLS_KTLS_TX);
        static const size_t sizes[] = {1, 1000, 16384, 16385, 300000, 2 * 1024 * 1024};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            BL_CHECK(tls_echo_check(c, sizes[i]));
        BL_CHECK_EQ(bl_tls_close(c), 0);
    }
    if (mode != KTLS_AUTO) BL_CHECK_EQ(r.ktls, 0);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(cc);
}

static void echo_main(void *arg)
{
    for (int mode = KTLS_AUTO; mode <= KTLS_OFF_EXACT; mode++) {
        echo_case(BL_TLS_1_2, mode);
        echo_case(BL_TLS_1_3, mode);
    }
}

Test(tls, echo_versions, .timeout = 240)
{
    run_tls(echo_main);
}

/* The kernel carries the records: each direction as OpenSSL 3.0 hands it over. */
static void ktls_main(void *arg)
{
    for (int v = 0; v < 2; v++) {
        uint16_t version = v ? BL_TLS_1_3 : BL_TLS_1_2;
        tls_server s = {.ctx = server_ctx(NULL, false)};
        bl_tls_ctx *cc = client_ctx(version, NULL, false);
        tls_server_start(&s);
        int rc;
        bl_tls_conn *c = tls_dial(cc, s.port, "localhost", &rc);
        BL_CHECK_EQ(rc, 0);
        tls_report r = tls_next_report();
        BL_CHECK_EQ(r.rc, 0);
        /* Sending on both sides; receiving too in 1.2 (OpenSSL 3.0 receives 1.3 itself). */
        int want = BL_TLS_KTLS_TX | (v ? 0 : BL_TLS_KTLS_RX);
        BL_CHECK_EQ(r.ktls, want);
        BL_CHECK_EQ(bl_tls_ktls(c), want);
        BL_CHECK(tls_echo_check(c, 1));
        BL_CHECK(tls_echo_check(c, 1 << 20));
        BL_CHECK_EQ(bl_tls_close(c), 0);
        tls_server_stop(&s);
        bl_tls_ctx_free(s.ctx);
        bl_tls_ctx_free(cc);
    }
}

Test(tls, ktls, .timeout = 240)
{
    if (!bl_tls_ktls_available())
        cr_skip_test("kTLS skipped: this kernel has no tls ULP (CONFIG_TLS); "
                     "the record layer stays OpenSSL's");
    run_tls(ktls_main);
}

/* ---- many at once ---- */

enum { T_CLIENT_DONE = 301 };

typedef struct client_arg {
    bl_tls_ctx *ctx; /* the clients' context */
    uint16_t port;   /* the server's */
    bl_pid ctl;      /* gets T_CLIENT_DONE with an int: 1 if all went well */
} client_arg;

static void client_proc(void *arg)
{
    client_arg *a = arg;
    int rc, ok = 0;
    bl_tls_conn *c = tls_dial(a->ctx, a->port, "localhost", &rc);
    if (c) {
        ok = tls_echo_check(c, 50000) && bl_tls_close(c) == 0;
    } else {
        fprintf(stderr, "client: %d %s\n", rc, bl_tls_error(NULL));
    }
    bl_send(a->ctl, T_CLIENT_DONE, &ok, sizeof ok);
}

static void concurrent_main(void *arg)
{
    tls_server s = {.ctx = server_ctx(NULL, false)};
    client_arg a = {.ctx = client_ctx(0, NULL, false), .ctl = bl_self()};
    tls_server_start(&s);
    a.port = s.port;
    int n = BL_SCALE(200), ok = 0, accepted = 0;
    for (int i = 0; i < n; i++) BL_CHECK_EQ(bl_spawn(NULL, client_proc, &a, NULL), 0);
    for (int i = 0; i < 2 * n; i++) {
        bl_msg *m = NULL;
        if (bl_recv(&m, NULL, NULL, 60000, 0) != 0) break;
        if (m->tag == T_CLIENT_DONE) ok += *(int *)m->data;
        if (m->tag == T_ACCEPTED) accepted += ((tls_report *)m->data)->rc == 0;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(ok, n);
    BL_CHECK_EQ(accepted, n);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(a.ctx);
}

Test(tls, concurrent, .timeout = 240)
{
    run_tls(concurrent_main);
}

/* ---- ALPN ---- */

static void alpn_main(void *arg)
{
    tls_server s = {.ctx = server_ctx("h2,http/1.1", true)};
    tls_server_start(&s);
    struct {
        const char *offer; /* the client's list */
        int rc;            /* bl_tls_connect's result */
        const char *agreed;
    } cases[] = {
        {"http/1.1,h2", 0, "h2"}, /* the server's preference wins */
        {"http/1.1", 0, "http/1.1"},
        {"spdy/3,http/1.1", 0, "http/1.1"},
        {NULL, 0, NULL}, /* no ALPN: none agreed, the server lets it be */
        {"imap", -EPROTO, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bl_tls_ctx *cc = client_ctx(0, cases[i].offer, true);
        int rc;
        bl_tls_conn *c = tls_dial(cc, s.port, "localhost", &rc);
        BL_CHECK_EQ(rc, cases[i].rc);
        tls_report r = tls_next_report();
        if (cases[i].rc == 0) {
            BL_CHECK_EQ(r.rc, 0);
            const char *got = c ? bl_tls_alpn(c) : "?";
            BL_CHECK(cases[i].agreed ? got && strcmp(got, cases[i].agreed) == 0 : got == NULL);
            BL_CHECK(strcmp(r.alpn, cases[i].agreed ? cases[i].agreed : "") == 0);
            BL_CHECK(c && tls_echo_check(c, 100));
            if (c) bl_tls_close(c);
        } else {
            /* Refused on both sides, with the reason. */
            BL_CHECK(strstr(bl_tls_error(NULL), "no application protocol") != NULL);
            BL_CHECK_EQ(r.rc, -EPROTO);
            BL_CHECK(strstr(r.err, "no application protocol") != NULL);
        }
        bl_tls_ctx_free(cc);
    }
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
}

Test(tls, alpn, .timeout = 240)
{
    run_tls(alpn_main);
}

/* ---- certificates that do not verify ---- */

static void bad_cert_main(void *arg)
{
    tls_server s = {.ctx = server_ctx(NULL, true)};
    tls_server_start(&s);
    int rc;
    /* Trusting another CA: the client refuses, says why; the server hears the alert. */
    char other[128];
    snprintf(other, sizeof other, "%s/other.crt", F.dir);
    bl_tls_opts o = {.ca_file = other};
    bl_tls_ctx *wrong_ca = bl_tls_client_ctx(&o);
    BL_CHECK(wrong_ca != NULL);
    BL_CHECK(tls_dial(wrong_ca, s.port, "localhost", &rc) == NULL);
    BL_CHECK_EQ(rc, -EKEYREJECTED);
    const char *why = bl_tls_error(NULL);
    if (!strstr(why, "certificate verify failed")) fprintf(stderr, "error: %s\n", why);
    BL_CHECK(strstr(why, "certificate verify failed: self-signed certificate") != NULL);
    tls_report r = tls_next_report();
    BL_CHECK_EQ(r.rc, -EPROTO);
    BL_CHECK(strstr(r.err, "unknown ca") != NULL || strstr(r.err, "bad certificate") != NULL);

    /* The right CA, the wrong name. */
    bl_tls_ctx *cc = client_ctx(0, NULL, true);
    BL_CHECK(tls_dial(cc, s.port, "example.com", &rc) == NULL);
    BL_CHECK_EQ(rc, -EKEYREJECTED);
    BL_CHECK(strstr(bl_tls_error(NULL), "hostname mismatch") != NULL);
    BL_CHECK(tls_next_report().rc < 0);
    /* A numeric address is checked against the certificate's IP names (and not sent as SNI). */
    bl_tls_conn *c = tls_dial(cc, s.port, "127.0.0.1", &rc);
    BL_CHECK_EQ(rc, 0);
    r = tls_next_report();
    BL_CHECK_EQ(r.rc, 0);
    BL_CHECK(r.sni[0] == 0);
    if (c) bl_tls_close(c);
    BL_CHECK(tls_dial(cc, s.port, "127.0.0.2", &rc) == NULL);
    BL_CHECK_EQ(rc, -EKEYREJECTED);
    BL_CHECK(strstr(bl_tls_error(NULL), "IP address mismatch") != NULL);
    BL_CHECK(tls_next_report().rc < 0);
    /* No name to check against: refused before anything is sent. */
    int fd = bl_io_connect_tcp("127.0.0.1", s.port, 10000);
    BL_CHECK_EQ(bl_tls_connect(cc, fd, NULL, 1000, &c), -EINVAL);
    BL_CHECK(c == NULL);
    BL_CHECK(tls_next_report().rc < 0); /* the server saw the socket close */

    /* An insecure client takes anything. */
    bl_tls_opts io = {.insecure = true};
    bl_tls_ctx *any = bl_tls_client_ctx(&io);
    c = tls_dial(any, s.port, NULL, &rc);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(tls_next_report().rc, 0);
    BL_CHECK(c && tls_echo_check(c, 1000));
    if (c) bl_tls_close(c);

    /* The server survived all that: a good client is served. */
    check_served(cc, s.port, 5000);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(cc);
    bl_tls_ctx_free(wrong_ca);
    bl_tls_ctx_free(any);
}

Test(tls, bad_certificate, .timeout = 240)
{
    run_tls(bad_cert_main);
}

/* ---- silent clients, garbage, timeouts, peers gone ---- */

static void silent_main(void *arg)
{
    tls_server s = {.ctx = server_ctx(NULL, true), .handshake_ms = 300};
    tls_server_start(&s);
    /* Connects and says nothing: dropped after the handshake timeout. */
    int64_t t0 = bl_test_ms();
    int fd = bl_io_connect_tcp("127.0.0.1", s.port, 10000);
    BL_CHECK(fd >= 0);
    tls_report r = tls_next_report();
    int64_t took = bl_test_ms() - t0;
    BL_CHECK_EQ(r.rc, -ETIMEDOUT);
    BL_CHECK(strstr(r.err, "timed out") != NULL);
    BL_CHECK(took >= 300 && took < 10000);
    /* The server closed its side. */
    char b;
    BL_CHECK_EQ(bl_io_recv(fd, &b, 1, 0, 10000), 0);
    bl_io_close(fd);
    /* A client in the middle of its ClientHello (5 bytes of a header) too. */
    fd = bl_io_connect_tcp("127.0.0.1", s.port, 10000);
    BL_CHECK_EQ(bl_io_send(fd, "\x16\x03\x01\x02\x00", 5, 0, 1000), 5);
    BL_CHECK_EQ(tls_next_report().rc, -ETIMEDOUT);
    bl_io_close(fd);

    /* The server goes on. */
    bl_tls_ctx *cc = client_ctx(0, NULL, true);
    check_served(cc, s.port, 100);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(cc);
}

Test(tls, handshake_timeout, .timeout = 240)
{
    run_tls(silent_main);
}

/* Garbage instead of a ClientHello (and instead of a ServerHello): a clean -EPROTO, at once. */
static void garbage_main(void *arg)
{
    tls_server s = {.ctx = server_ctx(NULL, true), .handshake_ms = 20000};
    tls_server_start(&s);
    char junk[512];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(rand_r(&seed) >> 7);
    junk[0] = 0x47; /* not a handshake record */
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct {
        const void *p;
        size_t n;
    } inputs[] = {{junk, sizeof junk}, {http, strlen(http)}, {"\x16\x03\x01\xff\xff", 5}};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int64_t t0 = bl_test_ms();
        int fd = bl_io_connect_tcp("127.0.0.1", s.port, 10000);
        BL_CHECK_EQ(bl_io_send_all(fd, inputs[i].p, inputs[i].n, 0, 10000), (ssize_t)inputs[i].n);
        tls_report r = tls_next_report();
        BL_CHECK_EQ(r.rc, -EPROTO);
        BL_CHECK(r.err[0] != 0);
        BL_CHECK(bl_test_ms() - t0 < 10000); /* not the handshake timeout */
        /* The server sent its alert and closed. */
        char buf[64];
        ssize_t n;
        while ((n = bl_io_recv(fd, buf, sizeof buf, 0, 10000)) > 0) {
        }
        BL_CHECK(n == 0 || n == -ECONNRESET);
        bl_io_close(fd);
    }
    /* The server goes on. */
    bl_tls_ctx *good = client_ctx(0, NULL, true);
    check_served(good, s.port, 100);
    bl_tls_ctx_free(good);
    tls_server_stop(&s);

    /* A "server" that answers a ClientHello with garbage. */
    uint16_t port;
    int lfd = bl_io_listen_tcp("127.0.0.1", 0, 4, &port);
    bl_tls_ctx *cc = client_ctx(0, NULL, true);
    int fd = bl_io_connect_tcp("127.0.0.1", port, 10000);
    int sfd = bl_io_accept(lfd, NULL, NULL, 10000);
    BL_CHECK_EQ(bl_io_send_all(sfd, junk, sizeof junk, 0, 10000), (ssize_t)sizeof junk);
    bl_tls_conn *c = NULL;
    BL_CHECK_EQ(bl_tls_connect(cc, fd, "localhost", 10000, &c), -EPROTO);
    BL_CHECK(c == NULL && bl_tls_error(NULL)[0] != 0);
    /* ... or closes at once. */
    bl_io_close(sfd);
    fd = bl_io_connect_tcp("127.0.0.1", port, 10000);
    sfd = bl_io_accept(lfd, NULL, NULL, 10000);
    bl_io_close(sfd);
    BL_CHECK_EQ(bl_tls_connect(cc, fd, "localhost", 10000, &c), -ECONNRESET);
    BL_CHECK(strstr(bl_tls_error(NULL), "closed") != NULL);
    bl_io_close(lfd);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(cc);
}

Test(tls, garbage, .timeout = 240)
{
    run_tls(garbage_main);
}

/* ---- reads that time out, peers that leave with and without close_notify ---- */

enum { T_STEP = 401, T_DONE };

/* The server's side: a read that times out, an exchange, then how the client left. */
static void slow_serve(tls_server *s, bl_tls_conn *c)
{
    char buf[16];
    int rc = (int)bl_tls_read(c, buf, sizeof buf, 50);
    bl_send(s->ctl, T_STEP, &rc, sizeof rc);
    if (bl_tls_read_all(c, buf, 5, 30000) == 5 && memcmp(buf, "hello", 5) == 0)
        bl_tls_write(c, "world", 5, 30000);
    rc = (int)bl_tls_read(c, buf, sizeof buf, 30000);
    bl_send(s->ctl, T_DONE, &rc, sizeof rc);
}

static int recv_int(uint32_t tag)
{
    int v = -9999;
    bl_msg *m = bl_test_recv_tag(tag, 30000);
    if (m && m->len == sizeof v) memcpy(&v, m->data, sizeof v);
    bl_msg_free(m);
    return v;
}

/* Says hello, reads the answer, then waits to be killed (no close_notify then). */
static void hello_client(void *arg)
{
    tls_server *s = arg;
    bl_tls_ctx *cc = client_ctx(0, NULL, true);
    int rc;
    bl_tls_conn *c = tls_dial(cc, s->port, "localhost", &rc);
    bl_tls_ctx_free(cc);
    char buf[5];
    bl_msg_free(bl_receive(30000)); /* the test's go, once the server's read timed out */
    if (c && bl_tls_write(c, "hello", 5, 10000) == 5 && bl_tls_read_all(c, buf, 5, 10000) == 5)
        bl_send(s->ctl, T_STEP, &rc, sizeof rc);
    bl_msg_free(bl_receive(BL_INFINITY));
}

typedef struct other_arg {
    bl_tls_conn *c; /* someone else's connection */
    bl_pid ctl;     /* gets T_DONE with the three results */
} other_arg;

static void other_proc(void *arg)
{
    other_arg *a = arg;
    char b;
    int rc[3] = {(int)bl_tls_read(a->c, &b, 1, 0), (int)bl_tls_write(a->c, "x", 1, 0),
                 bl_tls_close(a->c)};
    bl_send(a->ctl, T_DONE, rc, sizeof rc);
}

static void peer_close_main(void *arg)
{
    tls_server s = {.ctx = server_ctx(NULL, true), .serve = slow_serve};
    tls_server_start(&s);
    bl_tls_ctx *cc = client_ctx(0, NULL, true);
    int rc;
    bl_tls_conn *c = tls_dial(cc, s.port, "localhost", &rc);
    BL_CHECK_EQ(tls_next_report().rc, 0);
    BL_CHECK_EQ(recv_int(T_STEP), -ETIMEDOUT);
    if (c) {
        /* Only the owner may use it. */
        other_arg o = {c, bl_self()};
        BL_CHECK_EQ(bl_spawn(NULL, other_proc, &o, NULL), 0);
        bl_msg *m = bl_test_recv_tag(T_DONE, 30000);
        BL_CHECK(m && m->len == 3 * sizeof(int));
        for (int i = 0; m && i < 3; i++) BL_CHECK_EQ(((int *)m->data)[i], -EPERM);
        bl_msg_free(m);
        /* The timed-out read lost nothing: the exchange goes on. */
        char buf[5];
        BL_CHECK_EQ(bl_tls_write(c, "hello", 5, 10000), 5);
        BL_CHECK_EQ(bl_tls_read_all(c, buf, 5, 10000), 5);
        BL_CHECK(memcmp(buf, "world", 5) == 0);
        /* Our close_notify: the server reads the end (0). */
        BL_CHECK_EQ(bl_tls_close(c), 0);
        BL_CHECK_EQ(recv_int(T_DONE), 0);
    }
    /* A client killed after the exchange: its socket closes without close_notify. */
    bl_pid k;
    BL_CHECK_EQ(bl_spawn(&k, hello_client, &s, NULL), 0);
    BL_CHECK_EQ(tls_next_report().rc, 0);
    BL_CHECK_EQ(recv_int(T_STEP), -ETIMEDOUT); /* the server's first read */
    bl_send(k, T_STEP, NULL, 0);
    BL_CHECK_EQ(recv_int(T_STEP), 0); /* the client has its answer */
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(k, &kill);
    BL_CHECK_EQ(recv_int(T_DONE), -ECONNRESET);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
    bl_tls_ctx_free(cc);
}

Test(tls, peer_close, .timeout = 240)
{
    run_tls(peer_close_main);
}

/* ---- refused: contexts and calls ---- */

static void bad_input_main(void *arg)
{
    char missing[160], empty[160];
    snprintf(missing, sizeof missing, "%s/missing.pem", F.dir);
    snprintf(empty, sizeof empty, "%s/empty.pem", F.dir);
    int fd = bl_io_open(empty, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bl_io_close(fd);
    char other_key[160];
    snprintf(other_key, sizeof other_key, "%s/other.key", F.dir);
    struct {
        bl_tls_opts o;
        bool server;
        int err;
        const char *why;
    } cases[] = {
        {{0}, true, EINVAL, "a server needs cert_file and key_file"},
        {{.cert_file = F.cert}, true, EINVAL, "a server needs cert_file and key_file"},
        {{.cert_file = missing, .key_file = F.key}, true, ENOENT, "missing.pem"},
        {{.cert_file = F.cert, .key_file = missing}, true, ENOENT, "missing.pem"},
        {{.cert_file = empty, .key_file = F.key}, true, EINVAL, "no usable certificate"},
        {{.cert_file = F.key, .key_file = F.key}, true, EINVAL, "no usable certificate"},
        {{.cert_file = F.cert, .key_file = F.cert}, true, EINVAL, "no usable private key"},
        {{.cert_file = F.cert, .key_file = other_key}, true, EINVAL, "does not match"},
        {{.cert_file = F.cert, .key_file = F.key, .alpn = "h2,,x"}, true, EINVAL, "alpn"},
        {{.cert_file = F.cert, .key_file = F.key, .alpn = ""}, true, EINVAL, "alpn"},
        {{.cert_file = F.cert, .key_file = F.key, .min_version = 0x0302}, true, EINVAL, "versions"},
        {{.min_version = BL_TLS_1_3, .max_version = BL_TLS_1_2}, false, EINVAL, "versions"},
        {{.ca_file = missing}, false, ENOENT, "missing.pem"},
        {{.ca_file = empty}, false, EINVAL, "no certificate"},
        {{.key_file = F.key}, false, EINVAL, "go together"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        bl_tls_ctx *x =
            cases[i].server ? bl_tls_server_ctx(&cases[i].o) : bl_tls_client_ctx(&cases[i].o);
        BL_CHECK(x == NULL);
        BL_CHECK_EQ(errno, cases[i].err);
        if (!strstr(bl_tls_error(NULL), cases[i].why))
            fprintf(stderr, "case %zu: \"%s\"\n", i, bl_tls_error(NULL));
        BL_CHECK(strstr(bl_tls_error(NULL), cases[i].why) != NULL);
        bl_tls_ctx_free(x);
    }
    /* A client with the system's store, and one with a client certificate. */
    bl_tls_ctx *sys = bl_tls_client_ctx(NULL);
    BL_CHECK(sys != NULL);
    bl_tls_ctx *mine = bl_tls_client_ctx(&(bl_tls_opts){.cert_file = F.cert, .key_file = F.key});
    BL_CHECK(mine != NULL);

    /* Calls refused: each takes (closes) the descriptor it was given. */
    bl_tls_ctx *srv = server_ctx(NULL, true);
    bl_tls_conn *c = (bl_tls_conn *)&c;
    int base = bl_test_count_fds();
    int s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_accept(sys, s, 1000, &c), -EINVAL); /* a client context */
    BL_CHECK(c == NULL);
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_connect(srv, s, "x", 1000, &c), -EINVAL); /* a server context */
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_accept(srv, s, -5, &c), -EINVAL);
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_accept(srv, s, 1000, NULL), -EINVAL);
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_accept(NULL, s, 1000, &c), -EINVAL);
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK_EQ(bl_tls_connect(sys, s,
                               "a-name-longer-than-sni-allows-"
                               "0123456789012345678901234567890123456789012345678901234567"
                               "0123456789012345678901234567890123456789012345678901234567"
                               "0123456789012345678901234567890123456789012345678901234567"
                               "0123456789012345678901234567890123456789012345678901234567",
                               1000, &c),
                -EINVAL);
    /* Not connected: the handshake's send fails. */
    s = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    BL_CHECK(bl_tls_connect(sys, s, "localhost", 1000, &c) < 0);
    BL_CHECK_EQ(bl_tls_accept(srv, -1, 1000, &c), -EINVAL);
    BL_CHECK_EQ(bl_test_count_fds(), base);
    BL_CHECK_EQ(bl_tls_read(NULL, NULL, 0, 0), -EINVAL);
    BL_CHECK_EQ(bl_tls_write(NULL, "", 0, 0), -EINVAL);
    BL_CHECK_EQ(bl_tls_close(NULL), -EINVAL);
    BL_CHECK_EQ(bl_tls_ktls(NULL), 0);
    BL_CHECK(bl_tls_alpn(NULL) == NULL);
    bl_tls_ctx_free(NULL);
    bl_tls_ctx_free(sys);
    bl_tls_ctx_free(mine);
    bl_tls_ctx_free(srv);
}

Test(tls, bad_input, .timeout = 240)
{
    run_tls(bad_input_main);
}

/* Outside a process: contexts work (files through read(2)), connections do not. */
Test(tls, outside_process)
{
    tls_files f = {0};
    cr_assert(tls_make_cert(&f, "srv", "localhost"));
    bl_tls_ctx *x = bl_tls_server_ctx(&(bl_tls_opts){.cert_file = f.cert, .key_file = f.key});
    cr_assert(x != NULL, "%s", bl_tls_error(NULL));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bl_tls_conn *c = NULL;
    cr_assert_eq(bl_tls_accept(x, fd, 1000, &c), -EPERM);
    cr_assert(fcntl(fd, F_GETFD) < 0); /* closed all the same */
    bl_tls_ctx_free(bl_tls_ctx_up_ref(x));
    bl_tls_ctx_free(x);
    tls_files_remove(&f);
}
