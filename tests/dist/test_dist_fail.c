/*
 * Failures across the wire, a Beamline node and a real Elixir node: links,
 * monitors and exit signals both ways with their reasons (the table of
 * beamline/dist.h), noproc, monitors of {name, node}, and noconnection on
 * both sides when the connection goes down or never comes up.
 */
#include "dist_test.h"

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

#define ask(...) dt_ask_is(ex, __VA_ARGS__)

/* The pid of victim `name` on the Elixir node (it echoes text back). */
static bl_pid victim(const char *name, const char *text)
{
    BL_CHECK_EQ(bl_dist_send_name(name, ex_name, 1, text, strlen(text)), 0);
    return dt_expect(1, text, strlen(text));
}

/* The next message tagged tag (EXIT or DOWN) from `from` with reason want. */
static bl_msg *expect_reason(uint32_t tag, bl_pid from, const bl_reason *want)
{
    bl_msg *m = bl_test_recv_tag(tag, 10000);
    BL_CHECK(m != NULL);
    if (!m) return NULL;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    BL_CHECK(bl_reason_eq(&r, want));
    if (from != BL_PID_NONE) BL_CHECK_EQ(m->from, from);
    return m;
}

/* A reason whose detail is the encoded atom `a` (how Erlang's other reasons arrive). */
static bl_reason term_reason(bl_reason_kind kind, const char *a, ei_x_buff *x)
{
    ei_x_new_with_version(x);
    ei_x_encode_atom(x, a);
    return (bl_reason){kind, BL_DIST_REASON_TERM, x->buff, (size_t)x->index};
}

typedef struct dying {
    const char *victim; /* links to it and has it monitor us */
    bl_reason reason;   /* then exits with this */
} dying;

static void dying_main(void *arg)
{
    dying *d = arg;
    victim(d->victim, "link");
    victim(d->victim, "monitor");
    bl_exit_reason(&d->reason);
}

/* Elixir processes linked to and monitoring a Beamline process get its reason. */
static void elixir_sees_beamline_exits(void)
{
    ask("ok", "spawn v1 trap");
    static const struct {
        bl_reason r;
        const char *text;
    } cases[] = {
        {{BL_NORMAL, 0, NULL, 0}, ":normal"},
        {{BL_SHUTDOWN, 0, "bye", 3}, "{:shutdown, \"bye\"}"},
        {{BL_CUSTOM, 42, NULL, 0}, "{:beamline, 42}"},
        {{BL_KILL, 0, NULL, 0}, ":kill"},
        {{BL_NOPROC, 0, NULL, 0}, ":noproc"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dying d = {"v1", cases[k].r};
        bl_pid p;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, dying_main, &d, NULL), 0);
        bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 10000));
        char want[128];
        snprintf(want, sizeof want, "EXIT %s", cases[k].text);
        ask(want, "event");
        snprintf(want, sizeof want, "DOWN %s", cases[k].text);
        ask(want, "event");
    }
    /* A monitor of a Beamline name nobody holds: noproc. */
    ask("ok", "monitor nosuch %s", me);
    ask("DOWN :noproc", "event");
}

/* Beamline links to and monitors Elixir processes, and signals them. */
static void beamline_sees_elixir_exits(void)
{
    bl_trap_exit(true);
    ask("ok", "spawn v2 notrap");
    bl_pid v2 = victim("v2", "hi");
    BL_CHECK_EQ(bl_link(v2), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(v2, &ref), 0);
    /* Round trip: both requests are there before the exit. */
    victim("v2", "sync");
    ei_x_buff x;
    bl_reason gone = {BL_SHUTDOWN, BL_DIST_REASON_TERM, NULL, 0};
    ei_x_new_with_version(&x);
    ei_x_encode_atom(&x, "gone");
    gone.detail = x.buff;
    gone.detail_len = (size_t)x.index;
    ask("ok", "exit v2 {:shutdown, :gone}");
    bl_msg_free(expect_reason(BL_TAG_EXIT, v2, &gone));
    bl_msg *m = expect_reason(BL_TAG_DOWN, v2, &gone);
    BL_CHECK(m && m->ref == ref);
    bl_msg_free(m);
    ei_x_free(&x);

    /* It is gone: a monitor gets DOWN noproc, a link an exit signal noproc. */
    bl_reason np = BL_REASON(BL_NOPROC);
    BL_CHECK_EQ(bl_monitor(v2, &ref), 0);
    m = expect_reason(BL_TAG_DOWN, v2, &np);
    BL_CHECK(m && m->ref == ref);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_link(v2), 0);
    bl_msg_free(expect_reason(BL_TAG_EXIT, v2, &np));

    /* An Erlang reason no row names: custom TERM with the term. */
    ask("ok", "spawn v3 notrap");
    bl_pid v3 = victim("v3", "hi");
    BL_CHECK_EQ(bl_monitor(v3, &ref), 0);
    victim("v3", "sync");
    bl_reason boom = term_reason(BL_CUSTOM, "boom", &x);
    ask("ok", "exit v3 :boom");
    bl_msg_free(expect_reason(BL_TAG_DOWN, v3, &boom));
    ei_x_free(&x);

    /* bl_exit_pid to an Elixir process, and exit/2 from one. */
    ask("ok", "spawn v4 trap");
    bl_pid v4 = victim("v4", "hi");
    bl_reason seven = {BL_CUSTOM, 7, "x", 1};
    BL_CHECK_EQ(bl_exit_pid(v4, &seven), 0);
    ask("EXIT {:beamline, 7, \"x\"}", "event");
    victim("v4", "exit2 {:shutdown, \"now\"}");
    bl_reason now = {BL_SHUTDOWN, 0, "now", 3};
    bl_msg_free(expect_reason(BL_TAG_EXIT, v4, &now));

    /* unlink: no exit signal after it (the DOWN that comes after would follow one). */
    ask("ok", "spawn v5 notrap");
    bl_pid v5 = victim("v5", "hi");
    BL_CHECK_EQ(bl_link(v5), 0);
    BL_CHECK_EQ(bl_unlink(v5), 0);
    BL_CHECK_EQ(bl_monitor(v5, &ref), 0);
    victim("v5", "sync");
    ask("ok", "exit v5 :bye");
    bl_reason bye = term_reason(BL_CUSTOM, "bye", &x);
    bl_msg_free(expect_reason(BL_TAG_DOWN, v5, &bye));
    uint32_t tag = BL_TAG_EXIT;
    BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &tag, 0, 0), -ETIMEDOUT);

    /* A monitor of {name, node}: DOWN from the node's pid; noproc for no such name. */
    ask("ok", "spawn v6 notrap");
    victim("v6", "hi");
    BL_CHECK_EQ(bl_dist_monitor_name("v6", ex_name, &ref), 0);
    victim("v6", "sync");
    ask("ok", "exit v6 :bye");
    m = expect_reason(BL_TAG_DOWN, BL_PID_NONE, &bye);
    BL_CHECK(m && m->ref == ref && strcmp(bl_dist_pid_node(m->from), ex_name) == 0);
    bl_msg_free(m);
    ei_x_free(&x);
    BL_CHECK_EQ(bl_dist_monitor_name("nosuch", ex_name, &ref), 0);
    m = expect_reason(BL_TAG_DOWN, BL_PID_NONE, &np);
    BL_CHECK(m && m->ref == ref);
    bl_msg_free(m);
    /* demonitor: nothing comes. */
    ask("ok", "spawn v7 notrap");
    bl_pid v7 = victim("v7", "hi");
    BL_CHECK_EQ(bl_monitor(v7, &ref), 0);
    BL_CHECK_EQ(bl_demonitor(ref, BL_DEMONITOR_INFO), 1);
    bl_ref ref2;
    BL_CHECK_EQ(bl_monitor(v7, &ref2), 0);
    ask("ok", "exit v7 :bye");
    m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
    BL_CHECK(m && m->ref == ref2);
    bl_msg_free(m);
}

