/*
 * dist/conn.c - one process per connected node.
 *
 * How the I/O is done, and why: the handshake goes through ei
 * (ei_xconnect_host_port_tmo / ei_accept_tmo) with user-supplied socket
 * callbacks that make bl_io_* calls from inside this process (sock.c), so
 * ei's cookie digest and version negotiation are reused and only this
 * process parks while ei "blocks".  After the handshake the process speaks
 * the framing itself and uses ei only as the term codec: ei's own receive
 * (ei_xreceive_msg) reads whatever length a peer announces, trusts the
 * bytes, and blocks the caller in one read at a time, while this process
 * must also take messages to send from its mailbox and keep time for
 * ticks.  So the socket is read by a multishot receive stream (its bytes
 * arrive in the mailbox beside the messages to send), every frame's length
 * is checked against max_message before it is buffered, and every term is
 * walked with its bounds (etf.c) before ei decodes it.
 *
 * A frame is a 4-byte big-endian length and then either 'p' (112), the
 * control term and, for sends, the message term, each with its own version
 * byte 131; or a distribution header (131, 'D', atom cache references) and
 * the same terms without version bytes, which etf.c rewrites into the
 * first form.  This side writes the first form, and gives it an empty
 * header for a peer that announced headers (Erlang nodes then accept
 * nothing else).  A length of 0 is a tick.  Anything else closes this
 * connection, with a log line saying why; other connections and the node
 * go on.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "beamline/dirty.h"
#include "beamline/io.h"
#include "dist/dist.h"
#include "proc/otp.h"
#include "proc/proc.h"

#define PASS_THROUGH 112         /* 'p': a frame without a distribution header */
#define FLUSH_AT     (64 * 1024) /* bytes of encoded frames written in one go */
/*
 * Receive coalescing.  The socket is read one receive at a time
 * (bl_io_recv_once).  When TRICKLE receives in a row found their data at
 * once (within FAST_NS of being armed) or brought several frames, with
 * nothing written to the peer in between, the peer is streaming small
 * frames (a run of casts) that nobody here answers: the next receive waits
 * COALESCE_US so that they arrive in one batch, and each batch of the run
 * waits twice as long as the last, up to COALESCE_MAX.  Several frames keep a
 * batch read after the wait in the run: the time it took says little, as
 * a scheduler asleep through the wait wakes late on a busy machine.  Read
 * one or two frames at a time, such a stream costs each side a wake-up, a
 * recvmsg and an ACK per receive; batched, the Erlang sender gets that CPU
 * back: with an Elixir node casting to this one, 50 us windows took 5.0 us
 * per cast, 200 us 3.9, 500 us 1.9, 1 ms 1.9 (the BEAM to the BEAM: 4.9).
 * A frame after a quiet spell, and request and reply traffic (a write in
 * between), are read at once.
 */
#define RECV_MAX     65536u
#define COALESCE_US  50u
#define COALESCE_MAX 500u
#define FAST_NS      20000
#define TRICKLE      4

