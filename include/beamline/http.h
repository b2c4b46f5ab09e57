/*
 * beamline/http.h - HTTP/1.1 servers: a router, requests, responses.
 *
 * bl_http_start starts a server: a listener (beamline/listener.h) whose
 * handler process for each connection does the TLS handshake if the server
 * has TLS (beamline/tls.h, ALPN "http/1.1") and calls bl_http_serve_conn
 * with the server's router and group; bl_http_stop stops it gracefully.
 * bl_http_serve_conn can also be called alone, on a socket from elsewhere:
 * it runs
 * the connection's keep-alive loop (request after request, pipelined ones
 * answered in order) until the peer closes, a limit or timeout ends it, or
 * its group shuts down, and returns.  Each request is matched by a router
 * (method and path, with ":name" parameters and a fallback) and handed to
 * its handler, which reads what it needs (headers by name, the body whole
 * or streamed) and answers with one response (from memory, from a file
 * without copying, or streamed in chunks).
 *
 * Limits and the statuses they answer, after which the connection closes:
 *   400 malformed request, bad chunked framing, both Content-Length and
 *       Transfer-Encoding, Transfer-Encoding in HTTP/1.0
 *   408 a request head not complete header_ms after its first byte (or the
 *       connection's start), however slowly it trickles in
 *   413 a body over max_body (Content-Length, or the chunks read so far)
 *   414 a request target over max_target
 *   431 a head over max_head bytes, or over max_headers fields
 *   501 a transfer coding other than chunked
 *   505 a major version other than 1 ("HTTP/2.0")
 * A connection idle between requests for idle_ms closes without a word;
 * a response that the peer does not read within send_ms (per write) ends
 * the connection and the handler's writes fail with -ETIMEDOUT: memory
 * stays bounded by the connection's buffers whatever the response's size.
 *
 * Processes: everything here is process only (-EPERM elsewhere) but the
 * router's and group's set-up and teardown.  A router is built first and
 * read by every connection: do not change it while connections use it.
 * A request (bl_http_req) lives during its handler's call only, in the
 * connection's process; its strings point into the connection's buffer and
 * are not NUL-terminated (each comes with its length).
 *
 * Where C differs from Erlang/Elixir (cowboy, Plug):
 *  - The request object is not a value: the handler's calls change it (the
 *    body read, the response sent); nothing is copied per request.
 *  - A handler that returns without replying gets 204 (as cowboy), or the
 *    status its body reads failed with (400, 408, 413) or 500 when it
 *    returns a negative value.
 *  - There are no middlewares or streams handlers; the router is a table.
 *  - The connection's process is the caller's (the listener's); killing it
 *    mid-response is safe: this module's memory and descriptors (a file
 *    body's pipe) are released by cleanup handlers, the socket stays the
 *    caller's to close (keep it under a bl_cleanup).
 *
 * Where a server (bl_http_start) differs from cowboy's and Go's net/http:
 *  - As cowboy (a ranch listener, a process per connection), not as Go (a
 *    goroutine per connection, no supervision): the tree is the listener's,
 *    with its strict max_connections (Go has no limit; connections past it
 *    wait in the kernel's backlog, unaccepted).  There is no HTTP/2 (ALPN
 *    offers http/1.1 only) and no request process apart from the
 *    connection's (cowboy runs each request in a process of its own).
 *  - bl_http_stop is Go's Server.Shutdown with a deadline, then Close: it
 *    stops accepting, closes idle keep-alive connections at once, lets each
 *    connection with a request in hand answer it with Connection: close,
 *    and at the timeout kills the connection processes left.  cowboy's
 *    stop_listener kills at once (ranch's graceful stop is by hand).
 *  - The server is not linked to the caller (as a ranch listener, unlike a
 *    Go Server's goroutine, which has no owner either): it runs until
 *    bl_http_stop.  Stop it from the process that supervises its use.
 *  - The TLS handshake runs in the connection's process, bounded by
 *    handshake_ms (Go: TLSHandshakeTimeout on the client only; the server's
 *    ReadHeaderTimeout covers it).  A client that never finishes it is
 *    dropped without a response.
 */
