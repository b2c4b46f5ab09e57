/*
 * tests/chaos/http.c - the http_server example under load while its
 * processes are killed.
 *
 * The server (examples/http_server) runs in-process on a loopback port.
 * Load: wrk (-t2 -c64, /plaintext) for the scenario's duration when it is
 * installed, and client threads that misbehave on purpose: keep-alive
 * batches, pipelined bursts, requests cut in the middle (sometimes with a
 * reset), responses never read, malformed requests, slow ones trickled a
 * byte at a time and some stalled past the head timeout.
 *
 * The killer (this scenario's process) kills, every 0.2-3 ms: a connection
 * process (the connections' supervisor's children); and, rate-limited to
 * two in any 5 s so that the top supervisor's intensity (3 restarts in
 * 5 s) holds, an acceptor or the connections' supervisor.  Once per run it
 * also kills the connections' supervisor four times in a row: the top
 * supervisor must then give up (exit with reason shutdown, which this
 * process, monitoring it, sees), and the server is started again on the
 * same port while the load goes on.  If the top supervisor gives up at any
 * other time, the same restart happens and is counted.
 *
 * Checked: every response any client reads is a well-formed HTTP/1.1
 * response (never bytes of another), wrk sees no non-2xx response, the
 * planned give-up happens with reason shutdown, and after the shutdown the
 * driver's checks pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos.h"
#include "examples/http_server/http_server.h"

#define NCLIENTS   3
#define MAX_CONNS  1024
#define TOP_WINDOW 5000 /* the top supervisor's max_seconds, in ms */
#define TOP_KILLS  2    /* kills allowed per window (its max_restarts is 3) */

extern char **environ;

typedef struct http_chaos {
    chaos_run *r;
    uint16_t port;
    _Atomic bool stop; /* clients: finish */
    int c_req, c_wrk, c_client_req, c_conn, c_cut, c_bad, c_slow, c_stall;
    int k_conn, k_acceptor, k_conns, k_gaveup, i_unplanned, i_wrk_rps, i_wrk_err, i_refused;
    /* wrk */
    bool wrk_ran; /* it ran and its output was read */
    long long wrk_requests, wrk_non2xx, wrk_errors;
    double wrk_rps;
    char wrk_note[160];
} http_chaos;

/* ---- wrk, from a plain thread ---- */

static bool have_wrk(void)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char f[4200];
        snprintf(f, sizeof f, "%s/wrk", d);
        if (access(f, X_OK) == 0) return true;
    }
    return false;
}

static long long after_num(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : 0;
}

static void *wrk_thread(void *arg)
{
    http_chaos *h = arg;
    int secs = (int)h->r->seconds;
    if (secs < 1) secs = 1;
    char dur[32], url[64];
    snprintf(dur, sizeof dur, "%ds", secs);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/plaintext", h->port);
    char *argv[] = {"wrk", "-t2", "-c64", "-d", dur, "--timeout", "2s", url, NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, "wrk", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        snprintf(h->wrk_note, sizeof h->wrk_note, "wrk did not start: %s", strerror(rc));
        close(p[0]);
        return NULL;
    }
    char out[8192];
    size_t n = 0;
    /* wrk ends after its duration; one that is still running 30 s later
     * is killed, so that the scenario, which joins this thread, ends. */
    int64_t until = chaos_ms() + (int64_t)secs * 1000 + 30000;
    bool killed = false;
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        int64_t left = until - chaos_ms();
        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        ssize_t k = read(p[0], out + n, sizeof out - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
        if (n == sizeof out - 1) break;
    }
    out[n] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (killed) {
        snprintf(h->wrk_note, sizeof h->wrk_note, "wrk still ran %d s past its duration: killed",
                 30);
        return NULL;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !strstr(out, "requests in")) {
        snprintf(h->wrk_note, sizeof h->wrk_note, "wrk failed (status %d): %.100s", st, out);
        return NULL;
    }
    /* "  123456 requests in 2.00s, ..." */
    const char *q = strstr(out, " requests in");
    while (q > out && q[-1] >= '0' && q[-1] <= '9') q--;
    h->wrk_requests = strtoll(q, NULL, 10);
    const char *rps = strstr(out, "Requests/sec:");
    h->wrk_rps = rps ? strtod(rps + 13, NULL) : 0;
    h->wrk_non2xx = after_num(out, "Non-2xx or 3xx responses:");
    const char *se = strstr(out, "Socket errors:");
    if (se) {
        long long c = 0, rd = 0, w = 0, t = 0;
        sscanf(se, "Socket errors: connect %lld, read %lld, write %lld, timeout %lld", &c, &rd, &w,
               &t);
        h->wrk_errors = c + rd + w + t;
        snprintf(h->wrk_note, sizeof h->wrk_note,
                 "wrk: socket errors connect %lld read %lld write %lld timeout %lld (kills cut "
                 "connections)",
                 c, rd, w, t);
    }
    h->wrk_ran = true;
    return NULL;
}

