/*
 * net/tls_conn.h - what net/tls.c (contexts, handshakes, the record layer
 * over the ring) and net/ktls.c (the hand-off to the kernel's TLS) share:
 * the context and connection structs, and ktls.c's entry points.
 *
 * A connection is used by its owner process only, so nothing in it is
 * shared between threads but the context, whose fields are written once
 * before it is published and read-only after (its count aside).
 */
#ifndef BL_NET_TLS_CONN_H
#define BL_NET_TLS_CONN_H

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <stdatomic.h>

#include "beamline/tls.h"

/* A stack buffer for ciphertext: a TLS record (16 KiB of data) and some headroom. */
#define BL_TLS_BUF (16 * 1024 + 512)

struct bl_tls_ctx {
    SSL_CTX *ssl;          /* OpenSSL's context: each connection's SSL is made from it */
    bool server;           /* accepts (else connects) */
    bool verify;           /* client: verifies the server's certificate and name */
    bool ktls;             /* lets OpenSSL hand the keys over (SSL_OP_ENABLE_KTLS) */
    bool exact;            /* handshakes read record by record (kTLS receive needs it) */
    unsigned char *alpn;   /* the protocols in ALPN's wire format, or NULL */
    size_t alpn_len;       /* its length */
    _Atomic unsigned refs; /* the owner's and each live connection's */
};

struct bl_tls_conn {
    bl_cleanup cleanup; /* frees the connection if its owner dies while it lives */
    SSL *ssl;           /* OpenSSL's state; its BIOs are two filters over rmem / wmem */
    bl_tls_ctx *ctx;    /* holds one reference */
    BIO *rmem;          /* ciphertext received, for OpenSSL to read */
    BIO *wmem;          /* ciphertext OpenSSL wrote, to send */
    int fd;             /* the socket (owned unless borrowed) */
    bool borrowed;      /* fd is the caller's: never closed here (bl_tls_accept_borrowed) */
    bl_pid owner;       /* the only process that may use the connection */
    int ktls;           /* BL_TLS_KTLS_TX / _RX: the directions the kernel carries */
    bool ulp;           /* the kernel's tls ULP is attached to fd */
    bool done;          /* the handshake completed */
    bool eof;           /* the peer's FIN was read */
    size_t need;        /* exact handshake reads: bytes of the current record still to read */
    int ctrl_type;      /* kTLS send: the record type of OpenSSL's next write, 0 = data */
    int sys_err;        /* kTLS: the errno of a failed send / receive in a filter */
    int werr;           /* the error that ended writing, 0 while writes work */
    char alpn[256];     /* the protocol agreed on, "" if none */
    char err[192];      /* why the last call failed */
};

/*
 * Stacks a filter BIO on mem for connection c: it passes bytes to and from
 * mem until OpenSSL hands a direction to the kernel (BIO_CTRL_SET_KTLS),
 * then moves that direction's records on c->fd itself, without waiting.
 * NULL when out of memory (mem is then freed).
 */
BIO *bl__tls_filter(bl_tls_conn *c, BIO *mem);

#endif /* BL_NET_TLS_CONN_H */
