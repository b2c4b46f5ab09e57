/*
 * net/http_body.c - reading a request's body: by Content-Length, or
 * dechunked (RFC 9112 7.1) by a byte-at-a-time decoder that keeps its
 * place between reads, streamed to the handler or gathered whole.
 *
 * The body's bytes come from the connection's input buffer after the
 * head: the head itself (which the request's strings point into) is never
 * moved or overwritten while its handler runs.  Chunk extensions and
 * trailer fields are read and dropped (at most max_head bytes of them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_int.h"

/* The chunked decoder's states. */
enum {
    CS_SIZE,       /* hex digits of the chunk size */
    CS_EXT,        /* a chunk extension, up to CR */
    CS_SIZE_LF,    /* the size line's LF */
    CS_DATA,       /* left bytes of chunk data */
    CS_DATA_CR,    /* the CR after the data */
    CS_DATA_LF,    /* and its LF */
    CS_TRAILER,    /* the start of a trailer line, or the final CR */
    CS_TRAILER_IN, /* in a trailer line, up to CR */
    CS_TRAILER_LF, /* a trailer line's LF */
    CS_END_LF,     /* the final LF */
};

void bl__http_body_init(bl_http_req *req)
{
    if (req->h.chunked) {
        req->body = BL__HTTP_BODY_CHUNKED;
        req->chunk_state = CS_SIZE;
    } else if (req->h.content_length) {
        req->body = BL__HTTP_BODY_LENGTH;
        req->left = req->h.content_length;
    } else {
        req->body = BL__HTTP_BODY_NONE;
    }
    /* A client that asked for 100 Continue sends the body only once told to. */
    req->continue_sent = !req->h.expect_continue || req->body == BL__HTTP_BODY_NONE;
}

/* Reading failed: the status to answer (unless the handler does) and the error to return. */
static ssize_t body_fail(bl_http_req *req, int status, int err)
{
    req->body = BL__HTTP_BODY_FAILED;
    req->body_status = status;
    req->left = (uint64_t)-err; /* kept for the next call */
    return err;
}

/* Makes sure some body bytes are buffered: > 0, or the error (the request has failed). */
static ssize_t body_more(bl_http_req *req)
{
    bl__http_conn *c = req->c;
    if (c->start < c->have) return (ssize_t)(c->have - c->start);
    /* All consumed: start again right after the head, which stays where it is. */
    c->start = c->have = req->base;
    if (!req->continue_sent) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        req->continue_sent = true;
        int rc = bl__http_write(c, cont, sizeof cont - 1);
        if (rc) return body_fail(req, 0, rc);
    }
    ssize_t n = bl__http_fill(c, bl__http_until(c->body_deadline));
    if (n > 0) return n;
    if (n == -ETIMEDOUT) return body_fail(req, 408, -ETIMEDOUT);
    /* The peer closed (or reset) in the middle of the body. */
    return body_fail(req, 0, n == 0 ? -ECONNRESET : (int)n);
}

/*
 * A byte of a chunk extension or a trailer line, which are dropped: CR
 * moves to state on_cr.  False for a control character, or when they add
 * up to more than max_head bytes.
 */
static bool meta_byte(bl_http_req *req, unsigned char ch, int on_cr)
{
    if (++req->chunk_meta > req->c->o.max_head) return false;
    if (ch == '\r') req->chunk_state = on_cr;
    return ch == '\r' || ch >= ' ' || ch == '\t';
}

