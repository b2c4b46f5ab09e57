/*
 * net/control.c - the control socket and the metrics endpoint's server
 * (beamline/control.h has the protocol).
 *
 * Both are served by one thread of the runtime's own ("bl-control"), not
 * by a process, with plain system calls (poll, accept, recv, send on
 * non-blocking sockets): the live view must keep working when a scheduler
 * is stuck in a CPU loop, which is exactly what it must show then.  What it
 * reports it reads without asking any process (the process snapshot, the
 * schedulers' statistics), except "info PID", which asks the process
 * through a short-lived helper process and answers from the snapshot alone
 * if no answer comes within 2 s.
 *
 * Opt-in: the service's started hook (the end of bl_runtime_start) opens
 * the sockets named by bl_config.control and .metrics and starts the
 * thread only if one of them opened; a socket that cannot be opened is an
 * error logged (kind control), not a failed start: watching a program must
 * never be why it does not run.  The stopped hook (every scheduler joined)
 * ends the thread, closes everything and removes the socket file.
 *
 * Every connection is bounded: a request line of 1 KiB (an HTTP request
 * head of 8 KiB, whole within 5 s), a reply of 64 MiB, 60 s of idleness,
 * 16 connections of each kind; a peer that breaks a bound is disconnected,
 * and a slow one delays nobody else (all sockets are non-blocking, served
 * from one poll).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/proc.h"
#include "net/ops.h"
#include "sched/hooks.h"
#include "sched/sched.h"

#define CONNS        16           /* connections of each kind at once */
#define LINE_MAX_CTL 1024         /* longest control request line */
#define HTTP_MAX     8192         /* longest HTTP request head */
#define REPLY_MAX    (64u << 20)  /* largest reply */
#define IDLE_NS      60000000000u /* a control connection's idleness */
#define HTTP_NS      5000000000u  /* an HTTP request's whole life */
#define INFO_NS      2000000000u  /* how long "info" waits for the process */
#define INFO_MSGS    8            /* queued messages "info" shows */
#define PROCS_MAX    100000       /* most processes "procs" lists */

struct conn;

/* An "info" request being answered by a helper process. */
typedef struct info_req {
    struct info_req *next;       /* the server's list */
    struct conn *owner;          /* the connection waiting, NULL once it stopped waiting */
    bl_pid pid;                  /* the process asked */
    int rc;                      /* bl_process_info's result */
    bl_proc_info info;           /* its answer */
    int64_t nmsgs;               /* bl_process_messages's result */
    bl_msg_info msgs[INFO_MSGS]; /* the first queued messages */
    char buf[2048];              /* their payloads */
    _Atomic int done;            /* set by the helper (release) when the above is written */
} info_req;

/* One client connection. */
typedef struct conn {
    int fd;              /* -1 when the slot is free */
    bool http;           /* a metrics connection (else control) */
    bool closing;        /* close once out is written */
    char in[HTTP_MAX];   /* bytes received, not yet handled */
    size_t inlen;        /* bytes in `in` */
    ops_buf out;         /* the reply being sent */
    size_t outpos;       /* bytes of out already sent */
    uint64_t deadline;   /* closed (or, waiting for info, answered) at this time (ns) */
    info_req *pending;   /* the info request it waits for, or NULL */
    uint64_t *prev_reds; /* procs: each slot's reductions at this connection's last procs */
    uint32_t *prev_gen;  /* procs: the generation they belong to, | 1 << 31 when set */
    size_t prev_cap;     /* entries of both */
    uint64_t prev_ns;    /* when the last procs was taken */
} conn;

/* The server: one per runtime start. */
static struct {
    pthread_t thread;     /* "bl-control" */
    bool running;         /* thread started */
    int ctl_fd;           /* the Unix listener, or -1 */
    int met_fd;           /* the TCP listener, or -1 */
    int wake_fd;          /* eventfd: stop, or an info answer is ready */
    _Atomic int stop;     /* set by the stopped hook */
    _Atomic int met_port; /* the metrics port (bl_metrics_port), 0 when off */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the socket's path */
    dev_t dev;             /* its inode, so that only our file is removed */
    ino_t ino;             /* (with dev) */
    conn conns[2 * CONNS]; /* control then metrics connections */
    info_req *reqs;        /* info requests not yet answered by their helper */
} srv = {.ctl_fd = -1, .met_fd = -1, .wake_fd = -1};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what, const char *where, int err)
{
    BL_LOG(BL_LOG_ERROR, "control", what, BL_LOG_S("address", where),
           BL_LOG_S("error", strerror(err)));
}

