/*
 * net/http_parser.h on its own: requests of many shapes,
 * every class of malformed input, the size limits, the same answer however
 * the bytes are split, pipelined requests, chunked framing and the
 * statuses beyond 400 (414, 431 by field count, 501, 505), and thousands of
 * mutated requests (fixed seed) that must each parse or be refused with one
 * of the parser's statuses.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parser.h"

#define MAX_HEAD 8192
#define MAX_BODY (1u << 20)

/* Parses buf[0..len) in one call. */
static int parse(const char *buf, size_t len, bl_http_head *req)
{
    bl_http_parser p;
    bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
    return bl_http_parse(&p, buf, len, req);
}

static int parse_str(const char *s, bl_http_head *req)
{
    return parse(s, strlen(s), req);
}

/*
 * Parses buf[0..len) fed in pieces: first `cut` bytes, then all of them,
 * through a copy that moves between calls (as a connection's buffer may).
 */
static int parse_split(const char *buf, size_t len, size_t cut, bl_http_head *req)
{
    bl_http_parser p;
    bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
    char *a = malloc(len ? len : 1);
    memcpy(a, buf, cut);
    int r = bl_http_parse(&p, a, cut, req);
    free(a);
    /* Decided already: asking again (with the moved bytes) must say the same. */
    int again = bl_http_parse(&p, buf, len, req);
    cr_assert(r == BL_HTTP_PARSE_MORE || r == again, "%d then %d", r, again);
    return again;
}

/* Parses buf[0..len) one more byte at a time. */
static int parse_bytewise(const char *buf, size_t len, bl_http_head *req)
{
    bl_http_parser p;
    bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
    int r = BL_HTTP_PARSE_MORE;
    for (size_t n = 0; n <= len && r == BL_HTTP_PARSE_MORE; n++) r = bl_http_parse(&p, buf, n, req);
    return r;
}

/* Two results are the same: the code and, for a parsed head, every field. */
static void same(int ra, const bl_http_head *a, int rb, const bl_http_head *b, const char *buf_a,
                 const char *buf_b, const char *what)
{
    cr_assert_eq(ra, rb, "%s: %d vs %d", what, ra, rb);
    if (ra <= 0) return;
    cr_assert_eq(a->method, b->method, "%s", what);
    cr_assert_eq(a->method_name - buf_a, b->method_name - buf_b, "%s", what);
    cr_assert_eq(a->method_len, b->method_len, "%s", what);
    cr_assert_eq(a->target - buf_a, b->target - buf_b, "%s", what);
    cr_assert_eq(a->target_len, b->target_len, "%s", what);
    cr_assert_eq(a->path_len, b->path_len, "%s", what);
    cr_assert(a->path_len == 0 || memcmp(a->path, b->path, a->path_len) == 0, "%s", what);
    cr_assert_eq(a->minor, b->minor, "%s", what);
    cr_assert_eq(a->keep_alive, b->keep_alive, "%s", what);
    cr_assert_eq(a->expect_continue, b->expect_continue, "%s", what);
    cr_assert_eq(a->content_length, b->content_length, "%s", what);
    cr_assert_eq(a->head_len, b->head_len, "%s", what);
}

/* Every split of buf, and byte by byte, gives what the whole does. */
static void check_incremental(const char *buf, size_t len)
{
    bl_http_head whole, part;
    int r = parse(buf, len, &whole);
    for (size_t cut = 0; cut <= len; cut++) {
        memset(&part, 0, sizeof part);
        int rp = parse_split(buf, len, cut, &part);
        same(r, &whole, rp, &part, buf, buf, "split");
    }
    memset(&part, 0, sizeof part);
    int rb = parse_bytewise(buf, len, &part);
    same(r, &whole, rb, &part, buf, buf, "bytewise");
}

/* ---- valid requests ---- */

typedef struct valid_case {
    const char *text;           /* the head (and maybe a body after it) */
    size_t head_len;            /* 0: strlen(text) */
    bl_http_method_kind method; /* expected */
    const char *path;           /* expected path ("" for none) */
    int minor;                  /* expected */
    bool keep_alive;            /* expected */
    uint64_t length;            /* expected Content-Length */
    bool expect;                /* expected Expect: 100-continue */
} valid_case;

