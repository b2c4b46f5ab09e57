/*
 * http_client.h - the worker's HTTP/1.1 client.  Private to the example:
 * the worker (worker.c) calls dm_http_fetch; the response head parser and
 * the chunked decoder are declared here too so that the test can check
 * them on their own.
 *
 * A plain GET with Connection: close.  The body is delimited by
 * Content-Length, by the connection's close, or by chunked transfer
 * encoding; up to five redirects to http://, https:// or absolute-path
 * locations are followed.  Host names are resolved with getaddrinfo on the
 * dirty-work pool (numeric addresses need no lookup), and each address is
 * tried in turn.  An https:// source runs the same exchange over TLS
 * (beamline/tls.h): the socket is handed to bl_tls_connect, with the host as
 * SNI and as the name the certificate must carry, and the exchange reads and
 * writes through a transport, a pair of functions and their context, which
 * is the connection's or the plain socket's.  No proxies, no resumption of
 * partial downloads.
 */
#ifndef DM_HTTP_CLIENT_H
#define DM_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "url.h"

struct dm_worker;

/* How the exchange moves bytes: the plain socket's calls, or the TLS connection's. */
typedef struct dm_transport {
    ssize_t (*read)(void *ctx, void *buf, size_t len, int64_t timeout_ms); /* 0 at the end */
    ssize_t (*write)(void *ctx, const void *buf, size_t len,
                     int64_t timeout_ms); /* all, or -errno */
    void *ctx;                            /* the worker (plain) or the bl_tls_conn */
} dm_transport;

/*
 * Downloads w's http source into its destination, through buf[0..cap),
 * which must hold at least a 16 KiB response head.  0 when the body is
 * complete, or -1 with w->error saying why.
 */
int dm_http_fetch(struct dm_worker *w, char *buf, size_t cap);
/* Ends w's connection, if any: close_notify and close for TLS, a close otherwise. */
void dm_http_close(struct dm_worker *w);

/* ---- the response head ---- */

/* A parsed response head. */
typedef struct dm_response {
    int status;                /* the status code */
    char reason[64];           /* the reason phrase, cut to fit */
    int64_t length;            /* Content-Length, -1 if none */
    bool chunked;              /* Transfer-Encoding: chunked */
    char coding[64];           /* another transfer coding, "" if none */
    char location[DM_URL_MAX]; /* Location, "" if none */
} dm_response;

/* Where the head ends (past its blank line) in buf[0..n), or 0 if not yet. */
size_t dm_http_head_end(const char *buf, size_t n);
/* Parses the head buf[0..n): 0, or -1 when it is malformed. */
int dm_http_parse_head(const char *buf, size_t n, dm_response *r);

/* ---- chunked bodies ---- */

/* Where a chunked decoder is. */
enum {
    DM_CH_SIZE = 0,     /* hex digits of a chunk's size */
    DM_CH_EXT,          /* a chunk extension, up to the end of the line */
    DM_CH_SIZE_LF,      /* the size line's LF */
    DM_CH_DATA,         /* left bytes of data */
    DM_CH_DATA_CR,      /* the CRLF after the data */
    DM_CH_DATA_LF,      /* ... its LF */
    DM_CH_TRAILER,      /* the start of a trailer line (or of the final blank line) */
    DM_CH_TRAILER_LINE, /* inside a trailer field: skipped */
    DM_CH_END_LF,       /* the final blank line's LF */
    DM_CH_DONE,         /* the body is complete */
};

/* A chunked decoder; zeroed to start. */
typedef struct dm_chunked {
    int state;     /* DM_CH_* */
    int digits;    /* of the size read so far */
    uint64_t left; /* the size being read, then the data bytes left */
} dm_chunked;

/*
 * Decodes buf[0..len) in place, in any split of the body: the chunks' data
 * moves to the front.  Returns the data bytes, or -1 for a malformed body.
 * Bytes after the end (c->state == DM_CH_DONE) are ignored.
 */
ssize_t dm_chunked_feed(dm_chunked *c, char *buf, size_t len);

#endif
