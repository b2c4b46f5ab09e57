/*
 * tests/otp/reg_test.h - starting and stopping the registries the registry
 * tests use.
 */
#ifndef REG_TEST_H
#define REG_TEST_H

#include "beamline/gen_server.h"
#include "beamline/registry.h"
#include "bl_test.h"

/* Each test program uses some of these. */
#define REGT static __attribute__((unused))

/* Starts a registry of keys kind over the given partitions. */
REGT bl_registry *start_reg(bl_registry_kind kind, unsigned partitions)
{
    bl_registry_opts o = {.keys = kind, .partitions = partitions};
    bl_registry *reg = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    return reg;
}

/* Stops reg and gives the handle back (nothing when reg is NULL). */
REGT void stop_reg(bl_registry *reg)
{
    if (!reg) return;
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    bl_registry_release(reg);
}

/* A gen_server that answers every call with "pong" (for via names). */
REGT void srv_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state, (void)m;
    bl_gs_reply(r, "pong", 4);
}

REGT const bl_gen_server srv = {.handle_call = srv_call};

#endif /* REG_TEST_H */
