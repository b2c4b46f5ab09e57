/*
 * io/io.c - file and socket operations on the scheduler's io_uring.
 *
 * An operation is a bl_iop on the calling process's stack: the process
 * prepares its SQE(s) on the ring of the scheduler it runs on, parks
 * SLEEPING (messages leave it asleep, signals wake it), and the completion,
 * reaped by that scheduler, ends exactly that wait the way a timer does
 * (generation and sequence in the mailbox word), so no wake-up is lost and
 * a stale one does nothing.
 *
 * op->state decides, by one CAS, between the completion (PENDING -> DONE)
 * and the process's death (PENDING -> ORPHAN).  An orphaned op keeps the
 * dead process's stack, where the op and maybe the buffer live, until its
 * completion arrives; the exit asks the op's ring to cancel it.  The ring
 * belongs to one thread (SINGLE_ISSUER), so a death on another scheduler
 * hands the cancel over through the ring owner's cancel list.
 *
 * A timeout is a timer on the scheduler's wheel, not a linked timeout: the
 * wheel costs a few stores to arm and disarm, a kernel hrtimer a lock and
 * an interrupt-safe list each way, and most operations complete long before
 * their deadline.  When the timer wins, the process asks the op's ring to
 * cancel the op and waits for its completion as before (the kernel may
 * still own the buffer): -ECANCELED becomes -ETIMEDOUT, and a result that
 * beat the cancel is returned as it is, so nothing received is lost.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "beamline/io.h"
#include "core/wait.h"
#include "io/iop.h"
#include "proc/proc.h"

static _Atomic uint64_t inflight;

/* The most one read(2) or write(2) moves in one call, as the kernel caps it. */
#define BL_IO_MAX_LEN 0x7ffff000u

uint64_t bl_io_inflight(void)
{
    return atomic_load_explicit(&inflight, memory_order_relaxed);
}

void bl__io_inflight_add(int64_t n)
{
    /* Relaxed: a statistic; each change is one atomic add, so none is lost. */
    atomic_fetch_add_explicit(&inflight, (uint64_t)n, memory_order_relaxed);
}

/* ---- the scheduler's side ---- */

static void list_del(bl_sched *s, bl_iop *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        s->io_ops = op->next;
    if (op->next) op->next->prev = op->prev;
    op->next = op->prev = NULL;
}

/* Ends the wait op->meta names, as a timer does for a timeout. */
static void wake(bl_proc *p, uint64_t meta)
{
    if (bl__wait_end(p, meta) == BL_WAIT_WOKEN) bl__sched_ready(p, BL_READY_NEXT);
}

/* The op's CQE, on its ring's thread. */
/* The process op was for died without seeing its result res: what the
 * operation opened for it (or was given to hold) would be nobody's. */
static void close_unseen(const bl_iop *op, int res)
{
    if (op->makes_fd && res >= 0) close(res);
    if (op->orphan_fd >= 0) close(op->orphan_fd);
}

static void op_done(bl_completion *c, bl_sched *s, int res, unsigned flags)
{
    bl_iop *op = container_of(c, bl_iop, c);
    list_del(s, op);
    s->ring_inflight--;
    atomic_fetch_sub_explicit(&inflight, 1, memory_order_relaxed);
    /* Read everything first: once DONE is seen, the op's stack frame is the
     * process's again. */
    bl_proc *p = op->p;
    uint64_t meta = op->meta;
    op->res = res;
    op->cflags = flags;
    int expect = BL_IOP_PENDING;
    /* Release: the process that acquires DONE sees res and cflags. */
    if (atomic_compare_exchange_strong_explicit(&op->state, &expect, BL_IOP_DONE,
                                                memory_order_acq_rel, memory_order_acquire)) {
        wake(p, meta);
        return;
    }
    /* ORPHAN: the process is gone and op lives on its kept stack.  What the
     * operation opened for it would be nobody's: close it.  op->stack is read
     * only now: the death wrote it before its CAS, which the acquire above
     * pairs with (read before ours, it could still be NULL). */
    close_unseen(op, res);
    bl__stack_put(&s->stacks, op->stack);
}

/*
 * A cancel handed to an op's ring from another scheduler.  It is an
 * allocation of its own, and names the op by address and id without
 * touching it: by the time the ring's thread runs it the op may have
 * completed, and its stack been freed and reused (an orphan's, or the
 * frame of a process that has returned since).  So the ring cancels only
 * an op it still has in flight under that address and id.
 */
