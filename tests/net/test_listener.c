/*
 * The listener (beamline/listener.h): echo over IPv4 and IPv6 loopback,
 * port 0, what a handler is given, max_connections, suspend and resume,
 * and bad options.
 */
#include "listener_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* ---- echo over IPv4 and IPv6, port 0 ---- */

static void echo_on(const char *host, int family)
{
    int fds0 = bl_test_count_fds();
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = host};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    if (!l) return;
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK(i.port != 0); /* port 0: the chosen one */
    BL_CHECK_EQ(i.family, family);
    BL_CHECK_EQ(i.state, BL_LISTENER_RUNNING);
    BL_CHECK_EQ(i.max_connections, 1024);
    BL_CHECK(i.acceptors >= 4);
    BL_CHECK(bl_is_alive(i.sup));
    int n = BL_SCALE(200);
    BL_CHECK_EQ(run_clients(host, i.port, n, 5), n * 5);
    /* Every handler ended with its client; the counts say so. */
    BL_CHECK_EQ(wait_active(l, 0), 0);
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.accepted, (uint64_t)n);
    BL_CHECK_EQ(i.refused, 0);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
    BL_CHECK_EQ(bl_io_connect_tcp(host, i.port, 5000), -ECONNREFUSED);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

static void echo_v4_main(void *arg)
{
    echo_on("127.0.0.1", AF_INET);
}

Test(listener, echo_ipv4)
{
    bl_test_run(NULL, echo_v4_main, NULL);
}

/* True if this machine can bind ::1 (IPv6 may be off in a container). */
static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void echo_v6_main(void *arg)
{
    echo_on("::1", AF_INET6);
}

Test(listener, echo_ipv6)
{
    if (!have_ipv6()) cr_skip_test("no IPv6 loopback");
    bl_test_run(NULL, echo_v6_main, NULL);
}

/* ---- what a handler is given ---- */

/* What the probe handler saw, sent to the test. */
typedef struct probe {
    int nodelay;                  /* TCP_NODELAY of the socket */
    int rcvbuf;                   /* SO_RCVBUF of the socket */
    int64_t idle_ms;              /* conn->idle_ms */
    uint64_t id;                  /* conn->id */
    struct sockaddr_storage peer; /* conn->peer */
    socklen_t peer_len;           /* conn->peer_len */
    bool listener_ok;             /* conn->listener is the one started */
    bool arg_ok;                  /* arg is the one given */
} probe;

typedef struct probe_arg {
    bl_pid test;    /* who gets the probe */
    bl_listener *l; /* the listener, once started */
} probe_arg;

static void probe_handler(int fd, const bl_listener_conn *c, void *arg)
{
    probe_arg *pa = arg;
    probe p = {.idle_ms = c->idle_ms, .id = c->id, .peer = c->peer, .peer_len = c->peer_len};
    socklen_t len = sizeof p.nodelay;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &p.nodelay, &len);
    len = sizeof p.rcvbuf;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &p.rcvbuf, &len);
    p.listener_ok = c->listener == pa->l;
    p.arg_ok = true;
    bl_send(pa->test, T_HANDLER, &p, sizeof p);
    echo_handler(fd, c, NULL);
}

static void conn_info_main(void *arg)
{
    probe_arg pa = {.test = bl_self()};
    bl_listener_opts o = {.handler = probe_handler,
                          .arg = &pa,
                          .host = "127.0.0.1",
                          .idle_ms = 1234,
                          .rcvbuf = 64 * 1024};
    BL_CHECK_EQ(bl_listener_start(&pa.l, &o), 0);
    for (int k = 1; k <= 2; k++) {
        int fd = connect_echoed("127.0.0.1", port_of(pa.l));
        BL_CHECK(fd >= 0);
        bl_msg *m = bl_test_recv_tag(T_HANDLER, 5000);
        BL_CHECK(m != NULL);
        if (m) {
            probe *p = m->data;
            BL_CHECK_EQ(p->nodelay, 1);       /* set on the listener, copied by Linux */
            BL_CHECK(p->rcvbuf >= 64 * 1024); /* Linux doubles what was asked */
            BL_CHECK_EQ(p->idle_ms, 1234);
            BL_CHECK_EQ(p->id, (uint64_t)k);
            BL_CHECK(p->listener_ok && p->arg_ok);
            /* The peer is this client: its address and port. */
            struct sockaddr_in me;
            socklen_t len = sizeof me;
            getsockname(fd, (struct sockaddr *)&me, &len);
            struct sockaddr_in *peer = (struct sockaddr_in *)&p->peer;
            BL_CHECK_EQ(p->peer_len, sizeof me);
            BL_CHECK_EQ(peer->sin_family, AF_INET);
            BL_CHECK_EQ(peer->sin_port, me.sin_port);
            BL_CHECK_EQ(peer->sin_addr.s_addr, me.sin_addr.s_addr);
        }
        bl_msg_free(m);
        bl_io_close(fd);
    }
    BL_CHECK_EQ(bl_listener_stop(pa.l, 5000), 0);

    /* nagle: TCP_NODELAY stays off.  idle_ms 0: the default, 60 s. */
    o.nagle = true;
    o.idle_ms = 0;
    o.rcvbuf = 0;
    BL_CHECK_EQ(bl_listener_start(&pa.l, &o), 0);
    int fd = connect_echoed("127.0.0.1", port_of(pa.l));
    bl_msg *m = bl_test_recv_tag(T_HANDLER, 5000);
    BL_CHECK(m != NULL);
    if (m) {
        BL_CHECK_EQ(((probe *)m->data)->nodelay, 0);
        BL_CHECK_EQ(((probe *)m->data)->idle_ms, 60000);
    }
    bl_msg_free(m);
    bl_io_close(fd);
    BL_CHECK_EQ(bl_listener_stop(pa.l, 5000), 0);
}

