/*
 * otp/supervisor/shutdown.c - shutting children down, the one routine all
 * the supervisors use: monitor, then unlink (an EXIT already queued means
 * the child is dead and gets no signal), send shutdown (or kill for
 * brutal_kill), wait for the DOWNs, killing each child at its own deadline.
 * Supervisor calls it one child at a time in reverse start order;
 * DynamicSupervisor with all its children at once.
 */
#include <errno.h>
#include <stdlib.h>

#include "otp/supervisor/supervisor_int.h"
#include "otp/wait.h"

/* A spec's shutdown in ms, BL_SHUTDOWN_INFINITY or BL_SHUTDOWN_BRUTAL_KILL. */
int64_t bl__sup_shutdown_of(int64_t shutdown, bl_child_type type)
{
    if (shutdown != BL_SHUTDOWN_DEFAULT) return shutdown;
    return type == BL_CHILD_SUPERVISOR ? BL_SHUTDOWN_INFINITY : 5000;
}

/* One child being shut down by bl__sup_terminate. */
typedef struct term_ent {
    bl_pid pid;       /* the child */
    bl_ref ref;       /* our monitor on it */
    int64_t shutdown; /* resolved: ms > 0, infinity or brutal_kill */
    int64_t deadline; /* when to kill it; INT64_MAX: never */
    bool exited;      /* its EXIT was in the mailbox: it is dead already */
    bool killed;      /* nothing more to send: kill sent, or it exited */
    bool done;        /* its DOWN came */
} term_ent;

/* The entries being waited for, sorted by pid, then by ref. */
typedef struct term_set {
    term_ent *e;
    size_t n;
} term_set;

static int ent_pid_cmp(const void *a, const void *b)
{
    bl_pid x = ((const term_ent *)a)->pid, y = ((const term_ent *)b)->pid;
    return x < y ? -1 : x > y;
}

static int ent_ref_cmp(const void *a, const void *b)
{
    bl_ref x = ((const term_ent *)a)->ref, y = ((const term_ent *)b)->ref;
    return x < y ? -1 : x > y;
}

/* An EXIT from one of the set (sorted by pid). */
static bool match_exit_in(const bl_msg *m, void *arg)
{
    term_set *s = arg;
    term_ent key = {.pid = m->from};
    return m->tag == BL_TAG_EXIT && bsearch(&key, s->e, s->n, sizeof key, ent_pid_cmp);
}

/* A DOWN of one of our monitors (the set sorted by ref). */
static bool match_down_in(const bl_msg *m, void *arg)
{
    term_set *s = arg;
    term_ent key = {.ref = m->ref};
    return m->tag == BL_TAG_DOWN && bsearch(&key, s->e, s->n, sizeof key, ent_ref_cmp);
}

/*
 * Process only: shuts down the children pids[0..n) all at once and returns
 * when all are dead (Erlang's shutdown/2 and DynamicSupervisor's
 * terminate_children).  Each is monitored, then unlinked, so a DOWN is sure
 * to come and no EXIT comes after; an EXIT it sent before the unlink is
 * taken out of the mailbox (it had exited already and gets no signal).  The
 * others get exit shutdown (kill for brutal_kill), and one still alive at
 * its deadline (now + its shutdown ms) is killed.  shutdown[i] is resolved
 * (ms > 0, infinity or brutal_kill).  The supervisor calls it with n = 1,
 * one child at a time.
 */
void bl__sup_terminate(const bl_pid *pids, const int64_t *shutdown, size_t n)
{
    enum { SMALL = 8 };
    term_ent small[SMALL];
    term_ent *e = n <= SMALL ? small : malloc(n * sizeof *e);
    if (!e) {
        /* No memory for the whole set: a few at a time, each still bounded. */
        for (size_t i = 0; i < n; i += SMALL)
            bl__sup_terminate(pids + i, shutdown + i, n - i < SMALL ? n - i : SMALL);
        return;
    }
    bl_cleanup c; /* held across the waits for the children's DOWN */
    if (e != small) bl_cleanup_push(&c, free, e);
    bl_reason shut = BL_REASON(BL_SHUTDOWN), kill = BL_REASON(BL_KILL);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        term_ent *t = &e[k];
        *t = (term_ent){.pid = pids[i], .shutdown = shutdown[i], .deadline = INT64_MAX};
        if (bl_monitor(t->pid, &t->ref) != 0) {
            /* Cannot wait for it (no memory): make sure it dies. */
            bl_unlink(t->pid);
            bl_exit_pid(t->pid, &kill);
            continue;
        }
        bl_unlink(t->pid);
        k++;
    }
    term_set set = {e, k};
    qsort(e, k, sizeof *e, ent_pid_cmp);
    bl_msg *m;
    while (bl_recv(&m, match_exit_in, &set, 0, 0) == 0) {
        term_ent key = {.pid = m->from};
        term_ent *t = bsearch(&key, e, k, sizeof key, ent_pid_cmp);
        t->exited = true;
        bl_msg_free(m);
    }
    int64_t now = bl__otp_now_ms();
    for (size_t i = 0; i < k; i++) {
        term_ent *t = &e[i];
        if (t->exited) {
            t->killed = true;
        } else if (t->shutdown == BL_SHUTDOWN_BRUTAL_KILL) {
            bl_exit_pid(t->pid, &kill);
            t->killed = true;
        } else {
            bl_exit_pid(t->pid, &shut);
            if (t->shutdown > 0) t->deadline = now + t->shutdown;
        }
    }
    qsort(e, k, sizeof *e, ent_ref_cmp);
    size_t left = k;
    while (left > 0) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < k; i++)
            if (!e[i].done && !e[i].killed && e[i].deadline < next) next = e[i].deadline;
        int64_t timeout = BL_INFINITY;
        if (next != INT64_MAX) {
            now = bl__otp_now_ms();
            timeout = next > now ? next - now : 0;
        }
        int rc = bl_recv(&m, match_down_in, &set, timeout, 0);
        if (rc == 0) {
            term_ent key = {.ref = m->ref};
            term_ent *t = bsearch(&key, e, k, sizeof key, ent_ref_cmp);
            if (!t->done) {
                t->done = true;
                left--;
            }
            bl_msg_free(m);
        } else if (rc == -ETIMEDOUT) {
            now = bl__otp_now_ms();
            for (size_t i = 0; i < k; i++) {
                term_ent *t = &e[i];
                if (t->done || t->killed || t->deadline > now) continue;
                bl_exit_pid(t->pid, &kill);
                t->killed = true;
            }
        } else {
            break; /* not in a process: nothing to wait with */
        }
    }
    if (e != small) {
        bl_cleanup_pop(&c, true); /* frees e */
    }
}
