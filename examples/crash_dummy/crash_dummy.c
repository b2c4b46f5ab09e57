/*
 * crash_dummy.c - the CrashDummy server and its supervisors (see
 * crash_dummy.h).
 *
 * Elixir raises to crash; C callbacks return a stop result with a custom
 * reason instead (the exit is abnormal just the same, and logged).
 */
#include <beamline.h>
#include <beamline/supervisor.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "crash_dummy.h"

/* ---- the dummy ---- */

enum { DUMMY_BOOM = 1, DUMMY_STOP_GRACEFULLY };

/* System.unique_integer([:positive]): a new number for every start. */
static _Atomic long unique_integer;

static void dummy_init(void *arg, void **state, bl_gs_result *r)
{
    printf("%s starting up!\n", (const char *)arg);
    /* The state is one number: kept in the state pointer itself, nothing to free. */
    *state = (void *)(intptr_t)(atomic_fetch_add(&unique_integer, 1) + 1);
}

static void dummy_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    static const char boom[] = "BOOM! CrashDummyServer crashed!";
    if (m->tag == DUMMY_BOOM) {
        bl_reason why = {.kind = BL_CUSTOM, .code = 1, .detail = boom, .detail_len = sizeof boom};
        bl_gs_stop(r, &why); /* an abnormal exit: Elixir's raise */
    } else if (m->tag == DUMMY_STOP_GRACEFULLY) {
        bl_gs_stop(r, NULL); /* {:stop, :normal, state} */
    }
}

static const bl_gen_server dummy_callbacks = {.init = dummy_init, .handle_cast = dummy_cast};

int crash_dummy_start_link(void *name, bl_pid *pid)
{
    bl_name n = BL_NAME_LOCAL(name);
    bl_gen_server_opts opts = {.name = &n};
    return bl_gen_server_start_link(pid, &dummy_callbacks, name, &opts);
}

static int dummy_cast_to(const char *name, uint32_t tag)
{
    bl_pid pid = bl_whereis(name);
    return pid ? bl_gen_server_cast(pid, tag, NULL, 0) : -ESRCH;
}

int crash_dummy_boom(const char *name)
{
    return dummy_cast_to(name, DUMMY_BOOM);
}

int crash_dummy_stop_gracefully(const char *name)
{
    return dummy_cast_to(name, DUMMY_STOP_GRACEFULLY);
}

long crash_dummy_state(const char *name)
{
    bl_pid pid = bl_whereis(name);
    void *state = NULL;
    int rc = pid ? bl_sys_get_state(pid, &state, 1000) : -ESRCH;
    return rc ? rc : (long)(intptr_t)state;
}

/* ---- the supervisors ---- */

/* A child spec: the id is also the dummy's name (ids must differ, as in Supervisor.child_spec). */
#define DUMMY(name, restart_type)                                                                  \
    {                                                                                              \
        .id = name, .start = crash_dummy_start_link, .arg = name, .restart = restart_type          \
    }

int crash_dummy_supervisor_start_link(bl_pid *sup, bl_sup_strategy strategy)
{
    static const bl_child_spec children[] = {
        DUMMY("dummy1", BL_RESTART_PERMANENT),
        DUMMY("dummy2", BL_RESTART_PERMANENT),
        DUMMY("dummy3", BL_RESTART_PERMANENT),
    };
    bl_sup_opts opts = {.strategy = strategy};
    return bl_supervisor_start_link(sup, children, 3, &opts);
}

int crash_dummy_restarts_supervisor_start_link(bl_pid *sup)
{
    static const bl_child_spec children[] = {
        DUMMY("permanent_dummy", BL_RESTART_PERMANENT),
        DUMMY("temporary_dummy", BL_RESTART_TEMPORARY),
        DUMMY("transient_dummy", BL_RESTART_TRANSIENT),
    };
    return bl_supervisor_start_link(sup, children, 3, NULL);
}

int crash_dummy_child(bl_pid sup, const char *id, bl_sup_child *out)
{
    bl_sup_child children[8];
    int n = bl_supervisor_which_children(sup, children, 8);
    for (int i = 0; i < n && i < 8; i++) {
        if (strcmp(children[i].id, id) == 0) {
            *out = children[i];
            return 0;
        }
    }
    return n < 0 ? n : -ENOENT;
}
