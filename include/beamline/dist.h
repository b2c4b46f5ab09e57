/*
 * beamline/dist.h - a Beamline program as a node of an Erlang/Elixir cluster.
 *
 * bl_dist_start() names this node ("bl@host"), registers it with epmd
 * (starting `epmd -daemon` when none answers, as `erl -sname` does), and
 * listens for other nodes.  It joins as a hidden C node, through
 * erl_interface (ei): Erlang and Elixir nodes connect to it and send to its
 * registered processes; its processes send to theirs.  Connecting is
 * automatic on the first send to a node, and bl_dist_connect() does it
 * explicitly.  Every connection is owned by one Beamline process, and all
 * of the distribution's socket I/O goes through the schedulers' rings.
 *
 * Pids name remote processes: the node bits of a bl_pid (56..62, see
 * beamline.h) index this node's table of remote nodes, and a remote pid
 * keeps the Erlang pid's number and serial, so it goes back to Erlang
 * exactly as it came.  bl_send() to a remote pid routes to that node's
 * connection process.
 *
 * Messages on the wire are terms in the external term format:
 *   - A message from Erlang arrives as a BL_TAG_DIST_TERM message whose
 *     payload is that term's bytes, starting with the version byte 131:
 *     decode it with ei_decode_version / ei_decode_* (ei.h).  m->from is the
 *     sender when the wire said who it was (a send to a registered name),
 *     else BL_PID_NONE.
 *   - bl_send(pid, tag, data, len) to a remote pid arrives there as the
 *     term {'$bl', From, Tag, Data}: From the sending pid (the atom
 *     undefined when sent from outside a process), Tag an integer, Data a
 *     binary; bl_send_ref's reference (when not BL_REF_NONE) is a fifth
 *     element, the integer Ref.  A Beamline node receiving that term
 *     delivers it as the plain message it was (from, tag, data, and ref),
 *     so bl_send and bl_send_ref between two Beamline nodes round-trip
 *     unchanged.  An Elixir process replies to a Beamline
 *     process the same way: send(from, {:"$bl", self(), tag, data}).
 *   - bl_dist_send_term() sends a term encoded by the caller (for example
 *     ei_x_new_with_version + ei_x_encode_*): the Erlang process receives
 *     exactly that term.
 *
 * Where C differs from Erlang:
 *   - Node names are given as text ("name@host"); there are no atoms.
 *   - A message is bytes with a tag: terms travel as encoded buffers, not as
 *     values, and pids inside them are read and written with
 *     bl_dist_decode_pid / bl_dist_encode_pid.
 *   - bl_send_ref's reference is a 64-bit number of the sending runtime:
 *     it travels as an integer and means something only to Beamline nodes
 *     (an Erlang process sees {'$bl', From, Tag, Data, Ref}); replies to
 *     Erlang use a term with a reference in it, or a gen_server call.
 *   - bl_is_alive() of a remote pid is false, as Erlang's is_process_alive
 *     is for local pids only (it raises badarg for others): monitor the
 *     process to learn whether it lives.
 *   - This node is hidden (as every C node): it does not take part in
 *     global name registration or in the full mesh, and nodes connected to
 *     it do not list it in Node.list() (Node.list(:hidden) does).
 *   - Other system-tagged sends to a remote pid than those below return
 *     -EOPNOTSUPP; control messages this node has no use for (group
 *     leaders, spawn requests, trace tokens' traces) are ignored.
 *
 * Failures across nodes, with Erlang's semantics: bl_link, bl_unlink,
 * bl_monitor, bl_demonitor and bl_exit_pid take remote pids, and
 * bl_dist_monitor_name monitors {name, node}.  An Erlang process linked to
 * or monitoring a Beamline process gets its EXIT / DOWN with the reason
 * (the table below), and the other way round.  When a connection goes
 * down, every link and monitor across it fires on both sides with reason
 * noconnection (BL_NOCONNECTION), and so does a link or monitor of a node
 * that cannot be reached; a link or monitor of a process that does not
 * exist there gets noproc.  The links and monitors of one connection are
 * kept by its connection process, in lists searched linearly.
 *
 * Reasons travel as these terms (both ways; decoding takes the first row
 * that matches, and reads a term as a row only when encoding the result
 * gives that term back, so every reason and every term round-trips):
 *
 *   Beamline reason                              Erlang term
 *   normal, kill, killed, shutdown, noproc,      the atom of that name
 *     timeout, stack_overflow, noconnection
 *     (code 0, no detail)
 *   shutdown, code 0, detail D                   {shutdown, <<D>>}
 *   shutdown, code BL_DIST_REASON_TERM,          {shutdown, T}
 *     detail = the term T (131 first)
 *   custom c, no detail                          {beamline, c}
 *   custom c, detail D                           {beamline, c, <<D>>}
 *   custom, code BL_DIST_REASON_TERM,            T: any term no row above
 *     detail = the term T (131 first)              reads ({bad, 1}, badarg...)
 *   any other (a detail on normal, a code on     {'$bl_reason', Kind, Code, <<D>>}
 *     shutdown, a TERM detail that is no term)     (Kind the bl_reason_kind number)
 *
 * So a supervisor sees Erlang's {shutdown, T} as a clean shutdown and any
 * reason Beamline has no kind for as custom BL_DIST_REASON_TERM whose
 * detail the program may decode with ei.  A term detail comes back as the
 * same term, in the bytes its last sender encoded.  Reasons nested in
 * details are looked into 8 deep at most (deeper, a term row is written in
 * the '$bl_reason' form).
 *
 * gen_server over the wire (beamline/gen_server.h):
 *   - An Erlang GenServer.call({name, node}, Request) or call(pid, ...)
 *     reaches a Beamline gen_server's handle_call with tag
 *     BL_TAG_DIST_TERM and the request's bytes (131 first); Request
 *     {'$bl', Tag, Bin} (what a Beamline caller sends for bytes that are
 *     no term) arrives as tag Tag with Bin's bytes.  casts likewise reach
 *     handle_cast.  bl_gs_reply(r, data, len) answers with the term data
 *     when it is one (131 first), else with {'$bl', <<data>>}.
 *   - bl_gen_server_call / _cast to a remote pid, and the *_to functions to
 *     BL_GS_REMOTE(name, node), send {'$gen_call', {Self, Ref}, Request} /
 *     {'$gen_cast', Request}: Request is data when data is one term (its
 *     tag is then not carried), else {'$bl', Tag, <<data>>}.  The reply is
 *     the reply term's bytes (131 first); {'$bl', Bin} gives Bin's bytes.
 *     A call monitors the server: it ends -ESRCH (noproc), -ETIMEDOUT,
 *     -ECONNRESET (the server exited; *reply holds the DOWN),
 *     -EHOSTUNREACH (the node cannot be reached or went down: Erlang's
 *     {nodedown, Node}).  A late reply never reaches the mailbox.
 *     bl_gen_server_stop_to and send_request to another node are not
 *     there (-EOPNOTSUPP); neither are the sys calls on remote pids.
 *   - The node table holds 127 (node, creation) pairs for the life of the
 *     runtime; a pid of a node that does not fit is not representable (its
 *     message arrives with from = BL_PID_NONE; a term carrying it is intact).
 *   - A remote pid whose Erlang serial does not fit in 24 bits is not
 *     representable either (Erlang hands out such serials only after 2^24
 *     reuses of one pid number).
 */
