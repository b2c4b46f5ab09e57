/*
 * otp/supervisor/report.c - supervisor reports, as SASL writes them: a
 * child that failed to start, a child that terminated, the supervisor
 * giving up at its restart intensity (errors), and each child started
 * (progress, info: off at the default level).  Kind supervisor_report or
 * progress in beamline/log.h; the event's pid is the supervisor's.
 */
#include <string.h>

#include "beamline.h"
#include "core/names.h"
#include "otp/supervisor/supervisor_int.h"
#include "proc/proc.h"

static const char *const restart_names[] = {"permanent", "transient", "temporary"};

/* The fields every report has: the supervisor's name, the child's id, pid and types. */
static size_t common(bl_log_field *f, char *name, size_t cap, const bl__sup_offender *o)
{
    size_t n = 0;
    if (bl__names_name_of(bl_self(), name, cap) == 0) f[n++] = BL_LOG_S("supervisor_name", name);
    f[n++] = BL_LOG_S("child_id", o->id && *o->id ? o->id : "undefined");
    if (o->pid) f[n++] = BL_LOG_P("child_pid", o->pid);
    f[n++] = BL_LOG_S("restart_type", (unsigned)o->restart < 3 ? restart_names[o->restart] : "?");
    f[n++] = BL_LOG_S("child_type", o->type == BL_CHILD_SUPERVISOR ? "supervisor" : "worker");
    return n;
}

void bl__sup_report(const char *context, const bl__sup_offender *o, const bl_reason *reason,
                    const char *why, int err)
{
    if (bl__rt->cfg.quiet || !bl_log_enabled(BL_LOG_ERROR)) return;
    char name[BL_NAME_MAX + 1];
    bl_log_field f[14];
    size_t n = 0;
    f[n++] = BL_LOG_S("context", context);
    if (reason)
        n += bl__reason_fields(reason, f + n);
    else
        f[n++] = BL_LOG_S("reason", why);
    if (err) {
        f[n++] = BL_LOG_I("error", err);
        f[n++] = BL_LOG_S("error_text", strerror(-err));
    }
    n += common(f + n, name, sizeof name, o);
    bl_log(BL_LOG_ERROR, "supervisor_report", NULL, f, n);
}

void bl__sup_progress(const bl__sup_offender *o)
{
    if (!bl_log_enabled(BL_LOG_INFO)) return;
    char name[BL_NAME_MAX + 1];
    bl_log_field f[8];
    size_t n = 0;
    f[n++] = BL_LOG_S("context", "child_started");
    n += common(f + n, name, sizeof name, o);
    bl_log(BL_LOG_INFO, "progress", NULL, f, n);
}
