/*
 * proc/msgs.c - another process's queued messages, for debugging tools
 * (bl_process_messages, Erlang's process_info(Pid, messages)).
 *
 * Only the owner may walk its private queue, so the list is asked of the
 * process, as bl_process_info is: a BL_SIG_MSGS signal, answered from the
 * target's own context while it handles its signals, in one reply that
 * holds the entries and the payload copies.  Signals are handled in
 * arrival order, so when the request is handled every message that came
 * before it is in the private queue, and nothing that came after is: the
 * answer is the mailbox as of the request.
 */
#include <errno.h>
#include <string.h>

#include "core/msg.h"
#include "proc/proc.h"

#define MSGS_REPLY (BL_TAG_SYSTEM | 4u) /* the answer to BL_SIG_MSGS */

/* The request's payload: how much the asker can take. */
typedef struct msgs_req {
    uint64_t max;    /* entries wanted at most */
    uint64_t buflen; /* payload bytes it has room for */
} msgs_req;

/* The reply's payload: this header, n entries, then `bytes` of payload copies. */
typedef struct msgs_hdr {
    int64_t total;  /* messages queued, or -errno when no answer could be built */
    uint64_t n;     /* entries that follow */
    uint64_t bytes; /* payload bytes after the entries */
} msgs_hdr;

typedef struct msgs_ent {
    bl_pid from;     /* m->from */
    bl_ref ref;      /* m->ref */
    uint64_t len;    /* m->len */
    uint64_t copied; /* payload bytes copied */
    uint64_t off;    /* where, from the start of the payload copies */
    uint32_t tag;    /* m->tag */
    uint32_t pad;    /* zero */
} msgs_ent;

/* Receives entry k of a layout: message m, `copied` bytes of it at offset `at`. */
typedef void (*emit_fn)(void *ctx, uint64_t k, const bl_msg *m, uint64_t copied, uint64_t at);

/*
 * Lays out the first `max` messages of queue q: payloads go one after the
 * other at 16-byte multiples into data (room bytes; NULL to only measure)
 * until one does not fit whole, which is cut; the later ones get none.
 * Calls emit (if not NULL) for each entry.  Returns the bytes of data used;
 * *n gets the number of entries.
 */
static uint64_t layout(const bl_msg *q, uint64_t max, uint64_t room, char *data, emit_fn emit,
                       void *ctx, uint64_t *n)
{
    uint64_t k = 0, used = 0;
    bool full = false;
    for (const bl_msg *m = q; m && k < max; m = m->next, k++) {
        uint64_t at = (used + 15) & ~(uint64_t)15, c = 0;
        if (!full && m->len) {
            if (at < room) c = m->len < room - at ? m->len : room - at;
            if (c < m->len) full = true;
            if (c) {
                if (data) memcpy(data + at, m->data, c);
                used = at + c;
            }
        }
        if (emit) emit(ctx, k, m, c, c ? at : 0);
    }
    *n = k;
    return used;
}

static void emit_wire(void *ctx, uint64_t k, const bl_msg *m, uint64_t copied, uint64_t at)
{
    msgs_ent e = {m->from, m->ref, m->len, copied, at, m->tag, 0};
    memcpy((char *)ctx + k * sizeof e, &e, sizeof e);
}

void bl__msgs_answer(bl_proc *p, const bl_msg *req)
{
    msgs_req rq = {0, 0};
    if (req->len >= sizeof rq) memcpy(&rq, req->data, sizeof rq);
    /* Walk the private queue only: see the top of this file.  No drain
     * here, this runs in the middle of one. */
    uint64_t n;
    uint64_t bytes = layout(p->q_head, rq.max, rq.buflen, NULL, NULL, NULL, &n);
    msgs_hdr h = {(int64_t)p->q_len, n, bytes};
    size_t size = sizeof h + n * sizeof(msgs_ent) + bytes;
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc(s ? &s->slab : NULL, size);
    if (m) {
        char *ents = (char *)m->data + sizeof h;
        layout(p->q_head, rq.max, rq.buflen, ents + n * sizeof(msgs_ent), emit_wire, ents, &n);
    } else {
        /* Say so rather than leave the asker waiting. */
        h = (msgs_hdr){-ENOMEM, 0, 0};
        if (!(m = bl__msg_alloc(s ? &s->slab : NULL, sizeof h))) return;
    }
    memcpy(m->data, &h, sizeof h);
    bl__answer(p, req->from, req->ref, MSGS_REPLY, m);
}

/* Where bl_process_messages puts what it lists. */
typedef struct local_out {
    bl_msg_info *out; /* entries */
    char *buf;        /* payload copies */
} local_out;

static void emit_local(void *ctx, uint64_t k, const bl_msg *m, uint64_t copied, uint64_t at)
{
    local_out *lo = ctx;
    lo->out[k] = (bl_msg_info){m->from,       m->ref, m->tag, m->len, copied ? lo->buf + at : NULL,
                               (size_t)copied};
}

/* Unpacks a reply into out and buf; returns its total. */
static int64_t unpack(const bl_msg *m, bl_msg_info *out, size_t max, char *buf, size_t buflen)
{
    msgs_hdr h;
    if (m->len < sizeof h) return -EPROTO;
    memcpy(&h, m->data, sizeof h);
    if (h.total < 0) return h.total;
    const char *ents = (const char *)m->data + sizeof h;
    if (h.n > max || h.bytes > buflen || m->len != sizeof h + h.n * sizeof(msgs_ent) + h.bytes)
        return -EPROTO;
    if (h.bytes) memcpy(buf, ents + h.n * sizeof(msgs_ent), h.bytes);
    for (uint64_t k = 0; k < h.n; k++) {
        msgs_ent e;
        memcpy(&e, ents + k * sizeof e, sizeof e);
        out[k] = (bl_msg_info){
            e.from, e.ref, e.tag, (size_t)e.len, e.copied ? buf + e.off : NULL, (size_t)e.copied};
    }
    return h.total;
}

int64_t bl_process_messages(bl_pid pid, bl_msg_info *out, size_t max, void *buf, size_t buflen)
{
    if ((max && !out) || (buflen && !buf)) return -EINVAL;
    bl_proc *self = bl__self();
    if (self && pid == bl__proc_pid(self)) {
        /* Our own: everything that has arrived, taken into the queue first. */
        bl__drain(self);
        local_out lo = {out, buf};
        uint64_t n;
        layout(self->q_head, max, buflen, buf, emit_local, &lo, &n);
        return self->q_len;
    }
    if (!self) return bl__proc_lookup(pid) ? -EPERM : -EINVAL;
    int err;
    bl_proc *t = bl__target(pid, &err);
    if (err) return err;
    if (!t) return -ESRCH;
    msgs_req rq = {max, buflen};
    bl_msg *m;
    int rc = bl__ask(self, t, pid, BL_SIG_MSGS, &rq, sizeof rq, MSGS_REPLY, &m);
    if (rc) return rc;
    int64_t total = unpack(m, out, max, buf, buflen);
    bl_msg_free(m);
    return total;
}
