/*
 * echo_server.c - the echo server (see echo_server.h): its connections,
 * its acceptors and its supervision tree.
 *
 *   echo_server (Supervisor, one_for_one)
 *   |-- conns     (DynamicSupervisor: one temporary child per connection)
 *   |-- acceptor 1 .. N (loop on bl_io_accept, hand each socket to conns)
 *
 * A connection is a handler process: its handle runs the echo loop (it
 * blocks in bl_io_recv, keeping its stack while the connection lives), and
 * its release hook closes the socket after the process is gone, for any
 * reason, a kill included, so no descriptor outlives its connection.
 *
 * Each socket has one owner at every instant: the connection process gets
 * a duplicate of the accepted descriptor when it is created, and the
 * acceptor closes its own whatever start_child returned.  (Handing over
 * the descriptor itself would leave one case open: conns dying in the
 * middle of start_child, after the process was made, so that the acceptor
 * cannot tell whether the socket is still its to close.)  When conns has
 * been restarted, an acceptor asks the top supervisor for the new one.
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo_server.h"

/* ---- connections ---- */

typedef struct conn {
    int fd;          /* the socket: the acceptor's in the spec, the process's own copy after */
    int64_t idle_ms; /* a silent connection is closed after this long */
} conn;

enum { T_GO = 1 };

static int conn_init(void *arg, void **state)
{
    /* arg is the conn conn_start allocated: the process's state from here on. */
    *state = arg;
    /* The loop runs in handle, once init has returned. */
    bl_send(bl_self(), T_GO, NULL, 0);
    return BL_CONTINUE;
}

static int conn_handle(void *state, bl_msg *m)
{
    conn *c = state;
    char buf[4096];
    ssize_t n;
    while ((n = bl_io_recv(c->fd, buf, sizeof buf, 0, c->idle_ms)) > 0)
        if (bl_io_send_all(c->fd, buf, (size_t)n, 0, c->idle_ms) != n) break;
    /* Peer closed (0), idle timeout, or an error: this connection is over. */
    return BL_STOP;
}

/* After the process, whatever ended it: the socket goes with it. */
static void conn_release(void *state)
{
    conn *c = state;
    close(c->fd);
    free(c);
}

static const bl_handler conn_handler = {
    .init = conn_init,
    .handle = conn_handle,
    .release = conn_release,
};

/*
 * The connection's start function (a bl_start_fn): arg is the spec's copy
 * of a conn.  The process gets a copy of its own, which release frees even
 * if the process dies before init runs.
 */
static int conn_start(void *arg, bl_pid *pid)
{
    conn *c = malloc(sizeof *c);
    if (!c) return -ENOMEM;
    *c = *(conn *)arg;
    /* The process's own descriptor: the acceptor closes the one it passed. */
    c->fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (c->fd < 0) {
        int err = -errno;
        free(c);
        return err;
    }
    bl_pid p;
    int rc = bl_spawn_handler(&p, &conn_handler, c, NULL);
    if (rc) {
        close(c->fd);
        free(c); /* never ran */
        return rc;
    }
    /* Linked to its supervisor, as a start function must be.  (If even that
     * fails, out of memory, the process still owns and closes its socket.) */
    (void)bl_link(p);
    *pid = p;
    return 0;
}

/* ---- acceptors ---- */

/* The running conns of srv's top supervisor, or BL_PID_NONE. */
static bl_pid conns_pid(echo_server *srv)
{
    bl_sup_child kid;
    if (bl_supervisor_which_children(srv->sup, &kid, 1) < 1) return BL_PID_NONE;
    return kid.status == BL_CHILD_RUNNING ? kid.pid : BL_PID_NONE;
}

/* A cleanup handler: closes *(int *)arg. */
static void close_fd(void *arg)
{
    close(*(int *)arg);
}

static void acceptor(void *arg)
{
    echo_server *srv = arg;
    for (;;) {
        int fd = bl_io_accept(srv->lfd, NULL, NULL, BL_INFINITY);
        if (fd == -EINVAL || fd == -EBADF) return; /* the listener is gone: stop quietly */
        if (fd < 0) continue;                      /* a failed handshake, EMFILE: go on */
        conn c = {.fd = fd, .idle_ms = srv->idle_ms};
        bl_child_spec spec = {.start = conn_start,
                              .arg = &c,
                              .arg_len = sizeof c,
                              .restart = BL_RESTART_TEMPORARY,
                              .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
        /* Killed while it waits in start_child (the server stopping, conns
         * restarting), the acceptor still closes its descriptor. */
        bl_cleanup cl;
        bl_cleanup_push(&cl, close_fd, &fd);
        int rc = bl_dynamic_supervisor_start_child(srv->conns, &spec, NULL);
        if (rc == -ESRCH || rc == -ECONNRESET) {
            /* conns died: once the top supervisor has restarted it, try its successor. */
            bl_pid now = conns_pid(srv);
            if (now != BL_PID_NONE) {
                srv->conns = now;
                rc = bl_dynamic_supervisor_start_child(now, &spec, NULL);
            }
        }
        /* Started or not, the connection (if any) has its own descriptor. */
        bl_cleanup_pop(&cl, true);
    }
}

static int acceptor_start(void *arg, bl_pid *pid)
{
    return bl_spawn_link(pid, acceptor, arg, NULL);
}

/* ---- the tree ---- */

int echo_server_start(echo_server *srv, const echo_opts *o)
{
    static const echo_opts none;
    if (!o) o = &none;
    memset(srv, 0, sizeof *srv);
    srv->idle_ms = o->idle_ms ? o->idle_ms : 60000;
    srv->lfd = bl_io_listen_tcp(o->host ? o->host : "127.0.0.1", o->port, 1024, &srv->port);
    if (srv->lfd < 0) return srv->lfd;
    int n = o->acceptors ? o->acceptors : (int)bl_schedulers();
    if (n > 64) n = 64;

    /* The connections' supervisor first: acceptors need its pid. */
    bl_child_spec specs[65];
    char ids[65][24];
    specs[0] = (bl_child_spec){
        .id = "conns", .start = bl_dynamic_supervisor_start_fn, .type = BL_CHILD_SUPERVISOR};
    for (int i = 0; i < n; i++) {
        snprintf(ids[i + 1], sizeof ids[i + 1], "acceptor%d", i);
        specs[i + 1] = (bl_child_spec){.id = ids[i + 1],
                                       .start = acceptor_start,
                                       .arg = srv,
                                       .shutdown = BL_SHUTDOWN_BRUTAL_KILL};
    }
    /* Start the supervisor with conns alone, then add the acceptors. */
    int rc = bl_supervisor_start_link(&srv->sup, specs, 1, NULL);
    if (rc == 0) {
        bl_sup_child kid;
        rc = bl_supervisor_which_children(srv->sup, &kid, 1) == 1 ? 0 : -ESRCH;
        srv->conns = kid.pid;
        for (int i = 0; rc == 0 && i < n; i++)
            rc = bl_supervisor_start_child(srv->sup, &specs[i + 1], NULL);
    }
    if (rc) {
        if (srv->sup) bl_supervisor_stop(srv->sup, NULL, 5000);
        close(srv->lfd);
        return rc;
    }
    return 0;
}

int echo_server_stop(echo_server *srv)
{
    /* Children stop in reverse order: acceptors, then every connection. */
    bool trap = bl_trap_exit(true);
    int rc = bl_supervisor_stop(srv->sup, NULL, 10000);
    bl_trap_exit(trap);
    close(srv->lfd);
    return rc;
}
