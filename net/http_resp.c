/*
 * net/http_resp.c - responses: the head (status line, Server, Date,
 * Content-Type, framing, the handler's headers, Connection), bodies from
 * memory, from a file (spliced when the socket is plain or kernel TLS) or
 * streamed in chunks, the standard error answers, and what happens when a
 * handler returns without having answered.
 *
 * Heads are built with memcpy and a small integer formatter, not printf:
 * this is the per-request path.  The Date header's text is kept per
 * scheduler thread and rebuilt when the second changes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net/http_int.h"

/* How a response's body is framed. */
enum {
    F_NONE,    /* no body at all (1xx, 204, 304) */
    F_LENGTH,  /* Content-Length */
    F_CHUNKED, /* Transfer-Encoding: chunked */
    F_CLOSE,   /* until the connection closes (a stream to an HTTP/1.0 client) */
};

const char *bl_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/* The Date header's value for this thread's current second. */
typedef struct date_cache {
    time_t sec;    /* the second text says */
    char text[80]; /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (room for any int) */
} date_cache;

static __thread date_cache tls_date;

/*
 * Not inlined: a process may move to another scheduler thread whenever it
 * parks, and must then read that thread's copy, never a cached address.
 */
__attribute__((noinline)) static const char *date_now(void)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    date_cache *d = &tls_date;
    time_t now = time(NULL);
    if (d->sec != now) {
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(d->text, sizeof d->text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        d->sec = now;
    }
    return d->text;
}