/* Outside the guard: beamline.h includes the other headers and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_HTTP_H
#define BEAMLINE_HTTP_H

#include <sys/types.h>

#include "beamline/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One request and its response, during its handler's call. */
typedef struct bl_http_req bl_http_req;
/* Routes: method + path pattern -> handler, and a fallback. */
typedef struct bl_http_router bl_http_router;
/* Connections that shut down together (graceful shutdown). */
typedef struct bl_http_group bl_http_group;

/*
 * A handler: answers req (bl_http_reply and friends).  Returns 0, or a
 * negative errno: the connection answers 500 if nothing was sent yet, and
 * closes.
 */
typedef int (*bl_http_handler)(bl_http_req *req, void *arg);

/* ---- the router ---- */

/* Path parameters a route may have at most (":id" segments). */
#define BL_HTTP_MAX_PARAMS 8

/* A new empty router in *out: 0, -EINVAL, -ENOMEM.  Any thread. */
int bl_http_router_new(bl_http_router **out);
/* Frees r (NULL is ignored).  No connection may use it any more. */
void bl_http_router_free(bl_http_router *r);
/*
 * Adds a route, tried in the order added: method (an exact token such as
 * "GET", or NULL for any; a GET route also answers HEAD, without the body)
 * and pattern, an absolute path whose segments are literal, ":name" (one
 * non-empty segment, the parameter name) or, last, "*" (the rest of the
 * path, possibly empty).  The strings are copied.  0, -EINVAL (bad
 * pattern, more than BL_HTTP_MAX_PARAMS parameters, NULL h), -ENOMEM.
 * A path that matches some route but with another method gets 405 with an
 * Allow header; a path no route matches goes to the fallback (404 without).
 */
int bl_http_route(bl_http_router *r, const char *method, const char *pattern, bl_http_handler h,
                  void *arg);
/* The handler for requests no route's path matches.  0 or -EINVAL. */
int bl_http_router_fallback(bl_http_router *r, bl_http_handler h, void *arg);

/* ---- serving a connection ---- */

/*
 * How a connection's bytes move, when not plainly through its descriptor
 * (TLS through a library): recv and send as bl_io_recv / bl_io_send
 * (bytes, 0 at the peer's end, -errno, -ETIMEDOUT), on ctx.
 */
typedef struct bl_http_transport {
    ssize_t (*recv)(void *ctx, void *buf, size_t len, int64_t timeout_ms);       /* read some */
    ssize_t (*send)(void *ctx, const void *buf, size_t len, int64_t timeout_ms); /* write some */
    void *ctx;      /* their first argument */
    bool fd_is_raw; /* the descriptor itself carries the plaintext (kernel TLS): file bodies
                       may be spliced to it; otherwise they are read and sent through send */
} bl_http_transport;

/* A connection's options; zero fields take the defaults given. */
typedef struct bl_http_opts {
    const bl_http_transport *transport; /* NULL: bl_io_recv / bl_io_send on the descriptor */
    bl_http_group *group;               /* the group it belongs to, or NULL */
    size_t max_head;                    /* request line + headers, bytes; 0 = 8192, at most
                                           1 MiB */
    size_t max_target;                  /* request target, bytes; 0 = 4096 */
    uint32_t max_headers;               /* header fields; 0 = 100 */
    uint64_t max_body;                  /* request body, bytes; 0 = 8 MiB */
    int64_t header_ms;                  /* time to send a head; 0 = 10 s, BL_INFINITY = none */
    int64_t idle_ms;                    /* time between requests; 0 = 60 s, BL_INFINITY */
    int64_t body_ms;                    /* time to send a body after its head; 0 = 30 s */
    int64_t send_ms;                    /* time for each write of a response; 0 = 30 s */
    uint32_t max_requests;              /* requests per connection; 0 = no limit */
    const char *server;                 /* the Server header; NULL = "beamline", "" = none */
} bl_http_opts;

/*
 * Serves HTTP/1.1 on the connected socket fd with router r until the
 * connection ends, and returns: 0 when it ended in order (the peer closed,
 * Connection: close, HTTP/1.0 without keep-alive, a limit or timeout
 * answered, max_requests reached, the group's shutdown), -errno when the
 * transport failed (-ECONNRESET, -EPIPE, -ETIMEDOUT for a peer that did not
 * read), -EBUSY (the group is full) and -ESHUTDOWN (it is shutting down)
 * without reading anything, -EINVAL (bad fd, NULL r, a negative timeout
 * other than BL_INFINITY), -ENOMEM, -EPERM outside a process.  fd stays
 * open: the caller closes it.
 */
