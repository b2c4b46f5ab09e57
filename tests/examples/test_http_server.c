/*
 * The HTTP server example over real loopback connections, with clients
 * that are Beamline processes: exact responses, keep-alive, pipelining,
 * Connection: close and HTTP/1.0, malformed and oversized requests, bodies,
 * slow and idle clients timed out, clients that vanish, many connections at
 * once, and a graceful shutdown that lets a request in progress finish and
 * leaves no descriptor behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "examples/http_server/http_server.h"

#include "bl_test.h"

/* ---- a client ---- */

typedef struct client {
    int fd;
    size_t have; /* bytes received and not yet taken as responses */
    size_t cap;  /* size of buf */
    char *buf;   /* received bytes */
} client;

static client *client_open_with(uint16_t port, size_t cap)
{
    client *c = calloc(1, sizeof *c);
    c->cap = cap;
    c->buf = malloc(cap);
    c->fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
    BL_CHECK(c->fd >= 0);
    return c;
}

static client *client_open(uint16_t port)
{
    return client_open_with(port, 65536);
}

static void client_close(client *c)
{
    if (c->fd >= 0) bl_io_close(c->fd);
    free(c->buf);
    free(c);
}

static bool client_send(client *c, const char *s, size_t len)
{
    return bl_io_send_all(c->fd, s, len, 0, 5000) == (ssize_t)len;
}

static bool client_say(client *c, const char *s)
{
    return client_send(c, s, strlen(s));
}

/* The length of the complete response at the front of buf[0..have), or 0. */
static size_t response_len(const char *buf, size_t have, bool head_only)
{
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *cl = memmem(buf, head, "\r\nContent-Length: ", 18);
    size_t body = cl && !head_only ? strtoul(cl + 18, NULL, 10) : 0;
    return have >= head + body ? head + body : 0;
}

/*
 * Takes the next response into out (NUL-terminated): its length, 0 if the
 * server closed first, -ETIMEDOUT or another error.  head_only: the
 * response to a HEAD request (no body whatever Content-Length says).
 */
static ssize_t client_response_as(client *c, char *out, size_t cap, bool head_only)
{
    size_t n;
    while ((n = response_len(c->buf, c->have, head_only)) == 0) {
        if (c->have == c->cap) return -ENOBUFS;
        ssize_t r = bl_io_recv(c->fd, c->buf + c->have, c->cap - c->have, 0, 5000);
        if (r <= 0) return r;
        c->have += (size_t)r;
    }
    if (n >= cap) return -ENOBUFS;
    memcpy(out, c->buf, n);
    out[n] = 0;
    memmove(c->buf, c->buf + n, c->have - n);
    c->have -= n;
    return (ssize_t)n;
}

static ssize_t client_response(client *c, char *out, size_t cap)
{
    return client_response_as(c, out, cap, false);
}

/* True when the server closes the connection (with nothing more to read) within ms. */
static bool client_sees_eof(client *c, int64_t ms)
{
    if (c->have) return false;
    char b[256];
    ssize_t r = bl_io_recv(c->fd, b, sizeof b, 0, ms);
    return r == 0 || r == -ECONNRESET;
}

/* ---- what a response must be ---- */

/* A Date header value: IMF-fixdate, within a few seconds of now. */
static bool date_ok(const char *d)
{
    if (strlen(d) != 29) return false;
    struct tm tm = {0};
    const char *end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return false;
    time_t t = timegm(&tm), now = time(NULL);
    char again[40];
    strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return strcmp(again, d) == 0 && t <= now + 1 && t >= now - 5;
}

/*
 * True when r is exactly: status line, Server, Date (any valid one),
 * Content-Type, Content-Length, extra header lines, the blank line and body.
 */
static bool resp_is(const char *r, const char *status, const char *type, const char *extra,
                    const char *body)
{
    const char *d = strstr(r, "\r\nDate: ");
    if (!d) return false;
    char date[30] = "";
    memcpy(date, d + 8, 29);
    if (!date_ok(date)) return false;
    char want[1024];
    snprintf(want, sizeof want,
             "HTTP/1.1 %s\r\nServer: beamline\r\nDate: %s\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\n%s\r\n%s",
             status, date, type, strlen(body), extra, body);
    return strcmp(r, want) == 0;
}