typedef struct conn {
    bl_pid self;           /* this process (bl_self() is none in a cleanup handler) */
    int peer;              /* peer index, -1 until the handshake names it (inbound) */
    int fd;                /* the socket after the handshake, else -1 */
    bool in_ei;            /* ei holds fd in its table (ei_close_connection frees it) */
    bool up;               /* claimed the peer: nodeup was sent */
    bool released;         /* gave the peer back (bl__dist_peer_release) */
    bool logged;           /* its end was logged already */
    bl__dsock sock;        /* ei's context for this connection */
    ei_cnode ec;           /* bl__dist.ec with this connection's setup context */
    uint8_t *in;           /* bytes received, not yet a whole frame */
    size_t in_len;         /* bytes in `in` */
    size_t in_cap;         /* its allocation */
    ei_x_buff out;         /* encoded frames not yet written */
    bool hdr;              /* the peer takes distribution headers: frames go out with one */
    bl__atom_cache *cache; /* the peer's atom cache entries (its headers fill it), or NULL */
    uint8_t *conv;         /* a header frame rewritten in pass-through form */
    size_t conv_cap;       /* its allocation */
    uint8_t *wire;         /* the outgoing frames with headers */
    size_t wire_cap;       /* its allocation */
    int64_t last_rx;       /* when the peer last sent anything (ms, monotonic) */
    int64_t last_tx;       /* when this side last wrote */
    int64_t armed_ns;      /* when the receive in flight was armed */
    unsigned quick;        /* receives in a row that found data at once, nothing written between */
    unsigned delay_us;     /* the wait before the next receive of a run (0: none) */
    bool wrote;            /* written to the peer since the last receive */
    uint64_t frames;       /* frames received */
    bl_cleanup cleanup;    /* conn_end if the process is killed */
    bl__dctl ctl;          /* the links and monitors across this connection */
    char why[200];         /* why the connection ends, for the log */
} conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ms(void)
{
    return now_ns() / 1000000;
}

