/*
 * Exit reasons as Erlang terms (dist/reason.c): every row of the table in
 * beamline/dist.h, both round trips, and terms that are no reason.  No
 * node or runtime is needed.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <ei.h>

#include "beamline/dist.h"

/* r -> term -> reason: the same reason, and the term's bytes as expected when given. */
static void round_trip(const bl_reason *r, const ei_x_buff *want)
{
    ei_x_buff x;
    ei_x_new_with_version(&x);
    cr_assert_eq(bl_dist_x_encode_reason(&x, r), 0);
    if (want) {
        cr_assert_eq(x.index, want->index);
        cr_assert(memcmp(x.buff, want->buff, (size_t)x.index) == 0);
    }
    int i = 1;
    bl_reason back;
    void *scratch;
    cr_assert_eq(bl_dist_decode_reason(x.buff, (size_t)x.index, &i, &back, &scratch), 0);
    cr_assert_eq(i, x.index);
    cr_assert(bl_reason_eq(r, &back), "kind %d code %d len %zu came back as %d %d %zu", r->kind,
              r->code, r->detail_len, back.kind, back.code, back.detail_len);
    free(scratch);
    ei_x_free(&x);
}

/* term -> reason -> term: the same bytes. */
static void term_trip(const ei_x_buff *t, bl_reason_kind kind, int32_t code)
{
    int i = 1;
    bl_reason r;
    void *scratch;
    cr_assert_eq(bl_dist_decode_reason(t->buff, (size_t)t->index, &i, &r, &scratch), 0);
    cr_assert_eq(r.kind, kind);
    cr_assert_eq(r.code, code);
    ei_x_buff x;
    ei_x_new_with_version(&x);
    cr_assert_eq(bl_dist_x_encode_reason(&x, &r), 0);
    cr_assert_eq(x.index, t->index);
    cr_assert(memcmp(x.buff, t->buff, (size_t)x.index) == 0);
    ei_x_free(&x);
    free(scratch);
}

Test(dist_reason, atoms_for_the_plain_kinds)
{
    static const char *names[] = {"normal",  "kill",           "killed", "shutdown",    "noproc",
                                  "timeout", "stack_overflow", NULL,     "noconnection"};
    for (int k = 0; k <= BL_NOCONNECTION; k++) {
        if (!names[k]) continue;
        ei_x_buff want;
        ei_x_new_with_version(&want);
        ei_x_encode_atom(&want, names[k]);
        bl_reason r = BL_REASON((bl_reason_kind)k);
        round_trip(&r, &want);
        term_trip(&want, (bl_reason_kind)k, 0);
        ei_x_free(&want);
    }
}

Test(dist_reason, shutdown_and_custom_details)
{
    ei_x_buff want;
    ei_x_new_with_version(&want);
    ei_x_encode_tuple_header(&want, 2);
    ei_x_encode_atom(&want, "shutdown");
    ei_x_encode_binary(&want, "bye", 3);
    bl_reason r = {BL_SHUTDOWN, 0, "bye", 3};
    round_trip(&r, &want);
    ei_x_free(&want);

    ei_x_new_with_version(&want);
    ei_x_encode_tuple_header(&want, 2);
    ei_x_encode_atom(&want, "beamline");
    ei_x_encode_long(&want, -42);
    r = (bl_reason){BL_CUSTOM, -42, NULL, 0};
    round_trip(&r, &want);
    ei_x_free(&want);

    ei_x_new_with_version(&want);
    ei_x_encode_tuple_header(&want, 3);
    ei_x_encode_atom(&want, "beamline");
    ei_x_encode_long(&want, 7);
    ei_x_encode_binary(&want, "\x83\x00\xff", 3);
    r = (bl_reason){BL_CUSTOM, 7, "\x83\x00\xff", 3};
    round_trip(&r, &want);
    ei_x_free(&want);

    /* Every kind with a detail and a code: the generic form, and back. */
    for (int k = 0; k <= BL_NOCONNECTION; k++) {
        bl_reason g = {(bl_reason_kind)k, 3, "xyz", 3};
        round_trip(&g, NULL);
        g.code = 0;
        round_trip(&g, NULL);
        g.detail_len = 0;
        g.detail = NULL;
        g.code = 5;
        round_trip(&g, NULL);
    }
}