/* ---- misbehaving clients: plain threads, blocking sockets with timeouts ---- */

#define GET "GET /plaintext HTTP/1.1\r\nHost: chaos\r\n\r\n"

typedef struct conn {
    int fd;
    size_t have;
    char buf[65536];
} conn;

static bool conn_open(conn *c, uint16_t port)
{
    c->have = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return false;
    struct timeval tv = {2, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void conn_close(conn *c, bool reset)
{
    if (c->fd < 0) return;
    if (reset) {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd);
    c->fd = -1;
}

static bool send_all(conn *c, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        s += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Reads one response: 1 when a complete one came (*status its code), 0 when
 * the connection ended first (a killed connection), -1 when the bytes are
 * not an HTTP/1.1 response.
 */
static int read_response(conn *c, int *status)
{
    for (;;) {
        char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (c->have >= 9 && memcmp(c->buf, "HTTP/1.1 ", 9) != 0) return -1;
        if (end) {
            size_t head = (size_t)(end - c->buf) + 4;
            char *cl = memmem(c->buf, head, "\r\nContent-Length: ", 18);
            if (!cl) return -1;
            size_t body = strtoul(cl + 18, NULL, 10);
            if (c->have >= head + body) {
                *status = atoi(c->buf + 9);
                memmove(c->buf, c->buf + head + body, c->have - head - body);
                c->have -= head + body;
                return 1;
            }
        }
        if (c->have == sizeof c->buf) return -1;
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (n <= 0) return 0;
        c->have += (size_t)n;
    }
}

typedef struct client_arg {
    http_chaos *h;
    unsigned index;
} client_arg;

static void bad_bytes(http_chaos *h, const char *what)
{
    chaos_add(h->r, h->c_bad, 1);
    chaos_fail(h->r, "http: a client read something that is not an HTTP/1.1 response (%s)", what);
}

static void *client(void *arg)
{
    client_arg *ca = arg;
    http_chaos *h = ca->h;
    chaos_rng g = chaos_rng_for(h->r, 0x500 + ca->index);
    conn *c = malloc(sizeof *c);
    if (!c) return NULL;
    for (int it = 0; it < 10000000 && !atomic_load(&h->stop); it++) {
        if (!conn_open(c, h->port)) {
            chaos_add(h->r, h->i_refused, 1); /* the server is being restarted */
            usleep(2000);
            continue;
        }
        chaos_add(h->r, h->c_conn, 1);
        int st = 0, rc;
        switch (chaos_below(&g, 6)) {
        case 0: /* keep-alive batch */
        case 1: {
            int n = 1 + (int)chaos_below(&g, 8);
            for (int k = 0; k < n; k++) {
                if (!send_all(c, GET, strlen(GET))) break;
                rc = read_response(c, &st);
                if (rc < 0) bad_bytes(h, "keep-alive");
                if (rc <= 0) break;
                if (st != 200) bad_bytes(h, "keep-alive status");
                chaos_add(h->r, h->c_client_req, 1);
            }
            break;
        }
        case 2: { /* pipelined burst */
            char burst[sizeof GET * 10];
            size_t len = 0;
            for (int k = 0; k < 10; k++) {
                memcpy(burst + len, GET, strlen(GET));
                len += strlen(GET);
            }
            if (!send_all(c, burst, len)) break;
            for (int k = 0; k < 10; k++) {
                rc = read_response(c, &st);
                if (rc < 0) bad_bytes(h, "pipelined");
                if (rc <= 0) break;
                chaos_add(h->r, h->c_client_req, 1);
            }
            break;
        }
        case 3: /* cut: part of a request, or a whole one never read */
            if (chaos_one_in(&g, 2))
                (void)send_all(c, GET, 1 + (size_t)chaos_below(&g, strlen(GET) - 1));
            else
                (void)send_all(c, GET GET GET, 3 * strlen(GET));
            chaos_add(h->r, h->c_cut, 1);
            conn_close(c, chaos_one_in(&g, 2));
            continue;
        case 4: { /* malformed: the answer is 400, 505 for a version other than 1.x (or the
                     connection was killed) */
            static const char *const junk[] = {"GET / HTTP/9.9\r\n\r\n", "\x01\x02\x03\r\n\r\n",
                                               "GET /plaintext HTTP/1.1\r\nHost x\r\n\r\n",
                                               "POST /json HTTP/1.1\r\nContent-Length: -5\r\n\r\n"};
            unsigned k = (unsigned)chaos_below(&g, 4);
            const char *j = junk[k];
            if (!send_all(c, j, strlen(j))) break;
            rc = read_response(c, &st);
            if (rc < 0) bad_bytes(h, "malformed");
            if (rc > 0 && st != (k == 0 ? 505 : 400)) bad_bytes(h, "malformed status");
            break;
        }
        default: /* slow: a byte at a time; or stalled past the head timeout (408) */
            if (chaos_one_in(&g, 4)) {
                (void)send_all(c, GET, 10);
                chaos_add(h->r, h->c_stall, 1);
                rc = read_response(c, &st);
                if (rc < 0) bad_bytes(h, "stalled");
                if (rc > 0 && st != 408) bad_bytes(h, "stalled status");
                break;
            }
            chaos_add(h->r, h->c_slow, 1);
            bool sent = true;
            for (size_t k = 0; k < strlen(GET) && sent && !atomic_load(&h->stop); k++) {
                sent = send_all(c, GET + k, 1);
                usleep(200 + (useconds_t)chaos_below(&g, 800));
            }
            if (!sent) break;
            rc = read_response(c, &st);
            if (rc < 0) bad_bytes(h, "slow");
            if (rc > 0) chaos_add(h->r, h->c_client_req, 1);
            break;
        }
        conn_close(c, false);
    }
    free(c);
    return NULL;
}

/* ---- the server and its killer ---- */

/* The running server's top supervisor (monitored). */
static bl_pid top_sup;

static int start_server(http_server *srv, uint16_t port)
{
    http_opts o = {
        .port = port, .idle_ms = 2000, .header_ms = 300, .body_ms = 1000, .max_conns = MAX_CONNS};
    int rc = -EADDRINUSE;
    for (int i = 0; i < 100 && rc == -EADDRINUSE; i++) {
        rc = http_server_start(srv, &o);
        if (rc == -EADDRINUSE) bl_sleep(10);
    }
    /* The listener is not linked to its starter: a monitor tells when its tree gives up. */
    bl_ref ref;
    if (rc == 0 && (top_sup = http_server_sup(srv)) != BL_PID_NONE) (void)bl_monitor(top_sup, &ref);
    return rc;
}

/* The DOWN of the top supervisor, if it has given up (it is monitored). */
static bool gave_up(http_server *srv, int64_t ms, bl_reason *why, char *txt, size_t len)
{
    bl_msg *m = NULL;
    uint32_t tag = BL_TAG_DOWN;
    (void)srv;
    int64_t until = chaos_ms() + ms;
    for (;;) {
        int64_t left = until - chaos_ms();
        if (bl_recv(&m, bl_match_tag, &tag, left > 0 ? left : 0, 0) != 0) return false;
        bool top = m->from == top_sup;
        if (top && bl_msg_reason(m, why) == 0) bl_reason_format(why, txt, len);
        bl_msg_free(m);
        if (top) return true;
    }
}

/* The tree is gone: clean what is left of the server and start it again on its port. */
static bool restart_server(http_chaos *h, http_server *srv)
{
    (void)http_server_shutdown(srv, 1000);
    int rc = start_server(srv, h->port);
    if (rc != 0) {
        chaos_fail(h->r, "http: the server did not start again on port %u: %d", h->port, rc);
        return false;
    }
    return true;
}

/* Kills the connections' supervisor until the top supervisor gives up (reason shutdown). */
static bool planned_give_up(http_chaos *h, http_server *srv)
{
    bl_reason why = {0};
    char txt[64] = "?";
    for (int k = 0; k < 8; k++) {
        /* Relaxed: the current pid, as the acceptors read it. */
        bl_pid conns = http_server_child(srv, 0);
        bl_exit_pid(conns, &BL_REASON(BL_KILL));
        chaos_add(h->r, h->k_conns, 1);
        if (gave_up(srv, 0, &why, txt, sizeof txt)) break;
        /* Wait (bounded) for the restart: a new pid. */
        for (int i = 0; i < 1000 && http_server_child(srv, 0) == conns; i++) bl_sleep(1);
        if (gave_up(srv, 0, &why, txt, sizeof txt)) break;
        if (k == 7 && !gave_up(srv, 2000, &why, txt, sizeof txt)) {
            chaos_fail(h->r, "http: the top supervisor outlived 8 restarts in a row");
            return false;
        }
    }
    if (why.kind != BL_SHUTDOWN)
        chaos_fail(h->r, "http: the top supervisor gave up with %s, not shutdown", txt);
    chaos_add(h->r, h->k_gaveup, 1);
    return restart_server(h, srv);
}

void chaos_http(chaos_run *r)
{
    static http_chaos h;
    memset(&h, 0, sizeof h);
    h.r = r;
    h.c_req = chaos_counter(r, CHAOS_WORK, "requests");
    h.c_wrk = chaos_counter(r, CHAOS_WORK, "wrk");
    h.c_client_req = chaos_counter(r, CHAOS_WORK, "client");
    h.c_conn = chaos_counter(r, CHAOS_WORK, "client_conns");
    h.k_conn = chaos_counter(r, CHAOS_FAULT, "conn");
    h.k_acceptor = chaos_counter(r, CHAOS_FAULT, "acceptor");
    h.k_conns = chaos_counter(r, CHAOS_FAULT, "conns_sup");
    h.k_gaveup = chaos_counter(r, CHAOS_FAULT, "top_gave_up");
    h.c_cut = chaos_counter(r, CHAOS_FAULT, "cut");
    h.c_slow = chaos_counter(r, CHAOS_FAULT, "slow");
    h.c_stall = chaos_counter(r, CHAOS_FAULT, "stalled");
    h.i_unplanned = chaos_counter(r, CHAOS_INFO, "unplanned_give_ups");
    h.i_refused = chaos_counter(r, CHAOS_INFO, "refused");
    h.c_bad = chaos_counter(r, CHAOS_INFO, "bad_responses");
    h.i_wrk_rps = chaos_counter(r, CHAOS_INFO, "wrk_rps");
    h.i_wrk_err = chaos_counter(r, CHAOS_INFO, "wrk_socket_errors");
    chaos_rng g = chaos_rng_for(r, 1);

    bl_trap_exit(true);
    http_server srv;
    int rc = start_server(&srv, 0);
    if (rc != 0) {
        chaos_fail(r, "http: the server did not start: %d", rc);
        bl_trap_exit(false);
        return;
    }
    h.port = srv.port;

    pthread_t wrk;
    bool wrk_started = false;
    if (have_wrk())
        wrk_started = pthread_create(&wrk, NULL, wrk_thread, &h) == 0;
    else
        chaos_note(r, "  http: wrk is not installed: in-program clients only");
    pthread_t th[NCLIENTS];
    client_arg ca[NCLIENTS];
    int started = 0;
    for (unsigned i = 0; i < NCLIENTS; i++) {
        ca[i] = (client_arg){&h, i};
        if (pthread_create(&th[i], NULL, client, &ca[i]) == 0) started++;
    }

    int64_t top_kills[TOP_KILLS] = {0}; /* when the last ones were */
    int64_t planned_at = r->start_ms + (r->end_ms - r->start_ms) / 2;
    bool planned = false;
    bl_sup_child kids[256];
    int nkids = 0;
    for (int k = 0; k < 10000000 && chaos_running(r); k++) {
        chaos_delay_us(200 + (int64_t)chaos_below(&g, 2801));
        bl_reason why;
        char txt[64];
        if (gave_up(&srv, 0, &why, txt, sizeof txt)) {
            /* Not planned: the rate limit is not a promise (restarts race). */
            chaos_add(r, h.i_unplanned, 1);
            if (!restart_server(&h, &srv)) break;
            continue;
        }
        if (!planned && chaos_ms() >= planned_at) {
            planned = true;
            if (!planned_give_up(&h, &srv)) break;
            continue;
        }
        int64_t now = chaos_ms();
        if (chaos_one_in(&g, 40) && now - top_kills[0] > TOP_WINDOW) {
            /* An acceptor or the connections' supervisor: a restart of the top. */
            memmove(top_kills, top_kills + 1, (TOP_KILLS - 1) * sizeof *top_kills);
            top_kills[TOP_KILLS - 1] = now;
            if (chaos_one_in(&g, 2)) {
                bl_exit_pid(http_server_child(&srv, 0), &BL_REASON(BL_KILL));
                chaos_add(r, h.k_conns, 1);
            } else {
                bl_sup_child top[8];
                int n = bl_supervisor_which_children(http_server_sup(&srv), top, 8);
                if (n > 1) {
                    int i = 1 + (int)chaos_below(&g, (uint64_t)(n < 8 ? n : 8) - 1);
                    if (top[i].status == BL_CHILD_RUNNING) {
                        bl_exit_pid(top[i].pid, &BL_REASON(BL_KILL));
                        chaos_add(r, h.k_acceptor, 1);
                    }
                }
            }
            continue;
        }
        /* A connection: from a list refreshed every few kills. */
        if (nkids == 0 || k % 8 == 0) {
            nkids = bl_dynamic_supervisor_which_children(http_server_child(&srv, 0), kids, 256);
            if (nkids > 256) nkids = 256;
            if (nkids < 0) nkids = 0;
        }
        if (nkids == 0) continue;
        int i = (int)chaos_below(&g, (uint64_t)nkids);
        bl_exit_pid(kids[i].pid, &BL_REASON(BL_KILL));
        kids[i] = kids[--nkids];
        chaos_add(r, h.k_conn, 1);
    }

    atomic_store(&h.stop, true);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (wrk_started) pthread_join(wrk, NULL);
    rc = http_server_shutdown(&srv, 5000);
    if (rc != 0 && rc != -ETIMEDOUT) chaos_fail(r, "http: shutdown: %d", rc);
    chaos_flush();
    bl_trap_exit(false);

    if (wrk_started && !h.wrk_ran) chaos_fail(r, "http: %s", h.wrk_note);
    if (h.wrk_ran) {
        chaos_add(r, h.c_wrk, (uint64_t)h.wrk_requests);
        chaos_add(r, h.i_wrk_rps, (uint64_t)h.wrk_rps);
        chaos_add(r, h.i_wrk_err, (uint64_t)h.wrk_errors);
        if (h.wrk_non2xx) chaos_fail(r, "http: wrk got %lld non-2xx responses", h.wrk_non2xx);
        if (h.wrk_note[0]) chaos_note(r, "  %s", h.wrk_note);
    }
    chaos_add(r, h.c_req, (uint64_t)h.wrk_requests + chaos_get(r, h.c_client_req));
}
