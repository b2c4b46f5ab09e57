/*
 * Frames with a distribution header (131, 'D') and atom cache references,
 * as an Erlang node sends them to a node that announced
 * DFLAG_DIST_HDR_ATOM_CACHE: real frames taken from an OTP 25 node (a
 * monitor, a gen_server call, demonitors), rewritten into pass-through form
 * and decoded with ei; the cache filled by one frame serves the next; a fun
 * whose atoms are references gets its size fixed; malformed headers and
 * references are refused; and mutations of the real frames never read out
 * of bounds (the ASan build checks).
 */
#include <ei.h>
#include <stdlib.h>
#include <string.h>

#include "bl_test.h"
#include "dist/dist.h"

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* From an OTP 25 node "excli@vm" to a Beamline node, in this order. */
static const char *const real[] = {
    /* {19, From, kv, Ref}: MONITOR_P, a header with no references. */
    "834400680461135877086578636c6940766d00000066000000006b152d6a77026b765a000377086578636c6940"
    "766d6b152d6a0002085d02b50002dffe1697",
    /* {20, From, kv, Ref}: DEMONITOR_P, two new cache entries: 'excli@vm' and 'kv'. */
    "834402df00bf086578636c6940766d52026b766804611458520000000066000000006b152d6a52015a00035200"
    "6b152d6a0002085d02b50002dffe1697",
    /* {19, From, kv, Ref} again: both atoms as references to those entries. */
    "8344025700bf526804611358520000000066000000006b152d6a52015a000352006b152d6a0002086e02b50002"
    "dffe1697",
};

typedef struct decoded {
    long op;
    char node[MAXATOMLEN_UTF8]; /* the From pid's node */
    char name[MAXATOMLEN_UTF8]; /* the third element, an atom */
} decoded;

static void decode(const uint8_t *p, size_t n, decoded *d)
{
    cr_assert_geq(n, 3);
    cr_assert_eq(p[0], 112);
    cr_assert_eq(p[1], 131);
    const char *b = (const char *)p;
    int i = 2, arity;
    erlang_pid pid;
    cr_assert_eq(ei_decode_tuple_header(b, &i, &arity), 0);
    cr_assert_eq(arity, 4);
    cr_assert_eq(ei_decode_long(b, &i, &d->op), 0);
    cr_assert_eq(ei_decode_pid(b, &i, &pid), 0);
    strcpy(d->node, pid.node);
    cr_assert_eq(ei_decode_atom(b, &i, d->name), 0);
    cr_assert_eq(ei_skip_term(b, &i), 0);
    cr_assert_eq((size_t)i, n, "the control term fills the frame");
}

Test(dist_header, real_frames_fill_and_use_the_atom_cache)
{
    bl__atom_cache *c = calloc(1, sizeof *c);
    uint8_t f[512], *out = NULL;
    size_t cap = 0, len;
    const long ops[] = {19, 20, 19};
    for (int k = 0; k < 3; k++) {
        size_t n = unhex(real[k], f);
        cr_assert_eq(bl__etf_dist_header(c, f, n, &out, &cap, &len), 0, "frame %d", k);
        decoded d;
        decode(out, len, &d);
        cr_assert_eq(d.op, ops[k]);
        cr_assert_str_eq(d.node, "excli@vm");
        cr_assert_str_eq(d.name, "kv");
    }
    /* The last frame refers to entries the second made: without them it is refused. */
    bl__atom_cache *empty = calloc(1, sizeof *empty);
    size_t n = unhex(real[2], f);
    cr_assert_eq(bl__etf_dist_header(empty, f, n, &out, &cap, &len), -EBADMSG);
    bl__etf_cache_free(c);
    bl__etf_cache_free(empty);
    free(c);
    free(empty);
    free(out);
}

Test(dist_header, malformed_headers_and_references_are_refused)
{
    bl__atom_cache *c = calloc(1, sizeof *c);
    uint8_t *out = NULL;
    size_t cap = 0, len;
    /* Too short, not a header, flags cut, a length past the end. */
    const char *bad[] = {
        "8344",
        "8345006a",
        "834402",
        "83440108"
        "00"
        "09"
        "6b76",
        /* A reference (index 1) beyond the header's one. */
        "834401"
        "08"
        "00"
        "02"
        "6b76"
        "5201",
        /* No term after the header. */
        "834401"
        "08"
        "00"
        "02"
        "6b76",
        /* Bytes left after the message term. */
        "834400"
        "6a"
        "6a"
        "6a",
    };
    uint8_t f[64];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t n = unhex(bad[k], f);
        cr_assert_eq(bl__etf_dist_header(c, f, n, &out, &cap, &len), -EBADMSG, "case %zu", k);
    }
    /* The same shape, well formed: one new entry 'kv', control [] and message kv. */
    size_t n = unhex("834401"
                     "08"
                     "00"
                     "02"
                     "6b76"
                     "6a"
                     "5200",
                     f);
    cr_assert_eq(bl__etf_dist_header(c, f, n, &out, &cap, &len), 0);
    const uint8_t want[] = {112, 131, 106, 131, 119, 2, 'k', 'v'};
    cr_assert_eq(len, sizeof want);
    cr_assert(memcmp(out, want, sizeof want) == 0);
    bl__etf_cache_free(c);
    free(c);
    free(out);
}

