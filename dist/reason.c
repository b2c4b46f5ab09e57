/*
 * dist/reason.c - exit reasons as Erlang terms, both ways, without loss.
 *
 * The table (also in beamline/dist.h):
 *
 *   Beamline reason                          Erlang term
 *   normal, kill, killed, shutdown, noproc,  the atom of that name
 *   timeout, stack_overflow, noconnection
 *     (code 0, no detail)
 *   shutdown, code 0, detail D               {shutdown, <<D>>}
 *   shutdown, code TERM, detail = term T     {shutdown, T}
 *   custom c (c != TERM), no detail          {beamline, c}
 *   custom c (c != TERM), detail D           {beamline, c, <<D>>}
 *   custom, code TERM, detail = term T       T (any term no other row matches)
 *   anything else                            {'$bl_reason', Kind, Code, <<D>>}
 *
 * TERM is BL_DIST_REASON_TERM, and "term T" means a detail that is one
 * well-formed external-format term (131 first).  Decoding takes the first
 * row that matches and accepts a term only if encoding its result gives it
 * back: {shutdown, <<>>} or {beamline, TERM} are not what the rows make, so
 * they fall to the last-but-one row (custom TERM with the whole term), as
 * does every term the table does not name.  Hence both round trips are the
 * identity; a term's detail holds the bytes the sender encoded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static const char *const atoms[] = {
    [BL_NORMAL] = "normal",
    [BL_KILL] = "kill",
    [BL_KILLED] = "killed",
    [BL_SHUTDOWN] = "shutdown",
    [BL_NOPROC] = "noproc",
    [BL_TIMEOUT] = "timeout",
    [BL_STACK_OVERFLOW] = "stack_overflow",
    [BL_CUSTOM] = NULL,
    [BL_NOCONNECTION] = "noconnection",
};
#define NKINDS ((int)(sizeof atoms / sizeof atoms[0]))

enum form { F_ATOM, F_SHUT_BIN, F_SHUT_TERM, F_CUSTOM, F_CUSTOM_BIN, F_TERM, F_GENERIC };

/* Reasons inside reasons' details are looked into this deep at most. */
#define MAX_DEPTH 8

static bool decode_row(const char *buf, int start, int end, bl_reason *out, void **scratch,
                       int *err, int depth);

static bool detail_is_term(const bl_reason *r)
{
    return r->detail_len && bl__etf_check(r->detail, r->detail_len) == 0;
}

/*
 * The row of the table r is written with.  A term detail is written as the
 * term only when decoding would give r back: {shutdown, T} with T no
 * binary with bytes, and for custom TERM a term that no other row reads.
 */
static enum form form_at(const bl_reason *r, int depth)
{
    const uint8_t *d = r->detail;
    switch (r->kind) {
    case BL_SHUTDOWN:
        if (r->code == 0) return r->detail_len ? F_SHUT_BIN : F_ATOM;
        if (r->code != BL_DIST_REASON_TERM || !detail_is_term(r)) return F_GENERIC;
        if (d[1] == ERL_BINARY_EXT && (d[2] | d[3] | d[4] | d[5])) return F_GENERIC;
        return F_SHUT_TERM;
    case BL_CUSTOM: {
        if (r->code != BL_DIST_REASON_TERM) return r->detail_len ? F_CUSTOM_BIN : F_CUSTOM;
        if (!detail_is_term(r) || depth >= MAX_DEPTH) return F_GENERIC;
        bl_reason row;
        void *s = NULL;
        int err = 0;
        bool is_row = decode_row(r->detail, 1, (int)r->detail_len, &row, &s, &err, depth + 1);
        free(s);
        return is_row ? F_GENERIC : F_TERM;
    }
    default:
        return r->code == 0 && r->detail_len == 0 ? F_ATOM : F_GENERIC;
    }
}

int bl_dist_x_encode_reason(ei_x_buff *x, const bl_reason *r)
{
    if (!x || !r || (unsigned)r->kind >= (unsigned)NKINDS || (r->detail_len && !r->detail))
        return -EINVAL;
    const char *d = r->detail;
    long dl = (long)r->detail_len;
    int rc;
    switch (form_at(r, 0)) {
    case F_ATOM:
        rc = ei_x_encode_atom(x, atoms[r->kind]);
        break;
    case F_SHUT_BIN:
        rc = ei_x_encode_tuple_header(x, 2) | ei_x_encode_atom(x, "shutdown") |
             ei_x_encode_binary(x, d, dl);
        break;
    case F_SHUT_TERM: /* the term without its version byte */
        rc = ei_x_encode_tuple_header(x, 2) | ei_x_encode_atom(x, "shutdown") |
             ei_x_append_buf(x, d + 1, (int)dl - 1);
        break;
    case F_CUSTOM:
        rc = ei_x_encode_tuple_header(x, 2) | ei_x_encode_atom(x, "beamline") |
             ei_x_encode_long(x, r->code);
        break;
    case F_CUSTOM_BIN:
        rc = ei_x_encode_tuple_header(x, 3) | ei_x_encode_atom(x, "beamline") |
             ei_x_encode_long(x, r->code) | ei_x_encode_binary(x, d, dl);
        break;
    case F_TERM:
        rc = ei_x_append_buf(x, d + 1, (int)dl - 1);
        break;
    default:
        rc = ei_x_encode_tuple_header(x, 4) | ei_x_encode_atom(x, "$bl_reason") |
             ei_x_encode_long(x, r->kind) | ei_x_encode_long(x, r->code) |
             ei_x_encode_binary(x, dl ? d : "", dl);
        break;
    }
    return rc ? -ENOMEM : 0;
}

