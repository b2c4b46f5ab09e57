/*
 * otp/task/spawn.c - the task process and starting it: bl_task_async,
 * _nolink, _via, bl_task_child_start (the spawner's start function),
 * bl_task_completed (a task with no process) and bl_task_start / _start_link.
 *
 * The task's monitor (and its link, for async) is in place before it runs,
 * under a reference chosen before the spawn (bl__spawn_handler_monitor).  A
 * task started through a spawner (Task.Supervisor) waits for its owner's GO
 * carrying that reference, and exits with shutdown if the owner dies first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "otp/task/task_int.h"
#include "proc/otp.h"

/* ------------------------------------------------------------------------ */
/* The task process                                                         */
/* ------------------------------------------------------------------------ */

int bl_task_return(bl_task_out *out, const void *data, size_t len)
{
    if (!out || (len && !data)) return -EINVAL;
    if (len <= OUT_INLINE) {
        if (len) memmove(out->inl, data, len);
        out->data = len ? out->inl : NULL;
        out->len = len;
        return 0;
    }
    if (len > out->cap) {
        void *p = malloc(len);
        if (!p) return -ENOMEM;
        memcpy(p, data, len);
        free(out->heap);
        out->heap = p;
        out->cap = len;
    } else {
        memmove(out->heap, data, len);
    }
    out->data = out->heap;
    out->len = len;
    return 0;
}

typedef struct go_key {
    bl_pid owner; /* GO comes from it */
    bl_ref mon;   /* or the DOWN of our monitor on it */
} go_key;

static bool match_go(const bl_msg *m, void *arg)
{
    const go_key *k = arg;
    return (m->tag == TAG_GO && m->from == k->owner) || (m->tag == BL_TAG_DOWN && m->ref == k->mon);
}

/* A task started by a spawner: waits for its owner's GO.  0, or -1 if the owner died. */
static int wait_go(ctl *c)
{
    go_key k = {c->owner, BL_REF_NONE};
    if (bl_monitor(c->owner, &k.mon) != 0) return -1;
    bl_msg *m = NULL;
    if (bl_recv(&m, match_go, &k, BL_INFINITY, 0) != 0) return -1;
    int rc = -1;
    if (m->tag == TAG_GO && m->len == sizeof(bl_ref)) {
        memcpy(&c->ref, m->data, sizeof(bl_ref));
        rc = 0;
    }
    bl_msg_free(m);
    if (rc == 0) bl_demonitor(k.mon, BL_DEMONITOR_FLUSH);
    return rc;
}

static int task_init(void *arg, void **state)
{
    (void)state; /* stays arg: release gets the slot */
    ctl *c = arg;
    bl__proc_kind_set(BL_KIND_TASK);
    if (c->flags & F_VIA) {
        if (wait_go(c) != 0) {
            bl_reason r = BL_REASON(BL_SHUTDOWN);
            return bl_handler_exit(&r);
        }
        bl__callers_set(c->callers, c->ncallers);
    }
    if (c->flags & F_STREAM)
        c->sfn(c->arg, c->item, &c->out);
    else
        c->fn(c->arg, &c->out);
    if (!(c->flags & F_NOREPLY)) {
        /* Only this process moves the word while it lives, apart from the
         * owner's ignore: claim the reply unless that came first. */
        uint64_t gen = atomic_load_explicit(&c->word, memory_order_relaxed) & ~STATE_MASK;
        uint64_t want = gen | S_ACTIVE;
        if (atomic_compare_exchange_strong_explicit(&c->word, &want, gen | S_REPLIED,
                                                    memory_order_acq_rel, memory_order_relaxed))
            bl__send_ex(c->owner, BL_TAG_TASK_REPLY, c->ref, c->out.data, c->out.len, 0);
    }
    return BL_STOP;
}

static int task_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return BL_STOP; /* never reached: init always ends the process */
}

