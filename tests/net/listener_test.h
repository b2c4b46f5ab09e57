/*
 * tests/net/listener_test.h - what the listener's tests share: an echo
 * handler, clients, and waits on the listener's counts.
 */
#ifndef LISTENER_TEST_H
#define LISTENER_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beamline.h"
#include "bl_test.h"

/* Messages from handlers and clients to the test process. */
enum {
    T_CLIENT = 1,  /* data: client_result */
    T_HANDLER = 2, /* data: bl_pid, a handler that has begun */
    T_GO = 3,      /* to a handler: finish */
};

/* Echoes until the peer closes, an error, or the listener's idle timeout. */
static inline void echo_handler(int fd, const bl_listener_conn *c, void *arg)
{
    (void)arg;
    char buf[4096];
    ssize_t n;
    while ((n = bl_io_recv(fd, buf, sizeof buf, 0, c->idle_ms)) > 0)
        if (bl_io_send_all(fd, buf, (size_t)n, 0, c->idle_ms) != n) break;
}

/* Sends "<id>:<round>" and checks its echo: true if it came back whole. */
static inline bool echo_round(int fd, int id, int round)
{
    char msg[48], in[48];
    int len = snprintf(msg, sizeof msg, "client %d round %d;", id, round);
    if (bl_io_send_all(fd, msg, (size_t)len, 0, 10000) != len) return false;
    if (bl_io_recv_all(fd, in, (size_t)len, 0, 10000) != len) return false;
    return memcmp(in, msg, (size_t)len) == 0;
}

/* What a client reports. */
typedef struct client_result {
    int id;        /* its number */
    int connected; /* 1 if connect succeeded */
    int rounds;    /* rounds echoed whole, in a row from the first */
    int failed;    /* 1 if a round failed after at least one succeeded */
} client_result;

typedef struct client_ctx {
    const char *host; /* where the listener is */
    uint16_t port;    /* its port */
    bl_pid test;      /* who gets the client_result */
    int id;           /* the client's number */
    int rounds;       /* rounds to make */
} client_ctx;

/* Connects, makes its rounds, closes, and reports. */
static inline void client(void *arg)
{
    client_ctx *c = arg;
    client_result r = {.id = c->id};
    int fd = bl_io_connect_tcp(c->host, c->port, 10000);
    if (fd >= 0) {
        r.connected = 1;
        for (int i = 0; i < c->rounds; i++) {
            if (!echo_round(fd, c->id, i)) {
                r.failed = r.rounds > 0;
                break;
            }
            r.rounds++;
        }
        bl_io_close(fd);
    }
    bl_send(c->test, T_CLIENT, &r, sizeof r);
}

/* Runs n clients of `rounds` rounds each at once: the rounds echoed in all. */
static inline int run_clients(const char *host, uint16_t port, int n, int rounds)
{
    client_ctx *cc = calloc((size_t)n, sizeof *cc);
    for (int i = 0; i < n; i++) {
        cc[i] = (client_ctx){host, port, bl_self(), i, rounds};
        BL_CHECK_EQ(bl_spawn(NULL, client, &cc[i], NULL), 0);
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        bl_msg *m = bl_test_recv_tag(T_CLIENT, 30000);
        BL_CHECK(m != NULL);
        if (m) total += ((client_result *)m->data)->rounds;
        bl_msg_free(m);
    }
    free(cc);
    return total;
}

/* Waits (bounded in time) until the listener has n handlers alive: the count it saw last. */
static inline uint32_t wait_active(bl_listener *l, uint32_t n)
{
    bl_listener_info i = {0};
    int64_t until = bl_test_ms() + 10000;
    while (bl_listener_info_get(l, &i) == 0 && i.active != n && bl_test_ms() < until) bl_yield();
    return i.active;
}

/* Waits (bounded in time) until the process has fds descriptors open: the count it saw last. */
static inline int wait_fds(int fds)
{
    int n = bl_test_count_fds();
    int64_t until = bl_test_ms() + 10000;
    while (n != fds && bl_test_ms() < until) {
        bl_yield();
        n = bl_test_count_fds();
    }
    return n;
}

/* The listener's port, through bl_listener_info_get. */
static inline uint16_t port_of(bl_listener *l)
{
    bl_listener_info i = {0};
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    return i.port;
}

/* A connection to host:port that has been echoed once (so its handler runs): fd or -errno. */
static inline int connect_echoed(const char *host, uint16_t port)
{
    int fd = bl_io_connect_tcp(host, port, 5000);
    if (fd >= 0 && !echo_round(fd, 0, 0)) {
        bl_io_close(fd);
        return -EIO;
    }
    return fd;
}

#endif /* LISTENER_TEST_H */