#ifndef BEAMLINE_DIST_H
#define BEAMLINE_DIST_H

#include "beamline.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Message tags of the distribution.  0x73..0x7F are reserved for its
 * internal messages.
 */
#define BL_TAG_DIST_TERM     (BL_TAG_SYSTEM | 0x70u) /* data: one term (131, ...) from a node */
#define BL_TAG_DIST_NODEUP   (BL_TAG_SYSTEM | 0x71u) /* data: the node's name, NUL-terminated */
#define BL_TAG_DIST_NODEDOWN (BL_TAG_SYSTEM | 0x72u) /* data: the node's name, NUL-terminated */

/* Where the distribution's log lines go (refused connections, closed ones and why). */
typedef void (*bl_dist_log_fn)(const char *line, void *arg);

/* Node options; a zeroed struct (or NULL) means defaults. */
typedef struct bl_dist_opts {
    uint16_t port;      /* port to listen on (0 = any free one) */
    size_t max_message; /* largest frame accepted from a node, bytes; a larger one closes
                           the connection (0 = 64 MiB) */
    unsigned tick_ms;   /* net tick time (Erlang's net_ticktime): a tick goes out after a
                           quarter of it without sending, and a node silent for all of it
                           is taken as down (0 = 60000) */
    unsigned setup_ms;  /* connection set-up (epmd, connect, handshake) time limit
                           (0 = 7000, Erlang's net_setuptime) */
    bool no_epmd_start; /* fail with -ECONNREFUSED instead of starting `epmd -daemon` */
    bl_dist_log_fn log; /* log lines (NULL = one line on stderr, none with BEAMLINE_QUIET) */
    void *log_arg;      /* passed to log */
} bl_dist_opts;

