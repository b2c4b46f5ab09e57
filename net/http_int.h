/*
 * net/http_int.h - what the HTTP files share: the connection, the request
 * object, and the internal calls between the connection loop
 * (http_conn.c), the body reader (http_body.c), the responses
 * (http_resp.c), the router and request accessors (http_router.c) and the
 * groups (http_group.c).
 *
 * Ownership: a connection (and each request in it) belongs to the process
 * in bl_http_serve_conn; nothing here is shared between processes but the
 * router (read only) and the group (atomics, http_group.c).
 */
#ifndef BL_NET_HTTP_INT_H
#define BL_NET_HTTP_INT_H

#include <beamline/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http_parser.h"

/* Bytes of response headers set by a handler, at most. */
#define BL__HTTP_HDR_CAP 4096
/* Bytes of responses gathered before one send (pipelined answers go together). */
#define BL__HTTP_OUT_CAP 16384
/* Receive space beyond max_head, for bodies and pipelined requests. */
#define BL__HTTP_IN_EXTRA 16384

/* How the request's body is framed, and where reading it stands. */
enum {
    BL__HTTP_BODY_NONE,    /* no body, or all of it read */
    BL__HTTP_BODY_LENGTH,  /* Content-Length: left bytes to go */
    BL__HTTP_BODY_CHUNKED, /* chunked: the decoder's state in chunk_state */
    BL__HTTP_BODY_FAILED,  /* reading failed: status says how to answer */
};

/* Where a response stands. */
enum {
    BL__HTTP_RESP_NONE,      /* nothing sent yet */
    BL__HTTP_RESP_STREAMING, /* a chunked (or close-delimited) stream is open */
    BL__HTTP_RESP_DONE,      /* complete */
};

/* A named path parameter of the matched route: the name in the pattern, the value in the path. */
typedef struct bl__http_param {
    const char *name;  /* in the router's pattern */
    size_t name_len;   /* its length */
    const char *value; /* in the request's path */
    size_t value_len;  /* its length */
} bl__http_param;

/* One header field of the request: offsets from the head's start. */
typedef struct bl__http_hfield {
    uint32_t name_off;  /* the name */
    uint32_t name_len;  /* its length */
    uint32_t value_off; /* the value, without surrounding whitespace */
    uint32_t value_len; /* its length */
} bl__http_hfield;

typedef struct bl__http_conn bl__http_conn;

struct bl_http_req {
    bl__http_conn *c;                          /* its connection */
    bl_http_head h;                            /* the parsed head; pointers into c->in */
    const char *head;                          /* the head's first byte (in c->in) */
    bl__http_param params[BL_HTTP_MAX_PARAMS]; /* the route's parameters */
    unsigned nparams;                          /* how many */
    bl__http_hfield *fields;                   /* the header fields, once indexed (c->fields) */
    int nfields;                               /* how many; -1 until indexed */
    int body;                                  /* BL__HTTP_BODY_* */
    uint64_t left;                             /* bytes left of the body or of the chunk */
    uint64_t body_read;                        /* body bytes handed out so far */
    int chunk_state;                           /* where the chunked decoder is (http_body.c) */
    unsigned chunk_digits;                     /* hex digits of the chunk size line so far */
    size_t chunk_meta;                         /* bytes of extensions and trailers so far */
    size_t base;                /* in c->in: where the body begins (after the head) */
    int body_status;            /* the status a failed body read calls for */
    bool continue_sent;         /* "100 Continue" went out (or was not needed) */
    char *whole;                /* bl_http_body's buffer (malloc), or NULL */
    size_t whole_len;           /* its bytes */
    bool whole_done;            /* it holds the whole body */
    int resp;                   /* BL__HTTP_RESP_* */
    int status;                 /* the status sent (0 before) */
    bool close;                 /* the connection ends after this response */
    bool chunked_out;           /* the stream is chunked (else close-delimited) */
    char hdr[BL__HTTP_HDR_CAP]; /* header lines set by the handler */
    size_t hdr_len;             /* bytes in hdr */
    char ctype[256];            /* Content-Type's value, if set */
    size_t ctype_len;           /* its length (0: not set) */
};