int bl_http_serve_conn(int fd, const bl_http_router *r, const bl_http_opts *o);

/* ---- the request ---- */

/* The method as sent ("GET"), its length in *len (may be NULL). */
const char *bl_http_method(const bl_http_req *req, size_t *len);
/* The target's path without the query ("/users/7"), "/" for "http://host". */
const char *bl_http_path(const bl_http_req *req, size_t *len);
/* The query after '?', without it; NULL (and *len 0) when there is none. */
const char *bl_http_query(const bl_http_req *req, size_t *len);
/* The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
int bl_http_version(const bl_http_req *req);
/*
 * The value of the first header field named name (any case), without
 * surrounding whitespace; NULL when there is none.
 */
const char *bl_http_header(bl_http_req *req, const char *name, size_t *len);
/*
 * Header field number i (0 first), as sent: 0 with its name and value, or
 * -ENOENT past the last one.  Any pointer may be NULL.
 */
int bl_http_header_at(bl_http_req *req, size_t i, const char **name, size_t *name_len,
                      const char **value, size_t *value_len);
/* The path parameter of the matched route (":id" -> "id"), or NULL. */
const char *bl_http_param(const bl_http_req *req, const char *name, size_t *len);
/* The body's length: Content-Length, 0 with none, -1 when chunked (not known). */
int64_t bl_http_body_length(const bl_http_req *req);
/*
 * Streams the body: up to len bytes into buf (dechunked), 0 at its end.
 * Sends "100 Continue" first when the client asked for it.  -EMSGSIZE past
 * max_body (answered 413 unless the handler replies), -EBADMSG for bad
 * chunked framing (400), -ETIMEDOUT past body_ms (408), -ECONNRESET when
 * the peer went away, -EINVAL.
 */
ssize_t bl_http_read_body(bl_http_req *req, void *buf, size_t len);
/*
 * Reads the whole body (up to max_body) into a buffer owned by req (freed
 * after the handler) and points *data at it: its length, or the errors of
 * bl_http_read_body.  Again after the end: the same buffer.
 */
ssize_t bl_http_body(bl_http_req *req, const void **data);

/* ---- the response ---- */

/*
 * Adds a response header field (copied; at most 4 KiB of them in all): 0,
 * -EINVAL (a name that is not a token, CR or LF in the value, or the
 * framing headers Content-Length, Transfer-Encoding, Connection, which the
 * connection writes itself), -ENOSPC, -EALREADY once the response started.
 * Content-Type, if set, is written first.
 */
int bl_http_set_header(bl_http_req *req, const char *name, const char *value);
/*
 * Sends the response: status (100..999; 1xx other than 101 are refused:
 * -EINVAL), the headers set, Content-Length and body (none for HEAD, 204
 * and 304).  0, -EALREADY (already answered), or the transport's error.
 */
int bl_http_reply(bl_http_req *req, int status, const void *body, size_t len);
/*
 * As bl_http_reply with len bytes of file fd from offset as the body, sent
 * without copying (splice) on a plain or kernel-TLS socket, else read and
 * sent in 64 KiB pieces.  -EIO when the file ended before len bytes (the
 * connection then closes: the peer was promised len).
 */
int bl_http_reply_file(bl_http_req *req, int status, int fd, off_t offset, size_t len);
/*
 * Starts a response streamed in chunks (Transfer-Encoding: chunked; to an
 * HTTP/1.0 client, no framing and the connection closes after it): 0 or an
 * error as bl_http_reply.  Each bl_http_stream_write sends one chunk (an
 * empty one is skipped); bl_http_stream_end sends the last one.  A handler
 * that returns without ending the stream ends it.
 */
int bl_http_stream_begin(bl_http_req *req, int status);
int bl_http_stream_write(bl_http_req *req, const void *data, size_t len);
int bl_http_stream_end(bl_http_req *req);
/* The reason phrase of a status ("Not Found"), "" for unknown ones. */
const char *bl_http_reason(int status);

/* ---- groups: graceful shutdown ---- */

