/*
 * dist/gs.c - gen_server calls and casts across nodes.
 *
 * Erlang's gen_server speaks in plain messages: a call is
 * {'$gen_call', {From, Tag}, Request} after a monitor of the server, a cast
 * {'$gen_cast', Request}, a reply {Tag, Reply} to From.  Beamline's own
 * gen_server speaks in tagged envelopes (BL__GS_TAG_*, gs_dist.h).  The
 * connection process translates between the two (beamline/dist.h says how
 * terms and bytes map):
 *   - an incoming '$gen_call' becomes a CALL envelope from the remote
 *     caller under a local reference: the one of the caller's monitor of
 *     the server when its Tag names it (Erlang's [alias | Mref]), so the
 *     server's reply ends that monitor as a local call's does; the Tag is
 *     kept with the connection's entry for that reference until the reply
 *     goes out (or the caller gives up: its demonitor);
 *   - a Beamline caller's request goes out with Tag = the wire reference
 *     made from its monitor's (ctl.c), so the reply {Tag, Reply} names the
 *     local call by itself and arrives as an alias message: dropped unseen
 *     when the call has ended (a timeout), as in Erlang.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "otp/gen_server/gs_dist.h"
#include "proc/otp.h"
#include "proc/proc.h"

/* ---- the hook otp/gen_server calls ---- */

static bool is_local(const char *node)
{
    return atomic_load_explicit(&bl__dist.running, memory_order_acquire) &&
           strcmp(node, bl__dist.name) == 0;
}

static int gs_send(bl_pid pid, const char *name, const char *node, uint32_t wire,
                   const void *payload, size_t plen, bl_ref *ref)
{
    if (plen < BL__GS_HDR) return -EINVAL;
    bool running = atomic_load_explicit(&bl__dist.running, memory_order_acquire);
    int p;
    if (pid) {
        if (!running) return -EINVAL;
        p = bl__dist_pid_peer(pid);
    } else {
        if (!running) return -EHOSTUNREACH;
        if (strlen(name) > MAXATOMLEN - 1) return -ENAMETOOLONG;
        if (!strchr(node, '@')) return -EINVAL;
        p = bl__dist_peer(node, true);
    }
    if (p < 0) return p;
    uint32_t tag;
    memcpy(&tag, payload, sizeof tag);
    const char *data = (const char *)payload + BL__GS_HDR;
    size_t len = plen - BL__GS_HDR;
    bl__dout h = {.kind = wire == BL__GS_TAG_CALL ? BL__DOUT_CALL : BL__DOUT_CAST,
                  .tag = tag,
                  .to = pid,
                  .name_len = pid ? 0 : (uint32_t)strlen(name)};
    if (wire != BL__GS_TAG_CALL) return bl__dist_out(p, &h, name, data, len);
    /* The monitor first: its request travels before the call's, and a
     * node out of reach answers it with noconnection. */
    bl_ref r;
    int rc = pid ? bl_monitor(pid, &r) : bl_dist_monitor_name(name, node, &r);
    if (rc < 0) return rc;
    bl__alias_set(r);
    h.ref = r;
    rc = bl__dist_out(p, &h, name, data, len);
    if (rc < 0) {
        bl_demonitor(r, BL_DEMONITOR_FLUSH);
        bl__alias_set(BL_REF_NONE);
        return rc;
    }
    *ref = r;
    return 0;
}

const bl__gs_remote_ops bl__dist_gs_ops = {.is_local = is_local, .send = gs_send};

/* ---- outgoing ---- */

/* data as a request or reply term: the term itself, or {'$bl', [Tag,] <<data>>}. */
static bool x_payload(ei_x_buff *x, const char *data, size_t len, const uint32_t *tag)
{
    if (bl__etf_check(data, len) == 0) return ei_x_append_buf(x, data + 1, (int)len - 1) == 0;
    return ei_x_encode_tuple_header(x, tag ? 3 : 2) == 0 && ei_x_encode_atom(x, "$bl") == 0 &&
           (!tag || ei_x_encode_long(x, (long)*tag) == 0) &&
           ei_x_encode_binary(x, data, (long)len) == 0;
}

bool bl__dgs_waiting(bl__dctl *t, bl_ref ref)
{
    bl__dmon *m = bl__dctl_call(t, ref);
    return m && m->tag;
}

