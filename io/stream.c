/*
 * io/stream.c - multishot operations that deliver to a process's mailbox:
 * accept streams (multishot accept) and receive streams (multishot recv
 * into the scheduler's provided buffer ring), Erlang's {active, true}.
 *
 * A stream op (bl_mop) is owned by the ring it was armed on; its user_data
 * is its address with bit 0 set.  Each completion becomes a message to the
 * owner; a completion without IORING_CQE_F_MORE means the kernel ended the
 * multishot (buffers ran out, the CQ overflowed, an error), and the op is
 * re-armed unless it is finished.  It finishes on end of stream, an error,
 * a cancel, or its owner's death (noticed at the owner's next completion,
 * or when the scheduler sweeps its streams while idle); a new connection
 * arriving for a dead owner is closed.  The op is freed on its last
 * completion.
 *
 * Received bytes are copied out of the provided buffer into the message at
 * once, and the buffer goes straight back to the ring: a slow receiver
 * queues messages, never kernel buffers.
 *
 * A single receive (bl_io_recv_once, Erlang's {active, once}) is a stream
 * op of one receive into a buffer of its own, after an optional delay on a
 * ring timeout of its own (delay_c): it delivers one message and is freed.
 * The op owns the buffer, so an owner that dies with it in flight frees
 * nothing the kernel still writes to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "beamline/io.h"
#include "core/msg.h"
#include "io/iop.h"
#include "proc/otp.h"
#include "proc/proc.h"

#define BUF_SIZE  4096 /* bytes per buffer; their count is bl_config.io_buffers */
#define BUF_GROUP 0    /* buffer group id */

enum { K_ACCEPT, K_RECV, K_ONCE };

static _Atomic uint64_t rearms;

uint64_t bl_io_stream_rearms(void)
{
    return atomic_load_explicit(&rearms, memory_order_relaxed);
}

typedef struct bl_mop {
    bl_completion c;            /* the ring's view: each CQE calls stream_done */
    struct bl_mop *next, *prev; /* the scheduler's stream list */
    bl_pid owner;
    int fd;
    int kind;
    bool done;     /* finished: no more messages, no re-arm */
    bool inflight; /* the kernel holds it (its operation, or its delay) */
    /* K_ONCE only: */
    bool delaying;               /* the kernel holds the delay */
    bl_completion delay_c;       /* the delay's completion: delay_done */
    struct __kernel_timespec ts; /* the delay, read by the kernel while it runs */
    size_t cap;                  /* of buf */
    char buf[];                  /* what the receive fills */
} bl_mop;

/* The provided buffer ring of a scheduler, created at its first receive stream. */
typedef struct bl_bufring {
    struct io_uring_buf_ring *br;
    char *mem;
    size_t size;    /* of the whole mapping */
    unsigned count; /* buffers */
    bool failed;    /* registration refused: receive streams fall back to -ENOTSUP */
} bl_bufring;

static void mop_list_add(bl_sched *s, bl_mop *m)
{
    m->prev = NULL;
    m->next = s->io_streams;
    if (m->next) m->next->prev = m;
    s->io_streams = m;
    bl__io_inflight_add(1); /* a stream counts from its arming to its freeing */
}

static void mop_list_del(bl_sched *s, bl_mop *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        s->io_streams = m->next;
    if (m->next) m->next->prev = m->prev;
    bl__io_inflight_add(-1);
}

static bl_bufring *bufring(bl_sched *s)
{
    bl_bufring *b = s->io_bufring;
    if (b) return b->failed ? NULL : b;
    b = calloc(1, sizeof *b);
    if (!b) return NULL;
    s->io_bufring = b;
    unsigned count = s->rt->cfg.io_buffers;
    b->count = count;
    size_t ring_bytes = count * sizeof(struct io_uring_buf);
    b->size = ring_bytes + (size_t)count * BUF_SIZE;
    /* Touched first here, on the scheduler's thread: node-local pages. */
    void *mem = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        b->failed = true;
        return NULL;
    }
    b->br = mem;
    b->mem = (char *)mem + ring_bytes;
    io_uring_buf_ring_init(b->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)b->br, .ring_entries = count, .bgid = BUF_GROUP};
    if (io_uring_register_buf_ring(&s->ring, &reg, 0) != 0) {
        munmap(mem, b->size);
        b->br = NULL;
        b->failed = true;
        return NULL;
    }
    int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; i++)
        io_uring_buf_ring_add(b->br, b->mem + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              mask, (int)i);
    io_uring_buf_ring_advance(b->br, (int)count);
    return b;
}

