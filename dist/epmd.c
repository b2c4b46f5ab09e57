/*
 * dist/epmd.c - the two epmd requests a node makes, over bl_io.
 *
 * ei has them too (ei_publish, ei_xconnect_tmo), but speaks to epmd with
 * plain blocking sockets whatever socket callbacks it was given, which
 * would block a scheduler thread; the protocol is two small requests
 * (erts/doc: "EPMD Protocol"), written here with bl_io_* instead.  Requests
 * carry a 2-byte big-endian length; epmd listens on 127.0.0.1 at
 * ERL_EPMD_PORT (4369 by default).
 *
 * When no epmd answers, bl_dist_start starts one (`epmd -daemon`, which
 * forks and returns) on the dirty-work pool, as `erl -sname` does, and
 * tries again for a bounded time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "beamline/dirty.h"
#include "beamline/io.h"
#include "dist/dist.h"

extern char **environ;

enum {
    ALIVE2_X_RESP = 118,
    PORT2_RESP = 119,
    ALIVE2_REQ = 120,
    ALIVE2_RESP = 121,
    PORT_PLEASE2_REQ = 122,
};

#define EPMD_TIMEOUT_MS 5000

static uint16_t epmd_port(void)
{
    const char *e = getenv("ERL_EPMD_PORT");
    long p = e ? strtol(e, NULL, 10) : 0;
    return p > 0 && p < 65536 ? (uint16_t)p : 4369;
}

static int epmd_connect(const struct in_addr *addr, unsigned timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(epmd_port())};
    sa.sin_addr = *addr;
    int fd = bl_io_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return fd;
    int rc = bl_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, timeout_ms);
    if (rc < 0) {
        bl_io_close(fd);
        return rc;
    }
    return fd;
}

/* Runs `epmd -daemon` and waits for it to detach (on the dirty pool: waitpid blocks). */
static long start_epmd(void *arg)
{
    char *argv[] = {"epmd", "-daemon", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "epmd", NULL, NULL, argv, environ);
    if (rc) return -rc;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

int bl__epmd_register(const char *alive, uint16_t port, bool may_start, int *fd_out,
                      uint32_t *creation)
{
    size_t nlen = strlen(alive);
    if (nlen == 0 || nlen > EI_MAXALIVELEN) return -EINVAL;
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = epmd_connect(&lo, EPMD_TIMEOUT_MS);
    if (fd == -ECONNREFUSED && may_start) {
        long started = 0;
        int rc = bl_dirty_run(start_epmd, NULL, &started);
        if (rc == 0 && started == 0) {
            /* epmd -daemon returns before the daemon listens: try for up to 5 s. */
            for (int i = 0; i < 100 && fd == -ECONNREFUSED; i++) {
                bl_sleep(50);
                fd = epmd_connect(&lo, EPMD_TIMEOUT_MS);
            }
        } else {
            bl__dist_log("cannot start epmd -daemon: %s", strerror(rc ? -rc : (int)-started));
        }
    }
    if (fd < 0) return fd;

    /* ALIVE2_REQ: port, node type 72 (hidden), protocol 0 (TCP/IPv4),
     * highest and lowest distribution versions 6 and 5, name, no extra. */
    uint8_t req[2 + 13 + EI_MAXALIVELEN];
    size_t body = 13 + nlen;
    size_t n = 0;
    req[n++] = (uint8_t)(body >> 8);
    req[n++] = (uint8_t)body;
    req[n++] = ALIVE2_REQ;
    req[n++] = (uint8_t)(port >> 8);
    req[n++] = (uint8_t)port;
    req[n++] = 72;
    req[n++] = 0;
    req[n++] = 0;
    req[n++] = 6;
    req[n++] = 0;
    req[n++] = 5;
    req[n++] = (uint8_t)(nlen >> 8);
    req[n++] = (uint8_t)nlen;
    memcpy(req + n, alive, nlen);
    n += nlen;
    req[n++] = 0;
    req[n++] = 0;
    ssize_t w = bl_io_send_all(fd, req, n, 0, EPMD_TIMEOUT_MS);
    uint8_t resp[6];
    ssize_t r = w == (ssize_t)n ? bl_io_recv_all(fd, resp, 2, 0, EPMD_TIMEOUT_MS) : w;
    int err = 0;
    if (r != 2) {
        err = r < 0 ? (int)r : -EIO;
    } else if (resp[0] != ALIVE2_X_RESP && resp[0] != ALIVE2_RESP) {
        err = -EIO;
    } else if (resp[1] != 0) {
        err = -EADDRINUSE; /* epmd refuses a name it already has */
    } else if (resp[0] == ALIVE2_X_RESP) {
        r = bl_io_recv_all(fd, resp + 2, 4, 0, EPMD_TIMEOUT_MS);
        if (r != 4) err = r < 0 ? (int)r : -EIO;
        *creation =
            (uint32_t)resp[2] << 24 | (uint32_t)resp[3] << 16 | (uint32_t)resp[4] << 8 | resp[5];
    } else {
        r = bl_io_recv_all(fd, resp + 2, 2, 0, EPMD_TIMEOUT_MS);
        if (r != 2) err = r < 0 ? (int)r : -EIO;
        *creation = (uint32_t)resp[2] << 8 | resp[3];
    }
    if (err) {
        bl_io_close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int bl__epmd_port(const struct in_addr *addr, const char *alive, unsigned timeout_ms,
                  uint16_t *port)
{
    size_t nlen = strlen(alive);
    if (nlen == 0 || nlen > EI_MAXALIVELEN) return -EINVAL;
    int fd = epmd_connect(addr, timeout_ms);
    if (fd == -ECONNREFUSED) return -EHOSTUNREACH; /* no epmd there: no node either */
    if (fd < 0) return fd;
    uint8_t req[3 + EI_MAXALIVELEN];
    req[0] = (uint8_t)((nlen + 1) >> 8);
    req[1] = (uint8_t)(nlen + 1);
    req[2] = PORT_PLEASE2_REQ;
    memcpy(req + 3, alive, nlen);
    ssize_t w = bl_io_send_all(fd, req, 3 + nlen, 0, timeout_ms);
    uint8_t resp[4];
    ssize_t r = w == (ssize_t)(3 + nlen) ? bl_io_recv_all(fd, resp, 2, 0, timeout_ms) : w;
    int err = 0;
    if (r == 2 && resp[0] == PORT2_RESP && resp[1] != 0) {
        err = -EHOSTUNREACH; /* not registered there */
    } else if (r != 2 || resp[0] != PORT2_RESP) {
        err = r < 0 ? (int)r : -EIO;
    } else {
        /* The rest (node type, protocol, versions, name, extra) is not needed. */
        r = bl_io_recv_all(fd, resp + 2, 2, 0, timeout_ms);
        if (r != 2) err = r < 0 ? (int)r : -EIO;
        *port = (uint16_t)(resp[2] << 8 | resp[3]);
    }
    bl_io_close(fd);
    return err;
}
