/*
 * otp/gen_server/client.c - the caller's side: call, cast, reply, stop and
 * the sys calls, by pid or by destination (bl_gs_dest).
 *
 * A destination with a name is looked up once per use, and the monitor and
 * the request then go to that one process: a call never monitors one
 * process and sends to another.  The pid functions skip the lookup, so
 * their path is the one they always had.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "beamline.h"
#include "beamline/gen_server.h"
#include "core/proc.h"
#include "otp/gen_server/gs_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

/* ---- other nodes ---- */

static _Atomic(const bl__gs_remote_ops *) remote_ops;

void bl__gs_remote_set(const bl__gs_remote_ops *ops)
{
    /* Release: the distribution is set up before a caller can see ops. */
    atomic_store_explicit(&remote_ops, ops, memory_order_release);
}

static const bl__gs_remote_ops *remote(void)
{
    /* Acquire: pairs with the release of bl__gs_remote_set. */
    return atomic_load_explicit(&remote_ops, memory_order_acquire);
}

static bool is_remote_pid(bl_pid pid)
{
    return __builtin_expect(bl__pid_node(pid) != 0, 0);
}

/*
 * A call's or cast's request to another node (a remote pid, or {name,
 * node} in to): through the distribution.  Only calls and casts cross.
 */
static int remote_send(bl_pid server, const bl_gs_dest *to, uint32_t wire, const void *payload,
                       size_t plen, bl_ref *ref)
{
    const bl__gs_remote_ops *ops = remote();
    if (wire != TAG_CALL && wire != TAG_CAST) return -EOPNOTSUPP;
    if (!ops) return to ? -EHOSTUNREACH : -EINVAL;
    return ops->send(server, to ? to->name.local : NULL, to ? to->node : NULL, wire, payload, plen,
                     ref);
}

/* ---- calls ---- */

/*
 * One request and its answer: the request carries the call's monitor, whose
 * reference is the call's alias (bl__call_send), then the wait.  On 0
 * *reply holds the reply; on -ECONNRESET the DOWN message.
 */
static int do_call(bl_pid server, const bl_gs_dest *to, uint32_t tag, const void *payload,
                   size_t plen, bl_msg **reply, int64_t timeout)
{
    bl_pid me = bl_self();
    if (!me) return -EPERM;
    if (timeout < 0 && timeout != BL_INFINITY) return -EINVAL;
    if (server == me) return -EDEADLK;
    /* Everything the call waits for arrives after this mark. */
    bl_recv_mark();
    bl_ref ref;
    int rc = to || is_remote_pid(server) ? remote_send(server, to, tag, payload, plen, &ref)
                                         : bl__call_send(server, tag, payload, plen, &ref);
    if (rc) return rc;
    bl__otp_waitref w = {ref, TAG_REPLY};
    bl_msg *m = NULL;
    rc = bl_recv(&m, bl__otp_match_answer, &w, timeout, BL_RECV_MARKED);
    bl__alias_set(BL_REF_NONE);
    if (rc) {
        bl_demonitor(ref, BL_DEMONITOR_FLUSH);
        /* A reply drained before the alias went is queued (one at most, after
         * the mark, which the timed-out receive left in place): take it out. */
        if (bl_recv(&m, bl__otp_match_answer, &w, 0, BL_RECV_MARKED) == 0) bl_msg_free(m);
        return rc;
    }
    if (m->tag == TAG_REPLY) {
        bl__call_done(ref, m);
        if (reply)
            *reply = m;
        else
            bl_msg_free(m);
        return 0;
    }
    bl_reason why;
    if (bl_msg_reason(m, &why) == 0 && (why.kind == BL_NOPROC || why.kind == BL_NOCONNECTION)) {
        /* noconnection: the server's node is down or out of reach ({nodedown, Node}). */
        rc = why.kind == BL_NOPROC ? -ESRCH : -EHOSTUNREACH;
        bl_msg_free(m);
        return rc;
    }
    if (reply)
        *reply = m;
    else
        bl_msg_free(m);
    return -ECONNRESET;
}