int bl_metrics_port(void)
{
    int port = atomic_load_explicit(&srv.met_port, memory_order_relaxed);
    return port ? port : -ENOTCONN;
}

/* ---- listeners ---- */

static int open_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fail("control socket path too long", path, ENAMETOOLONG);
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fail("a file that is not a socket is at the control socket's path", path, EEXIST);
            return -1;
        }
        /* A socket: stale (its program is gone) unless someone answers. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool alive = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0) close(probe);
        if (alive) {
            fail("another program listens on the control socket's path", path, EADDRINUSE);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fail("cannot create the control socket", path, errno);
        return -1;
    }
    /* The mode before bind: the file is created with it (Linux takes the
     * socket inode's mode), so it is never open to others, not even briefly. */
    (void)fchmod(fd, 0600);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, CONNS) != 0 || stat(path, &st) != 0) {
        int err = errno;
        close(fd);
        fail("cannot listen on the control socket", path, err);
        return -1;
    }
    snprintf(srv.path, sizeof srv.path, "%s", path);
    srv.dev = st.st_dev;
    srv.ino = st.st_ino;
    return fd;
}

static int open_tcp(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    /* getaddrinfo would take 99999 as 34463: the port is checked here. */
    if (!colon || hl >= sizeof host || !colon[1] || *end || port < 0 || port > 65535) {
        fail("metrics address: expected address:port", spec, EINVAL);
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = 0;
    char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0; /* [::1]:9568 */
        h = host + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    int rc = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
    if (rc != 0) {
        BL_LOG(BL_LOG_ERROR, "control", "metrics address cannot be resolved",
               BL_LOG_S("address", spec), BL_LOG_S("error", gai_strerror(rc)));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, err = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, CONNS) != 0)
        err = errno;
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!err && getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) err = errno;
    if (err) {
        if (fd >= 0) close(fd);
        fail("cannot listen for metrics", spec, err);
        return -1;
    }
    port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    atomic_store_explicit(&srv.met_port, (int)port, memory_order_relaxed);
    return fd;
}

/* ---- connections ---- */

static void conn_close(conn *c)
{
    if (c->pending) c->pending->owner = NULL; /* its helper's answer is dropped */
    close(c->fd);
    bl__ops_buf_free(&c->out);
    free(c->prev_reds);
    free(c->prev_gen);
    *c = (conn){.fd = -1};
}

static void accept_on(int lfd, bool http)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    conn *c = NULL;
    for (int i = http ? CONNS : 0; i < (http ? 2 * CONNS : CONNS) && !c; i++)
        if (srv.conns[i].fd < 0) c = &srv.conns[i];
    if (!c) {
        close(fd); /* full: the peer sees the connection closed */
        return;
    }
    *c = (conn){.fd = fd, .http = http, .out = {.max = REPLY_MAX}};
    c->deadline = mono_ns() + (http ? HTTP_NS : IDLE_NS);
}

/* ---- the control protocol ---- */

static const char *const status_names[] = {"runnable", "running", "waiting", "exiting"};
static const char *const prio_names[] = {"normal", "low", "high", "max"};

static void put_pid(ops_buf *b, const char *key, bl_pid pid)
{
    char p[32];
    bl_pid_format(pid, p, sizeof p);
    bl__ops_printf(b, " %s=%s", key, p);
}

static void put_snap(ops_buf *b, const bl_proc_snap *s)
{
    bl__ops_printf(b, " status=%s kind=%s prio=%s msgs=%u reds=%llu stack=%zu memory=%zu",
                   status_names[s->status & 3], bl_proc_kind_name(s->kind),
                   prio_names[s->priority & 3], s->message_queue_len,
                   (unsigned long long)s->reductions, s->stack_bytes, s->memory);
}

static void put_name(ops_buf *b, const char *name)
{
    bl__ops_printf(b, " name=");
    bl__ops_escaped(b, name, strlen(name));
}

