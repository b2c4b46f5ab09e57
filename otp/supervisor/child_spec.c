/*
 * otp/supervisor/child_spec.c - checking child specs and describing what is
 * wrong with them (bl_child_spec_check, bl_sup_error_str), and running a
 * spec's start function (bl__sup_start), for every kind of supervisor, and
 * copying a list of specs whole (a supervisor's start argument).  A check
 * or a copy touches only its arguments: any thread; a start runs in the
 * supervisor process.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otp/supervisor/supervisor_int.h"

static const char *const error_text[] = {
    [BL_SUP_ERR_NONE] = "no error",
    [BL_SUP_ERR_MISSING_ID] = "child spec without id",
    [BL_SUP_ERR_ID_TOO_LONG] = "child id too long",
    [BL_SUP_ERR_DUPLICATE_ID] = "duplicate child id",
    [BL_SUP_ERR_MISSING_START] = "child spec without start function",
    [BL_SUP_ERR_BAD_RESTART] = "invalid restart value",
    [BL_SUP_ERR_BAD_SHUTDOWN] = "invalid shutdown value",
    [BL_SUP_ERR_BAD_TYPE] = "invalid child type",
    [BL_SUP_ERR_BAD_ARG] = "child arg NULL with arg_len > 0",
    [BL_SUP_ERR_BAD_OPTION] = "invalid supervisor option",
    [BL_SUP_ERR_START_FAILED] = "child failed to start",
    [BL_SUP_ERR_BAD_SIGNIFICANT] = "significant child not allowed (permanent, or auto_shutdown "
                                   "never)",
    [BL_SUP_ERR_BAD_START] = "child spec with both start and start_info",
    [BL_SUP_ERR_INIT_FAILED] = "supervisor init function failed",
};

const char *bl_sup_error_str(bl_sup_error_kind kind)
{
    if ((unsigned)kind >= sizeof error_text / sizeof *error_text) return "unknown error";
    return error_text[kind];
}

/* Fills *err (if any) and returns its error code. */
int bl__sup_set_error(bl_sup_error *err, bl_sup_error_kind kind, int index, const char *id,
                      int error)
{
    if (err) {
        err->kind = kind;
        err->index = index;
        err->error = error;
        err->id[0] = 0;
        err->pid = BL_PID_NONE;
        if (id) snprintf(err->id, sizeof err->id, "%s", id);
    }
    return error;
}

int bl_child_info_set(bl_child_info *info, const void *data, size_t len)
{
    if (!info || (!data && len > 0)) return -EINVAL;
    if (len > BL_CHILD_INFO_MAX) return -EMSGSIZE;
    if (len) memcpy(info->data, data, len);
    info->len = len;
    return 0;
}

int bl__sup_start(bl_start_fn start, bl_start_info_fn start_info, void *arg, bl_pid *pid,
                  bl_child_info *info)
{
    bl_child_info scratch;
    bl_child_info *in = info ? info : &scratch;
    in->len = 0;
    *pid = BL_PID_NONE;
    int rc = start_info ? start_info(arg, pid, in) : start(arg, pid);
    if (rc == 0 && *pid != BL_PID_NONE) {
        if (in->len > BL_CHILD_INFO_MAX) in->len = BL_CHILD_INFO_MAX;
        return 0;
    }
    in->len = 0;
    /* A taken name: the start left its holder (Erlang's {already_started, Pid}). */
    if (rc != -EEXIST) *pid = BL_PID_NONE;
    if (rc == 0 || rc == BL_GS_IGNORED) return BL_GS_IGNORED;
    return rc < 0 ? rc : -EPROTO;
}

