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
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dist/dist.h"

/* External-format tags (erts/emulator/beam/external.h, the same numbers ei.h uses). */
enum {
    T_NEW_FLOAT = 70,
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

/* An atom (any of the four atom tags): the node of a pid, port or reference. */
static bool skip_atom(const uint8_t *b, size_t len, size_t *pos)
{
    if (*pos >= len) return false;
    uint8_t tag = b[(*pos)++];
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
static bool skip_one(const uint8_t *b, size_t len, size_t *pos, uint64_t *more, int depth)
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
        (*pos)--;
        return skip_atom(b, len, pos);
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
        return skip_atom(b, len, pos) && take(len, pos, 9);
    case T_NEW_PID:
        return skip_atom(b, len, pos) && take(len, pos, 12);
    case T_PORT:
        return skip_atom(b, len, pos) && take(len, pos, 5);
    case T_NEW_PORT:
        return skip_atom(b, len, pos) && take(len, pos, 8);
    case T_V4_PORT:
        return skip_atom(b, len, pos) && take(len, pos, 12);
    case T_REFERENCE:
        return skip_atom(b, len, pos) && take(len, pos, 5);
    case T_NEW_REFERENCE:
    case T_NEWER_REFERENCE: {
        if (left < 2) return false;
        uint64_t words = (uint64_t)b[*pos] << 8 | b[*pos + 1];
        *pos += 2;
        if (words > 5) return false; /* Erlang's references have at most 5 words */
        return skip_atom(b, len, pos) &&
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
        *pos += 4 + 1 + 16 + 4;
        uint32_t nfree = be32(b + *pos);
        *pos += 4;
        uint64_t inner = 4 + (uint64_t)nfree; /* module, old index, old uniq, pid, free vars */
        if (depth >= 8) return false; /* funs in funs' free variables: a bounded recursion */
        while (inner) {
            if (inner > end - *pos || !skip_one(b, end, pos, &inner, depth + 1)) return false;
            inner--;
        }
        return *pos == end;
    }
    default:
        return false; /* the atom cache, old funs, local terms: never sent to a C node */
    }
}

int bl__etf_skip(const uint8_t *buf, size_t len, size_t *pos)
{
    uint64_t more = 1;
    while (more) {
        /* Each term left takes at least one byte. */
        if (*pos > len || more > len - *pos) return -EBADMSG;
        if (!skip_one(buf, len, pos, &more, 0)) return -EBADMSG;
        more--;
    }
    return 0;
}

int bl__etf_check(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    if (!b || len < 2 || b[0] != 131) return -EBADMSG;
    size_t pos = 1;
    if (bl__etf_skip(b, len, &pos) < 0) return -EBADMSG;
    return pos == len ? 0 : -EBADMSG;
}
