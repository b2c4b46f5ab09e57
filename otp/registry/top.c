/*
 * otp/registry/top.c - a registry's life: the top process, starting and
 * stopping, finding a registry by name, and the reference count that
 * decides when its memory goes.
 *
 * Lifetime.  refs counts the handles given out plus each registry process
 * that has been spawned (top and partitions); a process gives its count
 * back in its handler's release, which the runtime calls after the process
 * is gone whatever killed it (and when the runtime stops), so the memory is
 * freed only once nothing can touch it.  alive goes to 0 when the top
 * process starts stopping or any registry process is released; calls then
 * return -ESRCH.
 *
 * Stopping.  The top process traps exits.  A stop request, an exit signal
 * from its parent, any other non-normal exit signal, or the exit of a
 * partition makes it send shutdown to the partitions still running, wait
 * for their EXITs, and exit with the reason.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "beamline/dirty.h"
#include "otp/registry/registry_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

/* Registries whose top process lives, for bl_registry_whereis. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static bl_registry *list_head;

/* ---- freeing ---- */

static void reg_free(bl_registry *r)
{
    for (unsigned i = 0; i < r->nparts; i++) bl__reg_part_destroy(&r->parts[i]);
    free(r->parts);
    free(r->exited);
    free((void *)r->why.detail);
    free(r->name);
    bl__reg_listeners_free(r);
    free(r);
}

void bl_registry_retain(bl_registry *r)
{
    /* relaxed: the caller already holds a reference, which keeps r alive. */
    if (r) atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static long reg_free_job(void *arg)
{
    reg_free(arg);
    return 0;
}

/* Entries left in r's tables (its processes are gone: nobody writes). */
static int64_t reg_entries(const bl_registry *r)
{
    int64_t n = 0;
    for (unsigned i = 0; i < r->nparts; i++)
        n += atomic_load_explicit(&r->parts[i].count, memory_order_relaxed);
    return n;
}

/*
 * A table this big is freed on the dirty pool when the last reference is
 * given back by a process: a million entries take 150-300 ms of free(),
 * which would hold the caller's scheduler for as long (the BEAM deletes a
 * big ETS table a slice at a time for the same reason).  The caller waits
 * parked, so it returns with the memory gone, as for a small table.
 */
#define FREE_OFF_SCHEDULER 4096

void bl_registry_release(bl_registry *r)
{
    /* acq_rel: every holder's accesses happen before the last one frees. */
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1) return;
    /* The pool runs the job to the end even if the caller is killed
     * meanwhile; when it cannot take it (stopping, no threads), here. */
    if (bl_self() != BL_PID_NONE && reg_entries(r) >= FREE_OFF_SCHEDULER &&
        bl_dirty_run(reg_free_job, r, NULL) == 0)
        return;
    reg_free(r);
}

/* ---- the top process ---- */

typedef struct ack {
    int status;    /* 0 or a negative errno */
    bl_pid holder; /* -EEXIST: who has the name */
} ack;

/* How a reason travels in TAG_STOP. */
typedef struct wire_reason {
    int32_t kind;
    int32_t code;
    uint64_t detail_len; /* detail bytes follow */
} wire_reason;

static void begin_stop(bl_registry *r, const bl_reason *why)
{
    if (r->stopping) return;
    r->stopping = true;
    /* release: nothing to publish; callers just stop using the tables. */
    atomic_store_explicit(&r->alive, 0, memory_order_release);
    r->why = *why;
    r->why.detail = NULL;
    r->why.detail_len = 0;
    if (why->detail_len) {
        void *d = malloc(why->detail_len);
        if (d) {
            memcpy(d, why->detail, why->detail_len);
            r->why.detail = d;
            r->why.detail_len = why->detail_len;
        }
    }
    bl_reason sd = BL_REASON(BL_SHUTDOWN);
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].pid && !r->exited[i]) bl_exit_pid(r->parts[i].pid, &sd);
}

static int top_init(void *arg, void **state)
{
    bl_registry *r = arg;
    *state = r;
    bl_trap_exit(true);
    bl_pid self = bl_self();
    pthread_mutex_lock(&list_lock);
    r->top = self;
    r->lnext = list_head;
    if (list_head) list_head->lprev = &r->lnext;
    r->lprev = &list_head;
    list_head = r;
    pthread_mutex_unlock(&list_lock);

    ack a = {0, BL_PID_NONE};
    if (r->name) {
        a.status = bl_register(r->name, self);
        if (a.status == -EEXIST) a.holder = bl_whereis(r->name);
    }
    unsigned nsched = bl_schedulers();
    unsigned spawned = 0;
    for (; !a.status && spawned < r->nparts; spawned++) {
        part *p = &r->parts[spawned];
        bl_spawn_opts so = {.scheduler = nsched ? (int)(spawned % nsched) + 1 : 0};
        bl_ref mref = bl_make_ref();
        /* The partition's reference, given back by its release. */
        bl_registry_retain(r);
        /* Linked before it runs; the monitor only comes with the call. */
        a.status = bl__spawn_handler_monitor(&p->pid, &bl__reg_part_handler, p, &so, true, mref);
        if (a.status) {
            p->pid = BL_PID_NONE;
            bl_registry_release(r);
            break;
        }
        bl_demonitor(mref, BL_DEMONITOR_FLUSH);
    }
    if (!a.status) {
        r->pending = r->nparts;
        /* release: pairs with bl__reg_alive's acquire (partition pids, tables). */
        atomic_store_explicit(&r->alive, 1, memory_order_release);
    } else {
        bl_reason sd = BL_REASON(BL_SHUTDOWN);
        for (unsigned i = 0; i < spawned; i++) bl_exit_pid(r->parts[i].pid, &sd);
    }
    bl__send_ex(r->starter, TAG_ACK, r->start_ref, &a, sizeof a, 0);
    return a.status ? BL_STOP : 0;
}

