/*
 * sched/runtime.c - configuration, start-up and shutdown of the runtime.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/names.h"
#include "sched/sched.h"

bl_runtime *bl__rt;
static _Atomic int started;

/* ---- services (sched/hooks.h) ---- */

/* The registry: a lock-free stack that only grows. */
static _Atomic(bl_sched_service *) services;

void bl__sched_service_add(bl_sched_service *svc)
{
    bl_sched_service *head = atomic_load_explicit(&services, memory_order_acquire);
    for (bl_sched_service *v = head; v; v = v->next)
        if (v == svc) return;
    do {
        svc->next = head;
        /* Release: whoever finds svc sees its fields. */
    } while (!atomic_compare_exchange_weak_explicit(&services, &head, svc, memory_order_release,
                                                    memory_order_acquire));
}

static bl_sched_service *services_head(void)
{
    /* Acquire: pairs with the release that added the first entry. */
    return atomic_load_explicit(&services, memory_order_acquire);
}

void bl__sched_services_idle(bl_sched *s)
{
    for (bl_sched_service *v = services_head(); v; v = v->next)
        if (v->idle) v->idle(s);
}
static char errbuf[512];

const char *bl_runtime_error(void)
{
    return errbuf;
}

unsigned bl_schedulers(void)
{
    return bl__rt ? bl__rt->nsched : 0;
}

/* ---- configuration ---- */

static int parse_uint(const char *name, const char *v, unsigned long long max,
                      unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    if (errno || end == v || *end || v[0] == '-' || x > max / mul) {
        snprintf(errbuf, sizeof errbuf, "%s=%s: expected a number up to %llu", name, v, max);
        return -EINVAL;
    }
    *out = x * mul;
    return 0;
}

/* The numeric variables: where each goes in bl_config, and its largest value. */
static const struct {
    const char *name;
    size_t off;
    size_t size;
    unsigned long long max;
} nums[] = {
    {"BEAMLINE_SCHEDULERS", offsetof(bl_config, schedulers), sizeof(unsigned), 1024},
    {"BEAMLINE_REDUCTIONS", offsetof(bl_config, reductions), sizeof(unsigned), 100000000},
    {"BEAMLINE_SPIN_US", offsetof(bl_config, spin_us), sizeof(unsigned), 10000000},
    {"BEAMLINE_STACK_SIZE", offsetof(bl_config, stack_size), sizeof(size_t), 1ull << 30},
    {"BEAMLINE_STACK_POOL", offsetof(bl_config, stack_pool_max), sizeof(unsigned), 1u << 20},
    {"BEAMLINE_RING_ENTRIES", offsetof(bl_config, ring_entries), sizeof(unsigned), 32768},
    {"BEAMLINE_IOWQ_MAX", offsetof(bl_config, iowq_max), sizeof(unsigned), 65536},
    {"BEAMLINE_MAX_NAMES", offsetof(bl_config, max_names), sizeof(unsigned), 1u << 24},
    {"BEAMLINE_IO_BUFFERS", offsetof(bl_config, io_buffers), sizeof(unsigned), 32768},
    {"BEAMLINE_DIRTY_THREADS", offsetof(bl_config, dirty_threads), sizeof(unsigned), 1024},
    {"BEAMLINE_LOG_QUEUE", offsetof(bl_config, log_queue), sizeof(unsigned), 1u << 20},
    {"BEAMLINE_LONG_SCHEDULE_MS", offsetof(bl_config, long_schedule_ms), sizeof(unsigned), 3600000},
};

