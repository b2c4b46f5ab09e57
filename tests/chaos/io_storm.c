/*
 * tests/chaos/io_storm.c - accept and receive kill storms.
 *
 * One listener, and processes in three roles around it, respawned as soon
 * as they are killed:
 *   acceptor      bl_io_accept without a timeout, then bl_io_recv without
 *                 one on the connection until the client is done;
 *   timed         the same with 0-5 ms timeouts on both (a timeout is not
 *                 an error: it tries again, and gives a connection up after
 *                 a few);
 *   stream        an accept stream, and on each connection either a receive
 *                 stream or nothing (it is shut down at once).
 * Each holds what it accepted under a cleanup handler.  Client threads
 * (plain pthreads with blocking sockets) connect, send 0-8 KiB, and close
 * in one of three ways: after reading the end, at once, or with a reset.
 * A killer kills a random process every 0-3 ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "chaos.h"

enum { R_ACCEPT, R_TIMED, R_STREAM, NROLES };
static const char *const role_name[NROLES] = {"acceptor", "timed", "stream"};

#define PER_ROLE 3
#define NPROCS   (NROLES * PER_ROLE)
#define NCLIENTS 4
#define HELD     32 /* connections a stream process holds at most */

typedef struct storm {
    chaos_run *r;
    int lfd;
    uint16_t port;
    _Atomic bool stop;  /* clients: finish */
    bl_pid pid[NPROCS]; /* the killer's */
    int c_conn, c_bytes, c_accepted, c_streamed, c_timeouts;
    int k_role[NROLES];
} storm;

typedef struct proc_arg {
    storm *st;
    int role;
    unsigned slot;
} proc_arg;

static proc_arg args[NPROCS];

static void close_ptr(void *arg)
{
    int fd = *(int *)arg;
    if (fd >= 0) close(fd);
}

/* Reads a connection until its client is done (or, timed, until a few timeouts). */
static void serve(storm *st, int fd, bool timed, chaos_rng *g)
{
    char buf[4096];
    int timeouts = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t tmo = timed ? (int64_t)chaos_below(g, 6) : BL_INFINITY;
        ssize_t n = bl_io_recv(fd, buf, sizeof buf, 0, tmo);
        if (n == -ETIMEDOUT) {
            chaos_add(st->r, st->c_timeouts, 1);
            if (++timeouts > 8) break;
            continue;
        }
        if (n <= 0) break;
        chaos_add(st->r, st->c_bytes, (uint64_t)n);
        /* Now and then a few bytes back (the client may be gone: fine). */
        if (chaos_one_in(g, 4)) (void)bl_io_send(fd, buf, 16, 0, timed ? 5 : 100);
    }
}

static void acceptor(void *arg)
{
    proc_arg *a = arg;
    storm *st = a->st;
    bool timed = a->role == R_TIMED;
    chaos_rng g = chaos_rng_for(st->r, 0x100 + (uint64_t)bl_self());
    for (int i = 0; i < 1000000; i++) {
        int fd = -1;
        bl_cleanup c;
        bl_cleanup_push(&c, close_ptr, &fd);
        fd = bl_io_accept(st->lfd, NULL, NULL, timed ? (int64_t)chaos_below(&g, 6) : BL_INFINITY);
        if (fd >= 0) {
            chaos_add(st->r, st->c_accepted, 1);
            serve(st, fd, timed, &g);
        } else if (fd == -ETIMEDOUT) {
            chaos_add(st->r, st->c_timeouts, 1);
        } else if (fd == -EINVAL || fd == -EBADF) {
            bl_cleanup_pop(&c, true);
            return; /* the listener is gone */
        }
        bl_cleanup_pop(&c, true);
    }
}

/* The descriptors a stream process holds: closed with it, whatever ends it. */
typedef struct held {
    int n;
    int fd[HELD];
} held;

static void close_held(void *arg)
{
    held *h = arg;
    for (int i = 0; i < h->n; i++) close(h->fd[i]);
    h->n = 0;
}

static void drop_held(held *h, int i)
{
    int fd = h->fd[i];
    h->fd[i] = h->fd[--h->n];
    (void)bl_io_shutdown(fd, SHUT_RDWR); /* ends its receive stream, if any */
    close(fd);
}

static int msg_int(const bl_msg *m)
{
    int v = 0;
    if (m->len >= sizeof v) memcpy(&v, m->data, sizeof v);
    return v;
}

static void streamer(void *arg)
{
    proc_arg *a = arg;
    storm *st = a->st;
    chaos_rng g = chaos_rng_for(st->r, 0x200 + (uint64_t)bl_self());
    held h = {0};
    bl_cleanup c;
    bl_cleanup_push(&c, close_held, &h);
    if (bl_io_accept_stream(st->lfd) != 0) {
        bl_cleanup_pop(&c, true);
        return;
    }
    for (int i = 0; i < 10000000; i++) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) continue;
        if (m->tag == BL_TAG_IO_ACCEPT) {
            int fd = msg_int(m);
            bl_msg_free(m);
            if (fd < 0) break; /* the stream ended: the listener is gone */
            chaos_add(st->r, st->c_accepted, 1);
            if (h.n == HELD) drop_held(&h, 0);
            h.fd[h.n++] = fd;
            if (chaos_one_in(&g, 4)) {
                drop_held(&h, h.n - 1); /* not wanted */
            } else if (bl_io_recv_stream(fd) == 0) {
                chaos_add(st->r, st->c_streamed, 1);
            } else {
                drop_held(&h, h.n - 1);
            }
            continue;
        }
        if (m->tag == BL_TAG_IO_DATA) chaos_add(st->r, st->c_bytes, m->len);
        if (m->tag == BL_TAG_IO_CLOSED) {
            for (int k = 0; k < h.n; k++)
                if (h.fd[k] == (int)m->ref) {
                    drop_held(&h, k);
                    break;
                }
        }
        bl_msg_free(m);
    }
    bl_cleanup_pop(&c, true);
}

