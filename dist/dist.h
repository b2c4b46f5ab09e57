/*
 * dist/dist.h - what the distribution's files share.
 *
 * Processes: one acceptor (owns the listener and the epmd registration
 * socket) and one connection process per peer node (owns that socket).
 * Everything else is tables: the node's own settings (bl__dist, written by
 * bl_dist_start before the hook that routes remote pids is installed, then
 * read-only), peers by name and pid node indexes by (peer, creation) in
 * node.c (append-only while the runtime runs).
 */
#ifndef BL_DIST_DIST_H
#define BL_DIST_DIST_H

#include <ei.h>
#include <netinet/in.h>
#include <stdatomic.h>

#include "beamline.h"
#include "beamline/dist.h"

/* Internal message tags (the reserved range of beamline/dist.h). */
#define BL__TAG_DIST_OUT   (BL_TAG_SYSTEM | 0x73u) /* to a connection: a bl__dout to send */
#define BL__TAG_DIST_WAIT  (BL_TAG_SYSTEM | 0x74u) /* to a connection: tell me (ref) when up */
#define BL__TAG_DIST_READY (BL_TAG_SYSTEM | 0x75u) /* from a connection: int status (ref) */
#define BL__TAG_DIST_STOP  (BL_TAG_SYSTEM | 0x76u) /* to a connection: close */
#define BL__TAG_DIST_GO    (BL_TAG_SYSTEM | 0x77u) /* to a new outbound one: bool, go or not */

/* Peers and pid node indexes the table holds at most (the node bits allow 127). */
#define BL__DIST_MAX_NODES 127

/* The node's settings, fixed while it runs. */
typedef struct bl__dist_node {
    _Atomic bool running;      /* published last by start, cleared first by stop */
    char name[MAXNODELEN + 1]; /* "alive@host" */
    char alive[EI_MAXALIVELEN + 1];
    char host[EI_MAXHOSTNAMELEN + 1];
    char cookie[EI_MAX_COOKIE_SIZE + 1];
    uint32_t creation;  /* from epmd */
    size_t max_message; /* opts.max_message, resolved */
    unsigned tick_ms;   /* opts.tick_ms, resolved */
    unsigned setup_ms;  /* opts.setup_ms, resolved */
    bl_dist_log_fn log; /* opts.log, or NULL for stderr */
    void *log_arg;      /* opts.log_arg */
    bool quiet;         /* BEAMLINE_QUIET with the default log */
    ei_cnode ec;        /* template each connection copies (its own setup context) */
    bl_pid acceptor;    /* the acceptor process */
    int lfd;            /* its listener (bl_dist_stop shuts it down) */
} bl__dist_node;

extern bl__dist_node bl__dist;

/* A log line: "dist: " + the formatted text, to opts.log or stderr. */
void bl__dist_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- node.c: peers and pid node indexes ---- */

/*
 * The peer named name (exactly MAXNODELEN bytes at most), entered in the
 * table when create: its index (>= 0), -ENOENT, -ENOSPC when full.
 */
int bl__dist_peer(const char *name, bool create);
/* The peer's name; valid until the runtime stops. */
const char *bl__dist_peer_name(int peer);
/* The peer's connection process, starting one when there is none. -ENOMEM etc. on failure. */
int bl__dist_peer_conn(int peer, bl_pid *conn);
/*
 * The connection process conn owns peer now (it is up): false when another
 * one that is up keeps it (an inbound conn always takes over, and stops the
 * old one).
 */
bool bl__dist_peer_claim(int peer, bl_pid conn, bool inbound);
/* conn is done with peer: forgets it, and tells monitors when it had been up. */
void bl__dist_peer_release(int peer, bl_pid conn, bool was_up);
/* The peer's current connection process, or BL_PID_NONE. */
bl_pid bl__dist_peer_current(int peer);
/* Sends every node monitor BL_TAG_DIST_NODEUP or _NODEDOWN with name. */
void bl__dist_notify(uint32_t tag, const char *name);
/* Forgets every peer, index and monitor (bl_dist_start after the runtime restarted). */
void bl__dist_tables_reset(void);
/* Stops every connection process (bl_dist_stop). */
void bl__dist_peers_stop(void);

/*
 * The pid of peer's node that names no process (number 0, creation 0):
 * what a monitor of {name, node} monitors.  0 or -ENOSPC.
 */