/* A group of at most max_conns connections (0 = 65536) in *out: 0, -EINVAL, -ENOMEM. */
int bl_http_group_new(bl_http_group **out, uint32_t max_conns);
/*
 * Shuts the group's connections down gracefully (process only): new ones
 * are refused (-ESHUTDOWN), those idle between requests are closed now,
 * those with a request in hand answer it with Connection: close and end;
 * waits up to timeout_ms (BL_INFINITY: no limit) for all of them, then
 * kills the processes of those left and waits for them.  0 when every
 * connection ended by itself, -ETIMEDOUT when some were killed, -EINVAL
 * (NULL g, bad timeout), -EALREADY (already shut down), -EPERM.  Stop
 * accepting first (the listener's job), so that none arrives meanwhile.
 */
int bl_http_group_shutdown(bl_http_group *g, int64_t timeout_ms);
/* Connections in the group now, and those of them idle between requests. */
unsigned bl_http_group_connections(const bl_http_group *g);
unsigned bl_http_group_idle(const bl_http_group *g);
/* Frees g: 0, or -EBUSY while connections still use it (NULL: 0). */
int bl_http_group_free(bl_http_group *g);

/* ---- servers: a listener serving a router ---- */

/* A running server (opaque): valid from bl_http_start until bl_http_stop returns. */
typedef struct bl_http_server bl_http_server;

/* A server's options; zeroed fields take the defaults of the structs they embed. */
typedef struct bl_http_server_opts {
    const bl_http_router *router; /* required; must outlive the server and not change */
    bl_listener_opts listener;    /* host, port, acceptors, max_connections, idle_ms ...;
                                     handler and arg must be NULL (the server's own) */
    bl_http_opts http;            /* each connection's limits and timeouts; transport and
                                     group must be NULL (the server's own) */
    const char *cert_file;        /* TLS: PEM certificate chain (with key_file), or NULL */
    const char *key_file;         /* TLS: its private key */
    bl_tls_ctx *tls;              /* TLS: a server context to use instead of the files (the
                                     server takes a reference of its own), or NULL */
    int64_t handshake_ms;         /* TLS handshake's timeout; 0 = 10 s, BL_INFINITY = none */
} bl_http_server_opts;

/* A server's counts (bl_http_server_info). */
typedef struct bl_http_server_info {
    bl_listener_info listener;   /* the listener's: port, connections accepted, active ... */
    unsigned connections;        /* connections serving HTTP (past their TLS handshake) */
    unsigned idle;               /* of which idle between requests */
    uint64_t handshake_failures; /* TLS handshakes that failed or timed out */
} bl_http_server_info;

/*
 * Starts a server (process only): the listener bound and accepting, each
 * connection served by bl_http_serve_conn in its own process, over TLS
 * when cert_file/key_file or tls is given.  *out is the handle.  Returns 0,
 * or -EINVAL (out, o or router NULL, handler, arg, transport or group set,
 * cert_file without key_file or with tls, a client context, a negative
 * handshake_ms other than BL_INFINITY, or what bl_listener_start refuses),
 * the errors of bl_tls_server_ctx (bl_tls_error(NULL) says why), of
 * bl_listener_start (-EADDRINUSE ...), -ENOMEM, -EPERM.  Nothing is left
 * open or running after an error.
 */
int bl_http_start(bl_http_server **out, const bl_http_server_opts *o);

/*
 * Stops s gracefully (process only, not from one of its connections):
 * stops accepting (new connections are refused), closes the connections
 * idle between requests, lets those with a request in hand answer it (with
 * Connection: close) and end, and waits up to timeout_ms (0: not at all,
 * BL_INFINITY: for ever) for them and for handshakes in progress; then
 * kills the connection processes left, closes the listening socket and
 * frees s.  A response already being written is either finished or, at
 * the timeout only, cut off with its connection.  Returns 0 when every
 * connection ended by itself, -ETIMEDOUT when some were killed (s is
 * freed either way), or -EINVAL (s NULL, a bad timeout), -EPERM (not a
 * process), -EBUSY (a listener control call is running): nothing done.
 */
int bl_http_stop(bl_http_server *s, int64_t timeout_ms);

/* Fills *out: 0, or -EINVAL (s or out NULL).  Any thread; the counts are a moment's. */
int bl_http_server_info_get(const bl_http_server *s, bl_http_server_info *out);

/*
 * The server's listener, for bl_listener_suspend / _resume /
 * _set_max_connections (not bl_listener_stop: that is bl_http_stop's).
 */
bl_listener *bl_http_server_listener(const bl_http_server *s);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_HTTP_H */
