/*
 * beamline/listener.h - a TCP listener (Erlang's ranch): a listening
 * socket, a pool of acceptor processes, and one handler process per
 * connection, all supervised.
 *
 *   listener (Supervisor, rest_for_one)
 *   |-- conns      (DynamicSupervisor: one temporary child per connection)
 *   |-- acceptors  (Supervisor, one_for_one: acceptor 0 .. N-1)
 *
 * Each acceptor takes a connection slot (at most max_connections are
 * taken at once), then waits in bl_io_accept on the shared socket, and
 * hands the new socket to a handler process that conns starts.  The
 * handler process runs the program's function with the socket, the peer's
 * address and the program's argument; when the function returns the
 * connection is over.  An HTTP server is a listener whose handler runs the
 * HTTP connection loop on the socket; a TLS server's handler first does
 * the TLS handshake on it.
 *
 * Who owns the socket:
 *   - From accept until the handler process exists, the acceptor does; it
 *     hands the descriptor over through a cell that exactly one of the two
 *     takes (the acceptor back, or conns's start function forward), so a
 *     kill of the acceptor, of conns or of the listener at any instant
 *     closes it exactly once.
 *   - From then on the handler process does.  The listener closes the
 *     socket after that process has ended, however it ended: the function
 *     returned, the process crashed (bl_exit with an error code, a stack
 *     overflow) or was killed, also before it ran its first instruction.
 *     So the handler must not close the descriptor itself (the number
 *     could be reused by then); to end a connection early it calls
 *     bl_io_shutdown(fd, SHUT_RDWR) and returns.  To keep a connection
 *     past its handler, dup the descriptor (the copy is the program's).
 *     A TLS handler does its handshake with bl_tls_accept_borrowed
 *     (beamline/tls.h), which leaves the descriptor the listener's.
 *
 * max_connections: a connection holds its slot until its handler process
 * has ended.  When every slot is taken, no acceptor is in accept: further
 * connections wait in the kernel's backlog, unaccepted, and are accepted
 * as soon as a handler ends (or the limit is raised).  The limit is never
 * exceeded, not even briefly.
 *
 * Per-connection options: TCP_NODELAY (unless nagle), SO_SNDBUF and
 * SO_RCVBUF are set on the listening socket, from which Linux copies them
 * to every accepted socket (no system call per connection); idle_ms is
 * passed to each handler (bl_listener_conn.idle_ms) to use as the timeout
 * of its waits, since only the handler knows when it is idle.
 *
 * Calls: bl_listener_start and bl_listener_stop are process only (-EPERM
 * elsewhere); suspend, resume, set_max_connections and the two _get calls
 * work from any thread.  Control calls do not run concurrently on one
 * listener: one that finds another in progress returns -EBUSY.
 *
 * Differences from ranch:
 *  - The handler is a C function run in its own process (ranch's
 *    protocol module's start_link), given the descriptor itself: there is
 *    no transport module and no ranch:handshake; the process owns the
 *    socket from its start, and the listener closes it when the process
 *    ends (C has no port that dies with its owner).
 *  - The listener is not linked to the process that starts it (ranch's
 *    listeners live under ranch_sup, not under the caller): it runs until
 *    bl_listener_stop.  There is no listener name (ranch's Ref): the
 *    handle is the name.  To put it under a supervisor of the program,
 *    start and stop it from a child of that supervisor.
 *  - max_connections is strict (ranch may go over it by up to the number
 *    of acceptors); connections past it wait unaccepted, as in ranch.
 *  - Suspend shuts the listening socket down (queued connections are
 *    reset, new ones refused) and resume listens on the same socket again,
 *    where ranch closes it and opens a new one.  A port given explicitly
 *    stays bound meanwhile (a socket without SO_REUSEADDR cannot take it);
 *    with port 0, resume binds the port chosen at start again.  Either way
 *    resume fails with -EADDRINUSE if another listener took the port
 *    meanwhile, as in ranch.
 *  - bl_listener_stop is graceful (ranch's stop_listener kills at once):
 *    it stops accepting, waits up to a timeout for the handlers to end by
 *    themselves, and kills what is left.  Handlers see the listener's
 *    state (bl_listener_state_get) to finish early, e.g. after the
 *    request in hand.
 *  - One connections supervisor (ranch 2 has num_conns_sups), no
 *    ranch:procs, no set_transport_options, no per-connection protocol
 *    options besides arg, no TLS transport (TLS runs in the handler).
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_LISTENER_H
#define BEAMLINE_LISTENER_H

#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A running listener (opaque).  Valid from bl_listener_start until bl_listener_stop returns. */
typedef struct bl_listener bl_listener;