static void do_stats(conn *c)
{
    ops_sample o;
    int rc = bl__ops_sample(&o);
    if (rc) {
        bl__ops_printf(&c->out, "error %s\n", strerror(-rc));
        return;
    }
    bl__ops_printf(&c->out,
                   "stats time_ns=%llu uptime_ns=%llu schedulers=%u processes=%lld "
                   "rss_bytes=%llu stacks_in_use=%llu stack_bytes_in_use=%llu stacks_pooled=%llu "
                   "stacks_cold=%llu stack_pool_bytes=%llu slab_bytes=%llu envelopes=%llu "
                   "io_inflight=%llu log_queued=%llu log_dropped=%llu long_schedules=%llu\n",
                   (unsigned long long)o.time_ns, (unsigned long long)o.rt.uptime_ns,
                   o.rt.schedulers, (long long)o.rt.processes, (unsigned long long)o.rss_bytes,
                   (unsigned long long)o.stacks_in_use, (unsigned long long)o.stack_bytes_in_use,
                   (unsigned long long)o.stacks_pooled, (unsigned long long)o.stacks_cold,
                   (unsigned long long)o.stack_pool_bytes, (unsigned long long)o.slab_bytes,
                   (unsigned long long)o.envelopes, (unsigned long long)o.io_inflight,
                   (unsigned long long)o.log_queued, (unsigned long long)o.log_dropped,
                   (unsigned long long)o.long_schedules);
    for (unsigned i = 0; i < o.rt.schedulers; i++) {
        const bl_scheduler_stats *s = &o.sched[i];
        uint64_t busy = s->uptime_ns > s->idle_ns ? s->uptime_ns - s->idle_ns : 0;
        bl__ops_printf(&c->out,
                       "sched id=%u busy_ns=%llu uptime_ns=%llu idle_ns=%llu runq=%u switches=%llu "
                       "steals=%llu sleeps=%llu wakeups_sent=%llu io_inflight=%u "
                       "long_schedules=%llu",
                       i, (unsigned long long)busy, (unsigned long long)s->uptime_ns,
                       (unsigned long long)s->idle_ns, s->runq_len, (unsigned long long)s->switches,
                       (unsigned long long)s->steals, (unsigned long long)s->sleeps,
                       (unsigned long long)s->wakeups_sent, s->io_inflight,
                       (unsigned long long)s->long_schedules);
        if (s->current) /* pid 1 prints as <0.0.0> too: none is 0 */
            put_pid(&c->out, "current", s->current);
        else
            bl__ops_printf(&c->out, " current=0");
        bl__ops_printf(&c->out, "\n");
    }
    bl__ops_sample_free(&o);
}

/* A process listed by procs, with its reductions since the last listing. */
typedef struct row {
    bl_proc_snap s; /* as read */
    uint64_t dreds; /* reductions since this connection's last procs */
} row;

static int sort_key; /* 0 reductions, 1 queue, 2 memory: qsort has no context (one thread) */

static int by_key(const void *a, const void *b)
{
    const row *x = a, *y = b;
    uint64_t kx = sort_key == 0   ? x->dreds
                  : sort_key == 1 ? x->s.message_queue_len
                                  : x->s.memory,
             ky = sort_key == 0   ? y->dreds
                  : sort_key == 1 ? y->s.message_queue_len
                                  : y->s.memory;
    if (kx != ky) return kx > ky ? -1 : 1;
    return (uint32_t)x->s.pid < (uint32_t)y->s.pid ? -1 : 1;
}

/* The snapshot into rows (retrying when many were spawned meanwhile); NULL on -ENOMEM. */
static row *take(size_t *n)
{
    bl_runtime_stats rs;
    size_t room = (bl_runtime_stats_get(&rs) == 0 && rs.processes > 0 ? (size_t)rs.processes : 0);
    for (int tries = 0; tries < 4; tries++) {
        room += room / 4 + 1024;
        bl_proc_snap *ps = malloc(room * sizeof *ps);
        row *rows = malloc(room * sizeof *rows);
        int64_t got = ps && rows ? bl_processes_snapshot(ps, room) : -ENOMEM;
        if (got >= 0 && (size_t)got <= room) {
            for (int64_t i = 0; i < got; i++) rows[i] = (row){.s = ps[i]};
            free(ps);
            *n = (size_t)got;
            return rows;
        }
        free(ps);
        free(rows);
        if (got < 0) return NULL;
        room = (size_t)got;
    }
    return NULL;
}