typedef struct cancel_post {
    bl_ring_post post; /* in the owner's post list */
    bl_iop *op;        /* compared, never dereferenced unless found in flight */
    uint64_t id;       /* its bl_iop.id */
} cancel_post;

/* On the op's ring's thread.  A rare path (timeouts and deaths of processes
 * that moved), so a walk of the ops in flight is cheap enough. */
static void cancel_posted(bl_ring_post *rp, bl_sched *s)
{
    cancel_post *cp = container_of(rp, cancel_post, post);
    for (bl_iop *op = s->io_ops; op; op = op->next)
        if (op == cp->op && op->id == cp->id) {
            bl__ring_cancel(s, &op->c);
            break;
        }
    free(cp);
}

/*
 * Has the op (op, id) of ring owner cancelled, from s (the caller's
 * scheduler): directly when it is the same ring, else through the owner's
 * post list.  Out of memory for the post, the op just runs to its end.
 */
static void request_cancel(bl_sched *s, bl_sched *owner, bl_iop *op, uint64_t id)
{
    if (owner == s) {
        bl__ring_cancel(s, &op->c);
        return;
    }
    cancel_post *cp = malloc(sizeof *cp);
    if (!cp) return;
    cp->post.run = cancel_posted;
    cp->op = op;
    cp->id = id;
    bl__ring_post(s, owner, &cp->post);
}

/*
 * p is dying on s while op is pending (bl_waitop.orphan).  One CAS decides
 * between the death and the completion; the winner of ORPHAN keeps the
 * stack with the op until the completion frees it.
 */
