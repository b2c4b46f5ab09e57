/*
 * tests/net/tls_test.h - what the TLS tests share: certificates made on the
 * spot (OpenSSL's API, into a temporary directory removed after), and a
 * loopback TLS echo server run by processes.
 */
#ifndef BL_TLS_TEST_H
#define BL_TLS_TEST_H

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beamline/tls.h"
#include "bl_test.h"

/* ---- certificates ---- */

/* A temporary directory with the files of one certificate: path/<name>.crt, .key. */
typedef struct tls_files {
    char dir[64];   /* the directory, removed by tls_files_remove */
    char cert[128]; /* the certificate (its own CA: self-signed, CA:TRUE) */
    char key[128];  /* its private key */
} tls_files;

static inline bool tls_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/*
 * A self-signed P-256 certificate for cn, valid for localhost and
 * 127.0.0.1, written as PEM files <name>.crt and <name>.key in f->dir
 * (made by the first call: f->dir[0] == 0).  False on any failure.
 */
static inline bool tls_make_cert(tls_files *f, const char *name, const char *cn)
{
    if (!f->dir[0]) {
        snprintf(f->dir, sizeof f->dir, "/tmp/bl_tls_XXXXXX");
        if (!mkdtemp(f->dir)) return false;
    }
    snprintf(f->cert, sizeof f->cert, "%s/%s.crt", f->dir, name);
    snprintf(f->key, sizeof f->key, "%s/%s.key", f->dir, name);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = k && x;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid() ^ (long)(uintptr_t)x);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, n);
        ok = X509_set_pubkey(x, k) && tls_add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
             tls_add_ext(x, NID_subject_key_identifier, "hash") &&
             tls_add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") &&
             X509_sign(x, k, EVP_sha256()) > 0;
    }
    FILE *cf = ok ? fopen(f->cert, "w") : NULL, *kf = ok ? fopen(f->key, "w") : NULL;
    ok =
        cf && kf && PEM_write_X509(cf, x) && PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL);
    if (cf) fclose(cf);
    if (kf) fclose(kf);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* Removes f's directory and everything in it. */