/* Reductions since the last procs on c, and the table remembered for the next. */
static void deltas(conn *c, row *rows, size_t n)
{
    size_t need = n ? (uint32_t)rows[n - 1].s.pid : 0; /* rows are in index order */
    if (need > c->prev_cap) {
        uint64_t *r = realloc(c->prev_reds, need * sizeof *r);
        if (r) c->prev_reds = r;
        uint32_t *g = r ? realloc(c->prev_gen, need * sizeof *g) : NULL;
        if (g) {
            c->prev_gen = g;
            memset(g + c->prev_cap, 0, (need - c->prev_cap) * sizeof *g);
            c->prev_cap = need;
        }
    }
    for (size_t i = 0; i < n; i++) {
        row *w = &rows[i];
        uint32_t idx = (uint32_t)w->s.pid - 1, gen = (uint32_t)(w->s.pid >> 32) | 1u << 31;
        if (idx >= c->prev_cap) {
            w->dreds = w->s.reductions;
            continue;
        }
        bool known = c->prev_gen[idx] == gen && c->prev_reds[idx] <= w->s.reductions;
        w->dreds = known ? w->s.reductions - c->prev_reds[idx] : w->s.reductions;
        c->prev_gen[idx] = gen;
        c->prev_reds[idx] = w->s.reductions;
    }
}

static void do_procs(conn *c, const char *count, const char *key)
{
    long want = 50;
    if (count) {
        char *end;
        want = strtol(count, &end, 10);
        if (*end || want < 0) {
            bl__ops_printf(&c->out, "error procs: expected a count, got %.64s\n", count);
            return;
        }
        if (want > PROCS_MAX) want = PROCS_MAX;
    }
    const char *keys[] = {"reductions", "queue", "memory"};
    sort_key = -1;
    for (int i = 0; i < 3; i++)
        if (!key || !strcmp(key, keys[i])) {
            sort_key = i;
            break;
        }
    if (sort_key < 0) {
        bl__ops_printf(&c->out, "error procs: sort by reductions, queue or memory\n");
        return;
    }
    size_t n;
    row *rows = take(&n);
    if (!rows) {
        bl__ops_printf(&c->out, "error %s\n", strerror(ENOMEM));
        return;
    }
    uint64_t now = mono_ns();
    deltas(c, rows, n);
    qsort(rows, n, sizeof *rows, by_key);
    size_t shown = (size_t)want < n ? (size_t)want : n;
    bl__ops_printf(&c->out, "procs total=%zu shown=%zu interval_ns=%llu sort=%s\n", n, shown,
                   (unsigned long long)(c->prev_ns ? now - c->prev_ns : 0), keys[sort_key]);
    c->prev_ns = now;
    for (size_t i = 0; i < shown; i++) {
        bl__ops_printf(&c->out, "proc");
        put_pid(&c->out, "pid", rows[i].s.pid);
        put_snap(&c->out, &rows[i].s);
        bl__ops_printf(&c->out, " dreds=%llu", (unsigned long long)rows[i].dreds);
        put_name(&c->out, rows[i].s.name);
        bl__ops_printf(&c->out, "\n");
    }
    free(rows);
}

/* "<0.I.G>", "0.I.G" or a registered name. */
static bl_pid parse_target(const char *arg)
{
    unsigned node, idx, gen;
    char close;
    if ((sscanf(arg, "<%u.%u.%u%c", &node, &idx, &gen, &close) == 4 && close == '>') ||
        sscanf(arg, "%u.%u.%u%c", &node, &idx, &gen, &close) == 3)
        return node == 0 && idx < UINT32_MAX ? bl__pid_make(idx, gen) : BL_PID_NONE;
    return bl_whereis(arg);
}

