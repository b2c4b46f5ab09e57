/*
 * The dirty-work pool: results, many jobs at once on several threads,
 * schedulers that keep running while a job blocks, a process killed while
 * its job runs, a runtime stopped with a job in progress, and the knob.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "beamline/dirty.h"
#include "beamline/io.h"
#include "bl_test.h"
#include "sched/sched.h"

static long square(void *arg)
{
    long v = (long)(intptr_t)arg;
    return v * v;
}

/* Blocks in poll(2) and read(2) on a pipe, what a scheduler thread must
 * never do; gives up after 10 s so that a broken pool fails, not hangs. */
static long block_on_pipe(void *arg)
{
    int fd = *(int *)arg;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) != 1) return -1;
    char c = 0;
    return read(fd, &c, 1) == 1 ? c : -1;
}

static long resolve(void *arg)
{
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    if (getaddrinfo((const char *)arg, "80", &hints, &ai)) return -1;
    long loopback = ai && ai->ai_family == AF_INET &&
                    ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    freeaddrinfo(ai);
    return loopback;
}

/* Runs on a pool thread: no process there. */
static long whoami(void *arg)
{
    return bl_self() == BL_PID_NONE;
}

typedef struct many_ctx {
    bl_pid test;
    int i;
} many_ctx;

static void many_job(void *arg)
{
    many_ctx *c = arg;
    long r = -1;
    BL_CHECK_EQ(bl_dirty_run(square, (void *)(intptr_t)c->i, &r), 0);
    BL_CHECK_EQ(r, (long)c->i * c->i);
    bl_send(c->test, 1, NULL, 0);
}

static void writer(void *arg)
{
    int fd = *(int *)arg;
    /* Runs on the only scheduler while a pool thread is blocked in read(2). */
    BL_CHECK_EQ(bl_io_write(fd, "x", 1, 5000), 1);
}

static void dirty_main(void *arg)
{
    long r = 0;
    BL_CHECK_EQ(bl_dirty_run(square, (void *)7, &r), 0);
    BL_CHECK_EQ(r, 49);
    BL_CHECK_EQ(bl_dirty_run(square, (void *)3, NULL), 0);
    BL_CHECK_EQ(bl_dirty_run(NULL, NULL, &r), -EINVAL);
    BL_CHECK_EQ(bl_dirty_run(whoami, NULL, &r), 0);
    BL_CHECK_EQ(r, 1);
    /* Many at once. */
    int n = BL_SCALE(200);
    many_ctx *cs = calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i] = (many_ctx){bl_self(), i};
        BL_CHECK_EQ(bl_spawn(NULL, many_job, &cs[i], NULL), 0);
    }
    for (int i = 0; i < n; i++) {
        bl_msg *m = bl_test_recv_tag(1, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    free(cs);
    /* A job blocked in read(2): the writer, a process, still gets to run. */
    int p[2];
    BL_CHECK_EQ(pipe(p), 0);
    BL_CHECK_EQ(bl_spawn(NULL, writer, &p[1], NULL), 0);
    BL_CHECK_EQ(bl_dirty_run(block_on_pipe, &p[0], &r), 0);
    BL_CHECK_EQ(r, 'x');
    close(p[0]);
    close(p[1]);
    /* Name resolution, the classic dirty job. */
    BL_CHECK_EQ(bl_dirty_run(resolve, "localhost", &r), 0);
    BL_CHECK_EQ(r, 1);
    BL_CHECK_EQ(bl_dirty_pending(), 0);
}

/* One scheduler: if a job ran on it, the writer could never run. */
Test(dirty, run)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, dirty_main, NULL);
}

Test(dirty, process_only)
{
    long r;
    cr_assert_eq(bl_dirty_run(square, NULL, &r), -EPERM);
    cr_assert_eq(bl_dirty_pending(), 0);
}

/* ---- jobs so quick they end before their caller has parked ---- */

static long nothing(void *arg)
{
    return 1;
}

static void quick_loop(void *arg)
{
    int n = BL_SCALE(20000);
    long sum = 0, r;
    for (int i = 0; i < n; i++)
        if (bl_dirty_run(nothing, NULL, &r) == 0) sum += r;
    BL_CHECK_EQ(sum, n);
    bl_send(*(bl_pid *)arg, 4, NULL, 0);
}

