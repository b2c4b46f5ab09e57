/*
 * dist/etf.c - a bounded walk over external-term-format bytes.
 *
 * ei's decoders (ei_decode_*, ei_skip_term) take no length: they trust that
 * the bytes hold a whole term, and read past the buffer otherwise.  Every
 * term that comes off the wire, and every encoded term a process hands to
 * bl_dist_send_term, is walked here first with its bounds; only then does
 * ei decode it.  The walk keeps a count of terms still to skip instead of
 * recursing, so a deeply nested term costs no stack, and it refuses a
 * count that the remaining bytes could not hold (every term takes at least
 * one byte), so a forged length cannot make it loop.  Only a fun's free
 * variables recurse, to a bounded depth.
 *
 * It also reads frames with a distribution header (131, 'D'): their atom
 * cache references (ATOM_CACHE_REF, an index into the header's list) are
 * accepted where an atom may stand, and bl__etf_dist_header rewrites such
 * a frame into the pass-through form the connection decodes, each
 * reference replaced by its atom's text.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

/* External-format tags (erts/emulator/beam/external.h, the same numbers ei.h uses). */
enum {
    T_NEW_FLOAT = 70,
    T_ATOM_CACHE_REF = 82,
    T_BIT_BINARY = 77,
    T_NEW_PID = 88,
    T_NEW_PORT = 89,
    T_NEWER_REFERENCE = 90,
    T_SMALL_INTEGER = 97,
    T_INTEGER = 98,
    T_FLOAT = 99,
    T_ATOM = 100,
    T_REFERENCE = 101,
    T_PORT = 102,
    T_PID = 103,
    T_SMALL_TUPLE = 104,
    T_LARGE_TUPLE = 105,
    T_NIL = 106,
    T_STRING = 107,
    T_LIST = 108,
    T_BINARY = 109,
    T_SMALL_BIG = 110,
    T_LARGE_BIG = 111,
    T_NEW_FUN = 112,
    T_EXPORT = 113,
    T_NEW_REFERENCE = 114,
    T_SMALL_ATOM = 115,
    T_MAP = 116,
    T_ATOM_UTF8 = 118,
    T_SMALL_ATOM_UTF8 = 119,
    T_V4_PORT = 120,
};

/* A frame's references fit here without an allocation (a call or cast takes 3 to 6). */
#define REFS_INLINE 32

/* What a walk of a term after a distribution header notes: where its references are. */
typedef struct refs {
    unsigned n;   /* references the header made: valid indexes are below */
    size_t *at;   /* offsets of the ATOM_CACHE_REF tags, in order: inline, or allocated */
    size_t nat;   /* how many */
    size_t capat; /* room at at */
    size_t inline_at[REFS_INLINE];
    size_t (*fun)[2]; /* each fun's size field offset and end, whose size grows with them */
    size_t nfun;      /* how many */
    size_t capfun;    /* allocated */
} refs;

/* Appends v to a growing array of n elements of size sz: false without memory. */
static bool push(void *arrp, size_t *n, size_t *cap, const void *v, size_t sz)
{
    void **arr = arrp;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void *a = realloc(*arr, c * sz);
        if (!a) return false;
        *arr = a;
        *cap = c;
    }
    memcpy((char *)*arr + *n * sz, v, sz);
    (*n)++;
    return true;
}

