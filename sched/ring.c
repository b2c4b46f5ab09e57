/*
 * sched/ring.c - each scheduler's io_uring: set-up with feature fallbacks,
 * sleeping inside it, and waking another scheduler through it.
 *
 * The ring is created on the scheduler's own thread, so SINGLE_ISSUER (and
 * DEFER_TASKRUN, which needs it) name the right task.  Each scheduler also
 * keeps a read armed on an eventfd, so threads with no ring of their own (the
 * program's main thread, foreign threads) can wake it with write(2).
 *
 * Reaping knows no operation: every user_data is 0 or a bl_completion
 * (sched/completion.h), and reaping calls its done().  The ring's own
 * completions are two: the armed eventfd read (re-armed when it fires) and
 * the wake-up another ring posts with MSG_RING (nothing to do: waking was
 * the point).
 */
#define _GNU_SOURCE
#include "sched/sched.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Set-up flag sets to try, best first. */
static const unsigned setup_tries[] = {
    /* TASKRUN_FLAG: the kernel flags deferred completions in the SQ ring's
     * flags word, which an idle scheduler can watch without a system call. */
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};

static const char *setup_hint(int err)
{
    switch (err) {
    case -EPERM:
        return "io_uring is not permitted: check sysctl kernel.io_uring_disabled (must be 0, or 1 "
               "with the right group) and any seccomp profile (container runtimes often block "
               "io_uring_setup)";
    case -ENOSYS:
        return "the kernel has no io_uring (Linux 5.1+ built with CONFIG_IO_URING is required)";
    case -ENOMEM:
        return "not enough locked memory for the ring (raise RLIMIT_MEMLOCK on kernels before "
               "5.12, or lower BEAMLINE_RING_ENTRIES)";
    case -EMFILE:
    case -ENFILE:
        return "out of file descriptors";
    default:
        return "io_uring_setup failed";
    }
}

/* A wake-up from another ring: its arrival ended the sleep; nothing more. */
static void wake_done(bl_completion *c, bl_sched *s, int res, unsigned flags) {}
static bl_completion wake_completion = {wake_done};

/* The eventfd read fired: re-armed after the reap (arming submits). */
static void eventfd_done(bl_completion *c, bl_sched *s, int res, unsigned flags)
{
    s->ev_armed = false;
}

static void arm_eventfd(bl_sched *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        io_uring_submit(&s->ring);
        sqe = io_uring_get_sqe(&s->ring);
        if (!sqe) return;
    }
    io_uring_prep_read(sqe, s->evfd, &s->evbuf, sizeof s->evbuf, 0);
    s->ev_done.done = eventfd_done;
    io_uring_sqe_set_data(sqe, &s->ev_done);
    s->ev_armed = true;
    io_uring_submit(&s->ring);
}

/* With SQPOLL (opt-in): DEFER_TASKRUN cannot be combined with it. */
static const unsigned sqpoll_tries[] = {
    IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SQPOLL,
    0,
};

int bl__ring_setup(bl_sched *s, char *err, size_t errlen)
{
    bl_runtime *rt = s->rt;
    int ret = -EINVAL;
    const unsigned *tries = rt->cfg.sqpoll ? sqpoll_tries : setup_tries;
    size_t ntries = rt->cfg.sqpoll ? sizeof sqpoll_tries / sizeof sqpoll_tries[0]
                                   : sizeof setup_tries / sizeof setup_tries[0];
    for (size_t i = 0; i < ntries; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        /* The poller sleeps after 50 ms without submissions (a wake-up is one syscall). */
        if (p.flags & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
        ret = io_uring_queue_init_params(rt->cfg.ring_entries, &s->ring, &p);
        if (ret == 0) {
            if (s->index == 0) {
                rt->ring_flags = p.flags;
                rt->cqe_skip = p.features & IORING_FEAT_CQE_SKIP;
            }
            break;
        }
        /* EINVAL means "flag unknown to this kernel": try a simpler set.
         * Anything else is a real refusal. */
        if (ret != -EINVAL) break;
    }
    if (ret < 0) {
        snprintf(err, errlen, "scheduler %u: io_uring_setup: %s (%s)", s->index, strerror(-ret),
                 setup_hint(ret));
        return ret;
    }
    s->ring_ok = true;
    s->ring_fd = s->ring.ring_fd;

    if (s->index == 0) {
        struct io_uring_probe *probe = io_uring_get_probe_ring(&s->ring);
        bool has_read = probe && io_uring_opcode_supported(probe, IORING_OP_READ);
        bool has_msg = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
        if (probe) io_uring_free_probe(probe);
        if (!has_read) {
            snprintf(err, errlen, "io_uring lacks IORING_OP_READ (Linux 5.6+ is required)");
            return -ENOTSUP;
        }
        if (rt->cfg.wake == BL_WAKE_MSG_RING && !has_msg) {
            snprintf(err, errlen,
                     "BEAMLINE_WAKE=msg_ring, but io_uring lacks IORING_OP_MSG_RING "
                     "(Linux 5.18+); use eventfd");
            return -ENOTSUP;
        }
        rt->msg_ring = has_msg && rt->cfg.wake != BL_WAKE_EVENTFD;
    }

    /* Cap the kernel's io-wq workers so blocking work cannot spawn thousands of threads. */
    unsigned iowq[2] = {rt->cfg.iowq_max, rt->cfg.iowq_max};
    (void)io_uring_register_iowq_max_workers(&s->ring, iowq);
    /* A registered ring descriptor: each io_uring_enter skips the file
     * table lookup and reference count of the ring's fd.  Per thread, so it
     * is done here, on the scheduler's; without it enter works as before. */
    (void)io_uring_register_ring_fd(&s->ring);

    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0) {
        ret = -errno;
        snprintf(err, errlen, "scheduler %u: eventfd: %s", s->index, strerror(errno));
        return ret;
    }
    arm_eventfd(s);
    return 0;
}