static int part_index(const bl_registry *r, bl_pid pid)
{
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].pid == pid) return (int)i;
    return -1;
}

static int top_handle(void *state, bl_msg *m)
{
    bl_registry *r = state;
    bl_reason why;
    if (m->tag == TAG_STOP && m->len >= sizeof(wire_reason)) {
        wire_reason w;
        memcpy(&w, m->data, sizeof w);
        if (w.detail_len == m->len - sizeof w && (unsigned)w.kind <= BL_NOCONNECTION &&
            w.kind != BL_KILL) {
            why = (bl_reason){(bl_reason_kind)w.kind, w.code, (char *)m->data + sizeof w,
                              (size_t)w.detail_len};
            begin_stop(r, &why);
        }
    } else if (m->tag == BL_TAG_EXIT && bl_msg_reason(m, &why) == 0) {
        int i = part_index(r, m->from);
        if (i >= 0) {
            if (!r->exited[i]) {
                r->exited[i] = true;
                r->pending--;
            }
            /* A partition died on its own: the registry cannot go on. */
            bl_reason sd = BL_REASON(BL_SHUTDOWN);
            begin_stop(r, &sd);
        } else if ((r->parent && m->from == r->parent) || why.kind != BL_NORMAL) {
            begin_stop(r, &why);
        }
    }
    /* Anything else is ignored, as a supervisor ignores unexpected messages. */
    if (!r->stopping || r->pending) return BL_CONTINUE;
    if (r->why.kind == BL_NORMAL) return BL_STOP;
    return bl_handler_exit(&r->why); /* copies the reason at once */
}

static void top_release(void *state)
{
    bl_registry *r = state;
    pthread_mutex_lock(&list_lock);
    if (r->lprev) {
        *r->lprev = r->lnext;
        if (r->lnext) r->lnext->lprev = r->lprev;
        r->lprev = NULL;
    }
    pthread_mutex_unlock(&list_lock);
    /* release: as in part_release (partition.c). */
    atomic_store_explicit(&r->alive, 0, memory_order_release);
    bl_registry_release(r);
}

static const bl_handler top_handler = {
    .init = top_init,
    .handle = top_handle,
    .release = top_release,
};

/* ---- starting and stopping ---- */

static bl_registry *reg_new(const bl_registry_opts *o, unsigned nparts)
{
    bl_registry *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = o->keys;
    r->nparts = nparts;
    r->parts = aligned_alloc(64, ((nparts * sizeof(part)) + 63) & ~(size_t)63);
    r->exited = calloc(nparts, sizeof(bool));
    r->name = o->name ? strdup(o->name) : NULL;
    if (!r->parts || !r->exited || (o->name && !r->name) || bl__reg_listeners_copy(r, o) != 0) {
        free(r->parts);
        free(r->exited);
        free(r->name);
        bl__reg_listeners_free(r);
        free(r);
        return NULL;
    }
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* Writers first: a stream of lookups must not starve register. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (unsigned i = 0; i < nparts; i++) {
        part *p = &r->parts[i];
        memset(p, 0, sizeof *p);
        pthread_rwlock_init(&p->lock, &a);
        p->reg = r;
    }
    pthread_rwlockattr_destroy(&a);
    return r;
}

