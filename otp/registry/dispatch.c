/*
 * otp/registry/dispatch.c - parallel dispatch (Elixir's dispatch/4 with
 * parallel: true): one task per partition that has the key, each copying
 * its partition's entries and calling the callback, all awaited.
 *
 * Ownership.  The caller allocates one block (struct pd: the key, the
 * callback, a registry reference, and one job per task).  Each job's share
 * of the block is given back exactly once, by whichever of the task (when
 * its callback has returned) and the caller (once the task is settled,
 * dead or done) swaps the job's `released` flag first; the caller gives
 * back its own share after awaiting every task.  A task gives its share
 * back from a cleanup handler, so it does so however it ends (its callback
 * crashing included), and the caller's share (with the task array and the
 * jobs it never started) goes from one too, if the caller is killed while
 * waiting.  So a task never touches freed memory, and the block (with its
 * registry reference) is freed by whoever is last, whatever dies.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "beamline/task.h"
#include "otp/registry/registry_int.h"

typedef struct pd pd;

typedef struct pjob {
    pd *d;                /* the shared block */
    unsigned part;        /* the partition it dispatches */
    _Atomic int released; /* its share of the block has been given back */
} pjob;

struct pd {
    _Atomic long refs;          /* the caller + one per job not released */
    bl_registry *r;             /* a reference, given back with the block */
    uint64_t h;                 /* the key's hash */
    bl_registry_dispatch_fn fn; /* the callback ... */
    void *arg;                  /* ... and its argument */
    size_t klen;                /* key bytes, after the jobs */
    unsigned cap;               /* room for jobs (the registry's partitions) */
    pjob jobs[];
};

static void pd_put(pd *d)
{
    /* acq_rel: every user's accesses happen before the last one frees. */
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1) {
        bl_registry_release(d->r);
        free(d);
    }
}

/* Gives back job j's share unless it has been already. */
static void job_release(pjob *j)
{
    pd *d = j->d;
    /* acq_rel: the winner's put is ordered after the task's use of the block. */
    if (atomic_exchange_explicit(&j->released, 1, memory_order_acq_rel) == 0) pd_put(d);
}

static void job_release_cb(void *arg)
{
    job_release(arg);
}

static const unsigned char *pd_key(const pd *d)
{
    return (const unsigned char *)&d->jobs[d->cap];
}

/* The task: this partition's entries, then the callback, then the count as the result. */
static void job_run(void *arg, bl_task_out *out)
{
    pjob *j = arg;
    pd *d = j->d;
    bl_cleanup c;
    bl_cleanup_push(&c, job_release_cb, j);
    int n = bl__reg_dispatch_one(&d->r->parts[j->part], d->h, d->klen ? pd_key(d) : NULL, d->klen,
                                 d->fn, d->arg);
    bl_cleanup_pop(&c, true);
    bl_task_return(out, &n, sizeof n);
}

/* The caller's side, for its cleanup handler. */
typedef struct pcaller {
    pd *d;
    bl_task *t;
    unsigned started, n; /* jobs started as tasks, of n */
} pcaller;

/* The caller died waiting: its share, the jobs it never started, the task array. */
static void caller_gone(void *arg)
{
    pcaller *c = arg;
    for (unsigned i = c->started; i < c->n; i++) job_release(&c->d->jobs[i]);
    free(c->t);
    pd_put(c->d);
}

/* True if partition p may have entries under key (a read-locked glance). */
static bool has_key(part *p, uint64_t h, const void *key, size_t klen)
{
    bl__reg_rdlock(p);
    bool yes = bl__reg_find_key(p, h, key, klen) != NULL;
    bl__reg_unlock(p);
    return yes;
}

static int dispatch_parallel(bl_registry *r, const void *key, size_t klen,
                             bl_registry_dispatch_fn fn, void *arg)
{
    uint64_t h = bl__reg_key_hash(key, klen);
    pd *d = malloc(sizeof *d + r->nparts * sizeof(pjob) + klen);
    if (!d) return -ENOMEM;
    d->cap = r->nparts;
    unsigned n = 0;
    for (unsigned i = 0; i < r->nparts; i++) {
        if (!has_key(&r->parts[i], h, key, klen)) continue;
        d->jobs[n].d = d;
        d->jobs[n].part = i;
        atomic_init(&d->jobs[n].released, 0);
        n++;
    }
    bl_task *t = n ? malloc(n * sizeof *t) : NULL;
    if (!t) {
        free(d);
        return n ? -ENOMEM : 0;
    }
    atomic_init(&d->refs, (long)n + 1);
    bl_registry_retain(r);
    d->r = r;
    d->h = h;
    d->fn = fn;
    d->arg = arg;
    d->klen = klen;
    if (klen) memcpy((unsigned char *)&d->jobs[d->cap], key, klen);
    unsigned nsched = bl_schedulers();
    pcaller pc = {d, t, 0, n};
    bl_cleanup c;
    bl_cleanup_push(&c, caller_gone, &pc);
    unsigned started = 0;
    int rc = 0;
    for (; started < n; started++) {
        pjob *j = &d->jobs[started];
        /* On its partition's scheduler, as the partition process is (top.c). */
        bl_spawn_opts so = {.scheduler = nsched ? (int)(j->part % nsched) + 1 : 0};
        if ((rc = bl_task_async_nolink(&t[started], job_run, j, &so)) != 0) break;
        pc.started = started + 1;
    }
    int64_t total = 0;
    bool died = false;
    for (unsigned i = 0; i < started; i++) {
        bl_task_result res;
        int st = bl_task_await(&t[i], BL_INFINITY, &res);
        if (st == 0 && res.len == sizeof(int)) {
            int k;
            memcpy(&k, res.data, sizeof k);
            if (k < 0 && !rc) rc = k;
            if (k > 0) total += k;
        } else {
            died = true;
        }
        bl_task_result_free(&res);
    }
    /* Settled (done or dead): give back the shares not given back yet, ours last. */
    bl_cleanup_pop(&c, false);
    for (unsigned i = 0; i < n; i++) job_release(&d->jobs[i]);
    pd_put(d);
    free(t);
    if (died && !rc) rc = -ECONNRESET;
    if (rc) return rc;
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

int bl_registry_dispatch_ex(bl_registry *r, const void *key, size_t klen,
                            bl_registry_dispatch_fn fn, void *arg, unsigned flags)
{
    if (flags & ~BL_REGISTRY_PARALLEL) return -EINVAL;
    /* Unique keys live in one partition: nothing to run side by side (as in Elixir). */
    if (!(flags & BL_REGISTRY_PARALLEL) || !r || r->kind != BL_REGISTRY_DUPLICATE || r->nparts < 2)
        return bl_registry_dispatch(r, key, klen, fn, arg);
    int rc = bl__reg_check_key(r, key, klen);
    if (rc || !fn) return rc ? rc : -EINVAL;
    if (!bl_self()) return -EPERM;
    if (!bl__reg_alive(r)) return -ESRCH;
    return dispatch_parallel(r, key, klen, fn, arg);
}