static void quick_main(void *arg)
{
    bl_pid self = bl_self();
    for (int i = 0; i < 2; i++) BL_CHECK_EQ(bl_spawn(NULL, quick_loop, &self, NULL), 0);
    /* A lost wake-up leaves a caller parked for good: bounded here. */
    for (int i = 0; i < 2; i++) {
        bl_msg *m = bl_test_recv_tag(4, 30000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
}

Test(dirty, quick_jobs, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, quick_main, NULL);
}

/* ---- every pool thread busy at once ---- */

#define MEET 4

static pthread_mutex_t meet_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cv = PTHREAD_COND_INITIALIZER;
static int meet_count;

/* Returns 1 once MEET jobs are inside at the same time, 0 after 10 s. */
static long meet(void *arg)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&meet_lock);
    meet_count++;
    pthread_cond_broadcast(&meet_cv);
    int rc = 0;
    while (meet_count < MEET && rc == 0) rc = pthread_cond_timedwait(&meet_cv, &meet_lock, &until);
    long ok = meet_count >= MEET;
    pthread_mutex_unlock(&meet_lock);
    return ok;
}

static void meeter(void *arg)
{
    long r = 0;
    BL_CHECK_EQ(bl_dirty_run(meet, NULL, &r), 0);
    BL_CHECK_EQ(r, 1);
    bl_send(*(bl_pid *)arg, 2, NULL, 0);
}

static void meet_main(void *arg)
{
    bl_pid self = bl_self();
    meet_count = 0;
    for (int i = 0; i < MEET; i++) BL_CHECK_EQ(bl_spawn(NULL, meeter, &self, NULL), 0);
    for (int i = 0; i < MEET; i++) {
        bl_msg *m = bl_test_recv_tag(2, 20000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
}

Test(dirty, threads_run_jobs_in_parallel)
{
    bl_config c = {.schedulers = 1, .dirty_threads = MEET};
    bl_test_run(&c, meet_main, NULL);
}

/* ---- the workers are not pinned with the scheduler that started them ---- */

static long cpu_count(void *arg)
{
    cpu_set_t s;
    return sched_getaffinity(0, sizeof s, &s) == 0 ? CPU_COUNT(&s) : -1;
}

static long has_cpu(void *arg)
{
    cpu_set_t s;
    return sched_getaffinity(0, sizeof s, &s) == 0 && CPU_ISSET((int)(intptr_t)arg, &s);
}

/*
 * The process's CPUs less the one the scheduler is pinned to, or all of
 * them when that is the only one.  A worker on a scheduler's core, woken
 * there while another core idled, could hold it for a whole job of 2 ms,
 * with no process run meanwhile (6 jobs of 10 in one run before the change).
 */
static void affinity_main(void *arg)
{
    cpu_set_t s;
    BL_CHECK_EQ(sched_getaffinity(getpid(), sizeof s, &s), 0);
    long r = 0;
    BL_CHECK_EQ(bl_dirty_run(cpu_count, NULL, &r), 0);
    int all = CPU_COUNT(&s);
    BL_CHECK_EQ(r, all > 1 ? all - 1 : all);
    int pu = bl__rt->topo.sched[0].pu;
    BL_CHECK(pu >= 0);
    BL_CHECK_EQ(bl_dirty_run(has_cpu, (void *)(intptr_t)pu, &r), 0);
    BL_CHECK_EQ(r, all > 1 ? 0 : 1);
}

Test(dirty, workers_not_pinned)
{
    bl_config c = {.schedulers = 1, .bind = BL_BIND_CORES};
    bl_test_run(&c, affinity_main, NULL);
}

/* ---- killed while its job runs ---- */

typedef struct victim_job {
    int fd;
    bl_pid test;
    volatile long seen; /* written by the job after the kill: the stack must still be there */
} victim_job;

static long victim_fn(void *arg)
{
    victim_job *v = arg;
    uintptr_t where = (uintptr_t)v;
    bl_send(v->test, 3, &where, sizeof where);
    long c = block_on_pipe(&v->fd);
    v->seen = c;
    return c;
}

typedef struct killed_args {
    int pipe[2];
    bl_pid test;
} killed_args;

static void victim(void *arg)
{
    killed_args *a = arg;
    /* On this process's stack, like the job itself. */
    victim_job v = {.fd = a->pipe[0], .test = a->test};
    long r;
    bl_dirty_run(victim_fn, &v, &r);
    BL_CHECK(0); /* killed first */
}

static bool mapped(uintptr_t addr)
{
    long page = sysconf(_SC_PAGESIZE);
    return msync((void *)(addr & ~(uintptr_t)(page - 1)), (size_t)page, MS_ASYNC) == 0;
}

static void killed_main(void *arg)
{
    killed_args a = {.test = bl_self()};
    BL_CHECK_EQ(pipe(a.pipe), 0);
    bl_pid v;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&v, &ref, victim, &a, NULL), 0);
    /* The job has started on a pool thread. */
    bl_msg *m = bl_test_recv_tag(3, 10000);
    BL_CHECK(m != NULL);
    uintptr_t where = 0;
    if (m && m->len == sizeof where) memcpy(&where, m->data, sizeof where);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_dirty_pending(), 1);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(v, &kill), 0);
    m = bl_test_recv_tag(BL_TAG_DOWN, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    /* Dead, yet its stack is kept for the job still running on it. */
    BL_CHECK(where && mapped(where));
    BL_CHECK_EQ(bl_dirty_pending(), 1);
    /* Release it: the job ends and its completion frees the dead stack. */
    BL_CHECK_EQ(write(a.pipe[1], "y", 1), 1);
    BL_TEST_UNTIL(bl_dirty_pending() == 0 && !mapped(where), 10000);
    BL_CHECK_EQ(bl_dirty_pending(), 0);
    BL_CHECK(!mapped(where));
    close(a.pipe[0]);
    close(a.pipe[1]);
}