static bool op_orphan(bl_waitop *w, bl_sched *s, bl_proc *p)
{
    bl_iop *op = container_of(w, bl_iop, w);
    op->stack = p->stack;
    /* Read before the CAS: once op is ORPHAN, a completion on another ring
     * may free the stack op lives on (and a new process use it). */
    bl_sched *owner = op->s;
    bool cancel_sent = op->cancel_sent;
    uint64_t id = op->id;
    if (!s) {
        /* The runtime has stopped, no ring or worker runs: an op still on a
         * ring is freed with the ring (ops_free), an external one is over
         * (the dirty pool ran its jobs out). */
        if (!op->s) return false;
        atomic_store_explicit(&op->state, BL_IOP_ORPHAN, memory_order_relaxed);
        return true;
    }
    int expect = BL_IOP_PENDING;
    /* Acq_rel: the completion that sees ORPHAN sees op->stack. */
    if (!atomic_compare_exchange_strong_explicit(&op->state, &expect, BL_IOP_ORPHAN,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        /* Completed, but p dies before it resumed to see the result (a kill
         * that landed between the completion and its next run): what the
         * operation opened for it would be nobody's.  The acquire above
         * makes res visible.  Then the stack is free to go. */
        if (op->s) close_unseen(op, op->res);
        return false;
    }
    if (!owner) return true; /* an external op: its completer frees the stack */
    if (!cancel_sent) request_cancel(s, owner, op, id);
    if (owner == s) bl__ring_submit(s);
    return true;
}

/* Runtime stop, s's ring gone (service sched_free): forgets the ops in flight. */
static void ops_free(bl_sched *s)
{
    /* The ring is gone: nothing completes any more.  Orphans' stacks go. */
    while (s->io_ops) {
        bl_iop *op = s->io_ops;
        list_del(s, op);
        atomic_fetch_sub_explicit(&inflight, 1, memory_order_relaxed);
        if (atomic_load_explicit(&op->state, memory_order_acquire) == BL_IOP_ORPHAN)
            bl__stack_free(op->stack);
    }
    s->ring_inflight = 0;
    /* Cancels posted to this ring and never run (every post is one of ours):
     * their ops are forgotten above, so running them only frees them. */
    bl_ring_post *rp = atomic_exchange_explicit(&s->posts, NULL, memory_order_acquire);
    while (rp) {
        bl_ring_post *next = rp->next;
        rp->run(rp, s);
        rp = next;
    }
}

static bl_sched_service io_service = {.name = "io", .sched_free = ops_free};

/* Linked in means used: the runtime then frees ops left in flight at its stop. */
__attribute__((constructor)) static void io_register(void)
{
    bl__sched_service_add(&io_service);
}

/* ---- operations completed elsewhere ---- */

void bl__iop_complete_external(bl_iop *op, int res)
{
    bl_proc *p = op->p;
    uint64_t meta = op->meta;
    op->res = res;
    int expect = BL_IOP_PENDING;
    if (atomic_compare_exchange_strong_explicit(&op->state, &expect, BL_IOP_DONE,
                                                memory_order_acq_rel, memory_order_acquire)) {
        wake(p, meta);
        return;
    }
    /* ORPHAN: the death's write of op->stack is visible now (acquire above). */
    bl__stack_free(op->stack);
}

int bl__iop_wait_external(bl_proc *p, bl_iop *op, void (*submit)(bl_iop *op, void *ctx), void *ctx)
{
    p->seq++;
    op->p = p;
    op->s = NULL;
    op->stack = NULL;
    op->timed = false;
    op->cancel_sent = false;
    op->ms = -1;
    op->makes_fd = false;
    op->orphan_fd = -1;
    op->meta = bl__meta(p->gen, p->seq, BL_ST_SLEEPING);
    /* Release: the completer, on another thread, sees the fields above. */
    atomic_store_explicit(&op->state, BL_IOP_PENDING, memory_order_release);
    op->w.orphan = op_orphan;
    p->wop = &op->w;
    submit(op, ctx);
    while (atomic_load_explicit(&op->state, memory_order_acquire) != BL_IOP_DONE)
        bl__park(p, BL_PARK_SLEEP);
    p->wop = NULL;
    return op->res;
}

/* ---- the process's side ---- */

static bool timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

/*
 * Gets the SQE for op on the caller's scheduler, with room for a linked
 * timeout after it (op_wait's fallback); NULL if the ring has no room even
 * after a submit.
 */
static struct io_uring_sqe *op_sqe(bl_sched **sp, bl_iop *op, int64_t ms)
{
    bl_sched *s = *sp;
    /* With SQPOLL the kernel thread empties the SQ on its own time: let
     * other processes run meanwhile, for up to a second (the caller may
     * move to another scheduler as it yields). */
    uint64_t give_up = 0;
    while (io_uring_sq_space_left(&s->ring) < 2) {
        bl__ring_submit(s);
        if (io_uring_sq_space_left(&s->ring) >= 2) break;
        if (!(s->rt->ring_flags & IORING_SETUP_SQPOLL)) return NULL;
        uint64_t now = bl__now_ns();
        if (!give_up) give_up = now + 1000000000u;
        if (now > give_up) return NULL;
        bl_yield();
        *sp = s = bl__tls_sched;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    op->c.done = op_done;
    op->w.orphan = op_orphan;
    io_uring_sqe_set_data(sqe, &op->c);
    op->timed = false;
    op->cancel_sent = false;
    op->makes_fd = false;
    op->orphan_fd = -1;
    op->ms = ms;
    return sqe;
}

/* Submits and waits for op's completion, or its deadline (op->ms >= 0). */
static int op_wait(bl_proc *p, bl_sched *s, bl_iop *op, struct io_uring_sqe *sqe)
{
    bool wheel = false;
    if (op->ms >= 0) {
        p->timer_fired = false;
        if (bl__sched_arm_timer(p, op->ms, BL_ST_SLEEPING) == 0) {
            wheel = true;
        } else {
            /* No timer entry to be had: the kernel keeps the time instead. */
            op->timed = true;
            op->ts.tv_sec = op->ms / 1000;
            op->ts.tv_nsec = (op->ms % 1000) * 1000000;
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *t = io_uring_get_sqe(&s->ring);
            io_uring_prep_link_timeout(t, &op->ts, 0);
            io_uring_sqe_set_data64(t, 0); /* its own completion says nothing */
        }
    }
    p->seq++;
    op->p = p;
    op->s = s;
    op->id = ++s->io_seq;
    op->stack = NULL;
    op->meta = bl__meta(p->gen, p->seq, BL_ST_SLEEPING);
    atomic_store_explicit(&op->state, BL_IOP_PENDING, memory_order_relaxed);
    op->prev = NULL;
    op->next = s->io_ops;
    if (s->io_ops) s->io_ops->prev = op;
    s->io_ops = op;
    s->ring_inflight++;
    atomic_fetch_add_explicit(&inflight, 1, memory_order_relaxed);
    s->sq_pending++;
    p->wop = &op->w;
    /* Signals wake the sleeper; it acts on them (a fatal one ends it here,
     * orphaning op) and goes back to the same wait.  The deadline wakes it
     * too (the timer, or its mark in the word when p was awake): it has the
     * op cancelled, clears the mark and waits on for the completion. */
    while (atomic_load_explicit(&op->state, memory_order_acquire) != BL_IOP_DONE) {
        if (wheel && !op->cancel_sent &&
            (p->timer_fired || bl__meta_ended(bl__box_load(p).meta, p->seq))) {
            bl__wait_clear_ended(p);
            /* The completion may have come between the two looks. */
            if (atomic_load_explicit(&op->state, memory_order_acquire) == BL_IOP_DONE) break;
            op->cancel_sent = true;
            request_cancel(bl__tls_sched, op->s, op, op->id);
            continue;
        }
        bl__park(p, BL_PARK_SLEEP);
    }
    p->wop = NULL;
    if (wheel) {
        p->timer_fired = false;
        bl__sched_disarm_timer(p); /* or frees the entry that fired */
    }
    /* Nothing between seeing DONE and returning may park: a kill acted on
     * there would lose what the operation made (a new descriptor).  The
     * reduction is charged before the operation instead (IO_CHECK). */
    int res = op->res;
    /* A cancelled operation that was running in an io-wq worker (a splice)
     * is interrupted rather than cancelled: -EINTR means the deadline too. */
    if ((op->timed || op->cancel_sent) && (res == -ECANCELED || res == -EINTR)) res = -ETIMEDOUT;
    return res;
}

/* The common frame of every call: checks (IO_CHECK), then an op and its SQE. */
#define IO_CHECK(ms)                                                                               \
    bl_proc *p = bl__self();                                                                       \
    if (!p) return -EPERM;                                                                         \
    if (!timeout_ok(ms)) return -EINVAL
#define IO_OP(ms)                                                                                  \
    bl_sched *s = bl__tls_sched;                                                                   \
    bl_iop op;                                                                                     \
    struct io_uring_sqe *sqe = op_sqe(&s, &op, ms);                                                \
    if (!sqe) return -EBUSY
/* The reduction is charged before the operation: see the end of op_wait. */
#define IO_BEGIN(ms)                                                                               \
    IO_CHECK(ms);                                                                                  \
    bl__charge(p, 1);                                                                              \
    IO_OP(ms)

int bl_io_open(const char *path, int flags, mode_t mode)
{
    if (!path) return -EINVAL;
    IO_BEGIN(BL_INFINITY);
    io_uring_prep_openat(sqe, AT_FDCWD, path, flags | O_CLOEXEC, mode);
    op.makes_fd = true;
    return op_wait(p, s, &op, sqe);
}

int bl_io_close(int fd)
{
    if (fd < 0) return -EBADF;
#ifdef BL_TSAN
    /* ThreadSanitizer follows descriptors through the calls it intercepts:
     * a close it cannot see (the ring's) leaves the number recorded as the
     * closer's, and the next owner of that number (from an accept on a
     * ring, also unseen) then looks like a race.  Under TSan, close(2). */
    if (!bl__self()) return -EPERM;
    return close(fd) == 0 ? 0 : -errno;
#endif
    /* The reduction is charged after the operation, not before: a kill acted
     * upon at a charge before the SQE would leave fd open, and the caller,
     * who gave fd to this call, could not tell (io.h). */
    IO_CHECK(BL_INFINITY);
    IO_OP(BL_INFINITY);
    io_uring_prep_close(sqe, fd);
    int rc = op_wait(p, s, &op, sqe);
    bl__charge(p, 1);
    return rc;
}

static ssize_t rw(int fd, void *buf, size_t len, off_t off, bool write, int64_t ms)
{
    if (len && !buf) return -EINVAL;
    if (fd < 0) return -EBADF;
    if (len > BL_IO_MAX_LEN) len = BL_IO_MAX_LEN;
    IO_BEGIN(ms);
    if (write)
        io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)off);
    else
        io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)off);
    return op_wait(p, s, &op, sqe);
}