/* Arms the next receive, after delay_us: 0 or -errno. */
static int arm_recv(conn *c, unsigned delay_us)
{
    c->armed_ns = now_ns() + (int64_t)delay_us * 1000;
    return bl_io_recv_once(c->fd, RECV_MAX, delay_us);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const char *peer_name(const conn *c)
{
    return c->peer >= 0 ? bl__dist_peer_name(c->peer) : "an unnamed node";
}

/* Sets the reason the connection ends (the first one given wins). */
static bool fail(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(conn *c, const char *fmt, ...)
{
    if (!c->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Everything the connection holds goes; from a cleanup handler (dying) no ring call is made. */
static void conn_end(conn *c, bool dying)
{
    c->sock.dying = dying;
    /* The peer sees the end now, and the receive stream ends (closing alone
     * would not end it: the ring holds the file while it is armed). */
    if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    if (c->in_ei) {
        ei_close_connection(c->fd); /* our close callback closes the socket */
    } else if (c->sock.fd >= 0 || c->sock.accepted >= 0) {
        ei_socket_callbacks *cb = &bl__dist_socket_callbacks;
        cb->close(&c->sock);
    }
    if (c->peer >= 0 && !c->released) bl__dist_peer_release(c->peer, c->self, c->up);
    /* After the release: a link or monitor made from now on goes to a new connection. */
    bl__dctl_close(&c->ctl);
    free(c->in);
    ei_x_free(&c->out);
    if (c->cache) bl__etf_cache_free(c->cache);
    free(c->cache);
    free(c->conv);
    free(c->wire);
    free(c);
}

static void conn_cleanup(void *arg)
{
    conn *c = arg;
    if (c->why[0] == 0) snprintf(c->why, sizeof c->why, "its process was killed");
    bl__dist_log("connection to %s closed: %s", peer_name(c), c->why);
    conn_end(c, true);
}

/* ---- set-up ---- */

static long resolve(void *arg)
{
    const char *host = ((const char **)arg)[0];
    struct in_addr *out = ((struct in_addr **)arg)[1];
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0) return -EHOSTUNREACH;
    *out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* The address of host: loopback for this host, a numeric one as is, else DNS on the dirty pool. */
static int host_addr(const char *host, struct in_addr *out)
{
    if (strcmp(host, bl__dist.host) == 0 || strcmp(host, "localhost") == 0) {
        out->s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    if (inet_pton(AF_INET, host, out) == 1) return 0;
    const void *args[2] = {host, out};
    long r = -EHOSTUNREACH;
    int rc = bl_dirty_run(resolve, args, &r);
    return rc < 0 ? rc : (int)r;
}

/* Outbound: epmd, connect, handshake.  0 or -errno (why set). */
static int connect_out(conn *c)
{
    const char *name = bl__dist_peer_name(c->peer);
    const char *at = strchr(name, '@');
    if (!at || at == name || !at[1]) return fail(c, "malformed node name"), -EINVAL;
    char alive[EI_MAXALIVELEN + 1];
    size_t alen = (size_t)(at - name);
    if (alen > EI_MAXALIVELEN) return fail(c, "malformed node name"), -EINVAL;
    memcpy(alive, name, alen);
    alive[alen] = 0;
    struct in_addr addr;
    int rc = host_addr(at + 1, &addr);
    if (rc < 0) return fail(c, "unknown host %s", at + 1), rc;
    uint16_t port;
    rc = bl__epmd_port(&addr, alive, bl__dist.setup_ms, &port);
    if (rc < 0) return fail(c, "epmd on %s: %s", at + 1, strerror(-rc)), rc;
    int fd = ei_xconnect_host_port_tmo(&c->ec, &addr, port, bl__dist.setup_ms);
    if (fd < 0) {
        if (c->sock.err == ETIMEDOUT) return fail(c, "handshake timed out"), -ETIMEDOUT;
        fail(c, "handshake failed (wrong cookie, or not an Erlang node)");
        return -ECONNREFUSED;
    }
    c->fd = fd;
    c->in_ei = true;
    return 0;
}

/* Inbound: ei's accept on the socket the acceptor took.  0 or -errno. */
static int accept_in(conn *c, int fd)
{
    c->sock.accepted = fd;
    struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
    int port = 0;
    int lfd = ei_xlisten(&c->ec, &any, &port, 1);
    if (lfd < 0) return fail(c, "cannot hand the socket to ei"), -EIO;
    ErlConnect who;
    memset(&who, 0, sizeof who);
    int cfd = ei_accept_tmo(&c->ec, lfd, &who, bl__dist.setup_ms);
    if (cfd < 0) {
        /* ei closed the socket.  The name is known when the peer got that far. */
        bl__dist_log("refused connection from %s: handshake failed (wrong cookie?)",
                     who.nodename[0] ? who.nodename : "a node that sent no name");
        c->logged = true;
        return -ECONNREFUSED;
    }
    c->fd = cfd;
    c->in_ei = true;
    c->peer = bl__dist_peer(who.nodename, true);
    if (c->peer < 0) return fail(c, "node table full"), c->peer;
    return 0;
}

/* ---- receiving ---- */

static bool deliver_term(conn *c, bl_pid to, bl_pid from, const uint8_t *msg, size_t len)
{
    if (bl__dgs_deliver(&c->ctl, to, from, msg, len)) return true;
    /* {'$bl', From, Tag, Data} (+ Ref): the plain message a Beamline node sent. */
    const char *b = (const char *)msg;
    int i = 1, arity, type, size;
    char atom[MAXATOMLEN_UTF8];
    long tag;
    unsigned long long ref = BL_REF_NONE;
    if (ei_decode_tuple_header(b, &i, &arity) == 0 && (arity == 4 || arity == 5) &&
        ei_decode_atom(b, &i, atom) == 0 && strcmp(atom, "$bl") == 0) {
        bl_pid sender = BL_PID_NONE;
        erlang_pid ep;
        int j = i;
        bool ok = true;
        if (ei_decode_pid(b, &j, &ep) == 0) {
            if (bl__dist_pid_in(&ep, &sender) < 0) sender = BL_PID_NONE;
            i = j;
        } else {
            ok = ei_decode_atom(b, &i, atom) == 0 && strcmp(atom, "undefined") == 0;
        }
        int end = i;
        if (ok && ei_decode_long(b, &i, &tag) == 0 && tag >= 0 && tag < (long)BL_TAG_SYSTEM &&
            ei_get_type(b, &i, &type, &size) == 0 && type == ERL_BINARY_EXT &&
            ((end = i + 5 + size), arity == 5 ? ei_decode_ulonglong(b, &end, &ref) == 0 : true) &&
            (size_t)end == len) {
            bl__dist_deliver_ex(to, sender, (uint32_t)tag, (bl_ref)ref, 0, msg + i + 5,
                                (size_t)size);
            return true;
        }
    }
    bl__dist_deliver(to, from, BL_TAG_DIST_TERM, msg, len);
    return true;
}

/* One frame's body (after the length): false closes the connection. */
static bool handle_frame(conn *c, const uint8_t *f, size_t n)
{
    if (f[0] == 131 && n >= 2 && f[1] == 'D') {
        /* With a distribution header: read as the pass-through frame it stands for. */
        if (!c->cache && !(c->cache = calloc(1, sizeof *c->cache)))
            return fail(c, "out of memory for the atom cache");
        size_t len;
        int rc = bl__etf_dist_header(c->cache, f, n, &c->conv, &c->conv_cap, &len);
        if (rc < 0) return fail(c, "malformed distribution header or term: %s", strerror(-rc));
        f = c->conv;
        n = len;
    }
    if (f[0] != PASS_THROUGH) return fail(c, "frame of unknown type %u", f[0]);
    size_t pos = 1;
    if (n < 2 || f[1] != 131) return fail(c, "control message without version byte");
    pos = 2;
    if (bl__etf_skip(f, n, &pos) < 0) return fail(c, "undecodable control message");
    size_t msg = pos, msg_len = n - pos;
    if (msg_len) {
        if (f[msg] != 131) return fail(c, "message without version byte");
        pos = msg + 1;
        if (bl__etf_skip(f, n, &pos) < 0 || pos != n) return fail(c, "undecodable message term");
    }
    const char *b = (const char *)f;
    int i = 2, arity;
    long op;
    if (ei_decode_tuple_header(b, &i, &arity) < 0 || arity < 1 || ei_decode_long(b, &i, &op) < 0)
        return fail(c, "control message is not a tuple with an operation");
    bl_pid to = BL_PID_NONE, from = BL_PID_NONE;
    erlang_pid ep;
    char name[MAXATOMLEN_UTF8];
    bool by_name = false;
    switch (op) {
    case BL__OP_SEND:
    case BL__OP_SEND_TT:
    case BL__OP_SEND_SENDER:
    case BL__OP_SEND_SENDER_TT: {
        /* {2, Unused, To} / {22, From, To} (+ a trace token) */
        if (arity < 3) return fail(c, "short send control message");
        if (op == BL__OP_SEND_SENDER || op == BL__OP_SEND_SENDER_TT) {
            if (ei_decode_pid(b, &i, &ep) == 0 && bl__dist_pid_in(&ep, &from) < 0)
                from = BL_PID_NONE;
        } else if (ei_skip_term(b, &i) < 0) {
            return fail(c, "bad send control message");
        }
        if (ei_decode_pid(b, &i, &ep) < 0) return fail(c, "send to something not a pid");
        /* Not a pid of this node (or of an earlier incarnation): dropped. */
        if (strcmp(ep.node, bl__dist.name) != 0 || bl__dist_pid_in(&ep, &to) < 0) return true;
        break;
    }
    case BL__OP_REG_SEND:
    case BL__OP_REG_SEND_TT:
        /* {6, From, Unused, ToName} (+ a trace token) */
        if (arity < 4) return fail(c, "short reg_send control message");
        if (ei_decode_pid(b, &i, &ep) < 0 || ei_skip_term(b, &i) < 0 ||
            ei_decode_atom(b, &i, name) < 0)
            return fail(c, "bad reg_send control message");
        if (bl__dist_pid_in(&ep, &from) < 0) from = BL_PID_NONE;
        by_name = true;
        break;
    default: {
        int rc =
            bl__dctl_in(&c->ctl, &c->out, op, arity, b, n, i, msg_len ? b + msg : NULL, msg_len);
        if (rc < 0) return fail(c, "malformed control message (operation %ld)", op);
        return true; /* handled, or of no use here (spawn requests, group leaders): ignored */
    }
    }
    if (!msg_len) return fail(c, "send without a message");
    if (by_name) {
        to = bl_whereis(name);
        if (to == BL_PID_NONE) return true; /* nobody holds the name: dropped, as in Erlang */
    }
    return deliver_term(c, to, from, f + msg, msg_len);
}

static bool write_out(conn *c);

/* Bytes from the socket: whole frames are handled, the rest kept.  false closes. */
static bool handle_bytes(conn *c, const uint8_t *data, size_t len)
{
    c->last_rx = now_ms();
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + len) cap *= 2;
        uint8_t *n = realloc(c->in, cap);
        if (!n) return fail(c, "out of memory for %zu bytes", cap);
        c->in = n;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    size_t at = 0;
    bool ok = true, tick = false;
    while (ok && c->in_len - at >= 4) {
        const uint8_t *p = c->in + at;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (n == 0) {
            tick = true;
            at += 4;
            continue;
        }
        if (n > bl__dist.max_message) {
            ok = fail(c, "oversized message (%u bytes, the limit is %zu)", n, bl__dist.max_message);
            break;
        }
        if (c->in_len - at - 4 < n) break; /* the rest of it has not come yet */
        ok = handle_frame(c, p + 4, n);
        c->frames++;
        at += 4 + (size_t)n;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    /* A tick is answered when this side has said nothing for a quarter of
     * the tick time (a C node may only answer ticks); more often, two
     * Beamline nodes would answer each other's answers forever. */
    int64_t quarter = bl__dist.tick_ms / 4;
    if (ok && tick && c->out.index == 0 && c->last_rx - c->last_tx >= quarter) {
        ei_x_append_buf(&c->out, "\0\0\0\0", 4);
        ok = write_out(c);
    }
    return ok;
}

/* ---- sending ---- */

static bool encode_pid(conn *c, ei_x_buff *x, bl_pid pid)
{
    erlang_pid ep;
    if (pid == BL_PID_NONE || bl__dist_pid_out(pid, &ep) < 0)
        return ei_x_encode_atom(x, "undefined") == 0;
    return ei_x_encode_pid(x, &ep) == 0;
}

/* Appends the frame for one BL__TAG_DIST_OUT message to c->out.  false: a bad message. */
static bool encode_out(conn *c, const bl_msg *m)
{
    if (m->len < sizeof(bl__dout)) return false;
    bl__dout h;
    memcpy(&h, m->data, sizeof h);
    if (h.name_len > MAXATOMLEN - 1 || m->len < sizeof h + h.name_len) return false;
    const char *name = (const char *)m->data + sizeof h;
    const char *data = name + h.name_len;
    size_t len = m->len - sizeof h - h.name_len;
    ei_x_buff *x = &c->out;
    if (h.kind == BL__DOUT_SIG) {
        bl__dsig g;
        if (len < sizeof g) return false;
        memcpy(&g, data, sizeof g);
        if (g.detail_len != len - sizeof g || g.kind > BL_NOCONNECTION) return false;
        bl_reason r = {(bl_reason_kind)g.kind, g.code, g.detail_len ? data + sizeof g : NULL,
                       (size_t)g.detail_len};
        return bl__dctl_out(&c->ctl, x, c->peer, c->self, &h, name, &g, g.has_reason ? &r : NULL);
    }
    /* A reply nobody waits for (the caller gave up, or it came by another connection). */
    if (h.kind == BL__DOUT_REPLY && !bl__dgs_waiting(&c->ctl, h.ref)) return true;
    int start = x->index;
    erlang_pid to;
    bool ok = ei_x_append_buf(x, "\0\0\0\0\x70", 5) == 0 && ei_x_encode_version(x) == 0;
    if (h.name_len) {
        char nm[MAXATOMLEN];
        memcpy(nm, name, h.name_len);
        nm[h.name_len] = 0;
        /* {6, From, '', ToName}: From is the sender, or this connection for outsiders. */
        ok = ok && ei_x_encode_tuple_header(x, 4) == 0 &&
             ei_x_encode_long(x, BL__OP_REG_SEND) == 0 &&
             encode_pid(c, x, m->from != BL_PID_NONE ? m->from : bl_self()) &&
             ei_x_encode_atom(x, "") == 0 && ei_x_encode_atom(x, nm) == 0;
    } else {
        /* {2, '', To} */
        ok = ok && bl__dist_pid_out(h.to, &to) == 0 && ei_x_encode_tuple_header(x, 3) == 0 &&
             ei_x_encode_long(x, BL__OP_SEND) == 0 && ei_x_encode_atom(x, "") == 0 &&
             ei_x_encode_pid(x, &to) == 0;
    }
    if (h.kind == BL__DOUT_TERM) {
        ok = ok && ei_x_append_buf(x, data, (int)len) == 0;
    } else if (h.kind != BL__DOUT_PLAIN) {
        ok = ok && bl__dgs_encode(&c->ctl, x, &h, m->from, data, len);
    } else {
        /* bl_send_ref's reference, when there is one, as a fifth element. */
        ok = ok && ei_x_encode_version(x) == 0 && ei_x_encode_tuple_header(x, h.ref ? 5 : 4) == 0 &&
             ei_x_encode_atom(x, "$bl") == 0 && encode_pid(c, x, m->from) &&
             ei_x_encode_long(x, (long)h.tag) == 0 && ei_x_encode_binary(x, data, (long)len) == 0 &&
             (!h.ref || ei_x_encode_ulonglong(x, h.ref) == 0);
    }
    if (!ok) {
        x->index = start;
        return false;
    }
    put32((uint8_t *)x->buff + start, (uint32_t)(x->index - start - 4));
    return true;
}

/*
 * The frames in c->out, rewritten for a peer that takes distribution
 * headers (an Erlang node then refuses pass-through frames): each
 * 'p', 131, control [, 131, message] becomes 131, 'D', 0 (a header with no
 * atom cache references), control [, message], the terms without their
 * version bytes.  *len gets the bytes to write; NULL without memory or on a
 * frame this side could not have written.
 */
static const uint8_t *with_headers(conn *c, size_t *len)
{
    const uint8_t *in = (const uint8_t *)c->out.buff;
    size_t n = (size_t)c->out.index, frames = 0;
    for (size_t at = 0; at + 4 <= n; frames++) {
        uint32_t k = (uint32_t)in[at] << 24 | (uint32_t)in[at + 1] << 16 |
                     (uint32_t)in[at + 2] << 8 | in[at + 3];
        at += 4 + (size_t)k;
    }
    if (n + frames > c->wire_cap) {
        uint8_t *w = realloc(c->wire, n + frames);
        if (!w) return NULL;
        c->wire = w;
        c->wire_cap = n + frames;
    }
    uint8_t *o = c->wire;
    for (size_t at = 0; at + 4 <= n;) {
        const uint8_t *f = in + at + 4;
        size_t k = (size_t)((uint32_t)in[at] << 24 | (uint32_t)in[at + 1] << 16 |
                            (uint32_t)in[at + 2] << 8 | in[at + 3]);
        at += 4 + k;
        if (k == 0) { /* a tick */
            memset(o, 0, 4);
            o += 4;
            continue;
        }
        size_t ctl_end = 2;
        if (k < 3 || f[0] != PASS_THROUGH || f[1] != 131 || bl__etf_skip(f, k, &ctl_end) < 0)
            return NULL;
        bool has_msg = ctl_end < k;
        if (has_msg && f[ctl_end] != 131) return NULL;
        size_t body = 3 + (ctl_end - 2) + (has_msg ? k - ctl_end - 1 : 0);
        put32(o, (uint32_t)body);
        o[4] = 131;
        o[5] = 'D';
        o[6] = 0;
        memcpy(o + 7, f + 2, ctl_end - 2);
        if (has_msg) memcpy(o + 7 + (ctl_end - 2), f + ctl_end + 1, k - ctl_end - 1);
        o += 4 + body;
    }
    *len = (size_t)(o - c->wire);
    return c->wire;
}

static bool write_out(conn *c)
{
    if (c->out.index == 0) return true;
    const uint8_t *bytes = (const uint8_t *)c->out.buff;
    size_t len = (size_t)c->out.index;
    if (c->hdr && !(bytes = with_headers(c, &len))) return fail(c, "cannot frame what goes out");
    ssize_t n = bl_io_send_all(c->fd, bytes, len, 0, bl__dist.tick_ms);
    if (n != (ssize_t)len) return fail(c, "write failed: %s", strerror(n < 0 ? (int)-n : EPIPE));
    c->out.index = 0;
    c->last_tx = now_ms();
    c->wrote = true;
    return true;
}

/* ---- the loop ---- */

/* Answers a bl_dist_connect waiter (its ref) with status: 0 once up, else -errno. */
static void reply_ready(const bl_msg *m, int status)
{
    bl__send_ex(m->from, BL__TAG_DIST_READY, m->ref, &status, sizeof status, 0);
}

/* One message from the mailbox: false ends the connection. */
static bool handle_msg(conn *c, bl_msg *m)
{
    switch (m->tag) {
    case BL_TAG_IO_DATA: {
        uint64_t frames = c->frames;
        if (!handle_bytes(c, m->data, m->len)) return false;
        bool quick = !c->wrote && m->len < RECV_MAX &&
                     (c->frames - frames > 1 || now_ns() - c->armed_ns < FAST_NS);
        c->quick = quick ? c->quick + 1 : 0;
        c->wrote = false;
        if (c->quick < TRICKLE)
            c->delay_us = 0;
        else if (!c->delay_us)
            c->delay_us = COALESCE_US;
        else if ((c->delay_us *= 2) > COALESCE_MAX)
            c->delay_us = COALESCE_MAX;
        int rc = arm_recv(c, c->delay_us);
        return rc == 0 || fail(c, "cannot receive: %s", strerror(-rc));
    }
    case BL_TAG_IO_CLOSED: {
        int e = m->len >= sizeof(int) ? *(int *)m->data : 0;
        return fail(c, e ? "socket error: %s" : "peer closed the connection", strerror(-e));
    }
    case BL__TAG_DIST_OUT:
        if (!encode_out(c, m))
            bl__dist_log("a message to %s could not be encoded: dropped", peer_name(c));
        return c->out.index < FLUSH_AT || write_out(c);
    case BL__TAG_DIST_WAIT:
        reply_ready(m, 0);
        return true;
    case BL__TAG_DIST_STOP:
        return fail(c, "stopped");
    default:
        return true; /* not for us: dropped */
    }
}

static void run(conn *c)
{
    int64_t tick = bl__dist.tick_ms, quarter = tick / 4 > 0 ? tick / 4 : 1;
    c->last_rx = c->last_tx = now_ms();
    for (;;) {
        int64_t now = now_ms();
        if (now - c->last_rx >= tick) {
            fail(c, "no data from the node for %lld ms (net tick time)", (long long)tick);
            return;
        }
        if (now - c->last_tx >= quarter && c->out.index == 0) {
            ei_x_append_buf(&c->out, "\0\0\0\0", 4); /* a tick */
            if (!write_out(c)) return;
        }
        int64_t wait = c->last_tx + quarter - now;
        if (c->last_rx + tick - now < wait) wait = c->last_rx + tick - now;
        bl_msg *m;
        if (bl_recv(&m, NULL, NULL, wait > 0 ? wait : 0, 0) < 0) continue;
        bool ok = handle_msg(c, m);
        bl_msg_free(m);
        /* Whatever else is queued goes in the same write. */
        for (int i = 0; ok && i < 256 && bl_recv(&m, NULL, NULL, 0, 0) == 0; i++) {
            ok = handle_msg(c, m);
            bl_msg_free(m);
        }
        if (!ok || !write_out(c)) return;
    }
}

/*
 * After the end: waiters hear why; messages queued for the node go to the
 * connection that took over, if one did, else they are dropped (as Erlang
 * drops what a connection that went down did not send).
 */
static void pass_on_queued(int peer, int status)
{
    bl_pid next = peer >= 0 ? bl__dist_peer_current(peer) : BL_PID_NONE;
    int err;
    bl_proc *t = next != BL_PID_NONE ? bl__target(next, &err) : NULL;
    bl_msg *m;
    for (int i = 0; i < 100000 && bl_recv(&m, NULL, NULL, 0, 0) == 0; i++) {
        if (t && (m->tag == BL__TAG_DIST_OUT || m->tag == BL__TAG_DIST_WAIT)) {
            bl__push(t, next, m, false); /* the same envelope, its sender kept */
            continue;
        }
        if (m->tag == BL__TAG_DIST_WAIT) reply_ready(m, status);
        if (m->tag == BL__TAG_DIST_OUT) bl__dist_signal_unsent(m);
        bl_msg_free(m);
    }
}

/* An outbound process waits for its starter to say it is the peer's connection. */
static bool outbound_go(void)
{
    uint32_t tag = BL__TAG_DIST_GO;
    bl_msg *m;
    if (bl_recv(&m, bl_match_tag, &tag, 10000, 0) < 0) return false;
    bool go = m->len == sizeof go && *(bool *)m->data;
    bl_msg_free(m);
    return go;
}

void bl__dist_conn_main(void *arg)
{
    intptr_t a = (intptr_t)arg;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        if (a < 0) close((int)~a);
        return;
    }
    c->self = bl_self();
    c->peer = a >= 0 ? (int)a : -1;
    c->fd = -1;
    c->sock = (bl__dsock){.fd = -1, .accepted = -1};
    c->ec = bl__dist.ec;
    c->ec.setup_context = &c->sock;
    ei_x_new(&c->out);
    bl_cleanup_push(&c->cleanup, conn_cleanup, c);

    if (a >= 0 && !outbound_go()) {
        /* Another connection to that node was started at the same time (or
         * the word never came: then this one lets the peer go). */
        bl_cleanup_pop(&c->cleanup, false);
        conn_end(c, false);
        return;
    }
    int rc = a >= 0 ? connect_out(c) : accept_in(c, (int)~a);
    if (rc == 0 && !bl__dist_peer_claim(c->peer, c->self, a < 0)) {
        fail(c, "already connected");
        rc = -EALREADY;
    }
    if (rc == 0) {
        c->up = true;
        /* As Erlang's distribution does (inet_tcp_dist, nodelay): a frame goes
         * out when written, not held until the peer acknowledges the last. */
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Both sides announced distribution headers: frames go out with one. */
        c->hdr = c->sock.peer_flags & BL__DFLAG_DIST_HDR_ATOM_CACHE;
        rc = arm_recv(c, 0);
        if (rc < 0)
            fail(c, "cannot receive: %s", strerror(-rc));
        else
            run(c);
    }
    bl_cleanup_pop(&c->cleanup, false);
    /* Release first, so that a send from now on starts a new connection. */
    if (c->peer >= 0) bl__dist_peer_release(c->peer, c->self, c->up);
    c->released = true;
    if (!c->logged)
        bl__dist_log(c->up ? "connection to %s closed: %s" : "cannot connect to %s: %s",
                     peer_name(c), c->why[0] ? c->why : "closed");
    pass_on_queued(c->peer, rc < 0 ? rc : -ECONNRESET);
    conn_end(c, false);
}
