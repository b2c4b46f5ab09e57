/*
 * http_parser.h - a bounded, incremental HTTP/1.x request parser.
 *
 * bl_http_parse reads the head of one request (request line and header
 * fields, up to the empty line) byte by byte with a small state machine.
 * It keeps its place in a bl_http_parser, so bytes that arrive in pieces are
 * each examined once: call it again with the same bytes plus the new ones
 * (the buffer may move between calls; only offsets are kept).  Every
 * decision depends only on the bytes before it, so a request split at any
 * boundary parses exactly as it does whole.
 *
 * The grammar is RFC 9112's, strictly: CRLF line ends (a bare LF or CR is
 * an error), one SP between the request line's parts, a token method, a
 * request target of visible ASCII in origin form ("/path?query"), absolute
 * form ("http://host/path"), "*" or, for CONNECT, authority form, the
 * version HTTP/1.0 or HTTP/1.1 (a later 1.x counts as 1.1; another major
 * version, "HTTP/2.0", is BL_HTTP_PARSE_VERSION, decided at its digit; any
 * other text an error), header names that are tokens followed at once by
 * ':', no line folding, and field values without control characters.
 * Empty lines before the request line are skipped.  Beyond the syntax it
 * rejects what would make the message's length ambiguous: a
 * Content-Length that is not all digits or appears twice, one together
 * with Transfer-Encoding, a Transfer-Encoding in HTTP/1.0 or sent twice,
 * and an HTTP/1.1 request with no Host or two.  The only transfer coding
 * understood is "chunked" on its own (the head says chunked; decoding the
 * body is the caller's); any other (gzip, "gzip, chunked", ...) is
 * BL_HTTP_PARSE_NOT_IMPLEMENTED.
 *
 * Limits: the head is at most max_head bytes (BL_HTTP_PARSE_HEADERS_TOO_LARGE
 * beyond, decided as soon as that many bytes have arrived without the end
 * of the head; BL_HTTP_PARSE_URI_TOO_LONG when they end inside the request
 * target), the body at most max_body bytes (BL_HTTP_PARSE_CONTENT_TOO_LARGE,
 * decided at the Content-Length field), and, when bl_http_parser_limits set
 * them, the request target at most max_target bytes
 * (BL_HTTP_PARSE_URI_TOO_LONG) and the header fields at most max_fields
 * (BL_HTTP_PARSE_HEADERS_TOO_LARGE).
 *
 * Header-only; no allocation; no dependency besides the C library.
 * Written here rather than taken from a library because it is the hot path
 * of every request: inlined into the connection loop it parses wrk's
 * 49-byte head in about 40 ns, 3-4x faster than Debian's libhttp-parser
 * (bench: http_parse_49b).  Every name carries bl_http_ (bl__http_ inside),
 * so the header can sit beside that library's /usr/include/http_parser.h.
 */
#ifndef BL_NET_HTTP_PARSER_H
#define BL_NET_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* bl_http_parse's results besides a head length (> 0): the status to answer with. */
#define BL_HTTP_PARSE_MORE              0      /* the head is not complete yet */
#define BL_HTTP_PARSE_BAD_REQUEST       (-400) /* malformed: answer 400 and close */
#define BL_HTTP_PARSE_CONTENT_TOO_LARGE (-413) /* Content-Length above max_body */
#define BL_HTTP_PARSE_URI_TOO_LONG      (-414) /* request target above max_target */
#define BL_HTTP_PARSE_HEADERS_TOO_LARGE (-431) /* head above max_head, or too many fields */
#define BL_HTTP_PARSE_NOT_IMPLEMENTED   (-501) /* a transfer coding other than chunked */
#define BL_HTTP_PARSE_VERSION           (-505) /* HTTP/x.y with a major version other than 1 */

/* The largest max_head bl_http_parser_init accepts (offsets are 32-bit, heads much smaller). */
#define BL_HTTP_PARSE_HEAD_LIMIT (1u << 20)