/* What a listener is doing. */
typedef enum bl_listener_state {
    BL_LISTENER_RUNNING = 0,   /* accepting (while slots are free) */
    BL_LISTENER_SUSPENDED = 1, /* not accepting: new connections are refused; handlers run */
    BL_LISTENER_STOPPING = 2,  /* bl_listener_stop has begun: handlers should finish */
} bl_listener_state;

/* One connection, as its handler sees it: valid while the handler runs. */
typedef struct bl_listener_conn {
    bl_listener *listener;        /* the listener that accepted it */
    struct sockaddr_storage peer; /* the peer's address (AF_INET or AF_INET6) */
    socklen_t peer_len;           /* bytes of peer used */
    int64_t idle_ms;              /* the listener's idle timeout (BL_INFINITY: none) */
    uint64_t id;                  /* its number on this listener, from 1, in accept order */
} bl_listener_conn;

/*
 * A connection's handler: runs in the connection's own process with the
 * connected socket fd (blocking calls go through beamline/io.h).  The
 * connection ends when it returns; see the header comment for who closes fd.
 */
typedef void (*bl_listener_handler_fn)(int fd, const bl_listener_conn *conn, void *arg);

/* bl_listener_opts.max_connections / bl_listener_set_max_connections: no limit. */
#define BL_LISTENER_UNLIMITED UINT32_MAX
/* Acceptors of one listener at most. */
#define BL_LISTENER_MAX_ACCEPTORS 64

/* Options; zeroed fields take the defaults named beside them. */
typedef struct bl_listener_opts {
    bl_listener_handler_fn handler; /* required */
    void *arg;                      /* passed to handler; must outlive the listener */
    const char *host;               /* numeric IPv4 or IPv6 address; NULL = 0.0.0.0 */
    uint16_t port;                  /* 0 = any free port (bl_listener_info.port says which) */
    bool reuseport;                 /* SO_REUSEPORT: several listeners share the port */
    bool v6only;                    /* an IPv6 host: IPV6_V6ONLY (no IPv4 through "::") */
    int backlog;                    /* listen(2) backlog; 0 = 1024 */
    unsigned acceptors;             /* 0 = the schedulers, at least 4; at most
                                       BL_LISTENER_MAX_ACCEPTORS */
    uint32_t max_connections;       /* handlers alive at once; 0 = 1024;
                                       BL_LISTENER_UNLIMITED = no limit */
    bool nagle;                     /* keep Nagle's algorithm; false: TCP_NODELAY, as ranch */
    int sndbuf;                     /* SO_SNDBUF of each connection, bytes; 0 = the system's */
    int rcvbuf;                     /* SO_RCVBUF of each connection, bytes; 0 = the system's */
    int64_t idle_ms;                /* told to handlers: 0 = 60000, BL_INFINITY = none */
    size_t stack_size;              /* handler processes' stacks; 0 = the runtime's default */
} bl_listener_opts;

