/*
 * net/ktls.c - handing a TLS connection's records to the kernel (kTLS).
 *
 * OpenSSL sets kTLS up by itself only on its socket BIO, which reads and
 * writes the descriptor itself and so would block a scheduler thread or
 * spin on EAGAIN outside the ring.  Our handshake runs over memory BIOs
 * instead (net/tls.c), and OpenSSL keeps the traffic keys to itself: no
 * public call gives the key, the IV and the record sequence number of a
 * direction.  Three ways out were weighed:
 *   - derive the keys again from the secrets the keylog callback prints
 *     (HKDF-Expand-Label for 1.3, the PRF key block for 1.2) and count the
 *     records OpenSSL sent since: our own crypto, one version at a time,
 *     and wrong as soon as OpenSSL sends a record we did not count;
 *   - switch to a socket BIO for the last flight: the BIO change would
 *     race OpenSSL's state machine, and the reads of that flight would
 *     leave the ring;
 *   - answer the BIO control OpenSSL sends its socket BIO when a direction
 *     switches to its traffic keys (BIO_CTRL_SET_KTLS, with the kernel's
 *     tls12_crypto_info_* filled in: key, salt, IV, sequence number), as a
 *     filter BIO stacked on each memory BIO.  This one is chosen: the keys
 *     come from OpenSSL, at the exact record where they take effect.
 * The filter passes bytes to and from its memory BIO until that control
 * comes.  Then, for sending: it sends what is still queued (a non-blocking
 * send(2), right there: a handshake flight fits an empty socket buffer, and
 * if it did not, the direction would stay with OpenSSL), attaches the `tls`
 * ULP, sets TLS_TX, and tells OpenSSL that the kernel has it; OpenSSL then
 * writes plaintext records (a session ticket, an alert, close_notify) to
 * the filter, which sends each with its record type in a control message
 * (sendmsg, MSG_DONTWAIT; EAGAIN becomes a retry, and the caller waits for
 * POLLOUT on the ring).  For receiving (TLS 1.2 only: OpenSSL 3.0 has no
 * kTLS receive for 1.3): only when nothing after the switch has been read
 * yet, which the handshake ensures by reading record by record when kTLS
 * is on (ctx->exact); the filter then reads records with recvmsg, the
 * record type from the kernel's control message, as OpenSSL's socket BIO
 * does.  Application data never goes through the filter: bl_tls_read and
 * bl_tls_write use bl_io_recv / bl_io_send on the descriptor.
 *
 * The control and the crypto_info layout (a union of the kernel's structs,
 * then a length) are OpenSSL's internal ABI (include/internal/ktls.h,
 * BIO_CTRL_SET_KTLS = 72 and its two companions), stable through 3.x; we
 * read only the kernel struct at its start, sized by its cipher_type.
 * Whether the kernel has kTLS at all is probed once, on a loopback pair.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_conn.h"

/* OpenSSL's internal BIO controls of kTLS (include/internal/bio.h; 73 and 76 are public). */
#define CTRL_SET_KTLS          72 /* num: 1 = send, 0 = receive; ptr: ktls_crypto_info_t */
#define CTRL_SET_KTLS_CTRL_MSG 74 /* num: the record type of the next write */
#define CTRL_CLR_KTLS_CTRL_MSG 75 /* back to application data */

/* The size of the kernel struct a crypto_info starts with, 0 for a cipher we do not know. */
static size_t info_len(const struct tls_crypto_info *ci)
{
    switch (ci->cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        return sizeof(struct tls12_crypto_info_aes_gcm_128);
    case TLS_CIPHER_AES_GCM_256:
        return sizeof(struct tls12_crypto_info_aes_gcm_256);
    case TLS_CIPHER_AES_CCM_128:
        return sizeof(struct tls12_crypto_info_aes_ccm_128);
    case TLS_CIPHER_CHACHA20_POLY1305:
        return sizeof(struct tls12_crypto_info_chacha20_poly1305);
    default:
        return 0;
    }
}

/*
 * Sends what OpenSSL queued in wmem, without waiting (an OpenSSL callback
 * must not park: its thread's error queue would be another's when it
 * resumes).  True when wmem is empty after.
 */
static bool send_queued_now(bl_tls_conn *c)
{
    char *p;
    long left;
    while ((left = BIO_get_mem_data(c->wmem, &p)) > 0) {
        ssize_t n = send(c->fd, p, (size_t)left, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0) return false;
        /* Drops the n bytes sent from the memory BIO. */
        char skip[1024];
        for (ssize_t k; n > 0; n -= k) {
            k = BIO_read(c->wmem, skip, n < (ssize_t)sizeof skip ? (int)n : (int)sizeof skip);
            if (k <= 0) return false;
        }
    }
    return true;
}

/* OpenSSL's BIO_CTRL_SET_KTLS: 1 when the kernel now carries that direction. */
static long install(bl_tls_conn *c, const struct tls_crypto_info *ci, bool tx)
{
    size_t len = ci ? info_len(ci) : 0;
    if (!len) return 0;
    /* Bytes before the switch must reach the wire before the kernel frames any. */
    if (tx && !send_queued_now(c)) return 0;
    /* The kernel starts at the next record on the socket: none may sit in rmem. */
    if (!tx && BIO_ctrl_pending(c->rmem) > 0) return 0;
    if (!c->ulp) {
        if (setsockopt(c->fd, SOL_TCP, TCP_ULP, "tls", sizeof "tls") < 0) return 0;
        c->ulp = true;
    }
    if (setsockopt(c->fd, SOL_TLS, tx ? TLS_TX : TLS_RX, ci, (socklen_t)len) < 0) return 0;
    c->ktls |= tx ? BL_TLS_KTLS_TX : BL_TLS_KTLS_RX;
    return 1;
}