typedef enum bl_http_method_kind {
    BL_HTTP_GET = 0,   /* GET */
    BL_HTTP_HEAD = 1,  /* HEAD */
    BL_HTTP_OTHER = 2, /* any other token: method / method_len say which */
} bl_http_method_kind;

/* A parsed head.  The pointers point into the buffer given to bl_http_parse. */
typedef struct bl_http_head {
    bl_http_method_kind method; /* GET, HEAD or another method */
    const char *method_name;    /* the method as sent (a token) */
    size_t method_len;          /* its length */
    const char *target;         /* the request target as sent */
    size_t target_len;          /* its length */
    const char *path;           /* the target's path without the query ("/" for
                                   "http://host"); length 0 for "*" and authority form */
    size_t path_len;            /* its length */
    int minor;                  /* HTTP/1.minor: 0 or 1 (a later 1.x is 1) */
    bool keep_alive;            /* the connection stays open after the response */
    bool expect_continue;       /* "Expect: 100-continue" was sent */
    uint64_t content_length;    /* body bytes that follow the head (0 if none or chunked) */
    bool chunked;               /* the body follows in chunks (Transfer-Encoding: chunked) */
    size_t head_len;            /* bytes of the head, the final empty line included */
} bl_http_head;

/* Where a parse stands.  Fields are private; see bl_http_parser_init. */
typedef struct bl_http_parser {
    /* The limits, kept by bl_http_parser_reset. */
    uint32_t max_head;   /* limit on the head's bytes */
    uint32_t max_target; /* limit on the request target's bytes */
    uint32_t max_fields; /* limit on the header fields */
    uint64_t max_body;   /* limit on Content-Length */
    /* The parse, from pos on: zeroed for each request (keep it small: it is per request). */
    uint32_t pos;        /* bytes examined so far */
    uint32_t fields;     /* header fields seen */
    uint8_t state;       /* where in the grammar pos is */
    uint8_t vpos;        /* characters of "HTTP/x.y\r" matched */
    uint8_t minor;       /* the version's minor digit (clamped to 1) */
    uint8_t host_count;  /* Host fields seen */
    bool has_length;     /* a Content-Length field was seen */
    bool conn_close;     /* Connection: close */
    bool conn_keep;      /* Connection: keep-alive */
    bool expect;         /* Expect: 100-continue */
    bool has_te;         /* Transfer-Encoding: chunked was seen (no other is accepted) */
    int result;          /* the decision once made (state DONE or ERROR) */
    uint32_t method_off; /* the method: [method_off, method_end) */
    uint32_t method_end;
    uint32_t target_off; /* the target: [target_off, target_end) */
    uint32_t target_end;
    uint32_t name_off; /* the current header line's name: [name_off, name_end) */
    uint32_t name_end;
    uint32_t value_off; /* and its value, without surrounding whitespace */
    uint32_t value_end;
    uint64_t length; /* Content-Length */
} bl_http_parser;

/* ---- character classes ---- */

enum {
    BL__HTTP_C_TCHAR = 1, /* a token character (RFC 9110 5.6.2) */
    BL__HTTP_C_VCHAR = 2, /* a visible ASCII character (request target) */
    BL__HTTP_C_FIELD = 4, /* a field value character: VCHAR, obs-text, SP, HTAB */
};

/* clang-format off */
static const uint8_t bl__http_class[256] = {
    ['\t'] = BL__HTTP_C_FIELD,
    [' '] = BL__HTTP_C_FIELD,
    ['!'] = 7, ['"'] = 6, ['#' ... '\''] = 7, ['('] = 6, [')'] = 6, ['*' ... '+'] = 7,
    [','] = 6, ['-' ... '.'] = 7, ['/'] = 6, ['0' ... '9'] = 7, [':' ... '@'] = 6,
    ['A' ... 'Z'] = 7, ['['] = 6, ['\\'] = 6, [']'] = 6, ['^' ... '`'] = 7,
    ['a' ... 'z'] = 7, ['{'] = 6, ['|'] = 7, ['}'] = 6, ['~'] = 7,
    [0x80 ... 0xff] = BL__HTTP_C_FIELD,
};
/* clang-format on */

