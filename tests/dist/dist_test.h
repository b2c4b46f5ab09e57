/*
 * tests/dist/dist_test.h - what the distribution tests share: a private
 * epmd, child nodes (Elixir, or a second Beamline runtime in a forked
 * child) driven through pipes, and the node's log lines.
 *
 * Everything a test starts dies with it: each child is started with
 * PR_SET_PDEATHSIG (SIGKILL when the test process ends, however it ends)
 * and is also stopped and reaped by dist_test_stop_all(), which the tests
 * run as their .fini.  epmd runs in the foreground on a free port
 * (ERL_EPMD_PORT, which epmd, erl, elixir and the node all read), so the
 * tests never touch an epmd they did not start.
 */
#ifndef BL_DIST_TEST_H
#define BL_DIST_TEST_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ei.h>

#include "beamline/dist.h"
#include "beamline/io.h"
#include "bl_test.h"

#define DT_MAX_CHILDREN 4

typedef struct dt_child {
    pid_t pid; /* 0 = none */
    int in;    /* its stdin (we write), -1 when closed */
    int out;   /* its stdout (we read) */
    char name[64];
} dt_child;

static dt_child dt_children[DT_MAX_CHILDREN];
static char dt_host[64];
static char dt_cookie[32];

/* ---- the node's log ---- */

static pthread_mutex_t dt_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char dt_log_buf[16384];
static size_t dt_log_len;

static inline void dt_log(const char *line, void *arg)
{
    pthread_mutex_lock(&dt_log_lock);
    size_t n = strlen(line);
    if (dt_log_len + n + 2 < sizeof dt_log_buf) {
        memcpy(dt_log_buf + dt_log_len, line, n);
        dt_log_buf[dt_log_len + n] = '\n';
        dt_log_len += n + 1;
        dt_log_buf[dt_log_len] = 0;
    }
    pthread_mutex_unlock(&dt_log_lock);
}

static inline bool dt_logged(const char *what)
{
    pthread_mutex_lock(&dt_log_lock);
    bool r = strstr(dt_log_buf, what) != NULL;
    pthread_mutex_unlock(&dt_log_lock);
    return r;
}

/* Process only: waits (bounded) until the log has a line with `what`. */
static inline bool dt_wait_logged(const char *what, int64_t ms)
{
    int64_t end = bl_test_ms() + ms;
    while (!dt_logged(what) && bl_test_ms() < end) bl_sleep(10);
    return dt_logged(what);
}

static inline bl_dist_opts dt_opts(void)
{
    return (bl_dist_opts){.log = dt_log, .setup_ms = 5000};
}

/* ---- children ---- */

/* Forks a child with pipes on stdin and stdout; in the child, runs fn(arg) (which must not return).
 */
static inline dt_child *dt_fork(const char *name, void (*fn)(void *), void *arg)
{
    dt_child *c = NULL;
    for (int i = 0; i < DT_MAX_CHILDREN && !c; i++)
        if (!dt_children[i].pid) c = &dt_children[i];
    cr_assert(c, "too many children");
    int in[2], out[2];
    cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) _exit(1); /* the test is gone already */
        dup2(in[0], 0);
        dup2(out[1], 1);
        fn(arg);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->pid = pid;
    c->in = in[1];
    c->out = out[0];
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

static inline void dt_exec(void *argv)
{
    char **a = argv;
    execvp(a[0], a);
    _exit(127);
}

/* epmd, quiet about the probes below (connections closed without a request). */
static inline void dt_exec_epmd(void *arg)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, 2);
    execlp("epmd", "epmd", (char *)NULL);
    _exit(127);
}

/* Reads one line from c (outside or inside a process), waiting up to ms; false on timeout/EOF. */
static inline bool dt_read_line(dt_child *c, char *line, size_t len, int64_t ms)
{
    size_t n = 0;
    int64_t end = bl_test_ms() + ms;
    while (n + 1 < len) {
        int64_t left = end - bl_test_ms();
        if (left <= 0) break;
        char ch;
        ssize_t r;
        if (bl_self() != BL_PID_NONE) {
            r = bl_io_read(c->out, &ch, 1, left);
        } else {
            struct pollfd p = {.fd = c->out, .events = POLLIN};
            if (poll(&p, 1, (int)left) <= 0) break;
            r = read(c->out, &ch, 1);
        }
        if (r != 1) break;
        if (ch == '\n') {
            line[n] = 0;
            return true;
        }
        line[n++] = ch;
    }
    line[n] = 0;
    return false;
}

static inline bool dt_write_line(dt_child *c, const char *line)
{
    size_t n = strlen(line);
    if (bl_self() != BL_PID_NONE)
        return bl_io_write_all(c->in, line, n, 5000) == (ssize_t)n &&
               bl_io_write_all(c->in, "\n", 1, 5000) == 1;
    return write(c->in, line, n) == (ssize_t)n && write(c->in, "\n", 1) == 1;
}

/* A command to the Elixir node and its one-line answer. */
static inline bool dt_ask(dt_child *c, const char *cmd, char *answer, size_t len)
{
    return dt_write_line(c, cmd) && dt_read_line(c, answer, len, 15000);
}

