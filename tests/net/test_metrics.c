/*
 * The metrics endpoint (net/metrics.c, served by net/control.c): GET
 * /metrics in the Prometheus text format, values that move, 404/405/400/431
 * for the rest, and a slow client that delays nobody.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_client.h"

static char resp[1 << 17];

static int idle_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return 0;
}
static const bl_handler idle = {.handle = idle_handle};

/* The value of the sample line that starts with name (then a space). */
static long long value_of(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

#define GET "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"

static void metrics_main(void *arg)
{
    (void)arg;
    int port = bl_metrics_port();
    BL_CHECK(port > 0);
    if (port <= 0) return;
    BL_CHECK(ops_http((uint16_t)port, GET, strlen(GET), resp, sizeof resp) > 0);
    BL_CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    BL_CHECK(strstr(resp, "Content-Type: text/plain; version=0.0.4") != NULL);
    BL_CHECK(strstr(resp, "\n# HELP beamline_processes ") != NULL);
    BL_CHECK(strstr(resp, "\n# TYPE beamline_processes gauge\n") != NULL);
    BL_CHECK(strstr(resp, "\n# TYPE beamline_scheduler_switches_total counter\n") != NULL);
    BL_CHECK(strstr(resp, "\nbeamline_scheduler_switches_total{scheduler=\"1\"} ") != NULL);
    BL_CHECK(strstr(resp, "\n# TYPE beamline_scheduler_mail_spin_hits_total counter\n") != NULL);
    BL_CHECK(strstr(resp, "\n# TYPE beamline_log_dropped_total counter\n") != NULL);
    BL_CHECK(value_of(resp, "beamline_memory_rss_bytes") > 0);
    BL_CHECK(value_of(resp, "beamline_schedulers") == 2);
    long long before = value_of(resp, "beamline_processes");
    BL_CHECK_EQ(before, 1);

    bl_pid p[10];
    for (int i = 0; i < 10; i++) BL_CHECK_EQ(bl_spawn_handler(&p[i], &idle, NULL, NULL), 0);
    ops_http((uint16_t)port, GET, strlen(GET), resp, sizeof resp);
    BL_CHECK_EQ(value_of(resp, "beamline_processes"), before + 10);

    const char *nf = "GET /other HTTP/1.1\r\n\r\n";
    ops_http((uint16_t)port, nf, strlen(nf), resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
    const char *post = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    ops_http((uint16_t)port, post, strlen(post), resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 405 ", 13) == 0);
    const char bad[] = "\x01\x02 \xff\xfe junk\r\n\r\n";
    ops_http((uint16_t)port, bad, sizeof bad - 1, resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
    const char nul[] = "GET /metrics\0 HTTP/1.1\r\n\r\n";
    ops_http((uint16_t)port, nul, sizeof nul - 1, resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
    /* A head that never ends within 8 KiB. */
    char *big = malloc(9000);
    memset(big, 'a', 9000);
    memcpy(big, "GET /", 5);
    ops_http((uint16_t)port, big, 9000, resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
    free(big);

    /* A slow client (half a request, then nothing) does not hold up the next. */
    int slow = bl_io_connect_tcp("127.0.0.1", (uint16_t)port, 5000);
    BL_CHECK(slow >= 0);
    BL_CHECK(bl_io_send_all(slow, "GET /met", 8, 0, 5000) == 8);
    int64_t t0 = bl_test_ms();
    ops_http((uint16_t)port, GET, strlen(GET), resp, sizeof resp);
    BL_CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    BL_CHECK(bl_test_ms() - t0 < 2000);
    /* ... and is closed by its deadline (5 s), unanswered. */
    char c;
    BL_CHECK_EQ(bl_io_recv(slow, &c, 1, 0, 10000), 0);
    BL_CHECK(bl_test_ms() - t0 < 9000);
    bl_io_close(slow);

    bl_reason kill = BL_REASON(BL_KILL);
    for (int i = 0; i < 10; i++) bl_exit_pid(p[i], &kill);
}

Test(metrics, get_metrics_and_bad_requests)
{
    bl_config c = {.schedulers = 2, .metrics = "127.0.0.1:0", .quiet = true};
    bl_test_run(&c, metrics_main, NULL);
    cr_assert_eq(bl_metrics_port(), -ENOTCONN);
}

static _Atomic int control_errors;

static void on_log(const bl_log_event *e, void *arg)
{
    (void)arg;
    if (!strcmp(e->kind, "control") && e->level == BL_LOG_ERROR) control_errors++;
}

static void no_port(void *arg)
{
    (void)arg;
    BL_CHECK_EQ(bl_metrics_port(), -ENOTCONN);
}

/* A malformed address is an error logged; the program runs without metrics. */
Test(metrics, bad_address_is_logged)
{
    const char *bad[] = {"nocolon", "127.0.0.1:", "999.1.1.1:80", "127.0.0.1:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        control_errors = 0;
        bl_config c = {.metrics = bad[i], .log_handler = on_log};
        bl_test_run(&c, no_port, NULL);
        cr_assert_eq(control_errors, 1, "%s", bad[i]);
    }
}