/* Sends one record of the given type through the kernel's TLS (all of it or nothing). */
static ssize_t send_record(int fd, int type, const void *data, size_t len)
{
    union {
        struct cmsghdr hdr;                          /* for the alignment */
        char buf[CMSG_SPACE(sizeof(unsigned char))]; /* the record type */
    } cm;
    struct iovec iov = {(void *)data, len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_TLS;
    h->cmsg_type = TLS_SET_RECORD_TYPE;
    h->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(h) = (unsigned char)type;
    m.msg_controllen = h->cmsg_len;
    return sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Receives one record the kernel decrypted into out, behind the 5-byte
 * header OpenSSL's record layer expects (type, version, length), as
 * OpenSSL's socket BIO does.  The record type comes in a control message.
 */
static int recv_record(bl_tls_conn *c, BIO *b, char *out, int len)
{
    if (len <= 5) return 0;
    union {
        struct cmsghdr hdr;                          /* for the alignment */
        char buf[CMSG_SPACE(sizeof(unsigned char))]; /* the record type */
    } cm;
    /* At most one record's data: more would be a record too long for OpenSSL. */
    size_t room = (size_t)len - 5 < 16384 ? (size_t)len - 5 : 16384;
    struct iovec iov = {out + 5, room};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        else
            c->sys_err = errno;
        return -1;
    }
    if (n == 0) return 0;
    unsigned char type = 23; /* application data: the kernel adds no control message */
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (h && h->cmsg_level == SOL_TLS && h->cmsg_type == TLS_GET_RECORD_TYPE) type = *CMSG_DATA(h);
    out[0] = (char)type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (char)(n >> 8);
    out[4] = (char)n;
    return (int)n + 5;
}

/* ---- the filter ---- */

static int filter_write(BIO *b, const char *data, int len)
{
    bl_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!(c->ktls & BL_TLS_KTLS_TX)) {
        int n = BIO_write(BIO_next(b), data, len);
        BIO_copy_next_retry(b);
        return n;
    }
    ssize_t n = c->ctrl_type ? send_record(c->fd, c->ctrl_type, data, (size_t)len)
                             : send(c->fd, data, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
        c->ctrl_type = 0;
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    else
        c->sys_err = errno;
    return -1;
}

static int filter_read(BIO *b, char *out, int len)
{
    bl_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->ktls & BL_TLS_KTLS_RX) return recv_record(c, b, out, len);
    int n = BIO_read(BIO_next(b), out, len);
    BIO_copy_next_retry(b);
    return n;
}

static long filter_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    bl_tls_conn *c = BIO_get_data(b);
    switch (cmd) {
    case CTRL_SET_KTLS:
        return install(c, ptr, num != 0);
    case BIO_CTRL_GET_KTLS_SEND:
        return (c->ktls & BL_TLS_KTLS_TX) != 0;
    case BIO_CTRL_GET_KTLS_RECV:
        return (c->ktls & BL_TLS_KTLS_RX) != 0;
    case CTRL_SET_KTLS_CTRL_MSG:
        c->ctrl_type = (int)num;
        return 1;
    case CTRL_CLR_KTLS_CTRL_MSG:
        c->ctrl_type = 0;
        return 1;
    case BIO_CTRL_FLUSH:
        /* With the kernel sending, a write went out whole or not at all. */
        if (c->ktls & BL_TLS_KTLS_TX) return 1;
        return BIO_ctrl(BIO_next(b), cmd, num, ptr);
    default:
        return BIO_next(b) ? BIO_ctrl(BIO_next(b), cmd, num, ptr) : 0;
    }
}

static int filter_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *filter_method;

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "beamline ktls filter");
    if (m && BIO_meth_set_write(m, filter_write) && BIO_meth_set_read(m, filter_read) &&
        BIO_meth_set_ctrl(m, filter_ctrl) && BIO_meth_set_create(m, filter_create)) {
        filter_method = m;
        return;
    }
    BIO_meth_free(m);
}

BIO *bl__tls_filter(bl_tls_conn *c, BIO *mem)
{
    /* One method for the life of the program (OpenSSL keeps none of ours to free). */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_method);
    BIO *f = filter_method ? BIO_new(filter_method) : NULL;
    if (!f) {
        BIO_free(mem);
        return NULL;
    }
    BIO_set_data(f, c);
    return BIO_push(f, mem);
}

/* ---- does the kernel have it ---- */

/* Attaches the tls ULP to a connected loopback socket: what every connection will do. */
static bool probe(void)
{
    bool ok = false;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    /* A loopback connect completes inside connect(2): no wait worth a ring operation. */
    if (l >= 0 && s >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
        getsockname(l, (struct sockaddr *)&a, &alen) == 0 &&
        connect(s, (struct sockaddr *)&a, sizeof a) == 0)
        ok = setsockopt(s, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == 0;
    if (s >= 0) close(s);
    if (l >= 0) close(l);
    return ok;
}

static bool ktls_ok;

static void probe_once(void)
{
    ktls_ok = probe();
}

bool bl_tls_ktls_available(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe_once);
    return ktls_ok;
}