static int start(const bl_registry_opts *o, bl_registry **out, bool link)
{
    static const bl_registry_opts defaults;
    if (!o) o = &defaults;
    if (!out) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (o->keys != BL_REGISTRY_UNIQUE && o->keys != BL_REGISTRY_DUPLICATE) return -EINVAL;
    unsigned n = o->partitions;
    if (n == BL_REGISTRY_SCHEDULERS) {
        n = bl_schedulers();
        if (n > BL_REGISTRY_PARTITIONS_MAX) n = BL_REGISTRY_PARTITIONS_MAX;
    }
    if (n == 0) n = 1;
    if (n > BL_REGISTRY_PARTITIONS_MAX) return -EINVAL;
    int rc = bl__reg_listeners_check(o);
    if (rc) return rc;

    /* The mark before the allocation: it drains the mailbox, where a kill
     * already queued ends the caller at once (r would be lost). */
    bl_recv_mark();
    bl_registry *r = reg_new(o, n);
    if (!r) return -ENOMEM;
    /* One reference for the caller, one for the top process (its release). */
    atomic_init(&r->refs, 2);
    atomic_init(&r->alive, 0);
    r->starter = self;
    r->parent = link ? self : BL_PID_NONE;
    bl__otp_waitref w = {bl_make_ref(), TAG_ACK};
    r->start_ref = w.ref;
    bl_pid top;
    rc = bl__spawn_handler_monitor(&top, &top_handler, r, NULL, link, w.ref);
    if (rc) {
        reg_free(r);
        return rc;
    }
    bl_msg *m = NULL;
    bl_recv(&m, bl__otp_match_answer, &w, BL_INFINITY, BL_RECV_MARKED);
    if (m->tag == BL_TAG_DOWN) {
        /* Killed before it could answer. */
        bl_msg_free(m);
        bl_registry_release(r);
        return -ESRCH;
    }
    ack a;
    memcpy(&a, m->data, sizeof a);
    bl_msg_free(m);
    if (a.status == 0) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        *out = r;
        return 0;
    }
    /* The top process exits normally: return once it has, leaving no EXIT behind. */
    bl_recv(&m, bl__otp_match_answer, &w, BL_INFINITY, BL_RECV_MARKED);
    bl_msg_free(m);
    if (link) {
        bl_unlink(top);
        while (bl_recv(&m, bl__otp_match_exit_from, &top, 0, 0) == 0) bl_msg_free(m);
    }
    bl_registry_release(r);
    return a.status;
}

int bl_registry_start_link(const bl_registry_opts *opts, bl_registry **reg)
{
    return start(opts, reg, true);
}

int bl_registry_start(const bl_registry_opts *opts, bl_registry **reg)
{
    return start(opts, reg, false);
}

int bl_registry_start_fn(void *arg, bl_pid *pid)
{
    bl_registry_opts *o = arg;
    if (!o || !pid) return -EINVAL;
    bl_registry *r;
    int rc = start(o, &r, true);
    if (rc) return rc;
    *pid = r->top;
    if (o->handle) {
        bl_registry_release(*o->handle);
        *o->handle = r;
    } else {
        bl_registry_release(r);
    }
    return 0;
}

int bl_registry_stop(bl_registry *r, const bl_reason *reason, int64_t timeout_ms)
{
    if (!r || (timeout_ms < 0 && timeout_ms != BL_INFINITY)) return -EINVAL;
    bl_reason normal = BL_REASON(BL_NORMAL);
    if (!reason) reason = &normal;
    if ((unsigned)reason->kind > BL_NOCONNECTION || reason->kind == BL_KILL ||
        (reason->detail_len && !reason->detail))
        return -EINVAL;
    if (!bl_self()) return -EPERM;
    /* No alive check: a registry already stopping is waited for.  A top
     * process that is gone answers DOWN noproc. */
    if (!r->top) return -ESRCH;
    bl_recv_mark();
    bl__otp_waitref w = {0, BL_TAG_DOWN};
    int rc = bl_monitor(r->top, &w.ref);
    if (rc) return rc;
    size_t len = sizeof(wire_reason) + reason->detail_len;
    wire_reason *q = malloc(len);
    if (!q) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return -ENOMEM;
    }
    *q = (wire_reason){reason->kind, reason->code, reason->detail_len};
    if (reason->detail_len) memcpy(q + 1, reason->detail, reason->detail_len);
    rc = bl__send_ex(r->top, TAG_STOP, BL_REF_NONE, q, len, 0);
    free(q);
    if (rc) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return rc;
    }
    bl_msg *m = NULL;
    rc = bl_recv(&m, bl__otp_match_answer, &w, timeout_ms, BL_RECV_MARKED);
    if (rc) {
        bl_demonitor(w.ref, BL_DEMONITOR_FLUSH);
        return rc;
    }
    bl_reason got;
    rc = bl_msg_reason(m, &got) == 0 && got.kind == BL_NOPROC ? -ESRCH : 0;
    bl_msg_free(m);
    return rc;
}

bl_registry *bl_registry_whereis(const char *name)
{
    if (!name) return NULL;
    bl_pid pid = bl_whereis(name);
    if (!pid) return NULL;
    pthread_mutex_lock(&list_lock);
    bl_registry *r = list_head;
    while (r && !(r->top == pid && bl__reg_alive(r))) r = r->lnext;
    /* Listed means the top process's reference is still held: r is valid. */
    bl_registry_retain(r);
    pthread_mutex_unlock(&list_lock);
    return r;
}

bl_pid bl_registry_pid(const bl_registry *r)
{
    return r ? r->top : BL_PID_NONE;
}

unsigned bl_registry_partitions(const bl_registry *r)
{
    return r ? r->nparts : 0;
}