int bl__dist_node_pid(int peer, bl_pid *out);
/* bl_pid <-> erlang_pid, through the index table. */
int bl__dist_pid_in(const erlang_pid *ep, bl_pid *out);
int bl__dist_pid_out(bl_pid pid, erlang_pid *ep);
/* The peer of a remote pid, or -EINVAL. */
int bl__dist_pid_peer(bl_pid pid);

/* ---- out.c: what processes hand to a connection ---- */

enum {
    BL__DOUT_PLAIN = 1, /* tag + data */
    BL__DOUT_TERM = 2,  /* data is a term */
    BL__DOUT_SIG = 3,   /* a signal: tag is BL_SIG_*, data a bl__dsig and the reason's detail */
    BL__DOUT_CALL = 4,  /* a gen_server call (ref: its monitor), tag + data: the request */
    BL__DOUT_CAST = 5,  /* a gen_server cast, tag + data: the request */
    BL__DOUT_REPLY = 6, /* a gen_server reply to the call ref (data: the reply) */
};

/* Header of a BL__TAG_DIST_OUT message; name_len bytes of name, then the data, follow. */
typedef struct bl__dout {
    uint32_t kind;     /* BL__DOUT_* */
    uint32_t tag;      /* PLAIN, CALL, CAST: the sender's tag; SIG: the signal */
    bl_pid to;         /* the remote pid, or BL_PID_NONE for a registered name */
    uint32_t name_len; /* length of the registered name that follows (0 with a pid) */
    uint32_t pad;      /* keeps the header 8-byte aligned */
    bl_ref ref;        /* SIG, CALL, REPLY: the monitor's or call's reference */
} bl__dout;

/* What follows the name in a BL__DOUT_SIG message (then the reason's detail). */
typedef struct bl__dsig {
    bl_pid from;         /* the local process signalling (may be exiting, or none) */
    uint32_t kind;       /* the reason's kind, */
    int32_t code;        /* code */
    uint64_t detail_len; /* and detail's length */
    bool has_reason;     /* EXIT_LINK, EXIT, DOWN carry one */
} bl__dsig;

/* Hands one message for peer to its connection process (starting it when needed). */
int bl__dist_out(int peer, const bl__dout *h, const char *name, const void *data, size_t len);
/*
 * bl__dist_out with two pieces of data, and a connection started only when
 * start: 0 once pushed, -ENOTCONN when no connection took it, or -errno.
 */
int bl__dist_out2(int peer, const bl__dout *h, const char *name, const void *d1, size_t l1,
                  const void *d2, size_t l2, bool start);
/* Delivers a message to a local process with the given sender (remote, or none). */
void bl__dist_deliver(bl_pid to, bl_pid from, uint32_t tag, const void *data, size_t len);
/* The same with a reference and message flags (BL_MSG_ALIAS). */
void bl__dist_deliver_ex(bl_pid to, bl_pid from, uint32_t tag, bl_ref ref, uint32_t mflags,
                         const void *data, size_t len);
/* The remote-send hook proc/ calls for pids with node bits. */
int bl__dist_remote_send(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len);

/* ---- ctl.c: links, monitors and exit signals across a connection ---- */

/* Control message operations (the distribution protocol's numbering). */
enum {
    BL__OP_LINK = 1,
    BL__OP_SEND = 2,
    BL__OP_EXIT = 3,
    BL__OP_UNLINK = 4,
    BL__OP_REG_SEND = 6,
    BL__OP_EXIT2 = 8,
    BL__OP_SEND_TT = 12,
    BL__OP_EXIT_TT = 13,
    BL__OP_REG_SEND_TT = 16,
    BL__OP_EXIT2_TT = 18,
    BL__OP_MONITOR_P = 19,
    BL__OP_DEMONITOR_P = 20,
    BL__OP_MONITOR_P_EXIT = 21,
    BL__OP_SEND_SENDER = 22,
    BL__OP_SEND_SENDER_TT = 23,
    BL__OP_PAYLOAD_EXIT = 24,
    BL__OP_PAYLOAD_EXIT_TT = 25,
    BL__OP_PAYLOAD_EXIT2 = 26,
    BL__OP_PAYLOAD_EXIT2_TT = 27,
    BL__OP_PAYLOAD_MONITOR_P_EXIT = 28,
    BL__OP_ALIAS_SEND = 33,
    BL__OP_ALIAS_SEND_TT = 34,
    BL__OP_UNLINK_ID = 35,
    BL__OP_UNLINK_ID_ACK = 36,
};

