/*
 * otp/gen_server/request.c - asynchronous requests (Erlang's
 * gen_server:send_request and its answers) and request id collections.
 *
 * A request is made as Erlang makes it: the requester monitors the server
 * with the monitor's reference as an alias of its own that lasts as long
 * as the monitor (bl_monitor_ex, BL_MONITOR_ALIAS_DEMONITOR), and sends a
 * CALL tagged with that reference.  The server answers it as any call,
 * with an alias reply (TAG_REPLY, BL_MSG_ALIAS) to the reference.  The
 * answer is the first of, in the requester's mailbox: the reply, the
 * server's DOWN (under the same reference; its delivery ends the alias),
 * or the requester's own NOPROC note when nobody held the name.
 *
 * Taking the answer ends the request: demonitor with flush ends the
 * monitor and the alias and takes out a DOWN already queued.  Giving a
 * request up (receive_response's timeout) is the same demonitor: a reply
 * still on its way is dropped by the requester's drain and never reaches
 * the mailbox.  A request's monitor and alias live in the requester's
 * process record, so a requester that dies takes them with it.
 *
 * All of it runs in the requester's process; the server, and whoever
 * answers for it, only send.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "beamline.h"
#include "beamline/gen_server.h"
#include "core/proc.h"
#include "otp/gen_server/gs_int.h"
#include "proc/otp.h"

static bool valid_timeout(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

/* True when m answers id (a reply to its alias, its DOWN or its noproc note). */
static bool answers(const bl_msg *m, const bl_gs_reqid *id)
{
    if (m->tag == TAG_REPLY) return id->ref && m->ref == id->ref;
    return (m->tag == BL_TAG_DOWN || m->tag == TAG_NOPROC) && id->mon && m->ref == id->mon;
}

/* Only these tags can answer a request: a collection turns the rest away in O(1). */
static bool maybe_answer(const bl_msg *m)
{
    return m->tag == TAG_REPLY || m->tag == BL_TAG_DOWN || m->tag == TAG_NOPROC;
}

static bool match_id(const bl_msg *m, void *arg)
{
    return answers(m, arg);
}

static bool match_reply(const bl_msg *m, void *arg)
{
    return m->tag == TAG_REPLY && m->ref == *(const bl_ref *)arg;
}

/*
 * Ends the monitor and the alias of id (a request that reached a server):
 * a reply still on its way is dropped, a DOWN already queued is taken out.
 * A request to the requester itself has a plain alias and no monitor.
 */
static void end_request(const bl_gs_reqid *id)
{
    if (id->server == bl_self())
        bl_unalias(id->ref);
    else
        bl_demonitor(id->mon, BL_DEMONITOR_FLUSH);
}

int bl_gen_server_send_request(bl_gs_dest to, uint32_t tag, const void *data, size_t len,
                               bl_gs_reqid *id)
{
    if (id) *id = (bl_gs_reqid){0};
    bl_pid me = bl_self();
    if (!me) return -EPERM;
    if (!id || tag >= BL_TAG_SYSTEM || (len && !data)) return -EINVAL;
    bl_pid pid;
    int rc = bl__gs_resolve(&to, &pid);
    if (rc == -ESRCH) {
        /* Nobody holds the name: the answer is noproc, queued now and
         * found like any other answer (Erlang sends itself a DOWN). */
        bl_ref note = bl_make_ref();
        rc = bl__send_ex(me, TAG_NOPROC, note, NULL, 0, 0);
        if (rc == 0) id->mon = note;
        return rc;
    }
    if (rc == 1 || (rc == 0 && bl__pid_node(pid))) return -EOPNOTSUPP; /* another node */
    if (rc) return rc;
    /* The alias lives as long as the monitor (Erlang's [{alias, demonitor}]).
     * A process cannot monitor itself: a request to itself (answered when
     * it handles its own CALL) gets a plain alias instead. */
    bl_ref ref;
    rc = pid == me ? bl_alias(BL_ALIAS_EXPLICIT, &ref)
                   : bl_monitor_ex(pid, BL_MONITOR_ALIAS_DEMONITOR, &ref);
    if (rc) return rc;
    bl_gs_reqid made = {.mon = ref, .ref = ref, .server = pid};
    if ((rc = bl__gs_request(pid, NULL, TAG_CALL, ref, tag, data, len, NULL, 0))) {
        end_request(&made);
        return rc;
    }
    *id = made;
    return 0;
}

/*
 * m answers id: ends the request and returns the answer's result (0 for a
 * reply, -ECONNRESET for the server's DOWN, -ESRCH for noproc).  m stays
 * the caller's.  in_order: m was the first answer in the mailbox.
 */
