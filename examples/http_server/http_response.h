/*
 * http_response.h - the HTTP server's responses, prebuilt: every answer the
 * server gives (200 for /plaintext and /json, 400, 404, 405, 408, 413,
 * 431), each with each Connection header, as ready-to-copy bytes.  Private
 * to the example (http_server.c copies them into its output buffer).
 *
 * Each scheduler thread keeps its own copy and rebuilds it when the second
 * changes, for the Date header, so nothing is shared between threads and
 * nothing is built per request.
 */
#ifndef HTTP_RESPONSE_H
#define HTTP_RESPONSE_H

#include <stdint.h>
#include <time.h>

#include "../../net/http_parser.h"

/* What a response says. */
enum {
    HTTP_R_PLAIN, /* 200 "Hello, World!" (text/plain) */
    HTTP_R_JSON,  /* 200 {"message":"Hello, World!"} (application/json) */
    HTTP_R_400,   /* Bad Request */
    HTTP_R_404,   /* Not Found */
    HTTP_R_405,   /* Method Not Allowed (with Allow: GET, HEAD) */
    HTTP_R_408,   /* Request Timeout */
    HTTP_R_413,   /* Content Too Large */
    HTTP_R_431,   /* Request Header Fields Too Large */
    HTTP_R_COUNT,
};
/* The Connection header a response carries: none, close, keep-alive (for HTTP/1.0). */
enum { HTTP_V_NONE, HTTP_V_CLOSE, HTTP_V_KEEP, HTTP_V_COUNT };

/* One prebuilt response: head and body, ready to copy. */
typedef struct http_resp {
    uint16_t len;   /* bytes in all */
    uint16_t body;  /* of which body (left out for HEAD) */
    char text[240]; /* the bytes */
} http_resp;

/* Every response, for the second `sec`.  Each scheduler thread has its own. */
typedef struct http_resp_cache {
    time_t sec;                              /* the second the Date headers say */
    http_resp r[HTTP_R_COUNT][HTTP_V_COUNT]; /* by kind, then Connection header */
} http_resp_cache;

/*
 * The calling thread's responses, rebuilt at most once a second.  Call it
 * again after anything that can yield: a process may move to another
 * scheduler thread whenever it parks, and must not keep using the previous
 * thread's copy.
 */
const http_resp_cache *http_responses(void);
/* The response kind (HTTP_R_*) for a request that parsed. */
int http_route(const bl_http_head *req);
/* The response kind for a request bl_http_parse refused (its negative result). */
int http_error_kind(int parse_result);

#endif