static inline void tls_files_remove(tls_files *f)
{
    if (!f->dir[0]) return;
    DIR *d = opendir(f->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    f->dir[0] = 0;
}

/* ---- a TLS echo server ---- */

/* What a server connection tells the test process when its handshake ended. */
typedef struct tls_report {
    int rc;        /* bl_tls_accept's result */
    int version;   /* the version agreed on */
    int ktls;      /* bl_tls_ktls */
    char alpn[32]; /* the protocol agreed on, "" if none */
    char sni[64];  /* the name the client sent, "" if none */
    char err[192]; /* bl_tls_error(NULL) after a failure */
} tls_report;

enum { T_ACCEPTED = 201 };

typedef struct tls_server {
    bl_tls_ctx *ctx;      /* the server's context */
    int lfd;              /* the listener */
    uint16_t port;        /* where it listens */
    int64_t handshake_ms; /* bl_tls_accept's timeout */
    bl_pid acceptor;      /* the accepting process */
    bl_pid ctl;           /* the test process: gets a T_ACCEPTED per connection */
    void (*serve)(struct tls_server *s, bl_tls_conn *c); /* after the handshake (NULL: echo) */
} tls_server;

typedef struct tls_conn_arg {
    tls_server *srv; /* the server */
    int fd;          /* the accepted socket */
} tls_conn_arg;

/* Echoes what it reads until the peer closes or an error; then closes. */
static inline void tls_echo(bl_tls_conn *c)
{
    char buf[32 * 1024];
    for (;;) {
        ssize_t n = bl_tls_read(c, buf, sizeof buf, 30000);
        if (n <= 0 || bl_tls_write(c, buf, (size_t)n, 30000) != n) break;
    }
}

static inline void tls_conn_proc(void *arg)
{
    tls_conn_arg a = *(tls_conn_arg *)arg;
    free(arg);
    bl_tls_conn *c = NULL;
    tls_report r = {0};
    r.rc = bl_tls_accept(a.srv->ctx, a.fd, a.srv->handshake_ms, &c);
    if (c) {
        r.version = bl_tls_version(c);
        r.ktls = bl_tls_ktls(c);
        snprintf(r.alpn, sizeof r.alpn, "%s", bl_tls_alpn(c) ? bl_tls_alpn(c) : "");
        snprintf(r.sni, sizeof r.sni, "%s", bl_tls_sni(c) ? bl_tls_sni(c) : "");
    } else {
        snprintf(r.err, sizeof r.err, "%s", bl_tls_error(NULL));
    }
    bl_send(a.srv->ctl, T_ACCEPTED, &r, sizeof r);
    if (!c) return;
    if (a.srv->serve)
        a.srv->serve(a.srv, c);
    else
        tls_echo(c);
    bl_tls_close(c);
}

static inline void tls_acceptor(void *arg)
{
    tls_server *s = arg;
    for (;;) {
        int fd = bl_io_accept(s->lfd, NULL, NULL, BL_INFINITY);
        if (fd < 0) return;
        tls_conn_arg *a = malloc(sizeof *a);
        *a = (tls_conn_arg){s, fd};
        if (bl_spawn(NULL, tls_conn_proc, a, NULL) != 0) {
            free(a);
            bl_io_close(fd);
        }
    }
}

/* Starts s (its ctx set) on a loopback port; the caller is its test process. */
static inline void tls_server_start(tls_server *s)
{
    s->ctl = bl_self();
    if (!s->handshake_ms) s->handshake_ms = 10000;
    s->lfd = bl_io_listen_tcp("127.0.0.1", 0, 256, &s->port);
    BL_CHECK(s->lfd >= 0);
    BL_CHECK_EQ(bl_spawn(&s->acceptor, tls_acceptor, s, NULL), 0);
}

/* Kills the acceptor, waits for it, closes the listener (connections run on). */
static inline void tls_server_stop(tls_server *s)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(s->acceptor, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(s->acceptor, &kill);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    bl_io_close(s->lfd);
}

/* The report of the next connection's handshake (rc -ETIMEDOUT if none came in 30 s). */
static inline tls_report tls_next_report(void)
{
    tls_report r = {.rc = -ETIMEDOUT};
    bl_msg *m = bl_test_recv_tag(T_ACCEPTED, 30000);
    if (m && m->len == sizeof r) memcpy(&r, m->data, sizeof r);
    bl_msg_free(m);
    return r;
}

/* A TLS client connection to 127.0.0.1:port (rc in *rc; NULL on failure). */
static inline bl_tls_conn *tls_dial(bl_tls_ctx *ctx, uint16_t port, const char *sni, int *rc)
{
    int fd = bl_io_connect_tcp("127.0.0.1", port, 10000);
    if (fd < 0) {
        *rc = fd;
        return NULL;
    }
    bl_tls_conn *c = NULL;
    *rc = bl_tls_connect(ctx, fd, sni, 10000, &c);
    return c;
}

/* Byte i of a test payload. */
static inline char tls_byte(size_t i)
{
    return (char)(i * 7 + (i >> 11));
}

/*
 * Sends len bytes of payload through c, in pieces of up to 100 KB (an echo
 * of more, unread, would fill both socket buffers and stop both sides),
 * and checks that they come back whole.
 */
static inline bool tls_echo_check(bl_tls_conn *c, size_t len)
{
    enum { PIECE = 100000 };
    char *out = malloc(PIECE), *in = malloc(PIECE);
    bool ok = out && in;
    /* Freed even when the caller is killed in the middle (the kill tests do that). */
    bl_cleanup c1, c2;
    bl_cleanup_push(&c1, free, out);
    bl_cleanup_push(&c2, free, in);
    for (size_t off = 0; ok && off < len; off += PIECE) {
        size_t k = len - off < PIECE ? len - off : PIECE;
        for (size_t i = 0; i < k; i++) out[i] = tls_byte(off + i);
        ok = bl_tls_write(c, out, k, 30000) == (ssize_t)k &&
             bl_tls_read_all(c, in, k, 30000) == (ssize_t)k && memcmp(in, out, k) == 0;
    }
    bl_cleanup_pop(&c2, true);
    bl_cleanup_pop(&c1, true);
    return ok;
}

#endif /* BL_TLS_TEST_H */
