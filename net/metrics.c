/*
 * net/metrics.c - the Prometheus endpoint's answers (text format 0.0.4),
 * the sample of the runtime's numbers it shares with the control socket,
 * and the reply buffers both write into.
 *
 * The HTTP here is the least that serves GET /metrics to a scraper on the
 * control thread (net/control.c): one request per connection, its head
 * read whole (bounded) before it is looked at, the connection closed after
 * the reply.  It is not the net layer's HTTP server, on purpose: the
 * metrics must be served while the schedulers, where that server runs, are
 * stuck.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/ops.h"

/* ---- reply buffers ---- */

static bool reserve(ops_buf *b, size_t more)
{
    if (b->full) return false;
    if (b->len + more + 1 <= b->cap) return true;
    if (b->len + more + 1 > b->max) {
        b->full = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) cap *= 2;
    if (cap > b->max) cap = b->max;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->full = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void bl__ops_printf(ops_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    if ((size_t)n < sizeof small) {
        memcpy(b->p + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void bl__ops_escaped(ops_buf *b, const void *s, size_t n)
{
    const unsigned char *c = s;
    if (!reserve(b, 4 * n)) return;
    for (size_t i = 0; i < n; i++) {
        if (c[i] > ' ' && c[i] < 0x7f && c[i] != '=' && c[i] != '\\')
            b->p[b->len++] = (char)c[i];
        else
            b->len += (size_t)sprintf(b->p + b->len, "\\x%02x", c[i]);
    }
    b->p[b->len] = 0;
}

void bl__ops_buf_free(ops_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->full = false;
}

/* ---- the sample ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident bytes of the program: statm's second field, in pages. */
static uint64_t rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long long size, rss;
    if (sscanf(buf, "%llu %llu", &size, &rss) != 2) return 0;
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The stacks processes hold now, from the snapshot. */
static int stacks_in_use(ops_sample *o)
{
    size_t room = (size_t)(o->rt.processes > 0 ? o->rt.processes : 0) + 1024;
    for (int tries = 0; tries < 3; tries++) {
        bl_proc_snap *ps = malloc(room * sizeof *ps);
        if (!ps) return -ENOMEM;
        int64_t n = bl_processes_snapshot(ps, room);
        if (n >= 0 && (size_t)n <= room) {
            for (int64_t i = 0; i < n; i++) {
                if (!ps[i].stack_bytes) continue;
                o->stacks_in_use++;
                o->stack_bytes_in_use += ps[i].stack_bytes;
            }
        }
        free(ps);
        if (n < 0) return (int)n;
        if ((size_t)n <= room) return 0;
        room = (size_t)n + (size_t)n / 4; /* many were spawned meanwhile */
    }
    return 0;
}

int bl__ops_sample(ops_sample *o)
{
    memset(o, 0, sizeof *o);
    o->time_ns = mono_ns();
    int rc = bl_runtime_stats_get(&o->rt);
    if (rc) return rc;
    o->sched = calloc(o->rt.schedulers, sizeof *o->sched);
    if (!o->sched) return -ENOMEM;
    for (unsigned i = 0; i < o->rt.schedulers; i++) {
        bl_scheduler_stats *s = &o->sched[i];
        if (bl_scheduler_stats_get(i, s) != 0) continue;
        o->stacks_pooled += s->stacks_pooled;
        o->stacks_cold += s->stacks_cold;
        o->stack_pool_bytes += s->stack_pool_bytes;
        o->slab_bytes += s->slab_bytes;
        o->envelopes += s->envelopes;
        o->io_inflight += s->io_inflight;
        o->long_schedules += s->long_schedules;
    }
    o->rss_bytes = rss_bytes();
    o->log_queued = bl_log_queued();
    o->log_dropped = bl_log_dropped();
    rc = stacks_in_use(o);
    if (rc) bl__ops_sample_free(o);
    return rc;
}

void bl__ops_sample_free(ops_sample *o)
{
    free(o->sched);
    o->sched = NULL;
}

/* ---- Prometheus text ---- */

/* A metric's # HELP and # TYPE lines. */
static void head(ops_buf *b, const char *name, const char *type, const char *help)
{
    bl__ops_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(ops_buf *b, const char *name, const char *type, const char *help, double v)
{
    head(b, name, type, help);
    bl__ops_printf(b, "%s %.17g\n", name, v);
}

/* A per-scheduler metric: a field of bl_scheduler_stats (64 or 32 bits), times scale. */
typedef struct sched_metric {
    const char *name; /* the metric's name */
    const char *type; /* counter or gauge */
    const char *help; /* its # HELP text */
    size_t off;       /* the field in bl_scheduler_stats */
    bool u32;         /* a uint32_t field (else uint64_t) */
    double scale;     /* its unit to the metric's */
} sched_metric;

#define U64(f) offsetof(bl_scheduler_stats, f), false
#define U32(f) offsetof(bl_scheduler_stats, f), true

static const sched_metric sched_metrics[] = {
    {"beamline_scheduler_switches_total", "counter", "Processes switched in.", U64(switches), 1},
    {"beamline_scheduler_steals_total", "counter", "Successful steals.", U64(steals), 1},
    {"beamline_scheduler_sleeps_total", "counter", "Times it slept in its ring.", U64(sleeps), 1},
    {"beamline_scheduler_wakeups_sent_total", "counter", "Wake-ups sent to other schedulers.",
     U64(wakeups_sent), 1},
    {"beamline_scheduler_timers_fired_total", "counter", "Timers that ended a wait.",
     U64(timers_fired), 1},
    {"beamline_scheduler_idle_seconds_total", "counter", "Time spent idle (spinning or sleeping).",
     U64(idle_ns), 1e-9},
    {"beamline_scheduler_mail_spins_total", "counter",
     "Waits for mail watched a moment before parking, with nothing else to run.", U64(mail_spins),
     1},
    {"beamline_scheduler_mail_spin_hits_total", "counter",
     "Watched waits that mail or a signal ended, with no wake-up to make.", U64(mail_spin_hits), 1},
    {"beamline_scheduler_spin_offs_total", "counter",
     "Times its CPU was found contended and its spinning turned off for 100 ms.", U64(spin_offs),
     1},
    {"beamline_scheduler_stack_keeps_total", "counter",
     "Idle handlers that parked keeping their stacks for their next message.", U64(stack_keeps), 1},
    {"beamline_scheduler_stack_sheds_total", "counter",
     "Kept stacks of idle handlers taken back at an idle moment or after two turns.",
     U64(stack_sheds), 1},
    {"beamline_scheduler_run_queue_length", "gauge", "Normal processes in its stealable queue.",
     U32(runq_len), 1},
    {"beamline_scheduler_io_in_flight", "gauge", "Ring operations awaiting a completion.",
     U32(io_inflight), 1},
    {"beamline_scheduler_long_schedules_total", "counter",
     "Processes that ran past the long-schedule threshold.", U64(long_schedules), 1},
    {"beamline_scheduler_envelopes_total", "counter", "Message and signal envelopes allocated.",
     U64(envelopes), 1},
};

static void per_sched(ops_buf *b, const ops_sample *o, const sched_metric *m)
{
    head(b, m->name, m->type, m->help);
    for (unsigned i = 0; i < o->rt.schedulers; i++) {
        const char *f = (const char *)&o->sched[i] + m->off;
        double v = m->u32 ? *(const uint32_t *)f : (double)*(const uint64_t *)f;
        bl__ops_printf(b, "%s{scheduler=\"%u\"} %.17g\n", m->name, i, v * m->scale);
    }
}

static void metrics_text(ops_buf *b, const ops_sample *o)
{
    one(b, "beamline_uptime_seconds", "gauge", "Time since the runtime started.",
        (double)o->rt.uptime_ns / 1e9);
    one(b, "beamline_schedulers", "gauge", "Scheduler threads.", o->rt.schedulers);
    one(b, "beamline_processes", "gauge", "Processes alive.", (double)o->rt.processes);
    for (size_t i = 0; i < sizeof sched_metrics / sizeof sched_metrics[0]; i++)
        per_sched(b, o, &sched_metrics[i]);
    /* Busy time is what the scheduler was not idle: no field of its own. */
    head(b, "beamline_scheduler_busy_seconds_total", "counter",
         "Time spent running processes and housekeeping.");
    for (unsigned i = 0; i < o->rt.schedulers; i++) {
        const bl_scheduler_stats *s = &o->sched[i];
        uint64_t busy = s->uptime_ns > s->idle_ns ? s->uptime_ns - s->idle_ns : 0;
        bl__ops_printf(b, "beamline_scheduler_busy_seconds_total{scheduler=\"%u\"} %.17g\n", i,
                       (double)busy / 1e9);
    }
    /* The whole-program gauges and counters, one line each. */
    const struct {
        const char *name, *type, *help;
        double v;
    } whole[] = {
        {"beamline_memory_rss_bytes", "gauge", "Resident memory of the program.",
         (double)o->rss_bytes},
        {"beamline_stacks_in_use", "gauge", "Process stacks held by processes.",
         (double)o->stacks_in_use},
        {"beamline_stack_bytes_in_use", "gauge", "Bytes of the stacks processes hold.",
         (double)o->stack_bytes_in_use},
        {"beamline_stacks_pooled", "gauge", "Free stacks resident in the pools.",
         (double)o->stacks_pooled},
        {"beamline_stack_pool_bytes", "gauge", "Bytes mapped through the stack pools.",
         (double)o->stack_pool_bytes},
        {"beamline_slab_bytes", "gauge", "Bytes of envelope and timer spans.",
         (double)o->slab_bytes},
        {"beamline_io_operations_in_flight", "gauge", "Ring operations awaiting a completion.",
         (double)o->io_inflight},
        {"beamline_log_events_total", "counter", "Log events queued for the logger thread.",
         (double)o->log_queued},
        {"beamline_log_dropped_total", "counter", "Log events dropped (queue full).",
         (double)o->log_dropped},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        one(b, whole[i].name, whole[i].type, whole[i].help, whole[i].v);
}

/* A response with a plain-text body. */
static void respond(ops_buf *out, const char *status, const char *body)
{
    bl__ops_printf(out,
                   "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   status, strlen(body), body);
}

void bl__metrics_answer(const char *req, size_t len, ops_buf *out)
{
    /* The request line: METHOD SP TARGET SP HTTP/1.x CRLF, nothing else. */
    const char *eol = memchr(req, '\r', len);
    char line[256];
    size_t ll = eol ? (size_t)(eol - req) : 0;
    char method[16], target[200], version[16];
    if (!eol || ll >= sizeof line) {
        respond(out, "400 Bad Request", "bad request\n");
        return;
    }
    memcpy(line, req, ll);
    line[ll] = 0;
    char extra;
    if (sscanf(line, "%15s %199s %15s %c", method, target, version, &extra) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0 || memchr(line, '\0', ll)) {
        respond(out, "400 Bad Request", "bad request\n");
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond(out, "405 Method Not Allowed", "only GET\n");
        return;
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    if (strcmp(target, "/metrics") != 0) {
        respond(out, "404 Not Found", "not found: try /metrics\n");
        return;
    }
    ops_sample o;
    if (bl__ops_sample(&o) != 0) {
        respond(out, "503 Service Unavailable", "the runtime is not running\n");
        return;
    }
    ops_buf body = {.max = out->max};
    metrics_text(&body, &o);
    bl__ops_sample_free(&o);
    if (body.full) {
        respond(out, "500 Internal Server Error", "out of memory\n");
    } else {
        bl__ops_printf(out,
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
                       "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                       body.len);
        if (reserve(out, body.len)) {
            memcpy(out->p + out->len, body.p, body.len);
            out->len += body.len;
            out->p[out->len] = 0;
        }
    }
    bl__ops_buf_free(&body);
}
