/*
 * beamline/http.h over real loopback connections: routing (parameters,
 * fallback, 404, 405), headers by name in any case, Content-Length and
 * chunked bodies read whole and streamed, pipelining, keep-alive against
 * Connection: close and HTTP/1.0, and every limit answered with its status
 * and the connection closed.
 */
#include "net/http_test.h"

/* ---- handlers ---- */

static int h_hello(bl_http_req *req, void *arg)
{
    (void)arg;
    bl_http_set_header(req, "Content-Type", "text/plain");
    return bl_http_reply(req, 200, "hello", 5);
}

/* Answers "<tag> id=<id> post=<post>" from the route's parameters. */
static int h_params(bl_http_req *req, void *arg)
{
    char body[256];
    size_t il, pl;
    const char *id = bl_http_param(req, "id", &il);
    const char *post = bl_http_param(req, "post", &pl);
    int n = snprintf(body, sizeof body, "%s id=%.*s post=%.*s", (const char *)arg, (int)il,
                     id ? id : "", (int)pl, post ? post : "");
    return bl_http_reply(req, 200, body, (size_t)n);
}

static int h_fallback(bl_http_req *req, void *arg)
{
    (void)arg;
    size_t pl;
    const char *p = bl_http_path(req, &pl);
    char body[256];
    int n = snprintf(body, sizeof body, "fallback %.*s", (int)pl, p);
    return bl_http_reply(req, 404, body, (size_t)n);
}

/* Echoes X-Test (looked up in another case), the query and the number of fields. */
static int h_headers(bl_http_req *req, void *arg)
{
    (void)arg;
    size_t vl = 0, ql = 0;
    const char *v = bl_http_header(req, "x-TEST", &vl);
    const char *q = bl_http_query(req, &ql);
    size_t count = 0;
    while (bl_http_header_at(req, count, NULL, NULL, NULL, NULL) == 0) count++;
    BL_CHECK(bl_http_header(req, "X-Absent", NULL) == NULL);
    char body[512];
    int n = snprintf(body, sizeof body, "v=%.*s q=%.*s n=%zu", (int)vl, v ? v : "", (int)ql,
                     q ? q : "", count);
    BL_CHECK_EQ(bl_http_set_header(req, "X-Reply", "yes"), 0);
    BL_CHECK_EQ(bl_http_set_header(req, "Content-Length", "1"), -EINVAL);
    BL_CHECK_EQ(bl_http_set_header(req, "X-Bad", "a\r\nb"), -EINVAL);
    return bl_http_reply(req, 200, body, (size_t)n);
}

/* Echoes the whole body. */
static int h_echo(bl_http_req *req, void *arg)
{
    (void)arg;
    const void *data;
    ssize_t n = bl_http_body(req, &data);
    if (n < 0) return 0; /* the connection answers the body's failure */
    const void *again;
    BL_CHECK_EQ(bl_http_body(req, &again), n);
    return bl_http_reply(req, 200, data, (size_t)n);
}

/* Reads the body in 7-byte pieces: "pieces=<n> <the body>". */
static int h_pieces(bl_http_req *req, void *arg)
{
    (void)arg;
    char *all = malloc(1 << 20);
    size_t len = 0;
    int pieces = 0;
    ssize_t n;
    while ((n = bl_http_read_body(req, all + len, 7)) > 0) {
        BL_CHECK(n <= 7);
        len += (size_t)n;
        pieces++;
    }
    int rc = 0;
    if (n == 0) {
        char *out = malloc(len + 64);
        int h = sprintf(out, "pieces=%d ", pieces);
        memcpy(out + h, all, len);
        rc = bl_http_reply(req, 200, out, (size_t)h + len);
        free(out);
    }
    free(all);
    return rc;
}

