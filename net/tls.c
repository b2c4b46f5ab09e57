/*
 * net/tls.c - TLS for processes (beamline/tls.h): contexts, the handshake
 * and OpenSSL's record layer driven over the scheduler's ring.
 *
 * OpenSSL 3 does the protocol; it never touches the socket.  Each SSL has
 * a memory BIO for each direction (behind a filter, net/ktls.c): OpenSSL
 * reads the ciphertext we received and writes what it wants sent, and
 * tells us with WANT_READ / WANT_WRITE what it waits for.  We move the
 * bytes with bl_io_recv / bl_io_send, which park the process and leave the
 * scheduler thread to others.  An OpenSSL call never spans a wait: its
 * error queue is per thread, and a process may resume on another thread
 * after each one, so errors are read right after the call that made them.
 *
 * Ciphertext goes to and from the socket through a buffer on the process's
 * stack, not from the memory BIOs' heap: a process killed in the middle of
 * a send or receive has its cleanup handler free the connection at once,
 * while the kernel may still read or write the buffer until the cancelled
 * operation completes, and the runtime keeps the stack, not our heap,
 * until then.  The copy costs about a microsecond per 16 KiB record, next
 * to the encryption's 5 to 10.
 *
 * After the handshake, where the kernel has kTLS, each direction OpenSSL
 * handed over (net/ktls.c explains how) is plain ring I/O on the
 * descriptor: bl_tls_write is bl_io_send, bl_tls_read is bl_io_recv until
 * the kernel refuses a non-data record (-EIO), which OpenSSL then reads
 * through the filter (an alert, close_notify).  Elsewhere SSL_read and
 * SSL_write run over the memory BIOs with ring I/O underneath.
 *
 * Measured on the 2-core machine, loopback, kernel without kTLS (so the
 * record layer is OpenSSL's), debug build: see net/README.md.
 *
 * Files (certificates, keys, CAs) are read through the ring from a process
 * and parsed from memory: OpenSSL's file loaders would block a scheduler.
 * The system store is one file (SSL_CERT_FILE, else OpenSSL's default
 * cert.pem), loaded into the context; only when it is missing does
 * OpenSSL's directory lookup remain, which reads files during handshakes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls_conn.h"

/* close_notify gets this long to leave, in bl_tls_close and after an alert. */
#define CLOSE_MS 1000
/* Plaintext per SSL_write: four records, then their ciphertext goes out. */
#define WRITE_CHUNK (64 * 1024)
/* Certificate and key files larger than this are refused. */
#define FILE_MAX (16 << 20)

/* Why the calling thread's last context, accept or connect failed. */
static __thread char last_err[192];