/*
 * Process only: makes this runtime the node `name`: "alive@host", or just
 * "alive" for "alive@<this host's short name>" (Erlang's -sname).  name
 * NULL takes BEAMLINE_NODE.  cookie NULL takes BEAMLINE_COOKIE, else the
 * cookie file ~/.erlang.cookie as Erlang reads it (and, as Erlang does,
 * creates it with a random cookie, mode 0400, when there is none).  The
 * node listens on opts->port and registers with epmd (port ERL_EPMD_PORT,
 * default 4369) for as long as it runs.
 * Returns 0; -EPERM outside a process; -EALREADY when already started;
 * -EINVAL for a malformed name or cookie, or none given anywhere;
 * -EADDRINUSE when epmd already has that name (or the port is taken);
 * -ECONNREFUSED when no epmd answers (and none could be started); -EIO for
 * a reply epmd should not send; -ENOMEM.
 */
int bl_dist_start(const char *name, const char *cookie, const bl_dist_opts *opts);

/*
 * Process only: stops being a node: closes every connection (nodedown
 * follows for each), unregisters from epmd and stops listening.  Remote
 * pids become unreachable (sends to them return -EINVAL, as for any pid of
 * an unknown node).  0, -EPERM, -ENOTCONN when not started.
 */
int bl_dist_stop(void);

/* This node's name, or "nonode@nohost" when distribution is not started.  Any thread. */
const char *bl_dist_node(void);

/*
 * Process only: connects to node (net_kernel:connect_node): returns 0 once
 * the handshake is done (at once when connected already), -EHOSTUNREACH
 * when the node is not registered with its host's epmd or the host is
 * unknown, -ECONNREFUSED when refused (a wrong cookie), -ETIMEDOUT after
 * opts.setup_ms, -EINVAL for a malformed name or this node's own,
 * -ENOTCONN when distribution is not started, -ENOSPC when the node table
 * is full.
 */
int bl_dist_connect(const char *node);

/*
 * The names of the connected nodes (Node.list(:connected)): stores up to
 * max of them in out and returns how many there are in all.  The strings
 * stay valid until the runtime stops.  -EINVAL for a NULL out with max > 0.
 * Any thread.
 */
int bl_dist_nodes(const char **out, size_t max);

/*
 * Process only: with on, the caller gets a BL_TAG_DIST_NODEUP message
 * whenever a connection to a node is up and BL_TAG_DIST_NODEDOWN when it
 * goes down (net_kernel:monitor_nodes(true)); off stops them.  A process
 * that subscribes twice gets each message once; subscriptions end with the
 * process.  0, -EPERM, -ENOMEM, -ENOTCONN when not started.
 */
int bl_dist_monitor_nodes(bool on);