static const valid_case valid[] = {
    {"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_GET, "/plaintext", 1, true, 0, false},
    {"GET /json HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\nUser-Agent: wrk\r\n\r\n", 0,
     BL_HTTP_GET, "/json", 1, true, 0, false},
    {"HEAD /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, BL_HTTP_HEAD, "/json", 1,
     false, 0, false},
    {"GET / HTTP/1.0\r\n\r\n", 0, BL_HTTP_GET, "/", 0, false, 0, false},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, BL_HTTP_GET, "/", 0, true, 0, false},
    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0, BL_HTTP_GET, "/", 0, false, 0,
     false},
    {"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 51, BL_HTTP_OTHER, "/json",
     1, true, 5, false},
    {"GET /plaintext?x=1&y=2 HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_GET, "/plaintext", 1, true, 0,
     false},
    {"GET http://example.com/json?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, BL_HTTP_GET,
     "/json", 1, true, 0, false},
    {"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, BL_HTTP_GET, "/", 1, true,
     0, false},
    {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_OTHER, "", 1, true, 0, false},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 0, BL_HTTP_OTHER, "", 1,
     true, 0, false},
    {"\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_GET, "/json", 1, true, 0, false},
    {"GET / HTTP/1.1\r\nhOsT: x\r\nX-Empty:\r\nX-Spaces:   a b \t\r\nConnection: foo, "
     "CLOSE\r\n\r\n",
     0, BL_HTTP_GET, "/", 1, false, 0, false},
    {"GET / HTTP/1.7\r\nHost: x\r\n\r\n", 0, BL_HTTP_GET, "/", 1, true, 0, false},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-Utf8: caf\xc3\xa9\r\n\r\n", 0, BL_HTTP_GET, "/", 1, true, 0,
     false},
    {"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 0,
     BL_HTTP_OTHER, "/x", 1, true, 3, true},
    {"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 0, BL_HTTP_GET,
     "/plaintext", 1, true, 0, false},
    {"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length:   007  \r\n\r\n", 0, BL_HTTP_GET,
     "/plaintext", 1, true, 7, false},
    {"DELETE /a/b/c HTTP/1.1\r\nHost:x\r\nX!#$%&'*+-.^_`|~09: v\r\n\r\n", 0, BL_HTTP_OTHER,
     "/a/b/c", 1, true, 0, false},
    {"get /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_OTHER, "/plaintext", 1, true, 0,
     false},
    {"GET /%7Euser/%20?a=b?c HTTP/1.1\r\nHost: x\r\n\r\n", 0, BL_HTTP_GET, "/%7Euser/%20", 1, true,
     0, false},
};

static void check_valid(const valid_case *v)
{
    bl_http_head req;
    size_t len = strlen(v->text);
    size_t head = v->head_len ? v->head_len : len;
    int r = parse(v->text, len, &req);
    cr_assert_eq(r, (int)head, "%s: %d", v->text, r);
    cr_assert_eq(req.head_len, head);
    cr_assert_eq(req.method, v->method, "%s", v->text);
    cr_assert_eq(req.path_len, strlen(v->path), "%s", v->text);
    cr_assert(memcmp(req.path, v->path, req.path_len) == 0, "%s", v->text);
    cr_assert_eq(req.minor, v->minor, "%s", v->text);
    cr_assert_eq(req.keep_alive, v->keep_alive, "%s", v->text);
    cr_assert_eq(req.content_length, v->length, "%s", v->text);
    cr_assert_eq(req.expect_continue, v->expect, "%s", v->text);
    /* The method as sent, and the target up to its space. */
    const char *sp = strchr(v->text + strspn(v->text, "\r\n"), ' ');
    cr_assert_eq(req.method_name + req.method_len, sp);
    cr_assert_eq(req.target, sp + 1);
    cr_assert_eq(req.target[req.target_len], ' ');
    /* Fewer bytes: not complete yet. */
    bl_http_head part;
    cr_assert_eq(parse(v->text, head - 1, &part), BL_HTTP_PARSE_MORE, "%s", v->text);
    check_incremental(v->text, len);
}

Test(bl_http_parser, valid_requests)
{
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) check_valid(&valid[i]);
}