/* Appends s[0..n) at *p. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof lit - 1)

/* Appends v in base 10 (base 16 with hex) at p. */
static char *put_u64(char *p, uint64_t v, bool hex)
{
    char tmp[24];
    int n = 0;
    unsigned base = hex ? 16 : 10;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* The parts of a head. */
typedef struct head_spec {
    int status;         /* the status code */
    int framing;        /* F_* */
    uint64_t length;    /* with F_LENGTH */
    const char *ctype;  /* Content-Type, or NULL */
    size_t ctype_len;   /* its length */
    const char *extra;  /* further header lines, each ending in CRLF */
    size_t extra_len;   /* their bytes */
    bool close;         /* Connection: close */
    bool keep_alive_10; /* Connection: keep-alive (an HTTP/1.0 client that keeps it) */
} head_spec;

static int write_head(bl__http_conn *c, const head_spec *s)
{
    char buf[512 + sizeof c->rq.hdr + sizeof c->rq.ctype];
    char *p = PUT_LIT(buf, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)s->status, false);
    *p++ = ' ';
    const char *reason = bl_http_reason(s->status);
    p = put(p, reason, strlen(reason));
    p = PUT_LIT(p, "\r\n");
    size_t server_len = strlen(c->o.server);
    if (server_len && server_len < 128) {
        p = PUT_LIT(p, "Server: ");
        p = put(p, c->o.server, server_len);
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_LIT(p, "Date: ");
    p = put(p, date_now(), 29);
    p = PUT_LIT(p, "\r\n");
    if (s->ctype) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, s->ctype, s->ctype_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (s->framing == F_LENGTH) {
        p = PUT_LIT(p, "Content-Length: ");
        p = put_u64(p, s->length, false);
        p = PUT_LIT(p, "\r\n");
    } else if (s->framing == F_CHUNKED) {
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    }
    p = put(p, s->extra, s->extra_len);
    if (s->close)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (s->keep_alive_10)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    return bl__http_write(c, buf, (size_t)(p - buf));
}

/*
 * Whether the connection ends after req's response: decided as its head is
 * written.  A body the client holds back until told to continue will not
 * come, nor will one whose reading failed, so the connection cannot go on.
 */
static bool ends_after(bl_http_req *req)
{
    bl__http_conn *c = req->c;
    if (c->o.group && bl__http_group_draining(c->o.group)) c->draining = true;
    if (c->draining || req->body == BL__HTTP_BODY_FAILED ||
        (!req->continue_sent && req->body != BL__HTTP_BODY_NONE))
        req->close = true;
    return req->close;
}

/* The head of req's response: framing (F_*) and, with F_LENGTH, len. */
static int req_head(bl_http_req *req, int status, int framing, uint64_t len)
{
    head_spec s = {.status = status,
                   .framing = framing,
                   .length = len,
                   .ctype = req->ctype_len ? req->ctype : NULL,
                   .ctype_len = req->ctype_len,
                   .extra = req->hdr,
                   .extra_len = req->hdr_len};
    s.close = ends_after(req);
    s.keep_alive_10 = !s.close && req->h.minor == 0;
    req->status = status;
    return write_head(req->c, &s);
}

/* A status a handler may send: 200..999 (1xx are the connection's). */
static bool status_ok(int status)
{
    return status >= 200 && status <= 999;
}

/* 204 and 304 have no body; a HEAD response announces one it does not carry. */
static bool bodiless(int status)
{
    return status == 204 || status == 304;
}

int bl_http_set_header(bl_http_req *req, const char *name, const char *value)
{
    if (!req || !name || !value || !*name) return -EINVAL;
    if (req->resp != BL__HTTP_RESP_NONE) return -EALREADY;
    size_t nl = strlen(name), vl = strlen(value);
    for (size_t i = 0; i < nl; i++)
        if (!(bl__http_class[(unsigned char)name[i]] & BL__HTTP_C_TCHAR)) return -EINVAL;
    for (size_t i = 0; i < vl; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == 0) return -EINVAL;
    const unsigned char *n = (const unsigned char *)name;
    if (bl__http_ieq(n, nl, "content-length") || bl__http_ieq(n, nl, "transfer-encoding") ||
        bl__http_ieq(n, nl, "connection"))
        return -EINVAL;
    if (bl__http_ieq(n, nl, "content-type")) {
        if (vl > sizeof req->ctype) return -ENOSPC;
        memcpy(req->ctype, value, vl);
        req->ctype_len = vl;
        return 0;
    }
    if (req->hdr_len + nl + vl + 4 > sizeof req->hdr) return -ENOSPC;
    char *p = req->hdr + req->hdr_len;
    p = put(p, name, nl);
    p = PUT_LIT(p, ": ");
    p = put(p, value, vl);
    p = PUT_LIT(p, "\r\n");
    req->hdr_len = (size_t)(p - req->hdr);
    return 0;
}

int bl_http_reply(bl_http_req *req, int status, const void *body, size_t len)
{
    if (!req || (len && !body) || !status_ok(status)) return -EINVAL;
    if (req->resp != BL__HTTP_RESP_NONE) return -EALREADY;
    req->resp = BL__HTTP_RESP_DONE;
    bool none = bodiless(status);
    int rc = req_head(req, status, none ? F_NONE : F_LENGTH, len);
    if (rc == 0 && !none && req->h.method != BL_HTTP_HEAD && len)
        rc = bl__http_write(req->c, body, len);
    return rc;
}

/* Sends len bytes of fd from off through the connection's send: read, then send. */
static int copy_file(bl__http_conn *c, int fd, off_t off, size_t len)
{
    int rc = bl__http_flush(c);
    while (rc == 0 && len) {
        size_t k = len < sizeof c->out ? len : sizeof c->out;
        ssize_t n = bl_io_pread(fd, c->out, k, off, BL_INFINITY);
        if (n <= 0) return n < 0 ? (int)n : -EIO;
        c->out_len = (size_t)n;
        rc = bl__http_flush(c);
        off += n;
        len -= (size_t)n;
    }
    return rc;
}

/* Splices len bytes of fd from off to the socket, each MiB given send_ms. */
static int splice_file(bl__http_conn *c, int fd, off_t off, size_t len)
{
    int rc = bl__http_flush(c);
    while (rc == 0 && len) {
        size_t k = len < (1u << 20) ? len : 1u << 20;
        ssize_t n = bl_io_sendfile(c->fd, fd, off, k, c->o.send_ms);
        /* A short count: the next call says why (0 is the file's end). */
        if (n <= 0) return n < 0 ? (int)n : -EIO;
        off += n;
        len -= (size_t)n;
    }
    return rc;
}

int bl_http_reply_file(bl_http_req *req, int status, int fd, off_t offset, size_t len)
{
    if (!req || fd < 0 || offset < 0 || !status_ok(status) || bodiless(status)) return -EINVAL;
    if (req->resp != BL__HTTP_RESP_NONE) return -EALREADY;
    req->resp = BL__HTTP_RESP_DONE;
    bl__http_conn *c = req->c;
    int rc = req_head(req, status, F_LENGTH, len);
    if (rc || req->h.method == BL_HTTP_HEAD || len == 0) return rc;
    rc = !c->tp || c->tp->fd_is_raw ? splice_file(c, fd, offset, len)
                                    : copy_file(c, fd, offset, len);
    /* The peer was promised len bytes: after a short body the connection is over. */
    if (rc && !c->failed) {
        c->failed = true;
        c->error = rc;
    }
    return rc;
}

int bl_http_stream_begin(bl_http_req *req, int status)
{
    if (!req || !status_ok(status) || bodiless(status)) return -EINVAL;
    if (req->resp != BL__HTTP_RESP_NONE) return -EALREADY;
    /* HTTP/1.0 has no chunks: the body ends when the connection does. */
    req->chunked_out = req->h.minor >= 1;
    if (!req->chunked_out) req->close = true;
    req->resp = req->h.method == BL_HTTP_HEAD ? BL__HTTP_RESP_DONE : BL__HTTP_RESP_STREAMING;
    return req_head(req, status, req->chunked_out ? F_CHUNKED : F_CLOSE, 0);
}

int bl_http_stream_write(bl_http_req *req, const void *data, size_t len)
{
    if (!req || (len && !data)) return -EINVAL;
    if (req->h.method == BL_HTTP_HEAD && req->resp == BL__HTTP_RESP_DONE && req->status)
        return 0; /* a HEAD response has no body to stream */
    if (req->resp != BL__HTTP_RESP_STREAMING) return -EINVAL;
    bl__http_conn *c = req->c;
    if (len == 0) return c->failed ? c->error : 0; /* an empty chunk would end the body */
    if (!req->chunked_out) return bl__http_write(c, data, len);
    char line[24];
    char *p = put_u64(line, len, true);
    p = PUT_LIT(p, "\r\n");
    int rc = bl__http_write(c, line, (size_t)(p - line));
    if (rc == 0) rc = bl__http_write(c, data, len);
    if (rc == 0) rc = bl__http_write(c, "\r\n", 2);
    return rc;
}

int bl_http_stream_end(bl_http_req *req)
{
    if (!req) return -EINVAL;
    if (req->h.method == BL_HTTP_HEAD && req->resp == BL__HTTP_RESP_DONE && req->status) return 0;
    if (req->resp != BL__HTTP_RESP_STREAMING) return -EINVAL;
    req->resp = BL__HTTP_RESP_DONE;
    if (!req->chunked_out) return bl__http_flush(req->c);
    return bl__http_write(req->c, "0\r\n\r\n", 5);
}

int bl__http_error(bl__http_conn *c, bl_http_req *req, int status, bool close)
{
    char body[64];
    const char *reason = bl_http_reason(status);
    size_t len = (size_t)snprintf(body, sizeof body, "%s\n", reason);
    if (req) {
        static const char plain[] = "text/plain";
        memcpy(req->ctype, plain, sizeof plain - 1);
        req->ctype_len = sizeof plain - 1;
        if (close) req->close = true;
        return bl_http_reply(req, status, body, len);
    }
    /* Before any request was parsed: no handler headers, and the connection ends. */
    head_spec s = {.status = status,
                   .framing = F_LENGTH,
                   .length = len,
                   .ctype = "text/plain",
                   .ctype_len = 10,
                   .extra = "",
                   .close = true};
    int rc = write_head(c, &s);
    return rc ? rc : bl__http_write(c, body, len);
}

int bl__http_not_routed(bl_http_req *req, const char *allow)
{
    if (*allow) (void)bl_http_set_header(req, "Allow", allow);
    return bl__http_error(req->c, req, *allow ? 405 : 404, false);
}

int bl__http_finish(bl_http_req *req, int rc)
{
    bl__http_conn *c = req->c;
    if (req->resp == BL__HTTP_RESP_STREAMING) {
        /* A stream cut by a failing handler must not look complete: no last chunk. */
        if (rc < 0)
            req->close = true;
        else
            (void)bl_http_stream_end(req);
    } else if (req->resp == BL__HTTP_RESP_NONE) {
        int status = rc < 0 ? 500 : req->body == BL__HTTP_BODY_FAILED ? req->body_status : 204;
        if (status == 204) {
            req->hdr_len = 0;
            req->ctype_len = 0;
            (void)bl_http_reply(req, 204, NULL, 0);
        } else if (status) {
            req->hdr_len = 0;
            (void)bl__http_error(c, req, status, true);
        } else {
            req->close = true; /* the peer went away: nobody to answer */
        }
    }
    return c->failed ? c->error : 0;
}