void bl__ring_teardown(bl_sched *s)
{
    if (s->ring_ok) io_uring_queue_exit(&s->ring);
    s->ring_ok = false;
    if (s->evfd >= 0) close(s->evfd);
    s->evfd = -1;
}

void bl__ring_send_wake(bl_sched *from, bl_sched *to)
{
    if (from && from->rt->msg_ring) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&from->ring);
        if (sqe) {
            io_uring_prep_msg_ring(sqe, to->ring_fd, 0, (uint64_t)(uintptr_t)&wake_completion, 0);
            /* The sender needs no completion of its own for a wake-up. */
            if (from->rt->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            io_uring_sqe_set_data64(sqe, 0);
            if (io_uring_submit(&from->ring) >= 0) return;
        }
    }
    uint64_t one = 1;
    ssize_t n = write(to->evfd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is already non-zero, a wake-up is pending anyway */
}

unsigned bl__ring_reap(bl_sched *s)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&s->ring, head, cqe)
    {
        /* 0: a completion that says nothing (cancels, linked timeouts, the
         * sender's side of a wake-up). */
        bl_completion *c = io_uring_cqe_get_data(cqe);
        if (c) c->done(c, s, cqe->res, cqe->flags);
        n++;
    }
    if (n) io_uring_cq_advance(&s->ring, n);
    if (!s->ev_armed && s->evfd >= 0) arm_eventfd(s);
    return n;
}

struct io_uring_sqe *bl__ring_sqe(bl_sched *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        bl__ring_submit(s);
        sqe = io_uring_get_sqe(&s->ring);
    }
    return sqe;
}

void bl__ring_cancel(bl_sched *s, bl_completion *c)
{
    struct io_uring_sqe *sqe = bl__ring_sqe(s);
    if (!sqe) return; /* the ring is broken: c completes when the ring goes */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)c, 0);
    io_uring_sqe_set_data64(sqe, 0); /* the cancel's own completion says nothing */
    s->sq_pending++;
}

void bl__ring_post(bl_sched *from, bl_sched *owner, bl_ring_post *rp)
{
    /* Release: the owner that takes the list sees what rp carries. */
    bl_ring_post *head = atomic_load_explicit(&owner->posts, memory_order_relaxed);
    do {
        rp->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&owner->posts, &head, rp, memory_order_release,
                                                    memory_order_relaxed));
    bl__ring_send_wake(from, owner);
}

void bl__ring_submit(bl_sched *s)
{
    /* Work handed over by other threads first: what it prepares joins this
     * batch.  Acquire: pairs with bl__ring_post's release. */
    bl_ring_post *rp = atomic_exchange_explicit(&s->posts, NULL, memory_order_acquire);
    while (rp) {
        bl_ring_post *next = rp->next;
        rp->run(rp, s);
        rp = next;
    }
    if (!s->sq_pending && !io_uring_sq_ready(&s->ring)) return;
    s->sq_pending = 0;
    /* The ring's own flags: rt->ring_flags is written by scheduler 0's
     * set-up, which other schedulers already in their loops may overtake. */
    if (s->ring.flags & IORING_SETUP_DEFER_TASKRUN)
        (void)io_uring_submit_and_get_events(&s->ring);
    else
        (void)io_uring_submit(&s->ring);
}

void bl__ring_poll(bl_sched *s)
{
    /* Relaxed: a post missed here is seen at the next turn, and its poster
     * woke this scheduler anyway. */
    if (s->sq_pending || atomic_load_explicit(&s->posts, memory_order_relaxed))
        bl__ring_submit(s);
    else if (bl__ring_busy(s) && (s->ring.flags & IORING_SETUP_DEFER_TASKRUN))
        (void)io_uring_get_events(&s->ring);
    bl__ring_reap(s);
}

void bl__ring_wait(bl_sched *s, uint64_t timeout_ns)
{
    struct io_uring_cqe *cqe = NULL;
    /* What the last reap prepared (a stream's next receive, a cancel) goes
     * in first (bl__ring_submit returns at once when there is nothing):
     * waiting with it unsubmitted could wait for its own completion.
     * Completions already there are reaped instead of waited for. */
    bl__ring_submit(s);
    if (io_uring_cq_ready(&s->ring)) {
        bl__ring_reap(s);
        return;
    }
    if (timeout_ns == UINT64_MAX) {
        (void)io_uring_wait_cqe(&s->ring, &cqe);
    } else {
        struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000u),
                                       .tv_nsec = (long long)(timeout_ns % 1000000000u)};
        (void)io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
    }
    bl__ring_reap(s);
}