/* Many header lines, a long target, and a head of exactly the limit. */
Test(bl_http_parser, large_valid_heads)
{
    static char buf[MAX_HEAD + 64];
    int n = snprintf(buf, sizeof buf, "GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 200; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "X-H%d: v%d\r\n", i, i);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
    bl_http_head req;
    cr_assert_eq(parse(buf, (size_t)n, &req), n);
    check_incremental(buf, (size_t)n);

    /* Exactly MAX_HEAD bytes: accepted.  One more: 431. */
    const char *pre = "GET /";
    const char *post = " HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t fill = MAX_HEAD - strlen(pre) - strlen(post);
    n = snprintf(buf, sizeof buf, "%s%*s%s", pre, (int)fill, "", post);
    memset(buf + strlen(pre), 'a', fill);
    cr_assert_eq(n, MAX_HEAD);
    cr_assert_eq(parse(buf, (size_t)n, &req), MAX_HEAD);
    cr_assert_eq(req.path_len, 1 + fill);
    n = snprintf(buf, sizeof buf, "%s%*s%s", pre, (int)fill + 1, "", post);
    memset(buf + strlen(pre), 'a', fill + 1);
    cr_assert_eq(parse(buf, (size_t)n, &req), BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    check_incremental(buf, (size_t)n);
}

/* ---- malformed requests ---- */

static const char *const malformed[] = {
    /* the request line */
    "GET /plaintext HTTP/1.1\n\n",
    "GET /plaintext HTTP/1.1\nHost: x\r\n\r\n",
    "GET  /x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /x  HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.1 \r\nHost: x\r\n\r\n",
    " GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET\t/x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /x\r\n\r\n",
    "GET\r\n\r\n",
    "/x HTTP/1.1\r\nHost: x\r\n\r\n",
    "G(T /x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.10\r\nHost: x\r\n\r\n",
    "GET /x http/1.1\r\nHost: x\r\n\r\n",
    "GET /x HTTP/11\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.1\r\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.1\rHost: x\r\n\r\n",
    "\r\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n",
    "\n",
    /* header lines */
    "GET /x HTTP/1.1\r\nHost x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost : x\r\n\r\n",
    "GET /x HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "GET /x HTTP/1.1\r\n Host: x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nX(: a\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\n\n",
    "GET /x HTTP/1.1\r\nHost: x\r\n\rX",
    "GET /x HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
    /* Host */
    "GET /x HTTP/1.1\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-Host: x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: x\r\nhost: x\r\n\r\n",
    /* framing */
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5,5\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
    "chunked\r\n\r\n",
    "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
};

Test(bl_http_parser, malformed_requests)
{
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        bl_http_head req;
        int r = parse_str(malformed[i], &req);
        cr_assert_eq(r, BL_HTTP_PARSE_BAD_REQUEST, "case %zu (%s): %d", i, malformed[i], r);
        /* A decision is final: asking again gives it again. */
        bl_http_parser p;
        bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
        cr_assert_eq(bl_http_parse(&p, malformed[i], strlen(malformed[i]), &req), r);
        cr_assert_eq(bl_http_parse(&p, malformed[i], strlen(malformed[i]), &req), r);
        check_incremental(malformed[i], strlen(malformed[i]));
    }
}

/* Errors are found as soon as the bytes that cause them arrive, not at the end of the head. */
Test(bl_http_parser, early_errors)
{
    bl_http_head req;
    cr_assert_eq(parse_str("GET /x HTTP/2", &req), BL_HTTP_PARSE_VERSION);
    cr_assert_eq(parse_str("\x16\x03\x01\x02\x00", &req), BL_HTTP_PARSE_BAD_REQUEST); /* TLS */
    char nul[] = "GET /x HTTP/1.1\r\nX: a\0b\r\n";
    cr_assert_eq(parse(nul, sizeof nul - 1, &req), BL_HTTP_PARSE_BAD_REQUEST);
    cr_assert_eq(parse_str("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n", &req),
                 BL_HTTP_PARSE_MORE);
    cr_assert_eq(parse_str("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n", &req),
                 BL_HTTP_PARSE_CONTENT_TOO_LARGE);
}

/* ---- limits ---- */

Test(bl_http_parser, limits)
{
    bl_http_head req;
    static char buf[3 * MAX_HEAD];
    /* Headers that never end within the limit: 431 as soon as the limit is reached. */
    int n = snprintf(buf, sizeof buf, "GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    while (n < 2 * MAX_HEAD) n += snprintf(buf + n, sizeof buf - (size_t)n, "X-Pad: %0100d\r\n", 0);
    cr_assert_eq(parse(buf, MAX_HEAD - 1, &req), BL_HTTP_PARSE_MORE);
    cr_assert_eq(parse(buf, MAX_HEAD, &req), BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    cr_assert_eq(parse(buf, (size_t)n, &req), BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
    cr_assert_eq(parse(buf, (size_t)n, &req), BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    check_incremental(buf, (size_t)n);

    /* One line longer than the limit, with no end at all: the target is too long. */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "GET /", 5);
    cr_assert_eq(parse(buf, sizeof buf, &req), BL_HTTP_PARSE_URI_TOO_LONG);

    /* Bodies: up to max_body, 413 beyond, however many digits. */
    snprintf(buf, sizeof buf, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
             MAX_BODY);
    cr_assert_gt(parse_str(buf, &req), 0);
    cr_assert_eq(req.content_length, MAX_BODY);
    snprintf(buf, sizeof buf, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
             MAX_BODY + 1);
    cr_assert_eq(parse_str(buf, &req), BL_HTTP_PARSE_CONTENT_TOO_LARGE);
    cr_assert_eq(parse_str("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: "
                           "99999999999999999999999999999999\r\n\r\n",
                           &req),
                 BL_HTTP_PARSE_CONTENT_TOO_LARGE);
    check_incremental(buf, strlen(buf));

    /* Small limits of the parser's own. */
    bl_http_parser p;
    bl_http_parser_init(&p, 20, 0);
    cr_assert_eq(bl_http_parse(&p, "GET / HTTP/1.0\r\n\r\n", 18, &req), 18);
    bl_http_parser_init(&p, 17, 0);
    cr_assert_eq(bl_http_parse(&p, "GET / HTTP/1.0\r\n\r\n", 18, &req),
                 BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    bl_http_parser_init(&p, 100, 0);
    cr_assert_eq(bl_http_parse(&p, "GET / HTTP/1.0\r\nContent-Length: 1\r\n\r\n", 37, &req),
                 BL_HTTP_PARSE_CONTENT_TOO_LARGE);
}

/* ---- chunked framing and the other statuses ---- */

Test(bl_http_parser, chunked)
{
    bl_http_head req;
    const char *c = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello";
    int r = parse_str(c, &req);
    cr_assert_eq(r, (int)(strstr(c, "\r\n\r\n") - c) + 4);
    cr_assert(req.chunked);
    cr_assert_eq(req.content_length, 0);
    check_incremental(c, strlen(c));
    const char *cl = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n";
    cr_assert_eq(parse_str(cl, &req), (int)strlen(cl));
    cr_assert(!req.chunked);
}

static const struct {
    const char *text; /* the head */
    int status;       /* what the parser must say */
} statuses[] = {
    {"GET /x HTTP/2.0\r\nHost: x\r\n\r\n", BL_HTTP_PARSE_VERSION},
    {"GET /x HTTP/0.9\r\nHost: x\r\n\r\n", BL_HTTP_PARSE_VERSION},
    {"GET /x HTTP/3\r\n\r\n", BL_HTTP_PARSE_VERSION},
    {"GET /x HTTP/a.1\r\nHost: x\r\n\r\n", BL_HTTP_PARSE_BAD_REQUEST},
    {"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     BL_HTTP_PARSE_NOT_IMPLEMENTED},
    {"POST /x HTTP/1.1\r\nHost: x\r\nTRANSFER-ENCODING: identity\r\n\r\n",
     BL_HTTP_PARSE_NOT_IMPLEMENTED},
    {"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
     BL_HTTP_PARSE_NOT_IMPLEMENTED},
    {"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     BL_HTTP_PARSE_NOT_IMPLEMENTED},
};

Test(bl_http_parser, statuses)
{
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        bl_http_head req;
        int r = parse_str(statuses[i].text, &req);
        cr_assert_eq(r, statuses[i].status, "case %zu (%s): %d", i, statuses[i].text, r);
        check_incremental(statuses[i].text, strlen(statuses[i].text));
    }
}

/* The request target's and the field count's own limits, and what reset keeps. */
Test(bl_http_parser, target_and_field_limits)
{
    bl_http_head req;
    bl_http_parser p;
    const char *ok = "GET /12345678 HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n";
    const char *long_target = "GET /123456789 HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *three = "GET /1 HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
            bl_http_parser_limits(&p, 9, 2);
        } else {
            bl_http_parser_reset(&p); /* the limits stay */
        }
        cr_assert_eq(bl_http_parse(&p, ok, strlen(ok), &req), (int)strlen(ok));
        bl_http_parser_reset(&p);
        cr_assert_eq(bl_http_parse(&p, long_target, strlen(long_target), &req),
                     BL_HTTP_PARSE_URI_TOO_LONG);
        bl_http_parser_reset(&p);
        /* Decided as soon as the target passes the limit, before its end. */
        cr_assert_eq(bl_http_parse(&p, long_target, 15, &req), BL_HTTP_PARSE_URI_TOO_LONG);
        bl_http_parser_reset(&p);
        cr_assert_eq(bl_http_parse(&p, three, strlen(three), &req),
                     BL_HTTP_PARSE_HEADERS_TOO_LARGE);
        bl_http_parser_reset(&p);
    }
    /* 0: no limit of their own. */
    bl_http_parser_limits(&p, 0, 0);
    cr_assert_eq(bl_http_parse(&p, three, strlen(three), &req), (int)strlen(three));
}

/* ---- pipelining ---- */

Test(bl_http_parser, pipelined)
{
    const char *in = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
                     "HEAD /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     "GET /unfinished HTTP/1.1\r\nHo";
    size_t len = strlen(in), at = 0;
    bl_http_parser p;
    bl_http_parser_init(&p, MAX_HEAD, MAX_BODY);
    bl_http_head req;
    static const struct {
        bl_http_method_kind m;
        const char *path;
        uint64_t body;
        bool keep;
    } want[] = {{BL_HTTP_GET, "/plaintext", 0, true},
                {BL_HTTP_OTHER, "/json", 4, true},
                {BL_HTTP_HEAD, "/json", 0, false}};
    for (int i = 0; i < 3; i++) {
        int r = bl_http_parse(&p, in + at, len - at, &req);
        cr_assert_gt(r, 0, "request %d: %d", i, r);
        cr_assert_eq(req.method, want[i].m);
        cr_assert_eq(req.path_len, strlen(want[i].path));
        cr_assert(memcmp(req.path, want[i].path, req.path_len) == 0);
        cr_assert_eq(req.content_length, want[i].body);
        cr_assert_eq(req.keep_alive, want[i].keep);
        at += (size_t)r + req.content_length;
        bl_http_parser_reset(&p);
    }
    cr_assert_eq(bl_http_parse(&p, in + at, len - at, &req), BL_HTTP_PARSE_MORE);
    cr_assert_eq(strcmp(in + at, "GET /unfinished HTTP/1.1\r\nHo"), 0);
}

/* ---- mutations ---- */

/* xorshift64*: a fixed sequence, so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Bytes that matter to the grammar, chosen more often than chance would. */
static const char special[] = "\r\n :\t/?*,0123456789HTTP/1.\x00\x7f\x80\xff";

/* One mutation of buf[0..*len) in place (cap bytes available). */
static void mutate(char *buf, size_t *len, size_t cap)
{
    size_t n = *len;
    size_t at = n ? rnd() % n : 0;
    unsigned char b =
        rnd() % 2 ? (unsigned char)rnd() : (unsigned char)special[rnd() % (sizeof special - 1)];
    switch (rnd() % 6) {
    case 0: /* replace a byte */
    case 1:
        if (n) buf[at] = (char)b;
        break;
    case 2: /* insert a byte */
        if (n < cap) {
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (char)b;
            *len = n + 1;
        }
        break;
    case 3: /* delete a byte */
        if (n) {
            memmove(buf + at, buf + at + 1, n - at - 1);
            *len = n - 1;
        }
        break;
    case 4: { /* duplicate a span */
        size_t span = 1 + rnd() % 16;
        if (at + span > n) span = n - at;
        if (n + span <= cap) {
            memmove(buf + at + span, buf + at, n - at);
            *len = n + span;
        }
        break;
    }
    default: /* cut the end off */
        *len = at;
        break;
    }
}

/* One of the parser's refusals. */
static bool is_status(int r)
{
    return r == BL_HTTP_PARSE_BAD_REQUEST || r == BL_HTTP_PARSE_CONTENT_TOO_LARGE ||
           r == BL_HTTP_PARSE_URI_TOO_LONG || r == BL_HTTP_PARSE_HEADERS_TOO_LARGE ||
           r == BL_HTTP_PARSE_NOT_IMPLEMENTED || r == BL_HTTP_PARSE_VERSION;
}

/* What every parse must satisfy, whatever the input. */
static void check_any(const char *buf, size_t len)
{
    bl_http_head req;
    int r = parse(buf, len, &req);
    cr_assert(r >= 0 || is_status(r), "result %d", r);
    if (r > 0) {
        /* A parsed head lies in the buffer, within the limit, and ends in an empty line. */
        cr_assert_leq((size_t)r, len);
        cr_assert_leq((size_t)r, MAX_HEAD);
        cr_assert_eq(req.head_len, (size_t)r);
        cr_assert(r >= 4 && memcmp(buf + r - 4, "\r\n\r\n", 4) == 0);
        cr_assert(req.method_name >= buf && req.method_name + req.method_len <= buf + r);
        cr_assert(req.target >= buf && req.target + req.target_len <= buf + r);
        cr_assert(
            req.path_len == 0 || (req.path_len == 1 && req.path[0] == '/') ||
            (req.path >= req.target && req.path + req.path_len <= req.target + req.target_len));
        cr_assert(req.minor == 0 || req.minor == 1);
        cr_assert_leq(req.content_length, MAX_BODY);
    }
    if (r == BL_HTTP_PARSE_MORE) {
        /* Not decided yet: padding up to the limit must bring a decision (400 or 431). */
        size_t pad = MAX_HEAD + 1;
        char *more = malloc(len + pad);
        memcpy(more, buf, len);
        memset(more + len, 'a', pad);
        int r2 = parse(more, len + pad, &req);
        cr_assert(is_status(r2) || r2 > 0, "after padding: %d", r2);
        free(more);
    }
}

Test(bl_http_parser, mutations, .timeout = 120)
{
    int counts[4] = {0}; /* parsed, more, 400, other errors */
    size_t nvalid = sizeof valid / sizeof *valid;
    for (int iter = 0; iter < 5000; iter++) {
        const char *src = valid[rnd() % nvalid].text;
        size_t len = strlen(src), cap = len + 64;
        char *buf = malloc(cap);
        memcpy(buf, src, len);
        int k = 1 + (int)(rnd() % 4);
        for (int j = 0; j < k; j++) mutate(buf, &len, cap);
        /* An exact-size copy, so that any read past the end is caught by ASan. */
        char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        check_any(exact, len);
        bl_http_head req;
        int r = parse(exact, len, &req);
        counts[r > 0 ? 0 : r == 0 ? 1 : r == BL_HTTP_PARSE_BAD_REQUEST ? 2 : 3]++;
        /* Split at a random point, and now and then at every point. */
        bl_http_head whole, part;
        int rw = parse(exact, len, &whole);
        int rp = parse_split(exact, len, len ? rnd() % (len + 1) : 0, &part);
        same(rw, &whole, rp, &part, exact, exact, "mutated split");
        if (iter % 50 == 0) check_incremental(exact, len);
        free(exact);
        free(buf);
    }
    /* The mutations reach every outcome, so the test is not vacuous. */
    cr_assert_gt(counts[0], 100);
    cr_assert_gt(counts[1], 10);
    cr_assert_gt(counts[2], 1000);
}

Test(bl_http_parser, random_bytes)
{
    char buf[256];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = rnd() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = rnd() % 4 ? (char)rnd() : special[rnd() % (sizeof special - 1)];
        char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        check_any(exact, len);
        free(exact);
    }
}
