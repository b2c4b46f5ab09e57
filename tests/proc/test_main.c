/*
 * bl_main: every end of the main process stops the runtime, and bl_main
 * says how it ended (0 clean, 1..255 abnormal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#include "bl_test.h"

#ifdef __SANITIZE_ADDRESS__
/* The overflow test needs the runtime's SIGSEGV handler, not ASan's, and
 * the recursion's frames on the process stack (see tests/sched/test_overflow.c). */
const char *__asan_default_options(void)
{
    return "handle_segv=0:detect_stack_use_after_return=0";
}
#endif

typedef struct run {
    bl_entry_fn fn;
    void *arg;
    int rc;
    sem_t done;
} run;

static void *run_thread(void *arg)
{
    run *r = arg;
    bl_config c = {.schedulers = 2, .quiet = true};
    r->rc = bl_main(&c, r->fn, r->arg);
    sem_post(&r->done);
    return NULL;
}

/* bl_main(fn, arg) on a thread of its own; its result, or fails the test if
 * it has not returned within 10 s (the runtime kept running). */
static int run_main(bl_entry_fn fn, void *arg)
{
    run r = {.fn = fn, .arg = arg};
    sem_init(&r.done, 0, 0);
    atomic_store(&bl_test_failures, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, &r), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    int w;
    while ((w = sem_timedwait(&r.done, &ts)) != 0 && errno == EINTR) {
    }
    cr_assert_eq(w, 0, "bl_main did not return after its main process ended");
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&bl_test_failures), 0, "%s", bl_test_first);
    return r.rc;
}

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void exit_code_fn(void *arg)
{
    /* Something else running, which bl_main discards. */
    BL_CHECK_EQ(bl_spawn(NULL, wait_forever, NULL, NULL), 0);
    bl_exit((int)(intptr_t)arg);
    BL_CHECK(!"bl_exit returned");
}

Test(main, bl_exit_zero_stops_the_runtime)
{
    cr_assert_eq(run_main(exit_code_fn, (void *)0), 0);
}

Test(main, bl_exit_code_is_the_result)
{
    cr_assert_eq(run_main(exit_code_fn, (void *)3), 3);
    cr_assert_eq(run_main(exit_code_fn, (void *)255), 255);
    /* Outside 1..255: abnormal all the same. */
    cr_assert_eq(run_main(exit_code_fn, (void *)-7), 1);
    cr_assert_eq(run_main(exit_code_fn, (void *)256), 1);
    /* BL_STOP is a normal exit. */
    cr_assert_eq(run_main(exit_code_fn, (void *)(intptr_t)BL_STOP), 0);
}

static void exit_reason_fn(void *arg)
{
    bl_exit_reason(arg);
}

Test(main, bl_exit_reason)
{
    bl_reason shutdown = {.kind = BL_SHUTDOWN, .detail = "bye", .detail_len = 3};
    cr_assert_eq(run_main(exit_reason_fn, &shutdown), 0);
    bl_reason custom = {.kind = BL_CUSTOM, .code = 9, .detail = "x", .detail_len = 1};
    cr_assert_eq(run_main(exit_reason_fn, &custom), 9);
    bl_reason kill = BL_REASON(BL_KILL);
    cr_assert_eq(run_main(exit_reason_fn, &kill), 1);
}

static void killer(void *arg)
{
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(*(bl_pid *)arg, &kill);
}

static void killed_fn(void *arg)
{
    bl_pid self = bl_self();
    BL_CHECK_EQ(bl_spawn(NULL, killer, &self, NULL), 0);
    wait_forever(NULL);
    BL_CHECK(!"survived a kill");
}

Test(main, killed_by_an_exit_signal)
{
    cr_assert_eq(run_main(killed_fn, NULL), 1);
}

static void crash5(void *arg)
{
    bl_exit(5);
}

static void linked_fn(void *arg)
{
    BL_CHECK_EQ(bl_spawn_link(NULL, crash5, NULL, NULL), 0);
    wait_forever(NULL);
    BL_CHECK(!"survived its link");
}

static void normal_child(void *arg) {}

static void linked_normal_fn(void *arg)
{
    bl_pid c;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_link(&c, normal_child, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(c, &ref), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_DOWN, 10000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    /* A linked process's normal end is no reason to go. */
    BL_CHECK(bl_test_recv_tag(BL_TAG_EXIT, 0) == NULL);
}

Test(main, link_takes_it_down_with_the_peers_reason)
{
    cr_assert_eq(run_main(linked_fn, NULL), 5);
    cr_assert_eq(run_main(linked_normal_fn, NULL), 0);
}

static __attribute__((noinline)) int recurse(int n)
{
    volatile char buf[1024];
    buf[0] = (char)n;
    buf[sizeof buf - 1] = (char)(n >> 8);
    if (n == 0) return buf[0];
    return recurse(n - 1) + buf[sizeof buf - 1];
}

static void overflow_fn(void *arg)
{
    /* Ten times the default 128 KiB stack, in 1 KiB frames. */
    int r = recurse(10 * 128);
    BL_CHECK(!"the recursion returned instead of overflowing");
    (void)r;
}

Test(main, stack_overflow)
{
    cr_assert_eq(run_main(overflow_fn, NULL), 1);
}

static void stopper(void *arg)
{
    bl_runtime_stop();
}

static void stopped_fn(void *arg)
{
    BL_CHECK_EQ(bl_spawn(NULL, stopper, NULL, NULL), 0);
    wait_forever(NULL);
}

static void return_fn(void *arg)
{
    BL_CHECK_EQ(bl_spawn(NULL, wait_forever, NULL, NULL), 0);
}

Test(main, return_and_runtime_stop)
{
    cr_assert_eq(run_main(return_fn, NULL), 0);
    cr_assert_eq(run_main(stopped_fn, NULL), 0);
    cr_assert_eq(bl_main(NULL, NULL, NULL), -EINVAL);
}