/* A variable naming one of a set of words: the index of v in words, or -EINVAL. */
static int parse_word(const char *name, const char *v, const char *const *words, size_t n,
                      const char *expected)
{
    for (size_t i = 0; i < n; i++)
        if (words[i] && !strcmp(v, words[i])) return (int)i;
    snprintf(errbuf, sizeof errbuf, "%s=%s: expected %s", name, v, expected);
    return -EINVAL;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/*
 * Reads the variables into *c: all of them (only_unset false), or only
 * those whose field the program left at zero (its default).
 */
static int env_overlay(bl_config *c, bool only_unset)
{
    static const char *const binds[] = {"cores", "none", "spread"};
    static const char *const wakes[] = {"default", "msg_ring", "eventfd"};
    static const char *const levels[] = {NULL,      "emergency", "alert", "critical", "error",
                                         "warning", "notice",    "info",  "debug"};
    static const char *const formats[] = {"text", "json", "journald"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const char *v = env(nums[i].name);
        unsigned long long x;
        if (!v) continue;
        void *field = (char *)c + nums[i].off;
        bool is_size = nums[i].size == sizeof(size_t);
        bool unset = is_size ? *(size_t *)field == 0 : *(unsigned *)field == 0;
        if (nums[i].off == offsetof(bl_config, spin_us)) unset = unset && !c->no_spin;
        if (nums[i].off == offsetof(bl_config, long_schedule_ms))
            unset = unset && !c->no_long_schedule;
        if (only_unset && !unset) continue;
        int rc = parse_uint(nums[i].name, v, nums[i].max, &x);
        if (rc) return rc;
        if (is_size)
            *(size_t *)field = (size_t)x;
        else
            *(unsigned *)field = (unsigned)x;
        if (nums[i].off == offsetof(bl_config, spin_us)) c->no_spin = x == 0;
        if (nums[i].off == offsetof(bl_config, long_schedule_ms)) c->no_long_schedule = x == 0;
    }
    const char *v;
    int w;
    if ((v = env("BEAMLINE_BIND")) && (!only_unset || !c->bind)) {
        if ((w = parse_word("BEAMLINE_BIND", v, binds, 3, "cores, none or spread")) < 0) return w;
        c->bind = (bl_bind)w;
    }
    if ((v = env("BEAMLINE_WAKE")) && (!only_unset || !c->wake)) {
        if ((w = parse_word("BEAMLINE_WAKE", v, wakes, 3, "msg_ring or eventfd")) < 0) return w;
        c->wake = (bl_wake)w;
    }
    if ((v = env("BEAMLINE_LOG_LEVEL")) && (!only_unset || !c->log_level)) {
        w = parse_word("BEAMLINE_LOG_LEVEL", v, levels, 9,
                       "emergency, alert, critical, error, warning, notice, info or debug");
        if (w < 0) return w;
        c->log_level = (bl_log_level)w;
    }
    if ((v = env("BEAMLINE_LOG_FORMAT")) && (!only_unset || !c->log_format)) {
        w = parse_word("BEAMLINE_LOG_FORMAT", v, formats, 3, "text, json or journald");
        if (w < 0) return w;
        c->log_format = (bl_log_format)w;
    }
    if ((v = env("BEAMLINE_QUIET")) && (!only_unset || !c->quiet)) c->quiet = strcmp(v, "0") != 0;
    if ((v = env("BEAMLINE_SQPOLL")) && (!only_unset || !c->sqpoll))
        c->sqpoll = strcmp(v, "0") != 0;
    if ((v = env("BEAMLINE_TOPOLOGY")) && (!only_unset || !c->topology)) c->topology = v;
    if ((v = env("BEAMLINE_CONTROL")) && (!only_unset || !c->control)) c->control = v;
    if ((v = env("BEAMLINE_METRICS")) && (!only_unset || !c->metrics)) c->metrics = v;
    return 0;
}

int bl_config_from_env(bl_config *c)
{
    if (!c) return -EINVAL;
    return env_overlay(c, false);
}

/* Every BEAMLINE_* variable the runtime and its layers read. */
static const char *const known_vars[] = {
    "BEAMLINE_BIND",     "BEAMLINE_WAKE",      "BEAMLINE_QUIET",      "BEAMLINE_SQPOLL",
    "BEAMLINE_TOPOLOGY", "BEAMLINE_LOG_LEVEL", "BEAMLINE_LOG_FORMAT", "BEAMLINE_NODE",
    "BEAMLINE_COOKIE",   "BEAMLINE_CONTROL",   "BEAMLINE_METRICS",
};

/* Edit distance between a and b (both short: variable names). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known variable closest to name. */
static const char *closest_var(const char *name)
{
    const char *best = NULL;
    size_t bd = SIZE_MAX;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0] + sizeof known_vars / sizeof known_vars[0];
         i++) {
        size_t nn = sizeof nums / sizeof nums[0];
        const char *k = i < nn ? nums[i].name : known_vars[i - nn];
        size_t d = distance(name, k);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

static bool known_var(const char *name)
{
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (!strcmp(name, nums[i].name)) return true;
    for (size_t i = 0; i < sizeof known_vars / sizeof known_vars[0]; i++)
        if (!strcmp(name, known_vars[i])) return true;
    return false;
}

/* A warning (kind runtime) for each BEAMLINE_* variable nothing reads. */
static void warn_unknown_vars(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "BEAMLINE_", 9) != 0) continue;
        const char *eq = strchr(*e, '=');
        char name[64];
        size_t k = eq ? (size_t)(eq - *e) : strlen(*e);
        if (k >= sizeof name) k = sizeof name - 1;
        memcpy(name, *e, k);
        name[k] = 0;
        if (known_var(name)) continue;
        BL_LOG(BL_LOG_WARNING, "runtime", "unknown environment variable, ignored",
               BL_LOG_S("variable", name), BL_LOG_S("did_you_mean", closest_var(name)));
    }
}

