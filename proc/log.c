/*
 * proc/log.c - the logger: events copied into a bounded queue at the call,
 * formatted and written by the runtime's "bl-logger" thread.
 *
 * Why a thread of its own and not a process: the handler and journald may
 * block (a full pipe on stderr, a slow journal), and a process that blocks
 * in write(2) would hold its scheduler; the dirty pool serves processes
 * waiting for a result, while a logged event has nobody waiting for it.
 * The queue is a ring of pointers under a mutex: events are rare next to
 * messages, and the lock is held for a few stores.  One malloc per event
 * holds the event, its fields and every string they point at.
 *
 * The thread starts with the first event logged while the runtime runs and
 * stops with the runtime (the `stopped` service), after writing out what is
 * queued.  Without a runtime, events are written on the caller's thread.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "beamline.h"
#include "proc/proc.h"
#include "sched/hooks.h"
#include "sched/sched.h"

/* One queued event: the event, its fields, then the bytes they point at. */
typedef struct rec {
    bl_log_event ev;       /* fields and strings point into this allocation */
    bl_log_field fields[]; /* ev.nfields of them, then the string bytes */
} rec;

/* What the writer uses, fixed when the thread starts (or per call without it). */
typedef struct sink {
    bl_log_format format;      /* built-in format when handler is NULL */
    bl_log_handler_fn handler; /* the program's handler, or NULL */
    void *arg;                 /* its argument */
} sink;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* the thread waits here for events or stop */
    rec **ring;            /* cap slots, count of them from head */
    unsigned cap;          /* slots */
    unsigned head;         /* oldest */
    unsigned count;        /* queued */
    bool running;          /* the thread exists */
    bool stopping;         /* the thread writes out the queue and ends */
    pthread_t thread;      /* while running */
    sink out;              /* the thread's output */
    uint64_t dropped_told; /* drops already reported by a line of their own */
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* Relaxed: a statistic, read on its own. */
static _Atomic uint64_t dropped;

uint64_t bl_log_dropped(void)
{
    return atomic_load_explicit(&dropped, memory_order_relaxed);
}

/* Events the queue took; written under q.lock, read on its own (relaxed). */
static _Atomic uint64_t queued;

uint64_t bl_log_queued(void)
{
    return atomic_load_explicit(&queued, memory_order_relaxed);
}

static const char *const level_names[] = {NULL,      "emergency", "alert", "critical", "error",
                                          "warning", "notice",    "info",  "debug"};

const char *bl_log_level_name(bl_log_level level)
{
    return (unsigned)level - 1u < 8u ? level_names[level] : NULL;
}

/* The configured level, or notice without a runtime. */
static bl_log_level threshold(void)
{
    bl_runtime *rt = bl__rt;
    return rt && rt->cfg.log_level ? rt->cfg.log_level : BL_LOG_NOTICE;
}

bool bl_log_enabled(bl_log_level level)
{
    return (unsigned)level - 1u < 8u && level <= threshold();
}

/* ---- formatting ---- */

/* Appends to buf as snprintf would (n counts the whole length even past len). */
typedef struct out {
    char *buf;  /* the caller's buffer */
    size_t len; /* its size */
    size_t n;   /* bytes of the whole text so far */
} out;

static void put(out *o, const char *s, size_t k)
{
    if (o->n < o->len) {
        size_t room = o->len - o->n;
        memcpy(o->buf + o->n, s, k < room ? k : room);
    }
    o->n += k;
}

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) put(o, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static int finish(out *o)
{
    if (o->len) o->buf[o->n < o->len ? o->n : o->len - 1] = 0;
    return o->n > INT32_MAX ? -EINVAL : (int)o->n;
}

static void put_time(out *o, int64_t us)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char t[40];
    size_t k = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    put(o, t, k);
    putf(o, ".%06dZ", (int)(us % 1000000));
}

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isprint(p[i]) && p[i] != '\t') return false;
    return true;
}