static void buf_return(bl_sched *s, unsigned bid)
{
    bl_bufring *b = s->io_bufring;
    io_uring_buf_ring_add(b->br, b->mem + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(b->count), 0);
    io_uring_buf_ring_advance(b->br, 1);
}

static bool arm(bl_sched *s, bl_mop *m)
{
    struct io_uring_sqe *sqe = bl__ring_sqe(s);
    if (!sqe) return false;
    if (m->kind == K_ACCEPT) {
        io_uring_prep_multishot_accept(sqe, m->fd, NULL, NULL, SOCK_CLOEXEC);
    } else if (m->kind == K_ONCE) {
        io_uring_prep_recv(sqe, m->fd, m->buf, m->cap, 0);
    } else {
        io_uring_prep_recv_multishot(sqe, m->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BUF_GROUP;
    }
    io_uring_sqe_set_data(sqe, &m->c);
    m->inflight = true;
    s->sq_pending++;
    return true;
}

/* A single receive's delay. */
static bool arm_delay(bl_sched *s, bl_mop *m)
{
    struct io_uring_sqe *sqe = bl__ring_sqe(s);
    if (!sqe) return false;
    io_uring_prep_timeout(sqe, &m->ts, 0, 0);
    io_uring_sqe_set_data(sqe, &m->delay_c);
    m->inflight = m->delaying = true;
    s->sq_pending++;
    return true;
}

/* Ends what the kernel holds for m. */
static void cancel(bl_sched *s, bl_mop *m)
{
    bl__ring_cancel(s, m->delaying ? &m->delay_c : &m->c);
}

/* The release of an accept message dropped unread: its connection goes. */
static void release_fd(bl_msg *msg)
{
    int fd;
    memcpy(&fd, msg->data, sizeof fd);
    close(fd);
}

/* Delivers to the owner; false when the owner is gone. */
static bool deliver(bl_mop *m, uint32_t tag, const void *data, size_t len)
{
    int rc = bl__send_ex(m->owner, tag, (bl_ref)m->fd, data, len, 0);
    return rc == 0 && bl_is_alive(m->owner);
}

/* A CQE of stream m, on its ring's thread (multishot: IORING_CQE_F_MORE while it goes on). */
static void stream_done(bl_completion *c, bl_sched *s, int res, unsigned flags)
{
    bl_mop *m = container_of(c, bl_mop, c);
    bool more = flags & IORING_CQE_F_MORE;
    if (!more) m->inflight = false;
    if (m->kind == K_ACCEPT) {
        if (res >= 0) {
            /* Once in a message, the descriptor is the message's: the owner
             * reads it, or it is closed with the message if the owner dies
             * first (queued, or gone already: release_fd). */
            int rc = m->done ? -ECANCELED
                             : bl__send_owned(m->owner, BL_TAG_IO_ACCEPT, (bl_ref)m->fd, &res,
                                              sizeof res, release_fd);
            if (rc == -ECANCELED || rc == -ENOMEM) close(res); /* nobody will ever take it */
            if (rc != 0 || !bl_is_alive(m->owner)) {
                if (!m->done && more) bl__ring_cancel(s, &m->c);
                m->done = true;
            }
        } else {
            /* An error ends the stream (re-arming would spin on EMFILE and
             * the like); our own cancel ends it silently. */
            if (!m->done && res != -ECANCELED) deliver(m, BL_TAG_IO_ACCEPT, &res, sizeof res);
            if (!m->done && more) bl__ring_cancel(s, &m->c);
            m->done = true;
        }
    } else if (m->kind == K_ONCE) {
        /* One message, then the op is over; our cancel (the owner died) says nothing. */
        if (!m->done) {
            if (res > 0)
                deliver(m, BL_TAG_IO_DATA, m->buf, (size_t)res);
            else if (res != -ECANCELED)
                deliver(m, BL_TAG_IO_CLOSED, &res, sizeof res);
        }
        m->done = true;
    } else {
        if (flags & IORING_CQE_F_BUFFER) {
            unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
            if (res > 0 && !m->done &&
                !deliver(m, BL_TAG_IO_DATA, s->io_bufring->mem + (size_t)bid * BUF_SIZE,
                         (size_t)res)) {
                m->done = true;
                if (more) bl__ring_cancel(s, &m->c);
            }
            buf_return(s, bid);
        }
        if (res == 0 || (res < 0 && res != -ENOBUFS)) {
            /* End of stream (peer closed), an error, or our cancel. */
            if (!m->done) {
                int why = res;
                deliver(m, BL_TAG_IO_CLOSED, &why, sizeof why);
            }
            m->done = true;
        }
    }
    if (m->inflight) return;
    if (!m->done && arm(s, m)) {
        /* The kernel ended the multishot (no buffers, CQ overflow): again. */
        atomic_fetch_add_explicit(&rearms, 1, memory_order_relaxed);
        return;
    }
    mop_list_del(s, m);
    free(m);
}

/* A single receive's delay is over (or was cancelled): the receive now. */
static void delay_done(bl_completion *c, bl_sched *s, int res, unsigned flags)
{
    (void)res;
    (void)flags;
    bl_mop *m = container_of(c, bl_mop, delay_c);
    m->inflight = m->delaying = false;
    if (!m->done && arm(s, m)) return;
    if (!m->done) {
        int why = -EBUSY; /* no SQE to be had: the owner hears of it */
        deliver(m, BL_TAG_IO_CLOSED, &why, sizeof why);
    }
    mop_list_del(s, m);
    free(m);
}

/* Idle (service): ends the streams whose owners died. */
static void streams_sweep(bl_sched *s)
{
    for (bl_mop *m = s->io_streams; m; m = m->next) {
        if (m->done || !m->inflight || bl_is_alive(m->owner)) continue;
        m->done = true;
        cancel(s, m);
    }
}

/* Runtime stop, the ring gone (service): frees the streams and the buffer ring. */
static void streams_free(bl_sched *s)
{
    while (s->io_streams) {
        bl_mop *m = s->io_streams;
        mop_list_del(s, m);
        free(m);
    }
    bl_bufring *b = s->io_bufring;
    if (b) {
        if (b->br) munmap(b->br, b->size);
        free(b);
    }
    s->io_bufring = NULL;
}

static bl_sched_service stream_service = {
    .name = "io streams", .idle = streams_sweep, .sched_free = streams_free};

/* Linked in means used: sweeps and frees streams from now on. */
__attribute__((constructor)) static void stream_register(void)
{
    bl__sched_service_add(&stream_service);
}

static int start_stream(int fd, int kind, size_t cap, unsigned delay_us)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (fd < 0) return -EBADF;
    bl_sched *s = bl__tls_sched;
    if (kind == K_RECV && !bufring(s)) return -ENOTSUP;
    bl_mop *m = malloc(sizeof *m + cap);
    if (!m) return -ENOMEM;
    memset(m, 0, sizeof *m);
    m->owner = bl__proc_pid(p);
    m->fd = fd;
    m->kind = kind;
    m->c.done = stream_done;
    m->delay_c.done = delay_done;
    m->cap = cap;
    m->ts.tv_sec = delay_us / 1000000u;
    m->ts.tv_nsec = (long long)(delay_us % 1000000u) * 1000;
    if (!(delay_us ? arm_delay(s, m) : arm(s, m))) {
        free(m);
        return -EBUSY;
    }
    mop_list_add(s, m);
    p->streams = true; /* its death has the rings sweep (bl__hook_proc_finish) */
    bl__ring_submit(s);
    return 0;
}

int bl_io_accept_stream(int lfd)
{
    return start_stream(lfd, K_ACCEPT, 0, 0);
}

int bl_io_recv_stream(int fd)
{
    return start_stream(fd, K_RECV, 0, 0);
}

int bl_io_recv_once(int fd, size_t max, unsigned delay_us)
{
    if (max == 0 || max > BL_IO_ONCE_MAX || delay_us > BL_IO_ONCE_DELAY_MAX_US) return -EINVAL;
    return start_stream(fd, K_ONCE, max, delay_us);
}
