/*
 * echo_server.h - a supervised TCP echo server: one process per
 * connection, a pool of acceptors, everything under one supervisor.
 *
 *   echo_server (Supervisor, one_for_one)
 *   |-- conns     (DynamicSupervisor: one temporary child per connection)
 *   |-- acceptor 1 .. N (loop on bl_io_accept, hand each socket to conns)
 *
 * The functions are called from a process; the server runs in its own
 * processes until echo_server_stop.
 */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <beamline.h>
#include <stdint.h>

typedef struct echo_opts {
    const char *host; /* NULL = 127.0.0.1 */
    uint16_t port;    /* 0 = any free port */
    int acceptors;    /* 0 = one per scheduler */
    int64_t idle_ms;  /* a silent connection is closed after this long (0 = 60 s) */
} echo_opts;

/* The running server; acceptors read it, so it must outlive the server. */
typedef struct echo_server {
    bl_pid sup;           /* the top supervisor */
    _Atomic bl_pid conns; /* the connections' dynamic supervisor (new after a restart) */
    int lfd;              /* the listening socket */
    uint16_t port;        /* where it listens */
    int64_t idle_ms;      /* per-connection idle timeout */
} echo_server;

/* Starts the server (process only): 0, or a negative errno. */
int echo_server_start(echo_server *srv, const echo_opts *opts);
/* Stops it: every connection and acceptor, then the listener.  0 or an error. */
int echo_server_stop(echo_server *srv);

#endif