/*
 * A value as text: quoted when asked (JSON) or needed (text: spaces,
 * quotes, '='), with the escapes of JSON, which text lines use too.
 */
static void put_str(out *o, const char *s, size_t k, bool quote)
{
    bool need = quote || k == 0;
    for (size_t i = 0; i < k && !need; i++)
        need = s[i] == ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' || (uint8_t)s[i] < 0x20;
    if (!need) {
        put(o, s, k);
        return;
    }
    put(o, "\"", 1);
    size_t run = 0; /* bytes since the last escape, put in one go */
    for (size_t i = 0; i < k; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(o, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c == '\n') {
            put(o, "\\n", 2);
        } else if (c == '\t') {
            put(o, "\\t", 2);
        } else {
            putf(o, "\\u%04x", c);
        }
    }
    put(o, s + run, k - run);
    put(o, "\"", 1);
}

static void put_value(out *o, const bl_log_field *f, bool json)
{
    char pid[32];
    switch (f->kind) {
    case BL_LOG_INT:
        putf(o, "%lld", (long long)f->i);
        break;
    case BL_LOG_UINT:
        putf(o, "%llu", (unsigned long long)f->u);
        break;
    case BL_LOG_PID:
        bl_pid_format(f->pid, pid, sizeof pid);
        put_str(o, pid, strlen(pid), json);
        break;
    case BL_LOG_BYTES:
        if (printable(f->bytes.ptr, f->bytes.len)) {
            put_str(o, f->bytes.ptr, f->bytes.len, json);
        } else {
            if (json) put(o, "\"", 1);
            put(o, "0x", 2);
            for (size_t i = 0; i < f->bytes.len; i++)
                putf(o, "%02x", ((const uint8_t *)f->bytes.ptr)[i]);
            if (json) put(o, "\"", 1);
        }
        break;
    default:
        put_str(o, f->str ? f->str : "", f->str ? strlen(f->str) : 0, json);
        break;
    }
}

static bool event_ok(const bl_log_event *e)
{
    return e && bl_log_level_name(e->level) && (e->fields || !e->nfields);
}

int bl_log_format_text(const bl_log_event *e, char *buf, size_t len)
{
    if (!event_ok(e) || (!buf && len)) return -EINVAL;
    out o = {buf, len, 0};
    char pid[32];
    put_time(&o, e->time_us);
    putf(&o, " %s ", bl_log_level_name(e->level));
    put(&o, e->kind, strlen(e->kind));
    if (e->pid) {
        bl_pid_format(e->pid, pid, sizeof pid);
        putf(&o, " %s", pid);
    }
    if (e->msg) {
        put(&o, " ", 1);
        put_str(&o, e->msg, strlen(e->msg), false);
    }
    for (size_t i = 0; i < e->nfields; i++) {
        put(&o, " ", 1);
        put(&o, e->fields[i].key, strlen(e->fields[i].key));
        put(&o, "=", 1);
        put_value(&o, &e->fields[i], false);
    }
    return finish(&o);
}

int bl_log_format_json(const bl_log_event *e, char *buf, size_t len)
{
    if (!event_ok(e) || (!buf && len)) return -EINVAL;
    out o = {buf, len, 0};
    char pid[32];
    put(&o, "{\"time\":\"", 9);
    put_time(&o, e->time_us);
    putf(&o, "\",\"level\":\"%s\",\"kind\":", bl_log_level_name(e->level));
    put_str(&o, e->kind, strlen(e->kind), true);
    if (e->pid) {
        bl_pid_format(e->pid, pid, sizeof pid);
        putf(&o, ",\"pid\":\"%s\"", pid);
    }
    if (e->msg) {
        put(&o, ",\"msg\":", 7);
        put_str(&o, e->msg, strlen(e->msg), true);
    }
    for (size_t i = 0; i < e->nfields; i++) {
        put(&o, ",", 1);
        put_str(&o, e->fields[i].key, strlen(e->fields[i].key), true);
        put(&o, ":", 1);
        put_value(&o, &e->fields[i], true);
    }
    put(&o, "}", 1);
    return finish(&o);
}