/* ---- the interface ---- */

/*
 * Prepares p for a request of at most max_head head bytes (1 to
 * BL_HTTP_PARSE_HEAD_LIMIT; larger is clamped) and max_body body bytes.
 */
static inline void bl_http_parser_init(bl_http_parser *p, size_t max_head, uint64_t max_body)
{
    memset(&p->pos, 0, sizeof *p - offsetof(bl_http_parser, pos));
    if (max_head < 1) max_head = 1;
    if (max_head > BL_HTTP_PARSE_HEAD_LIMIT) max_head = BL_HTTP_PARSE_HEAD_LIMIT;
    p->max_head = (uint32_t)max_head;
    p->max_body = max_body;
    p->max_target = p->max_head;
    p->max_fields = UINT32_MAX;
}

/*
 * Tightens the limits of an initialised p: the request target at most
 * max_target bytes (0: up to max_head) and at most max_fields header fields
 * (0: no count).  bl_http_parser_reset keeps them.
 */
static inline void bl_http_parser_limits(bl_http_parser *p, size_t max_target, uint32_t max_fields)
{
    p->max_target = max_target && max_target < p->max_head ? (uint32_t)max_target : p->max_head;
    p->max_fields = max_fields ? max_fields : UINT32_MAX;
}

/* Makes p ready for the next request on the connection, with the same limits. */
static inline void bl_http_parser_reset(bl_http_parser *p)
{
    memset(&p->pos, 0, sizeof *p - offsetof(bl_http_parser, pos));
}

/*
 * Parses the request whose bytes so far are buf[0..len): len never shrinks
 * between calls on one request and the bytes already given do not change
 * (buf itself may move).  Returns
 *   > 0                            the head is complete: its length; *req is
 *                                  filled and req->content_length body bytes
 *                                  follow it (to be read or skipped);
 *   BL_HTTP_PARSE_MORE (0)            more bytes are needed;
 *   BL_HTTP_PARSE_BAD_REQUEST         malformed (see the header comment);
 *   BL_HTTP_PARSE_CONTENT_TOO_LARGE   Content-Length above max_body;
 *   BL_HTTP_PARSE_HEADERS_TOO_LARGE   max_head bytes without the end of the head,
 *                                     or over max_fields fields;
 *   BL_HTTP_PARSE_URI_TOO_LONG        a request target over max_target, or
 *                                     max_head bytes inside it;
 *   BL_HTTP_PARSE_NOT_IMPLEMENTED     a transfer coding other than chunked;
 *   BL_HTTP_PARSE_VERSION             a major version other than 1.
 * After a decision, further calls return it again (and refill *req).
 * Bytes after the head (a body, pipelined requests) are not looked at.
 */
static inline int bl_http_parse(bl_http_parser *p, const char *buf, size_t len, bl_http_head *req);

/* ---- the implementation ---- */

enum {
    BL__HTTP_S_START,     /* before the request line (empty lines allowed) */
    BL__HTTP_S_START_LF,  /* an empty line's LF */
    BL__HTTP_S_METHOD,    /* in the method */
    BL__HTTP_S_TARGET0,   /* the target's first character */
    BL__HTTP_S_TARGET,    /* in the target */
    BL__HTTP_S_VERSION,   /* "HTTP/1.x\r" */
    BL__HTTP_S_REQ_LF,    /* the request line's LF */
    BL__HTTP_S_LINE,      /* the start of a header line, or the final CRLF */
    BL__HTTP_S_NAME,      /* in a header name */
    BL__HTTP_S_VALUE_OWS, /* whitespace before a value */
    BL__HTTP_S_VALUE,     /* in a value */
    BL__HTTP_S_LINE_LF,   /* a header line's LF */
    BL__HTTP_S_END_LF,    /* the final LF */
    BL__HTTP_S_DONE,      /* decided: the head is complete */
    BL__HTTP_S_ERROR,     /* decided: an error */
};