bool bl__dgs_encode(bl__dctl *t, ei_x_buff *x, const bl__dout *h, bl_pid from, const char *data,
                    size_t len)
{
    if (ei_x_encode_version(x) < 0) return false;
    switch (h->kind) {
    case BL__DOUT_CALL: {
        erlang_ref e;
        bl__dref_out(h->ref, &e);
        return ei_x_encode_tuple_header(x, 3) == 0 && ei_x_encode_atom(x, "$gen_call") == 0 &&
               ei_x_encode_tuple_header(x, 2) == 0 && bl__dx_pid(x, from, BL_PID_NONE) &&
               ei_x_encode_ref(x, &e) == 0 && x_payload(x, data, len, &h->tag);
    }
    case BL__DOUT_CAST:
        return ei_x_encode_tuple_header(x, 2) == 0 && ei_x_encode_atom(x, "$gen_cast") == 0 &&
               x_payload(x, data, len, &h->tag);
    case BL__DOUT_REPLY: {
        bl__dmon *m = bl__dctl_call(t, h->ref);
        if (!m || !m->tag) return false;
        bool ok = ei_x_encode_tuple_header(x, 2) == 0 &&
                  ei_x_append_buf(x, m->tag, (int)m->tag_len) == 0 && x_payload(x, data, len, NULL);
        /* Answered: the entry stays only for the monitor that may still be on. */
        free(m->tag);
        m->tag = NULL;
        if (!m->monitor) bl__dctl_done(t, m);
        return ok;
    }
    default:
        return false;
    }
}

/* ---- incoming ---- */

/* The monitor reference in a call's Tag: Mref, or [alias | Mref]. */
static bool tag_ref(const char *b, int i, erlang_ref *e)
{
    int type, size, n;
    char atom[MAXATOMLEN_UTF8];
    if (ei_get_type(b, &i, &type, &size) < 0) return false;
    if (type == ERL_LIST_EXT) {
        if (ei_decode_list_header(b, &i, &n) < 0 || n != 1 || ei_decode_atom(b, &i, atom) < 0 ||
            strcmp(atom, "alias") != 0)
            return false;
    }
    return ei_decode_ref(b, &i, e) == 0;
}

/*
 * A request term at b[at..len) as the envelope's payload: the header with
 * the tag, then the bytes ({'$bl', Tag, Bin} from a Beamline caller), or
 * BL_TAG_DIST_TERM and the term.  A fresh buffer (*n bytes), or NULL.
 */
static char *request_payload(const char *b, int at, size_t len, size_t *n)
{
    int i = at, arity, type, size;
    char atom[MAXATOMLEN_UTF8];
    long tag;
    uint32_t hdr[BL__GS_HDR / 4] = {BL_TAG_DIST_TERM};
    const char *body = b + at;
    size_t blen = len - (size_t)at;
    bool raw = false;
    if (ei_decode_tuple_header(b, &i, &arity) == 0 && arity == 3 &&
        ei_decode_atom(b, &i, atom) == 0 && strcmp(atom, "$bl") == 0 &&
        ei_decode_long(b, &i, &tag) == 0 && tag >= 0 && tag < (long)BL_TAG_SYSTEM &&
        ei_get_type(b, &i, &type, &size) == 0 && type == ERL_BINARY_EXT &&
        (size_t)i + 5 + (size_t)size == len) {
        hdr[0] = (uint32_t)tag;
        body = b + i + 5;
        blen = (size_t)size;
        raw = true;
    }
    char *p = malloc(BL__GS_HDR + blen + 1);
    if (!p) return NULL;
    memcpy(p, hdr, sizeof hdr);
    if (raw) {
        if (blen) memcpy(p + BL__GS_HDR, body, blen);
        *n = BL__GS_HDR + blen;
    } else {
        p[BL__GS_HDR] = (char)131;
        memcpy(p + BL__GS_HDR + 1, body, blen);
        *n = BL__GS_HDR + blen + 1;
    }
    return p;
}