static int settle(const bl_gs_reqid *id, bl_msg *m, bool in_order)
{
    if (m->tag == TAG_REPLY) {
        end_request(id);
        return 0;
    }
    if (m->tag == TAG_NOPROC) return -ESRCH;
    /* The DOWN ended the monitor and the alias as it was delivered, so a
     * reply can only be queued before it, where a search in mailbox order
     * finds it first.  A DOWN handed to check_response out of order may
     * have such a reply ahead of it: take it out (rare: the server died). */
    if (!in_order) {
        bl_msg *r = NULL;
        bl_ref ref = id->ref;
        if (ref && bl_recv(&r, match_reply, &ref, 0, 0) == 0) bl_msg_free(r);
    }
    bl_reason why;
    return bl_msg_reason(m, &why) == 0 && why.kind == BL_NOPROC ? -ESRCH : -ECONNRESET;
}

/* Hands m to *reply when the result carries a message (a reply, a DOWN); frees it otherwise. */
static int deliver(int rc, bl_msg *m, bl_msg **reply)
{
    if ((rc == 0 || rc == -ECONNRESET) && reply)
        *reply = m;
    else
        bl_msg_free(m);
    return rc;
}

/* Gives id up: no answer to it can come any more (one already queued stays). */
static void give_up(const bl_gs_reqid *id)
{
    if (id->ref) end_request(id); /* a noproc note has no monitor or alias */
}

static int check_args(const bl_gs_reqid *id, bl_msg **reply, int64_t timeout_ms)
{
    if (reply) *reply = NULL;
    if (!bl_self()) return -EPERM;
    if (!id || !id->mon || !valid_timeout(timeout_ms)) return -EINVAL;
    return 0;
}

int bl_gen_server_wait_response(bl_gs_reqid *id, bl_msg **reply, int64_t timeout_ms)
{
    int rc = check_args(id, reply, timeout_ms);
    if (rc) return rc;
    bl_msg *m = NULL;
    if ((rc = bl_recv(&m, match_id, id, timeout_ms, 0))) return rc; /* still pending */
    rc = settle(id, m, true);
    *id = (bl_gs_reqid){0};
    return deliver(rc, m, reply);
}

int bl_gen_server_receive_response(bl_gs_reqid *id, bl_msg **reply, int64_t timeout_ms)
{
    int rc = check_args(id, reply, timeout_ms);
    if (rc) return rc;
    bl_msg *m = NULL;
    rc = bl_recv(&m, match_id, id, timeout_ms, 0);
    /* On a timeout the receive has looked at the whole mailbox and nothing
     * was taken in since: no answer is queued, and giving up is all.  A
     * reply that comes later is dropped before it reaches the mailbox. */
    if (rc == 0)
        rc = settle(id, m, true);
    else
        give_up(id);
    *id = (bl_gs_reqid){0};
    return deliver(rc, m, reply);
}

int bl_gen_server_check_response(bl_msg *m, bl_gs_reqid *id)
{
    if (!bl_self()) return -EPERM;
    if (!m || !id || !id->mon) return -EINVAL;
    if (!answers(m, id)) return BL_GS_NO_REPLY;
    int rc = settle(id, m, false);
    *id = (bl_gs_reqid){0};
    return rc;
}

/* ---- collections ---- */

void bl_gs_reqids_init(bl_gs_reqids *c)
{
    if (c) *c = (bl_gs_reqids){0};
}

size_t bl_gs_reqids_size(const bl_gs_reqids *c)
{
    return c ? c->n : 0;
}

/* Room in c for one more request.  0 or -ENOMEM. */
static int reserve(bl_gs_reqids *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        bl_gs_reqid_label *v = realloc(c->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    return 0;
}

static long find(const bl_gs_reqids *c, const bl_gs_reqid *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].id.mon == id->mon) return (long)i;
    return -1;
}

int bl_gs_reqids_add(bl_gs_reqids *c, bl_gs_reqid id, uint64_t label)
{
    if (!c || !id.mon) return -EINVAL;
    if (find(c, &id) >= 0) return -EEXIST;
    if (reserve(c)) return -ENOMEM;
    c->v[c->n++] = (bl_gs_reqid_label){.id = id, .label = label};
    return 0;
}

size_t bl_gs_reqids_to_list(const bl_gs_reqids *c, bl_gs_reqid_label *out, size_t max)
{
    if (!c) return 0;
    if (out) memcpy(out, c->v, (c->n < max ? c->n : max) * sizeof *out);
    return c->n;
}

