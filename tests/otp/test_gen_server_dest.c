/*
 * gen_server destinations (bl_gs_dest): calls, casts and stops by pid, local
 * name, via name (a test module and bl_registry_via) and {name, node};
 * names are resolved at each call, nobody holding one is noproc.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"

enum { Q_WHO = 1, Q_ADD, Q_DIE, T_TERM = 50 };

typedef struct srv {
    long counter;
    long id; /* which server answers */
    bl_pid test;
} srv;

static void d_init(void *arg, void **state, bl_gs_result *r)
{
    *state = arg;
}

static void d_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_WHO) bl_gs_reply(r, &s->id, sizeof s->id);
    if (m->tag == Q_ADD) bl_gs_reply(r, &s->counter, sizeof s->counter);
    if (m->tag == Q_DIE) bl_gs_stop(r, &(bl_reason){.kind = BL_CUSTOM, .code = 33});
}

static void d_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    srv *s = *state;
    if (m->tag == Q_ADD) s->counter++;
}

static void d_terminate(void **state, const bl_reason *reason)
{
    srv *s = *state;
    if (s->test) bl_send(s->test, T_TERM, &s->id, sizeof s->id);
}

static const bl_gen_server d_cb = {
    .init = d_init,
    .handle_call = d_call,
    .handle_cast = d_cast,
    .terminate = d_terminate,
};

static long who(bl_gs_dest to, int *rc)
{
    bl_msg *m = NULL;
    long v = -1;
    *rc = bl_gen_server_call_to(to, Q_WHO, NULL, 0, &m, 2000);
    if (*rc == 0 && m->len == sizeof v) memcpy(&v, m->data, sizeof v);
    bl_msg_free(m);
    return v;
}

static bl_pid start_named(srv *s, const bl_name *n)
{
    bl_gen_server_opts o = {.name = n};
    bl_pid pid = 0;
    BL_CHECK_EQ(bl_gen_server_start(&pid, &d_cb, s, &o), 0);
    return pid;
}

static void local_main(void *arg)
{
    int rc;
    srv a = {.id = 1, .test = bl_self()}, b = {.id = 2, .test = bl_self()};
    bl_name n = BL_NAME_LOCAL("dest");
    bl_pid pa = start_named(&a, &n);
    /* By pid, by name, by {name, this node}. */
    BL_CHECK_EQ(who(BL_GS_PID(pa), &rc), 1);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(who(BL_GS_LOCAL("dest"), &rc), 1);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(who(BL_GS_REMOTE("dest", BL_NODE_LOCAL), &rc), 1);
    BL_CHECK_EQ(rc, 0);
    /* Casts by name arrive in order before the next call. */
    for (int i = 0; i < 5; i++)
        BL_CHECK_EQ(bl_gen_server_cast_to(BL_GS_LOCAL("dest"), Q_ADD, NULL, 0), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL("dest"), Q_ADD, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && *(long *)m->data == 5);
    bl_msg_free(m);
    /* Stop by name; then nobody holds it: noproc, as for a dead pid. */
    BL_CHECK_EQ(bl_gen_server_stop_to(BL_GS_LOCAL("dest"), NULL, 1000), 0);
    bl_msg *t = bl_test_recv_tag(T_TERM, 1000);
    BL_CHECK(t && *(long *)t->data == 1);
    bl_msg_free(t);
    BL_CHECK_EQ(who(BL_GS_LOCAL("dest"), &rc), -1);
    BL_CHECK_EQ(rc, -ESRCH);
    BL_CHECK_EQ(who(BL_GS_PID(pa), &rc), -1);
    BL_CHECK_EQ(rc, -ESRCH);
    BL_CHECK_EQ(bl_gen_server_stop_to(BL_GS_LOCAL("dest"), NULL, 1000), -ESRCH);
    BL_CHECK_EQ(bl_gen_server_cast_to(BL_GS_LOCAL("dest"), Q_ADD, NULL, 0), 0);
    /* A new holder of the name is found at the next call: no stale pid. */
    start_named(&b, &n);
    BL_CHECK_EQ(who(BL_GS_LOCAL("dest"), &rc), 2);
    BL_CHECK_EQ(rc, 0);
    /* Dying during a call by name: the server's exit, as by pid. */
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL("dest"), Q_DIE, NULL, 0, &m, 1000), -ECONNRESET);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.code == 33);
    bl_msg_free(m);
    bl_msg_free(bl_test_recv_tag(T_TERM, 1000));
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_dest, local_names)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, local_main, NULL);
}

/* ---- via ---- */

static struct {
    bl_pid pid;
} via_slot;

static int via_reg(void *via, const void *key, size_t len)
{
    if (via_slot.pid && bl_is_alive(via_slot.pid)) return -EEXIST;
    via_slot.pid = bl_self();
    return 0;
}

static int via_unreg(void *via, const void *key, size_t len)
{
    via_slot.pid = 0;
    return 0;
}

static bl_pid via_where(void *via, const void *key, size_t len)
{
    return via_slot.pid && bl_is_alive(via_slot.pid) ? via_slot.pid : BL_PID_NONE;
}

static const bl_via_ops test_via = {via_reg, via_unreg, via_where};
static const bl_via_ops no_where = {via_reg, via_unreg, NULL};

