/*
 * proc/name.c - registered names: the runtime side of core/names.c.
 *
 * The table itself knows nothing of processes.  Here a registration is tied
 * to its process's life: the PCB's `named` flag tells the exit path to free
 * the name, and a registration that races with the death of its process is
 * undone by whichever side comes second (see bl_register).
 */
#include <errno.h>
#include <string.h>

#include "core/names.h"
#include "proc/proc.h"

int bl_register(const char *name, bl_pid pid)
{
    if (!bl__rt) return -ESRCH;
    bl_proc *p = bl__proc_lookup(pid);
    if (!p) return -EINVAL;
    if (!bl_is_alive(pid)) return -ESRCH;
    int rc = bl__names_register(name, pid);
    if (rc) return rc;
    /* Seq_cst store, then the liveness check: the exit path closes the
     * mailbox, then reads `named`.  Either it sees the flag and frees the
     * name, or we see the closed mailbox and free it ourselves. */
    atomic_store_explicit(&p->named, 1, memory_order_seq_cst);
    if (!bl_is_alive(pid)) {
        bl_pid owner;
        if (bl__names_whereis(name) == pid) bl__names_unregister(name, &owner);
        return -ESRCH;
    }
    return 0;
}

int bl_unregister(const char *name)
{
    if (!bl__rt) return -ESRCH;
    bl_pid owner = BL_PID_NONE;
    /* The owner's `named` flag stays set: its exit then finds no name, which is harmless. */
    return bl__names_unregister(name, &owner);
}

bl_pid bl_whereis(const char *name)
{
    return bl__rt ? bl__names_whereis(name) : BL_PID_NONE;
}

int bl_send_name(const char *name, uint32_t tag, const void *data, size_t len)
{
    if (!bl__rt) return -ESRCH;
    bl_pid pid = bl__names_whereis(name);
    if (!pid) return -ENOENT;
    return bl_send(pid, tag, data, len);
}

int bl_monitor_name(const char *name, bl_ref *ref)
{
    bl_proc *self = bl__self();
    if (!self) return -EPERM;
    if (!ref || !name || !name[0]) return -EINVAL;
    /* The names bl_register refuses are refused here too, with its errors. */
    if (strnlen(name, BL_NAME_MAX + 1) > BL_NAME_MAX) return -ENAMETOOLONG;
    bl_pid pid = bl__names_whereis(name);
    if (pid) return bl_monitor(pid, ref);
    /* Nobody by that name: DOWN noproc at once, as for a dead pid. */
    bl_ref r = bl_make_ref();
    bl_reason np = BL_REASON(BL_NOPROC);
    int rc = bl__down_to_self(self, BL_PID_NONE, r, &np);
    if (rc == 0) *ref = r;
    return rc;
}

/* Called on the scheduler by a process's exit path, after its mailbox is closed. */
void bl__name_release(bl_proc *p)
{
    /* Seq_cst: pairs with bl_register's store-then-check. */
    if (atomic_load_explicit(&p->named, memory_order_seq_cst)) {
        atomic_store_explicit(&p->named, 0, memory_order_relaxed);
        bl__names_unregister_pid(bl__proc_pid(p));
    }
}