/* ---- writing ---- */

/* One line on stderr in one write(2), so that lines of threads never mix. */
static void write_line(const bl_log_event *e, bool json)
{
    char small[1024];
    char *line = small;
    int n = json ? bl_log_format_json(e, small, sizeof small - 1)
                 : bl_log_format_text(e, small, sizeof small - 1);
    if (n < 0) return;
    if ((size_t)n >= sizeof small - 1) {
        line = malloc((size_t)n + 2);
        if (line) {
            n = json ? bl_log_format_json(e, line, (size_t)n + 1)
                     : bl_log_format_text(e, line, (size_t)n + 1);
        } else {
            line = small; /* no memory: the line as cut */
            n = (int)sizeof small - 2;
        }
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* a lost log line must not take anything else down */
    if (line != small) free(line);
}

/*
 * journald: MESSAGE is the text line without its time (the journal keeps
 * its own), PRIORITY the syslog level, and each field BL_<KEY> in capitals
 * (journal field names are upper case letters, digits and '_').
 */
static void write_journal(const bl_log_event *e)
{
    enum { MAXF = 64 };
    struct iovec iov[MAXF + 5];
    char *texts[MAXF + 5];
    int n = 0;
    bl_log_event bare = *e;
    bare.time_us = 0;
    char msg[1024];
    int k = bl_log_format_text(&bare, msg, sizeof msg);
    if (k < 0) return;
    /* Skip "1970-01-01T00:00:00.000000Z " */
    const char *body = strchr(msg, ' ');
    body = body ? body + 1 : msg;
    if (asprintf(&texts[n], "MESSAGE=%s", body) >= 0) n++;
    if (asprintf(&texts[n], "PRIORITY=%d", (int)e->level - 1) >= 0) n++;
    if (asprintf(&texts[n], "BL_KIND=%s", e->kind) >= 0) n++;
    if (e->pid) {
        char pid[32];
        bl_pid_format(e->pid, pid, sizeof pid);
        if (asprintf(&texts[n], "BL_PID=%s", pid) >= 0) n++;
    }
    for (size_t i = 0; i < e->nfields && i < MAXF; i++) {
        char val[BL_LOG_VALUE_MAX * 2 + 64];
        out o = {val, sizeof val, 0};
        put_value(&o, &e->fields[i], false);
        finish(&o);
        char key[64];
        size_t j = 0;
        for (const char *c = e->fields[i].key; *c && j < sizeof key - 1; c++)
            key[j++] = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
        key[j] = 0;
        if (asprintf(&texts[n], "BL_%s=%s", key, val) >= 0) n++;
    }
    for (int i = 0; i < n; i++) iov[i] = (struct iovec){texts[i], strlen(texts[i])};
    if (sd_journal_sendv(iov, n) < 0) write_line(e, false); /* no journal: stderr */
    for (int i = 0; i < n; i++) free(texts[i]);
}

static void emit(const sink *s, const bl_log_event *e)
{
    if (s->handler)
        s->handler(e, s->arg);
    else if (s->format == BL_LOG_JOURNALD)
        write_journal(e);
    else
        write_line(e, s->format == BL_LOG_JSON);
}

/*
 * The configured output.  journald without a journal (a container, no
 * systemd) would lose every event silently, as sd_journal_send then
 * reports success: the text line on stderr instead.
 */
static sink current_sink(void)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return (sink){BL_LOG_TEXT, NULL, NULL};
    sink s = {rt->cfg.log_format, rt->cfg.log_handler, rt->cfg.log_handler_arg};
    if (s.format == BL_LOG_JOURNALD && access("/run/systemd/journal/socket", W_OK) != 0)
        s.format = BL_LOG_TEXT;
    return s;
}

