/*
 * dist/sock.c - ei's socket callbacks, implemented with bl_io_*.
 *
 * ei runs the handshake (name, challenge, MD5 digest of the cookie, ack)
 * with blocking-style calls through these callbacks.  Each one is called
 * by ei from inside the connection process that called ei_accept_tmo or
 * ei_xconnect_host_port_tmo, and each makes a bl_io_* call: from ei's view
 * it blocks, but only that process parks, never the scheduler thread.
 * EI_SCLBK_FLG_FULL_IMPL tells ei the callbacks keep their own timeouts, so
 * ei never select()s on the descriptor itself.  The callbacks return 0 or
 * a positive errno, ei's convention.
 *
 * ei's accept both accepts and handshakes.  The acceptor process accepts
 * (so a slow handshake never holds up the next connection) and hands the
 * socket to a connection process; that one gives it to ei through a
 * one-shot listen context (accepted >= 0) whose accept callback returns the
 * socket it already has.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "beamline/io.h"
#include "dist/dist.h"

static int64_t ms_of(unsigned tmo)
{
    return tmo == EI_SCLBK_INF_TMO ? BL_INFINITY : (int64_t)tmo;
}

static int cb_socket(void **ctx, void *setup)
{
    bl__dsock *s = setup;
    if (!s) return EINVAL;
    if (s->accepted < 0) {
        int fd = bl_io_socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -fd;
        s->fd = fd;
    }
    *ctx = s;
    return 0;
}

static int cb_close(void *ctx)
{
    bl__dsock *s = ctx;
    int fd = s->fd >= 0 ? s->fd : s->accepted;
    s->fd = s->accepted = -1;
    if (fd < 0) return 0;
    int rc = s->dying ? (close(fd) < 0 ? -errno : 0) : bl_io_close(fd);
    return rc < 0 ? -rc : 0;
}

/* Only the one-shot listen context: its "listening" address is the accepted socket's. */
static int cb_listen(void *ctx, void *addr, int *len, int backlog)
{
    bl__dsock *s = ctx;
    if (s->accepted < 0) return EOPNOTSUPP;
    socklen_t l = (socklen_t)*len;
    if (getsockname(s->accepted, addr, &l) < 0) return errno;
    *len = (int)l;
    return 0;
}

static int cb_accept(void **ctx, void *addr, int *len, unsigned tmo)
{
    bl__dsock *s = *ctx;
    if (s->accepted < 0) return EOPNOTSUPP;
    socklen_t l = (socklen_t)*len;
    if (getpeername(s->accepted, addr, &l) < 0) return errno;
    *len = (int)l;
    s->fd = s->accepted;
    s->accepted = -1;
    return 0;
}

/* Remembers a callback's error for the connection's log. */
static int failed(bl__dsock *s, long rc)
{
    s->err = (int)-rc;
    return s->err;
}

static int cb_connect(void *ctx, void *addr, int len, unsigned tmo)
{
    bl__dsock *s = ctx;
    int rc = bl_io_connect(s->fd, addr, (socklen_t)len, ms_of(tmo));
    return rc < 0 ? failed(s, rc) : 0;
}

/*
 * The handshake's name and challenge messages carry this node's capability
 * flags, which ei fixes without DFLAG_DIST_MONITOR and _NAME (0x08, 0x20):
 * without them, Erlang nodes keep monitors of this node's processes to
 * themselves and never send MONITOR_P, so a process dying here would never
 * be DOWN there.  This node handles monitors (ctl.c), so it says so: the
 * flags' low byte gets both bits on their way out.  It also reads
 * distribution headers with atom cache references (etf.c), and announces
 * DFLAG_DIST_HDR_ATOM_CACHE (0x2000): an Erlang node then encodes for it as
 * for another Erlang node, with the atom cache, instead of spelling every
 * atom out.  The flags are not part of the cookie digest.  Only ei writes
 * through here, and only during the handshake; after it the connection
 * writes the socket itself.
 */