/* The helper process: asks the target as any process would. */
static void info_helper(void *arg)
{
    info_req *r = arg;
    r->rc = bl_process_info(r->pid, &r->info);
    if (r->rc == 0)
        r->nmsgs = bl_process_messages(r->pid, r->msgs, INFO_MSGS, r->buf, sizeof r->buf);
    /* Release: the server reads the answer after it sees done. */
    atomic_store_explicit(&r->done, 1, memory_order_release);
    uint64_t one = 1;
    ssize_t w = write(srv.wake_fd, &one, sizeof one); /* non-blocking eventfd: never waits */
    (void)w;
}

/* The first line of an info reply, from the snapshot. */
static bool info_head(conn *c, bl_pid pid, bool answered)
{
    bl_proc_snap s;
    if (bl_process_snapshot(pid, &s) != 0) {
        bl__ops_printf(&c->out, "error no such process\n");
        return false;
    }
    bl__ops_printf(&c->out, "info");
    put_pid(&c->out, "pid", pid);
    bl__ops_printf(&c->out, " answered=%s", answered ? "yes" : "no");
    put_snap(&c->out, &s);
    put_name(&c->out, s.name);
    return true;
}

static void put_pids(ops_buf *b, const char *what, const bl_pid *pids, uint32_t n)
{
    bl__ops_printf(b, "%s n=%u", what, n);
    for (uint32_t i = 0; i < n && i < BL_INFO_MAX_PIDS; i++) {
        char p[32];
        bl_pid_format(pids[i], p, sizeof p);
        bl__ops_printf(b, " %s", p);
    }
    bl__ops_printf(b, "\n");
}

/* The helper answered (or gave up): the whole info reply. */
static void info_reply(conn *c, info_req *r)
{
    if (r->rc != 0) {
        bl__ops_printf(&c->out, "error %s\n", strerror(-r->rc));
        bl__ops_printf(&c->out, "end\n");
        return;
    }
    if (info_head(c, r->pid, true)) {
        const bl_proc_info *in = &r->info;
        bl__ops_printf(&c->out, " trap_exit=%d scheduler=%d total_bytes=%zu\n", in->trap_exit,
                       in->scheduler, in->total_bytes);
        put_pids(&c->out, "links", in->links, in->nlinks);
        put_pids(&c->out, "monitors", in->monitors, in->nmonitors);
        put_pids(&c->out, "monitored_by", in->monitored_by, in->nmonitored_by);
        bl__ops_printf(&c->out, "messages n=%lld\n", (long long)(r->nmsgs > 0 ? r->nmsgs : 0));
        for (int64_t i = 0; i < r->nmsgs && i < INFO_MSGS; i++) {
            const bl_msg_info *m = &r->msgs[i];
            bl__ops_printf(&c->out, "message");
            put_pid(&c->out, "from", m->from);
            bl__ops_printf(&c->out, " tag=%u len=%zu data=", m->tag, m->len);
            bl__ops_escaped(&c->out, m->data, m->copied < 64 ? m->copied : 64);
            bl__ops_printf(&c->out, "\n");
        }
    }
    bl__ops_printf(&c->out, "end\n");
}

static void do_info(conn *c, const char *arg)
{
    bl_pid pid = arg ? parse_target(arg) : BL_PID_NONE;
    bl_proc_snap s;
    if (!pid || bl_process_snapshot(pid, &s) != 0) {
        bl__ops_printf(&c->out, "error no such process\nend\n");
        return;
    }
    info_req *r = calloc(1, sizeof *r);
    if (r) r->pid = pid; /* before the spawn, which publishes it to the helper */
    if (!r || bl_spawn(NULL, info_helper, r, NULL) != 0) {
        free(r);
        if (info_head(c, pid, false)) bl__ops_printf(&c->out, "\n");
        bl__ops_printf(&c->out, "end\n");
        return;
    }
    /* The helper touches only pid, its answer and done: the rest is ours. */
    r->owner = c;
    r->next = srv.reqs;
    srv.reqs = r;
    c->pending = r;
    c->deadline = mono_ns() + INFO_NS;
}

static void help(conn *c)
{
    bl__ops_printf(&c->out, "help stats: the program's numbers and one line per scheduler\n"
                            "help procs [N] [reductions|queue|memory]: the top N processes\n"
                            "help info PID|NAME: a process's links, monitors and queue\n"
                            "help quit: close the connection\n");
}

