/*
 * proc/main.c - bl_main: the runtime around one main process.
 *
 * The runtime stops when the main process ends, however it ends: the exit
 * path of every process (bl__hook_proc_finish) calls bl__main_exited for
 * the one spawned with BL_SPAWN_MAIN, after its links and monitors heard of
 * its death, and bl_main returns the status recorded there.
 */
#include <errno.h>
#include <stdatomic.h>

#include "proc/proc.h"

typedef struct main_arg {
    bl_entry_fn fn;
    void *arg;
} main_arg;

/* What bl_main returns once the runtime stopped (0 until the main process ends badly). */
static _Atomic int main_status;

static void main_entry(void *arg)
{
    main_arg *m = arg;
    m->fn(m->arg);
}

void bl__main_exited(const bl_proc *p)
{
    const bl_reason *r = &p->reason;
    int st = 0;
    if (!bl_reason_is_clean(r))
        st = r->kind == BL_CUSTOM && r->code > 0 && r->code < 256 ? r->code : 1;
    /* Relaxed: bl_main reads it after joining the scheduler threads, which
     * orders this store before the read. */
    atomic_store_explicit(&main_status, st, memory_order_relaxed);
    bl_runtime_stop();
}

int bl_main(const bl_config *cfg, bl_entry_fn fn, void *arg)
{
    if (!fn) return -EINVAL;
    int rc = bl_runtime_start(cfg);
    if (rc) return rc;
    /* Relaxed: the spawn below publishes the process that may overwrite it. */
    atomic_store_explicit(&main_status, 0, memory_order_relaxed);
    main_arg m = {fn, arg};
    rc = bl__spawn(&bl__rt->main_pid, main_entry, &m, NULL, NULL, BL_SPAWN_MAIN, BL_REF_NONE);
    if (rc) bl_runtime_stop();
    bl_runtime_wait();
    return rc ? rc : atomic_load_explicit(&main_status, memory_order_relaxed);
}
