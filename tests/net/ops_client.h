/*
 * tests/net/ops_client.h - a client of the control socket and the metrics
 * endpoint for the tests, run from a process: every socket call goes
 * through the ring (beamline/io.h), so the test never blocks a scheduler.
 */
#ifndef BL_TEST_OPS_CLIENT_H
#define BL_TEST_OPS_CLIENT_H

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bl_test.h"

/* A connection to the control socket at path: a descriptor or -errno. */
static inline int ops_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = bl_io_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return fd;
    int rc = bl_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, 5000);
    if (rc) {
        bl_io_close(fd);
        return rc;
    }
    return fd;
}

/*
 * Receives into buf[0..cap) until the text holds `until` (or the peer
 * closes, or 10 s pass): the bytes received, NUL-terminated.
 */
static inline size_t ops_recv_until(int fd, char *buf, size_t cap, const char *until)
{
    size_t len = 0;
    int64_t end = bl_test_ms() + 10000;
    buf[0] = 0;
    while (len + 1 < cap && (!until || !strstr(buf, until)) && bl_test_ms() < end) {
        ssize_t n = bl_io_recv(fd, buf + len, cap - 1 - len, 0, end - bl_test_ms());
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = 0;
    }
    return len;
}

/* Sends a control request line and receives its reply (up to its "end" line). */
static inline size_t ops_ask(int fd, const char *req, char *buf, size_t cap)
{
    if (bl_io_send_all(fd, req, strlen(req), 0, 5000) < 0) return 0;
    size_t n = ops_recv_until(fd, buf, cap, "end\n");
    return n;
}

/* One HTTP exchange with the metrics endpoint on 127.0.0.1:port: the whole response. */
static inline size_t ops_http(uint16_t port, const char *req, size_t reqlen, char *buf, size_t cap)
{
    int fd = bl_io_connect_tcp("127.0.0.1", port, 5000);
    if (fd < 0) return 0;
    size_t n = 0;
    if (bl_io_send_all(fd, req, reqlen, 0, 5000) >= 0) n = ops_recv_until(fd, buf, cap, NULL);
    bl_io_close(fd);
    return n;
}

#endif /* BL_TEST_OPS_CLIENT_H */