Test(listener, conn_info)
{
    bl_test_run(NULL, conn_info_main, NULL);
}

/* ---- max_connections ---- */

static void max_conns_main(void *arg)
{
    bl_listener *l = NULL;
    bl_listener_opts o = {
        .handler = echo_handler, .host = "127.0.0.1", .acceptors = 4, .max_connections = 2};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    uint16_t port = port_of(l);
    int a = connect_echoed("127.0.0.1", port);
    int b = connect_echoed("127.0.0.1", port);
    BL_CHECK(a >= 0 && b >= 0);
    BL_CHECK_EQ(wait_active(l, 2), 2);

    /* The third connects (the kernel's backlog) but is not served while two are open. */
    int c = bl_io_connect_tcp("127.0.0.1", port, 5000);
    BL_CHECK(c >= 0);
    BL_CHECK_EQ(bl_io_send_all(c, "ping", 4, 0, 5000), 4);
    char buf[8];
    BL_CHECK_EQ(bl_io_recv(c, buf, sizeof buf, 0, 300), -ETIMEDOUT);
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.active, 2);
    BL_CHECK_EQ(i.accepted, 2); /* not even accepted */
    BL_CHECK(i.limit_hits > 0);

    /* One closes: the third is accepted and served. */
    bl_io_close(a);
    BL_CHECK_EQ(bl_io_recv_all(c, buf, 4, 0, 5000), 4);
    BL_CHECK_EQ(memcmp(buf, "ping", 4), 0);
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.accepted, 3);
    BL_CHECK_EQ(wait_active(l, 2), 2);

    /* Raising the limit lets a waiting connection in at once. */
    int d = bl_io_connect_tcp("127.0.0.1", port, 5000);
    BL_CHECK_EQ(bl_io_send_all(d, "pong", 4, 0, 5000), 4);
    BL_CHECK_EQ(bl_io_recv(d, buf, sizeof buf, 0, 300), -ETIMEDOUT);
    BL_CHECK_EQ(bl_listener_set_max_connections(l, 3), 0);
    BL_CHECK_EQ(bl_io_recv_all(d, buf, 4, 0, 5000), 4);
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.max_connections, 3);
    BL_CHECK_EQ(i.active, 3);

    bl_io_close(b);
    bl_io_close(c);
    bl_io_close(d);
    BL_CHECK_EQ(wait_active(l, 0), 0);
    /* Released: many at once again, never more than the limit at a time. */
    BL_CHECK_EQ(run_clients("127.0.0.1", port, 20, 3), 60);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
}

Test(listener, max_connections)
{
    bl_test_run(NULL, max_conns_main, NULL);
}

/* ---- suspend and resume ---- */

/* Suspends and resumes l, whose port is port, with one connection open across. */
static void suspend_resume(bl_listener *l, uint16_t port)
{
    int a = connect_echoed("127.0.0.1", port);
    BL_CHECK(a >= 0);
    BL_CHECK_EQ(bl_listener_suspend(l), 0);
    BL_CHECK_EQ(bl_listener_suspend(l), 0); /* twice is once */
    BL_CHECK_EQ(bl_listener_state_get(l), BL_LISTENER_SUSPENDED);
    /* New connections are refused; the open one is still served. */
    BL_CHECK_EQ(bl_io_connect_tcp("127.0.0.1", port, 5000), -ECONNREFUSED);
    BL_CHECK(echo_round(a, 1, 1));
    BL_CHECK_EQ(bl_listener_resume(l), 0);
    BL_CHECK_EQ(bl_listener_resume(l), 0);
    BL_CHECK_EQ(bl_listener_state_get(l), BL_LISTENER_RUNNING);
    BL_CHECK_EQ(port_of(l), port);
    BL_CHECK_EQ(run_clients("127.0.0.1", port, 10, 2), 20);
    BL_CHECK(echo_round(a, 1, 2));
    bl_io_close(a);
}

