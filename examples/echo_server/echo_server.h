/*
 * echo_server.h - a TCP echo server on the listener (beamline/listener.h):
 * a pool of acceptors and one process per connection, all supervised.
 *
 *   listener (Supervisor, rest_for_one)
 *   |-- conns      (DynamicSupervisor: one echo process per connection)
 *   |-- acceptors  (Supervisor: acceptor 0 .. N-1)
 *
 * The listener owns the sockets: a connection's socket is closed when its
 * process ends, however it ends.  The functions are called from a
 * process; the server runs in its own processes until echo_server_stop.
 */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <beamline.h>
#include <stdint.h>

/* What echo_server_stop gives connections to finish the echo in hand, ms. */
#define ECHO_STOP_MS 100

typedef struct echo_opts {
    const char *host;   /* numeric address; NULL = 127.0.0.1 */
    uint16_t port;      /* 0 = any free port */
    int acceptors;      /* 0 = the listener's default */
    uint32_t max_conns; /* open connections at most; 0 = the listener's 1024 */
    int64_t idle_ms;    /* a silent connection is closed after this long (0 = 60 s) */
} echo_opts;

/* A running server. */
typedef struct echo_server {
    bl_listener *listener; /* its listener (NULL once stopped) */
    uint16_t port;         /* where it listens */
} echo_server;

/* Starts the server (process only): 0, or a negative errno (bl_listener_start's). */
int echo_server_start(echo_server *srv, const echo_opts *opts);

/*
 * Stops it (process only): no new connections; each open one may finish
 * the echo in hand for ECHO_STOP_MS, then is closed.  0 or a negative errno.
 */
int echo_server_stop(echo_server *srv);

#endif