#define PLAIN     "Hello, World!"
#define JSON      "{\"message\":\"Hello, World!\"}"
#define GET_PLAIN "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"
#define GET_JSON  "GET /json HTTP/1.1\r\nHost: localhost\r\n\r\n"

static bool is_plain(const char *r, const char *extra)
{
    return resp_is(r, "200 OK", "text/plain", extra, PLAIN);
}

static bool is_json(const char *r, const char *extra)
{
    return resp_is(r, "200 OK", "application/json", extra, JSON);
}

static bool is_error(const char *r, const char *status, const char *body)
{
    return resp_is(r, status, "text/plain", "Connection: close\r\n", body);
}

/* ---- waiting for the server ---- */

static int64_t ms_since(int64_t t0)
{
    return http_now_ms() - t0;
}

/* Waits (up to 10 s) until the server has n open connections. */
static bool wait_live(http_server *srv, unsigned n)
{
    int64_t t0 = http_now_ms();
    while (http_server_connections(srv) != n) {
        if (ms_since(t0) > 10000) return false;
        bl_yield();
    }
    return true;
}

/*
 * The descriptors open now, once the I/O still in flight (a close or an
 * orphaned accept's completion after the server's processes are gone) is
 * back to the level it had at the start (bounded: 10 s).
 */
static int fds_settled(uint64_t inflight0)
{
    int64_t t0 = http_now_ms();
    while (bl_io_inflight() > inflight0 && ms_since(t0) < 10000) bl_yield();
    return bl_test_count_fds();
}

/* Waits (up to 10 s) until n connections are idle between requests. */
static bool wait_idle(http_server *srv, unsigned n)
{
    int64_t t0 = http_now_ms();
    while (http_server_idle(srv) != n) {
        if (ms_since(t0) > 10000) return false;
        bl_yield();
    }
    return true;
}

static char rbuf[65536];

/* ---- the tests ---- */