/* An Erlang reference of the other node, without its node name (the connection's). */
typedef struct bl__dref {
    uint32_t len;      /* words in n */
    uint32_t n[5];     /* its words */
    uint32_t creation; /* its node's incarnation */
} bl__dref;

/* A link across the connection. */
typedef struct bl__dlink {
    bl_pid local;  /* this node's process */
    bl_pid remote; /* the other node's */
} bl__dlink;

/*
 * A monitor across the connection, or a call from the other node that
 * waits for its reply (or both: an Erlang call monitors its server).
 */
typedef struct bl__dmon {
    bl_pid local;          /* out: the monitoring process; in: the monitored one */
    bl_pid remote;         /* out: the target (a node pid for a name); in: the monitoring */
    bl_ref ref;            /* the local reference (out: the monitor's; in: made here) */
    bl__dref eref;         /* in: the Erlang reference */
    bool out;              /* a local process monitors a remote one */
    bool monitor;          /* in: the remote process monitors (else only a call waits) */
    char name[MAXATOMLEN]; /* monitored by name: that name, else "" */
    char *tag;             /* in, a call waiting: its Tag term's bytes (malloc), else NULL */
    size_t tag_len;        /* their size */
} bl__dmon;

/* The links and monitors of one connection, owned by its process. */
typedef struct bl__dctl {
    bl__dlink *links;
    uint32_t nlinks, caplinks;
    bl__dmon *mons;
    uint32_t nmons, capmons;
    uint64_t unlink_id; /* the last UNLINK_ID sent */
} bl__dctl;

/* The reference on the wire for local ref r, and back (BL_REF_NONE: not one of ours). */
void bl__dref_out(bl_ref r, erlang_ref *e);
bl_ref bl__dref_in(const erlang_ref *e);
/* Starts a frame (length, pass-through, version) in x: its start, or -1. */
int bl__dframe_begin(ei_x_buff *x);
/* Ends the frame begun at start when ok (writes its length), else takes it back.  Returns ok. */
bool bl__dframe_end(ei_x_buff *x, int start, bool ok);
/* Encodes pid, or `instead` when pid is none or of no known node. */
bool bl__dx_pid(ei_x_buff *x, bl_pid pid, bl_pid instead);
/* A BL__DOUT_SIG from a local process: the control message, into x.  false: not encodable. */
bool bl__dctl_out(bl__dctl *t, ei_x_buff *x, int peer, bl_pid self, const bl__dout *h,
                  const char *name, const bl__dsig *g, const bl_reason *r);
/*
 * A control message of operation op (a tuple of arity; b[i] is its second
 * element; a payload reason in msg): 1 handled, 0 not a link, monitor or
 * exit, -1 malformed.  Answers go into x.
 */
int bl__dctl_in(bl__dctl *t, ei_x_buff *x, long op, int arity, const char *b, size_t blen, int i,
                const char *msg, size_t msg_len);
/* The connection is gone: noconnection to every local end; the lists are emptied. */
void bl__dctl_close(bl__dctl *t);
/* The incoming monitor of remote with Erlang reference e, or NULL. */
bl__dmon *bl__dctl_in_mon(bl__dctl *t, bl_pid remote, const erlang_ref *e);
/* The call from the other node waiting under local ref, or NULL. */
bl__dmon *bl__dctl_call(bl__dctl *t, bl_ref ref);
/* A fresh incoming entry (zeroed), or NULL. */
bl__dmon *bl__dctl_new_in(bl__dctl *t);
/* Removes entry m. */
void bl__dctl_done(bl__dctl *t, bl__dmon *m);
/* proc/'s remote-signal hook. */
int bl__dist_remote_signal(bl_pid to, bl_pid from, uint32_t sig, bl_ref ref, const bl_reason *r);
/* Hands a signal for peer to its connection (name: a monitor of {name, node}). */
int bl__dist_signal_out(int peer, bl_pid to, bl_pid from, uint32_t sig, bl_ref ref,
                        const bl_reason *r, const char *name);
/* A queued BL__TAG_DIST_OUT no connection will send: a link or monitor in it hears noconnection. */
void bl__dist_signal_unsent(const bl_msg *m);

/* ---- gs.c: gen_server calls and casts across nodes ---- */