/* Dechunks into buf: bytes (> 0), 0 at the end, or an error. */
static ssize_t read_chunked(bl_http_req *req, char *buf, size_t len)
{
    bl__http_conn *c = req->c;
    size_t out = 0;
    for (;;) {
        if (c->start == c->have) {
            if (out) return (ssize_t)out; /* what we have, without waiting for more */
            ssize_t n = body_more(req);
            if (n < 0) return n;
        }
        if (req->chunk_state == CS_DATA) {
            size_t k = c->have - c->start;
            if (k > req->left) k = (size_t)req->left;
            if (k > len - out) k = len - out;
            memcpy(buf + out, c->in + c->start, k);
            c->start += k;
            out += k;
            req->left -= k;
            if (req->left == 0) req->chunk_state = CS_DATA_CR;
            if (out == len) return (ssize_t)out;
            continue;
        }
        unsigned char ch = (unsigned char)c->in[c->start++];
        switch (req->chunk_state) {
        case CS_SIZE: {
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d >= 0) {
                /* 16 digits hold any size; more could only be padding or an overflow. */
                if (++req->chunk_digits > 16) return body_fail(req, 400, -EBADMSG);
                req->left = req->left * 16 + (uint64_t)d;
            } else if (req->chunk_digits && (ch == ';' || ch == ' ' || ch == '\t')) {
                req->chunk_state = CS_EXT;
            } else if (req->chunk_digits && ch == '\r') {
                req->chunk_state = CS_SIZE_LF;
            } else {
                return body_fail(req, 400, -EBADMSG);
            }
            break;
        }
        case CS_EXT:
            if (!meta_byte(req, ch, CS_SIZE_LF)) return body_fail(req, 400, -EBADMSG);
            break;
        case CS_SIZE_LF:
            if (ch != '\n') return body_fail(req, 400, -EBADMSG);
            req->chunk_digits = 0;
            if (req->left == 0) {
                req->chunk_state = CS_TRAILER;
            } else if (req->left > c->o.max_body - req->body_read) {
                return body_fail(req, 413, -EMSGSIZE);
            } else {
                req->body_read += req->left; /* counted when announced: the limit holds early */
                req->chunk_state = CS_DATA;
            }
            break;
        case CS_DATA_CR:
            if (ch != '\r') return body_fail(req, 400, -EBADMSG);
            req->chunk_state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (ch != '\n') return body_fail(req, 400, -EBADMSG);
            req->chunk_state = CS_SIZE;
            break;
        case CS_TRAILER:
            req->chunk_state = ch == '\r' ? CS_END_LF : CS_TRAILER_IN;
            if (ch != '\r' && ch < ' ') return body_fail(req, 400, -EBADMSG);
            break;
        case CS_TRAILER_IN:
            if (!meta_byte(req, ch, CS_TRAILER_LF)) return body_fail(req, 400, -EBADMSG);
            break;
        case CS_TRAILER_LF:
            if (ch != '\n') return body_fail(req, 400, -EBADMSG);
            req->chunk_state = CS_TRAILER;
            break;
        case CS_END_LF:
            if (ch != '\n') return body_fail(req, 400, -EBADMSG);
            req->body = BL__HTTP_BODY_NONE;
            return (ssize_t)out;
        }
    }
}

ssize_t bl_http_read_body(bl_http_req *req, void *buf, size_t len)
{
    if (!req || (len && !buf)) return -EINVAL;
    if (req->body == BL__HTTP_BODY_FAILED) return -(ssize_t)req->left;
    if (req->body == BL__HTTP_BODY_NONE || len == 0) return 0;
    if (req->body == BL__HTTP_BODY_CHUNKED) return read_chunked(req, buf, len);
    bl__http_conn *c = req->c;
    ssize_t n = body_more(req);
    if (n < 0) return n;
    size_t k = (size_t)n < len ? (size_t)n : len;
    if (k > req->left) k = (size_t)req->left;
    memcpy(buf, c->in + c->start, k);
    c->start += k;
    req->left -= k;
    req->body_read += k;
    if (req->left == 0) req->body = BL__HTTP_BODY_NONE;
    return (ssize_t)k;
}

ssize_t bl_http_body(bl_http_req *req, const void **data)
{
    if (!req || !data) return -EINVAL;
    if (!req->whole_done) {
        uint64_t max = req->c->o.max_body;
        size_t cap = req->body == BL__HTTP_BODY_LENGTH ? (size_t)req->left + 1 : 16384;
        if (cap > max + 1) cap = (size_t)max + 1;
        for (;;) {
            if (!req->whole || req->whole_len == cap) {
                if (req->whole) cap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
                char *w = realloc(req->whole, cap);
                if (!w) return -ENOMEM;
                req->whole = w;
            }
            ssize_t n = bl_http_read_body(req, req->whole + req->whole_len, cap - req->whole_len);
            if (n < 0) return n;
            if (n == 0) break;
            req->whole_len += (size_t)n;
        }
        req->whole_done = true;
    }
    *data = req->whole;
    return (ssize_t)req->whole_len;
}

bool bl__http_body_skip(bl_http_req *req)
{
    if (req->body == BL__HTTP_BODY_FAILED) return false;
    if (req->body == BL__HTTP_BODY_NONE) return true;
    /* The client still waits for 100 Continue: its body will not come. */
    if (!req->continue_sent) return false;
    char scratch[4096];
    for (;;) {
        ssize_t n = bl_http_read_body(req, scratch, sizeof scratch);
        if (n == 0) return req->body == BL__HTTP_BODY_NONE;
        if (n < 0) return false;
    }
}