/* buf[from..to) as a term of its own (131 first), in a fresh *scratch. */
static int as_term(const char *buf, int from, int to, void **scratch, bl_reason *out)
{
    char *t = malloc((size_t)(to - from) + 1);
    if (!t) return -ENOMEM;
    t[0] = (char)131;
    memcpy(t + 1, buf + from, (size_t)(to - from));
    *scratch = t;
    out->detail = t;
    out->detail_len = (size_t)(to - from) + 1;
    return 0;
}

/* The binary at buf[*i] (moving past it): its bytes, or NULL when it is no binary. */
static const char *binary_at(const char *buf, int *i, size_t *len)
{
    int type, size;
    if (ei_get_type(buf, i, &type, &size) < 0 || type != ERL_BINARY_EXT) return NULL;
    const char *p = buf + *i + 5;
    *len = (size_t)size;
    *i += 5 + size;
    return p;
}

/* An int32 at buf[*i] other than TERM (moving past it). */
static bool code_at(const char *buf, int *i, int32_t *code)
{
    long v;
    if (ei_decode_long(buf, i, &v) < 0 || v < INT32_MIN || v > INT32_MAX) return false;
    *code = (int32_t)v;
    return v != BL_DIST_REASON_TERM;
}

/*
 * The rows of the table other than the fallback: true with *out set when
 * the term at `start` (ending at `end`) is one of them, as encoding makes it.
 */
static bool decode_row(const char *buf, int start, int end, bl_reason *out, void **scratch,
                       int *err, int depth)
{
    char atom[MAXATOMLEN_UTF8];
    int i = start, arity;
    *out = (bl_reason){0};
    if (ei_decode_atom(buf, &i, atom) == 0) {
        for (int k = 0; k < NKINDS; k++) {
            if (atoms[k] && strcmp(atoms[k], atom) == 0) {
                out->kind = (bl_reason_kind)k;
                return true;
            }
        }
        return false;
    }
    i = start;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 2 || arity > 4 ||
        ei_decode_atom(buf, &i, atom) < 0)
        return false;
    size_t dl = 0;
    const char *d;
    if (arity == 2 && strcmp(atom, "shutdown") == 0) {
        out->kind = BL_SHUTDOWN;
        int j = i;
        if ((d = binary_at(buf, &j, &dl)) && dl) {
            out->detail = d;
            out->detail_len = dl;
            return true;
        }
        out->code = BL_DIST_REASON_TERM;
        *err = as_term(buf, i, end, scratch, out);
        return true;
    }
    if (strcmp(atom, "beamline") == 0 && arity <= 3) {
        out->kind = BL_CUSTOM;
        if (!code_at(buf, &i, &out->code)) return false;
        if (arity == 2) return true;
        if (!(d = binary_at(buf, &i, &dl)) || !dl) return false;
        out->detail = d;
        out->detail_len = dl;
        return true;
    }
    if (strcmp(atom, "$bl_reason") == 0 && arity == 4) {
        long kind, code;
        if (ei_decode_long(buf, &i, &kind) < 0 || kind < 0 || kind >= NKINDS ||
            ei_decode_long(buf, &i, &code) < 0 || code < INT32_MIN || code > INT32_MAX ||
            !(d = binary_at(buf, &i, &dl)))
            return false;
        *out = (bl_reason){(bl_reason_kind)kind, (int32_t)code, dl ? d : NULL, dl};
        return form_at(out, depth) == F_GENERIC;
    }
    return false;
}

int bl_dist_decode_reason(const void *buf, size_t len, int *index, bl_reason *out, void **scratch)
{
    if (!buf || !index || !out || !scratch || *index < 0) return -EINVAL;
    *scratch = NULL;
    size_t pos = (size_t)*index;
    if (bl__etf_skip(buf, len, &pos) < 0) return -EBADMSG;
    const char *b = buf;
    int start = *index, end = (int)pos, err = 0;
    if (!decode_row(b, start, end, out, scratch, &err, 0)) {
        /* Any other term: custom TERM, the whole term its detail. */
        *out = (bl_reason){.kind = BL_CUSTOM, .code = BL_DIST_REASON_TERM};
        err = as_term(b, start, end, scratch, out);
    }
    if (err) return err;
    *index = end;
    return 0;
}