/* A connection: its socket, buffers, options and the request in hand. */
struct bl__http_conn {
    int fd;                       /* the socket (the caller's) */
    const bl_http_transport *tp;  /* how bytes move; NULL: the socket itself */
    bl_http_opts o;               /* the options, defaults filled in */
    const bl_http_router *router; /* the routes */
    char *in;                     /* received bytes: [start, have) not consumed yet */
    size_t in_cap;                /* its size: max_head + BL__HTTP_IN_EXTRA */
    size_t start;                 /* first byte not consumed */
    size_t have;                  /* end of the received bytes */
    char out[BL__HTTP_OUT_CAP];   /* responses gathered before one send */
    size_t out_len;               /* bytes in out */
    bool failed;                  /* a send or receive failed: nothing more moves */
    int error;                    /* that failure (-errno) */
    bool draining;                /* the group shuts down: close after this request */
    int64_t body_deadline;        /* when the body must be in (-1: no limit) */
    bl__http_hfield *fields;      /* room to index max_headers fields */
    bl_http_req *req;             /* the request being handled (rq), or NULL */
    bl_http_req rq;               /* the one request object, reused */
    uint32_t slot;                /* the group's slot, when o.group */
};

/* ---- http_conn.c: moving bytes ---- */

/* ms on the monotonic clock. */
int64_t bl__http_now_ms(void);
/* ms left until deadline (-1: no deadline, BL_INFINITY), never negative. */
int64_t bl__http_until(int64_t deadline);
/* Sends what out holds: 0 or the failure (then c->failed). */
int bl__http_flush(bl__http_conn *c);
/* Gathers or sends len bytes: into out if they fit, else after a flush, directly. */
int bl__http_write(bl__http_conn *c, const void *data, size_t len);
/* Receives more bytes at in + have (flushing first): bytes, 0 at the end, -errno. */
ssize_t bl__http_fill(bl__http_conn *c, int64_t timeout_ms);

/* ---- http_body.c ---- */

/* Sets up req's body reading from its parsed head. */
void bl__http_body_init(bl_http_req *req);
/* Reads and drops what is left of the body (before the next request): true if it all came. */
bool bl__http_body_skip(bl_http_req *req);

/* ---- http_resp.c ---- */

/* Answers status with the standard text body ("Not Found\n"); close: the connection ends. */
int bl__http_error(bl__http_conn *c, bl_http_req *req, int status, bool close);
/* Completes req's response after its handler returned rc. */
int bl__http_finish(bl_http_req *req, int rc);
/* Answers a request that matched no handler: 404 or 405 (allow: the Allow header's value). */
int bl__http_not_routed(bl_http_req *req, const char *allow);

/* ---- http_router.c ---- */

/*
 * Finds req's handler: fills req->params and *h / *arg, or, when none
 * matches, sets *h NULL and writes the methods the path allows into allow
 * (NUL-terminated, "" when the path matches nothing).
 */
void bl__http_route(const bl_http_router *r, bl_http_req *req, bl_http_handler *h, void **arg,
                    char *allow, size_t allow_cap);

/* ---- http_group.c ---- */

/* Joins g with the caller and fd: 0 and *slot, -EBUSY (full), -ESHUTDOWN. */
int bl__http_group_join(bl_http_group *g, int fd, uint32_t *slot);
/* The connection waits for its next request: false when g is shutting down. */
bool bl__http_group_idle(bl_http_group *g, uint32_t slot);
/* Bytes came while idle: true, or false when the shutdown closed it meanwhile. */
bool bl__http_group_busy(bl_http_group *g, uint32_t slot);
/* True once g's shutdown began. */
bool bl__http_group_draining(const bl_http_group *g);
/* The connection is gone (returned, or killed: from a cleanup handler). */
void bl__http_group_leave(bl_http_group *g, uint32_t slot);

/* A timeout in ms: >= 0 or BL_INFINITY. */
bool bl__http_timeout_ok(int64_t ms);
/* The connection options are valid (limits, timeouts, transport): what serve_conn checks. */
bool bl__http_opts_ok(const bl_http_opts *o);

#endif /* BL_NET_HTTP_INT_H */
