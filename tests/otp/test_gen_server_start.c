/*
 * gen_server start_link failures: a trapping caller finds no EXIT from the
 * server that failed to start, whatever the failure (proc_lib:start_link's
 * flush); a caller that does not trap exits still dies of an abnormal one.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"

enum { M_OK, M_IGNORE, M_STOP, M_EXIT, M_SLOW, M_BAD };

static void f_init(void *arg, void **state, bl_gs_result *r)
{
    int mode = (int)(intptr_t)arg;
    *state = arg;
    switch (mode) {
    case M_IGNORE:
        bl_gs_ignore(r);
        break;
    case M_STOP: {
        bl_reason why = {.kind = BL_CUSTOM, .code = 5};
        bl_gs_stop(r, &why);
        break;
    }
    case M_EXIT: {
        /* Dies inside init: the caller sees the DOWN before any ack. */
        bl_reason why = {.kind = BL_CUSTOM, .code = 6};
        bl_exit_reason(&why);
        break;
    }
    case M_SLOW:
        bl_sleep(5000);
        break;
    case M_BAD:
        bl_gs_timeout(r, 10);
        bl_gs_hibernate(r);
        break;
    }
}

static const bl_gen_server f_cb = {.init = f_init};

/* Nothing from a process other than the test's helpers is left queued. */
static bool no_exit_left(void)
{
    uint32_t tag = BL_TAG_EXIT;
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_tag, &tag, 0, 0) == 0) {
        bl_msg_free(m);
        return false;
    }
    return bl_mailbox_len() == 0;
}

static void flush_main(void *arg)
{
    bl_trap_exit(true);
    bl_pid pid;
    /* ignore: the server exits normally. */
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &f_cb, (void *)M_IGNORE, NULL), BL_GS_IGNORED);
    BL_CHECK(no_exit_left());
    /* stop: the reason comes back in opts.error, not as an EXIT. */
    bl_msg *err = NULL;
    bl_gen_server_opts o = {.error = &err};
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &f_cb, (void *)M_STOP, &o), -ECHILD);
    bl_reason why;
    BL_CHECK(err && bl_msg_reason(err, &why) == 0 && why.kind == BL_CUSTOM && why.code == 5);
    bl_msg_free(err);
    BL_CHECK(no_exit_left());
    /* A death inside init. */
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &f_cb, (void *)M_EXIT, &o), -ECHILD);
    BL_CHECK(err && bl_msg_reason(err, &why) == 0 && why.code == 6);
    bl_msg_free(err);
    BL_CHECK(no_exit_left());
    /* A bad result from init: bad_return_value. */
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &f_cb, (void *)M_BAD, &o), -ECHILD);
    BL_CHECK(err && bl_msg_reason(err, &why) == 0 && why.code == BL_GS_EBADRETURN);
    bl_msg_free(err);
    BL_CHECK(no_exit_left());
    /* A taken name: the second server exits normally, the holder comes back. */
    bl_name n = BL_NAME_LOCAL("taken");
    bl_gen_server_opts named = {.name = &n};
    bl_pid holder, other;
    BL_CHECK_EQ(bl_gen_server_start_link(&holder, &f_cb, (void *)M_OK, &named), 0);
    BL_CHECK_EQ(bl_gen_server_start_link(&other, &f_cb, (void *)M_OK, &named), -EEXIST);
    BL_CHECK_EQ(other, holder);
    BL_CHECK(no_exit_left());
    /* A timeout: the server is killed. */
    bl_gen_server_opts slow = {.timeout = 20};
    BL_CHECK_EQ(bl_gen_server_start_link(&pid, &f_cb, (void *)M_SLOW, &slow), -ETIMEDOUT);
    BL_CHECK(no_exit_left());
    /* The holder is still linked and running: its EXIT is not taken. */
    BL_CHECK_EQ(bl_gen_server_stop(holder, NULL, 1000), 0);
    bl_msg *ex = bl_test_recv_tag(BL_TAG_EXIT, 1000);
    BL_CHECK(ex && ex->from == holder);
    bl_msg_free(ex);
    BL_CHECK(no_exit_left());
}

Test(gen_server_start, failed_start_link_leaves_no_exit)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, flush_main, NULL);
}

/* ---- a caller that does not trap exits ---- */

static void plain_starter(void *arg)
{
    bl_pid pid, test;
    bl_gen_server_start_link(&pid, &f_cb, arg, NULL);
    /* Not reached for M_STOP: the link has killed this process. */
    bl_msg *m = bl_receive(5000);
    if (!m) return;
    memcpy(&test, m->data, sizeof test);
    bl_msg_free(m);
    bl_send(test, 1, NULL, 0);
}

static void untrapped_main(void *arg)
{
    /* init stops abnormally: the link kills the caller with that reason. */
    bl_pid helper;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&helper, &ref, plain_starter, (void *)M_STOP, NULL), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 5000, 0), 0);
    bl_reason why;
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_CUSTOM && why.code == 5);
    bl_msg_free(m);
    /* init ignores: a normal exit, the caller lives on. */
    BL_CHECK_EQ(bl_spawn_monitor(&helper, &ref, plain_starter, (void *)M_IGNORE, NULL), 0);
    bl_pid me = bl_self();
    BL_CHECK_EQ(bl_send(helper, 2, &me, sizeof me), 0);
    bl_msg *ping = bl_test_recv_tag(1, 5000);
    BL_CHECK(ping != NULL);
    bl_msg_free(ping);
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 5000, 0), 0);
    BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(m);
}

Test(gen_server_start, untrapped_caller)
{
    bl_config c = {.quiet = true};
    bl_test_run(&c, untrapped_main, NULL);
}
