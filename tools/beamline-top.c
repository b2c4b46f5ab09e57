/*
 * beamline-top - a live view of a running Beamline program (observer_cli /
 * etop for Beamline).
 *
 *   beamline-top [-d SECONDS] [SOCKET]
 *
 * Attaches to the program's control socket (SOCKET, or $BEAMLINE_CONTROL:
 * the path the program was started with, beamline/control.h) and redraws
 * every second (-d): per-scheduler utilization over the last interval, run
 * queues, switches, steals and sleeps per second, the process count,
 * memory (RSS, stacks, envelopes), I/O in flight, and the top processes by
 * reductions in the interval, queue length or memory, with name, status and
 * kind.  Keys: q quits; r, m, b sort by reductions, messages, bytes; up and
 * down select a process; enter shows its full info (links, monitors, queued
 * messages), any key goes back.
 *
 * A plain client of the control protocol: everything it shows, a script
 * can ask with socat.  The screen is drawn with ANSI escape sequences
 * (alternate screen, reverse video), no curses library.  Rates and
 * utilization come from two samples: the program reports cumulative
 * counters and their time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_SCHED 256 /* schedulers shown */
#define MAX_ROWS  200 /* processes asked for */
#define REPLY_MAX 1 << 20

/* One scheduler's counters at one sample. */
typedef struct sched_sample {
    unsigned long long busy, uptime, runq, switches, steals, sleeps, io; /* as reported */
    char current[32];                                                    /* pid running, or 0 */
} sched_sample;

/* Everything one refresh reads. */
typedef struct sample {
    unsigned long long time_ns;    /* the program's clock */
    char stats[1024];              /* the stats line */
    unsigned nsched;               /* schedulers */
    sched_sample sched[MAX_SCHED]; /* each */
} sample;

static int sock = -1;
static struct termios saved_tty;
static bool tty_raw;
static volatile sig_atomic_t quit_now;
static char reply[REPLY_MAX];

static void restore(void)
{
    if (!tty_raw) return;
    /* Normal screen, cursor shown, the terminal as it was. */
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    tty_raw = false;
}

static void on_signal(int sig)
{
    (void)sig;
    quit_now = 1;
}

static void die(const char *what)
{
    restore();
    fprintf(stderr, "beamline-top: %s\n", what);
    exit(1);
}

/* Sends a request and reads its reply, up to its "end" line, into reply. */
static const char *ask(const char *req)
{
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = send(sock, req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("the program closed the control socket");
        off += (size_t)n;
    }
    size_t got = 0;
    reply[0] = 0;
    while (
        !(got >= 4 && !strcmp(reply + got - 4, "end\n") && (got == 4 || reply[got - 5] == '\n'))) {
        if (got + 1 >= sizeof reply) die("reply too long");
        ssize_t n = recv(sock, reply + got, sizeof reply - 1 - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("the program closed the control socket");
        got += (size_t)n;
        reply[got] = 0;
    }
    return reply;
}

/* The value of key=value in line (up to the next space), into out; false if absent. */
static bool kv(const char *line, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += kl) {
        if ((p != line && p[-1] != ' ') || p[kl] != '=') continue;
        const char *v = p + kl + 1;
        size_t n = strcspn(v, " \n");
        if (n >= cap) n = cap - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return true;
    }
    out[0] = 0;
    return false;
}

static unsigned long long num(const char *line, const char *key)
{
    char v[32];
    return kv(line, key, v, sizeof v) ? strtoull(v, NULL, 10) : 0;
}

/* Undoes the protocol's \xHH escapes (names, message data) for display. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        unsigned c;
        if (r[0] == '\\' && r[1] == 'x' && sscanf(r + 2, "%2x", &c) == 1) {
            *w++ = c >= ' ' && c < 0x7f ? (char)c : '.';
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static void take_sample(sample *s)
{
    ask("stats\n");
    s->nsched = 0;
    char *save = NULL;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "stats ", 6)) {
            snprintf(s->stats, sizeof s->stats, "%s", line);
            s->time_ns = num(line, "time_ns");
        } else if (!strncmp(line, "sched ", 6) && s->nsched < MAX_SCHED) {
            sched_sample *c = &s->sched[s->nsched++];
            c->busy = num(line, "busy_ns");
            c->uptime = num(line, "uptime_ns");
            c->runq = num(line, "runq");
            c->switches = num(line, "switches");
            c->steals = num(line, "steals");
            c->sleeps = num(line, "sleeps");
            c->io = num(line, "io_inflight");
            kv(line, "current", c->current, sizeof c->current);
        }
    }
}

/* Bytes for people. */
static const char *human(unsigned long long b, char *buf, size_t cap)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