static void via_main(void *arg)
{
    int rc;
    srv a = {.id = 7};
    bl_name n = {.via = &test_via, .key = "k", .key_len = 1};
    bl_pid pa = start_named(&a, &n);
    BL_CHECK_EQ(who(BL_GS_VIA(&test_via, NULL, "k", 1), &rc), 7);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(who(BL_GS_NAME(n), &rc), 7);
    BL_CHECK_EQ(bl_gen_server_stop_to(BL_GS_NAME(n), NULL, 1000), 0);
    BL_CHECK(!bl_is_alive(pa));
    BL_CHECK_EQ(who(BL_GS_NAME(n), &rc), -1);
    BL_CHECK_EQ(rc, -ESRCH);

    /* The registry's via module: {:via, Registry, {reg, key}}. */
    bl_registry *reg = NULL;
    BL_CHECK_EQ(bl_registry_start_link(NULL, &reg), 0);
    bl_name rn = bl_registry_name(reg, "svc", 3);
    srv b = {.id = 8}, c = {.id = 9};
    bl_pid pb = start_named(&b, &rn);
    BL_CHECK_EQ(who(BL_GS_NAME(bl_registry_name(reg, "svc", 3)), &rc), 8);
    BL_CHECK_EQ(rc, 0);
    BL_CHECK_EQ(bl_gen_server_cast_to(BL_GS_NAME(rn), Q_ADD, NULL, 0), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_NAME(rn), Q_ADD, NULL, 0, &m, 1000), 0);
    BL_CHECK(m && *(long *)m->data == 1);
    bl_msg_free(m);
    /* Killed: the registry drops the name; a restart takes it again. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pb, &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(pb, &BL_REASON(BL_KILL)), 0);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 2000, 0), 0);
    bl_msg_free(m);
    /* The registry may not have seen the DOWN yet: either way no stale answer. */
    int got = (int)who(BL_GS_NAME(rn), &rc);
    BL_CHECK(rc == -ESRCH || rc == -ECONNRESET);
    BL_CHECK_EQ(got, -1);
    BL_CHECK_EQ(bl_registry_sync(reg, 2000), 0);
    BL_CHECK_EQ(who(BL_GS_NAME(rn), &rc), -1);
    BL_CHECK_EQ(rc, -ESRCH);
    start_named(&c, &rn);
    BL_CHECK_EQ(who(BL_GS_NAME(rn), &rc), 9);
    BL_CHECK_EQ(bl_gen_server_stop_to(BL_GS_NAME(rn), NULL, 1000), 0);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 2000), 0);
    bl_registry_release(reg);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_dest, via_names)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, via_main, NULL);
}

/* ---- malformed destinations, other nodes ---- */

static void bad_main(void *arg)
{
    srv a = {.id = 1};
    bl_name n = BL_NAME_LOCAL("bad_dest");
    bl_pid pa = start_named(&a, &n);
    bl_msg *m = NULL;
    /* {name, node} of another node: unreachable until distribution exists. */
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_REMOTE("bad_dest", "b@host"), Q_WHO, NULL, 0, &m, 100),
                -EHOSTUNREACH);
    BL_CHECK_EQ(bl_gen_server_cast_to(BL_GS_REMOTE("bad_dest", "b@host"), Q_ADD, NULL, 0),
                -EHOSTUNREACH);
    BL_CHECK_EQ(bl_gen_server_stop_to(BL_GS_REMOTE("bad_dest", "b@host"), NULL, 100),
                -EHOSTUNREACH);
    /* Nothing, both a pid and a name, an empty or long name, a via without whereis. */
    bl_gs_dest both = BL_GS_LOCAL("bad_dest");
    both.pid = pa;
    BL_CHECK_EQ(bl_gen_server_call_to((bl_gs_dest){0}, Q_WHO, NULL, 0, &m, 100), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call_to(both, Q_WHO, NULL, 0, &m, 100), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL(""), Q_WHO, NULL, 0, &m, 100), -EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[299] = 0;
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL(longname), Q_WHO, NULL, 0, &m, 100),
                -ENAMETOOLONG);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_VIA(&no_where, NULL, "k", 1), Q_WHO, NULL, 0, &m, 100),
                -EINVAL);
    BL_CHECK_EQ(bl_gen_server_cast_to((bl_gs_dest){0}, Q_ADD, NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_stop_to((bl_gs_dest){0}, NULL, 100), -EINVAL);
    /* Bad requests are refused before the name is looked at. */
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL("nobody"), BL_TAG_SYSTEM, NULL, 0, &m, 100),
                -EINVAL);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL("nobody"), Q_WHO, NULL, 0, &m, -7), -EINVAL);
    BL_CHECK_EQ(bl_gen_server_cast_to(BL_GS_LOCAL("nobody"), BL_TAG_SYSTEM, NULL, 0), -EINVAL);
    /* Calling yourself by name is a deadlock refused. */
    BL_CHECK_EQ(bl_register("me_myself", bl_self()), 0);
    BL_CHECK_EQ(bl_gen_server_call_to(BL_GS_LOCAL("me_myself"), Q_WHO, NULL, 0, &m, 100), -EDEADLK);
    BL_CHECK(m == NULL);
    BL_CHECK(bl_is_alive(pa));
    BL_CHECK_EQ(bl_gen_server_stop(pa, NULL, 1000), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(gen_server_dest, malformed)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, bad_main, NULL);
}

Test(gen_server_dest, process_only)
{
    cr_assert_eq(bl_gen_server_call_to(BL_GS_LOCAL("x"), Q_WHO, NULL, 0, NULL, 10), -EPERM);
    cr_assert_eq(bl_gen_server_stop_to(BL_GS_LOCAL("x"), NULL, 10), -EPERM);
}