Test(dist_header, a_funs_size_grows_with_its_references)
{
    /* A header with one new entry 'mod', then control [] and a message that
     * is a NEW_FUN whose module is a reference and whose one free variable
     * is too. */
    uint8_t f[128];
    size_t n = 0;
    const uint8_t head[] = {131, 'D', 1, 0x08, 0x00, 3, 'm', 'o', 'd', 106};
    memcpy(f, head, sizeof head);
    n = sizeof head;
    f[n++] = 112; /* NEW_FUN */
    size_t size_at = n;
    n += 4;                  /* Size, filled below */
    f[n++] = 0;              /* Arity */
    memset(f + n, 0xAB, 16); /* Uniq */
    n += 16;
    memset(f + n, 0, 4); /* Index */
    n += 4;
    const uint8_t nfree[] = {0, 0, 0, 1};
    memcpy(f + n, nfree, 4);
    n += 4;
    f[n++] = 82, f[n++] = 0; /* Module: the reference */
    f[n++] = 97, f[n++] = 0; /* OldIndex */
    f[n++] = 97, f[n++] = 0; /* OldUniq */
    /* Pid: NEW_PID with node 'mod' (a reference), id, serial, creation */
    f[n++] = 88, f[n++] = 82, f[n++] = 0;
    memset(f + n, 0, 12);
    n += 12;
    f[n++] = 82, f[n++] = 0; /* the free variable */
    uint32_t size = (uint32_t)(n - size_at);
    f[size_at] = (uint8_t)(size >> 24), f[size_at + 1] = (uint8_t)(size >> 16);
    f[size_at + 2] = (uint8_t)(size >> 8), f[size_at + 3] = (uint8_t)size;

    bl__atom_cache *c = calloc(1, sizeof *c);
    uint8_t *out = NULL;
    size_t cap = 0, len;
    cr_assert_eq(bl__etf_dist_header(c, f, n, &out, &cap, &len), 0);
    /* 'p' 131 [] 131, then the fun: each of its three references grew by 3. */
    cr_assert_eq(out[4], 112);
    uint32_t got = (uint32_t)out[5] << 24 | (uint32_t)out[6] << 16 | (uint32_t)out[7] << 8 | out[8];
    cr_assert_eq(got, size + 3 * 3);
    cr_assert_eq(len, 4 + 1 + got);
    /* And ei reads it as a fun of module mod. */
    erlang_fun fn;
    int i = 4;
    cr_assert_eq(ei_decode_fun((const char *)out, &i, &fn), 0);
    cr_assert_str_eq(fn.module, "mod");
    free_fun(&fn);
    cr_assert_eq((size_t)i, len);
    bl__etf_cache_free(c);
    free(c);
    free(out);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(dist_header, mutated_real_frames_are_read_within_bounds)
{
    uint8_t frames[3][512], f[512], *out = NULL;
    size_t lens[3], cap = 0, len;
    for (int k = 0; k < 3; k++) lens[k] = unhex(real[k], frames[k]);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int ok = 0;
    for (int round = 0; round < BL_SCALE(20000); round++) {
        bl__atom_cache *c = calloc(1, sizeof *c);
        for (int k = 0; k < 3; k++) {
            size_t n = lens[k];
            memcpy(f, frames[k], n);
            switch (rnd(&seed) % 4) {
            case 0: /* a bit flipped */
                f[rnd(&seed) % n] ^= (uint8_t)(1u << (rnd(&seed) % 8));
                break;
            case 1: /* cut */
                n = rnd(&seed) % n;
                break;
            case 2: /* a byte overwritten */
                f[rnd(&seed) % n] = (uint8_t)rnd(&seed);
                break;
            default: /* unchanged */
                break;
            }
            /* The exact size, so that ASan sees any read past the end. */
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, f, n);
            int rc = bl__etf_dist_header(c, copy, n, &out, &cap, &len);
            cr_assert(rc == 0 || rc == -EBADMSG);
            if (rc == 0) {
                ok++;
                cr_assert_leq(len, cap);
            }
            free(copy);
        }
        bl__etf_cache_free(c);
        free(c);
    }
    cr_assert_gt(ok, 0);
    free(out);
}

Test(dist_header, a_frame_with_more_references_than_the_inline_array_holds)
{
    /* One new entry 'ab', control [] and a message that is a list of 100
     * references to it: past the 32 offsets kept without an allocation. */
    enum { N = 100 };
    uint8_t f[16 + 2 * N + 8];
    size_t n = 0;
    const uint8_t head[] = {131, 'D', 1, 0x08, 0x00, 2, 'a', 'b', 106};
    memcpy(f, head, sizeof head);
    n = sizeof head;
    const uint8_t list[] = {108, 0, 0, 0, N};
    memcpy(f + n, list, sizeof list);
    n += sizeof list;
    for (int k = 0; k < N; k++) f[n++] = 82, f[n++] = 0;
    f[n++] = 106;

    bl__atom_cache *c = calloc(1, sizeof *c);
    uint8_t *out = NULL;
    size_t cap = 0, len;
    cr_assert_eq(bl__etf_dist_header(c, f, n, &out, &cap, &len), 0);
    /* 'p' 131 [] 131, a list header, N atoms of 4 bytes, and the tail. */
    cr_assert_eq(len, 4 + 5 + (size_t)N * 4 + 1);
    const char *b = (const char *)out;
    int i = 4, arity;
    cr_assert_eq(ei_decode_list_header(b, &i, &arity), 0);
    cr_assert_eq(arity, N);
    for (int k = 0; k < N; k++) {
        char atom[MAXATOMLEN_UTF8];
        cr_assert_eq(ei_decode_atom(b, &i, atom), 0, "element %d", k);
        cr_assert_str_eq(atom, "ab");
    }
    cr_assert_eq(ei_decode_list_header(b, &i, &arity), 0);
    cr_assert_eq(arity, 0);
    cr_assert_eq((size_t)i, len);
    bl__etf_cache_free(c);
    free(c);
    free(out);
}