/* {'$gen_call', {From, Tag}, Request}: a CALL envelope, the Tag kept for the reply. */
static bool incoming_call(bl__dctl *t, bl_pid to, const char *b, int i, size_t len)
{
    int arity;
    erlang_pid ep;
    bl_pid from;
    if (ei_decode_tuple_header(b, &i, &arity) < 0 || arity != 2 || ei_decode_pid(b, &i, &ep) < 0 ||
        bl__dist_pid_in(&ep, &from) < 0 || !bl__pid_node(from))
        return false;
    int tag_at = i;
    if (ei_skip_term(b, &i) < 0) return false;
    int tag_end = i;
    erlang_ref e;
    bl__dmon *m = tag_ref(b, tag_at, &e) ? bl__dctl_in_mon(t, from, &e) : NULL;
    if (m && (m->tag || m->local != to)) m = NULL; /* one call per monitor */
    if (!m && (m = bl__dctl_new_in(t))) {
        *m = (bl__dmon){.local = to, .remote = from, .ref = bl_make_ref()};
        if (tag_ref(b, tag_at, &e)) {
            m->eref.len = (uint32_t)(e.len > 5 ? 5 : e.len);
            memcpy(m->eref.n, e.n, sizeof m->eref.n);
            m->eref.creation = e.creation;
        }
    }
    size_t n;
    char *req = m ? request_payload(b, i, len, &n) : NULL;
    char *tag = req ? malloc((size_t)(tag_end - tag_at)) : NULL;
    if (!tag) {
        free(req);
        if (m && !m->monitor) bl__dctl_done(t, m);
        bl__dist_log("out of memory for a call from another node: dropped");
        return true;
    }
    memcpy(tag, b + tag_at, (size_t)(tag_end - tag_at));
    m->tag = tag;
    m->tag_len = (size_t)(tag_end - tag_at);
    bl__dist_deliver_ex(to, from, BL__GS_TAG_CALL, m->ref, 0, req, n);
    free(req);
    return true;
}

bool bl__dgs_deliver(bl__dctl *t, bl_pid to, bl_pid from, const uint8_t *msg, size_t len)
{
    const char *b = (const char *)msg;
    int i = 1, arity, type, size;
    char atom[MAXATOMLEN_UTF8];
    if (ei_decode_tuple_header(b, &i, &arity) < 0) return false;
    int first = i;
    if (arity == 3 && ei_decode_atom(b, &i, atom) == 0 && strcmp(atom, "$gen_call") == 0)
        return incoming_call(t, to, b, i, len);
    i = first;
    if (arity == 2 && ei_decode_atom(b, &i, atom) == 0 && strcmp(atom, "$gen_cast") == 0) {
        size_t n;
        char *req = request_payload(b, i, len, &n);
        if (req) bl__dist_deliver_ex(to, from, BL__GS_TAG_CAST, BL_REF_NONE, 0, req, n);
        free(req);
        return true;
    }
    /* {Ref, Reply} with Ref one of ours: a reply to a call made from here. */
    i = first;
    erlang_ref e;
    bl_ref r;
    if (arity != 2 || ei_get_type(b, &i, &type, &size) < 0 ||
        (type != ERL_NEW_REFERENCE_EXT && type != ERL_NEWER_REFERENCE_EXT) ||
        ei_decode_ref(b, &i, &e) < 0 || (r = bl__dref_in(&e)) == BL_REF_NONE)
        return false;
    /* {'$bl', Bin}: the bytes a Beamline server replied; any other term as it is. */
    int j = i;
    const char *body = b + i;
    size_t blen = len - (size_t)i;
    char *copy = NULL;
    if (ei_decode_tuple_header(b, &j, &arity) == 0 && arity == 2 &&
        ei_decode_atom(b, &j, atom) == 0 && strcmp(atom, "$bl") == 0 &&
        ei_get_type(b, &j, &type, &size) == 0 && type == ERL_BINARY_EXT &&
        (size_t)j + 5 + (size_t)size == len) {
        body = b + j + 5;
        blen = (size_t)size;
    } else if ((copy = malloc(blen + 1))) {
        copy[0] = (char)131;
        memcpy(copy + 1, body, blen);
        body = copy;
        blen++;
    } else {
        return true; /* out of memory: the call times out */
    }
    /* An alias message: dropped unless the call still waits (proc/otp.h). */
    bl__dist_deliver_ex(to, from, BL__GS_TAG_REPLY, r, BL_MSG_ALIAS, body, blen);
    free(copy);
    return true;
}