ssize_t bl_io_read(int fd, void *buf, size_t len, int64_t ms)
{
    return rw(fd, buf, len, (off_t)-1, false, ms);
}

ssize_t bl_io_write(int fd, const void *buf, size_t len, int64_t ms)
{
    return rw(fd, (void *)buf, len, (off_t)-1, true, ms);
}

/*
 * A read of a file whose pages are all cached never waits: preadv2 with
 * RWF_NOWAIT copies them at once and refuses (-EAGAIN) what would wait,
 * which is what the ring itself tries first before handing a read to its
 * workers.  Done in the caller, it saves the park, the SQE, the CQE and the
 * switches, and the caller's buffer stays in its cache (a cached 4 KiB read
 * cost 1.6 us through the ring, against a pread's 1.3 us in a goroutine).
 * Whatever this does not read (pages not cached, a descriptor without a
 * position, an error) goes to the ring as before, so results and errors are
 * the ring's.  Bytes read, or 0 when the ring should do it all.
 */
static size_t read_cached(int fd, void *buf, size_t len, off_t off)
{
    struct iovec iov = {buf, len};
    ssize_t n = preadv2(fd, &iov, 1, off, RWF_NOWAIT);
    return n > 0 ? (size_t)n : 0;
}

ssize_t bl_io_pread(int fd, void *buf, size_t len, off_t offset, int64_t ms)
{
    if (offset < 0) return -EINVAL;
    bl_proc *p = bl__self();
    if (p && len && buf && fd >= 0 && timeout_ok(ms)) {
        if (len > BL_IO_MAX_LEN) len = BL_IO_MAX_LEN;
        size_t n = read_cached(fd, buf, len, offset);
        if (n) {
            /* A reduction per call and per 4 KiB copied, so that a process
             * reading cached pages in a loop still gives way. */
            bl__charge(p, 1 + (int32_t)(n >> 12));
            if (n == len) return (ssize_t)n;
            /* Short: the end of the file, or pages not cached; a blocking
             * pread would go on, and so does the ring. */
            ssize_t more = rw(fd, (char *)buf + n, len - n, offset + (off_t)n, false, ms);
            return more > 0 ? (ssize_t)n + more : (ssize_t)n;
        }
    }
    return rw(fd, buf, len, offset, false, ms);
}

