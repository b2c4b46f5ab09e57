/*
 * proc/alias.c - process aliases (Erlang's alias/unalias and monitor
 * aliases) and the callers list (Elixir's $callers).
 *
 * An alias is a reference its owner accepts messages through.  A message
 * sent to one carries BL_MSG_ALIAS and the reference; the owner's drain
 * lets it into the mailbox only while the reference is one of its active
 * aliases, so deactivating an alias also stops what is already on its way.
 * Calls use the same mechanism: the call's alias lives in the PCB
 * (p->alias, bl__alias_set), where the drain checks it first without
 * looking further; every other alias is in the process's bl_psig, which
 * only the owner touches, like its links and monitors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc/otp.h"
#include "proc/proc.h"

/* Index of alias ref in g, or -1. */
static int find(const bl_psig *g, bl_ref ref)
{
    for (uint32_t i = 0; g && i < g->naliases; i++)
        if (g->aliases[i].ref == ref) return (int)i;
    return -1;
}

static void del_at(bl_psig *g, int i)
{
    g->aliases[i] = g->aliases[--g->naliases];
}

int bl__alias_add(bl_proc *p, bl_ref ref, uint32_t mode)
{
    bl_psig *g = bl__psig(p);
    if (!g) return -ENOMEM;
    if (g->naliases == g->capaliases) {
        uint32_t nc = g->capaliases ? g->capaliases * 2 : 2;
        bl_alias_ent *a = realloc(g->aliases, nc * sizeof *a);
        if (!a) return -ENOMEM;
        g->aliases = a;
        g->capaliases = nc;
    }
    g->aliases[g->naliases++] = (bl_alias_ent){ref, mode};
    return 0;
}

bool bl__alias_accept(bl_proc *p, const bl_msg *m)
{
    bl_psig *g = p->sig;
    if (!g || !g->naliases) return false;
    int i = find(g, m->ref);
    if (i < 0) return false;
    uint32_t mode = g->aliases[i].mode;
    if (mode == BL_AMODE_REPLY || mode == BL_AMODE_MON_REPLY) {
        /* A reply-once alias lets this message in and no other. */
        del_at(g, i);
        /* reply_demonitor: the reply ends the monitor too. */
        if (mode == BL_AMODE_MON_REPLY) bl__monitor_end(p, m->ref, true);
    }
    return true;
}

void bl__alias_monitor_ended(bl_proc *p, bl_ref ref)
{
    int i = find(p->sig, ref);
    if (i < 0) return;
    uint32_t mode = p->sig->aliases[i].mode;
    /* An explicit alias outlives its monitor. */
    if (mode == BL_AMODE_MON_DEMONITOR || mode == BL_AMODE_MON_REPLY) del_at(p->sig, i);
}

int bl_alias(unsigned flags, bl_ref *ref)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!ref || flags > BL_ALIAS_REPLY) return -EINVAL;
    bl_ref r = bl_make_ref();
    int rc = bl__alias_add(p, r, flags == BL_ALIAS_REPLY ? BL_AMODE_REPLY : BL_AMODE_EXPLICIT);
    if (rc) return rc;
    *ref = r;
    return 0;
}

int bl_unalias(bl_ref ref)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (ref == BL_REF_NONE) return -EINVAL;
    if (p->alias == ref) {
        p->alias = BL_REF_NONE;
        return 1;
    }
    int i = find(p->sig, ref);
    if (i < 0) return 0;
    del_at(p->sig, i);
    return 1;
}

int bl_send_alias(bl_pid to, uint32_t tag, bl_ref alias, const void *data, size_t len)
{
    if (tag >= BL_TAG_SYSTEM || alias == BL_REF_NONE) return -EINVAL;
    return bl__send_ex(to, tag, alias, data, len, BL_MSG_ALIAS);
}

void bl__alias_set(bl_ref ref)
{
    bl_proc *p = bl__self();
    if (p) p->alias = ref;
}

/* ---- callers ---- */

/* Sets p's callers to first (if not BL_PID_NONE) followed by rest[0..n), cut to BL_CALLERS_MAX. */
static int callers_set(bl_proc *p, bl_pid first, const bl_pid *rest, size_t n)
{
    size_t lead = first ? 1 : 0;
    if (n > BL_CALLERS_MAX - lead) n = BL_CALLERS_MAX - lead;
    bl_psig *g = bl__psig(p);
    if (!g) return -ENOMEM;
    bl_pid *c = NULL;
    if (lead + n == 1) {
        /* The common case, a task and its owner: kept in the record itself. */
        c = &g->caller_inl;
        *c = lead ? first : rest[0];
    } else if (lead + n) {
        c = malloc((lead + n) * sizeof *c);
        if (!c) return -ENOMEM;
        if (lead) c[0] = first;
        if (n) memcpy(c + lead, rest, n * sizeof *c);
    }
    if (g->callers != &g->caller_inl) free(g->callers);
    g->callers = c;
    g->ncallers = (uint32_t)(lead + n);
    return 0;
}

int bl__callers_inherit(bl_proc *parent, bl_proc *child)
{
    /* The child is not published yet: only the spawner writes its record. */
    bl_psig *pg = parent->sig;
    return callers_set(child, bl__proc_pid(parent), pg ? pg->callers : NULL, pg ? pg->ncallers : 0);
}

int bl__callers_set(const bl_pid *pids, size_t n)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (n && !pids) return -EINVAL;
    return callers_set(p, BL_PID_NONE, pids, n);
}