static void spawn_role(storm *st, unsigned slot)
{
    proc_arg *a = &args[slot];
    *a = (proc_arg){st, (int)(slot % NROLES), slot};
    bl_spawn_opts o = {.scheduler = 1 + (int)(slot % bl_schedulers())};
    if (bl_spawn(&st->pid[slot], a->role == R_STREAM ? streamer : acceptor, a, &o) != 0) {
        chaos_fail(st->r, "io_storm: spawn failed");
        st->pid[slot] = BL_PID_NONE;
    }
}

/* ---- clients: plain threads ---- */

typedef struct client_arg {
    storm *st;
    unsigned index;
} client_arg;

static void *client(void *arg)
{
    client_arg *ca = arg;
    storm *st = ca->st;
    chaos_rng g = chaos_rng_for(st->r, 0x300 + ca->index);
    char buf[8192];
    memset(buf, 'c', sizeof buf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(st->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {0, 200000};
    for (int i = 0; i < 10000000 && !atomic_load(&st->stop); i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) break;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            usleep(1000);
            continue;
        }
        chaos_add(st->r, st->c_conn, 1);
        size_t len = (size_t)chaos_below(&g, sizeof buf + 1);
        if (len) (void)send(fd, buf, len, MSG_NOSIGNAL);
        switch (chaos_below(&g, 3)) {
        case 0: /* half-close and read until the end (or the timeout) */
            shutdown(fd, SHUT_WR);
            for (int k = 0; k < 64 && recv(fd, buf, sizeof buf, 0) > 0; k++) {
            }
            break;
        case 1: { /* reset */
            struct linger l = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            break;
        }
        default: /* plain close */
            break;
        }
        close(fd);
    }
    return NULL;
}

void chaos_io_storm(chaos_run *r)
{
    static storm st;
    memset(&st, 0, sizeof st);
    st.r = r;
    st.c_conn = chaos_counter(r, CHAOS_WORK, "connections");
    st.c_accepted = chaos_counter(r, CHAOS_WORK, "accepted");
    st.c_streamed = chaos_counter(r, CHAOS_WORK, "recv_streams");
    st.c_bytes = chaos_counter(r, CHAOS_WORK, "bytes");
    for (int i = 0; i < NROLES; i++) st.k_role[i] = chaos_counter(r, CHAOS_FAULT, role_name[i]);
    st.c_timeouts = chaos_counter(r, CHAOS_INFO, "timeouts");
    st.lfd = bl_io_listen_tcp("127.0.0.1", 0, 4096, &st.port);
    if (st.lfd < 0) {
        chaos_fail(r, "io_storm: listen: %d", st.lfd);
        return;
    }
    for (unsigned i = 0; i < NPROCS; i++) spawn_role(&st, i);

    pthread_t th[NCLIENTS];
    client_arg ca[NCLIENTS];
    int started = 0;
    for (unsigned i = 0; i < NCLIENTS; i++) {
        ca[i] = (client_arg){&st, i};
        if (pthread_create(&th[i], NULL, client, &ca[i]) == 0) started++;
    }

    chaos_rng g = chaos_rng_for(r, 1);
    for (int k = 0; k < 10000000 && chaos_running(r); k++) {
        chaos_delay_us((int64_t)chaos_below(&g, 3001));
        unsigned slot = (unsigned)chaos_below(&g, NPROCS);
        if (chaos_kill_wait(st.pid[slot], 10000) != 0)
            chaos_fail(r, "io_storm: a killed %s did not go down", role_name[slot % NROLES]);
        chaos_add(r, st.k_role[slot % NROLES], 1);
        spawn_role(&st, slot);
    }

    /* The clients finish (their sockets have timeouts: bounded), then everyone goes. */
    atomic_store(&st.stop, true);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (unsigned i = 0; i < NPROCS; i++)
        if (chaos_kill_wait(st.pid[i], 10000) != 0) chaos_fail(r, "io_storm: a process did not go");
    close(st.lfd);
    /* The streams of the dead go with them: the listener, closed, is really
     * closed (no accept stream keeps it listening), and its port can be
     * bound again at once, even with the other scheduler asleep. */
    int64_t t0 = chaos_ms();
    int fd = -1;
    while ((fd = bl_io_listen_tcp("127.0.0.1", st.port, 16, NULL)) < 0 && chaos_ms() - t0 < 2000)
        bl_sleep(10);
    if (fd < 0)
        chaos_fail(r,
                   "io_storm: port %u still bound 2 s after its listener was closed (%llu "
                   "streams or operations in flight)",
                   st.port, (unsigned long long)bl_io_inflight());
    else
        close(fd);
}