int bl__gs_request(bl_pid server, const bl_gs_dest *to, uint32_t wire, bl_ref ref, uint32_t tag,
                   const void *data, size_t len, bl_msg **reply, int64_t timeout)
{
    if (tag >= BL_TAG_SYSTEM || (len && !data)) return -EINVAL;
    _Alignas(16) char small[sizeof(hdr) + STACK_REQ];
    char *buf = small;
    if (len > STACK_REQ && !(buf = malloc(sizeof(hdr) + len))) return -ENOMEM;
    /* The header in one 16-byte store: built field by field, it would be
     * read back at once by one wide load (here, or in the envelope's copy),
     * which no store can forward to, a stall of a dozen cycles per request. */
    typedef uint32_t hdr_v __attribute__((vector_size(sizeof(hdr))));
    _Static_assert(sizeof(hdr) == 16, "one vector store");
    hdr_v h = {tag, 0, 0, 0};
    memcpy(buf, &h, sizeof h);
    if (len) memcpy(buf + sizeof h, data, len);
    /* A large request is a heap copy held across the call's wait: freed
     * with the caller if it is killed meanwhile. */
    bl_cleanup c;
    if (buf != small) bl_cleanup_push(&c, free, buf);
    int rc;
    if (wire == TAG_CALL && !ref)
        rc = do_call(server, to, wire, buf, sizeof h + len, reply, timeout);
    else if (to || is_remote_pid(server))
        rc = remote_send(server, to, wire, buf, sizeof h + len, NULL);
    else
        rc = bl__send_ex(server, wire, ref, buf, sizeof h + len, 0);
    if (buf != small) {
        bl_cleanup_pop(&c, true); /* frees buf */
    }
    return rc;
}

int bl_gen_server_call(bl_pid server, uint32_t tag, const void *data, size_t len, bl_msg **reply,
                       int64_t timeout_ms)
{
    if (reply) *reply = NULL;
    return bl__gs_request(server, NULL, TAG_CALL, BL_REF_NONE, tag, data, len, reply, timeout_ms);
}

int bl_gen_server_cast(bl_pid server, uint32_t tag, const void *data, size_t len)
{
    return bl__gs_request(server, NULL, TAG_CAST, BL_REF_NONE, tag, data, len, NULL, 0);
}

int bl_gen_server_reply(bl_gs_from from, const void *data, size_t len)
{
    if (!from.pid || (len && !data)) return -EINVAL;
    /* To the caller's alias, a call's or a request's: a caller that is gone,
     * or has given up (the alias is no longer active), drops it unseen.
     * That is not an error: nobody is waiting. */
    int rc = bl__send_reply(from.pid, TAG_REPLY, from.ref, data, len);
    return rc == -EINVAL || rc == -ENOMEM ? rc : 0;
}

static int sys_call(bl_pid server, sys_req *q, size_t qlen, bl_msg **reply, int64_t timeout)
{
    if (reply) *reply = NULL;
    return do_call(server, NULL, TAG_SYS, q, qlen, reply, timeout);
}

int bl_gen_server_stop(bl_pid server, const bl_reason *reason, int64_t timeout_ms)
{
    bl_reason want = reason ? *reason : BL_REASON(BL_NORMAL);
    if ((unsigned)want.kind > BL_NOCONNECTION || (want.detail_len && !want.detail)) return -EINVAL;
    size_t qlen = sizeof(sys_req) + want.detail_len;
    /* A reason with a short detail is built on the stack; a long one is a
     * heap copy held across the wait, freed with the caller if it is killed. */
    _Alignas(16) char small[sizeof(sys_req) + 64];
    sys_req *q = qlen <= sizeof small ? (sys_req *)small : malloc(qlen);
    if (!q) return -ENOMEM;
    memset(q, 0, sizeof *q);
    q->op = SYS_STOP;
    q->reason = want;
    q->reason.detail = NULL;
    if (want.detail_len) memcpy(q + 1, want.detail, want.detail_len);
    bl_msg *down = NULL;
    bl_cleanup c;
    if ((char *)q != small) bl_cleanup_push(&c, free, q);
    int rc = sys_call(server, q, qlen, &down, timeout_ms);
    if ((char *)q != small) bl_cleanup_pop(&c, true); /* frees q */
    if (rc == -ECONNRESET) {
        bl_reason got;
        rc = bl_msg_reason(down, &got) == 0 && bl_reason_eq(&got, &want) ? 0 : -ECONNRESET;
    } else if (rc == 0) {
        rc = -EINVAL; /* answered without stopping: not a gen_server */
    }
    bl_msg_free(down);
    return rc;
}

/* ---- sys ---- */

int bl_sys_get_state(bl_pid server, void **state, int64_t timeout_ms)
{
    if (!state) return -EINVAL;
    sys_req q = {.op = SYS_GET_STATE};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    if (rc == 0 && m->len == sizeof *state) memcpy(state, m->data, sizeof *state);
    bl_msg_free(m);
    return rc;
}