static const char *with_monitor_flags(const char *buf, ssize_t len, char *copy, size_t cap)
{
    if (len < 11 || (size_t)len > cap) return buf;
    unsigned mlen = (unsigned)(uint8_t)buf[0] << 8 | (uint8_t)buf[1];
    if (mlen != (size_t)len - 2) return buf;
    size_t low; /* offset of the flags' lowest byte */
    if (buf[2] == 'n')
        low = 8; /* len16 'n' version16 flags32 ... */
    else if (buf[2] == 'N')
        low = 10; /* len16 'N' flags64 ... */
    else
        return buf;
    memcpy(copy, buf, (size_t)len);
    copy[low] = (char)(copy[low] | 0x28);
    copy[low - 1] = (char)(copy[low - 1] | 0x20);
    return copy;
}

static int cb_write(void *ctx, const char *buf, ssize_t *len, unsigned tmo)
{
    bl__dsock *s = ctx;
    char copy[600];
    buf = with_monitor_flags(buf, *len, copy, sizeof copy);
    ssize_t n = bl_io_send(s->fd, buf, (size_t)*len, 0, ms_of(tmo));
    if (n < 0) return failed(s, n);
    *len = n;
    return 0;
}

static int cb_writev(void *ctx, const void *iov, int iovcnt, ssize_t *len, unsigned tmo)
{
    const struct iovec *v = iov;
    ssize_t done = 0;
    for (int i = 0; i < iovcnt; i++) {
        ssize_t n = (ssize_t)v[i].iov_len;
        int err = cb_write(ctx, v[i].iov_base, &n, tmo);
        if (err && !done) return err;
        if (err) break;
        done += n;
        if ((size_t)n < v[i].iov_len) break; /* a short write: ei comes back for the rest */
    }
    *len = done;
    return 0;
}

/*
 * Follows the handshake's packets as ei reads them (a 2-byte length, then
 * the body) to learn the peer's capability flags from its first name or
 * challenge message ('n': version16 flags32; 'N': flags64).
 */
static void note_flags(bl__dsock *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->hs_need == 0) { /* the length */
            s->hs_len[s->hs_got++] = p[i];
            if (s->hs_got == 2) {
                s->hs_need = (size_t)s->hs_len[0] << 8 | s->hs_len[1];
                s->hs_got = 0;
            }
            continue;
        }
        if (s->hs_got < sizeof s->hs_head) s->hs_head[s->hs_got] = p[i];
        s->hs_got++;
        if (--s->hs_need > 0) continue;
        const uint8_t *h = s->hs_head;
        if (!s->peer_flags_known && h[0] == 'n' && s->hs_got >= 7) {
            s->peer_flags =
                (uint64_t)h[3] << 24 | (uint64_t)h[4] << 16 | (uint64_t)h[5] << 8 | h[6];
            s->peer_flags_known = true;
        } else if (!s->peer_flags_known && h[0] == 'N' && s->hs_got >= 9) {
            for (int k = 1; k <= 8; k++) s->peer_flags = s->peer_flags << 8 | h[k];
            s->peer_flags_known = true;
        }
        s->hs_got = 0;
    }
}

static int cb_read(void *ctx, char *buf, ssize_t *len, unsigned tmo)
{
    bl__dsock *s = ctx;
    ssize_t n = bl_io_recv(s->fd, buf, (size_t)*len, 0, ms_of(tmo));
    if (n < 0) return failed(s, n);
    note_flags(s, (const uint8_t *)buf, (size_t)n);
    *len = n;
    return 0;
}

/* The handshake's packets have a 2-byte length, as on TCP. */
static int cb_header_size(void *ctx, int *sz)
{
    *sz = 2;
    return 0;
}

static int cb_get_fd(void *ctx, int *fd)
{
    bl__dsock *s = ctx;
    *fd = s->fd >= 0 ? s->fd : s->accepted;
    return *fd >= 0 ? 0 : EBADF;
}

ei_socket_callbacks bl__dist_socket_callbacks = {
    .flags = EI_SCLBK_FLG_FULL_IMPL,
    .socket = cb_socket,
    .close = cb_close,
    .listen = cb_listen,
    .EI_ACCEPT_NAME = cb_accept,
    .connect = cb_connect,
    .writev = cb_writev,
    .write = cb_write,
    .read = cb_read,
    .handshake_packet_header_size = cb_header_size,
    .connect_handshake_complete = NULL,
    .accept_handshake_complete = NULL,
    .get_fd = cb_get_fd,
};
