/*
 * beamline/io.h - file and socket I/O for processes, through io_uring.
 *
 * Each call prepares a submission on the ring of the scheduler running the
 * caller, parks the process, and resumes it when the completion arrives;
 * the scheduler thread never blocks and runs other processes meanwhile.
 * Submissions made while other processes run go to the kernel together
 * (one io_uring_enter per scheduling round); completions are reaped in
 * batches.  Messages do not interrupt an I/O wait (they stay queued); exit
 * signals do, as everywhere.
 *
 * Every call is process only (-EPERM elsewhere; bl_io_socket and
 * bl_io_listen_tcp, which never wait, work from any thread) and returns a
 * byte count (or 0 / a descriptor) or a negative errno.  Calls that can
 * block take a timeout in ms: BL_INFINITY (-1) waits forever; 0 or more
 * arms a timer on the scheduler's wheel (never early, and counted from the
 * scheduler's next timer turn, as bl_recv's), and when it fires first the
 * operation is cancelled and the call returns -ETIMEDOUT, unless the
 * operation completed before the cancel reached it: then its result is
 * returned, so nothing the kernel moved is lost.  Data already there beats
 * a 0 ms timeout.  Any call may also return -EBUSY when its scheduler's
 * submission queue stays full (ring_entries too small for the load; with
 * SQPOLL the caller first yields a while for the kernel's poller to catch
 * up).  A length over 0x7ffff000 is cut to that, as read(2) does.
 *
 * The _all variants loop over short transfers until len bytes are done.
 * The timeout covers the whole call: no new operation starts after the
 * deadline.  They return len, or fewer bytes when the end of file / peer
 * close, the deadline or an error came after that many bytes moved (they
 * are the caller's; the next call says which it was), or the error
 * (-ETIMEDOUT included) when nothing moved.
 *
 * Writing to a pipe or socket whose reader is gone returns -EPIPE: the
 * runtime blocks SIGPIPE on its threads (send also adds MSG_NOSIGNAL).
 *
 * Buffers must stay valid until the call returns.  A process that dies
 * while its operation is in flight (killed, say, while blocked in recv):
 * the operation is cancelled, and the process's stack (where the buffer
 * may live) is kept until the kernel has completed it; no descriptor the
 * runtime opened for the call and no operation slot is leaked.  Heap
 * buffers remain the program's to free, as always in C, with one rule: the
 * cleanup handlers of a killed process (bl_cleanup_push) run as it dies,
 * before a cancelled operation has completed, so a handler must not free a
 * heap buffer that an operation may still be filling (the kernel would
 * write into freed memory, which no sanitizer sees).  Receive into a buffer
 * on the process's stack and copy out, as net/http does.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_IO_H
#define BEAMLINE_IO_H

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct statx;

/* ---- files ---- */

/* openat(AT_FDCWD, path, flags | O_CLOEXEC, mode): a descriptor or -errno. */
int bl_io_open(const char *path, int flags, mode_t mode);
/*
 * Closes fd: 0 or -errno (-EBADF for a bad descriptor, -EBUSY when the ring
 * had no room: nothing was done).  Once called, fd is closed even if the
 * caller is killed in the call, so a caller that keeps fd under a cleanup
 * handler forgets it there first (or the handler could close a number
 * reused meanwhile).
 */
int bl_io_close(int fd);
/* read(2) at the file position (sockets, pipes, files).  Bytes read, 0 at end, -errno. */
ssize_t bl_io_read(int fd, void *buf, size_t len, int64_t timeout_ms);
/* write(2) at the file position.  Bytes written or -errno. */
ssize_t bl_io_write(int fd, const void *buf, size_t len, int64_t timeout_ms);
/*
 * pread(2) / pwrite(2) at offset (>= 0, else -EINVAL), on files.  On a
 * descriptor without a position io_uring decides, not pread(2): a pipe
 * ignores the offset, a socket refuses a non-zero one with -ESPIPE.  Use
 * bl_io_read / bl_io_write on streams.  A pread of pages already in the page
 * cache is done at once in the caller (preadv2 with RWF_NOWAIT): it does not
 * park, and the timeout does not apply; the rest goes through the ring.
 */