Test(dirty, killed_while_running)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, killed_main, NULL);
}

/* ---- the runtime stops with a job in progress ---- */

static int stop_pipe[2];
static _Atomic pid_t sched_tid;
static _Atomic int waiter_done;
static _Atomic uintptr_t waiter_stack;

static void waiter(void *arg)
{
    long r;
    atomic_store(&waiter_stack, (uintptr_t)&r);
    bl_dirty_run(block_on_pipe, &stop_pipe[0], &r);
    /* The job ends after the scheduler has stopped: this never runs. */
    atomic_store(&waiter_done, 1);
}

static void *release_later(void *arg)
{
    /* Once the only scheduler thread has exited, let the job finish: its
     * completion wakes a process on a stopped runtime. */
    while (!atomic_load(&sched_tid)) sched_yield();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)atomic_load(&sched_tid));
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (access(path, F_OK) == 0 && t.tv_sec - t0.tv_sec < 10);
    (void)!write(stop_pipe[1], "z", 1);
    return NULL;
}

static void stop_main(void *arg)
{
    BL_CHECK_EQ(bl_spawn(NULL, waiter, NULL, NULL), 0);
    BL_TEST_UNTIL(bl_dirty_pending() != 0, 10000);
    BL_CHECK_EQ(bl_dirty_pending(), 1);
    /* main returns: the runtime stops while the job is blocked. */
    atomic_store(&sched_tid, gettid());
}

Test(dirty, runtime_stop_with_job)
{
    cr_assert_eq(pipe(stop_pipe), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, release_later, NULL), 0);
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, stop_main, NULL);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&waiter_done), 0);
    /* The parked process's stack went with the runtime. */
    cr_assert(atomic_load(&waiter_stack) && !mapped(atomic_load(&waiter_stack)));
    cr_assert_eq(bl_dirty_pending(), 0);
    /* The job read the byte: it ran to its end. */
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 0), 0);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    /* And again: the pool restarts with the next runtime. */
    bl_test_run(NULL, dirty_main, NULL);
}

/* ---- the knob ---- */

Test(dirty, config)
{
    bl_config c = {0};
    setenv("BEAMLINE_DIRTY_THREADS", "3", 1);
    cr_assert_eq(bl_config_from_env(&c), 0);
    cr_assert_eq(c.dirty_threads, 3);
    setenv("BEAMLINE_DIRTY_THREADS", "5000", 1);
    cr_assert_eq(bl_config_from_env(&c), -EINVAL);
    unsetenv("BEAMLINE_DIRTY_THREADS");
    bl_config bad = {.dirty_threads = 5000};
    cr_assert_eq(bl_main(&bad, (bl_entry_fn)abort, NULL), -EINVAL);
}