int bl_gs_reqids_send(bl_gs_reqids *c, uint64_t label, bl_gs_dest to, uint32_t tag,
                      const void *data, size_t len)
{
    if (!c) return -EINVAL;
    /* Room first, so that a request once sent is never lost for memory. */
    if (reserve(c)) return -ENOMEM;
    bl_gs_reqid id;
    int rc = bl_gen_server_send_request(to, tag, data, len, &id);
    if (rc) return rc;
    c->v[c->n++] = (bl_gs_reqid_label){.id = id, .label = label};
    return 0;
}

typedef struct col_match {
    const bl_gs_reqids *c;
    size_t at; /* the entry the last match answered */
} col_match;

static bool match_col(const bl_msg *m, void *arg)
{
    col_match *cm = arg;
    if (!maybe_answer(m)) return false;
    for (size_t i = 0; i < cm->c->n; i++)
        if (answers(m, &cm->c->v[i].id)) {
            cm->at = i;
            return true;
        }
    return false;
}

/* Settles entry `at` with its answer m; reports it in *which and deletes it if asked. */
static int settle_at(bl_gs_reqids *c, size_t at, bl_msg *m, bool in_order, bool del,
                     bl_gs_reqid_label *which)
{
    bl_gs_reqid_label e = c->v[at];
    int rc = settle(&e.id, m, in_order);
    if (which) *which = e;
    if (del) {
        memmove(&c->v[at], &c->v[at + 1], (c->n - at - 1) * sizeof *c->v);
        c->n--;
    }
    return rc;
}

static int col_args(const bl_gs_reqids *c, bl_msg **reply, bl_gs_reqid_label *which,
                    int64_t timeout_ms)
{
    if (reply) *reply = NULL;
    if (which) *which = (bl_gs_reqid_label){0};
    if (!bl_self()) return -EPERM;
    if (!c || !valid_timeout(timeout_ms)) return -EINVAL;
    return c->n ? 0 : BL_GS_NO_REQUEST;
}

int bl_gs_reqids_wait(bl_gs_reqids *c, bool del, bl_msg **reply, bl_gs_reqid_label *which,
                      int64_t timeout_ms)
{
    int rc = col_args(c, reply, which, timeout_ms);
    if (rc) return rc;
    col_match cm = {.c = c};
    bl_msg *m = NULL;
    if ((rc = bl_recv(&m, match_col, &cm, timeout_ms, 0))) return rc; /* all still pending */
    rc = settle_at(c, cm.at, m, true, del, which);
    return deliver(rc, m, reply);
}

/*
 * Gives up every request of c (on those answered already, kept with del
 * false, ending them again does nothing) and empties c.  searched: a
 * receive just found no answer to any of them in the mailbox, so none is
 * queued; otherwise the answers already queued are taken out, once the
 * monitors and aliases are gone and no more can come.
 */
static void give_up_all(bl_gs_reqids *c, bool searched)
{
    for (size_t i = 0; i < c->n; i++) give_up(&c->v[i].id);
    if (!searched) {
        col_match cm = {.c = c};
        bl_msg *m = NULL;
        while (bl_recv(&m, match_col, &cm, 0, 0) == 0) bl_msg_free(m);
    }
    c->n = 0;
}

int bl_gs_reqids_receive(bl_gs_reqids *c, bool del, bl_msg **reply, bl_gs_reqid_label *which,
                         int64_t timeout_ms)
{
    int rc = col_args(c, reply, which, timeout_ms);
    if (rc) return rc;
    col_match cm = {.c = c};
    bl_msg *m = NULL;
    if ((rc = bl_recv(&m, match_col, &cm, timeout_ms, 0))) {
        give_up_all(c, true);
        return rc;
    }
    rc = settle_at(c, cm.at, m, true, del, which);
    return deliver(rc, m, reply);
}

int bl_gs_reqids_check(bl_gs_reqids *c, bl_msg *m, bool del, bl_gs_reqid_label *which)
{
    int rc = col_args(c, NULL, which, 0);
    if (rc) return rc;
    if (!m) return -EINVAL;
    col_match cm = {.c = c};
    if (!match_col(m, &cm)) return BL_GS_NO_REPLY;
    return settle_at(c, cm.at, m, false, del, which);
}

void bl_gs_reqids_free(bl_gs_reqids *c)
{
    if (!c) return;
    if (bl_self()) give_up_all(c, false);
    free(c->v);
    *c = (bl_gs_reqids){0};
}