/* A listener's counts and settings (bl_listener_info_get). */
typedef struct bl_listener_info {
    bl_listener_state state;  /* running, suspended or stopping */
    int family;               /* AF_INET or AF_INET6 */
    uint16_t port;            /* the port it listens on (the chosen one with port 0) */
    unsigned acceptors;       /* acceptor processes */
    uint32_t max_connections; /* the limit now (BL_LISTENER_UNLIMITED: none) */
    uint32_t active;          /* handler processes alive (the sockets they own are open) */
    uint64_t accepted;        /* connections accepted since start */
    uint64_t refused;         /* accepted and closed without a handler (its start failed) */
    uint64_t limit_hits;      /* times an acceptor found every slot taken and waited */
    bl_pid sup;               /* the listener's top supervisor (see the tree above) */
} bl_listener_info;

/*
 * Starts a listener (process only): binds and listens, then starts the
 * supervision tree and returns, the acceptors accepting.  *out is the
 * handle.  Returns 0, or
 *   -EINVAL        out or opts NULL, handler NULL, host not a numeric
 *                  address, backlog or a buffer size negative, acceptors
 *                  above BL_LISTENER_MAX_ACCEPTORS, v6only with an IPv4
 *                  host, idle_ms negative other than BL_INFINITY;
 *   -EADDRINUSE    the port is taken (without reuseport on both sides);
 *   -EACCES        a privileged port;
 *   -EADDRNOTAVAIL host is not an address of this machine;
 *   -ENOMEM, -EPERM (not a process), or another error of socket(2),
 *   setsockopt(2), bind(2), listen(2) or of starting the supervisors.
 * Nothing is left open or running after an error.
 */
int bl_listener_start(bl_listener **out, const bl_listener_opts *opts);

/*
 * Stops the listener gracefully (process only, not from one of its own
 * handlers, which would wait for itself): it stops accepting (new
 * connections are refused, and those queued in the backlog are reset),
 * stops the acceptors, then waits up to timeout_ms (0: not at all,
 * BL_INFINITY: for ever) for every handler to end by itself, kills the
 * handlers left, closes the listening socket and frees the listener.
 * While it waits the state is BL_LISTENER_STOPPING, which handlers can
 * read to finish early.  Returns how many handlers were killed (0 when
 * every one ended in time), or -EINVAL (l NULL, a negative timeout other
 * than BL_INFINITY), -EPERM (not a process), -EBUSY (another control
 * call on l is running): then nothing was done.  A listener whose tree
 * died by itself (restart intensity exceeded) is stopped all the same.
 * l is invalid once this returns a count.
 */
int bl_listener_stop(bl_listener *l, int64_t timeout_ms);

/*
 * Stops accepting without stopping the handlers (ranch's
 * suspend_listener): the listening socket is shut down, so connections
 * waiting in its backlog are reset and new ones refused; acceptors wait.
 * Returns 0 (also when already suspended), -EINVAL (l NULL), -EBUSY
 * (another control call is running, or l is stopping), or shutdown(2)'s
 * error.  Any thread.
 */
int bl_listener_suspend(bl_listener *l);

/*
 * Accepts again after bl_listener_suspend, on the same port.  Returns 0
 * (also when running), -EINVAL (l NULL), -EBUSY (as suspend), or the
 * error of binding or listening again (-EADDRINUSE: another socket
 * listens on the port now); after an error the listener stays suspended
 * and resume may be tried again.  Any thread.
 */
int bl_listener_resume(bl_listener *l);

/*
 * Changes max_connections (ranch's set_max_connections): n >= 1, or
 * BL_LISTENER_UNLIMITED.  Lowering it below the connections open closes
 * none of them; accepting resumes once they are fewer than n.  Returns 0,
 * -EINVAL (l NULL, n 0).  Any thread.
 */
int bl_listener_set_max_connections(bl_listener *l, uint32_t n);

/* The listener's state (handlers may poll it); BL_LISTENER_STOPPING for l NULL. Any thread. */
bl_listener_state bl_listener_state_get(const bl_listener *l);

/* Fills *out: 0, or -EINVAL (l or out NULL).  Any thread; the counts are a moment's. */
int bl_listener_info_get(const bl_listener *l, bl_listener_info *out);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_LISTENER_H */