static int check_config(bl_config *c)
{
    if ((unsigned)c->bind > BL_BIND_SPREAD || (unsigned)c->wake > BL_WAKE_EVENTFD ||
        c->schedulers > 1024 || c->stack_size > (1u << 30) || c->ring_entries > 32768 ||
        c->reductions > 100000000 || c->spin_us > 10000000 || c->iowq_max > 65536 ||
        c->max_names > (1u << 24) || c->io_buffers > 32768 || c->dirty_threads > 1024 ||
        (unsigned)c->log_level > BL_LOG_DEBUG || (unsigned)c->log_format > BL_LOG_JOURNALD ||
        c->log_queue > (1u << 20) || (c->io_buffers & (c->io_buffers - 1)) ||
        c->long_schedule_ms > 3600000) {
        snprintf(errbuf, sizeof errbuf, "invalid configuration value");
        return -EINVAL;
    }
    if (!c->reductions) c->reductions = 4000;
    if (!c->spin_us && !c->no_spin) c->spin_us = 50;
    if (!c->stack_size) c->stack_size = 128u << 10;
    if (!c->stack_pool_max) c->stack_pool_max = 64;
    if (!c->ring_entries) c->ring_entries = 256;
    if (!c->iowq_max) c->iowq_max = 4;
    if (!c->max_names) c->max_names = 65536;
    if (!c->io_buffers) c->io_buffers = 256;
    if (!c->log_level) c->log_level = BL_LOG_NOTICE;
    if (!c->log_queue) c->log_queue = 1024;
    if (!c->long_schedule_ms && !c->no_long_schedule) c->long_schedule_ms = 100;
    c->stack_size = bl__stack_round(c->stack_size);
    return 0;
}

/* ---- start-up ---- */

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static unsigned start_ready;

typedef struct thread_arg {
    bl_sched *s;
    char err[256];
} thread_arg;

static void *sched_thread(void *arg)
{
    thread_arg *ta = arg;
    bl_sched *s = ta->s;
    /* A write to a pipe or socket whose reader is gone must return -EPIPE
     * to its process, not kill the program: SIGPIPE stays blocked (and
     * merely pending) on scheduler threads and the threads they start. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    int rc = bl__topo_bind_thread(&s->rt->topo, s->index);
    (void)rc; /* -ENOTSUP: no pinning in this plan; a failed bind only costs locality */
    s->start_err = bl__ring_setup(s, ta->err, sizeof ta->err);
    if (s->start_err == 0) /* overflow.c: alternate signal stack */
        s->start_err = bl__overflow_thread_init(ta->err, sizeof ta->err);
    /* Every descriptor of the runtime is open once the start returns (tests
     * count descriptors from the first process on): the thread's schedstat
     * for the idle spin's contention check (sched.c) too.  Closed at the end
     * of bl__sched_main. */
    if (s->start_err == 0)
        s->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    pthread_mutex_lock(&start_lock);
    start_ready++;
    pthread_cond_broadcast(&start_cond);
    pthread_mutex_unlock(&start_lock);
    if (s->start_err == 0) bl__sched_main(s);
    bl__overflow_thread_exit(); /* overflow.c */
    /* The ring and eventfd stay open: other schedulers may still be waking
     * this one.  runtime_free closes them once every thread has joined. */
    return NULL;
}