static __attribute__((format(printf, 3, 4))) void note(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* Records why c failed; returns rc. */
static __attribute__((format(printf, 3, 4))) int fail(bl_tls_conn *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* OpenSSL's reason for the latest error of this thread's queue, which is then emptied. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

/* ---- time ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int64_t timeout_ms)
{
    return timeout_ms < 0 ? BL_INFINITY : now_ms() + timeout_ms;
}

/* What is left until deadline, as a timeout for one ring operation. */
static int64_t left(int64_t deadline)
{
    if (deadline == BL_INFINITY) return BL_INFINITY;
    int64_t l = deadline - now_ms();
    return l > 0 ? l : 0;
}

/* ---- files ---- */

/* Reads path whole into a malloc'ed buffer: through the ring from a process, else read(2). */
static int read_file(const char *path, char **out, size_t *len)
{
    bool proc = bl_self() != BL_PID_NONE;
    int fd = proc ? bl_io_open(path, O_RDONLY, 0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return proc ? fd : -errno;
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n == cap) {
            char *bigger = cap < FILE_MAX ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                rc = cap < FILE_MAX ? -ENOMEM : -EFBIG;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t k =
            proc ? bl_io_read(fd, buf + n, cap - n, BL_INFINITY) : read(fd, buf + n, cap - n);
        if (k < 0) rc = proc ? (int)k : -errno;
        if (k <= 0) break;
        n += (size_t)k;
    }
    if (proc)
        bl_io_close(fd);
    else
        close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* PEM files are never encrypted here: no prompt on a terminal, a clear failure instead. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/* A memory BIO over path's contents, which *mem keeps (free it after the BIO). */
static int pem_bio(const char *path, char **mem, BIO **out, char *err, size_t errlen)
{
    size_t len = 0;
    int rc = read_file(path, mem, &len);
    if (rc < 0) {
        note(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    *out = BIO_new_mem_buf(*mem, (int)len);
    if (!*out) {
        free(*mem);
        note(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    return 0;
}

/* The certificate, then its chain, from a PEM file. */
static int use_chain(SSL_CTX *s, const char *path, char *err, size_t errlen)
{
    char *mem;
    BIO *b;
    int rc = pem_bio(path, &mem, &b, err, errlen);
    if (rc < 0) return rc;
    X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, no_password, NULL);
    if (!leaf || !SSL_CTX_use_certificate(s, leaf)) {
        note(err, errlen, "%s: no usable certificate (%s)", path, ssl_reason());
        rc = -EINVAL;
    }
    X509_free(leaf);
    for (X509 *x; rc == 0 && (x = PEM_read_bio_X509(b, NULL, no_password, NULL));)
        if (!SSL_CTX_add0_chain_cert(s, x)) {
            X509_free(x);
            note(err, errlen, "%s: chain: %s", path, ssl_reason());
            rc = -EINVAL;
        }
    ERR_clear_error(); /* the end of the file, as "no start line" */
    BIO_free(b);
    free(mem);
    return rc;
}

static int use_key(SSL_CTX *s, const char *path, char *err, size_t errlen)
{
    char *mem;
    BIO *b;
    int rc = pem_bio(path, &mem, &b, err, errlen);
    if (rc < 0) return rc;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    if (!k) {
        note(err, errlen, "%s: no usable private key (%s)", path, ssl_reason());
        rc = -EINVAL;
    } else if (!SSL_CTX_use_PrivateKey(s, k) || !SSL_CTX_check_private_key(s)) {
        note(err, errlen, "%s: the key does not match the certificate (%s)", path, ssl_reason());
        rc = -EINVAL;
    }
    EVP_PKEY_free(k);
    BIO_free(b);
    free(mem);
    return rc;
}

/* Adds every certificate of a PEM file to the context's trust store. */
static int trust_file(SSL_CTX *s, const char *path, char *err, size_t errlen)
{
    char *mem;
    BIO *b;
    int rc = pem_bio(path, &mem, &b, err, errlen);
    if (rc < 0) return rc;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, no_password, NULL);
    X509_STORE *store = SSL_CTX_get_cert_store(s);
    int n = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *in = sk_X509_INFO_value(infos, i);
        if (in->x509 && X509_STORE_add_cert(store, in->x509)) n++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    BIO_free(b);
    free(mem);
    if (n == 0) {
        note(err, errlen, "%s: no certificate in the file", path);
        return -EINVAL;
    }
    return 0;
}

/* The system's store: its bundle file, or OpenSSL's default lookup when there is none. */
static int trust_system(SSL_CTX *s, char *err, size_t errlen)
{
    const char *path = getenv(X509_get_default_cert_file_env());
    if (!path || !*path) path = X509_get_default_cert_file();
    if (trust_file(s, path, err, errlen) == 0) return 0;
    if (SSL_CTX_set_default_verify_paths(s)) return 0;
    note(err, errlen, "no system certificate store (%s): %s", path, ssl_reason());
    return -ENOENT;
}

/* ---- contexts ---- */

/* "h2,http/1.1" -> ALPN's wire format: each name behind its length. */
static int alpn_wire(const char *list, unsigned char **out, size_t *len)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    if (!w) return -ENOMEM;
    size_t at = 0;
    for (const char *p = list;;) {
        size_t k = strcspn(p, ",");
        if (k == 0 || k > 255) {
            free(w);
            return -EINVAL;
        }
        w[at++] = (unsigned char)k;
        memcpy(w + at, p, k);
        at += k;
        if (!p[k]) break;
        p += k + 1;
    }
    if (at > 0xffff) {
        free(w);
        return -EINVAL;
    }
    *out = w;
    *len = at;
    return 0;
}

/* The server's choice: its first protocol the client offers, or the no_application_protocol alert.
 */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    bl_tls_ctx *x = arg;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, x->alpn, (unsigned)x->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static void ctx_unref(bl_tls_ctx *x)
{
    /* acq_rel: the last one out sees every connection's writes to the context before freeing. */
    if (atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) != 1) return;
    SSL_CTX_free(x->ssl);
    free(x->alpn);
    free(x);
}

static bool version_ok(uint16_t v)
{
    return v == BL_TLS_1_2 || v == BL_TLS_1_3;
}

static bl_tls_ctx *make_ctx(const bl_tls_opts *opts, bool server)
{
    static const bl_tls_opts none;
    const bl_tls_opts *o = opts ? opts : &none;
    char *err = last_err;
    size_t errlen = sizeof last_err;
    err[0] = 0;
    uint16_t min = o->min_version ? o->min_version : BL_TLS_1_2;
    uint16_t max = o->max_version ? o->max_version : BL_TLS_1_3;
    int rc = 0;
    if (!version_ok(min) || !version_ok(max) || min > max) {
        note(err, errlen, "versions: TLS 1.2 (0x0303) to 1.3 (0x0304), min <= max");
        rc = -EINVAL;
    } else if (server && (!o->cert_file || !o->key_file)) {
        note(err, errlen, "a server needs cert_file and key_file");
        rc = -EINVAL;
    } else if (!o->cert_file != !o->key_file) {
        note(err, errlen, "cert_file and key_file go together");
        rc = -EINVAL;
    }
    bl_tls_ctx *x = rc ? NULL : calloc(1, sizeof *x);
    if (!rc && !x) rc = -ENOMEM;
    if (x) {
        x->server = server;
        x->verify = !server && !o->insecure;
        atomic_init(&x->refs, 1);
        x->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        if (!x->ssl) {
            note(err, errlen, "SSL_CTX_new: %s", ssl_reason());
            rc = -ENOMEM;
        }
    }
    if (!rc && o->alpn && alpn_wire(o->alpn, &x->alpn, &x->alpn_len) < 0) {
        note(err, errlen, "alpn: comma-separated names of 1 to 255 bytes");
        rc = -EINVAL;
    }
    if (!rc) {
        SSL_CTX *s = x->ssl;
        SSL_CTX_set_min_proto_version(s, min);
        SSL_CTX_set_max_proto_version(s, max);
        SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION);
        /* Idle connections give their record buffers back (many of them wait in reads). */
        SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
        /* kTLS only where the kernel has it: else the handshake need not read record by record. */
        x->ktls = x->exact = !o->no_ktls && bl_tls_ktls_available();
        if (x->ktls) SSL_CTX_set_options(s, SSL_OP_ENABLE_KTLS);
        if (o->cert_file) rc = use_chain(s, o->cert_file, err, errlen);
        if (!rc && o->key_file) rc = use_key(s, o->key_file, err, errlen);
        if (!rc && x->verify) {
            SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
            rc = o->ca_file ? trust_file(s, o->ca_file, err, errlen) : trust_system(s, err, errlen);
        }
        if (!rc && x->alpn && server) SSL_CTX_set_alpn_select_cb(s, alpn_select, x);
        /* SSL_CTX_set_alpn_protos returns 0 on success. */
        if (!rc && x->alpn && !server &&
            SSL_CTX_set_alpn_protos(s, x->alpn, (unsigned)x->alpn_len)) {
            note(err, errlen, "alpn: %s", ssl_reason());
            rc = -ENOMEM;
        }
    }
    if (rc) {
        if (x) ctx_unref(x);
        errno = -rc;
        return NULL;
    }
    return x;
}

bl_tls_ctx *bl_tls_server_ctx(const bl_tls_opts *opts)
{
    return make_ctx(opts, true);
}

bl_tls_ctx *bl_tls_client_ctx(const bl_tls_opts *opts)
{
    return make_ctx(opts, false);
}

bl_tls_ctx *bl_tls_ctx_up_ref(bl_tls_ctx *ctx)
{
    /* relaxed: the caller holds a reference, so the count cannot reach 0 meanwhile. */
    if (ctx) atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void bl_tls_ctx_free(bl_tls_ctx *ctx)
{
    if (ctx) ctx_unref(ctx);
}

/* ---- connections ---- */

/* Frees what c holds but its descriptor. */
static void conn_release(bl_tls_conn *c)
{
    SSL_free(c->ssl); /* and the BIO chains under it */
    ctx_unref(c->ctx);
    free(c);
}

/* The owner died: its cleanup handler, on the scheduler, so close(2) rather than the ring. */
static void conn_reap(void *arg)
{
    bl_tls_conn *c = arg;
    int fd = c->fd;
    bool borrowed = c->borrowed;
    conn_release(c);
    if (!borrowed) close(fd);
}

static bl_tls_conn *conn_new(bl_tls_ctx *x, int fd)
{
    bl_tls_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->owner = bl_self();
    c->ctx = bl_tls_ctx_up_ref(x);
    c->ssl = SSL_new(x->ssl);
    c->rmem = BIO_new(BIO_s_mem());
    c->wmem = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rmem || !c->wmem) {
        BIO_free(c->rmem);
        BIO_free(c->wmem);
        conn_release(c);
        return NULL;
    }
    BIO *r = bl__tls_filter(c, c->rmem);
    BIO *w = r ? bl__tls_filter(c, c->wmem) : (BIO_free(c->wmem), NULL);
    if (!w) {
        BIO_free_all(r);
        conn_release(c);
        return NULL;
    }
    SSL_set_bio(c->ssl, r, w);
    return c;
}

/*
 * Sends what OpenSSL wrote, through a copy on the stack (see the top of the
 * file).  A failure ends writing for good: part of a record may have gone.
 */
static int flush(bl_tls_conn *c, int64_t deadline)
{
    char buf[BL_TLS_BUF];
    int n;
    while ((n = BIO_read(c->wmem, buf, sizeof buf)) > 0) {
        /* More to come: the kernel fills whole segments rather than send each piece. */
        int more = BIO_ctrl_pending(c->wmem) ? MSG_MORE : 0;
        for (int off = 0; off < n;) {
            ssize_t k = bl_io_send(c->fd, buf + off, (size_t)(n - off), more, left(deadline));
            if (k <= 0) {
                c->werr = k < 0 ? (int)k : -EPIPE;
                return fail(c, c->werr, "send: %s", strerror(-c->werr));
            }
            off += (int)k;
        }
    }
    return 0;
}

/*
 * Receives ciphertext for OpenSSL.  Record by record during a handshake
 * with kTLS possible (ctx->exact): a header, then the body, so that nothing
 * past the record where the keys change is read before the kernel takes
 * over; a garbage header reaches OpenSSL before we wait for its "body".
 */
static int fill(bl_tls_conn *c, int64_t deadline, const char *what)
{
    if (c->ktls & BL_TLS_KTLS_RX) {
        /* The kernel has the records: OpenSSL reads them through the filter once they are there. */
        int r = bl_io_poll(c->fd, POLLIN, left(deadline));
        return r < 0 ? fail(c, r, "%s: %s", what, strerror(-r)) : 0;
    }
    char buf[BL_TLS_BUF];
    ssize_t n;
    bool exact = c->ctx->exact && !c->done;
    if (exact && c->need == 0) {
        n = bl_io_recv_all(c->fd, buf, 5, 0, left(deadline));
        if (n == 5)
            c->need = (size_t)((unsigned char)buf[3] << 8 | (unsigned char)buf[4]);
        else if (n > 0)
            n = left(deadline) ? 0 : -ETIMEDOUT; /* a short header: closed or late */
    } else {
        size_t want = exact && c->need < sizeof buf ? c->need : sizeof buf;
        n = bl_io_recv(c->fd, buf, want, 0, left(deadline));
        if (exact && n > 0) c->need -= (size_t)n;
    }
    if (n == 0) {
        c->eof = true;
        return fail(c, -ECONNRESET, "%s: the peer closed the connection%s", what,
                    c->done ? " without close_notify" : "");
    }
    if (n < 0)
        return fail(c, (int)n, "%s: %s", what, n == -ETIMEDOUT ? "timed out" : strerror((int)-n));
    if (BIO_write(c->rmem, buf, (int)n) != n) return fail(c, -ENOMEM, "%s: out of memory", what);
    return 0;
}

/* An OpenSSL call failed for good: why, and the errno for it. */
static int ssl_failed(bl_tls_conn *c, int e, const char *what)
{
    long vr = SSL_get_verify_result(c->ssl);
    int rc;
    if (e == SSL_ERROR_SYSCALL && c->sys_err) {
        rc = fail(c, -c->sys_err, "%s: %s", what, strerror(c->sys_err));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
        rc = fail(c, -ECONNRESET, "%s: the peer closed the connection", what);
    } else if (c->ctx->verify && !c->done && vr != X509_V_OK) {
        rc = fail(c, -EKEYREJECTED, "%s: certificate verify failed: %s", what,
                  X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else {
        rc = fail(c, -EPROTO, "%s: %s", what, ssl_reason());
    }
    c->werr = c->werr ? c->werr : rc;
    return rc;
}

/*
 * Does what OpenSSL waits for after a call returned r <= 0: 0 to call it
 * again, 1 when the peer closed with close_notify, or a negative errno with
 * c->err saying why.
 */
static int ssl_wait(bl_tls_conn *c, int r, int64_t deadline, const char *what)
{
    int e = SSL_get_error(c->ssl, r), rc;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        /* What OpenSSL wrote first: the peer may wait for it before it says more. */
        if ((rc = flush(c, deadline)) < 0) return rc;
        return fill(c, deadline, what);
    case SSL_ERROR_WANT_WRITE:
        if (BIO_ctrl_pending(c->wmem)) return flush(c, deadline);
        /* The kernel's socket buffer was full for a record OpenSSL sends through kTLS. */
        rc = bl_io_poll(c->fd, POLLOUT, left(deadline));
        return rc < 0 ? fail(c, rc, "%s: %s", what, strerror(-rc)) : 0;
    case SSL_ERROR_ZERO_RETURN:
        return 1;
    default:
        rc = ssl_failed(c, e, what);
        /* The alert OpenSSL queued, if any: the peer learns why. */
        if (BIO_ctrl_pending(c->wmem)) {
            char why[sizeof c->err];
            memcpy(why, c->err, sizeof why);
            int64_t alert = now_ms() + CLOSE_MS;
            flush(c, deadline != BL_INFINITY && deadline < alert ? deadline : alert);
            memcpy(c->err, why, sizeof why); /* the alert's send failing is not the news */
        }
        return rc;
    }
}

static int handshake(bl_tls_conn *c, int64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) break;
        int rc = ssl_wait(c, r, deadline, "handshake");
        if (rc == 1) rc = fail(c, -ECONNRESET, "handshake: the peer closed the connection");
        if (rc < 0) return rc;
    }
    c->done = true;
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    if (p && len < sizeof c->alpn) {
        memcpy(c->alpn, p, len);
        c->alpn[len] = 0;
    }
    /* The last flight: a client's Finished, a server's session tickets. */
    return flush(c, deadline);
}

/* ---- the calls ---- */

/* Closes a descriptor we were given: through the ring from a process. */
static void drop_fd(int fd)
{
    if (fd < 0) return;
    if (bl_self() != BL_PID_NONE)
        bl_io_close(fd);
    else
        close(fd);
}

static bool is_address(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* The client's name: SNI (names only, RFC 6066), and what the certificate must match. */
static int set_name(bl_tls_conn *c, const char *sni)
{
    bool ip = is_address(sni);
    if (!ip && !SSL_set_tlsext_host_name(c->ssl, sni))
        return fail(c, -EINVAL, "sni: %s", ssl_reason());
    if (!c->ctx->verify) return 0;
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), sni)
                : SSL_set1_host(c->ssl, sni);
    return ok ? 0 : fail(c, -EINVAL, "sni: %s", ssl_reason());
}

