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

/* bl_pid <-> erlang_pid, through the index table. */
int bl__dist_pid_in(const erlang_pid *ep, bl_pid *out);
int bl__dist_pid_out(bl_pid pid, erlang_pid *ep);
/* The peer of a remote pid, or -EINVAL. */
int bl__dist_pid_peer(bl_pid pid);

/* ---- out.c: what processes hand to a connection ---- */

enum { BL__DOUT_PLAIN = 1, BL__DOUT_TERM = 2 };

/* Header of a BL__TAG_DIST_OUT message; name_len bytes of name, then the data, follow. */
typedef struct bl__dout {
    uint32_t kind;     /* BL__DOUT_PLAIN (tag + data) or BL__DOUT_TERM (data is a term) */
    uint32_t tag;      /* PLAIN: the sender's tag */
    bl_pid to;         /* the remote pid, or BL_PID_NONE for a registered name */
    uint32_t name_len; /* length of the registered name that follows (0 with a pid) */
    uint32_t pad;      /* keeps the header 8-byte aligned */
} bl__dout;

/* Hands one message for peer to its connection process (starting it when needed). */
int bl__dist_out(int peer, const bl__dout *h, const char *name, const void *data, size_t len);
/* Delivers a message to a local process with the given sender (remote, or none). */
void bl__dist_deliver(bl_pid to, bl_pid from, uint32_t tag, const void *data, size_t len);
/* The remote-send hook proc/ calls for pids with node bits. */
int bl__dist_remote_send(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len);

/* ---- etf.c: bounded checks of external-format bytes ---- */

/*
 * Checks that buf[*pos..len) starts with one well-formed term (no version
 * byte) and moves *pos past it; ei's decoders trust their input, so
 * nothing from the wire reaches them unchecked.  0 or -EBADMSG.
 */
int bl__etf_skip(const uint8_t *buf, size_t len, size_t *pos);
/* One version byte and one term filling buf[0..len) exactly: 0 or -EBADMSG. */
int bl__etf_check(const void *buf, size_t len);

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
    int fd;       /* the socket, -1 before ei's socket callback */
    int accepted; /* inbound: the accepted socket ei's one-shot accept hands out, else -1 */
    bool dying;   /* closing from a cleanup handler: plain close(2), no ring */
    int err;      /* the last error a callback returned (erl_errno is per thread, and
                     the process may have moved) */
} bl__dsock;

extern ei_socket_callbacks bl__dist_socket_callbacks;

/* ---- conn.c ---- */

/* Entry of a connection process: arg is the peer index (outbound) or ~fd (inbound). */
void bl__dist_conn_main(void *arg);

#endif /* BL_DIST_DIST_H */