static void suspend_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    /* Port 0: resume binds the chosen port again. */
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    uint16_t port = port_of(l);
    for (int k = 0; k < 3; k++) suspend_resume(l, port);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);

    /* The same port given explicitly (free again after the stop). */
    o.port = port;
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    BL_CHECK_EQ(port_of(l), port);
    suspend_resume(l, port);
    /* Another listener takes the port meanwhile: resume fails and l stays suspended,
     * until the port is free again. */
    BL_CHECK_EQ(bl_listener_suspend(l), 0);
    bl_listener *other = NULL;
    BL_CHECK_EQ(bl_listener_start(&other, &o), 0);
    BL_CHECK_EQ(bl_listener_resume(l), -EADDRINUSE);
    BL_CHECK_EQ(bl_listener_state_get(l), BL_LISTENER_SUSPENDED);
    BL_CHECK_EQ(run_clients("127.0.0.1", port, 2, 1), 2); /* served by the other */
    BL_CHECK_EQ(bl_listener_stop(other, 5000), 0);
    BL_CHECK_EQ(bl_listener_resume(l), 0);
    BL_CHECK_EQ(run_clients("127.0.0.1", port, 2, 1), 2);
    bl_listener_info i;
    BL_CHECK_EQ(bl_listener_info_get(l, &i), 0);
    BL_CHECK_EQ(i.accepted, 1 + 10 + 2); /* suspend_resume's, and these two */
    /* Stopped while suspended. */
    BL_CHECK_EQ(bl_listener_suspend(l), 0);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener, suspend_resume)
{
    bl_test_run(NULL, suspend_main, NULL);
}

/* ---- bad options ---- */

static int start_err(bl_listener_opts o)
{
    bl_listener *l = NULL;
    int rc = bl_listener_start(&l, &o);
    if (rc == 0) bl_listener_stop(l, 0);
    return rc;
}

static void bad_opts_main(void *arg)
{
    int fds0 = bl_test_count_fds();
    bl_listener *l = NULL;
    bl_listener_opts ok = {.handler = echo_handler, .host = "127.0.0.1"};
    BL_CHECK_EQ(bl_listener_start(NULL, &ok), -EINVAL);
    BL_CHECK_EQ(bl_listener_start(&l, NULL), -EINVAL);
    bl_listener_opts o = ok;
    o.handler = NULL;
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.host = "localhost"; /* numeric addresses only */
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o.host = "300.1.1.1";
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.backlog = -1;
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.sndbuf = -1;
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.acceptors = BL_LISTENER_MAX_ACCEPTORS + 1;
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.idle_ms = -5;
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.v6only = true; /* with an IPv4 address */
    BL_CHECK_EQ(start_err(o), -EINVAL);
    o = ok;
    o.host = "192.0.2.1"; /* TEST-NET-1: no address of this machine */
    BL_CHECK_EQ(start_err(o), -EADDRNOTAVAIL);

    /* A port in use; with reuseport on both, shared. */
    BL_CHECK_EQ(bl_listener_start(&l, &ok), 0);
    o = ok;
    o.port = port_of(l);
    BL_CHECK_EQ(start_err(o), -EADDRINUSE);
    BL_CHECK_EQ(bl_listener_stop(l, 0), 0);
    o.port = 0;
    o.reuseport = true;
    BL_CHECK_EQ(bl_listener_start(&l, &o), 0);
    bl_listener *l2 = NULL;
    o.port = port_of(l);
    BL_CHECK_EQ(bl_listener_start(&l2, &o), 0);
    BL_CHECK_EQ(run_clients("127.0.0.1", o.port, 10, 1), 10);
    BL_CHECK_EQ(bl_listener_stop(l2, 5000), 0); /* its handlers end with their clients */

    /* The other calls. */
    BL_CHECK_EQ(bl_listener_stop(NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_listener_stop(l, -5), -EINVAL);
    BL_CHECK_EQ(bl_listener_suspend(NULL), -EINVAL);
    BL_CHECK_EQ(bl_listener_resume(NULL), -EINVAL);
    BL_CHECK_EQ(bl_listener_set_max_connections(l, 0), -EINVAL);
    BL_CHECK_EQ(bl_listener_set_max_connections(NULL, 5), -EINVAL);
    BL_CHECK_EQ(bl_listener_info_get(NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_listener_info_get(l, NULL), -EINVAL);
    BL_CHECK_EQ(bl_listener_state_get(NULL), BL_LISTENER_STOPPING);
    BL_CHECK_EQ(bl_listener_stop(l, 5000), 0);
    /* Nothing was left open by the failures. */
    BL_CHECK_EQ(wait_fds(fds0), fds0);
}

Test(listener, bad_opts)
{
    bl_test_run(NULL, bad_opts_main, NULL);
}

/* Outside a process: -EPERM, nothing opened. */
Test(listener, not_a_process)
{
    bl_listener *l = NULL;
    bl_listener_opts o = {.handler = echo_handler, .host = "127.0.0.1"};
    cr_assert_eq(bl_listener_start(&l, &o), -EPERM);
}
