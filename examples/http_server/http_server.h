/*
 * http_server.h - an HTTP/1.1 server on beamline/http.h: GET (or HEAD)
 * /plaintext answers "Hello, World!" and /json {"message":"Hello, World!"},
 * the TechEmpower shapes; other paths get 404, other methods on those two
 * paths 405.  Everything else (keep-alive, pipelining, limits and their
 * statuses, timeouts, a process per connection under the listener's
 * supervisors, TLS, graceful shutdown) is bl_http_start's.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <beamline.h>
#include <beamline/http.h>
#include <stdint.h>

typedef struct http_opts {
    const char *host;      /* numeric address to bind; NULL = 127.0.0.1 */
    uint16_t port;         /* 0 = any free port */
    int acceptors;         /* 0 = the listener's default */
    int64_t idle_ms;       /* keep-alive idle timeout; 0 = 60 s, BL_INFINITY = none */
    int64_t header_ms;     /* time to send a request's head; 0 = 10 s */
    int64_t body_ms;       /* time to send a request's body after its head; 0 = 30 s */
    size_t max_head;       /* request line + headers, bytes; 0 = 8192 */
    uint64_t max_body;     /* request body (read and dropped), bytes; 0 = 1 MiB */
    uint32_t max_conns;    /* open connections at most (more wait); 0 = 65536 */
    const char *cert_file; /* https: PEM certificate chain, or NULL for http */
    const char *key_file;  /* https: its private key */
} http_opts;

/* A running server: valid until http_server_shutdown has returned. */
typedef struct http_server {
    bl_http_server *s;   /* the server */
    bl_http_router *r;   /* its routes */
    uint16_t port;       /* where it listens */
    unsigned nacceptors; /* acceptor processes */
} http_server;

/*
 * Starts the server (process only).  0, or -EINVAL (srv NULL, a bad
 * option), -ENOMEM, -EPERM, or bl_http_start's error (-EADDRINUSE ...).
 */
int http_server_start(http_server *srv, const http_opts *opts);

/*
 * Shuts the server down gracefully (bl_http_stop): 0 when every connection
 * finished by itself within timeout_ms, -ETIMEDOUT when some were killed,
 * -EINVAL (srv NULL or not running), -EPERM (not a process).
 */
int http_server_shutdown(http_server *srv, int64_t timeout_ms);

/* Connections being served right now, and those of them idle between requests. */
unsigned http_server_connections(const http_server *srv);
unsigned http_server_idle(const http_server *srv);

/*
 * The listener's supervisors (beamline/listener.h), for tests that kill
 * them: its top one, and child i of it (0: the connections' supervisor,
 * 1: the acceptors' one); BL_PID_NONE when there is none running.
 */
bl_pid http_server_sup(const http_server *srv);
bl_pid http_server_child(const http_server *srv, int i);

/* Milliseconds on the monotonic clock, the one every timeout above is measured on. */
int64_t http_now_ms(void);

#endif
