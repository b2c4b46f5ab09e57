/*
 * echo_server.c - the echo server (see echo_server.h): one function, run
 * by the listener in a process of its own for each connection.
 */
#include <beamline.h>
#include <errno.h>
#include <string.h>

#include "echo_server.h"

/* A connection: echo until the peer closes, an error, or idle_ms of silence. */
static void echo_conn(int fd, const bl_listener_conn *c, void *arg)
{
    (void)arg;
    char buf[4096];
    ssize_t n;
    while ((n = bl_io_recv(fd, buf, sizeof buf, 0, c->idle_ms)) > 0) {
        if (bl_io_send_all(fd, buf, (size_t)n, 0, c->idle_ms) != n) return;
        /* The server is stopping: the echo in hand is done, so end here. */
        if (bl_listener_state_get(c->listener) == BL_LISTENER_STOPPING) return;
    }
    /* Returning ends the connection: the listener closes the socket. */
}

int echo_server_start(echo_server *srv, const echo_opts *o)
{
    static const echo_opts none;
    if (!srv) return -EINVAL;
    if (!o) o = &none;
    if (o->acceptors < 0) return -EINVAL;
    memset(srv, 0, sizeof *srv);
    bl_listener_opts lo = {.handler = echo_conn,
                           .host = o->host ? o->host : "127.0.0.1",
                           .port = o->port,
                           .acceptors = (unsigned)o->acceptors,
                           .max_connections = o->max_conns,
                           .idle_ms = o->idle_ms};
    int rc = bl_listener_start(&srv->listener, &lo);
    if (rc) return rc;
    bl_listener_info info;
    bl_listener_info_get(srv->listener, &info);
    srv->port = info.port;
    return 0;
}

int echo_server_stop(echo_server *srv)
{
    if (!srv || !srv->listener) return -EINVAL;
    int rc = bl_listener_stop(srv->listener, ECHO_STOP_MS);
    if (rc < 0) return rc;
    srv->listener = NULL;
    return 0;
}