/* Exact responses, 404, 405, HEAD, keep-alive, Connection: close, HTTP/1.0. */
static void basics_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    BL_CHECK(srv.port != 0);

    /* Keep-alive: several requests, one connection. */
    client *c = client_open(srv.port);
    for (int i = 0; i < 5; i++) {
        BL_CHECK(client_say(c, GET_PLAIN));
        BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
        BL_CHECK(is_plain(rbuf, ""));
        BL_CHECK(client_say(c, GET_JSON));
        BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
        BL_CHECK(is_json(rbuf, ""));
    }
    BL_CHECK(client_say(c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(resp_is(rbuf, "404 Not Found", "text/plain", "", "Not Found\n"));
    BL_CHECK(client_say(c, "GET /plaintext/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(strncmp(rbuf, "HTTP/1.1 404 ", 13) == 0);
    BL_CHECK(client_say(c, "DELETE /json HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(resp_is(rbuf, "405 Method Not Allowed", "text/plain", "Allow: GET, HEAD\r\n",
                     "Method Not Allowed\n"));
    /* HEAD: the GET's headers, no body. */
    BL_CHECK(client_say(c, "HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response_as(c, rbuf, sizeof rbuf, true) > 0);
    BL_CHECK(strstr(rbuf, "Content-Length: 27\r\n\r\n") != NULL);
    BL_CHECK(rbuf[strlen(rbuf) - 1] == '\n');
    /* The query and absolute form reach the same resources. */
    BL_CHECK(client_say(c, "GET /plaintext?a=b HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    BL_CHECK(client_say(c, "GET http://localhost/json HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, ""));
    BL_CHECK_EQ(http_server_connections(&srv), 1);
    /* Connection: close is honoured: the answer says so, then the server closes. */
    BL_CHECK(client_say(c, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);

    /* HTTP/1.0 closes unless asked to keep the connection. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, "GET /json HTTP/1.0\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);
    c = client_open(srv.port);
    for (int i = 0; i < 3; i++) {
        BL_CHECK(client_say(c, "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
        BL_CHECK(is_json(rbuf, "Connection: keep-alive\r\n"));
    }
    client_close(c);

    BL_CHECK(wait_live(&srv, 0));
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
    BL_CHECK_EQ(fds_settled(io0), fds0);
}

Test(http_server, basics, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, basics_main, NULL);
}

/* Several requests in one send: all answered, in order; bodies in between are skipped. */
static void pipelining_main(void *arg)
{
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    client *c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_PLAIN GET_JSON "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, ""));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(strncmp(rbuf, "HTTP/1.1 404 ", 13) == 0);

    /* A body (skipped) between two requests. */
    BL_CHECK(client_say(c, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                           "GET /x HTTP" GET_PLAIN));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(strncmp(rbuf, "HTTP/1.1 405 ", 13) == 0);
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));

    /* A long pipeline: more requests than the buffer holds, more answers than one send
     * carries, requests cut at the buffer's edge. */
    int n = 2000;
    size_t len = 0;
    char *many = malloc((size_t)n * 64);
    for (int i = 0; i < n; i++) {
        const char *r = i % 2 ? GET_JSON : GET_PLAIN;
        memcpy(many + len, r, strlen(r));
        len += strlen(r);
    }
    BL_CHECK(client_send(c, many, len));
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (client_response(c, rbuf, sizeof rbuf) <= 0) break;
        ok += i % 2 ? is_json(rbuf, "") : is_plain(rbuf, "");
    }
    BL_CHECK_EQ(ok, n);
    free(many);

    /* A big body, skipped across many reads, then the next request. */
    size_t big = 300000;
    char *body = malloc(big + 256);
    len = (size_t)sprintf(body, "PUT /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                          big);
    memset(body + len, 'b', big);
    BL_CHECK(client_send(c, body, len + big));
    BL_CHECK(client_say(c, GET_JSON));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(strncmp(rbuf, "HTTP/1.1 405 ", 13) == 0);
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, ""));
    free(body);

    /* Answers before a close request are sent; what follows it is not answered. */
    BL_CHECK(client_say(c, GET_PLAIN
                        "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" GET_PLAIN));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
}

Test(http_server, pipelining, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, pipelining_main, NULL);
}

/* Malformed requests: 400 and the connection closes; oversized: 431; bodies too large: 413. */
static const char *const bad[] = {
    "GARBAGE\r\n\r\n",
    "GET /plaintext\r\n\r\n",
    "GET /plaintext HTTP/1.1\r\nBad Header: x\r\nHost: x\r\n\r\n",
    "GET /plaintext HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    "GET /plaintext HTTP/1.1\r\n\r\n",
    "GET /plaintext HTTP/1.1\nHost: x\n\n",
    "GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
    "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
};

static void errors_main(void *arg)
{
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        client *c = client_open(srv.port);
        BL_CHECK(client_say(c, bad[i]));
        BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
        BL_CHECK(is_error(rbuf, "400 Bad Request", "Bad Request\n"));
        BL_CHECK(client_sees_eof(c, 5000));
        client_close(c);
    }

    /* Another major version: 505, closed. */
    client *v2 = client_open(srv.port);
    BL_CHECK(client_say(v2, "GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n"));
    BL_CHECK(client_response(v2, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_error(rbuf, "505 HTTP Version Not Supported", "HTTP Version Not Supported\n"));
    BL_CHECK(client_sees_eof(v2, 5000));
    client_close(v2);

    /* A good request, then a bad one, in one send: 200, 400, closed. */
    client *c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_PLAIN "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" GET_PLAIN));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_error(rbuf, "400 Bad Request", "Bad Request\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);

    /* Headers over 8 KiB: 431, closed, even while the client keeps sending. */
    static char big[64 * 1024];
    int n = sprintf(big, "GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    while (n < (int)sizeof big - 200) n += sprintf(big + n, "X-Pad: %0100d\r\n", n);
    n += sprintf(big + n, "\r\n");
    c = client_open(srv.port);
    BL_CHECK(client_send(c, big, (size_t)n));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(
        is_error(rbuf, "431 Request Header Fields Too Large", "Request Header Fields Too Large\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);
    /* Just under the limit is fine. */
    n = sprintf(big, "GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    while (n < 8000) n += sprintf(big + n, "X-Pad: %0100d\r\n", n);
    n += sprintf(big + n, "\r\n");
    c = client_open(srv.port);
    BL_CHECK(client_send(c, big, (size_t)n));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    client_close(c);

    /* A body over the limit: 413, closed. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"));
    BL_CHECK(client_send(c, big, 4096)); /* the start of the body */
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_error(rbuf, "413 Content Too Large", "Content Too Large\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);

    /* Expect: 100-continue with a body: answered at once, then closed. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                           "Expect: 100-continue\r\n\r\n"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(strncmp(rbuf, "HTTP/1.1 405 ", 13) == 0 && strstr(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);

    BL_CHECK(wait_live(&srv, 0));
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
}

Test(http_server, errors, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, errors_main, NULL);
}

/* Slow and idle clients are timed out; clients that vanish cost nothing. */
static void timeouts_main(void *arg)
{
    http_server srv;
    http_opts o = {.header_ms = 300, .idle_ms = 300};
    BL_CHECK_EQ(http_server_start(&srv, &o), 0);

    /* Half a head, then silence: 408 after the header timeout, closed. */
    int64_t t0 = http_now_ms();
    client *c = client_open(srv.port);
    BL_CHECK(client_say(c, "GET /plaintext HTTP/1.1\r\nHo"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_error(rbuf, "408 Request Timeout", "Request Timeout\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    BL_CHECK(ms_since(t0) >= 250);
    client_close(c);

    /* Slowloris: one byte every 20 ms keeps arriving, but the head must be complete
     * within the header timeout all the same. */
    static const char slow[] =
        "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "\r\n\r\n";
    t0 = http_now_ms();
    c = client_open(srv.port);
    size_t sent = 0;
    while (sent < sizeof slow - 1) {
        if (bl_io_send(c->fd, slow + sent, 1, 0, 1000) != 1) break;
        sent++;
        if (bl_io_poll(c->fd, POLLIN, 20) > 0) break; /* the server has spoken */
    }
    BL_CHECK(sent < sizeof slow - 1); /* cut off before the end */
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_error(rbuf, "408 Request Timeout", "Request Timeout\n"));
    BL_CHECK(client_sees_eof(c, 5000));
    int64_t took = ms_since(t0);
    BL_CHECK(took >= 250 && took < 3000);
    client_close(c);

    /* A body trickled a byte every 50 ms (inside the idle timeout each time)
     * is cut off body_ms after its head, however slowly it comes. */
    {
        http_server slow_srv;
        http_opts so = {.idle_ms = 300, .body_ms = 400};
        BL_CHECK_EQ(http_server_start(&slow_srv, &so), 0);
        client *b = client_open(slow_srv.port);
        BL_CHECK(client_say(b, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
        BL_CHECK(client_response(b, rbuf, sizeof rbuf) > 0);
        int sent_body = 0;
        for (; sent_body < 1000; sent_body++) {
            if (bl_io_send(b->fd, "x", 1, 0, 1000) != 1) break;
            if (bl_io_poll(b->fd, POLLIN, 50) > 0) break; /* the server has closed */
        }
        BL_CHECK(sent_body < 60); /* about 400 ms of 50 ms steps, not the whole body */
        BL_CHECK(client_sees_eof(b, 5000));
        client_close(b);
        BL_CHECK_EQ(http_server_shutdown(&slow_srv, 5000), 0);
    }

    /* A connection that never says anything is closed too (no answer). */
    c = client_open(srv.port);
    BL_CHECK(client_sees_eof(c, 5000));
    client_close(c);

    /* Idle keep-alive: a request, then nothing: closed after the idle timeout. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_PLAIN));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    t0 = http_now_ms();
    BL_CHECK(client_sees_eof(c, 5000));
    BL_CHECK(ms_since(t0) >= 200);
    client_close(c);

    /* A client that disconnects in the middle of a head, or of a body. */
    BL_CHECK(wait_live(&srv, 0));
    c = client_open(srv.port);
    BL_CHECK(client_say(c, "GET /plaintext HTTP/1.1\r\nHost"));
    BL_CHECK(wait_live(&srv, 1));
    client_close(c);
    BL_CHECK(wait_live(&srv, 0));
    c = client_open(srv.port);
    BL_CHECK(client_say(c, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(wait_live(&srv, 1));
    client_close(c);
    BL_CHECK(wait_live(&srv, 0));
    /* And one that disconnects with its answer unread. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_PLAIN GET_PLAIN GET_PLAIN));
    client_close(c);
    BL_CHECK(wait_live(&srv, 0));

    /* The server still serves. */
    c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_JSON));
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, ""));
    client_close(c);
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
}

Test(http_server, timeouts, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, timeouts_main, NULL);
}

/*
 * The connections' supervisor killed while acceptors hand it connections:
 * no slot or descriptor is lost (each has one owner at every instant), and
 * the server then has no connection left to wait for.  Three kills, within
 * the top supervisor's restart intensity, each while eight clients connect
 * and disconnect as fast as they can.
 */
typedef struct hammer {
    uint16_t port;
    bl_pid test;
    _Atomic int *stop;
} hammer;

static void hammer_client(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < 100000 && !atomic_load(h->stop); i++) {
        int fd = bl_io_connect_tcp("127.0.0.1", h->port, 5000);
        if (fd >= 0) bl_io_close(fd);
        if (i == 10) bl_send(h->test, 78, NULL, 0); /* in full swing */
    }
    bl_send(h->test, 77, NULL, 0);
}

static void handoff_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    static _Atomic int stop[3];
    for (int round = 0; round < 3; round++) {
        hammer h = {srv.port, bl_self(), &stop[round]};
        enum { CLIENTS = 8 };
        for (int i = 0; i < CLIENTS; i++) BL_CHECK_EQ(bl_spawn(NULL, hammer_client, &h, NULL), 0);
        /* Each client has made ten connections: the hand-offs are in full swing. */
        for (int i = 0; i < CLIENTS; i++) bl_msg_free(bl_test_recv_tag(78, 10000));
        /* The listener's connections supervisor, its first child (beamline/listener.h). */
        bl_pid conns = http_server_child(&srv, 0);
        BL_CHECK_EQ(bl_exit_pid(conns, &kill), 0);
        int64_t t0 = http_now_ms();
        while (http_server_child(&srv, 0) == conns && ms_since(t0) < 10000) bl_yield();
        BL_CHECK(http_server_child(&srv, 0) != conns);
        atomic_store(&stop[round], 1);
        for (int i = 0; i < CLIENTS; i++) bl_msg_free(bl_test_recv_tag(77, 10000));
    }
    /* Every client is gone: so is every connection, and every slot is free. */
    BL_CHECK(wait_live(&srv, 0));
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
    BL_TEST_UNTIL(bl_test_count_fds() == fds0, 10000);
    BL_CHECK_EQ(fds_settled(io0), fds0);
}

Test(http_server, handoff_with_conns_killed, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, handoff_main, NULL);
}

/* Many clients at once, each a process with a few keep-alive requests. */
typedef struct many_ctx {
    uint16_t port;
    bl_pid test;
    int id;
} many_ctx;

static void many_client(void *arg)
{
    many_ctx *m = arg;
    client *c = client_open_with(m->port, 4096);
    int ok = 0;
    char *r = malloc(4096);
    for (int i = 0; i < 3 && c->fd >= 0; i++) {
        bool json = (m->id + i) % 2;
        if (!client_say(c, json ? GET_JSON : GET_PLAIN)) break;
        if (client_response(c, r, 4096) <= 0) break;
        ok += json ? is_json(r, "") : is_plain(r, "");
    }
    free(r);
    client_close(c);
    bl_send(m->test, 2, &ok, sizeof ok);
}

static void many_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    int n = BL_SCALE(500);
    many_ctx *ctx = calloc((size_t)n, sizeof *ctx);
    for (int i = 0; i < n; i++) {
        ctx[i] = (many_ctx){srv.port, bl_self(), i};
        BL_CHECK_EQ(bl_spawn(NULL, many_client, &ctx[i], NULL), 0);
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        bl_msg *m = bl_test_recv_tag(2, 60000);
        BL_CHECK(m != NULL);
        if (m) total += *(int *)m->data;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(total, 3 * n);
    free(ctx);
    BL_CHECK(wait_live(&srv, 0));
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
    BL_CHECK_EQ(fds_settled(io0), fds0);
}

Test(http_server, many_connections, .timeout = 240)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, many_main, NULL);
}

/* Two connections at most: a third waits unaccepted until one of them ends. */
static void max_conns_main(void *arg)
{
    http_server srv;
    http_opts o = {.max_conns = 2};
    BL_CHECK_EQ(http_server_start(&srv, &o), 0);
    client *a = client_open(srv.port), *b = client_open(srv.port);
    BL_CHECK(wait_live(&srv, 2));
    client *c = client_open(srv.port);
    BL_CHECK(client_say(c, GET_JSON));
    BL_CHECK_EQ(bl_io_poll(c->fd, POLLIN, 300), -ETIMEDOUT); /* not answered meanwhile */
    BL_CHECK(client_say(a, GET_PLAIN));
    BL_CHECK(client_response(a, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, ""));
    client_close(a);
    BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, ""));
    client_close(c);
    client_close(b);
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);

    /* Options that make no sense. */
    http_opts badh = {.max_head = (1 << 20) + 1}, badt = {.idle_ms = -5};
    BL_CHECK_EQ(http_server_start(&srv, &badh), -EINVAL);
    BL_CHECK_EQ(http_server_start(&srv, &badt), -EINVAL);
    BL_CHECK_EQ(http_server_shutdown(NULL, 0), -EINVAL);
}

Test(http_server, max_conns_and_options, .timeout = 60)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, max_conns_main, NULL);
}

