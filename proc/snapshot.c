/*
 * proc/snapshot.c - the process snapshot: every live process read straight
 * from the process table, asking none of them (beamline/info.h).
 *
 * Why it is safe: the table's chunks are never unmapped while the runtime
 * runs (core/proc.c), so any slot below the extent can be read at any time;
 * the mailbox word says whether the slot holds a live process and of which
 * generation, and it is read again after the fields: a slot whose process
 * died (or was replaced) meanwhile is left out.  Only fields published for
 * this (BL_PUBLISH in core/proc.h) are read, never a pointer is followed:
 * a stack's size comes from the size the process asked for, not from the
 * stack's descriptor, which may be unmapped at any moment.
 *
 * Why it is fast: one pass over the table, a handful of loads per slot and
 * a name lookup only for processes that hold a name (their flag says so).
 */
#include <errno.h>
#include <string.h>

#include "core/names.h"
#include "proc/otp.h"
#include "proc/proc.h"

const char *bl_proc_kind_name(bl_proc_kind k)
{
    static const char *const names[] = {"plain", "handler", "gen_server", "supervisor", "task"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void bl__proc_kind_set(bl_proc_kind k)
{
    bl_proc *p = bl__self();
    /* Relaxed: the snapshot reads it as a hint; the owner is the only writer. */
    if (p) atomic_store_explicit(&p->kind, (uint8_t)k, memory_order_relaxed);
}

typedef struct snap_ctx {
    bl_proc_snap *out;    /* where entries go */
    size_t max;           /* room in out */
    size_t n;             /* live processes seen */
    size_t default_stack; /* the runtime's stack size, for stack_req 0 */
} snap_ctx;

/* Reads slot p into *o; false when it holds no live process (or lost it meanwhile). */
static bool read_slot(bl_proc *p, uint64_t meta, bl_proc_snap *o, size_t default_stack)
{
    o->pid = bl__pid_make(BL_PEEK(p->index), bl__meta_gen(meta));
    o->status = (bl_proc_status)atomic_load_explicit(&p->status, memory_order_relaxed);
    o->kind = (bl_proc_kind)atomic_load_explicit(&p->kind, memory_order_relaxed);
    o->priority = (bl_priority)BL_PEEK(p->prio);
    o->message_queue_len = BL_PEEK(p->q_len);
    o->reductions = BL_PEEK(p->reductions);
    size_t req = BL_PEEK(p->stack_req);
    /* An idle handler's stack is one its scheduler let it keep for its
     * next message (sched/keep.c), counted as the pool's: none, as
     * bl_process_info says. */
    bool idle_handler = o->status == BL_PROC_WAITING &&
                        (o->kind == BL_KIND_HANDLER || o->kind == BL_KIND_GEN_SERVER ||
                         o->kind == BL_KIND_SUPERVISOR);
    o->stack_bytes =
        BL_PEEK(p->stack) && !idle_handler ? (req ? bl__stack_round(req) : default_stack) : 0;
    o->memory = sizeof(bl_proc) + o->stack_bytes;
    o->name[0] = 0;
    if (atomic_load_explicit(&p->named, memory_order_relaxed)) {
        char name[BL_NAME_MAX + 1];
        if (bl__names_name_of(o->pid, name, sizeof name) == 0) {
            size_t len = strnlen(name, sizeof o->name - 1);
            memcpy(o->name, name, len);
            o->name[len] = 0;
        }
    }
    /* Read again: a process that died while it was read is not listed. */
    uint64_t again = bl__box_load(p).meta;
    return bl__meta_state(again) != BL_ST_FREE && bl__meta_gen(again) == bl__meta_gen(meta);
}

static void snap_one(bl_proc *p, void *arg)
{
    snap_ctx *c = arg;
    uint64_t meta = bl__box_load(p).meta;
    if (bl__meta_state(meta) == BL_ST_FREE) return;
    if (c->n >= c->max) {
        c->n++;
        return;
    }
    if (read_slot(p, meta, &c->out[c->n], c->default_stack)) c->n++;
}

int bl_process_snapshot(bl_pid pid, bl_proc_snap *out)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return -ESRCH;
    if (!out) return -EINVAL;
    bl_proc *p = bl__proc_lookup(pid);
    if (!p) return bl__pid_wellformed(pid) ? -ESRCH : -EINVAL;
    uint64_t meta = bl__box_load(p).meta;
    if (!bl__meta_is(meta, pid)) return -ESRCH;
    return read_slot(p, meta, out, rt->cfg.stack_size) ? 0 : -ESRCH;
}

int64_t bl_processes_snapshot(bl_proc_snap *out, size_t max)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return -ESRCH;
    if (!out && max) return -EINVAL;
    snap_ctx c = {out, out ? max : 0, 0, rt->cfg.stack_size};
    bl__ptab_each(snap_one, &c);
    return (int64_t)c.n;
}