int bl_child_spec_check(const bl_child_spec *s, bool need_id, bl_sup_error *err)
{
    if (!s) return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    const char *id = s->id;
    if (need_id) {
        if (!id || !*id) return bl__sup_set_error(err, BL_SUP_ERR_MISSING_ID, 0, NULL, -EINVAL);
        if (strnlen(id, BL_SUP_ID_MAX) >= BL_SUP_ID_MAX)
            return bl__sup_set_error(err, BL_SUP_ERR_ID_TOO_LONG, 0, id, -EINVAL);
    } else if (id && strnlen(id, BL_SUP_ID_MAX) >= BL_SUP_ID_MAX) {
        id = NULL; /* ignored anyway; do not report a truncated one */
    }
    bl_sup_error_kind kind = BL_SUP_ERR_NONE;
    if (!s->start && !s->start_info)
        kind = BL_SUP_ERR_MISSING_START;
    else if (s->start && s->start_info)
        kind = BL_SUP_ERR_BAD_START;
    else if ((unsigned)s->restart > BL_RESTART_TEMPORARY)
        kind = BL_SUP_ERR_BAD_RESTART;
    else if (s->significant && s->restart == BL_RESTART_PERMANENT)
        kind = BL_SUP_ERR_BAD_SIGNIFICANT;
    else if (s->shutdown < BL_SHUTDOWN_BRUTAL_KILL)
        kind = BL_SUP_ERR_BAD_SHUTDOWN;
    else if ((unsigned)s->type > BL_CHILD_SUPERVISOR)
        kind = BL_SUP_ERR_BAD_TYPE;
    else if (!s->arg && s->arg_len > 0)
        kind = BL_SUP_ERR_BAD_ARG;
    if (kind != BL_SUP_ERR_NONE) return bl__sup_set_error(err, kind, 0, id, -EINVAL);
    bl__sup_set_error(err, BL_SUP_ERR_NONE, 0, NULL, 0);
    return 0;
}

/* An id and its position, for the duplicate check. */
typedef struct id_pos {
    const char *id;
    size_t pos;
} id_pos;

static int id_pos_cmp(const void *a, const void *b)
{
    const id_pos *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Checks every spec of a list, that ids are unique, and that significant
 * children are allowed (auto_shutdown not never).  0, -EINVAL or -ENOMEM.
 */
int bl__sup_check_specs(const bl_child_spec *children, size_t n, bl_auto_shutdown auto_shutdown,
                        bl_sup_error *err)
{
    if (n > 0 && !children) return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (n > INT_MAX) return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        int rc = bl_child_spec_check(&children[i], true, err);
        if (!rc && children[i].significant && auto_shutdown == BL_AUTO_SHUTDOWN_NEVER)
            rc = bl__sup_set_error(err, BL_SUP_ERR_BAD_SIGNIFICANT, 0, children[i].id, -EINVAL);
        if (rc) {
            if (err) err->index = (int)i;
            return rc;
        }
    }
    if (n < 2) return 0;
    id_pos *ids = malloc(n * sizeof *ids);
    if (!ids) return -ENOMEM;
    for (size_t i = 0; i < n; i++) ids[i] = (id_pos){children[i].id, i};
    qsort(ids, n, sizeof *ids, id_pos_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(ids[i - 1].id, ids[i].id) == 0)
            rc = bl__sup_set_error(err, BL_SUP_ERR_DUPLICATE_ID, (int)ids[i].pos, ids[i].id,
                                   -EINVAL);
    free(ids);
    return rc;
}

/* ---- copies ---- */

#define SPEC_ALIGN 16

size_t bl__sup_specs_bytes(const bl_child_spec *c, size_t n)
{
    size_t b = n * sizeof *c;
    for (size_t i = 0; i < n; i++) {
        b += strlen(c[i].id) + 1;
        if (c[i].arg_len) {
            b = (b + SPEC_ALIGN - 1) & ~(size_t)(SPEC_ALIGN - 1);
            if (c[i].arg_len > SIZE_MAX / 2 - b) return 0;
            b += c[i].arg_len;
        }
    }
    return b;
}

void bl__sup_specs_copy(bl_child_spec *dst, const bl_child_spec *src, size_t n)
{
    size_t at = n * sizeof *dst;
    char *base = (char *)dst;
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        size_t len = strlen(src[i].id) + 1;
        memcpy(base + at, src[i].id, len);
        dst[i].id = base + at;
        at += len;
        if (src[i].arg_len) {
            at = (at + SPEC_ALIGN - 1) & ~(size_t)(SPEC_ALIGN - 1);
            memcpy(base + at, src[i].arg, src[i].arg_len);
            dst[i].arg = base + at;
            at += src[i].arg_len;
        }
    }
}