Test(dist_reason, erlang_terms_keep_their_bytes)
{
    /* {shutdown, {a, 1}}: a clean shutdown whose detail is the term. */
    ei_x_buff t;
    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 2);
    ei_x_encode_atom(&t, "shutdown");
    ei_x_encode_tuple_header(&t, 2);
    ei_x_encode_atom(&t, "a");
    ei_x_encode_long(&t, 1);
    term_trip(&t, BL_SHUTDOWN, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    /* Terms no row reads: custom TERM with the whole term. */
    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 2);
    ei_x_encode_atom(&t, "badarg");
    ei_x_encode_list_header(&t, 1);
    ei_x_encode_long(&t, 123456789);
    ei_x_encode_empty_list(&t);
    term_trip(&t, BL_CUSTOM, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    ei_x_new_with_version(&t);
    ei_x_encode_atom(&t, "badarg");
    term_trip(&t, BL_CUSTOM, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    /* Near-misses of the rows stay whole terms: {shutdown, <<>>}, {beamline, TERM},
     * {beamline, 1, <<>>}, {'$bl_reason', 0, 0, <<>>} (that is normal). */
    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 2);
    ei_x_encode_atom(&t, "shutdown");
    ei_x_encode_binary(&t, "", 0);
    term_trip(&t, BL_SHUTDOWN, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 2);
    ei_x_encode_atom(&t, "beamline");
    ei_x_encode_long(&t, BL_DIST_REASON_TERM);
    term_trip(&t, BL_CUSTOM, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 3);
    ei_x_encode_atom(&t, "beamline");
    ei_x_encode_long(&t, 1);
    ei_x_encode_binary(&t, "", 0);
    term_trip(&t, BL_CUSTOM, BL_DIST_REASON_TERM);
    ei_x_free(&t);

    ei_x_new_with_version(&t);
    ei_x_encode_tuple_header(&t, 4);
    ei_x_encode_atom(&t, "$bl_reason");
    ei_x_encode_long(&t, 0);
    ei_x_encode_long(&t, 0);
    ei_x_encode_binary(&t, "", 0);
    term_trip(&t, BL_CUSTOM, BL_DIST_REASON_TERM);
    ei_x_free(&t);
}

Test(dist_reason, term_details_that_would_read_as_rows_stay_themselves)
{
    /* custom TERM whose term is `normal`, shutdown TERM whose term is a binary: generic form. */
    ei_x_buff d;
    ei_x_new_with_version(&d);
    ei_x_encode_atom(&d, "normal");
    bl_reason r = {BL_CUSTOM, BL_DIST_REASON_TERM, d.buff, (size_t)d.index};
    round_trip(&r, NULL);
    ei_x_free(&d);
    ei_x_new_with_version(&d);
    ei_x_encode_binary(&d, "b", 1);
    r = (bl_reason){BL_SHUTDOWN, BL_DIST_REASON_TERM, d.buff, (size_t)d.index};
    round_trip(&r, NULL);
    ei_x_free(&d);
    /* A TERM code with a detail that is no term. */
    r = (bl_reason){BL_CUSTOM, BL_DIST_REASON_TERM, "raw", 3};
    round_trip(&r, NULL);
    r = (bl_reason){BL_SHUTDOWN, BL_DIST_REASON_TERM, "raw", 3};
    round_trip(&r, NULL);
}

Test(dist_reason, bad_input_is_refused)
{
    bl_reason r = {.kind = 99};
    ei_x_buff x;
    ei_x_new(&x);
    cr_assert_eq(bl_dist_x_encode_reason(&x, &r), -EINVAL);
    r = (bl_reason){BL_CUSTOM, 1, NULL, 4};
    cr_assert_eq(bl_dist_x_encode_reason(&x, &r), -EINVAL);
    ei_x_free(&x);
    void *s;
    int i = 0;
    static const char trunc[] = {104, 2, 100, 0};
    cr_assert_eq(bl_dist_decode_reason(trunc, sizeof trunc, &i, &r, &s), -EBADMSG);
    cr_assert_eq(i, 0);
    cr_assert_eq(bl_dist_decode_reason(NULL, 0, &i, &r, &s), -EINVAL);
}
