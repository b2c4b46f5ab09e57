/*
 * The dirty-work pool: results, many jobs at once, schedulers that keep
 * running while a job blocks, a process killed while its job runs, and a
 * runtime stopped with a job in progress.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#include "beamline/dirty.h"
#include "beamline/io.h"
#include "bl_test.h"

static long square(void *arg)
{
    long v = (long)(intptr_t)arg;
    return v * v;
}

/* Blocks in read(2) on a pipe: what a scheduler thread must never do. */
static long block_on_pipe(void *arg)
{
    int fd = *(int *)arg;
    char c = 0;
    return read(fd, &c, 1) == 1 ? c : -1;
}

static long resolve(void *arg)
{
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo((const char *)arg, "80", &hints, &ai);
    if (rc) return -1;
    freeaddrinfo(ai);
    return 0;
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
    /* Runs on a scheduler while the dirty thread is blocked in read(2). */
    BL_CHECK_EQ(bl_io_write(fd, "x", 1, 5000), 1);
}

static void dirty_main(void *arg)
{
    long r = 0;
    BL_CHECK_EQ(bl_dirty_run(square, (void *)7, &r), 0);
    BL_CHECK_EQ(r, 49);
    BL_CHECK_EQ(bl_dirty_run(square, (void *)3, NULL), 0);
    BL_CHECK_EQ(bl_dirty_run(NULL, NULL, &r), -EINVAL);
    /* Many at once. */
    int n = BL_SCALE(200);
    many_ctx *cs = calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i] = (many_ctx){bl_self(), i};
        BL_CHECK_EQ(bl_spawn(NULL, many_job, &cs[i], NULL), 0);
    }
    for (int i = 0; i < n; i++) bl_msg_free(bl_test_recv_tag(1, 10000));
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
    BL_CHECK_EQ(r, 0);
    BL_CHECK_EQ(bl_dirty_pending(), 0);
}

Test(dirty, run)
{
    bl_test_run(NULL, dirty_main, NULL);
}

Test(dirty, process_only)
{
    long r;
    cr_assert_eq(bl_dirty_run(square, NULL, &r), -EPERM);
}

/* ---- killed while its job runs ---- */

static void victim(void *arg)
{
    long r;
    bl_dirty_run(block_on_pipe, arg, &r);
    BL_CHECK(0); /* killed first */
}

static void killed_main(void *arg)
{
    int p[2];
    BL_CHECK_EQ(pipe(p), 0);
    bl_pid v;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&v, &ref, victim, &p[0], NULL), 0);
    for (int i = 0; i < 100000 && bl_dirty_pending() == 0; i++) bl_yield();
    BL_CHECK_EQ(bl_dirty_pending(), 1);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(v, &kill), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_DOWN, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    /* The job still runs; release it: it ends and frees the dead stack. */
    BL_CHECK_EQ(write(p[1], "y", 1), 1);
    for (int i = 0; i < 100000 && bl_dirty_pending() != 0; i++) bl_yield();
    BL_CHECK_EQ(bl_dirty_pending(), 0);
    close(p[0]);
    close(p[1]);
}

Test(dirty, killed_while_running)
{
    bl_test_run(NULL, killed_main, NULL);
}

/* ---- the runtime stops with a job in progress ---- */

static int stop_pipe[2];

static void waiter(void *arg)
{
    long r;
    bl_dirty_run(block_on_pipe, &stop_pipe[0], &r);
}

static _Atomic int main_done;

static void *release_later(void *arg)
{
    /* Once the main process is returning (the runtime stops behind it),
     * let the job finish; the stop waits for it either way. */
    while (!atomic_load(&main_done)) sched_yield();
    (void)!write(stop_pipe[1], "z", 1);
    return NULL;
}

static void stop_main(void *arg)
{
    BL_CHECK_EQ(bl_spawn(NULL, waiter, NULL, NULL), 0);
    for (int i = 0; i < 100000 && bl_dirty_pending() == 0; i++) bl_yield();
    BL_CHECK_EQ(bl_dirty_pending(), 1);
    /* main returns: the runtime stops while the job is blocked. */
    atomic_store(&main_done, 1);
}

Test(dirty, runtime_stop_with_job)
{
    cr_assert_eq(pipe(stop_pipe), 0);
    pthread_t t;
    pthread_create(&t, NULL, release_later, NULL);
    bl_test_run(NULL, stop_main, NULL);
    pthread_join(t, NULL);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    /* And again: the pool restarts with the next runtime. */
    bl_test_run(NULL, dirty_main, NULL);
}
