/*
 * io/dirty.c - the dirty-work pool: a mutex-protected FIFO of jobs and a
 * few threads that run them.  Dirty work is slow by nature, so a lock and a
 * condition variable cost nothing that matters here.
 *
 * A job lives on the waiting process's stack, its bl_iop first: the process
 * waits with bl__iop_wait_external and the worker ends the wait with
 * bl__iop_complete_external, after which it touches nothing of the job (a
 * killed process's stack is freed by that very call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "beamline/dirty.h"
#include "core/wait.h"
#include "io/iop.h"
#include "proc/proc.h"
#include "sched/sched.h"

typedef struct job {
    bl_iop op; /* first: the wait */
    long (*fn)(void *arg);
    void *arg;
    long result;
    struct job *next;
} job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    job *head, *tail;
    pthread_t *threads;
    unsigned nthreads;
    unsigned pending; /* queued or running */
    bool stopping;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

unsigned bl_dirty_pending(void)
{
    pthread_mutex_lock(&pool.lock);
    unsigned n = pool.pending;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.head && !pool.stopping) pthread_cond_wait(&pool.cv, &pool.lock);
        job *j = pool.head;
        if (!j) break; /* stopping, and nothing left */
        pool.head = j->next;
        if (!pool.head) pool.tail = NULL;
        pthread_mutex_unlock(&pool.lock);
        j->result = j->fn(j->arg);
        pthread_mutex_lock(&pool.lock);
        pool.pending--; /* done running: counted out before the waiter can look */
        pthread_mutex_unlock(&pool.lock);
        /* The last touch of the job: after this, it may be gone. */
        bl__iop_complete_external(&j->op, 0);
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* With the lock held: starts the threads on first use. */
static int ensure_threads(void)
{
    if (pool.nthreads) return 0;
    unsigned n = bl__rt->cfg.dirty_threads ? bl__rt->cfg.dirty_threads : bl__rt->nsched;
    pool.threads = calloc(n, sizeof *pool.threads);
    if (!pool.threads) return -EAGAIN;
    /* The caller's scheduler thread may be pinned to one core, and a new
     * thread would inherit that: the workers take the process's first
     * thread's CPUs instead (the thread that started the runtime, as a rule),
     * less the ones a scheduler is pinned to when any are left.  On a
     * scheduler's core, a worker woken there while another core idled could
     * hold the core for its whole job, and the scheduler's processes waited
     * that long (seen: a 2 ms job, no process run meanwhile). */
    pthread_attr_t attr;
    pthread_attr_t *ap = NULL;
    cpu_set_t cpus;
    if (pthread_attr_init(&attr) == 0) {
        ap = &attr;
        if (sched_getaffinity(getpid(), sizeof cpus, &cpus) == 0) {
            cpu_set_t spare = cpus;
            const bl_topology *t = &bl__rt->topo;
            for (unsigned i = 0; i < t->nsched && !t->synthetic && !t->fallback; i++) {
                int pu = t->sched[i].pu;
                if (pu >= 0 && pu < CPU_SETSIZE) CPU_CLR(pu, &spare);
            }
            if (CPU_COUNT(&spare) > 0) cpus = spare;
            (void)pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        /* A mask the kernel refuses: the inherited one will do. */
        if (pthread_create(&pool.threads[i], ap, worker, NULL) != 0 &&
            (!ap || pthread_create(&pool.threads[i], NULL, worker, NULL) != 0))
            break;
        (void)pthread_setname_np(pool.threads[i], "bl-dirty");
        pool.nthreads++;
    }
    if (ap) pthread_attr_destroy(ap);
    if (!pool.nthreads) {
        free(pool.threads);
        pool.threads = NULL;
        return -EAGAIN;
    }
    return 0;
}

static void enqueue(bl_iop *op, void *ctx)
{
    (void)ctx;
    job *j = (job *)op;
    /* The job may end before the caller parks (core/wait.h). */
    bl__wait_enter(op->p, op->meta);
    /* The lock is still held (bl_dirty_run took it): just link. */
    j->next = NULL;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.pending++;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.lock);
}

int bl_dirty_run(long (*fn)(void *arg), void *arg, long *result)
{
    bl_proc *p = bl__self();
    if (!p) return -EPERM;
    if (!fn) return -EINVAL;
    job j = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&pool.lock);
    int rc = pool.stopping ? -ESRCH : ensure_threads();
    if (rc) {
        pthread_mutex_unlock(&pool.lock);
        return rc;
    }
    /* enqueue releases the lock once the job is listed. */
    bl__iop_wait_external(p, &j.op, enqueue, NULL);
    if (result) *result = j.result;
    return 0;
}

/* Runtime stop, schedulers joined (service): jobs run out, then the threads exit. */
static void dirty_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.cv);
    unsigned n = pool.nthreads;
    pthread_t *t = pool.threads;
    pthread_mutex_unlock(&pool.lock);
    /* The workers finish every queued job, then leave. */
    for (unsigned i = 0; i < n; i++) pthread_join(t[i], NULL);
    pthread_mutex_lock(&pool.lock);
    free(pool.threads);
    pool.threads = NULL;
    pool.nthreads = 0;
    pool.head = pool.tail = NULL;
    pool.pending = 0;
    pool.stopping = false; /* ready for the next runtime */
    pthread_mutex_unlock(&pool.lock);
}

static bl_sched_service dirty_service = {.name = "dirty pool", .stopped = dirty_stop};

/* Linked in means used: the runtime's stop waits for the pool from now on. */
__attribute__((constructor)) static void dirty_register(void)
{
    bl__sched_service_add(&dirty_service);
}
