/*
 * dist/dist.c - starting and stopping the node, the acceptor, connecting.
 *
 * bl_dist_start (in a process) settles the name and cookie, listens,
 * registers with epmd, fills bl__dist, installs the hook through which
 * proc/ routes sends to remote pids, and spawns the acceptor: a process
 * that owns the listener and the epmd socket (the registration lasts as
 * long as that socket is open) and hands each accepted socket to a new
 * connection process, which does the handshake.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "beamline/io.h"
#include "dist/dist.h"
#include "otp/gen_server/gs_dist.h"
#include "proc/otp.h"
#include "proc/proc.h"

bl__dist_node bl__dist;

#define DEFAULT_MAX_MESSAGE ((size_t)64 << 20)
#define DEFAULT_TICK_MS     60000u
#define DEFAULT_SETUP_MS    7000u

void bl__dist_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (bl__dist.log)
        bl__dist.log(line, bl__dist.log_arg);
    else if (!bl__dist.quiet)
        fprintf(stderr, "beamline dist (%s): %s\n", bl__dist.name, line);
}

const char *bl_dist_node(void)
{
    /* Acquire: the name is written before running is set. */
    return atomic_load_explicit(&bl__dist.running, memory_order_acquire) ? bl__dist.name
                                                                         : "nonode@nohost";
}

/* ---- name and cookie ---- */

static bool alive_ok(const char *s, size_t n)
{
    if (n == 0 || n > EI_MAXALIVELEN) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') &&
            ch != '_' && ch != '-')
            return false;
    }
    return true;
}

/* Splits name into alive and host ("alive" alone: this host's short name, as -sname). */
static int set_name(const char *name)
{
    const char *at = strchr(name, '@');
    size_t alen = at ? (size_t)(at - name) : strlen(name);
    if (!alive_ok(name, alen)) return -EINVAL;
    memcpy(bl__dist.alive, name, alen);
    bl__dist.alive[alen] = 0;
    if (at) {
        if (!at[1] || strlen(at + 1) > EI_MAXHOSTNAMELEN || strchr(at + 1, '@')) return -EINVAL;
        strcpy(bl__dist.host, at + 1);
    } else {
        char h[EI_MAXHOSTNAMELEN + 1];
        if (gethostname(h, sizeof h) < 0) return -errno;
        h[sizeof h - 1] = 0;
        char *dot = strchr(h, '.');
        if (dot) *dot = 0;
        strcpy(bl__dist.host, h);
    }
    if (strlen(bl__dist.alive) + 1 + strlen(bl__dist.host) > MAXNODELEN) return -EINVAL;
    /* Both parts fit, checked above. */
    strcpy(bl__dist.name, bl__dist.alive);
    strcat(bl__dist.name, "@");
    strcat(bl__dist.name, bl__dist.host);
    return 0;
}

static int set_cookie(const char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
    if (n == 0 || n > EI_MAX_COOKIE_SIZE) return -EINVAL;
    memcpy(bl__dist.cookie, s, n);
    bl__dist.cookie[n] = 0;
    return 0;
}

/* ~/.erlang.cookie, created as Erlang creates it (20 capital letters, mode 0400) if absent. */
static int cookie_file(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) return -EINVAL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.erlang.cookie", home) >= (int)sizeof path) return -EINVAL;
    char buf[EI_MAX_COOKIE_SIZE + 2];
    int fd = bl_io_open(path, O_RDONLY, 0);
    if (fd == -ENOENT) {
        uint8_t rnd[20];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -EIO;
        for (size_t i = 0; i < sizeof rnd; i++) buf[i] = (char)('A' + rnd[i] % 26);
        fd = bl_io_open(path, O_WRONLY | O_CREAT | O_EXCL, 0400);
        if (fd < 0) return fd;
        ssize_t w = bl_io_write_all(fd, buf, sizeof rnd, 5000);
        bl_io_close(fd);
        if (w != (ssize_t)sizeof rnd) return -EIO;
        return set_cookie(buf, sizeof rnd);
    }
    if (fd < 0) return fd;
    ssize_t r = bl_io_read_all(fd, buf, sizeof buf, 5000);
    bl_io_close(fd);
    if (r < 0) return (int)r;
    if ((size_t)r > EI_MAX_COOKIE_SIZE + 1) return -EINVAL;
    return set_cookie(buf, (size_t)r);
}