ssize_t bl_io_pwrite(int fd, const void *buf, size_t len, off_t offset, int64_t ms)
{
    if (offset < 0) return -EINVAL;
    return rw(fd, (void *)buf, len, offset, true, ms);
}

int bl_io_fsync(int fd, bool datasync, int64_t ms)
{
    if (fd < 0) return -EBADF;
    IO_BEGIN(ms);
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    return op_wait(p, s, &op, sqe);
}

int bl_io_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out)
{
    if (!path || !out) return -EINVAL;
    IO_BEGIN(BL_INFINITY);
    io_uring_prep_statx(sqe, dirfd, path, flags, mask, out);
    return op_wait(p, s, &op, sqe);
}

int bl_io_socket(int domain, int type, int protocol)
{
    /* socket(2) never blocks: no need for the ring. */
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    return fd < 0 ? -errno : fd;
}

/* Parses a numeric IPv4 / IPv6 address (NULL: any IPv4). */
static int sockaddr_of(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!host) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return 0;
    }
    return -EINVAL;
}

int bl_io_listen_tcp(const char *host, uint16_t port, int backlog, uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = sockaddr_of(host, port, &ss, &len);
    if (rc) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (bound) {
        len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
            *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                   : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

int bl_io_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t ms)
{
    if (fd < 0) return -EBADF;
    if (addr && !addrlen) return -EINVAL;
    IO_BEGIN(ms);
    io_uring_prep_accept(sqe, fd, addr, addrlen, SOCK_CLOEXEC);
    op.makes_fd = true;
    int res = op_wait(p, s, &op, sqe);
    return res;
}

/* connect(2); owned: the socket is the call's own, closed if the caller dies meanwhile. */
static int connect_as(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t ms,
                      bool owned)
{
    if (fd < 0) return -EBADF;
    if (!addr) return -EINVAL;
    IO_CHECK(ms);
    /* An owned socket exists already: no yield (where a kill would lose it)
     * before the op holds it; bl_io_connect_tcp charged before making it. */
    if (!owned) bl__charge(p, 1);
    IO_OP(ms);
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    if (owned) op.orphan_fd = fd;
    return op_wait(p, s, &op, sqe);
}

int bl_io_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t ms)
{
    return connect_as(fd, addr, addrlen, ms, false);
}

