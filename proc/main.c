/*
 * proc/main.c - bl_main: the runtime around one main process.
 *
 * The runtime stops when the main process returns from its function.
 */
#include <errno.h>

#include "proc/proc.h"

typedef struct main_arg {
    bl_entry_fn fn;
    void *arg;
} main_arg;

static void main_entry(void *arg)
{
    main_arg *m = arg;
    m->fn(m->arg);
    bl_runtime_stop();
}

int bl_main(const bl_config *cfg, bl_entry_fn fn, void *arg)
{
    if (!fn) return -EINVAL;
    int rc = bl_runtime_start(cfg);
    if (rc) return rc;
    main_arg m = {fn, arg};
    rc = bl_spawn(&bl__rt->main_pid, main_entry, &m, NULL);
    if (rc) bl_runtime_stop();
    bl_runtime_wait();
    return rc;
}
