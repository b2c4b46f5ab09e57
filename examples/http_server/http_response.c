/*
 * http_response.c - the HTTP server's prebuilt responses (see
 * http_response.h): the table of what each kind says, the per-thread copy
 * rebuilt once a second with its Date header, and routing.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http_response.h"

static const struct {
    const char *status; /* the status line's code and reason */
    const char *type;   /* Content-Type */
    const char *extra;  /* further header lines */
    const char *body;   /* the body */
} kinds[HTTP_R_COUNT] = {
    [HTTP_R_PLAIN] = {"200 OK", "text/plain", "", "Hello, World!"},
    [HTTP_R_JSON] = {"200 OK", "application/json", "", "{\"message\":\"Hello, World!\"}"},
    [HTTP_R_400] = {"400 Bad Request", "text/plain", "", "Bad Request\n"},
    [HTTP_R_404] = {"404 Not Found", "text/plain", "", "Not Found\n"},
    [HTTP_R_405] = {"405 Method Not Allowed", "text/plain", "Allow: GET, HEAD\r\n",
                    "Method Not Allowed\n"},
    [HTTP_R_408] = {"408 Request Timeout", "text/plain", "", "Request Timeout\n"},
    [HTTP_R_413] = {"413 Content Too Large", "text/plain", "", "Content Too Large\n"},
    [HTTP_R_431] = {"431 Request Header Fields Too Large", "text/plain", "",
                    "Request Header Fields Too Large\n"},
};

static const char *const conn_header[HTTP_V_COUNT] = {"", "Connection: close\r\n",
                                                      "Connection: keep-alive\r\n"};

static __thread http_resp_cache tls_cache;

/* RFC 9110's IMF-fixdate, without the locale: "Sun, 06 Nov 1994 08:49:37 GMT". */
static void http_date(char *out, size_t len, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void cache_build(http_resp_cache *c, time_t now)
{
    char date[40];
    http_date(date, sizeof date, now);
    for (int k = 0; k < HTTP_R_COUNT; k++) {
        size_t body = strlen(kinds[k].body);
        for (int v = 0; v < HTTP_V_COUNT; v++) {
            http_resp *r = &c->r[k][v];
            int n = snprintf(r->text, sizeof r->text,
                             "HTTP/1.1 %s\r\nServer: beamline\r\nDate: %s\r\n"
                             "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n%s",
                             kinds[k].status, date, kinds[k].type, body, kinds[k].extra,
                             conn_header[v], kinds[k].body);
            r->len = (uint16_t)n;
            r->body = (uint16_t)body;
        }
    }
    c->sec = now;
}

/*
 * Not inlined (even with link-time optimisation): a caller that may have
 * moved to another scheduler thread since its last call must get that
 * thread's copy, never a cached thread-local address.
 */
__attribute__((noinline)) const http_resp_cache *http_responses(void)
{
    http_resp_cache *c = &tls_cache;
    time_t now = time(NULL);
    if (c->sec != now) cache_build(c, now);
    return c;
}

int http_route(const bl_http_head *req)
{
    int k;
    if (req->path_len == 10 && memcmp(req->path, "/plaintext", 10) == 0)
        k = HTTP_R_PLAIN;
    else if (req->path_len == 5 && memcmp(req->path, "/json", 5) == 0)
        k = HTTP_R_JSON;
    else
        return HTTP_R_404;
    return req->method == BL_HTTP_OTHER ? HTTP_R_405 : k;
}

int http_error_kind(int parse_result)
{
    switch (parse_result) {
    case BL_HTTP_PARSE_CONTENT_TOO_LARGE:
        return HTTP_R_413;
    case BL_HTTP_PARSE_HEADERS_TOO_LARGE:
        return HTTP_R_431;
    default:
        return HTTP_R_400;
    }
}