/* A command (printf-style) to the Elixir node whose one-line answer must be want. */
static inline void dt_ask_is(dt_child *c, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void dt_ask_is(dt_child *c, const char *want, const char *fmt, ...)
{
    char cmd[256], answer[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    bool ok = dt_ask(c, cmd, answer, sizeof answer) && strcmp(answer, want) == 0;
    if (!ok) fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", cmd, answer, want);
    BL_CHECK(ok);
}

/* Stops every child: closes its stdin (it halts), then waits up to 5 s, then kills. */
static inline void dt_stop_all(void)
{
    for (int i = 0; i < DT_MAX_CHILDREN; i++) {
        dt_child *c = &dt_children[i];
        if (!c->pid) continue;
        if (c->in >= 0) close(c->in);
        c->in = -1;
        int st;
        pid_t r = 0;
        for (int k = 0; k < 500 && (r = waitpid(c->pid, &st, WNOHANG)) == 0; k++) usleep(10000);
        if (r == 0) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
        }
        close(c->out);
        c->pid = 0;
    }
}

/* ---- epmd and the Elixir node ---- */

static inline uint16_t dt_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

/* Skips the test when a program is missing (make test installs them). */
static inline void dt_need(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    if (system(cmd) != 0) cr_skip_test("%s is not installed", prog);
}

/* This host's short name (as -sname uses it) and a cookie of this test. */
static inline void dt_init_host(void)
{
    char h[64];
    gethostname(h, sizeof h);
    h[sizeof h - 1] = 0;
    char *dot = strchr(h, '.');
    if (dot) *dot = 0;
    snprintf(dt_host, sizeof dt_host, "%s", h);
    snprintf(dt_cookie, sizeof dt_cookie, "cookie%d", (int)getpid());
}

/* Starts a private epmd and waits (bounded) until it answers. */
static inline void dt_setup(void)
{
    dt_need("epmd");
    dt_need("elixir");
    dt_init_host();
    uint16_t port = dt_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    setenv("ERL_EPMD_PORT", ps, 1);
    dt_fork("epmd", dt_exec_epmd, NULL);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool up = false;
    for (int i = 0; i < 500 && !up; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        up = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (!up) usleep(10000);
    }
    cr_assert(up, "epmd did not come up on port %u", port);
}

/* Starts `elixir --sname alive --cookie cookie peer.exs` and waits for its "ready". */
static inline dt_child *dt_elixir(const char *alive, const char *cookie)
{
    static char script[512];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (slash ? (size_t)(slash + 1 - script) : 0),
             "peer.exs");
    static char a_alive[64], a_cookie[64];
    snprintf(a_alive, sizeof a_alive, "%s", alive);
    snprintf(a_cookie, sizeof a_cookie, "%s", cookie);
    static char *argv[] = {"elixir", "--sname", a_alive, "--cookie", a_cookie, script, NULL};
    dt_child *c = dt_fork(alive, dt_exec, argv);
    char line[256];
    bool ready = false;
    for (int i = 0; i < 20 && !ready; i++) {
        if (!dt_read_line(c, line, sizeof line, 30000)) break;
        ready = strcmp(line, "ready") == 0; /* Elixir may print warnings first */
    }
    cr_assert(ready, "the Elixir node %s did not start", alive);
    return c;
}

/* Process only: the next message tagged tag carries data[0..len); returns its sender. */
static inline bl_pid dt_expect(uint32_t tag, const void *data, size_t len)
{
    bl_msg *m = bl_test_recv_tag(tag, 10000);
    bool ok = m && m->len == len && (len == 0 || memcmp(m->data, data, len) == 0);
    BL_CHECK(ok);
    bl_pid from = ok ? m->from : BL_PID_NONE;
    bl_msg_free(m);
    return from;
}

/* Process only: text to {echo, node} comes back; returns the echo's pid, checked remote. */
static inline bl_pid dt_echo_pid(const char *node, uint32_t tag, const char *text)
{
    BL_CHECK_EQ(bl_dist_send_name("echo", node, tag, text, strlen(text)), 0);
    bl_pid e = dt_expect(tag, text, strlen(text));
    BL_CHECK(e >> 56);
    BL_CHECK(bl_dist_pid_node(e) && strcmp(bl_dist_pid_node(e), node) == 0);
    return e;
}

/* Test set-up: epmd, the Elixir node "ex<pid>" (in *ex), and this node's name "bl<pid>". */
static inline void dt_setup_elixir(dt_child **ex, char *me, char *ex_name, size_t len)
{
    dt_setup();
    char alive[32];
    snprintf(alive, sizeof alive, "ex%d", (int)getpid());
    cr_assert_lt(snprintf(ex_name, len, "%s@%s", alive, dt_host), (int)len, "node name too long");
    *ex = dt_elixir(alive, dt_cookie);
    cr_assert_lt(snprintf(me, len, "bl%d@%s", (int)getpid(), dt_host), (int)len,
                 "node name too long");
}

/* "alive@host" of this machine. */
static inline const char *dt_node(const char *alive, char *buf, size_t len)
{
    cr_assert_lt(snprintf(buf, len, "%s@%s", alive, dt_host), (int)len, "node name too long");
    return buf;
}

#endif /* BL_DIST_TEST_H */