int bl_io_connect_tcp(const char *host, uint16_t port, int64_t ms)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!host) return -EINVAL;
    int rc = sockaddr_of(host, port, &ss, &len);
    if (rc) return rc;
    IO_CHECK(ms);
    bl__charge(p, 1);
    int fd = bl_io_socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return fd;
    rc = connect_as(fd, (struct sockaddr *)&ss, len, ms, true);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

ssize_t bl_io_recv(int fd, void *buf, size_t len, int flags, int64_t ms)
{
    if (fd < 0) return -EBADF;
    if (len && !buf) return -EINVAL;
    if (len > BL_IO_MAX_LEN) len = BL_IO_MAX_LEN; /* the SQE's length is 32 bits */
    IO_BEGIN(ms);
    io_uring_prep_recv(sqe, fd, buf, len, flags);
    return op_wait(p, s, &op, sqe);
}

ssize_t bl_io_send(int fd, const void *buf, size_t len, int flags, int64_t ms)
{
    if (fd < 0) return -EBADF;
    if (len && !buf) return -EINVAL;
    if (len > BL_IO_MAX_LEN) len = BL_IO_MAX_LEN; /* the SQE's length is 32 bits */
    IO_CHECK(ms);
    bl__charge(p, 1);
    /* A send that fits in the socket buffer does not wait: done here, with
     * no operation, no park and no round until the ring is reaped.  Only
     * one that would block goes through the ring. */
    ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || (flags & MSG_DONTWAIT)) return -errno;
    IO_OP(ms);
    io_uring_prep_send(sqe, fd, buf, len, flags | MSG_NOSIGNAL);
    return op_wait(p, s, &op, sqe);
}

ssize_t bl_io_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                     unsigned flags, int64_t ms)
{
    if (fd_in < 0 || fd_out < 0) return -EBADF;
    if (off_in < -1 || off_out < -1) return -EINVAL;
    if (len > BL_IO_MAX_LEN) len = BL_IO_MAX_LEN; /* the SQE's length is 32 bits */
    IO_BEGIN(ms);
    io_uring_prep_splice(sqe, fd_in, off_in, fd_out, off_out, (unsigned)len, flags);
    return op_wait(p, s, &op, sqe);
}

int bl_io_shutdown(int fd, int how)
{
    if (!bl__self()) return -EPERM;
    /* shutdown(2) never blocks. */
    return shutdown(fd, how) == 0 ? 0 : -errno;
}

int bl_io_poll(int fd, short events, int64_t ms)
{
    if (fd < 0) return -EBADF;
    IO_BEGIN(ms);
    io_uring_prep_poll_add(sqe, fd, (unsigned)(unsigned short)events);
    return op_wait(p, s, &op, sqe);
}

/* ---- loops ---- */

/* ms left of a whole-call timeout started at t0; BL_INFINITY stays. */
static int64_t left(int64_t ms, uint64_t t0)
{
    if (ms < 0) return ms;
    uint64_t spent = (bl__now_ns() - t0) / 1000000u;
    return spent >= (uint64_t)ms ? 0 : ms - (int64_t)spent;
}

enum { K_READ, K_WRITE, K_PREAD, K_PWRITE, K_RECV, K_SEND };