ssize_t bl_io_pread(int fd, void *buf, size_t len, off_t offset, int64_t timeout_ms);
ssize_t bl_io_pwrite(int fd, const void *buf, size_t len, off_t offset, int64_t timeout_ms);
/* fsync(2) (datasync: fdatasync).  0 or -errno. */
int bl_io_fsync(int fd, bool datasync, int64_t timeout_ms);
/* statx(2) of path relative to dirfd (AT_FDCWD).  0 or -errno. */
int bl_io_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out);

/* ---- sockets ---- */

/* socket(2) with SOCK_CLOEXEC: a descriptor or -errno. */
int bl_io_socket(int domain, int type, int protocol);
/*
 * A TCP listener on host:port (host NULL = any IPv4 address, "127.0.0.1"
 * for loopback; port 0 = any), SO_REUSEADDR set, listening with backlog.
 * Stores the bound port in *bound (may be NULL).  A descriptor or -errno
 * (-EINVAL for a host that is not a numeric IPv4 or IPv6 address).
 */
int bl_io_listen_tcp(const char *host, uint16_t port, int backlog, uint16_t *bound);
/* accept4(2) with SOCK_CLOEXEC: the new descriptor or -errno. addr/len may be NULL. */
int bl_io_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t timeout_ms);
/* connect(2): 0 or -errno (-ECONNREFUSED, -ETIMEDOUT, ...). */
int bl_io_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t timeout_ms);
/* A connected TCP socket to host:port (numeric address): a descriptor or -errno. */
int bl_io_connect_tcp(const char *host, uint16_t port, int64_t timeout_ms);
/*
 * recv(2) / send(2) with flags (send adds MSG_NOSIGNAL).  Bytes or -errno.
 * A send first tries a non-blocking send(2): what fits in the socket buffer
 * goes at once, with no ring operation and no wait; only a send that would
 * block goes through the ring (with MSG_DONTWAIT in flags it returns
 * -EAGAIN instead).
 */
ssize_t bl_io_recv(int fd, void *buf, size_t len, int flags, int64_t timeout_ms);
ssize_t bl_io_send(int fd, const void *buf, size_t len, int flags, int64_t timeout_ms);
/*
 * splice(2) between two descriptors, one of which is a pipe: moves up to
 * len bytes without copying them through user memory.  off_in / off_out
 * are the offsets in a file (-1: the descriptor's position; a pipe or a
 * socket takes -1), flags SPLICE_F_MORE / SPLICE_F_NONBLOCK / ... as
 * splice(2)'s.  Bytes moved, 0 at the end of the input, or -errno.  The
 * kernel runs it in an io_uring worker thread, which blocks there (a full
 * socket, an empty pipe) until the bytes move or the timeout interrupts it.
 */
ssize_t bl_io_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                     unsigned flags, int64_t timeout_ms);
/*
 * sendfile(2)'s effect through the ring: len bytes of file in_fd from
 * offset (>= 0; the file position is not used or moved) to out_fd (a
 * socket, plain or with kernel TLS, or any descriptor splice writes to),
 * with no copy through user memory: splice from the file into a private
 * pipe, then from the pipe to out_fd, 64 KiB at a time.  The timeout covers
 * the whole call, as the _all variants'.  Bytes that reached out_fd (fewer
 * than len when the file ended first, or the deadline or an error came
 * after some moved), or -errno when none did.  A caller killed in the call
 * leaks nothing: the pipe is closed by a cleanup handler.
 * C differs from Erlang: file:sendfile/5 is the same idea; there the port
 * owns the descriptors, here the caller keeps both.
 */
ssize_t bl_io_sendfile(int out_fd, int in_fd, off_t offset, size_t len, int64_t timeout_ms);
/* shutdown(2): 0 or -errno. */
int bl_io_shutdown(int fd, int how);
/* Waits until fd is ready for events (POLLIN, POLLOUT, ...): the ready events or -errno. */
int bl_io_poll(int fd, short events, int64_t timeout_ms);

/* ---- streams: completions as messages (Erlang's {active, true}) ---- */

/* Message tags of the streams; m->ref holds the stream's descriptor. */
#define BL_TAG_IO_ACCEPT (BL_TAG_SYSTEM | 0x60u) /* data: int, a new connection's fd or -errno */
#define BL_TAG_IO_DATA   (BL_TAG_SYSTEM | 0x61u) /* data: the bytes received */
#define BL_TAG_IO_CLOSED (BL_TAG_SYSTEM | 0x62u) /* data: int, 0 = peer closed, or -errno */

