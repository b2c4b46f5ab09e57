/*
 * Stack overflow (invariant 9): the process that runs into its guard page
 * dies with reason stack_overflow; the runtime and every other process go
 * on.  Any other SIGSEGV still kills the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bl_test.h"

#ifdef __SANITIZE_ADDRESS__
/* ASan would catch the SIGSEGV itself and report the overflow as a crash;
 * the runtime's handler must see it.  Fake stacks would move the big local
 * arrays off the process stack, so the recursion would never reach the guard. */
const char *__asan_default_options(void)
{
    return "handle_segv=0:detect_stack_use_after_return=0";
}
#endif

enum { T_PING = 1, T_PONG, T_STOP };

#define OVF_STACK ((size_t)64 << 10)
#define OVF_DEPTH ((int)(10 * OVF_STACK / 1024)) /* 10x the stack in 1 KiB frames */

/* One frame holds a 1 KiB array; returning adds to it so no call is a tail call. */
static __attribute__((noinline)) int recurse(int n)
{
    volatile char buf[1024];
    buf[0] = (char)n;
    buf[sizeof buf - 1] = (char)(n >> 8);
    if (n == 0) return buf[0];
    return recurse(n - 1) + buf[sizeof buf - 1];
}

/* Scheduler the last overflowing process ran on (-2: it never started). */
static _Atomic int ovf_sched = -2;

/* Recurses to 10x its stack (assumed 64 KiB, or the depth passed in arg). */
static void overflow_proc(void *arg)
{
    atomic_store(&ovf_sched, bl_current_scheduler());
    int depth = arg ? (int)(intptr_t)arg : OVF_DEPTH;
    int r = recurse(depth);
    BL_CHECK(!"the recursion returned instead of overflowing");
    (void)r;
}

/* Waits for the DOWN of ref from pid and returns its reason kind (-1 on timeout). */
static int wait_down(bl_ref ref, bl_pid pid)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    BL_CHECK_EQ(m->tag, BL_TAG_DOWN);
    BL_CHECK(m->from == pid);
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    BL_CHECK_EQ(r.code, 0);
    BL_CHECK_EQ(r.detail_len, 0);
    int kind = r.kind;
    bl_msg_free(m);
    return kind;
}

/* Spawns an overflowing process with opts, monitored; returns its reason kind. */
static int overflow_once(const bl_spawn_opts *o, void *arg)
{
    bl_pid pid;
    bl_ref ref;
    int rc = bl_spawn_monitor(&pid, &ref, overflow_proc, arg, o);
    BL_CHECK_EQ(rc, 0);
    if (rc) return -1;
    int kind = wait_down(ref, pid);
    BL_CHECK(!bl_is_alive(pid));
    return kind;
}

static void quick_proc(void *arg)
{
    (void)recurse(4);
}

/* ---- 1: the monitor sees stack_overflow ---- */

static void monitor_main(void *arg)
{
    bl_spawn_opts o = {.stack_size = OVF_STACK};
    BL_CHECK_EQ(overflow_once(&o, NULL), BL_STACK_OVERFLOW);
    /* The default stack (128 KiB) as well. */
    BL_CHECK_EQ(overflow_once(NULL, (void *)(intptr_t)(10 * 128)), BL_STACK_OVERFLOW);
    /* The runtime goes on: a process on a reused stack exits normally. */
    bl_pid pid;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&pid, &ref, quick_proc, NULL, &o), 0);
    BL_CHECK_EQ(wait_down(ref, pid), BL_NORMAL);
}

Test(overflow, monitor_sees_stack_overflow)
{
    bl_test_run(NULL, monitor_main, NULL);
}

/* ---- 2: the others go on, and overflows repeat on one scheduler ---- */

static void ponger(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) continue;
        if (m->tag == T_STOP) {
            bl_msg_free(m);
            return;
        }
        BL_CHECK_EQ(bl_send(m->from, T_PONG, m->data, m->len), 0);
        bl_msg_free(m);
    }
}

static void ping(bl_pid partner, int n)
{
    for (int i = 0; i < n; i++) {
        BL_CHECK_EQ(bl_send(partner, T_PING, &i, sizeof i), 0);
        bl_msg *m = bl_test_recv_tag(T_PONG, 10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        BL_CHECK_EQ(m->len, sizeof i);
        BL_CHECK_EQ(*(const int *)m->data, i);
        bl_msg_free(m);
    }
}

#define NOVF 20

static void repeat_main(void *arg)
{
    /* Partner and overflowing processes all start on scheduler 0. */
    bl_spawn_opts on0 = {.scheduler = 1};
    bl_spawn_opts ovf = {.stack_size = OVF_STACK, .scheduler = 1};
    bl_pid partner;
    BL_CHECK_EQ(bl_spawn(&partner, ponger, NULL, &on0), 0);
    ping(partner, 10);

    /* One after the other: the handler and the alternate stack of one
     * scheduler thread serve overflow after overflow. */
    for (int i = 0; i < NOVF; i++) {
        atomic_store(&ovf_sched, -2);
        BL_CHECK_EQ(overflow_once(&ovf, NULL), BL_STACK_OVERFLOW);
        /* It never called the runtime, so nothing could steal it. */
        BL_CHECK_EQ(atomic_load(&ovf_sched), 0);
        ping(partner, 10);
    }
    ping(partner, 1000);

    /* All at once, while the partner keeps answering. */
    bl_pid pids[NOVF];
    bl_ref refs[NOVF];
    for (int i = 0; i < NOVF; i++)
        BL_CHECK_EQ(bl_spawn_monitor(&pids[i], &refs[i], overflow_proc, NULL, &ovf), 0);
    ping(partner, 1000);
    for (int i = 0; i < NOVF; i++) BL_CHECK_EQ(wait_down(refs[i], pids[i]), BL_STACK_OVERFLOW);

    BL_CHECK(bl_is_alive(partner));
    ping(partner, 10);
    BL_CHECK_EQ(bl_send(partner, T_STOP, NULL, 0), 0);
}

Test(overflow, others_go_on_and_overflows_repeat)
{
    bl_test_run(NULL, repeat_main, NULL);
}

/* ---- 3: links carry stack_overflow ---- */

/* Links to an overflowing process and waits; dies of the exit signal. */
static void linked_waiter(void *arg)
{
    bl_spawn_opts o = {.stack_size = OVF_STACK};
    BL_CHECK_EQ(bl_spawn_link(NULL, overflow_proc, NULL, &o), 0);
    uint32_t never = T_STOP;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, 10000, 0);
    BL_CHECK(!"the exit signal did not arrive");
    bl_msg_free(m);
}