static ssize_t loop_all(int kind, int fd, char *buf, size_t len, off_t off, int flags, int64_t ms)
{
    if (!bl__self()) return -EPERM;
    if (!timeout_ok(ms)) return -EINVAL;
    uint64_t t0 = bl__now_ns();
    size_t done = 0;
    while (done < len) {
        int64_t t = left(ms, t0);
        /* Past the deadline no new operation starts (the first one always
         * does: data already there beats even a 0 ms timeout). */
        if (done && t == 0) break;
        ssize_t n;
        switch (kind) {
        case K_READ:
            n = bl_io_read(fd, buf + done, len - done, t);
            break;
        case K_WRITE:
            n = bl_io_write(fd, buf + done, len - done, t);
            break;
        case K_PREAD:
            n = bl_io_pread(fd, buf + done, len - done, off + (off_t)done, t);
            break;
        case K_PWRITE:
            n = bl_io_pwrite(fd, buf + done, len - done, off + (off_t)done, t);
            break;
        case K_RECV:
            n = bl_io_recv(fd, buf + done, len - done, flags, t);
            break;
        default:
            n = bl_io_send(fd, buf + done, len - done, flags, t);
            break;
        }
        /* What moved before a timeout or an error is the caller's: a short count. */
        if (n < 0) return done ? (ssize_t)done : n;
        if (n == 0) break; /* end of file or peer closed */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

ssize_t bl_io_read_all(int fd, void *buf, size_t len, int64_t ms)
{
    return loop_all(K_READ, fd, buf, len, 0, 0, ms);
}

ssize_t bl_io_write_all(int fd, const void *buf, size_t len, int64_t ms)
{
    return loop_all(K_WRITE, fd, (char *)buf, len, 0, 0, ms);
}

ssize_t bl_io_pread_all(int fd, void *buf, size_t len, off_t offset, int64_t ms)
{
    return loop_all(K_PREAD, fd, buf, len, offset, 0, ms);
}

ssize_t bl_io_pwrite_all(int fd, const void *buf, size_t len, off_t offset, int64_t ms)
{
    return loop_all(K_PWRITE, fd, (char *)buf, len, offset, 0, ms);
}

ssize_t bl_io_recv_all(int fd, void *buf, size_t len, int flags, int64_t ms)
{
    return loop_all(K_RECV, fd, buf, len, 0, flags, ms);
}

ssize_t bl_io_send_all(int fd, const void *buf, size_t len, int flags, int64_t ms)
{
    return loop_all(K_SEND, fd, (char *)buf, len, 0, flags, ms);
}

/* ---- sendfile: file -> pipe -> socket, by splice ---- */

/* Bytes moved through the pipe per round: its default capacity. */
#define SENDFILE_CHUNK 65536

/* Closes the two descriptors packed in arg (on a dirty-pool thread: it may block). */
static long close_pair(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    close((int)(v >> 32));
    close((int)(v & 0xffffffffu));
    return 0;
}

static void pipe_closer(void *arg)
{
    (void)bl_dirty_run(close_pair, arg, NULL);
}

/*
 * The pipe of a bl_io_sendfile whose caller died in the middle of it.  A
 * splice blocked on a full socket holds the pipe's lock, and close(2)
 * would wait for it on this scheduler thread (until the peer reads): the
 * descriptors go to a process that closes them on a dirty-pool thread.
 */
static void close_pipe(void *arg)
{
    int *pfd = arg;
    uintptr_t v = (uintptr_t)(unsigned)pfd[0] << 32 | (unsigned)pfd[1];
    if (bl_spawn(NULL, pipe_closer, (void *)v, NULL) != 0) close_pair((void *)v);
}

ssize_t bl_io_sendfile(int out_fd, int in_fd, off_t offset, size_t len, int64_t ms)
{
    if (out_fd < 0 || in_fd < 0) return -EBADF;
    if (offset < 0) return -EINVAL;
    if (!bl__self()) return -EPERM;
    if (!timeout_ok(ms)) return -EINVAL;
    int pfd[2];
    /* pipe2 never blocks: the pipe is splice's stage between the two descriptors. */
    if (pipe2(pfd, O_CLOEXEC) != 0) return -errno;
    bl_cleanup cl;
    bl_cleanup_push(&cl, close_pipe, pfd);
    uint64_t t0 = bl__now_ns();
    size_t done = 0;
    ssize_t err = 0;
    while (done < len) {
        int64_t t = left(ms, t0);
        if (done && t == 0) break;
        size_t want = len - done < SENDFILE_CHUNK ? len - done : SENDFILE_CHUNK;
        ssize_t n = bl_io_splice(in_fd, (int64_t)(offset + (off_t)done), pfd[1], -1, want, 0, t);
        if (n <= 0) {
            err = n; /* 0: the file ended early */
            break;
        }
        /* What entered the pipe must leave it: only bytes on the socket count. */
        for (ssize_t moved = 0; moved < n;) {
            ssize_t m = bl_io_splice(pfd[0], -1, out_fd, -1, (size_t)(n - moved),
                                     done + (size_t)n < len ? SPLICE_F_MORE : 0, left(ms, t0));
            if (m <= 0) {
                err = m < 0 ? m : -EPIPE;
                done += (size_t)moved;
                goto out;
            }
            moved += m;
        }
        done += (size_t)n;
    }
out:
    /* Nothing is in flight now: close(2) cannot wait. */
    bl_cleanup_pop(&cl, false);
    close(pfd[0]);
    close(pfd[1]);
    return done ? (ssize_t)done : err;
}