/* ---- graceful shutdown ---- */

typedef struct stopper_ctx {
    http_server *srv;
    int64_t timeout;
    bl_pid test;
} stopper_ctx;

/* Runs the shutdown as the signal path would, and reports its result. */
static void stopper(void *arg)
{
    stopper_ctx *s = arg;
    int rc = http_server_shutdown(s->srv, s->timeout);
    bl_send(s->test, 3, &rc, sizeof rc);
}

/* Waits until the shutdown has begun: it closes the one idle connection first. */
static void wait_draining(http_server *srv)
{
    BL_CHECK(wait_idle(srv, 0));
}

static void shutdown_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);

    /* idle: a keep-alive connection between requests. */
    client *idle = client_open(srv.port);
    BL_CHECK(client_say(idle, GET_PLAIN));
    BL_CHECK(client_response(idle, rbuf, sizeof rbuf) > 0);
    /* second: its second request half sent, and read by its process (IDLE -> BUSY). */
    client *second = client_open(srv.port);
    BL_CHECK(client_say(second, GET_JSON));
    BL_CHECK(client_response(second, rbuf, sizeof rbuf) > 0);
    BL_CHECK(wait_idle(&srv, 2));
    BL_CHECK(client_say(second, "GET /json HTTP/1.1\r\nHo"));
    BL_CHECK(wait_idle(&srv, 1));
    /* first: a fresh connection in the middle of its first request. */
    client *first = client_open(srv.port);
    BL_CHECK(client_say(first, "GET /plaintext HTTP/1.1\r\n"));
    BL_CHECK(wait_live(&srv, 3));

    /* Shut down while both requests are in progress. */
    stopper_ctx s = {&srv, 10000, bl_self()};
    BL_CHECK_EQ(bl_spawn(NULL, stopper, &s, NULL), 0);
    wait_draining(&srv);

    /* The idle connection is closed without an answer. */
    BL_CHECK(client_sees_eof(idle, 5000));
    /* The requests in progress complete, with Connection: close, then close. */
    BL_CHECK(client_say(first, "Host: x\r\n\r\n"));
    BL_CHECK(client_response(first, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_plain(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(first, 5000));
    BL_CHECK(client_say(second, "st: x\r\n\r\n"));
    BL_CHECK(client_response(second, rbuf, sizeof rbuf) > 0);
    BL_CHECK(is_json(rbuf, "Connection: close\r\n"));
    BL_CHECK(client_sees_eof(second, 5000));

    /* Every connection finished by itself: the shutdown reports success. */
    bl_msg *m = bl_test_recv_tag(3, 20000);
    BL_CHECK(m != NULL);
    if (m) BL_CHECK_EQ(*(int *)m->data, 0);
    bl_msg_free(m);
    /* Nobody listens any more, and nothing is left open. */
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", srv.port, 5000), -ECONNREFUSED);
    client_close(idle);
    client_close(first);
    client_close(second);
    BL_CHECK_EQ(fds_settled(io0), fds0);
    BL_CHECK_EQ(http_server_shutdown(&srv, 0), -EINVAL); /* once is enough */
}

Test(http_server, graceful_shutdown, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, shutdown_main, NULL);
}