/* ---- copying an event ---- */

/* Bytes a field's value takes in the record (cut values: the text shown). */
static size_t value_room(const bl_log_field *f)
{
    if (f->kind == BL_LOG_STR) {
        size_t k = f->str ? strnlen(f->str, BL_LOG_VALUE_MAX + 1) : 0;
        return k > BL_LOG_VALUE_MAX ? BL_LOG_VALUE_MAX + 32 : k + 1;
    }
    if (f->kind == BL_LOG_BYTES)
        return (f->bytes.len > BL_LOG_VALUE_MAX ? BL_LOG_VALUE_MAX * 2 + 40 : f->bytes.len) + 1;
    return 0;
}

/* Copies n bytes to *at, advancing it; returns where they went. */
static char *copy_out(char **at, const void *src, size_t n)
{
    char *d = *at;
    memcpy(d, src, n);
    d[n] = 0;
    *at += n + 1;
    return d;
}

/*
 * A value cut to BL_LOG_VALUE_MAX bytes becomes text ending with
 * "...(N bytes)": bytes in their shown form (text or hex), then cut.
 */
static void copy_value(bl_log_field *d, const bl_log_field *f, char **at)
{
    *d = *f;
    if (f->kind == BL_LOG_STR && f->str) {
        size_t k = strnlen(f->str, BL_LOG_VALUE_MAX + 1);
        if (k <= BL_LOG_VALUE_MAX) {
            d->str = copy_out(at, f->str, k);
            return;
        }
        char *s = *at;
        int w = sprintf(s, "%.*s...(%zu bytes)", BL_LOG_VALUE_MAX, f->str, strlen(f->str));
        d->str = s;
        *at += w + 1;
    } else if (f->kind == BL_LOG_BYTES) {
        size_t k = f->bytes.len;
        if (k <= BL_LOG_VALUE_MAX) {
            d->bytes.ptr = copy_out(at, f->bytes.ptr, k);
            return;
        }
        char *s = *at;
        size_t w = 0;
        const uint8_t *b = f->bytes.ptr;
        if (printable(b, BL_LOG_VALUE_MAX)) {
            memcpy(s, b, BL_LOG_VALUE_MAX);
            w = BL_LOG_VALUE_MAX;
        } else {
            w = (size_t)sprintf(s, "0x");
            for (size_t i = 0; i < BL_LOG_VALUE_MAX / 2; i++)
                w += (size_t)sprintf(s + w, "%02x", b[i]);
        }
        w += (size_t)sprintf(s + w, "...(%zu bytes)", k);
        d->kind = BL_LOG_STR;
        d->str = s;
        *at += w + 1;
    }
}

static rec *copy_event(const bl_log_event *e)
{
    size_t room = sizeof(rec) + e->nfields * sizeof(bl_log_field);
    room += strlen(e->kind) + 1 + (e->msg ? strnlen(e->msg, BL_LOG_VALUE_MAX * 4) + 1 : 0);
    for (size_t i = 0; i < e->nfields; i++)
        room +=
            strnlen(e->fields[i].key ? e->fields[i].key : "", 64) + 1 + value_room(&e->fields[i]);
    rec *r = malloc(room);
    if (!r) return NULL;
    char *at = (char *)&r->fields[e->nfields];
    r->ev = *e;
    r->ev.fields = r->fields;
    r->ev.kind = copy_out(&at, e->kind, strlen(e->kind));
    if (e->msg) r->ev.msg = copy_out(&at, e->msg, strnlen(e->msg, BL_LOG_VALUE_MAX * 4));
    for (size_t i = 0; i < e->nfields; i++) {
        const char *key = e->fields[i].key ? e->fields[i].key : "";
        char *k = copy_out(&at, key, strnlen(key, 64));
        for (char *c = k; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_') *c = '_';
        copy_value(&r->fields[i], &e->fields[i], &at);
        r->fields[i].key = k;
    }
    return r;
}

/* ---- the thread ---- */

static void *logger_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (!q.count && !q.stopping) pthread_cond_wait(&q.cond, &q.lock);
        if (!q.count) break; /* stopping, and all written */
        rec *r = q.ring[q.head];
        q.head = (q.head + 1) % q.cap;
        q.count--;
        uint64_t lost = atomic_load_explicit(&dropped, memory_order_relaxed) - q.dropped_told;
        q.dropped_told += lost;
        sink s = q.out;
        pthread_mutex_unlock(&q.lock);
        emit(&s, &r->ev);
        free(r);
        if (lost) {
            bl_log_field f = BL_LOG_U("dropped", lost);
            bl_log_event e = {.level = BL_LOG_WARNING,
                              .kind = "logger",
                              .msg = "events dropped: the log queue was full",
                              .fields = &f,
                              .nfields = 1};
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            e.time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
            emit(&s, &e);
        }
        pthread_mutex_lock(&q.lock);
    }
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

