/*
 * http_server.h - an HTTP/1.1 server: keep-alive, pipelining, one process
 * per connection, everything supervised.
 *
 *   http_server (Supervisor, rest_for_one)
 *   |-- conns       (DynamicSupervisor: one temporary child per connection)
 *   |-- acceptor 0 .. N-1 (transient; loop on bl_io_accept over one listener)
 *
 * GET (or HEAD) /plaintext answers "Hello, World!" and /json
 * {"message":"Hello, World!"}, the TechEmpower shapes; other paths get 404,
 * other methods on those two paths 405 (http_response.h).  Requests are
 * read with a bounded parser (http_parser.h): a malformed one gets 400, a
 * head over max_head bytes 431, a body over max_body 413, and the
 * connection closes after the answer.  Bodies sent with Content-Length are
 * read and skipped.
 *
 * Timeouts: a keep-alive connection waiting for its next request closes
 * after idle_ms; a request whose head is not complete header_ms after its
 * first byte (or after the connection was accepted) gets 408 and the
 * connection closes, however slowly the bytes trickle in (slowloris); a
 * body (read and skipped) not complete body_ms after its head closes the
 * connection, however slowly it trickles in.
 *
 * Graceful shutdown (http_server_shutdown): stop accepting, close idle
 * connections, let connections in the middle of a request answer it (with
 * Connection: close), then stop the tree.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <beamline.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a connection's receive buffer; also the largest max_head. */
#define HTTP_IN_CAP 16384
/* Bytes of responses gathered before one send. */
#define HTTP_OUT_CAP 16384

typedef struct http_opts {
    const char *host;  /* numeric address to bind; NULL = 127.0.0.1 */
    uint16_t port;     /* 0 = any free port */
    int acceptors;     /* 0 = one per scheduler (at most 64) */
    int64_t idle_ms;   /* keep-alive idle timeout; 0 = 60 s, BL_INFINITY = none */
    int64_t header_ms; /* time to send a request's head; 0 = 10 s, BL_INFINITY = none */
    int64_t
        body_ms; /* time to send a request's body after its head; 0 = 30 s, BL_INFINITY = none */
    size_t max_head;    /* request line + headers, bytes; 0 = 8192 (at most HTTP_IN_CAP) */
    uint64_t max_body;  /* request body (skipped), bytes; 0 = 1 MiB */
    uint32_t max_conns; /* open connections at most; 0 = 65536 (more are closed at once) */
} http_opts;

/*
 * A slot's states.  BUSY: a connection with a request in hand (or just
 * accepted); IDLE: waiting for its next request; CLOSING: claimed by
 * shutdown, which is closing it.
 */
enum { HTTP_SLOT_FREE = 0, HTTP_SLOT_BUSY, HTTP_SLOT_IDLE, HTTP_SLOT_CLOSING };

/* One connection's place in the server's table (a cache line each). */
typedef struct http_slot {
    _Atomic uint32_t state; /* HTTP_SLOT_FREE, _BUSY, _IDLE or _CLOSING */
    bl_pid pid;             /* the connection process, written before it first goes IDLE */
} __attribute__((aligned(64))) http_slot;

/*
 * A running server.  Acceptors and connections read it, so it must stay
 * where it is (and valid) until http_server_shutdown has returned.
 */
typedef struct http_server {
    bl_pid sup;            /* the top supervisor */
    _Atomic bl_pid conns;  /* the connections' supervisor (changes if it restarts) */
    int lfd;               /* the listening socket */
    uint16_t port;         /* where it listens */
    int nacceptors;        /* acceptor processes */
    int64_t idle_ms;       /* keep-alive idle timeout (BL_INFINITY: none) */
    int64_t header_ms;     /* head timeout (BL_INFINITY: none) */
    int64_t body_ms;       /* body timeout (BL_INFINITY: none) */
    uint32_t max_head;     /* head limit */
    uint64_t max_body;     /* body limit */
    _Atomic bool draining; /* shutdown has begun */
    http_slot *slots;      /* one per possible connection */
    uint32_t nslots;       /* how many */
    _Atomic uint32_t hint; /* where the next slot search starts */
    _Atomic uint32_t live; /* slots in use: open connections */
} http_server;

/*
 * Starts the server (process only), linked to the caller.  Returns 0, or
 * -EINVAL (srv NULL, or a bad option: max_head above HTTP_IN_CAP, a
 * negative timeout other than BL_INFINITY, negative acceptors), -ENOMEM,
 * a listener error (-EADDRINUSE, -EINVAL for a host that is not a numeric
 * address, ...), -EPERM (not a process), or a supervisor start error.
 */
int http_server_start(http_server *srv, const http_opts *opts);

/*
 * Shuts the server down gracefully (process only, from a process other
 * than the server's own): stops accepting (the listener is shut down, so
 * new connections are refused), closes idle keep-alive connections, lets
 * each connection with a request in hand finish it (its response says
 * Connection: close), and waits up to timeout_ms (BL_INFINITY: no limit)
 * for them; then stops the supervision tree, which kills any connection
 * still open, and closes the listener.  Returns 0 when every connection
 * finished by itself, -ETIMEDOUT when some had to be killed, -EINVAL
 * (srv NULL or not running), -EPERM (not a process), or the supervisor's
 * stop error.  The server is stopped in every case but -EINVAL / -EPERM.
 */
int http_server_shutdown(http_server *srv, int64_t timeout_ms);

/* Open connections right now. */
static inline unsigned http_server_connections(http_server *srv)
{
    return atomic_load_explicit(&srv->live, memory_order_relaxed);
}

/* Milliseconds on the monotonic clock, the one every timeout above is measured on. */
int64_t http_now_ms(void);

#endif