static int start(bl_tls_ctx *x, int fd, const char *sni, int64_t timeout_ms, bl_tls_conn **out,
                 bool server, bool borrowed)
{
    if (out) *out = NULL;
    char why[sizeof last_err] = "";
    int rc = 0;
    if (bl_self() == BL_PID_NONE) {
        note(why, sizeof why, "not called from a process");
        rc = -EPERM;
    } else if (!x || fd < 0 || !out || timeout_ms < BL_INFINITY || x->server != server) {
        note(why, sizeof why, "%s",
             x && x->server != server ? "wrong kind of context" : "bad argument");
        rc = -EINVAL;
    } else if (!server && !sni && x->verify) {
        note(why, sizeof why, "a client verifying the server needs its name (sni)");
        rc = -EINVAL;
    }
    bl_tls_conn *c = rc ? NULL : conn_new(x, fd);
    if (!rc && !c) {
        note(why, sizeof why, "out of memory");
        rc = -ENOMEM;
    }
    if (c) c->borrowed = borrowed;
    if (!rc) {
        /*
         * Records are whole messages: Nagle's algorithm would hold the tail
         * of each flush until the peer's (delayed) ACK.  An echo of 2.3 MB
         * in 100 KB pieces took 6.1 s with it, 0.13 s without.
         */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* From here a kill frees c and closes fd: the handler is the owner's. */
        bl_cleanup_push(&c->cleanup, conn_reap, c);
        if (server) {
            SSL_set_accept_state(c->ssl);
        } else {
            SSL_set_connect_state(c->ssl);
            if (sni) rc = set_name(c, sni);
        }
        if (!rc) rc = handshake(c, deadline_of(timeout_ms));
        if (rc == 0) {
            c->err[0] = 0;
            *out = c;
            return 0;
        }
        memcpy(why, c->err, sizeof why);
        bl_cleanup_pop(&c->cleanup, false);
        conn_release(c);
    }
    /* The text goes to this thread's buffer after the close: it may park, and resume elsewhere. */
    if (!borrowed) drop_fd(fd);
    memcpy(last_err, why, sizeof last_err);
    return rc;
}