/* ---- a supervised child that depends on a remote process ---- */

static _Atomic bl_pid sv_target; /* the remote process the next child links to */
static bl_pid sv_test;           /* the test process: told each child's target */

static void sv_child(void *arg)
{
    bl_pid t = atomic_load(&sv_target);
    BL_CHECK_EQ(bl_link(t), 0);
    BL_CHECK_EQ(bl_send(sv_test, 9, &t, sizeof t), 0);
    bl_msg_free(bl_receive(BL_INFINITY)); /* until its remote process dies, and it with it */
}

static int sv_start(void *arg, bl_pid *pid)
{
    return bl_spawn_link(pid, sv_child, arg, NULL);
}

/* The child dies with its remote process's reason; the supervisor starts it again. */
static void supervised_child_restarts(void)
{
    sv_test = bl_self();
    ask("ok", "spawn s1 notrap");
    ask("ok", "spawn s2 notrap");
    bl_pid s1 = victim("s1", "hi"), s2 = victim("s2", "hi");
    atomic_store(&sv_target, s1);
    bl_child_spec spec = {.id = "dep", .start = sv_start};
    bl_pid sup;
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, &spec, 1, NULL), 0);
    dt_expect(9, &s1, sizeof s1);
    bl_sup_child before, after;
    BL_CHECK_EQ(bl_supervisor_which_children(sup, &before, 1), 1);
    atomic_store(&sv_target, s2);
    ask("ok", "exit s1 :gone");
    dt_expect(9, &s2, sizeof s2); /* the restarted child linked to the other one */
    BL_CHECK_EQ(bl_supervisor_which_children(sup, &after, 1), 1);
    BL_CHECK(after.pid != before.pid && bl_is_alive(after.pid));
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_EXIT, 5000)); /* the trapping test hears its end */
}

/* The connection goes: noconnection on both sides; a node never reached: noconnection. */
static void connection_drops(void)
{
    bl_reason nc = BL_REASON(BL_NOCONNECTION);
    ask("ok", "spawn v8 trap");
    bl_pid v8 = victim("v8", "link");
    victim("v8", "monitor");
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(v8, &ref), 0);
    victim("v8", "sync");
    BL_CHECK_EQ(bl_dist_stop(), 0);
    bl_msg_free(expect_reason(BL_TAG_EXIT, v8, &nc));
    bl_msg *m = expect_reason(BL_TAG_DOWN, v8, &nc);
    BL_CHECK(m && m->ref == ref);
    bl_msg_free(m);
    ask("EXIT :noconnection", "event");
    ask("DOWN :noconnection", "event");

    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    char nowhere[64];
    dt_node("nosuch", nowhere, sizeof nowhere);
    BL_CHECK_EQ(bl_dist_monitor_name("x", nowhere, &ref), 0);
    m = expect_reason(BL_TAG_DOWN, BL_PID_NONE, &nc);
    BL_CHECK(m && m->ref == ref);
    bl_msg_free(m);
}

static void fail_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    elixir_sees_beamline_exits();
    beamline_sees_elixir_exits();
    supervised_child_restarts();
    connection_drops();
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_fail, links_monitors_and_exits_cross_both_ways, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, fail_main, NULL);
}
