/*
 * proc/format.c - pids and exit reasons as text, the way the crash report,
 * the process list and the gen_server trace print them (and a custom
 * logger may too).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "beamline.h"
#include "core/proc.h"
#include "proc/proc.h"

int bl_pid_format(bl_pid pid, char *buf, size_t len)
{
    if (!buf && len) return -EINVAL;
    /* Erlang's <Node.Index.Serial>: the node bits are 0 for this node. */
    unsigned node = (unsigned)(pid >> BL_PID_NODE_SHIFT) & 0x7Fu;
    uint32_t idx = (uint32_t)pid ? bl__pid_idx(pid) : 0;
    return snprintf(buf, len, "<%u.%u.%u>", node, idx, bl__pid_gen(pid));
}

static const char *const kind_names[] = {"normal",         "kill",   "killed",
                                         "shutdown",       "noproc", "timeout",
                                         "stack_overflow", "custom", "noconnection"};

int bl_reason_format(const bl_reason *r, char *buf, size_t len)
{
    if (!r || (!buf && len)) return -EINVAL;
    if ((unsigned)r->kind >= sizeof kind_names / sizeof kind_names[0]) return -EINVAL;
    size_t n = 0;
    int w = snprintf(buf, len, "%s", kind_names[r->kind]);
    if (w < 0) return -EINVAL;
    n += (size_t)w;
    /* Past the end of buf, snprintf only counts: n stays the full length. */
    if (r->kind == BL_CUSTOM) {
        w = snprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, " %d", r->code);
        if (w < 0) return -EINVAL;
        n += (size_t)w;
    }
    if (r->detail_len) {
        w = snprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, " (%zu bytes of detail)",
                     r->detail_len);
        if (w < 0) return -EINVAL;
        n += (size_t)w;
    }
    return (int)n;
}

size_t bl__reason_fields(const bl_reason *r, bl_log_field *f)
{
    size_t n = 0;
    unsigned k = (unsigned)r->kind;
    f[n++] = BL_LOG_S("reason", k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?");
    if (r->kind == BL_CUSTOM) f[n++] = BL_LOG_I("code", r->code);
    if (r->detail_len) f[n++] = BL_LOG_B("detail", r->detail, r->detail_len);
    return n;
}

/*
 * The symbol dladdr finds (the dynamic symbol table: a shared library's
 * exported functions, a program's own with -rdynamic), else the object's
 * file name and the offset, which addr2line -e FILE turns into a name.
 */
int bl__fn_name(const void *fn, char *buf, size_t len)
{
    Dl_info di;
    if (!dladdr(fn, &di) || !di.dli_fname) return snprintf(buf, len, "%p", fn);
    if (di.dli_sname && di.dli_saddr == fn) return snprintf(buf, len, "%s", di.dli_sname);
    const char *file = strrchr(di.dli_fname, '/');
    file = file ? file + 1 : di.dli_fname;
    return snprintf(buf, len, "%s+0x%zx", file,
                    (size_t)((const char *)fn - (const char *)di.dli_fbase));
}