/* The screen being drawn, written at once to avoid flicker. */
static char screen[1 << 18];
static size_t slen;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(screen + slen, sizeof screen - slen, fmt, ap);
    va_end(ap);
    if (n > 0) slen = slen + (size_t)n < sizeof screen ? slen + (size_t)n : sizeof screen - 1;
}

/* Ends a screen line: clears what an older, longer line left. */
static void eol(void)
{
    out("\033[K\r\n");
}

static void flush_screen(void)
{
    out("\033[J"); /* below the last line: nothing */
    size_t off = 0;
    while (off < slen) {
        ssize_t n = write(STDOUT_FILENO, screen + off, slen - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    slen = 0;
}

static void term_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = 24, *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
        *rows = ws.ws_row, *cols = ws.ws_col;
}

static const char *const sort_keys[] = {"reductions", "queue", "memory"};

/* The processes of the last refresh, for selection. */
static char pids[MAX_ROWS][32];
static int npids;

static void draw(const char *path, const sample *a, const sample *b, int sort, int sel,
                 double period)
{
    int rows, cols;
    term_size(&rows, &cols);
    char m1[32], m2[32], m3[32], m4[32];
    const char *st = b->stats;
    double secs = a->time_ns && b->time_ns > a->time_ns ? (b->time_ns - a->time_ns) / 1e9 : 0;
    out("\033[H\033[1mbeamline-top\033[0m %s  up %llus  processes %llu  every %.1fs  sort: %s  "
        "(r m b sort, up/down, enter, q)",
        path, num(st, "uptime_ns") / 1000000000ull, num(st, "processes"), period, sort_keys[sort]);
    eol();
    out("memory: rss %s  stacks %llu in use (%s), %llu pooled, %llu cold (%s mapped)  slab %s",
        human(num(st, "rss_bytes"), m1, sizeof m1), num(st, "stacks_in_use"),
        human(num(st, "stack_bytes_in_use"), m2, sizeof m2), num(st, "stacks_pooled"),
        num(st, "stacks_cold"), human(num(st, "stack_pool_bytes"), m3, sizeof m3),
        human(num(st, "slab_bytes"), m4, sizeof m4));
    eol();
    out("envelopes %llu  io in flight %llu  long schedules %llu  log events %llu (dropped %llu)",
        num(st, "envelopes"), num(st, "io_inflight"), num(st, "long_schedules"),
        num(st, "log_queued"), num(st, "log_dropped"));
    eol();
    out("\033[7m%-6s %7s %6s %10s %9s %9s %5s  %-16s\033[0m", "SCHED", "UTIL", "RUNQ", "SWITCH/S",
        "STEAL/S", "SLEEP/S", "IO", "CURRENT");
    eol();
    for (unsigned i = 0; i < b->nsched; i++) {
        const sched_sample *x = &b->sched[i], *y = i < a->nsched ? &a->sched[i] : NULL;
        double util = 0, sw = 0, stl = 0, slp = 0;
        if (y && secs > 0 && x->uptime > y->uptime) {
            util = 100.0 * (double)(x->busy - y->busy) / (double)(x->uptime - y->uptime);
            sw = (double)(x->switches - y->switches) / secs;
            stl = (double)(x->steals - y->steals) / secs;
            slp = (double)(x->sleeps - y->sleeps) / secs;
        }
        if (util < 0) util = 0;
        if (util > 100) util = 100;
        out("%-6u %6.1f%% %6llu %10.0f %9.0f %9.0f %5llu  %-16s", i, util, x->runq, sw, stl, slp,
            x->io, strcmp(x->current, "0") ? x->current : "-");
        eol();
    }
    eol();
    int room = rows - (int)b->nsched - 7;
    if (room < 1) room = 1;
    if (room > MAX_ROWS) room = MAX_ROWS;
    char req[64];
    snprintf(req, sizeof req, "procs %d %s\n", room, sort_keys[sort]);
    ask(req);
    out("\033[7m  %-16s %-22s %-10s %-8s %8s %12s %12s %10s\033[0m", "PID", "NAME", "KIND",
        "STATUS", "MSGS", "REDS/INT", "REDS", "MEMORY");
    eol();
    npids = 0;
    char *save = NULL;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "proc ", 5) != 0 || npids >= room) continue;
        char pid[32], name[160], kind[16], status[16];
        kv(line, "pid", pid, sizeof pid);
        kv(line, "name", name, sizeof name);
        unescape(name);
        kv(line, "kind", kind, sizeof kind);
        kv(line, "status", status, sizeof status);
        bool on = npids == sel;
        snprintf(pids[npids++], sizeof pids[0], "%s", pid);
        out("%s%c %-16s %-22.22s %-10s %-8s %8llu %12llu %12llu %10s%s", on ? "\033[7m" : "",
            on ? '>' : ' ', pid, name, kind, status, num(line, "msgs"), num(line, "dreds"),
            num(line, "reds"), human(num(line, "memory"), m1, sizeof m1), on ? "\033[0m" : "");
        eol();
    }
    (void)cols;
    flush_screen();
}

