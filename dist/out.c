/*
 * dist/out.c - sends to other nodes, and deliveries from them.
 *
 * A send to a remote pid or to {name, node} becomes one BL__TAG_DIST_OUT
 * message to that node's connection process: a bl__dout header, the name,
 * the data, in one envelope stamped with the sender, so messages from one
 * sender to one node keep their order, as Erlang guarantees.  The
 * connection process encodes and writes them (conn.c).  A delivery from
 * the wire is an envelope pushed to the local process with the remote
 * sender in m->from.
 */
#include <errno.h>
#include <string.h>

#include "core/msg.h"
#include "dist/dist.h"
#include "otp/gen_server/gs_dist.h"
#include "proc/otp.h"
#include "proc/proc.h"

/* The slab of the calling thread's scheduler, or none outside one. */
static bl_slab *slab(void)
{
    bl_sched *s = bl__tls_sched;
    return s ? &s->slab : NULL;
}

int bl__dist_out2(int p, const bl__dout *h, const char *name, const void *d1, size_t l1,
                  const void *d2, size_t l2, bool start)
{
    bl_pid conn = bl__dist_peer_current(p);
    if (conn == BL_PID_NONE) {
        if (!start) return -ENOTCONN;
        int rc = bl__dist_peer_conn(p, &conn);
        if (rc < 0) return rc;
    }
    size_t total = sizeof *h + h->name_len + l1 + l2;
    bl_msg *m = bl__msg_alloc(slab(), total);
    if (!m) return -ENOMEM;
    char *at = m->data;
    memcpy(at, h, sizeof *h);
    at += sizeof *h;
    if (h->name_len) memcpy(at, name, h->name_len);
    at += h->name_len;
    if (l1) memcpy(at, d1, l1);
    if (l2) memcpy(at + l1, d2, l2);
    m->from = bl_self();
    m->ref = BL_REF_NONE;
    m->tag = BL__TAG_DIST_OUT;
    int err;
    bl_proc *t = bl__target(conn, &err);
    if (!t || !bl__push(t, conn, m, false)) {
        if (!t) bl__msg_drop(slab(), m);
        return err == -ESRCH ? err : -ENOTCONN;
    }
    bl_proc *self = bl__self();
    if (self) bl__charge(self, 1);
    return 0;
}

int bl__dist_out(int p, const bl__dout *h, const char *name, const void *data, size_t len)
{
    int rc = bl__dist_out2(p, h, name, data, len, NULL, 0, true);
    /* The connection went down just now: dropped, as Erlang drops it. */
    return rc == -ENOTCONN ? 0 : rc;
}

void bl__dist_deliver(bl_pid to, bl_pid from, uint32_t tag, const void *data, size_t len)
{
    bl__dist_deliver_ex(to, from, tag, BL_REF_NONE, 0, data, len);
}

void bl__dist_deliver_ex(bl_pid to, bl_pid from, uint32_t tag, bl_ref ref, uint32_t mflags,
                         const void *data, size_t len)
{
    int err;
    bl_proc *t = bl__target(to, &err);
    if (!t) return; /* no such process: dropped, as in Erlang */
    bl_msg *m = bl__msg_alloc(slab(), len);
    if (!m) {
        bl__dist_log("out of memory delivering %zu bytes: message dropped", len);
        return;
    }
    if (len) memcpy(m->data, data, len);
    m->from = from;
    m->ref = ref;
    m->tag = tag;
    m->flags |= mflags;
    bl__push(t, to, m, false);
}

int bl__dist_remote_send(bl_pid to, uint32_t tag, bl_ref ref, const void *data, size_t len)
{
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -EINVAL;
    int p = bl__dist_pid_peer(to);
    if (p < 0) return p;
    if (tag == BL__GS_TAG_REPLY) {
        /* A gen_server's reply to a caller on that node: over the connection
         * the call came by, if it is still there (else the caller has heard
         * noconnection). */
        bl__dout h = {.kind = BL__DOUT_REPLY, .to = to, .ref = ref};
        int rc = bl__dist_out2(p, &h, NULL, data, len, NULL, 0, false);
        return rc == -ENOTCONN ? 0 : rc;
    }
    /* Other system messages mean nothing to another node. */
    if (tag >= BL_TAG_SYSTEM) return -EOPNOTSUPP;
    bl__dout h = {.kind = BL__DOUT_PLAIN, .tag = tag, .to = to, .ref = ref};
    return bl__dist_out(p, &h, NULL, data, len);
}

/* The peer of node for a send to {name, node}: >= 0, 1 for this node, or -errno. */
static int node_peer(const char *node, int *p)
{
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) {
        if (node && strcmp(node, "nonode@nohost") != 0) return -ENOTCONN;
        return 1;
    }
    if (!node || strcmp(node, bl__dist.name) == 0) return 1;
    if (!strchr(node, '@')) return -EINVAL;
    *p = bl__dist_peer(node, true);
    return *p < 0 ? *p : 0;
}

/* node_peer for a send to {name, node}, after checking name. */
static int name_peer(const char *name, const char *node, int *p)
{
    size_t nlen = strlen(name);
    if (nlen == 0) return -EINVAL;
    if (nlen > MAXATOMLEN - 1) return -ENAMETOOLONG;
    return node_peer(node, p);
}

int bl_dist_send_name(const char *name, const char *node, uint32_t tag, const void *data,
                      size_t len)
{
    if (!name || tag >= BL_TAG_SYSTEM || (len && !data)) return -EINVAL;
    int p = -1;
    int rc = name_peer(name, node, &p);
    if (rc < 0) return rc;
    if (rc == 1) return bl_send_name(name, tag, data, len);
    size_t nlen = strlen(name);
    bl__dout h = {.kind = BL__DOUT_PLAIN, .tag = tag, .name_len = (uint32_t)nlen};
    return bl__dist_out(p, &h, name, data, len);
}

int bl_dist_send_term(bl_pid to, const void *etf, size_t len)
{
    if (bl__etf_check(etf, len) < 0) return -EINVAL;
    if (bl__pid_node(to) == 0) {
        if (!bl__pid_wellformed(to)) return -EINVAL;
        bl__dist_deliver(to, bl_self(), BL_TAG_DIST_TERM, etf, len);
        return 0;
    }
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    int p = bl__dist_pid_peer(to);
    if (p < 0) return p;
    bl__dout h = {.kind = BL__DOUT_TERM, .to = to};
    return bl__dist_out(p, &h, NULL, etf, len);
}

int bl_dist_send_term_name(const char *name, const char *node, const void *etf, size_t len)
{
    if (!name || bl__etf_check(etf, len) < 0) return -EINVAL;
    int p = -1;
    int rc = name_peer(name, node, &p);
    if (rc < 0) return rc;
    size_t nlen = strlen(name);
    if (rc == 1) {
        bl_pid to = bl_whereis(name);
        if (to != BL_PID_NONE) bl__dist_deliver(to, bl_self(), BL_TAG_DIST_TERM, etf, len);
        return 0;
    }
    bl__dout h = {.kind = BL__DOUT_TERM, .name_len = (uint32_t)nlen};
    return bl__dist_out(p, &h, name, etf, len);
}