/* Case-insensitive comparison of s[0..n) with the lower-case lit. */
static inline bool bl__http_ieq(const unsigned char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c != (unsigned char)lit[i]) return false;
    }
    return true;
}

static inline int bl__http_fail(bl_http_parser *p, int status)
{
    p->state = BL__HTTP_S_ERROR;
    p->result = status;
    return status;
}

/* Connection: a comma-separated list of options, of which close and keep-alive matter. */
static inline void bl__http_connection(bl_http_parser *p, const unsigned char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
        if (bl__http_ieq(v + s, i - s, "close")) p->conn_close = true;
        if (bl__http_ieq(v + s, i - s, "keep-alive")) p->conn_keep = true;
    }
}

/* A complete header line: what it means for framing and the connection.  0 or an error. */
static inline int bl__http_field(bl_http_parser *p, const unsigned char *b)
{
    const unsigned char *name = b + p->name_off;
    size_t nlen = p->name_end - p->name_off;
    const unsigned char *v = b + p->value_off;
    size_t vlen = p->value_end > p->value_off ? p->value_end - p->value_off : 0;
    switch (nlen) {
    case 4:
        if (bl__http_ieq(name, nlen, "host") && ++p->host_count > 1)
            return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
        break;
    case 6:
        if (bl__http_ieq(name, nlen, "expect") && bl__http_ieq(v, vlen, "100-continue"))
            p->expect = true;
        break;
    case 10:
        if (bl__http_ieq(name, nlen, "connection")) bl__http_connection(p, v, vlen);
        break;
    case 14:
        if (!bl__http_ieq(name, nlen, "content-length")) break;
        /* One field, digits only: anything else could frame the body two ways. */
        if (p->has_length || vlen == 0) return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
        p->has_length = true;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            uint64_t d = (uint64_t)(v[i] - '0');
            if (p->length > (UINT64_MAX - d) / 10) {
                p->length = UINT64_MAX; /* saturate: certainly above max_body */
                continue;
            }
            p->length = p->length * 10 + d;
        }
        if (p->length > p->max_body) return bl__http_fail(p, BL_HTTP_PARSE_CONTENT_TOO_LARGE);
        break;
    case 17:
        if (!bl__http_ieq(name, nlen, "transfer-encoding")) break;
        /* Twice would chunk twice; HTTP/1.0 has no transfer codings (RFC 9112 6.1). */
        if (p->has_te || p->minor == 0 || vlen == 0)
            return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
        /* Only "chunked" alone: anything else is a coding we do not decode. */
        if (!bl__http_ieq(v, vlen, "chunked"))
            return bl__http_fail(p, BL_HTTP_PARSE_NOT_IMPLEMENTED);
        p->has_te = true;
        break;
    }
    return 0;
}

/* The request target just ended: is its form one the method may use? 0 or an error. */
static inline int bl__http_target(bl_http_parser *p, const unsigned char *b)
{
    const unsigned char *t = b + p->target_off;
    size_t n = p->target_end - p->target_off;
    if (t[0] == '/') return 0;
    if (n == 1 && t[0] == '*') return 0;
    if ((n > 7 && bl__http_ieq(t, 7, "http://")) || (n > 8 && bl__http_ieq(t, 8, "https://")))
        return 0;
    if (bl__http_ieq(b + p->method_off, p->method_end - p->method_off, "connect")) return 0;
    return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
}