static void runtime_free(bl_runtime *rt)
{
    if (rt->scheds) {
        for (unsigned i = 0; i < rt->nsched; i++) {
            bl_sched *s = rt->scheds[i];
            if (!s) continue;
            bl__ring_teardown(s);
            for (bl_sched_service *v = services_head(); v; v = v->next)
                if (v->sched_free) v->sched_free(s);
            bl__hook_sched_free(s);
            bl__twheel_init(&s->wheel, 0, 0);
            bl__stack_pool_destroy(&s->stacks);
            bl__slab_destroy(&s->slab);
            munmap(s, sizeof *s);
        }
    }
    bl__slab_registry(NULL, 0);
    bl__names_destroy();
    free(rt->scheds);
    free(rt->slabs);
    bl__topo_free(&rt->topo);
    pthread_mutex_destroy(&rt->outside_lock);
    free(rt);
}

static void join_all(bl_runtime *rt, thread_arg *args, unsigned n)
{
    for (unsigned i = 0; i < n; i++) pthread_join(rt->scheds[i]->thread, NULL);
    free(args);
}

int bl_runtime_start(const bl_config *cfg)
{
    if (atomic_exchange(&started, 1)) {
        snprintf(errbuf, sizeof errbuf, "the runtime is already running");
        return -EALREADY;
    }
    errbuf[0] = 0;
    bl_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) goto nomem;
    pthread_mutex_init(&rt->outside_lock, NULL);
    int rc = 0;
    /* The variables fill what the program left at zero (all of it without cfg). */
    if (cfg) rt->cfg = *cfg;
    rc = env_overlay(&rt->cfg, true);
    if (rc || (rc = check_config(&rt->cfg))) goto fail;

    rc = bl__topo_build(&rt->topo, rt->cfg.topology, rt->cfg.schedulers, rt->cfg.bind);
    if (rc) {
        snprintf(errbuf, sizeof errbuf, "topology: %s%s", strerror(-rc),
                 rt->cfg.topology ? " (bad BEAMLINE_TOPOLOGY description?)" : "");
        goto fail;
    }
    rt->nsched = rt->topo.nsched;
    rt->scheds = calloc(rt->nsched, sizeof *rt->scheds);
    rt->slabs = calloc(rt->nsched, sizeof *rt->slabs);
    if (!rt->scheds || !rt->slabs) goto nomem_rt;
    for (unsigned i = 0; i < rt->nsched; i++) {
        /* The scheduler's own struct (run queue, inject queue, wheel) lives
         * on its NUMA node like everything else it owns. */
        int node = rt->topo.nnuma > 1 ? rt->topo.sched[i].numa : -1;
        bl_sched *s =
            mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED) goto nomem_rt;
        if (node >= 0) {
            unsigned long mask = 1ul << (node & 63);
            (void)mbind(s, sizeof *s, MPOL_PREFERRED, &mask, 64, 0);
        }
        rt->scheds[i] = s;
        s->index = i;
        s->rt = rt;
        s->numa = node;
        s->evfd = -1;
        s->ring_fd = -1;
        atomic_store_explicit(&s->inject_head, &s->inject_stub, memory_order_relaxed);
        s->inject_tail = &s->inject_stub;
        bl__twheel_init(&s->wheel, bl__now_ns(), 0);
        bl__slab_init(&s->slab, i, s->numa);
        bl__stack_pool_init(&s->stacks, rt->cfg.stack_size, rt->cfg.stack_pool_max, s->numa);
        rt->slabs[i] = &s->slab;
    }
    bl__ptab_init();
    if ((rc = bl__names_init(rt->cfg.max_names)) != 0) {
        snprintf(errbuf, sizeof errbuf, "name table: %s", strerror(-rc));
        goto fail;
    }
    bl__slab_registry(rt->slabs, rt->nsched);
    rt->start_ns = bl__now_ns();
    bl__rt = rt;

    bl__overflow_install(); /* overflow.c: SIGSEGV handler, before any scheduler runs */
    thread_arg *args = calloc(rt->nsched, sizeof *args);
    if (!args) goto nomem_rt;
    start_ready = 0;
    unsigned created = 0;
    for (; created < rt->nsched; created++) {
        args[created].s = rt->scheds[created];
        if (pthread_create(&rt->scheds[created]->thread, NULL, sched_thread, &args[created])) {
            rc = -EAGAIN;
            snprintf(errbuf, sizeof errbuf, "cannot create scheduler thread %u", created);
            break;
        }
    }
    pthread_mutex_lock(&start_lock);
    while (start_ready < created) pthread_cond_wait(&start_cond, &start_lock);
    pthread_mutex_unlock(&start_lock);
    for (unsigned i = 0; i < created && !rc; i++) {
        if (rt->scheds[i]->start_err) {
            rc = rt->scheds[i]->start_err;
            snprintf(errbuf, sizeof errbuf, "%s", args[i].err);
        }
    }
    if (rc) {
        bl_runtime_stop();
        join_all(rt, args, created);
        bl__rt = NULL;
        bl__ptab_destroy();
        goto fail;
    }
    free(args);
    warn_unknown_vars();
    if ((rc = bl__watchdog_start(rt)) != 0)
        BL_LOG(BL_LOG_WARNING, "runtime", "cannot start the long-schedule watchdog",
               BL_LOG_S("error", strerror(-rc)));
    for (bl_sched_service *v = services_head(); v; v = v->next)
        if (v->started) v->started();
    return 0;

