/*
 * beamline/log.h - structured logging: Erlang's Logger and SASL reports, for C.
 *
 * An event has a level (the syslog levels, as Logger's), a kind (what sort
 * of report: "crash_report", "supervisor_report", "progress", "runtime", or
 * a program's own), an optional one-line message and key/value fields.  The
 * runtime reports through it:
 *   - crash_report (error): a process that failed by itself (see
 *     bl_config.quiet), with its pid, registered name, reason (kind, code,
 *     detail: printable detail as text, other bytes as hex, long detail cut
 *     with its length shown), initial function where known, and message
 *     queue length;
 *   - supervisor_report (error): a child that failed to start
 *     (context=start_error), a child that terminated abnormally
 *     (child_terminated), a supervisor giving up because its restart
 *     intensity was reached (shutdown), each with the supervisor's pid and
 *     name, the child's id, pid, reason and restart type;
 *   - progress (info, so off at the default level notice): a child started;
 *   - runtime (warning): start-up warnings, such as an unknown BEAMLINE_*
 *     variable.
 *
 * Where events go: bl_config.log_handler when set, else the format named by
 * bl_config.log_format (BEAMLINE_LOG_FORMAT): one text line on stderr
 * (default), one JSON object per line on stderr, or journald
 * (sd_journal_send; the fields become BL_<KEY> journal fields, the level
 * PRIORITY).  Events below bl_config.log_level (BEAMLINE_LOG_LEVEL, default
 * notice) are dropped at the call, before any work.
 *
 * Off the hot path: bl_log copies the event (strings included, each field
 * value cut at BL_LOG_VALUE_MAX bytes) into a bounded queue and returns; a
 * thread of the runtime's ("bl-logger", started with the first event)
 * formats and writes it, so a slow stderr or journald never blocks a
 * scheduler.  When the queue holds bl_config.log_queue events
 * (BEAMLINE_LOG_QUEUE, default 1024), new events are dropped and counted
 * (bl_log_dropped); a line saying how many were dropped follows once there
 * is room again.  The runtime's stop writes out what is queued.  Outside a
 * running runtime (before bl_runtime_start, after bl_runtime_wait) bl_log
 * writes at once, on the caller's thread.
 *
 * Where C differs from Erlang's Logger: one handler (no handler chain, no
 * filters beyond the level), field values are text, integers, pids or
 * bytes rather than any term, and a report's fields are copied once at the
 * call (the strings may be on the caller's stack).
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_LOG_H
#define BEAMLINE_LOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of one field's value kept at most; the rest is cut, its length said. */
#define BL_LOG_VALUE_MAX 512

/* How a field's value is held and shown. */
typedef enum bl_log_value_kind {
    BL_LOG_STR = 0,  /* text (NUL-terminated); NULL shows as "" */
    BL_LOG_INT = 1,  /* a signed integer */
    BL_LOG_UINT = 2, /* an unsigned integer */
    BL_LOG_PID = 3,  /* a pid, shown as <N.I.G> */
    BL_LOG_BYTES = 4 /* len bytes: as text when printable, else hex */
} bl_log_value_kind;

/* One key/value field of an event. */
typedef struct bl_log_field {
    const char *key;        /* a name: letters, digits and '_' (others become '_') */
    bl_log_value_kind kind; /* which member of the union holds the value */
    union {
        const char *str; /* BL_LOG_STR */
        int64_t i;       /* BL_LOG_INT */
        uint64_t u;      /* BL_LOG_UINT */
        bl_pid pid;      /* BL_LOG_PID */
        struct {
            const void *ptr; /* BL_LOG_BYTES: the bytes */
            size_t len;      /* and their count */
        } bytes;
    };
} bl_log_field;

/* Field constructors: bl_log(BL_LOG_INFO, "orders", "paid", BL_LOG_S("id", id), ...). */
#define BL_LOG_S(k, v) ((bl_log_field){.key = (k), .kind = BL_LOG_STR, .str = (v)})
#define BL_LOG_I(k, v) ((bl_log_field){.key = (k), .kind = BL_LOG_INT, .i = (int64_t)(v)})
#define BL_LOG_U(k, v) ((bl_log_field){.key = (k), .kind = BL_LOG_UINT, .u = (uint64_t)(v)})
#define BL_LOG_P(k, v) ((bl_log_field){.key = (k), .kind = BL_LOG_PID, .pid = (v)})
#define BL_LOG_B(k, p, n)                                                                          \
    ((bl_log_field){.key = (k), .kind = BL_LOG_BYTES, .bytes = {.ptr = (p), .len = (n)}})

/*
 * An event, as a handler sees it.  Valid during the handler's call only.
 * A cut field value ends with "...(N bytes)" where N is its whole length.
 */
typedef struct bl_log_event {
    int64_t time_us;            /* wall clock at the call, microseconds since the epoch */
    bl_log_level level;         /* its level */
    const char *kind;           /* the report kind ("crash_report", ...; never NULL) */
    bl_pid pid;                 /* the process that logged it, BL_PID_NONE outside one */
    const char *msg;            /* one line of text, or NULL */
    const bl_log_field *fields; /* the fields, in the caller's order */
    size_t nfields;             /* their count */
} bl_log_event;

/*
 * Logs an event: level, kind (NULL is "log"), msg (may be NULL) and n
 * fields (fields may be NULL when n is 0).  Any thread.  Returns 0, 1 when
 * the level is below bl_config.log_level (nothing done), -EAGAIN when the
 * queue was full (the event is dropped and counted), -EINVAL for a bad
 * level or fields NULL with n > 0, -ENOMEM.  Never blocks on the output.
 */
int bl_log(bl_log_level level, const char *kind, const char *msg, const bl_log_field *fields,
           size_t n);

/* bl_log with the fields as arguments: BL_LOG(BL_LOG_WARNING, "disk", "low", BL_LOG_U("free", f)).
 */
#define BL_LOG(level, kind, msg, ...)                                                              \
    bl_log((level), (kind), (msg), (const bl_log_field[]){__VA_ARGS__},                            \
           sizeof((const bl_log_field[]){__VA_ARGS__}) / sizeof(bl_log_field))

/* Whether an event of this level would be logged now (cheap: one load). */
bool bl_log_enabled(bl_log_level level);

/* Events dropped because the queue was full, since the start. */
uint64_t bl_log_dropped(void);

/* Events the queue took for the logger thread, since the start (for metrics). */
uint64_t bl_log_queued(void);

/* A level's name ("emergency" ... "debug"), or NULL for a bad level. */
const char *bl_log_level_name(bl_log_level level);

/*
 * The built-in formats, for a handler that wants them: the text line
 * ("2026-12-06T09:41:07.123456Z error crash_report <0.12.0> msg key=value
 * ...") and a JSON object ({"time":..., "level":..., "kind":..., "pid":...,
 * "msg":..., and the fields}), each without the newline.  Write into buf,
 * always NUL-terminated when len > 0, and return the whole length as
 * snprintf does (cut when >= len), or -EINVAL.
 */
int bl_log_format_text(const bl_log_event *e, char *buf, size_t len);
int bl_log_format_json(const bl_log_event *e, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_LOG_H */