/* A request that does not finish in time is cut off; the shutdown says so. */
static void shutdown_timeout_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    uint64_t io0 = bl_io_inflight();
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    client *slow = client_open(srv.port);
    BL_CHECK(client_say(slow, "GET /plaintext HTTP/1.1\r\n"));
    client *idle = client_open(srv.port);
    BL_CHECK(client_say(idle, GET_PLAIN));
    BL_CHECK(client_response(idle, rbuf, sizeof rbuf) > 0);
    BL_CHECK(wait_live(&srv, 2));
    int64_t t0 = http_now_ms();
    BL_CHECK_EQ(http_server_shutdown(&srv, 200), -ETIMEDOUT);
    BL_CHECK(ms_since(t0) >= 150);
    BL_CHECK(client_sees_eof(slow, 5000));
    BL_CHECK(client_sees_eof(idle, 5000));
    client_close(slow);
    client_close(idle);
    BL_CHECK_EQ(fds_settled(io0), fds0);

    /* A server with nothing open stops at once, and leaves nothing behind either. */
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    BL_CHECK_EQ(http_server_shutdown(&srv, 0), 0);
    BL_CHECK_EQ(fds_settled(io0), fds0);
}

Test(http_server, shutdown_timeout, .timeout = 60)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, shutdown_timeout_main, NULL);
}