/* After the process is gone, however it died: the slot is free again. */
static void task_release(void *state)
{
    bl__task_slot_free(state);
}

static const bl_handler task_handler = {
    .init = task_init,
    .handle = task_handle,
    .release = task_release,
};

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */
/* ------------------------------------------------------------------------ */

static ctl *slot_setup(const spawn_req *q, bl_pid owner)
{
    ctl *c = bl__task_slot_alloc();
    if (!c) return NULL;
    c->flags = q->flags;
    c->owner = owner;
    c->ref = BL_REF_NONE;
    if (q->flags & F_STREAM)
        c->sfn = q->sfn;
    else
        c->fn = q->fn;
    c->arg = q->arg;
    c->item = NULL;
    if (q->flags & F_STREAM) {
        /* A copy: the task never reads the stream's memory or the
         * consumer's, either of which may go before the task has run (a
         * consumer that dies frees its stream, stream.c). */
        c->item = c->item_inl;
        if (q->item_size > sizeof c->item_inl && !(c->item = c->item_heap = malloc(q->item_size))) {
            bl__task_slot_free(c);
            return NULL;
        }
        memcpy(c->item, q->item, q->item_size);
    }
    c->spawn = q->opts ? *q->opts : (bl_spawn_opts){0};
    /* Elixir's $callers: a task started by its owner knows [owner | owner's
     * callers]; one a supervisor starts takes the owner's chain from the
     * slot instead (task_init), not the supervisor's. */
    c->spawn.inherit_callers = !q->spawner;
    return c;
}

/* Starts a task for the caller: directly, or through q->spawner. */
int bl__task_spawn(bl_task *t, const spawn_req *q)
{
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    ctl *c = slot_setup(q, self);
    if (!c) return -ENOMEM;
    uint32_t gen = bl__task_slot_gen(c);
    uint64_t h = bl__task_handle_of(c, gen);
    bool link = q->flags & F_LINK;
    bl_pid pid = BL_PID_NONE;
    int rc;
    if (!q->spawner) {
        c->ref = bl_make_ref();
        /* Relaxed: the spawn publishes the slot to the task. */
        atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_ACTIVE, memory_order_relaxed);
        rc = bl__spawn_handler_monitor(&pid, &task_handler, c, &c->spawn, link, c->ref);
        if (rc) {
            bl__task_slot_free(c);
            return rc;
        }
        *t = (bl_task){pid, c->ref, self, h, link ? F_LINK : 0};
        return 0;
    }
    c->flags |= F_VIA;
    c->callers[0] = self;
    int n = bl_callers(c->callers + 1, BL_CALLERS_MAX - 1);
    c->ncallers = 1 + (uint32_t)(n < 0 ? 0 : n > BL_CALLERS_MAX - 1 ? BL_CALLERS_MAX - 1 : n);
    atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_ALLOC, memory_order_release);
    rc = q->spawner(q->spawner_ctx, bl_task_child_start, (void *)(uintptr_t)h, &pid);
    if (rc != 0 || !pid) {
        /* Take the slot back unless the task process exists (it then owns it). */
        if (bl__task_slot_cas(h, S_ALLOC, S_IGNORED, NULL)) bl__task_slot_free(c);
        return rc < 0 ? rc : -ECANCELED;
    }
    /* The spawner returned without calling start: nothing runs. */
    if (bl__task_slot_cas(h, S_ALLOC, S_IGNORED, NULL)) {
        bl__task_slot_free(c);
        return -ECANCELED;
    }
    bl_ref ref;
    rc = bl_monitor(pid, &ref);
    if (rc == 0 && link) rc = bl_link(pid);
    if (rc == 0) rc = bl__send_ex(pid, TAG_GO, BL_REF_NONE, &ref, sizeof ref, 0);
    if (rc) {
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(pid, &kill);
        return rc;
    }
    *t = (bl_task){pid, ref, self, h, link ? F_LINK : 0};
    return 0;
}