/* The head is complete at pos: checks what needs the whole head, fills *req. */
static inline int bl__http_done(bl_http_parser *p, const char *buf, bl_http_head *req)
{
    if (p->state != BL__HTTP_S_DONE) {
        /* RFC 9112 3.2: an HTTP/1.1 request must name its host. */
        if (p->minor >= 1 && p->host_count == 0) return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
        /* Both framings at once: a smuggling attempt as often as not (RFC 9112 6.3). */
        if (p->has_te && p->has_length) return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
        p->state = BL__HTTP_S_DONE;
        p->result = (int)p->pos;
    }
    const char *m = buf + p->method_off;
    size_t mlen = p->method_end - p->method_off;
    req->method = mlen == 3 && memcmp(m, "GET", 3) == 0    ? BL_HTTP_GET
                  : mlen == 4 && memcmp(m, "HEAD", 4) == 0 ? BL_HTTP_HEAD
                                                           : BL_HTTP_OTHER;
    req->method_name = m;
    req->method_len = mlen;
    req->target = buf + p->target_off;
    req->target_len = p->target_end - p->target_off;
    /* The path: from the first '/' after "scheme://" in absolute form, up to the query. */
    const char *t = req->target, *end = t + req->target_len, *path = t;
    if (t[0] != '/') {
        const char *s = memchr(t, ':', req->target_len);
        path = NULL;
        if (s && end - s > 3 && s[1] == '/' && s[2] == '/' && t[0] != '*') {
            path = memchr(s + 3, '/', (size_t)(end - s - 3));
            if (!path) path = end;
        }
    }
    if (!path) {
        req->path = t;
        req->path_len = 0;
    } else if (path == end) {
        req->path = "/";
        req->path_len = 1;
    } else {
        const char *q = memchr(path, '?', (size_t)(end - path));
        req->path = path;
        req->path_len = (size_t)((q ? q : end) - path);
    }
    req->minor = p->minor;
    req->keep_alive = p->minor >= 1 ? !p->conn_close : p->conn_keep && !p->conn_close;
    req->expect_continue = p->expect;
    req->content_length = p->length;
    req->chunked = p->has_te;
    req->head_len = p->pos;
    return p->result;
}