/* One request line (NUL-terminated, without its newline). */
static void ctl_line(conn *c, char *line)
{
    char *save = NULL, *cmd = strtok_r(line, " \t\r", &save);
    if (!cmd) return;
    char *a1 = strtok_r(NULL, " \t\r", &save), *a2 = strtok_r(NULL, " \t\r", &save);
    if (!strcmp(cmd, "stats")) {
        do_stats(c);
    } else if (!strcmp(cmd, "procs")) {
        do_procs(c, a1, a2);
    } else if (!strcmp(cmd, "info")) {
        do_info(c, a1);
        return; /* it ends its reply itself */
    } else if (!strcmp(cmd, "help")) {
        help(c);
    } else if (!strcmp(cmd, "quit")) {
        c->closing = true;
        return;
    } else {
        bl__ops_printf(&c->out, "error unknown request ");
        bl__ops_escaped(&c->out, cmd, strlen(cmd));
        bl__ops_printf(&c->out, " (try help)\n");
    }
    bl__ops_printf(&c->out, "end\n");
}

/* Handles what c received: control lines, or an HTTP request head. */
static void handle_input(conn *c)
{
    if (c->http) {
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end && c->inlen == sizeof c->in) {
            bl__ops_printf(&c->out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                    "Content-Length: 0\r\nConnection: close\r\n\r\n");
            c->closing = true;
        } else if (end) {
            bl__metrics_answer(c->in, (size_t)(end - c->in) + 4, &c->out);
            c->closing = true;
        }
        return;
    }
    while (!c->pending && !c->closing) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl) {
            if (c->inlen >= LINE_MAX_CTL) {
                bl__ops_printf(&c->out, "error request line too long\nend\n");
                c->closing = true;
            }
            return;
        }
        *nl = 0;
        size_t used = (size_t)(nl - c->in) + 1;
        if (used <= LINE_MAX_CTL) {
            ctl_line(c, c->in);
        } else {
            bl__ops_printf(&c->out, "error request line too long\nend\n");
            c->closing = true;
        }
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void on_readable(conn *c)
{
    size_t room = (c->http ? sizeof c->in : LINE_MAX_CTL + 1) - c->inlen;
    ssize_t n = room ? recv(c->fd, c->in + c->inlen, room, MSG_DONTWAIT) : 0;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c); /* the peer went away (or, room 0, sent too much: never, see below) */
        return;
    }
    if (n < 0) return;
    c->inlen += (size_t)n;
    if (!c->http) c->deadline = mono_ns() + IDLE_NS;
    handle_input(c);
    if (c->closing && c->outpos == c->out.len) conn_close(c); /* quit: nothing to send */
}

static void on_writable(conn *c)
{
    while (c->outpos < c->out.len) {
        ssize_t n =
            send(c->fd, c->out.p + c->outpos, c->out.len - c->outpos, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            conn_close(c);
            return;
        }
        c->outpos += (size_t)n;
        if (!c->http) c->deadline = mono_ns() + IDLE_NS; /* a slow reader, but reading */
    }
    bl__ops_buf_free(&c->out);
    c->out.max = REPLY_MAX;
    c->outpos = 0;
    if (c->closing) {
        conn_close(c);
        return;
    }
    handle_input(c); /* lines that came while the reply went out */
}