static void link_main(void *arg)
{
    bl_trap_exit(true);
    bl_spawn_opts o = {.stack_size = OVF_STACK};
    bl_pid pid;
    BL_CHECK_EQ(bl_spawn_link(&pid, overflow_proc, NULL, &o), 0);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m != NULL);
    if (m) {
        BL_CHECK(m->from == pid);
        bl_reason r;
        BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
        BL_CHECK_EQ(r.kind, BL_STACK_OVERFLOW);
        BL_CHECK(!bl_reason_is_clean(&r));
        bl_msg_free(m);
    }
    /* A linked process that does not trap exits dies with the same reason. */
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&pid, &ref, linked_waiter, NULL, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, pid), BL_STACK_OVERFLOW);
}

Test(overflow, trapping_link_gets_exit)
{
    bl_test_run(NULL, link_main, NULL);
}

/* ---- 4: any other SIGSEGV still kills the program ---- */

/* Writes through a null pointer the compiler cannot see (no trap instead),
 * without UBSan's null check (it would abort before the fault). */
static __attribute__((noinline, no_sanitize("undefined"))) void deref_null(void)
{
    volatile int *volatile np = NULL;
    *np = 1;
}

/* Runs body in a child with SIGSEGV at its default action; returns the wait status. */
static int in_child(void (*body)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSEGV, SIG_DFL);
        body();
        _exit(0); /* survived: the test fails */
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    return st;
}

static void describe(int st, char *buf, size_t len)
{
    if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, len, "exited with %d", WEXITSTATUS(st));
}

static void expect_segv_death(int st)
{
    char what[64];
    describe(st, what, sizeof what);
#ifdef __SANITIZE_ADDRESS__
    /* A sanitizer's report and exit also count as crashing loudly. */
    cr_assert(WIFSIGNALED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3),
              "the child survived: %s", what);
#else
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "the child %s, not SIGSEGV", what);
#endif
}

static void null_on_main_thread(void)
{
    bl_config c = {.schedulers = 2};
    if (bl_runtime_start(&c) != 0) _exit(3);
    deref_null();
}

Test(overflow, null_deref_outside_a_process_crashes)
{
    expect_segv_death(in_child(null_on_main_thread));
}

static void null_proc(void *arg)
{
    deref_null();
}

static void null_in_process(void)
{
    bl_config c = {.schedulers = 2};
    if (bl_main(&c, null_proc, NULL) != 0) _exit(3);
}

Test(overflow, null_deref_in_a_process_crashes)
{
    /* On a scheduler thread, in a process, but not in the guard page. */
    expect_segv_death(in_child(null_in_process));
}

/* A handler the program had before the runtime started still gets the faults that are not
 * overflows. */
static void exit_42(int sig)
{
    _exit(42);
}

static void null_with_handler(void)
{
    signal(SIGSEGV, exit_42);
    bl_config c = {.schedulers = 2};
    if (bl_runtime_start(&c) != 0) _exit(3);
    deref_null();
}

Test(overflow, previous_handler_is_chained)
{
    int st = in_child(null_with_handler);
    char what[64];
    describe(st, what, sizeof what);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 42, "the child %s, not 42", what);
}

/* ---- 5: the runtime puts the previous action back ---- */

static void overflow_main(void *arg)
{
    bl_spawn_opts o = {.stack_size = OVF_STACK};
    BL_CHECK_EQ(overflow_once(&o, NULL), BL_STACK_OVERFLOW);
}

Test(overflow, handler_restored_at_shutdown)
{
    struct sigaction before, after;
    cr_assert_eq(sigaction(SIGSEGV, NULL, &before), 0);
    bl_test_run(NULL, overflow_main, NULL);
    cr_assert_eq(sigaction(SIGSEGV, NULL, &after), 0);
    cr_assert((void *)after.sa_handler == (void *)before.sa_handler, "SIGSEGV action not restored");
    /* A second runtime in the same program handles overflows again. */
    bl_test_run(NULL, overflow_main, NULL);
}
