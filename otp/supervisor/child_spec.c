/*
 * otp/supervisor/child_spec.c - checking child specs and describing what is
 * wrong with them (bl_child_spec_check, bl_sup_error_str), for every kind of
 * supervisor.  A check touches only its arguments: any thread.
 */
#include <errno.h>
#include <limits.h>
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
        if (id) snprintf(err->id, sizeof err->id, "%s", id);
    }
    return error;
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
    if (!s->start)
        kind = BL_SUP_ERR_MISSING_START;
    else if ((unsigned)s->restart > BL_RESTART_TEMPORARY)
        kind = BL_SUP_ERR_BAD_RESTART;
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

/* Checks every spec of a list and that ids are unique.  0, -EINVAL or -ENOMEM. */
int bl__sup_check_specs(const bl_child_spec *children, size_t n, bl_sup_error *err)
{
    if (n > 0 && !children) return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    if (n > INT_MAX) return bl__sup_set_error(err, BL_SUP_ERR_BAD_OPTION, -1, NULL, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        int rc = bl_child_spec_check(&children[i], true, err);
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