int bl_task_child_start(void *start_arg, bl_pid *pid)
{
    uint64_t h = (uintptr_t)start_arg;
    ctl *c = bl__task_slot_of(h);
    if (!c) return -EINVAL;
    if (!bl_self()) return -EPERM;
    uint64_t seen;
    if (!bl__task_slot_cas(h, S_ALLOC, S_ACTIVE, &seen)) {
        bool same = (uint32_t)(seen >> 32) == (uint32_t)h;
        return same && (seen & STATE_MASK) == S_IGNORED ? -ECANCELED : -EINVAL;
    }
    /* Linked to the caller (the supervisor) from before it runs: the
     * monitor comes with the only internal spawn that links, and goes. */
    bl_ref mon = bl_make_ref();
    bl_pid p;
    int rc = bl__spawn_handler_monitor(&p, &task_handler, c, &c->spawn, true, mon);
    if (rc) {
        /* Back to the owner, which frees it when the spawner fails. */
        atomic_store_explicit(&c->word, (h & STATE_MASK) << 32 | S_ALLOC, memory_order_release);
        return rc;
    }
    bl_demonitor(mon, BL_DEMONITOR_FLUSH);
    if (pid) *pid = p;
    return 0;
}

int bl_task_async(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!t || !fn) return -EINVAL;
    spawn_req q = {.flags = F_LINK, .fn = fn, .arg = arg, .opts = opts};
    return bl__task_spawn(t, &q);
}

int bl_task_async_nolink(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!t || !fn) return -EINVAL;
    spawn_req q = {.fn = fn, .arg = arg, .opts = opts};
    return bl__task_spawn(t, &q);
}

int bl_task_async_via(bl_task *t, bl_task_spawner spawner, void *ctx, bl_task_fn fn, void *arg,
                      bool link)
{
    if (!t || !spawner || !fn) return -EINVAL;
    spawn_req q = {
        .flags = link ? F_LINK : 0, .fn = fn, .arg = arg, .spawner = spawner, .spawner_ctx = ctx};
    return bl__task_spawn(t, &q);
}

/*
 * Task.completed: as in Elixir, the result is sent to the caller at once
 * under a fresh reference, and the task has no process (pid 0): await,
 * yield and the many-task calls find the reply like any other; ignore and
 * shutdown take it if it is still there.
 */
int bl_task_completed(bl_task *t, const void *data, size_t len)
{
    if (!t || (len && !data)) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    bl_ref ref = bl_make_ref();
    int rc = bl__send_ex(self, BL_TAG_TASK_REPLY, ref, data, len, 0);
    if (rc) return rc;
    *t = (bl_task){BL_PID_NONE, ref, self, 0, 0};
    return 0;
}

static int start_task(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts, bool link)
{
    if (!fn) return -EINVAL;
    if (link && !bl_self()) return -EPERM;
    spawn_req q = {.flags = F_NOREPLY, .fn = fn, .arg = arg, .opts = opts};
    ctl *c = slot_setup(&q, BL_PID_NONE);
    if (!c) return -ENOMEM;
    atomic_store_explicit(&c->word, (uint64_t)bl__task_slot_gen(c) << 32 | S_ACTIVE,
                          memory_order_relaxed);
    bl_pid p;
    int rc;
    if (link) {
        bl_ref mon = bl_make_ref();
        rc = bl__spawn_handler_monitor(&p, &task_handler, c, &c->spawn, true, mon);
        if (rc == 0) bl_demonitor(mon, BL_DEMONITOR_FLUSH);
    } else {
        rc = bl_spawn_handler(&p, &task_handler, c, &c->spawn);
    }
    if (rc) {
        bl__task_slot_free(c);
        return rc;
    }
    if (pid) *pid = p;
    return 0;
}

int bl_task_start(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    return start_task(pid, fn, arg, opts, false);
}

int bl_task_start_link(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    return start_task(pid, fn, arg, opts, true);
}
