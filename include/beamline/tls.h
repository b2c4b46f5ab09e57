/*
 * beamline/tls.h - TLS 1.2 and 1.3 on sockets, for processes (OpenSSL 3).
 *
 * A context holds what every connection of one side shares: the
 * certificate and key (a server), the certificates trusted (a client), the
 * ALPN protocols and the versions allowed.  bl_tls_accept (on a descriptor
 * a listener accepted) and bl_tls_connect (on a connected socket) run the
 * handshake through the caller's scheduler ring: OpenSSL works on memory
 * buffers and every byte moves with bl_io_recv / bl_io_send, so a handshake
 * never blocks a scheduler thread, and a deadline bounds it.  After the
 * handshake each direction is carried, where the kernel has kTLS (its `tls`
 * ULP), by the kernel itself: then bl_tls_read / bl_tls_write are plain
 * ring receives and sends on the descriptor; elsewhere OpenSSL's record
 * layer encrypts into memory and the ring moves the result.  bl_tls_ktls
 * says which.
 *
 * Every call but the context ones is process only (-EPERM elsewhere) and
 * returns a byte count, 0, or a negative errno:
 *   -ETIMEDOUT    the deadline passed;
 *   -ECONNRESET   the peer closed (or reset) the connection in the middle of
 *                 the handshake, or without a close_notify after it;
 *   -EPROTO       the peer broke the protocol or sent an alert (no shared
 *                 version or cipher, garbage instead of a ClientHello, no
 *                 ALPN protocol in common, ...);
 *   -EKEYREJECTED a client could not verify the server's certificate (not
 *                 signed by a trusted CA, expired, issued for another name);
 *   -EINVAL, -ENOMEM, -EPERM, and what bl_io_recv / bl_io_send return.
 * bl_tls_error says why in words (OpenSSL's reason, the verification error).
 *
 * Ownership.  bl_tls_accept and bl_tls_connect take the descriptor whatever
 * they return: on failure it is closed (after an alert to the peer when
 * there is one to send); on success the connection owns it and bl_tls_close
 * closes it.  bl_tls_accept_borrowed is bl_tls_accept on a descriptor that
 * stays the caller's (a listener's handler, whose socket the listener
 * closes after the handler's process ends): it is never closed by this
 * module, neither on failure, nor by bl_tls_close (which still sends
 * close_notify and frees the connection), nor when the process dies (the
 * cleanup handler then frees the OpenSSL state only).  A connection belongs to the process that
 * made it: only that process may use or close it (others get -EPERM), and when that process dies,
 * however it dies (a kill in the middle of a handshake or of a read included), the connection goes
 * with it: a cleanup handler (bl_cleanup_push) frees the OpenSSL state and closes the descriptor,
 * without a close_notify.  So do not free a connection from a gen_server's
 * release hook: its cleanup handler runs after the hook, by itself.  A
 * process that hibernates loses its connections the same way.  The calls
 * set TCP_NODELAY on the socket (records are whole messages), and use
 * about 20 KiB of the process's stack besides OpenSSL's own needs: give
 * TLS processes 64 KiB of stack or more (the default is 128 KiB).
 *
 * Where C differs from Erlang's ssl application: a connection is not a
 * port with a controlling process that can be changed, it is a handle used
 * by one process's blocking calls (there is no {active, true} mode, and no
 * ssl:controlling_process); renegotiation is refused; a server does not ask
 * for client certificates; a close sends close_notify and does not wait for
 * the peer's.
 */
#ifndef BEAMLINE_TLS_H
#define BEAMLINE_TLS_H

#include <beamline.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol versions, as on the wire. */
#define BL_TLS_1_2 0x0303
#define BL_TLS_1_3 0x0304

/* What bl_tls_ktls returns: the directions the kernel carries. */
#define BL_TLS_KTLS_TX 1 /* the kernel encrypts what bl_tls_write sends */
#define BL_TLS_KTLS_RX 2 /* the kernel decrypts what bl_tls_read receives */

/* A context: what the connections of one side share.  Any thread may use it. */
typedef struct bl_tls_ctx bl_tls_ctx;
/* One TLS connection on one socket, owned by one process. */
typedef struct bl_tls_conn bl_tls_conn;

/* A context's options; a zeroed struct is a client trusting the system's store. */
typedef struct bl_tls_opts {
    const char *cert_file; /* PEM: the certificate, then its chain (server: required) */
    const char *key_file;  /* PEM: cert_file's private key (server: required) */
    const char *ca_file;   /* client: PEM CAs to trust; NULL = the system's store */
    bool insecure;         /* client: no verification of the server at all (tests only) */
    const char *alpn;      /* comma-separated protocols, most wanted first ("h2,http/1.1"):
                              a client offers them, a server picks its first one the client
                              offers and refuses clients offering none of them; NULL = none */
    uint16_t min_version;  /* BL_TLS_1_2 (0 = BL_TLS_1_2) */
    uint16_t max_version;  /* BL_TLS_1_3 (0 = BL_TLS_1_3) */
    bool no_ktls;          /* keep OpenSSL's record layer even where the kernel has kTLS */
} bl_tls_opts;