nomem_rt:
    bl__rt = NULL;
nomem:
    snprintf(errbuf, sizeof errbuf, "out of memory");
    rc = -ENOMEM;
fail:
    bl__overflow_uninstall(); /* overflow.c (no-op if not installed yet) */
    if (rt) runtime_free(rt);
    atomic_store(&started, 0);
    return rc;
}

/* ---- stopping ---- */

void bl_runtime_stop(void)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return;
    /* Seq_cst: pairs with a scheduler's sleeping-flag store then stop check. */
    atomic_store_explicit(&rt->stop, 1, memory_order_seq_cst);
    atomic_store_explicit(&rt->stop_futex, 1, memory_order_seq_cst);
    syscall(SYS_futex, &rt->stop_futex, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    for (unsigned i = 0; i < rt->nsched; i++) {
        bl_sched *s = rt->scheds[i];
        if (s && s->evfd >= 0) {
            atomic_store_explicit(&s->sleeping, 1, memory_order_relaxed);
            bl__sched_notify(s);
        }
    }
}

int bl_runtime_wait(void)
{
    if (bl__tls_sched) return -EPERM;
    bl_runtime *rt = bl__rt;
    if (!rt) return -ESRCH;
    while (!atomic_load_explicit(&rt->stop_futex, memory_order_acquire))
        syscall(SYS_futex, &rt->stop_futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    bl__watchdog_stop();
    for (unsigned i = 0; i < rt->nsched; i++) pthread_join(rt->scheds[i]->thread, NULL);
    /* The services finish their work (the dirty-work pool runs its jobs
     * out; their processes never run again). */
    for (bl_sched_service *v = services_head(); v; v = v->next)
        if (v->stopped) v->stopped();
    /* No scheduler runs: free what processes still hold, then everything. */
    bl__ptab_each(bl__hook_proc_discard, NULL);
    bl__rt = NULL;
    bl__ptab_destroy();
    runtime_free(rt);
    bl__overflow_uninstall(); /* overflow.c */
    atomic_store(&started, 0);
    return 0;
}