/* Under q.lock: the thread and its queue, for the running runtime. */
static bool start_thread(bl_runtime *rt)
{
    unsigned cap = rt->cfg.log_queue ? rt->cfg.log_queue : 1024;
    q.ring = calloc(cap, sizeof *q.ring);
    if (!q.ring) return false;
    q.cap = cap;
    q.head = q.count = 0;
    q.stopping = false;
    q.out = current_sink();
    q.dropped_told = atomic_load_explicit(&dropped, memory_order_relaxed);
    if (pthread_create(&q.thread, NULL, logger_main, NULL)) {
        free(q.ring);
        q.ring = NULL;
        return false;
    }
    pthread_setname_np(q.thread, "bl-logger");
    q.running = true;
    return true;
}

static void logger_stopped(void)
{
    pthread_mutex_lock(&q.lock);
    bool was = q.running;
    q.stopping = true;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
    if (was) pthread_join(q.thread, NULL);
    pthread_mutex_lock(&q.lock);
    free(q.ring);
    q.ring = NULL;
    q.running = q.stopping = false;
    q.cap = q.count = 0;
    pthread_mutex_unlock(&q.lock);
}

static bl_sched_service logger_service = {.name = "logger", .stopped = logger_stopped};

__attribute__((constructor)) static void logger_register(void)
{
    bl__sched_service_add(&logger_service);
}

/* Without the thread: written on the caller's thread, as cut as queued. */
static int emit_here(rec *r)
{
    sink s = current_sink();
    emit(&s, &r->ev);
    free(r);
    return 0;
}

int bl__log_event(const bl_log_event *e)
{
    rec *r = copy_event(e);
    if (!r) return -ENOMEM;
    bl_runtime *rt = bl__rt;
    if (!rt || atomic_load_explicit(&rt->stop, memory_order_relaxed)) return emit_here(r);
    pthread_mutex_lock(&q.lock);
    if (!q.running && !q.stopping && !start_thread(rt)) {
        pthread_mutex_unlock(&q.lock);
        return emit_here(r);
    }
    if (q.stopping || q.count == q.cap) {
        pthread_mutex_unlock(&q.lock);
        free(r);
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    q.ring[(q.head + q.count) % q.cap] = r;
    atomic_store_explicit(&queued, atomic_load_explicit(&queued, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (q.count++ == 0) pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
    return 0;
}

int bl_log(bl_log_level level, const char *kind, const char *msg, const bl_log_field *fields,
           size_t n)
{
    if (!bl_log_level_name(level) || (!fields && n)) return -EINVAL;
    if (level > threshold()) return 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    bl_log_event e = {.time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                      .level = level,
                      .kind = kind ? kind : "log",
                      .pid = bl_self(),
                      .msg = msg,
                      .fields = fields,
                      .nfields = n};
    return bl__log_event(&e);
}