struct bl__gs_remote_ops;
/* What otp/gen_server calls for remote pids and {name, node} (installed while the node runs). */
extern const struct bl__gs_remote_ops bl__dist_gs_ops;
/* True when a call from the other node waits for its reply under local ref. */
bool bl__dgs_waiting(bl__dctl *t, bl_ref ref);
/* Appends the message term (version first) of a CALL, CAST or REPLY from `from`.  false: none. */
bool bl__dgs_encode(bl__dctl *t, ei_x_buff *x, const bl__dout *h, bl_pid from, const char *data,
                    size_t len);
/* A term for local `to`: true when it was a gen_server call, cast or reply, delivered as such. */
bool bl__dgs_deliver(bl__dctl *t, bl_pid to, bl_pid from, const uint8_t *msg, size_t len);

/* ---- etf.c: bounded checks of external-format bytes ---- */

/*
 * Checks that buf[*pos..len) starts with one well-formed term (no version
 * byte) and moves *pos past it; ei's decoders trust their input, so
 * nothing from the wire reaches them unchecked.  0 or -EBADMSG.
 */
int bl__etf_skip(const uint8_t *buf, size_t len, size_t *pos);
/* One version byte and one term filling buf[0..len) exactly: 0 or -EBADMSG. */
int bl__etf_check(const void *buf, size_t len);

/* A connection's atom cache, as distribution headers fill it: 8 segments of 256. */
#define BL__ATOM_CACHE_SIZE 2048
typedef struct bl__atom_cache {
    char *text[BL__ATOM_CACHE_SIZE];   /* each entry's atom (UTF-8, not NUL-terminated) */
    uint16_t len[BL__ATOM_CACHE_SIZE]; /* its length in bytes */
} bl__atom_cache;

/*
 * A frame body that starts with a distribution header (131, 'D', atom
 * cache references, then the control term and the message without version
 * bytes): updates the cache with the header's new entries and writes the
 * same frame in pass-through form ('p', 131, control, 131, message), every
 * reference replaced by its atom, into *buf (grown as needed; *cap its
 * size), its length in *out_len.  The terms are checked as bl__etf_skip
 * checks.  0, -EBADMSG (malformed, or a reference to an entry never made)
 * or -ENOMEM.
 */
int bl__etf_dist_header(bl__atom_cache *c, const uint8_t *f, size_t n, uint8_t **buf, size_t *cap,
                        size_t *out_len);
/* Frees the cache's entries. */
void bl__etf_cache_free(bl__atom_cache *c);

/* ---- epmd.c ---- */

/*
 * Registers alive at port with the local epmd (ALIVE2), starting epmd when
 * none answers and may_start: the registration lasts while *fd stays open.
 * 0 with *fd and *creation set, or -errno.
 */
int bl__epmd_register(const char *alive, uint16_t port, bool may_start, int *fd,
                      uint32_t *creation);
/* The distribution port of alive on the epmd at addr (PORT_PLEASE2): 0 or -errno. */
int bl__epmd_port(const struct in_addr *addr, const char *alive, unsigned timeout_ms,
                  uint16_t *port);

/* ---- sock.c: ei's socket callbacks over bl_io ---- */

/* One connection's socket as ei sees it: the setup context of its ei_cnode copy. */
typedef struct bl__dsock {
    int fd;              /* the socket, -1 before ei's socket callback */
    int accepted;        /* inbound: the accepted socket ei's one-shot accept hands out, else -1 */
    bool dying;          /* closing from a cleanup handler: plain close(2), no ring */
    int err;             /* the last error a callback returned (erl_errno is per thread, and
                            the process may have moved) */
    uint64_t peer_flags; /* the peer's capability flags, from its handshake */
    bool peer_flags_known; /* they were seen */
    size_t hs_need;        /* body bytes of the handshake packet being read, 0: its length */
    size_t hs_got;         /* bytes of the length or body read so far */
    uint8_t hs_len[2];     /* the packet's length */
    uint8_t hs_head[16];   /* the body's first bytes */
} bl__dsock;

/* The capability flag for distribution headers with atom cache references. */
#define BL__DFLAG_DIST_HDR_ATOM_CACHE 0x2000u

extern ei_socket_callbacks bl__dist_socket_callbacks;

/* ---- conn.c ---- */

/* Entry of a connection process: arg is the peer index (outbound) or ~fd (inbound). */
void bl__dist_conn_main(void *arg);

#endif /* BL_DIST_DIST_H */