/* Answers the connections whose info requests are done, frees the requests. */
static void reap_infos(void)
{
    for (info_req **pp = &srv.reqs; *pp;) {
        info_req *r = *pp;
        /* Acquire: pairs with the helper's release. */
        if (!atomic_load_explicit(&r->done, memory_order_acquire)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        conn *c = r->owner;
        if (c) {
            c->pending = NULL;
            info_reply(c, r);
            c->deadline = mono_ns() + IDLE_NS;
        }
        free(r);
    }
}

/* A deadline passed: an info that got no answer in time, or a connection to close. */
static void expire(conn *c)
{
    if (c->pending) {
        bl_pid pid = c->pending->pid;
        c->pending->owner = NULL; /* the helper's answer, when it comes, is dropped */
        c->pending = NULL;
        if (info_head(c, pid, false)) bl__ops_printf(&c->out, "\n");
        bl__ops_printf(&c->out, "end\n");
        c->deadline = mono_ns() + IDLE_NS;
        return;
    }
    conn_close(c);
}

static void *serve(void *arg)
{
    (void)arg;
    struct pollfd fds[3 + 2 * CONNS];
    conn *of[3 + 2 * CONNS];
    while (!atomic_load_explicit(&srv.stop, memory_order_acquire)) {
        int n = 0;
        fds[n++] = (struct pollfd){.fd = srv.wake_fd, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = srv.ctl_fd, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = srv.met_fd, .events = POLLIN};
        uint64_t now = mono_ns(), next = now + 1000000000u;
        for (int i = 0; i < 2 * CONNS; i++) {
            conn *c = &srv.conns[i];
            if (c->fd < 0) continue;
            if (c->deadline <= now) {
                expire(c);
                if (c->fd < 0) continue;
            }
            if (c->deadline < next) next = c->deadline;
            short ev = c->outpos < c->out.len ? POLLOUT : c->pending || c->closing ? 0 : POLLIN;
            of[n] = c;
            fds[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        int ms = (int)((next - now) / 1000000u) + 1;
        if (poll(fds, (nfds_t)n, ms) < 0) continue; /* EINTR */
        if (fds[0].revents) {
            uint64_t v;
            ssize_t r = read(srv.wake_fd, &v, sizeof v);
            (void)r;
            reap_infos();
        }
        for (int i = 3; i < n; i++) {
            conn *c = of[i];
            if (c->fd != fds[i].fd || !fds[i].revents) continue;
            if (fds[i].revents & POLLOUT)
                on_writable(c);
            else if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                on_readable(c);
            if (c->fd >= 0 && c->outpos < c->out.len) on_writable(c);
        }
        if (fds[1].revents & POLLIN) accept_on(srv.ctl_fd, false);
        if (fds[2].revents & POLLIN) accept_on(srv.met_fd, true);
    }
    return NULL;
}

/* ---- the service ---- */

static void stop_all(void)
{
    if (srv.running) {
        atomic_store_explicit(&srv.stop, 1, memory_order_release);
        uint64_t one = 1;
        ssize_t w = write(srv.wake_fd, &one, sizeof one);
        (void)w;
        pthread_join(srv.thread, NULL);
        srv.running = false;
    }
    for (int i = 0; i < 2 * CONNS; i++)
        if (srv.conns[i].fd >= 0) conn_close(&srv.conns[i]);
    /* No scheduler runs: no helper can touch its request any more. */
    while (srv.reqs) {
        info_req *r = srv.reqs;
        srv.reqs = r->next;
        free(r);
    }
    struct stat st;
    if (srv.ctl_fd >= 0 && stat(srv.path, &st) == 0 && st.st_dev == srv.dev && st.st_ino == srv.ino)
        unlink(srv.path); /* ours still: not one a later program put there */
    int *fds[] = {&srv.ctl_fd, &srv.met_fd, &srv.wake_fd};
    for (int i = 0; i < 3; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
    atomic_store_explicit(&srv.met_port, 0, memory_order_relaxed);
    atomic_store_explicit(&srv.stop, 0, memory_order_relaxed);
}

static void started(void)
{
    const bl_config *cfg = &bl__rt->cfg;
    for (int i = 0; i < 2 * CONNS; i++) srv.conns[i] = (conn){.fd = -1};
    if (!cfg->control && !cfg->metrics) return;
    if (cfg->control) srv.ctl_fd = open_unix(cfg->control);
    if (cfg->metrics) srv.met_fd = open_tcp(cfg->metrics);
    if (srv.ctl_fd < 0 && srv.met_fd < 0) return;
    srv.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = srv.wake_fd < 0 ? errno : pthread_create(&srv.thread, NULL, serve, NULL);
    if (rc) {
        fail("cannot start the control thread", cfg->control ? cfg->control : cfg->metrics, rc);
        stop_all();
        return;
    }
    pthread_setname_np(srv.thread, "bl-control");
    srv.running = true;
}

static void stopped(void)
{
    stop_all();
}

static bl_sched_service control_service = {
    .name = "control",
    .started = started,
    .stopped = stopped,
};

__attribute__((constructor)) static void register_control(void)
{
    bl__sched_service_add(&control_service);
}