int bl_sys_replace_state(bl_pid server, void (*fn)(void **state, void *arg), void *arg,
                         int64_t timeout_ms)
{
    if (!fn) return -EINVAL;
    sys_req q = {.op = SYS_REPLACE, .fn = fn, .arg = arg};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    bl_msg_free(m);
    return rc;
}

int bl_sys_get_status(bl_pid server, char *buf, size_t len, int64_t timeout_ms)
{
    if (!buf || !len) return -EINVAL;
    sys_req q = {.op = SYS_STATUS, .buflen = len - 1};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    if (rc == 0) {
        size_t n = m->len < len ? m->len : len;
        memcpy(buf, m->data, n);
        buf[len - 1] = 0;
        if (n) buf[n - 1] = 0;
    }
    bl_msg_free(m);
    return rc;
}

int bl_sys_trace(bl_pid server, bool on, bl_trace_fn fn, void *arg, int64_t timeout_ms)
{
    sys_req q = {.op = SYS_TRACE, .on = on, .tfn = fn, .arg = arg};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    bl_msg_free(m);
    return rc;
}

int bl_sys_suspend(bl_pid server, int64_t timeout_ms)
{
    sys_req q = {.op = SYS_SUSPEND};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    bl_msg_free(m);
    return rc;
}

int bl_sys_resume(bl_pid server, int64_t timeout_ms)
{
    sys_req q = {.op = SYS_RESUME};
    bl_msg *m;
    int rc = sys_call(server, &q, sizeof q, &m, timeout_ms);
    bl_msg_free(m);
    return rc;
}

/* ---- destinations ---- */

int bl__gs_resolve(const bl_gs_dest *to, bl_pid *pid)
{
    const bl_name *n = &to->name;
    *pid = BL_PID_NONE;
    if (to->pid) {
        if (n->local || n->via || to->node) return -EINVAL;
        *pid = to->pid;
        return 0;
    }
    if (n->local && n->via) return -EINVAL;
    if (n->local) {
        size_t len = strlen(n->local);
        if (!len) return -EINVAL;
        if (len > MAX_NAME) return -ENAMETOOLONG;
        /* {name, node}: another node goes through the distribution, when it runs. */
        if (to->node && strcmp(to->node, BL_NODE_LOCAL) != 0) {
            const bl__gs_remote_ops *ops = remote();
            if (!ops) return -EHOSTUNREACH;
            if (!ops->is_local(to->node)) return 1;
        }
        *pid = bl_whereis(n->local);
    } else if (n->via) {
        if (to->node || !n->via->whereis_name || (n->key_len && !n->key)) return -EINVAL;
        *pid = n->via->whereis_name(n->via_arg, n->key, n->key_len);
    } else {
        return -EINVAL;
    }
    return *pid ? 0 : -ESRCH;
}

int bl_gen_server_call_to(bl_gs_dest to, uint32_t tag, const void *data, size_t len, bl_msg **reply,
                          int64_t timeout_ms)
{
    if (reply) *reply = NULL;
    if (!bl_self()) return -EPERM;
    if (tag >= BL_TAG_SYSTEM || (len && !data) || (timeout_ms < 0 && timeout_ms != BL_INFINITY))
        return -EINVAL;
    bl_pid pid;
    int rc = bl__gs_resolve(&to, &pid);
    if (rc < 0) return rc;
    return bl__gs_request(pid, rc ? &to : NULL, TAG_CALL, BL_REF_NONE, tag, data, len, reply,
                          timeout_ms);
}

int bl_gen_server_cast_to(bl_gs_dest to, uint32_t tag, const void *data, size_t len)
{
    if (tag >= BL_TAG_SYSTEM || (len && !data)) return -EINVAL;
    bl_pid pid;
    int rc = bl__gs_resolve(&to, &pid);
    /* Nobody by that name: a cast succeeds anyway, as to a dead pid. */
    if (rc == -ESRCH) return 0;
    if (rc < 0) return rc;
    return bl__gs_request(pid, rc ? &to : NULL, TAG_CAST, BL_REF_NONE, tag, data, len, NULL, 0);
}

int bl_gen_server_stop_to(bl_gs_dest to, const bl_reason *reason, int64_t timeout_ms)
{
    if (!bl_self()) return -EPERM;
    bl_pid pid;
    int rc = bl__gs_resolve(&to, &pid);
    if (rc == 1) return -EOPNOTSUPP; /* proc_lib:stop on another node: not from a C node */
    return rc ? rc : bl_gen_server_stop(pid, reason, timeout_ms);
}