/*
 * Sends tag + data[0..len) to the process registered as name on node (a
 * send to {name, node}), as bl_send does to a pid: the term {'$bl', From,
 * Tag, Data} on the wire, the plain message on a Beamline node.  node NULL
 * or this node's name sends locally (bl_send_name).  Connects first when
 * needed; as in Erlang, a message to a node that cannot be reached, or to a
 * name nobody holds, is dropped.  Returns 0, -EINVAL (reserved tag, NULL
 * name, malformed node, NULL data with len > 0), -ENAMETOOLONG (name over
 * 255 bytes), -ENOTCONN (distribution not started, remote node), -ENOSPC,
 * -ENOMEM.  Any thread.
 */
int bl_dist_send_name(const char *name, const char *node, uint32_t tag, const void *data,
                      size_t len);

/*
 * Sends the term etf[0..len) (external format, beginning with the version
 * byte 131, exactly one term) to pid, local or remote.  A local process
 * gets it as a BL_TAG_DIST_TERM message.  Returns 0, -EINVAL (a malformed
 * pid, or etf is not one well-formed term), -ENOTCONN, -ENOMEM.  Any thread.
 */
int bl_dist_send_term(bl_pid to, const void *etf, size_t len);

/* As bl_dist_send_term, to the process registered as name on node (NULL: this node). */
int bl_dist_send_term_name(const char *name, const char *node, const void *etf, size_t len);

/*
 * Decodes the pid at buf[*index] (ei_decode_pid's convention: *index moves
 * past it) into a bl_pid: a pid of this node becomes the local pid, any
 * other a remote one (entering its node in the table).  0; -EINVAL when
 * there is no pid there; -ESRCH for a pid of an earlier incarnation of
 * this node; -ENOSPC when the node table is full; -ERANGE for a serial over
 * 24 bits; -ENOTCONN when distribution is not started.
 */
int bl_dist_decode_pid(const char *buf, int *index, bl_pid *out);

/*
 * Encodes pid at buf[*index] (buf NULL: only moves *index by the size it
 * needs), as ei_encode_pid does.  0, -EINVAL for a pid of no known node,
 * -ENOTCONN when distribution is not started.
 */
int bl_dist_encode_pid(char *buf, int *index, bl_pid pid);

/*
 * Process only: monitors the process registered as name on node (Erlang's
 * monitor(process, {Name, Node})), storing the monitor's reference in *ref.
 * The DOWN that follows (noproc when nobody holds the name, noconnection
 * when the node cannot be reached or goes down) has m->from a pid naming
 * no process (number 0) of that node: bl_dist_pid_node(m->from) is node.
 * bl_demonitor ends it.  node NULL or this node's name: a monitor of the
 * local holder (DOWN noproc at once when there is none).  0, -EPERM,
 * -EINVAL (NULL name or ref, malformed node), -ENAMETOOLONG, -ENOTCONN
 * (distribution not started), -ENOSPC, -ENOMEM.
 */
int bl_dist_monitor_name(const char *name, const char *node, bl_ref *ref);

/* A reason code (custom or shutdown): the detail is one Erlang term, 131 first (see above). */
#define BL_DIST_REASON_TERM INT32_MIN

/* The name of pid's node (bl_dist_node() for a local pid), or NULL for a node it does not know. */
const char *bl_dist_pid_node(bl_pid pid);

#ifdef EI_H
/* With ei.h included first: bl_dist_encode_pid into a growing ei_x_buff. */
int bl_dist_x_encode_pid(ei_x_buff *x, bl_pid pid);

/* Appends reason r as the Erlang term of the table above.  0, -EINVAL (bad r), -ENOMEM. */
int bl_dist_x_encode_reason(ei_x_buff *x, const bl_reason *r);
#endif

/*
 * Reads the term at buf[*index] (no version byte there; buf holds len
 * bytes) as a reason by the table above, moving *index past it.  out's
 * detail points into buf, or into *scratch, which the call sets (NULL when
 * unused) and the caller frees with free().  Needs no running node.  0,
 * -EINVAL (NULL arguments), -EBADMSG (no well-formed term there), -ENOMEM.
 */
int bl_dist_decode_reason(const void *buf, size_t len, int *index, bl_reason *out, void **scratch);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_DIST_H */
