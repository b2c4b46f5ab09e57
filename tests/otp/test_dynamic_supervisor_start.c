/*
 * DynamicSupervisor: start_child beyond the plain case: a child whose name
 * is already taken ({:error, {:already_started, pid}} with the holder's
 * pid), a start function that returns extra info ({:ok, pid, info}), with
 * and without extra_arguments, and significant children (refused: no
 * auto_shutdown in a dynamic supervisor, as in Elixir).
 */
#include <errno.h>
#include <stdint.h>

#include "bl_test.h"
#include "beamline/dynamic_supervisor.h"
#include "beamline/gen_server.h"

static bl_config g_cfg = {.quiet = true};
static int g_extra; /* its address is the extra argument */

static const bl_gen_server gs_child = {0};

/* A gen_server child registered under the name in arg. */
static int start_named(void *arg, bl_pid *pid)
{
    bl_name name = BL_NAME_LOCAL(arg);
    bl_gen_server_opts o = {.name = &name};
    return bl_gen_server_start_link(pid, &gs_child, NULL, &o);
}

/* A child whose info is its own pid ({ok, Pid, Info}). */
static int start_info(void *arg, bl_pid *pid, bl_child_info *info)
{
    int rc = bl_gen_server_start_link(pid, &gs_child, NULL, NULL);
    if (rc == 0) bl_child_info_set(info, pid, sizeof *pid);
    return rc;
}

/* As start_info, under extra_arguments: arg is a bl_dynsup_args. */
static int start_info_extra(void *arg, bl_pid *pid, bl_child_info *info)
{
    const bl_dynsup_args *a = arg;
    if (a->extra != &g_extra || a->arg != &g_cfg) return -EBADE;
    return start_info(NULL, pid, info);
}

static bl_pid info_pid(const bl_child_info *info)
{
    bl_pid p = 0;
    BL_CHECK_EQ(info->len, sizeof p);
    if (info->len == sizeof p) memcpy(&p, info->data, sizeof p);
    return p;
}

static void dyn_main(void *arg)
{
    bl_pid sup, p = 7;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, NULL), 0);
    /* already_started: the holder of the name. */
    BL_CHECK_EQ(bl_register("dyn_taken", bl_self()), 0);
    bl_child_spec named = {.start = start_named, .arg = "dyn_taken"};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &named, &p), BL_SUP_ALREADY_STARTED);
    BL_CHECK_EQ(p, bl_self());
    bl_child_info info = {.len = 5};
    p = 7;
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child_info(sup, &named, &p, &info), -EEXIST);
    BL_CHECK_EQ(p, bl_self());
    BL_CHECK_EQ(info.len, 0);
    BL_CHECK_EQ(bl_dynamic_supervisor_which_children(sup, NULL, 0), 0);
    /* A free name starts. */
    named.arg = "dyn_free";
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &named, &p), 0);
    BL_CHECK_EQ(bl_whereis("dyn_free"), p);
    /* {ok, pid, info}. */
    bl_child_spec c = {.start_info = start_info};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child_info(sup, &c, &p, &info), 0);
    BL_CHECK(p != 0);
    BL_CHECK_EQ(info_pid(&info), p);
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &c, &p), 0); /* info dropped */
    /* A restart after a crash uses start_info again (its info goes nowhere). */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(p, &kill), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    bl_sup_counts k;
    BL_CHECK_EQ(bl_dynamic_supervisor_count_children(sup, &k), 0);
    BL_CHECK(k.specs == 3 && k.active == 3);
    /* Significant children and bad start pairs are refused. */
    bl_child_spec sig = {
        .start = start_named, .restart = BL_RESTART_TEMPORARY, .significant = true};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &sig, &p), -EINVAL);
    bl_child_spec both = {.start = start_named, .start_info = start_info};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child(sup, &both, &p), -EINVAL);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);

    /* With extra_arguments, start_info gets the pair too. */
    bl_dynsup_opts o = {.extra_arguments = &g_extra};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_link(&sup, &o), 0);
    bl_child_spec e = {.start_info = start_info_extra, .arg = &g_cfg};
    BL_CHECK_EQ(bl_dynamic_supervisor_start_child_info(sup, &e, &p, &info), 0);
    BL_CHECK_EQ(info_pid(&info), p);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, 5000), 0);
}

Test(dynamic_supervisor_start, already_started_info_and_significant)
{
    bl_test_run(&g_cfg, dyn_main, NULL);
}