/*
 * A server context / a client context.  The files are read when it is made
 * (through the ring from a process, with read(2) from any other thread).
 * NULL on failure, with errno set (EINVAL: a bad option or file content,
 * ENOENT / EACCES ...: a file, ENOMEM) and bl_tls_error(NULL) saying why.
 * A context lives until bl_tls_ctx_free and the end of the last connection
 * made with it, whichever comes last.
 */
bl_tls_ctx *bl_tls_server_ctx(const bl_tls_opts *opts);
bl_tls_ctx *bl_tls_client_ctx(const bl_tls_opts *opts);
/* Takes one more reference on ctx (for a process that keeps it); returns ctx. */
bl_tls_ctx *bl_tls_ctx_up_ref(bl_tls_ctx *ctx);
/* Drops the caller's reference.  NULL is ignored.  Any thread. */
void bl_tls_ctx_free(bl_tls_ctx *ctx);

/*
 * The server's handshake on fd (a connected socket), within timeout_ms
 * (BL_INFINITY: no limit): a client that does not finish in time is
 * dropped with -ETIMEDOUT.  0 and the connection in *out, or a negative
 * errno (see above) with *out NULL.  fd is taken either way.
 */
int bl_tls_accept(bl_tls_ctx *ctx, int fd, int64_t timeout_ms, bl_tls_conn **out);

/*
 * As bl_tls_accept, but fd stays the caller's, whatever happens: a failed
 * handshake leaves it open (after the alert, if any), and bl_tls_close or
 * the owner's death free the connection without closing fd.  For handlers
 * of a listener, which owns its connections' sockets.
 */
int bl_tls_accept_borrowed(bl_tls_ctx *ctx, int fd, int64_t timeout_ms, bl_tls_conn **out);

/*
 * The client's handshake on fd (a connected socket).  sni is the server's
 * name (or a numeric address): sent as SNI when it is a name, and what the
 * server's certificate must be issued for; required unless the context is
 * insecure.  As bl_tls_accept otherwise.
 */
int bl_tls_connect(bl_tls_ctx *ctx, int fd, const char *sni, int64_t timeout_ms, bl_tls_conn **out);

/*
 * Reads up to len bytes of application data, waiting up to timeout_ms for
 * the first: the bytes read, 0 when the peer closed with close_notify, or a
 * negative errno.  A timeout loses nothing; the connection stays usable.
 */
ssize_t bl_tls_read(bl_tls_conn *c, void *buf, size_t len, int64_t timeout_ms);
/* Reads exactly len bytes (fewer at the end of the data, or after an error), as bl_io_read_all. */
ssize_t bl_tls_read_all(bl_tls_conn *c, void *buf, size_t len, int64_t timeout_ms);
/*
 * Writes all of buf[0..len), within timeout_ms for the whole call: len, or a
 * negative errno.  After a write error or timeout the connection cannot be
 * written again (part of a record may have gone): the next writes return
 * the same error, and the connection is only good for bl_tls_close.
 */
ssize_t bl_tls_write(bl_tls_conn *c, const void *buf, size_t len, int64_t timeout_ms);

/*
 * Sends close_notify (if the socket takes it within a second), closes the
 * descriptor (not a borrowed one) and frees the connection, whatever it returns: 0, or the
 * error that kept close_notify from going, or bl_io_close's.  -EINVAL for
 * NULL, -EPERM (nothing done) outside the owner process.
 */
int bl_tls_close(bl_tls_conn *c);

/*
 * The same as bl_tls_read / bl_tls_write with the plain signature of a
 * transport (ctx is the connection), for I/O loops that take a pair of
 * function pointers and a context, as net/http's does.
 */
ssize_t bl_tls_transport_read(void *conn, void *buf, size_t len, int64_t timeout_ms);
ssize_t bl_tls_transport_write(void *conn, const void *buf, size_t len, int64_t timeout_ms);

/* ---- what was negotiated ---- */

/* BL_TLS_KTLS_TX | BL_TLS_KTLS_RX: the directions the kernel carries (0: OpenSSL both). */
int bl_tls_ktls(const bl_tls_conn *c);
/* The ALPN protocol agreed on, or NULL when none was.  Valid while c lives. */
const char *bl_tls_alpn(const bl_tls_conn *c);
/* The protocol version (BL_TLS_1_2 or BL_TLS_1_3). */
int bl_tls_version(const bl_tls_conn *c);
/* The name the client sent as SNI (on either side), or NULL when it sent none. */
const char *bl_tls_sni(const bl_tls_conn *c);
/* The cipher suite's name ("TLS_AES_256_GCM_SHA384"), for logs. */
const char *bl_tls_cipher(const bl_tls_conn *c);
/* The descriptor (for bl_io_poll, getpeername ...; the connection still owns it). */
int bl_tls_fd(const bl_tls_conn *c);

/*
 * Why the last call on c failed, in words (OpenSSL's reason, the
 * certificate's verification error), "" if none did.  With c NULL: why
 * the calling thread's last failed bl_tls_*_ctx, bl_tls_accept or
 * bl_tls_connect failed; read it before the process blocks again (a
 * process may move to another thread at each wait).
 */
const char *bl_tls_error(const bl_tls_conn *c);

/*
 * True when the kernel can carry TLS records (the `tls` ULP attaches to a
 * TCP socket): probed once, on loopback.  Any thread.
 */
bool bl_tls_ktls_available(void);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_TLS_H */
