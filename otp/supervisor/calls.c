/*
 * otp/supervisor/calls.c - the call protocol the three supervisors share:
 * gen_server calls with no timeout, answered with a bl__sup_reply
 * {rc, aux, pid}; a child spec sent as a bl__sup_wire; which_children and
 * count_children.  The caller's side runs in the calling process, the
 * replying side (bl__sup_reply_with) in the supervisor's callbacks.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otp/supervisor/supervisor_int.h"

/*
 * A gen_server call with infinite timeout; a DOWN that -ECONNRESET leaves
 * in *reply is freed.
 */
int bl__sup_call(bl_pid sup, uint32_t tag, const void *req, size_t len, bl_msg **reply)
{
    *reply = NULL;
    int rc = bl_gen_server_call(sup, tag, req, len, reply, BL_INFINITY);
    if (rc != 0) {
        bl_msg_free(*reply);
        *reply = NULL;
    }
    return rc;
}

void bl__sup_reply_with(bl_gs_result *r, int rc, bl_pid pid, int aux)
{
    bl__sup_reply rep = {.rc = rc, .aux = aux, .pid = pid};
    bl_gs_reply(r, &rep, sizeof rep);
}

/*
 * The reply with the info of a start: {rc, aux, pid} and then the info's
 * bytes, so that replies without info (nearly all) stay small.
 */
void bl__sup_reply_info(bl_gs_result *r, int rc, bl_pid pid, const bl_child_info *info)
{
    size_t n = info ? info->len : 0;
    if (n == 0 || n > BL_CHILD_INFO_MAX) {
        bl__sup_reply_with(r, rc, pid, 0);
        return;
    }
    unsigned char buf[sizeof(bl__sup_reply) + BL_CHILD_INFO_MAX];
    bl__sup_reply rep = {.rc = rc, .pid = pid};
    memcpy(buf, &rep, sizeof rep);
    memcpy(buf + sizeof rep, info->data, n);
    bl_gs_reply(r, buf, sizeof rep + n);
}

int bl__sup_call_reply_info(bl_pid sup, uint32_t tag, const void *req, size_t len,
                            bl__sup_reply *rep, bl_child_info *info)
{
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, req, len, &m);
    if (rc) return rc;
    *rep = (bl__sup_reply){.rc = -EPROTO};
    if (info) info->len = 0;
    if (m->len >= sizeof *rep && m->len - sizeof *rep <= BL_CHILD_INFO_MAX) {
        memcpy(rep, m->data, sizeof *rep);
        size_t n = m->len - sizeof *rep;
        if (info && n) {
            memcpy(info->data, (const char *)m->data + sizeof *rep, n);
            info->len = n;
        }
    }
    bl_msg_free(m);
    return 0;
}

int bl__sup_call_reply(bl_pid sup, uint32_t tag, const void *req, size_t len, bl__sup_reply *rep)
{
    return bl__sup_call_reply_info(sup, tag, req, len, rep, NULL);
}

int bl__sup_call_spec(bl_pid sup, uint32_t tag, const bl_child_spec *spec, bl__sup_reply *rep,
                      bl_child_info *info)
{
    size_t len = sizeof(bl__sup_wire) + spec->arg_len;
    bl__sup_wire small, *w = spec->arg_len ? malloc(len) : &small;
    if (!w) return -ENOMEM;
    *w = (bl__sup_wire){.start = spec->start,
                        .start_info = spec->start_info,
                        .arg = spec->arg,
                        .arg_len = spec->arg_len,
                        .shutdown = spec->shutdown,
                        .restart = spec->restart,
                        .type = spec->type,
                        .significant = spec->significant};
    snprintf(w->id, sizeof w->id, "%s", spec->id ? spec->id : "");
    if (spec->arg_len) memcpy(w + 1, spec->arg, spec->arg_len);
    /* Held across the call's wait: freed with the caller if it is killed meanwhile. */
    bl_cleanup c;
    if (w != &small) bl_cleanup_push(&c, free, w);
    int rc = bl__sup_call_reply_info(sup, tag, w, len, rep, info);
    if (w != &small) {
        bl_cleanup_pop(&c, true); /* frees w */
    }
    return rc;
}

const bl__sup_wire *bl__sup_wire_of(const bl_msg *m)
{
    const bl__sup_wire *w = m->data;
    if (m->len < sizeof *w || m->len != sizeof *w + w->arg_len) return NULL;
    return w;
}

int bl__sup_which(bl_pid sup, uint32_t tag, bl_sup_child *out, size_t max)
{
    if (!out && max > 0) return -EINVAL;
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, NULL, 0, &m);
    if (rc) return rc;
    if (m->len % sizeof(bl_sup_child) != 0) {
        /* Only an error code has another size. */
        int32_t err = -EPROTO;
        if (m->len == sizeof err) memcpy(&err, m->data, sizeof err);
        bl_msg_free(m);
        return err;
    }
    size_t n = m->len / sizeof(bl_sup_child);
    if (out && max > 0) memcpy(out, m->data, (n < max ? n : max) * sizeof *out);
    bl_msg_free(m);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int bl__sup_count(bl_pid sup, uint32_t tag, bl_sup_counts *out)
{
    if (!out) return -EINVAL;
    bl_msg *m;
    int rc = bl__sup_call(sup, tag, NULL, 0, &m);
    if (rc) return rc;
    rc = -EPROTO;
    if (m->len == sizeof *out) {
        memcpy(out, m->data, sizeof *out);
        rc = 0;
    }
    bl_msg_free(m);
    return rc;
}