static bl_http_router *routes(void)
{
    bl_http_router *r;
    BL_CHECK_EQ(bl_http_router_new(&r), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/", h_hello, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/hello", h_hello, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/users/:id", h_params, "user"), 0);
    BL_CHECK_EQ(bl_http_route(r, "DELETE", "/users/:id", h_params, "delete"), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/users/:id/posts/:post", h_params, "post"), 0);
    BL_CHECK_EQ(bl_http_route(r, NULL, "/static/*", h_params, "static"), 0);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/headers", h_headers, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "POST", "/echo", h_echo, NULL), 0);
    BL_CHECK_EQ(bl_http_route(r, "POST", "/pieces", h_pieces, NULL), 0);
    /* Bad routes. */
    BL_CHECK_EQ(bl_http_route(r, "GET", "nope", h_hello, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/a/*/b", h_hello, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/a/:", h_hello, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_route(r, "G T", "/a", h_hello, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/a", NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_route(r, "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", h_hello, NULL), -EINVAL);
    return r;
}

/* GET path on a fresh connection: the status; the body copied into out. */
static int get(uint16_t port, const char *path, char *out, size_t cap)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    resp r;
    int st = one_shot(port, req, &r);
    snprintf(out, cap, "%s", r.body ? r.body : "");
    free(r.body);
    return st;
}

/* ---- routing ---- */

static void routing_main(void *arg)
{
    (void)arg;
    int fds0 = bl_test_count_fds();
    bl_http_router *r = routes();
    test_srv *s = srv_start(r, NULL);
    char b[512];
    BL_CHECK_EQ(get(s->port, "/hello", b, sizeof b), 200);
    BL_CHECK(strcmp(b, "hello") == 0);
    BL_CHECK_EQ(get(s->port, "/", b, sizeof b), 200);
    BL_CHECK_EQ(get(s->port, "/users/42", b, sizeof b), 200);
    BL_CHECK(strcmp(b, "user id=42 post=") == 0);
    BL_CHECK_EQ(get(s->port, "/users/42?x=1", b, sizeof b), 200);
    BL_CHECK(strcmp(b, "user id=42 post=") == 0);
    BL_CHECK_EQ(get(s->port, "/users/7/posts/abc", b, sizeof b), 200);
    BL_CHECK(strcmp(b, "post id=7 post=abc") == 0);
    BL_CHECK_EQ(get(s->port, "/static/a/b/c.css", b, sizeof b), 200);
    BL_CHECK(strncmp(b, "static", 6) == 0);
    BL_CHECK_EQ(get(s->port, "/static/", b, sizeof b), 200);
    /* No route: 404 without a fallback... */
    BL_CHECK_EQ(get(s->port, "/users", b, sizeof b), 404);
    BL_CHECK_EQ(get(s->port, "/users/", b, sizeof b), 404); /* a parameter is never empty */
    BL_CHECK_EQ(get(s->port, "/users/1/", b, sizeof b), 404);
    BL_CHECK_EQ(get(s->port, "/hello/", b, sizeof b), 404);
    BL_CHECK(strcmp(b, "Not Found\n") == 0);
    /* ...405 with Allow when the path has routes for other methods. */
    resp rr;
    BL_CHECK_EQ(one_shot(s->port, "PUT /users/1 HTTP/1.1\r\nHost: x\r\n\r\n", &rr), 405);
    char allow[128];
    BL_CHECK(resp_header(&rr, "Allow", allow, sizeof allow) &&
             strcmp(allow, "GET, HEAD, DELETE") == 0);
    free(rr.body);
    BL_CHECK_EQ(one_shot(s->port, "DELETE /users/9 HTTP/1.1\r\nHost: x\r\n\r\n", &rr), 200);
    BL_CHECK(strcmp(rr.body, "delete id=9 post=") == 0);
    free(rr.body);
    /* HEAD takes the GET route, without the body but with its length. */
    client *c = cl_open(s->port);
    BL_CHECK(cl_say(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &rr, true), 200);
    BL_CHECK(strstr(rr.head, "Content-Length: 5\r\n") != NULL);
    free(rr.body);
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")); /* nothing came in between */
    BL_CHECK_EQ(cl_response(c, &rr, false), 200);
    BL_CHECK(strcmp(rr.body, "hello") == 0);
    free(rr.body);
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
    /* The fallback takes what no route's path matches (set before serving: the router
     * is not to change while connections read it). */
    r = routes();
    BL_CHECK_EQ(bl_http_router_fallback(r, h_fallback, NULL), 0);
    s = srv_start(r, NULL);
    BL_CHECK_EQ(get(s->port, "/nowhere/at/all", b, sizeof b), 404);
    BL_CHECK(strcmp(b, "fallback /nowhere/at/all") == 0);
    BL_CHECK_EQ(get(s->port, "http://example.com/users/5", b, sizeof b), 200);
    BL_CHECK(strcmp(b, "user id=5 post=") == 0);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
    BL_CHECK_EQ(bl_test_count_fds(), fds0);
}

Test(http, routing, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, routing_main, NULL);
}

/* ---- headers ---- */

static void headers_main(void *arg)
{
    (void)arg;
    test_srv *s = srv_start(routes(), NULL);
    resp r;
    BL_CHECK_EQ(one_shot(s->port,
                         "GET /headers?a=1&b=2 HTTP/1.1\r\nhost: x\r\nX-TeSt:   some value  "
                         "\r\nAccept: */*\r\n\r\n",
                         &r),
                200);
    BL_CHECK(strcmp(r.body, "v=some value q=a=1&b=2 n=3") == 0);
    char v[64];
    BL_CHECK(resp_header(&r, "X-Reply", v, sizeof v) && strcmp(v, "yes") == 0);
    BL_CHECK(resp_header(&r, "Server", v, sizeof v) && strcmp(v, "beamline") == 0);
    BL_CHECK(resp_header(&r, "Date", v, sizeof v) && strlen(v) == 29);
    free(r.body);
    /* Empty lines before the request line do not confuse the index. */
    BL_CHECK_EQ(
        one_shot(s->port, "\r\n\r\nGET /headers HTTP/1.1\r\nHost: x\r\nx-test: 1\r\n\r\n", &r),
        200);
    BL_CHECK(strcmp(r.body, "v=1 q= n=2") == 0);
    free(r.body);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
}

Test(http, headers_by_name, .timeout = 60)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, headers_main, NULL);
}

/* ---- bodies ---- */

static void bodies_main(void *arg)
{
    (void)arg;
    bl_http_opts o = {.max_body = 100000};
    test_srv *s = srv_start(routes(), &o);
    client *c = cl_open(s->port);
    resp r;
    /* Content-Length, whole. */
    BL_CHECK(cl_say(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strcmp(r.body, "hello world") == 0);
    free(r.body);
    /* Chunked, whole, with an extension and a trailer. */
    BL_CHECK(cl_say(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strcmp(r.body, "hello world") == 0);
    free(r.body);
    /* Streamed, Content-Length and chunked (split across sends), 7 bytes at a time. */
    BL_CHECK(cl_say(c, "POST /pieces HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
                       "abcdefghijklmnopqrst"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strcmp(r.body, "pieces=3 abcdefghijklmnopqrst") == 0);
    free(r.body);
    BL_CHECK(cl_say(c, "POST /pieces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA"));
    BL_CHECK(cl_say(c, "\r\n0123456789\r"));
    BL_CHECK(cl_say(c, "\n3\r\nabc\r\n0\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strncmp(r.body, "pieces=", 7) == 0 && strstr(r.body, " 0123456789abc") != NULL);
    free(r.body);
    /* A big chunked body, chunks of all sizes. */
    size_t total = 0, cap = 200000;
    char *big = malloc(cap), *want = malloc(cap);
    size_t bl = (size_t)sprintf(big, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t k = 1; total + k < 90000; k = k * 3 + 1) {
        bl += (size_t)sprintf(big + bl, "%zx\r\n", k);
        for (size_t i = 0; i < k; i++)
            want[total + i] = big[bl + i] = (char)('a' + (total + i) % 26);
        bl += k;
        total += k;
        bl += (size_t)sprintf(big + bl, "\r\n");
    }
    bl += (size_t)sprintf(big + bl, "0\r\n\r\n");
    BL_CHECK(cl_send(c, big, bl));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK_EQ(r.len, total);
    BL_CHECK(r.len == total && memcmp(r.body, want, total) == 0);
    free(r.body);
    /* A body the handler does not read is skipped; the connection goes on. */
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyGET /hello "
                       "HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    free(r.body);
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    free(r.body);
    cl_close(c);
    /* Expect: 100-continue: the interim answer comes when the handler reads. */
    c = cl_open(s->port);
    BL_CHECK(cl_say(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 3\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 100);
    free(r.body);
    BL_CHECK(cl_say(c, "abc"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strcmp(r.body, "abc") == 0);
    free(r.body);
    cl_close(c);
    /* Bad chunks: 400; too much: 413; each closes. */
    static const char *const bad[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "11111111111111111\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = cl_open(s->port);
        BL_CHECK(cl_say(c, bad[i]));
        BL_CHECK_EQ(cl_response(c, &r, false), 400);
        BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
        free(r.body);
        BL_CHECK(cl_sees_eof(c, 5000));
        cl_close(c);
    }
    c = cl_open(s->port);
    BL_CHECK(cl_say(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "186a1\r\n")); /* 100001 bytes announced */
    BL_CHECK_EQ(cl_response(c, &r, false), 413);
    free(r.body);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    free(big);
    free(want);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
}

Test(http, bodies, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, bodies_main, NULL);
}

/* ---- pipelining, keep-alive, Connection: close, HTTP/1.0 ---- */

static void keepalive_main(void *arg)
{
    (void)arg;
    test_srv *s = srv_start(routes(), NULL);
    client *c = cl_open(s->port);
    resp r;
    /* Several requests in one write: the answers in order. */
    BL_CHECK(cl_say(c, "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /users/3 HTTP/1.1\r\nHost: x\r\n\r\n"));
    const char *want[] = {"user id=1 post=", "abc", "user id=2 post=", "Not Found\n",
                          "user id=3 post="};
    for (int i = 0; i < 5; i++) {
        BL_CHECK(cl_response(c, &r, false) > 0);
        BL_CHECK(r.body && strcmp(r.body, want[i]) == 0);
        BL_CHECK(strstr(r.head, "Connection:") == NULL); /* HTTP/1.1 keeps it open */
        free(r.body);
    }
    /* A long pipeline, more than the buffers hold. */
    int n = 3000;
    char *many = malloc((size_t)n * 40);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(many + len, "GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    BL_CHECK(cl_send(c, many, len));
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char w[64];
        snprintf(w, sizeof w, "user id=%d post=", i);
        if (cl_response(c, &r, false) != 200) break;
        ok += strcmp(r.body, w) == 0;
        free(r.body);
    }
    BL_CHECK_EQ(ok, n);
    free(many);
    /* Connection: close: answered with it, then closed, and what follows is not answered. */
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    free(r.body);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    /* HTTP/1.0: closes, unless asked to keep the connection. */
    c = cl_open(s->port);
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.0\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strstr(r.head, "HTTP/1.1 200 OK\r\n") == r.head);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    free(r.body);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    c = cl_open(s->port);
    for (int i = 0; i < 3; i++) {
        BL_CHECK(cl_say(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        BL_CHECK_EQ(cl_response(c, &r, false), 200);
        BL_CHECK(strstr(r.head, "Connection: keep-alive\r\n") != NULL);
        free(r.body);
    }
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);

    /* max_requests: the last one says close. */
    bl_http_opts o = {.max_requests = 2};
    s = srv_start(routes(), &o);
    c = cl_open(s->port);
    BL_CHECK(cl_say(c,
                    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strstr(r.head, "Connection:") == NULL);
    free(r.body);
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    free(r.body);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);
}

Test(http, pipelining_and_keepalive, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, keepalive_main, NULL);
}

/* ---- limits ---- */

typedef struct limit_case {
    const char *what; /* the request (with %s: a long filler) */
    int status;       /* the answer */
} limit_case;

static void limits_main(void *arg)
{
    (void)arg;
    bl_http_opts o = {.max_head = 2048,
                      .max_target = 256,
                      .max_headers = 10,
                      .max_body = 1000,
                      .header_ms = 300,
                      .idle_ms = 300};
    test_srv *s = srv_start(routes(), &o);
    char fill[4096];
    memset(fill, 'a', sizeof fill - 1);
    fill[sizeof fill - 1] = 0;
    char many[1024] = "";
    for (int i = 0; i < 11; i++) sprintf(many + strlen(many), "X-%d: v\r\n", i);
    char req[8192];
    static const limit_case cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET /hello HTTP/1.1\r\n\r\n", 400},
        {"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400},
        {"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET /hello HTTP/3\r\n", 505},
        {"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases + 3; i++) {
        int want;
        if (i < sizeof cases / sizeof *cases) {
            snprintf(req, sizeof req, "%s", cases[i].what);
            want = cases[i].status;
        } else if (i == sizeof cases / sizeof *cases) {
            snprintf(req, sizeof req, "GET /%.300s HTTP/1.1\r\nHost: x\r\n\r\n", fill);
            want = 414;
        } else if (i == sizeof cases / sizeof *cases + 1) {
            snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nX: %.2100s\r\n\r\n", fill);
            want = 431;
        } else {
            snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", many);
            want = 431;
        }
        client *c = cl_open(s->port);
        BL_CHECK(cl_say(c, req));
        resp r;
        int st = cl_response(c, &r, false);
        BL_CHECK_EQ(st, want);
        BL_CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
        char want_body[64];
        snprintf(want_body, sizeof want_body, "%s\n", bl_http_reason(want));
        BL_CHECK(r.body && strcmp(r.body, want_body) == 0);
        free(r.body);
        BL_CHECK(cl_sees_eof(c, 5000));
        cl_close(c);
    }
    /* A head sent slowly: 408 after header_ms, however steadily it trickles. */
    client *c = cl_open(s->port);
    int64_t t0 = bl_test_ms();
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.1\r\n"));
    for (int i = 0; i < 5; i++) {
        BL_CHECK(cl_say(c, "X-Slow: 1\r\n"));
        bl_sleep(100); /* the client's pace, not a wait for the server */
    }
    resp r;
    BL_CHECK_EQ(cl_response(c, &r, false), 408);
    free(r.body);
    BL_CHECK(bl_test_ms() - t0 >= 290);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    /* Idle after a request: closed without a word after idle_ms. */
    c = cl_open(s->port);
    BL_CHECK(cl_say(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    BL_CHECK_EQ(cl_response(c, &r, false), 200);
    free(r.body);
    t0 = bl_test_ms();
    BL_CHECK(cl_sees_eof(c, 5000));
    BL_CHECK(bl_test_ms() - t0 >= 250);
    cl_close(c);
    /* Silence on a fresh connection: closed after header_ms, no answer. */
    c = cl_open(s->port);
    BL_CHECK(cl_sees_eof(c, 5000));
    cl_close(c);
    BL_CHECK(srv_wait_conns(s, 0));
    BL_CHECK_EQ(srv_stop(s, 5000), 0);

    /* Options that make no sense. */
    bl_http_opts bad = {.idle_ms = -5};
    BL_CHECK_EQ(bl_http_serve_conn(0, NULL, NULL), -EINVAL);
    bl_http_router *rt = routes();
    BL_CHECK_EQ(bl_http_serve_conn(-1, rt, NULL), -EINVAL);
    BL_CHECK_EQ(bl_http_serve_conn(0, rt, &bad), -EINVAL);
    bl_http_router_free(rt);
}

Test(http, limits_and_statuses, .timeout = 120)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, limits_main, NULL);
}

Test(http, outside_a_process)
{
    bl_http_router *r;
    cr_assert_eq(bl_http_router_new(&r), 0);
    cr_assert_eq(bl_http_serve_conn(0, r, NULL), -EPERM);
    bl_http_group *g;
    cr_assert_eq(bl_http_group_new(&g, 4), 0);
    cr_assert_eq(bl_http_group_shutdown(g, 0), -EPERM);
    cr_assert_eq(bl_http_group_free(g), 0);
    bl_http_router_free(r);
    cr_assert_str_eq(bl_http_reason(404), "Not Found");
    cr_assert_str_eq(bl_http_reason(999), "");
}
