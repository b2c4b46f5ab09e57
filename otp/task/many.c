/*
 * otp/task/many.c - many tasks at once: bl_task_yield_many and
 * bl_task_await_many.  The tasks are indexed by reference (reftab.c), so
 * each message is tested in constant time however many tasks are waited for.
 */
#include <errno.h>

#include "otp/task/task_int.h"

/*
 * Shuts down (brutal_kill) the tasks of the array not settled yet, or only
 * the linked ones when ignore_unlinked (the others are ignored).  The kill
 * signals all go out first, so the tasks die together; each is then
 * collected as bl_task_shutdown does, into res[i].
 */
static void shutdown_pending(bl_task *tasks, bl_task_result *res, size_t n, bool ignore_unlinked)
{
    bl_reason kill = BL_REASON(BL_KILL);
    for (size_t i = 0; i < n; i++) {
        bl_task *t = &tasks[i];
        if (t->ref == BL_REF_NONE || !t->pid || (ignore_unlinked && !(t->flags & F_LINK)))
            continue; /* settled, no process (bl_task_completed), or to be ignored */
        if (t->flags & F_LINK) bl_unlink(t->pid);
        bl_exit_pid(t->pid, &kill);
    }
    for (size_t i = 0; i < n; i++) {
        bl_task *t = &tasks[i];
        if (t->ref == BL_REF_NONE) continue;
        if (ignore_unlinked && !(t->flags & F_LINK))
            bl__task_ignore_one(t, &res[i], i);
        else
            bl__task_shutdown_one(t, BL_TASK_BRUTAL_KILL, &res[i], i);
    }
}

/* Checks a task array for the many-task calls and indexes it by reference. */
static int check_many(bl_task *tasks, size_t n, int64_t timeout, bl_task_result *res, reftab *tab)
{
    if (n && (!tasks || !res)) return -EINVAL;
    if (!bl_self()) return -EPERM;
    if (!bl__task_timeout_ok(timeout)) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = bl__task_check(&tasks[i]);
        if (rc) return rc;
    }
    if (bl__task_tab_init(tab, n) != 0) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (bl__task_tab_find(tab, tasks[i].ref) != TAB_NONE) {
            bl__task_tab_fini(tab);
            return -EINVAL; /* the same task twice */
        }
        bl__task_tab_put(tab, tasks[i].ref, (uint32_t)i);
        bl__task_res_nil(&res[i], i);
    }
    return 0;
}

/* A cleanup handler: the table goes with a caller killed while it waits. */
static void tab_free(void *arg)
{
    bl__task_tab_fini(arg);
}

/* Settles whichever listed task m is about, and unlists it.  Returns its index. */
static size_t settle_listed(bl_task *tasks, bl_task_result *res, reftab *tab, bl_msg *m)
{
    uint32_t i = bl__task_tab_get(tab, m->ref);
    bl__task_tab_del(tab, m->ref);
    bl__task_settle(&tasks[i], m, &res[i], i);
    return i;
}

int bl_task_yield_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res,
                       const bl_task_yield_opts *opts)
{
    bl_task_on_timeout on = opts ? opts->on_timeout : BL_TASK_ON_TIMEOUT_DEFAULT;
    if (on > BL_TASK_ON_TIMEOUT_KILL_TASK) return -EINVAL;
    reftab tab;
    int rc = check_many(tasks, n, timeout_ms, res, &tab);
    if (rc) return rc;
    bl_cleanup c;
    bl_cleanup_push(&c, tab_free, &tab); /* held across the waits */
    size_t limit = opts && opts->limit && opts->limit < n ? opts->limit : n;
    uint64_t deadline = bl__task_deadline_in(timeout_ms);
    size_t got = 0;
    while (got < limit) {
        bl_msg *m = NULL;
        if (bl_recv(&m, bl__task_match_tab, &tab, bl__task_ms_left(deadline), 0) != 0) break;
        settle_listed(tasks, res, &tab, m);
        got++;
    }
    bl_cleanup_pop(&c, true); /* frees the table */
    if (got == limit || on == BL_TASK_ON_TIMEOUT_DEFAULT || on == BL_TASK_ON_TIMEOUT_NOTHING)
        return (int)got;
    if (on == BL_TASK_ON_TIMEOUT_IGNORE) {
        for (size_t i = 0; i < n; i++)
            if (res[i].status == BL_TASK_NIL && tasks[i].ref != BL_REF_NONE &&
                bl__task_ignore_one(&tasks[i], &res[i], i) != BL_TASK_NIL)
                got++;
        return (int)got;
    }
    shutdown_pending(tasks, res, n, false);
    got = 0;
    for (size_t i = 0; i < n; i++) got += res[i].status != BL_TASK_NIL;
    return (int)got;
}

int bl_task_await_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res)
{
    reftab tab;
    int rc = check_many(tasks, n, timeout_ms, res, &tab);
    if (rc) return rc;
    bl_cleanup c;
    bl_cleanup_push(&c, tab_free, &tab); /* held across the waits */
    uint64_t deadline = bl__task_deadline_in(timeout_ms);
    int fail = 0;
    for (size_t pending = n; pending; pending--) {
        bl_msg *m = NULL;
        if (bl_recv(&m, bl__task_match_tab, &tab, bl__task_ms_left(deadline), 0) != 0) {
            fail = -ETIMEDOUT;
            break;
        }
        size_t i = settle_listed(tasks, res, &tab, m);
        if (res[i].status == BL_TASK_EXIT) {
            fail = -ECONNRESET;
            break;
        }
    }
    bl_cleanup_pop(&c, true); /* frees the table */
    if (!fail) return 0;
    /* As the exit of Elixir's caller would: linked tasks die, unlinked ones run on. */
    shutdown_pending(tasks, res, n, true);
    return fail;
}