/* A killed acceptor is restarted by the supervisor; service goes on. */
static void acceptor_restart_main(void *arg)
{
    http_server srv;
    BL_CHECK_EQ(http_server_start(&srv, NULL), 0);
    bl_sup_child kids[BL_LISTENER_MAX_ACCEPTORS];
    bl_pid acceptors = http_server_child(&srv, 1);
    int nk = bl_supervisor_which_children(acceptors, kids, BL_LISTENER_MAX_ACCEPTORS);
    BL_CHECK_EQ(nk, (int)srv.nacceptors);
    bl_pid victim = kids[1].pid;
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(victim, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(victim, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    bl_pid again = BL_PID_NONE;
    int64_t t0 = http_now_ms();
    while ((again == BL_PID_NONE || again == victim) && ms_since(t0) < 10000) {
        if (bl_supervisor_which_children(acceptors, kids, BL_LISTENER_MAX_ACCEPTORS) == nk &&
            kids[1].status == BL_CHILD_RUNNING)
            again = kids[1].pid;
        bl_yield();
    }
    BL_CHECK(again != BL_PID_NONE && again != victim);
    for (int i = 0; i < 4; i++) {
        client *c = client_open(srv.port);
        BL_CHECK(client_say(c, GET_PLAIN));
        BL_CHECK(client_response(c, rbuf, sizeof rbuf) > 0);
        BL_CHECK(is_plain(rbuf, ""));
        client_close(c);
    }
    BL_CHECK_EQ(http_server_shutdown(&srv, 5000), 0);
}

Test(http_server, acceptor_restart, .timeout = 60)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, acceptor_restart_main, NULL);
}