static inline int bl_http_parse(bl_http_parser *p, const char *buf, size_t len, bl_http_head *req)
{
    const unsigned char *b = (const unsigned char *)buf;
    if (p->state == BL__HTTP_S_DONE) return bl__http_done(p, buf, req);
    if (p->state == BL__HTTP_S_ERROR) return p->result;
    size_t end = len < p->max_head ? len : p->max_head;
    size_t i = p->pos;
    while (i < end) {
        unsigned char c = b[i];
        switch (p->state) {
        case BL__HTTP_S_START:
            if (c == '\r') {
                p->state = BL__HTTP_S_START_LF;
                break;
            }
            if (!(bl__http_class[c] & BL__HTTP_C_TCHAR))
                return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->method_off = (uint32_t)i;
            p->state = BL__HTTP_S_METHOD;
            break;
        case BL__HTTP_S_START_LF:
            if (c != '\n') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->state = BL__HTTP_S_START;
            break;
        case BL__HTTP_S_METHOD:
            while (bl__http_class[c] & BL__HTTP_C_TCHAR) {
                if (++i == end) goto out;
                c = b[i];
            }
            if (c != ' ') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->method_end = (uint32_t)i;
            p->state = BL__HTTP_S_TARGET0;
            break;
        case BL__HTTP_S_TARGET0:
            if (!(bl__http_class[c] & BL__HTTP_C_VCHAR))
                return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->target_off = (uint32_t)i;
            p->state = BL__HTTP_S_TARGET;
            break;
        case BL__HTTP_S_TARGET:
            while (bl__http_class[c] & BL__HTTP_C_VCHAR) {
                if (++i == end) goto out;
                c = b[i];
            }
            if (c != ' ') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->target_end = (uint32_t)i;
            if (i - p->target_off > p->max_target)
                return bl__http_fail(p, BL_HTTP_PARSE_URI_TOO_LONG);
            if (bl__http_target(p, b)) return p->result;
            p->state = BL__HTTP_S_VERSION;
            break;
        case BL__HTTP_S_VERSION:
            /* "HTTP/1." then one digit, then CR; another major digit is 505 (decided on
             * the mismatch, so the usual path pays nothing for it). */
            if (p->vpos < 7) {
                if (c != (unsigned char)"HTTP/1."[p->vpos])
                    return bl__http_fail(p, p->vpos == 5 && c >= '0' && c <= '9'
                                                ? BL_HTTP_PARSE_VERSION
                                                : BL_HTTP_PARSE_BAD_REQUEST);
            } else if (p->vpos == 7) {
                if (c < '0' || c > '9') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
                p->minor = c == '0' ? 0 : 1;
            } else {
                if (c != '\r') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
                p->state = BL__HTTP_S_REQ_LF;
            }
            p->vpos++;
            break;
        case BL__HTTP_S_REQ_LF:
        case BL__HTTP_S_LINE_LF:
            if (c != '\n') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            if (p->state == BL__HTTP_S_LINE_LF && bl__http_field(p, b)) return p->result;
            p->state = BL__HTTP_S_LINE;
            break;
        case BL__HTTP_S_LINE:
            if (c == '\r') {
                p->state = BL__HTTP_S_END_LF;
                break;
            }
            /* A name, never whitespace: obsolete line folding is rejected. */
            if (!(bl__http_class[c] & BL__HTTP_C_TCHAR))
                return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            if (++p->fields > p->max_fields)
                return bl__http_fail(p, BL_HTTP_PARSE_HEADERS_TOO_LARGE);
            p->name_off = (uint32_t)i;
            p->state = BL__HTTP_S_NAME;
            break;
        case BL__HTTP_S_NAME:
            while (bl__http_class[c] & BL__HTTP_C_TCHAR) {
                if (++i == end) goto out;
                c = b[i];
            }
            /* No whitespace between the name and the colon (RFC 9112 5.1). */
            if (c != ':') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->name_end = (uint32_t)i;
            p->value_off = p->value_end = (uint32_t)i + 1;
            p->state = BL__HTTP_S_VALUE_OWS;
            break;
        case BL__HTTP_S_VALUE_OWS:
            if (c == ' ' || c == '\t') {
                p->value_off = p->value_end = (uint32_t)i + 1;
                break;
            }
            p->state = BL__HTTP_S_VALUE;
            continue; /* the same byte, as a value character */
        case BL__HTTP_S_VALUE:
            while (bl__http_class[c] & BL__HTTP_C_FIELD) {
                if (c != ' ' && c != '\t') p->value_end = (uint32_t)i + 1;
                if (++i == end) goto out;
                c = b[i];
            }
            if (c != '\r') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->state = BL__HTTP_S_LINE_LF;
            break;
        case BL__HTTP_S_END_LF:
            if (c != '\n') return bl__http_fail(p, BL_HTTP_PARSE_BAD_REQUEST);
            p->pos = (uint32_t)(i + 1);
            return bl__http_done(p, buf, req);
        }
        i++;
    }
out:
    p->pos = (uint32_t)i;
    if (p->state == BL__HTTP_S_TARGET && i - p->target_off > p->max_target)
        return bl__http_fail(p, BL_HTTP_PARSE_URI_TOO_LONG);
    /* max_head bytes seen and the head goes on: it is too large (its target, if still in it). */
    if (i >= p->max_head)
        return bl__http_fail(p, p->state == BL__HTTP_S_TARGET ? BL_HTTP_PARSE_URI_TOO_LONG
                                                              : BL_HTTP_PARSE_HEADERS_TOO_LARGE);
    return BL_HTTP_PARSE_MORE;
}

#endif /* BL_NET_HTTP_PARSER_H */