/* ---- the acceptor ---- */

typedef struct acceptor {
    int lfd;            /* the listener */
    int epmd;           /* the epmd registration socket */
    bl_cleanup cleanup; /* closes both if the process is killed */
} acceptor;

static void acceptor_close(void *arg)
{
    acceptor *a = arg;
    /* A cleanup handler makes no ring call: plain close(2). */
    close(a->lfd);
    close(a->epmd);
    free(a);
}

static void acceptor_main(void *arg)
{
    acceptor *a = arg;
    bl_cleanup_push(&a->cleanup, acceptor_close, a);
    for (;;) {
        int fd = bl_io_accept(a->lfd, NULL, NULL, BL_INFINITY);
        if (fd == -ECONNABORTED || fd == -EINTR || fd == -EAGAIN) continue;
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* Out of descriptors or memory for now: say so, and try again shortly. */
            bl__dist_log("accept failed: %s", strerror(-fd));
            bl_sleep(100);
            continue;
        }
        if (fd < 0) {
            /* bl_dist_stop shuts the listener down: then this is no news. */
            if (atomic_load_explicit(&bl__dist.running, memory_order_acquire))
                bl__dist_log("accept failed: %s; no more connections are accepted", strerror(-fd));
            break;
        }
        if (bl_spawn(NULL, bl__dist_conn_main, (void *)(intptr_t)~fd, NULL) < 0) close(fd);
    }
    bl_cleanup_pop(&a->cleanup, true);
}

/* ---- start, stop ---- */

static void resolve_opts(const bl_dist_opts *o)
{
    bl_dist_opts d = {0};
    if (!o) o = &d;
    bl__dist.max_message = o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
    bl__dist.tick_ms = o->tick_ms ? o->tick_ms : DEFAULT_TICK_MS;
    bl__dist.setup_ms = o->setup_ms ? o->setup_ms : DEFAULT_SETUP_MS;
    bl__dist.log = o->log;
    bl__dist.log_arg = o->log_arg;
    const char *q = getenv("BEAMLINE_QUIET");
    bl__dist.quiet = q && *q && strcmp(q, "0") != 0;
}

/* One bl_dist_start at a time: it fills bl__dist. */
static _Atomic bool starting;

static int start(const char *name, const char *cookie, const bl_dist_opts *opts);

int bl_dist_start(const char *name, const char *cookie, const bl_dist_opts *opts)
{
    if (bl_self() == BL_PID_NONE) return -EPERM;
    bool no = false;
    /* Acquire/release: a start that follows another sees what it wrote. */
    if (!atomic_compare_exchange_strong_explicit(&starting, &no, true, memory_order_acquire,
                                                 memory_order_relaxed))
        return -EALREADY;
    int rc = start(name, cookie, opts);
    atomic_store_explicit(&starting, false, memory_order_release);
    return rc;
}