int bl_tls_accept(bl_tls_ctx *ctx, int fd, int64_t timeout_ms, bl_tls_conn **out)
{
    return start(ctx, fd, NULL, timeout_ms, out, true, false);
}

int bl_tls_accept_borrowed(bl_tls_ctx *ctx, int fd, int64_t timeout_ms, bl_tls_conn **out)
{
    return start(ctx, fd, NULL, timeout_ms, out, true, true);
}

int bl_tls_connect(bl_tls_ctx *ctx, int fd, const char *sni, int64_t timeout_ms, bl_tls_conn **out)
{
    return start(ctx, fd, sni, timeout_ms, out, false, false);
}

/* A call on c by its owner, with a valid timeout. */
static int usable(const bl_tls_conn *c, int64_t timeout_ms)
{
    if (!c || timeout_ms < BL_INFINITY) return -EINVAL;
    return bl_self() == c->owner ? 0 : -EPERM;
}

ssize_t bl_tls_read(bl_tls_conn *c, void *buf, size_t len, int64_t timeout_ms)
{
    int rc = usable(c, timeout_ms);
    if (rc < 0) return rc;
    if (!buf && len) return -EINVAL;
    if (len == 0) return 0;
    if (len > INT_MAX) len = INT_MAX;
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        if (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN) return 0;
        if ((c->ktls & BL_TLS_KTLS_RX) && !SSL_has_pending(c->ssl)) {
            /* The kernel decrypts: a plain receive, unless a non-data record is next (-EIO). */
            ssize_t n = bl_io_recv(c->fd, buf, len, 0, left(deadline));
            if (n > 0) return n;
            if (n == 0) {
                c->eof = true;
                return fail(c, -ECONNRESET, "read: the peer closed without close_notify");
            }
            if (n != -EIO)
                return fail(c, n, "read: %s", n == -ETIMEDOUT ? "timed out" : strerror((int)-n));
        }
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, (int)len);
        if (r > 0) {
            /* What reading made OpenSSL write (a KeyUpdate's answer) goes now; the data is ours. */
            if (BIO_ctrl_pending(c->wmem)) flush(c, deadline);
            return r;
        }
        rc = ssl_wait(c, r, deadline, "read");
        if (rc == 1) return 0;
        if (rc < 0) return rc;
    }
}

