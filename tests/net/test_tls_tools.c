/*
 * Real TLS clients against a Beamline TLS server: `openssl s_client` and
 * `curl --cacert`, run on the dirty-work pool (they block), talking to a
 * tiny HTTP/1.0 responder written here, in TLS 1.2 and 1.3.  A curl that
 * does not trust the certificate fails, and the server goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "net/tls_test.h"

static tls_files F;

/* The body of every response: 100 KB, several records. */
#define BODY_LEN 100000

static char body_byte(size_t i)
{
    return "beamline tls\n"[i % 13];
}

/* An HTTP/1.0-style answer: the head read whole, the body, then close_notify. */
static void http_serve(tls_server *s, bl_tls_conn *c)
{
    char req[4096];
    size_t have = 0;
    while (!memmem(req, have, "\r\n\r\n", 4) && !memmem(req, have, "\n\n", 2)) {
        ssize_t n = bl_tls_read(c, req + have, sizeof req - have, 10000);
        if (n <= 0 || (have += (size_t)n) == sizeof req) return;
    }
    char *resp = malloc(BODY_LEN + 128);
    int h = snprintf(resp, 128,
                     "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %d\r\n\r\n",
                     BODY_LEN);
    for (size_t i = 0; i < BODY_LEN; i++) resp[h + i] = body_byte(i);
    bl_tls_write(c, resp, (size_t)h + BODY_LEN, 10000);
    free(resp);
}

typedef struct command {
    char line[1024]; /* for sh -c */
    char *out;       /* its standard output (and error), NUL-terminated */
    size_t len;      /* its length */
    int status;      /* the exit status, -1 if it could not run */
} command;

/* On a dirty-work thread: popen blocks. */
static long run_command(void *arg)
{
    command *c = arg;
    c->status = -1;
    FILE *p = popen(c->line, "r");
    if (!p) return 0;
    size_t cap = 1 << 20;
    c->out = malloc(cap + 1);
    size_t n;
    while (c->out && c->len < cap && (n = fread(c->out + c->len, 1, cap - c->len, p)) > 0)
        c->len += n;
    if (c->out) c->out[c->len] = 0;
    int st = pclose(p);
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 0;
}

static int run(command *c)
{
    c->out = NULL;
    c->len = 0;
    BL_CHECK_EQ(bl_dirty_run(run_command, c, NULL), 0);
    if (c->status != 0) fprintf(stderr, "`%s`: status %d\n%s\n", c->line, c->status, c->out);
    return c->status;
}

/* True when out ends with the whole body. */
static bool has_body(const command *c)
{
    if (!c->out || c->len < BODY_LEN) return false;
    const char *b = c->out + c->len - BODY_LEN;
    for (size_t i = 0; i < BODY_LEN; i++)
        if (b[i] != body_byte(i)) return false;
    return true;
}

static bool have_tool(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static void tools_main(void *arg)
{
    tls_server s = {.serve = http_serve};
    bl_tls_opts o = {.cert_file = F.cert, .key_file = F.key, .alpn = "http/1.1"};
    s.ctx = bl_tls_server_ctx(&o);
    BL_CHECK(s.ctx != NULL);
    tls_server_start(&s);
    command c;
    static const char *const versions[][2] = {{"1.2", "-tls1_2"}, {"1.3", "-tls1_3"}};
    for (int v = 0; v < 2; v++) {
        /* openssl s_client: verifies the chain and the name, offers ALPN, sends a request. */
        snprintf(c.line, sizeof c.line,
                 "printf 'GET /s_client HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -ign_eof "
                 "-connect 127.0.0.1:%u -servername localhost -verify_hostname localhost "
                 "-CAfile %s -verify_return_error -alpn http/1.1 %s 2>/dev/null",
                 s.port, F.cert, versions[v][1]);
        BL_CHECK_EQ(run(&c), 0);
        BL_CHECK(has_body(&c));
        BL_CHECK(c.out && strstr(c.out, "HTTP/1.0 200 OK") != NULL);
        free(c.out);
        tls_report r = tls_next_report();
        BL_CHECK_EQ(r.rc, 0);
        BL_CHECK_EQ(r.version, v ? BL_TLS_1_3 : BL_TLS_1_2);
        BL_CHECK(strcmp(r.alpn, "http/1.1") == 0);
        BL_CHECK(strcmp(r.sni, "localhost") == 0);

        /* curl --cacert: the same, by name, with its own ALPN offer (h2, http/1.1). */
        snprintf(c.line, sizeof c.line,
                 "curl -sS --max-time 30 --cacert %s --tlsv%s --tls-max %s "
                 "--resolve localhost:%u:127.0.0.1 https://localhost:%u/curl 2>&1",
                 F.cert, versions[v][0], versions[v][0], s.port, s.port);
        BL_CHECK_EQ(run(&c), 0);
        BL_CHECK(has_body(&c) && c.len == BODY_LEN);
        free(c.out);
        r = tls_next_report();
        BL_CHECK_EQ(r.rc, 0);
        BL_CHECK_EQ(r.version, v ? BL_TLS_1_3 : BL_TLS_1_2);
        BL_CHECK(strcmp(r.alpn, "http/1.1") == 0);
        BL_CHECK(strcmp(r.sni, "localhost") == 0);
    }
    /* curl without the CA: it refuses the certificate (60); the server hears why and goes on. */
    snprintf(c.line, sizeof c.line, "curl -sS --max-time 30 https://127.0.0.1:%u/ 2>&1", s.port);
    c.out = NULL;
    c.len = 0;
    BL_CHECK_EQ(bl_dirty_run(run_command, &c, NULL), 0);
    BL_CHECK_EQ(c.status, 60);
    free(c.out);
    tls_report r = tls_next_report();
    BL_CHECK(r.rc < 0 && r.err[0]);
    snprintf(c.line, sizeof c.line, "curl -sS --max-time 30 --cacert %s https://127.0.0.1:%u/",
             F.cert, s.port);
    BL_CHECK_EQ(run(&c), 0);
    BL_CHECK(has_body(&c));
    free(c.out);
    BL_CHECK_EQ(tls_next_report().rc, 0);
    tls_server_stop(&s);
    bl_tls_ctx_free(s.ctx);
}

Test(tls_tools, openssl_and_curl, .timeout = 240)
{
    if (!have_tool("openssl") || !have_tool("curl"))
        cr_skip_test("openssl or curl is not installed (Makefile's BUILD_DEPS has both)");
    cr_assert(tls_make_cert(&F, "srv", "localhost"));
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, tools_main, NULL);
    tls_files_remove(&F);
}