static int start(const char *name, const char *cookie, const bl_dist_opts *opts)
{
    if (atomic_load_explicit(&bl__dist.running, memory_order_acquire)) {
        if (bl_is_alive(bl__dist.acceptor)) return -EALREADY;
        /* Left from a runtime that has stopped since: its processes are gone. */
        atomic_store_explicit(&bl__dist.running, false, memory_order_release);
        bl__remote_send_hook_set(NULL);
        bl__remote_signal_hook_set(NULL);
        bl__gs_remote_set(NULL);
    }
    bl__dist_tables_reset();
    if (!name) name = getenv("BEAMLINE_NODE");
    if (!name) return -EINVAL;
    int rc = set_name(name);
    if (rc < 0) return rc;
    if (!cookie) cookie = getenv("BEAMLINE_COOKIE");
    rc = cookie ? set_cookie(cookie, strlen(cookie)) : cookie_file();
    if (rc < 0) return rc;
    resolve_opts(opts);
    if (ei_init() != 0) return -EIO;

    uint16_t port = 0;
    int lfd = bl_io_listen_tcp(NULL, opts ? opts->port : 0, 128, &port);
    if (lfd < 0) return lfd;
    int efd = -1;
    uint32_t creation = 0;
    rc = bl__epmd_register(bl__dist.alive, port, !(opts && opts->no_epmd_start), &efd, &creation);
    if (rc < 0) {
        bl_io_close(lfd);
        return rc;
    }
    bl__dist.creation = creation;
    bl__dist.lfd = lfd;
    struct in_addr any = {0};
    if (ei_connect_xinit_ussi(&bl__dist.ec, bl__dist.host, bl__dist.alive, bl__dist.name, &any,
                              bl__dist.cookie, creation, &bl__dist_socket_callbacks,
                              sizeof bl__dist_socket_callbacks, NULL) < 0) {
        rc = -EINVAL;
    }
    acceptor *a = rc == 0 ? malloc(sizeof *a) : NULL;
    if (rc == 0 && !a) rc = -ENOMEM;
    if (rc == 0) {
        *a = (acceptor){.lfd = lfd, .epmd = efd};
        rc = bl_spawn(&bl__dist.acceptor, acceptor_main, a, NULL);
        if (rc < 0) free(a);
    }
    if (rc < 0) {
        bl_io_close(lfd);
        bl_io_close(efd);
        return rc;
    }
    bl__remote_send_hook_set(bl__dist_remote_send);
    bl__remote_signal_hook_set(bl__dist_remote_signal);
    bl__gs_remote_set(&bl__dist_gs_ops);
    /* Release: everything above is visible to whoever sees running. */
    atomic_store_explicit(&bl__dist.running, true, memory_order_release);
    return 0;
}

int bl_dist_stop(void)
{
    bl_pid self = bl_self();
    if (self == BL_PID_NONE) return -EPERM;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    bl_reason kill = {.kind = BL_KILL};
    bl_ref ref;
    /* The acceptor's cleanup closes the listener and the epmd socket. */
    /* The listener shut down, the acceptor's accept fails and it closes the
     * listener and the epmd socket (even if it had not run yet: then its
     * first accept fails). */
    atomic_store_explicit(&bl__dist.running, false, memory_order_release);
    bl__remote_send_hook_set(NULL);
    bl__remote_signal_hook_set(NULL);
    bl__gs_remote_set(NULL);
    if (bl_monitor(bl__dist.acceptor, &ref) == 0) {
        shutdown(bl__dist.lfd, SHUT_RDWR);
        bl_msg *m;
        if (bl_recv(&m, bl_match_ref, &ref, 5000, 0) == 0) {
            bl_msg_free(m);
        } else {
            bl_exit_pid(bl__dist.acceptor, &kill);
            bl_demonitor(ref, BL_DEMONITOR_FLUSH);
        }
    }
    bl__dist_peers_stop();
    return 0;
}

int bl_dist_connect(const char *node)
{
    if (bl_self() == BL_PID_NONE) return -EPERM;
    if (!node || !strchr(node, '@')) return -EINVAL;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    if (strcmp(node, bl__dist.name) == 0) return -EINVAL;
    int p = bl__dist_peer(node, true);
    if (p < 0) return p;
    bl_pid conn;
    int rc = bl__dist_peer_conn(p, &conn);
    if (rc < 0) return rc;
    bl_ref ref;
    rc = bl_monitor(conn, &ref);
    if (rc < 0) return rc;
    rc = bl__send_ex(conn, BL__TAG_DIST_WAIT, ref, NULL, 0, 0);
    if (rc < 0) {
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
        return rc;
    }
    bl_msg *m;
    /* The connection's own set-up limit bounds this wait; a margin beyond it. */
    rc = bl_recv(&m, bl_match_ref, &ref, (int64_t)bl__dist.setup_ms * 3 + 1000, 0);
    if (rc < 0) {
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
        return -ETIMEDOUT;
    }
    int status = -EHOSTUNREACH; /* DOWN before an answer */
    if (m->tag == BL__TAG_DIST_READY && m->len == sizeof(int)) {
        memcpy(&status, m->data, sizeof status);
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
    }
    bl_msg_free(m);
    return status;
}