/*
 * Multishot accept on listener lfd: every new connection arrives in the
 * caller's mailbox as a BL_TAG_IO_ACCEPT message with its descriptor (the
 * caller owns it).  One armed accept serves them all; when the kernel ends
 * the multishot (completion queue overflow), it is re-armed.  An error
 * arrives as a negative value and ends the stream; shutting the listener
 * down (bl_io_shutdown(lfd, SHUT_RDWR)) ends it too.  When the caller dies,
 * the stream ends, and connections still queued in its mailbox (unread) and
 * those that arrive meanwhile are closed: a BL_TAG_IO_ACCEPT message owns
 * its descriptor until the caller reads it.
 * Returns 0, -EPERM, -EBADF, -ENOMEM, -EBUSY (ring full).
 */
int bl_io_accept_stream(int lfd);

/*
 * Multishot receive on fd into the scheduler's ring of provided buffers
 * (bl_config.io_buffers x 4 KiB, node-local): the bytes arrive as BL_TAG_IO_DATA messages,
 * in order, and the end as one BL_TAG_IO_CLOSED (0 when the peer closed,
 * else -errno).  Each buffer is copied into its message and goes back to
 * the ring at once; when the ring runs dry the kernel pauses the stream and
 * it is re-armed.  Do not mix with bl_io_recv on the same fd.  There is no
 * flow control: a fast peer fills the mailbox (as {active, true} does).
 * Returns 0, -EPERM, -EBADF, -ENOMEM, -EBUSY, -ENOTSUP (buffer rings
 * unavailable).
 */
int bl_io_recv_stream(int fd);

/* The most bl_io_recv_once receives, and the longest delay it takes. */
#define BL_IO_ONCE_MAX          65536u
#define BL_IO_ONCE_DELAY_MAX_US 10000u

/*
 * Erlang's {active, once}: one receive of at most max bytes on fd, armed
 * after delay_us (0 = at once), whose result arrives as one message: a
 * BL_TAG_IO_DATA with the bytes, or a BL_TAG_IO_CLOSED (0 when the peer
 * closed, else -errno).  The caller arms the next one when it wants more,
 * so it has flow control, and one at a time per fd keeps the bytes in
 * order.  A delay lets a peer's small writes gather in the socket and
 * arrive in one message: a caller that sees a trickle of them (many
 * receives in a row, each finding data at once, none answered) saves a
 * wake-up, a system call and an ACK on both sides per message it does not
 * receive alone (dist/conn.c does this).  The op owns its buffer: the
 * owner's death frees nothing the kernel still writes to, and ends the op.
 * Do not mix with bl_io_recv or a receive stream on the same fd.
 * Returns 0, -EPERM, -EBADF, -ENOMEM, -EBUSY (ring full), -EINVAL (max 0
 * or over BL_IO_ONCE_MAX, delay over BL_IO_ONCE_DELAY_MAX_US).
 */
int bl_io_recv_once(int fd, size_t max, unsigned delay_us);

/* Times a stream was re-armed after the kernel ended its multishot (all schedulers). */
uint64_t bl_io_stream_rearms(void);

/* ---- loops over short transfers ---- */

ssize_t bl_io_read_all(int fd, void *buf, size_t len, int64_t timeout_ms);
ssize_t bl_io_write_all(int fd, const void *buf, size_t len, int64_t timeout_ms);
ssize_t bl_io_pread_all(int fd, void *buf, size_t len, off_t offset, int64_t timeout_ms);
ssize_t bl_io_pwrite_all(int fd, const void *buf, size_t len, off_t offset, int64_t timeout_ms);
ssize_t bl_io_recv_all(int fd, void *buf, size_t len, int flags, int64_t timeout_ms);
ssize_t bl_io_send_all(int fd, const void *buf, size_t len, int flags, int64_t timeout_ms);

/* ---- introspection (tests, monitoring) ---- */

/*
 * Operations submitted and not yet completed, on all schedulers (orphans
 * included), plus the accept and receive streams armed and not yet ended:
 * back to its baseline once every process that did I/O is gone.
 */
uint64_t bl_io_inflight(void);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_IO_H */