/* Appends a reference's offset, moving the inline array to the heap when it is full. */
static bool push_at(refs *r, size_t at)
{
    if (r->nat == r->capat) {
        size_t c = r->capat * 2;
        size_t *a = r->at == r->inline_at ? malloc(c * sizeof *a) : realloc(r->at, c * sizeof *a);
        if (!a) return false;
        if (r->at == r->inline_at) memcpy(a, r->inline_at, sizeof r->inline_at);
        r->at = a;
        r->capat = c;
    }
    r->at[r->nat++] = at;
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Moves *pos by n when n bytes remain; false otherwise. */
static bool take(size_t len, size_t *pos, uint64_t n)
{
    if (n > len - *pos) return false;
    *pos += (size_t)n;
    return true;
}

/*
 * An atom (any of the four atom tags, or after a distribution header
 * (r not NULL) a reference to one of its atoms): also the node of a pid,
 * port or reference.
 */
static bool skip_atom(const uint8_t *b, size_t len, size_t *pos, refs *r)
{
    if (*pos >= len) return false;
    uint8_t tag = b[(*pos)++];
    if (tag == T_ATOM_CACHE_REF && r) {
        size_t at = *pos - 1;
        return *pos < len && b[(*pos)++] < r->n && push_at(r, at);
    }
    if (tag == T_SMALL_ATOM || tag == T_SMALL_ATOM_UTF8) {
        if (*pos >= len) return false;
        return take(len, pos, 1 + (uint64_t)b[*pos]);
    }
    if (tag == T_ATOM || tag == T_ATOM_UTF8) {
        if (len - *pos < 2) return false;
        return take(len, pos, 2 + ((uint64_t)b[*pos] << 8 | b[*pos + 1]));
    }
    return false;
}

/*
 * Skips the head of one term at *pos: its whole body for leaves, only the
 * header for containers, whose elements it adds to *more.
 */
static bool skip_one(const uint8_t *b, size_t len, size_t *pos, uint64_t *more, int depth, refs *r)
{
    if (*pos >= len) return false;
    uint8_t tag = b[(*pos)++];
    size_t left = len - *pos;
    switch (tag) {
    case T_SMALL_INTEGER:
        return take(len, pos, 1);
    case T_INTEGER:
        return take(len, pos, 4);
    case T_FLOAT:
        return take(len, pos, 31);
    case T_NEW_FLOAT:
        return take(len, pos, 8);
    case T_NIL:
        return true;
    case T_ATOM:
    case T_ATOM_UTF8:
    case T_SMALL_ATOM:
    case T_SMALL_ATOM_UTF8:
    case T_ATOM_CACHE_REF:
        (*pos)--;
        return skip_atom(b, len, pos, r);
    case T_STRING:
        return left >= 2 && take(len, pos, 2 + ((uint64_t)b[*pos] << 8 | b[*pos + 1]));
    case T_BINARY:
        return left >= 4 && take(len, pos, 4 + (uint64_t)be32(b + *pos));
    case T_BIT_BINARY:
        return left >= 5 && take(len, pos, 5 + (uint64_t)be32(b + *pos));
    case T_SMALL_BIG:
        return left >= 1 && take(len, pos, 2 + (uint64_t)b[*pos]);
    case T_LARGE_BIG:
        return left >= 4 && take(len, pos, 5 + (uint64_t)be32(b + *pos));
    case T_PID:
        return skip_atom(b, len, pos, r) && take(len, pos, 9);
    case T_NEW_PID:
        return skip_atom(b, len, pos, r) && take(len, pos, 12);
    case T_PORT:
        return skip_atom(b, len, pos, r) && take(len, pos, 5);
    case T_NEW_PORT:
        return skip_atom(b, len, pos, r) && take(len, pos, 8);
    case T_V4_PORT:
        return skip_atom(b, len, pos, r) && take(len, pos, 12);
    case T_REFERENCE:
        return skip_atom(b, len, pos, r) && take(len, pos, 5);
    case T_NEW_REFERENCE:
    case T_NEWER_REFERENCE: {
        if (left < 2) return false;
        uint64_t words = (uint64_t)b[*pos] << 8 | b[*pos + 1];
        *pos += 2;
        if (words > 5) return false; /* Erlang's references have at most 5 words */
        return skip_atom(b, len, pos, r) &&
               take(len, pos, (tag == T_NEW_REFERENCE ? 1 : 4) + 4 * words);
    }
    case T_SMALL_TUPLE:
        if (left < 1) return false;
        *more += b[(*pos)++];
        return true;
    case T_LARGE_TUPLE:
        if (left < 4) return false;
        *more += be32(b + *pos);
        *pos += 4;
        return true;
    case T_LIST: /* n elements and a tail */
        if (left < 4) return false;
        *more += (uint64_t)be32(b + *pos) + 1;
        *pos += 4;
        return true;
    case T_MAP:
        if (left < 4) return false;
        *more += 2 * (uint64_t)be32(b + *pos);
        *pos += 4;
        return true;
    case T_EXPORT: /* module, function, arity: three terms */
        *more += 3;
        return true;
    case T_NEW_FUN: {
        /* Size counts itself and everything after the tag; the free
         * variables are terms inside it, checked as such. */
        if (left < 4) return false;
        uint32_t size = be32(b + *pos);
        if (size < 4 + 1 + 16 + 4 + 4 || size > left) return false;
        size_t end = *pos + size;
        size_t span[2] = {*pos, end};
        if (r && !push(&r->fun, &r->nfun, &r->capfun, span, sizeof span)) return false;
        *pos += 4 + 1 + 16 + 4;
        uint32_t nfree = be32(b + *pos);
        *pos += 4;
        uint64_t inner = 4 + (uint64_t)nfree; /* module, old index, old uniq, pid, free vars */
        if (depth >= 8) return false; /* funs in funs' free variables: a bounded recursion */
        while (inner) {
            if (inner > end - *pos || !skip_one(b, end, pos, &inner, depth + 1, r)) return false;
            inner--;
        }
        return *pos == end;
    }
    default:
        return false; /* the atom cache, old funs, local terms: never sent to a C node */
    }
}

static int walk(const uint8_t *buf, size_t len, size_t *pos, refs *r)
{
    uint64_t more = 1;
    while (more) {
        /* Each term left takes at least one byte. */
        if (*pos > len || more > len - *pos) return -EBADMSG;
        if (!skip_one(buf, len, pos, &more, 0, r)) return -EBADMSG;
        more--;
    }
    return 0;
}

int bl__etf_skip(const uint8_t *buf, size_t len, size_t *pos)
{
    return walk(buf, len, pos, NULL);
}

int bl__etf_check(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    if (!b || len < 2 || b[0] != 131) return -EBADMSG;
    size_t pos = 1;
    if (bl__etf_skip(b, len, &pos) < 0) return -EBADMSG;
    return pos == len ? 0 : -EBADMSG;
}

/* ---- frames with a distribution header ---- */

void bl__etf_cache_free(bl__atom_cache *c)
{
    for (size_t i = 0; i < BL__ATOM_CACHE_SIZE; i++) {
        free(c->text[i]);
        c->text[i] = NULL;
    }
}

/* Bytes an expanded reference takes beyond its own two: the atom's tag, length and text. */
static size_t grown(const bl__atom_cache *c, const uint16_t *ix, const uint8_t *f, size_t at)
{
    uint16_t len = c->len[ix[f[at + 1]]];
    return (len > 255 ? 3u : 2u) + len - 2u;
}

/* Where input offset x lands in the output, given the references before it. */
static size_t moved(const bl__atom_cache *c, const uint16_t *ix, const uint8_t *f, const refs *r,
                    size_t x)
{
    size_t d = 0;
    for (size_t i = 0; i < r->nat && r->at[i] < x; i++) d += grown(c, ix, f, r->at[i]);
    return x + d;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/*
 * Copies f[from..to) to out (which has room), each reference in it replaced
 * by its atom: SMALL_ATOM_UTF8 (119) up to 255 bytes, ATOM_UTF8 (118) above.
 * *k indexes r->at at the first reference at or after from.
 */
static uint8_t *expand(uint8_t *out, const uint8_t *f, size_t from, size_t to,
                       const bl__atom_cache *c, const uint16_t *ix, const refs *r, size_t *k)
{
    while (from < to) {
        size_t next = *k < r->nat && r->at[*k] < to ? r->at[*k] : to;
        memcpy(out, f + from, next - from);
        out += next - from;
        from = next;
        if (from == to) break;
        uint16_t slot = ix[f[from + 1]];
        uint16_t len = c->len[slot];
        if (len > 255) {
            *out++ = T_ATOM_UTF8;
            *out++ = (uint8_t)(len >> 8);
            *out++ = (uint8_t)len;
        } else {
            *out++ = T_SMALL_ATOM_UTF8;
            *out++ = (uint8_t)len;
        }
        memcpy(out, c->text[slot], len);
        out += len;
        from += 2;
        (*k)++;
    }
    return out;
}

int bl__etf_dist_header(bl__atom_cache *c, const uint8_t *f, size_t n, uint8_t **buf, size_t *cap,
                        size_t *out_len)
{
    if (n < 3 || f[0] != 131 || f[1] != 'D') return -EBADMSG;
    unsigned nrefs = f[2];
    size_t pos = 3;
    uint16_t ix[256]; /* each reference's cache slot */
    if (nrefs) {
        size_t nflags = nrefs / 2 + 1;
        if (n - pos < nflags) return -EBADMSG;
        const uint8_t *flags = f + pos;
        pos += nflags;
        /* The half byte after the references' own says whether lengths take 2 bytes. */
        bool long_atoms = (flags[nrefs / 2] >> (4 * (nrefs % 2))) & 1;
        for (unsigned i = 0; i < nrefs; i++) {
            unsigned nib = (flags[i / 2] >> (4 * (i % 2))) & 0xF;
            if (pos >= n) return -EBADMSG;
            uint16_t slot = (uint16_t)((nib & 7) * 256 + f[pos++]);
            ix[i] = slot;
            if (nib & 8) { /* a new entry: its text follows */
                size_t lb = long_atoms ? 2 : 1;
                if (n - pos < lb) return -EBADMSG;
                size_t len = long_atoms ? (size_t)f[pos] << 8 | f[pos + 1] : f[pos];
                pos += lb;
                if (len > 255 * 4 || n - pos < len) return -EBADMSG;
                char *t = malloc(len ? len : 1);
                if (!t) return -ENOMEM;
                memcpy(t, f + pos, len);
                free(c->text[slot]);
                c->text[slot] = t;
                c->len[slot] = (uint16_t)len;
                pos += len;
            } else if (!c->text[slot]) {
                return -EBADMSG; /* a reference to an entry never made */
            }
        }
    }
    /* The control term, then the message if any, with no version bytes. */
    refs r = {.n = nrefs, .capat = REFS_INLINE};
    r.at = r.inline_at;
    size_t ctl = pos, msg = 0;
    int rc = walk(f, n, &pos, &r);
    if (rc == 0 && pos < n) {
        msg = pos;
        rc = walk(f, n, &pos, &r);
        if (rc == 0 && pos != n) rc = -EBADMSG;
    }
    size_t room = 1 + 1 + (n - ctl) + 1;
    for (size_t i = 0; rc == 0 && i < r.nat; i++) room += grown(c, ix, f, r.at[i]);
    if (rc == 0 && room > *cap) {
        uint8_t *b = realloc(*buf, room);
        if (!b)
            rc = -ENOMEM;
        else {
            *buf = b;
            *cap = room;
        }
    }
    if (rc == 0) {
        /* 'p', 131, control [, 131, message]: the pass-through form. */
        uint8_t *o = *buf;
        size_t k = 0;
        *o++ = 112;
        *o++ = 131;
        o = expand(o, f, ctl, msg ? msg : n, c, ix, &r, &k);
        if (msg) {
            *o++ = 131;
            o = expand(o, f, msg, n, c, ix, &r, &k);
        }
        *out_len = (size_t)(o - *buf);
        /* A fun's size counts the bytes after its tag: it grows with what grew inside. */
        for (size_t i = 0; i < r.nfun; i++) {
            size_t at = r.fun[i][0], end = r.fun[i][1];
            size_t shift = (at >= ctl ? 2 : 0) + (msg && at >= msg ? 1 : 0) - ctl;
            size_t out_at = moved(c, ix, f, &r, at) + shift;
            size_t out_end = moved(c, ix, f, &r, end) + shift;
            put_be32(*buf + out_at, (uint32_t)(out_end - out_at));
        }
    }
    if (r.at != r.inline_at) free(r.at);
    free(r.fun);
    return rc;
}