ssize_t bl_tls_read_all(bl_tls_conn *c, void *buf, size_t len, int64_t timeout_ms)
{
    int rc = usable(c, timeout_ms);
    if (rc < 0) return rc;
    int64_t deadline = deadline_of(timeout_ms);
    size_t got = 0;
    while (got < len) {
        ssize_t n = bl_tls_read(c, (char *)buf + got, len - got, left(deadline));
        if (n <= 0) return got ? (ssize_t)got : n;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t bl_tls_write(bl_tls_conn *c, const void *buf, size_t len, int64_t timeout_ms)
{
    int rc = usable(c, timeout_ms);
    if (rc < 0) return rc;
    if (!buf && len) return -EINVAL;
    if (c->werr) return c->werr;
    if (len > SSIZE_MAX) len = SSIZE_MAX;
    int64_t deadline = deadline_of(timeout_ms);
    const char *p = buf;
    if (c->ktls & BL_TLS_KTLS_TX) {
        /* The kernel encrypts: plain sends. */
        for (size_t off = 0; off < len;) {
            ssize_t n = bl_io_send(c->fd, p + off, len - off, 0, left(deadline));
            if (n <= 0) {
                c->werr = n < 0 ? (int)n : -EPIPE;
                return fail(c, c->werr, "write: %s", strerror(-c->werr));
            }
            off += (size_t)n;
        }
        return (ssize_t)len;
    }
    for (size_t off = 0; off < len;) {
        size_t k = len - off < WRITE_CHUNK ? len - off : WRITE_CHUNK;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p + off, (int)k);
        if (r <= 0) {
            rc = ssl_wait(c, r, deadline, "write");
            if (rc == 1) rc = fail(c, -EPIPE, "write: the connection was shut down");
            if (rc < 0) {
                c->werr = rc;
                return rc;
            }
            continue;
        }
        off += (size_t)r;
        if ((rc = flush(c, deadline)) < 0) return rc;
    }
    return (ssize_t)len;
}

int bl_tls_close(bl_tls_conn *c)
{
    if (!c) return -EINVAL;
    if (bl_self() != c->owner) return -EPERM;
    int rc = 0;
    /* close_notify, unless the connection is broken or the peer is gone. */
    if (c->done && !c->werr && !c->eof) {
        int64_t deadline = deadline_of(CLOSE_MS);
        for (int i = 0; i < 4; i++) {
            ERR_clear_error();
            int r = SSL_shutdown(c->ssl);
            if (r >= 0)
                break; /* sent (0), or both sides' sent (1): we do not wait for the peer's */
            rc = ssl_wait(c, r, deadline, "close");
            if (rc != 0) break;
        }
        if (rc >= 0) rc = flush(c, deadline);
    }
    /* A kill from here on leaves nothing: the descriptor closes even then (bl_io_close). */
    bl_cleanup_pop(&c->cleanup, false);
    int fd = c->fd;
    bool borrowed = c->borrowed;
    conn_release(c);
    int crc = borrowed ? 0 : bl_io_close(fd);
    return rc < 0 ? rc : crc;
}

ssize_t bl_tls_transport_read(void *conn, void *buf, size_t len, int64_t timeout_ms)
{
    return bl_tls_read(conn, buf, len, timeout_ms);
}

ssize_t bl_tls_transport_write(void *conn, const void *buf, size_t len, int64_t timeout_ms)
{
    return bl_tls_write(conn, buf, len, timeout_ms);
}

/* ---- what was negotiated ---- */

int bl_tls_ktls(const bl_tls_conn *c)
{
    return c ? c->ktls : 0;
}

const char *bl_tls_alpn(const bl_tls_conn *c)
{
    return c && c->alpn[0] ? c->alpn : NULL;
}

int bl_tls_version(const bl_tls_conn *c)
{
    return c ? SSL_version(c->ssl) : -EINVAL;
}

const char *bl_tls_sni(const bl_tls_conn *c)
{
    return c ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

const char *bl_tls_cipher(const bl_tls_conn *c)
{
    return c ? SSL_get_cipher_name(c->ssl) : NULL;
}

int bl_tls_fd(const bl_tls_conn *c)
{
    return c ? c->fd : -EINVAL;
}

const char *bl_tls_error(const bl_tls_conn *c)
{
    return c ? c->err : last_err;
}