/* The selected process's full info, until a key is pressed. */
static void show_info(const char *pid)
{
    char req[64];
    snprintf(req, sizeof req, "info %s\n", pid);
    ask(req);
    out("\033[H\033[1minfo %s\033[0m  (any key: back)", pid);
    eol();
    eol();
    char *save = NULL;
    for (char *line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strcmp(line, "end")) break;
        unescape(line);
        if (!strncmp(line, "info ", 5)) {
            /* One field a line: easier to read than the protocol's line. */
            char *s2 = NULL;
            for (char *f = strtok_r(line + 5, " ", &s2); f; f = strtok_r(NULL, " ", &s2)) {
                char *eq = strchr(f, '=');
                if (eq) *eq = 0;
                out("  %-14s %s", f, eq ? eq + 1 : "");
                eol();
            }
            continue;
        }
        out("  %s", line);
        eol();
    }
    flush_screen();
}

/* A key from the terminal: a character, or 'U' / 'D' for the arrows, '\n' for enter. */
static int read_key(void)
{
    unsigned char k[8];
    ssize_t n = read(STDIN_FILENO, k, sizeof k);
    if (n <= 0) return -1;
    if (n >= 3 && k[0] == 27 && (k[1] == '[' || k[1] == 'O')) {
        if (k[2] == 'A') return 'U';
        if (k[2] == 'B') return 'D';
        return 0;
    }
    if (k[0] == '\r') return '\n';
    return k[0];
}

static void usage(void)
{
    fprintf(stderr, "usage: beamline-top [-d SECONDS] [SOCKET]\n"
                    "  SOCKET: the program's control socket (default: $BEAMLINE_CONTROL)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double period = 1.0;
    int opt;
    while ((opt = getopt(argc, argv, "d:h")) != -1) {
        if (opt == 'd') {
            period = strtod(optarg, NULL);
            if (period < 0.1 || period > 3600) usage();
        } else {
            usage();
        }
    }
    const char *path = optind < argc ? argv[optind] : getenv("BEAMLINE_CONTROL");
    if (!path || !*path) usage();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) die("socket path too long");
    strcpy(sa.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "beamline-top: %s: %s (is the program running with BEAMLINE_CONTROL=%s?)\n",
                path, strerror(errno), path);
        return 1;
    }
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) != 0) die("needs a terminal");
    struct termios raw = saved_tty;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    tty_raw = true;
    struct sigaction sa_sig = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa_sig, NULL);
    sigaction(SIGTERM, &sa_sig, NULL);
    sigaction(SIGHUP, &sa_sig, NULL);
    fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, no cursor */
    fflush(stdout);

    static sample s[2];
    int cur = 0, sort = 0, sel = 0;
    bool info = false;
    take_sample(&s[cur]);
    while (!quit_now) {
        if (!info) {
            take_sample(&s[cur ^ 1]);
            cur ^= 1;
            draw(path, &s[cur ^ 1], &s[cur], sort, sel, period);
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int left = (int)(period * 1000);
        bool redraw = false;
        while (!redraw && !quit_now && (info || left > 0)) {
            struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
            int rc = poll(&pf, 1, info ? -1 : left);
            if (rc > 0) {
                int k = read_key();
                if (k < 0) quit_now = 1;
                if (info) { /* any key: back */
                    info = false;
                    redraw = true;
                    continue;
                }
                if (k == 'q' || k == 'Q') quit_now = 1;
                int ns = k == 'r' ? 0 : k == 'm' ? 1 : k == 'b' ? 2 : -1;
                if (ns >= 0) sort = ns, sel = 0, redraw = true;
                if (k == 'U' && sel > 0) sel--, redraw = true;
                if (k == 'D' && sel + 1 < npids) sel++, redraw = true;
                if (k == '\n' && sel < npids) {
                    info = true;
                    show_info(pids[sel]);
                }
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            left = (int)(period * 1000) -
                   (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        }
    }
    restore();
    close(sock);
    return 0;
}
