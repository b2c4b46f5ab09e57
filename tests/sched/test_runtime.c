/*
 * tests/sched/test_runtime.c - the runtime's lifecycle and configuration:
 * start / stop / wait / restart, bad configurations and environment
 * variables, io_uring refused by seccomp, calls made where they make no
 * sense, both wake-up mechanisms, an idle runtime's CPU use, and bl_main
 * discarding processes that never finish.
 *
 * Criterion runs each test in its own child process, so environment
 * variables and the seccomp filter set by one test do not leak into others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bl_test.h"
#include "sched/sched.h"

#ifdef BL_ASAN
#include <sanitizer/lsan_interface.h>
#endif

enum { T_PING = 1, T_PONG, T_READY, T_STOP, T_WHERE, T_DATA, T_NEVER };

/* Sleeps the calling (non-scheduler) thread for ms milliseconds. */
static void thread_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls cond (an expression) every millisecond for up to ms; true if it held. */
#define WAIT_UNTIL(cond, ms)                                                                       \
    ({                                                                                             \
        uint64_t _end = mono_ms() + (ms);                                                          \
        bool _ok;                                                                                  \
        while (!(_ok = (cond)) && mono_ms() < _end) thread_sleep_ms(1);                            \
        _ok;                                                                                       \
    })

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Start, stop, wait, restart                                               */
/* ------------------------------------------------------------------------ */

static _Atomic int ran;

/* Proves the runtime runs processes, then stops it. */
static void run_then_stop(void *arg)
{
    BL_CHECK_EQ(bl_runtime_wait(), -EPERM); /* not from a scheduler thread */
    BL_CHECK_EQ(bl_schedulers(), 2);
    BL_CHECK(bl_current_scheduler() >= 0);
    atomic_fetch_add(&ran, 1);
    bl_runtime_stop();
}

Test(runtime, start_twice_stop_wait_restart)
{
    cr_assert_eq(bl_schedulers(), 0);
    cr_assert_eq(bl_runtime_wait(), -ESRCH, "waiting for a runtime that is not there");
    bl_config c = {.schedulers = 2};
    int fds = open_fds();
    for (int round = 0; round < 3; round++) {
        int rc = bl_runtime_start(&c);
        cr_assert_eq(rc, 0, "start #%d: %d (%s)", round, rc, bl_runtime_error());
        cr_assert_eq(bl_schedulers(), 2);
        rc = bl_runtime_start(&c);
        cr_assert_eq(rc, -EALREADY, "second start: %d", rc);
        cr_assert_neq(bl_runtime_error()[0], 0, "the refusal is explained");
        cr_assert_eq(bl_runtime_start(NULL), -EALREADY);
        cr_assert_eq(bl_schedulers(), 2, "a refused start leaves the runtime running");

        atomic_store(&ran, 0);
        atomic_store(&bl_test_failures, 0);
        cr_assert_eq(bl_spawn(NULL, run_then_stop, NULL, NULL), 0);
        cr_assert_eq(bl_runtime_wait(), 0);
        cr_assert_eq(atomic_load(&ran), 1, "the process ran in round %d", round);
        cr_assert_eq(atomic_load(&bl_test_failures), 0, "%s", bl_test_first);
        cr_assert_eq(bl_schedulers(), 0);
        cr_assert_eq(bl_runtime_wait(), -ESRCH);
    }
    /* Stop from this thread, with no process at all. */
    cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
    bl_runtime_stop();
    bl_runtime_stop(); /* twice is harmless */
    cr_assert_eq(bl_runtime_wait(), 0);
    bl_runtime_stop(); /* and so is stopping a stopped runtime */
    cr_assert_eq(open_fds(), fds, "rings and eventfds are closed");
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

Test(runtime, invalid_config_values)
{
    const struct {
        const char *what;
        bl_config c;
    } bad[] = {
        {"bind 7", {.schedulers = 2, .bind = (bl_bind)7}},
        {"wake 9", {.schedulers = 2, .wake = (bl_wake)9}},
        {"5000 schedulers", {.schedulers = 5000}},
        {"2 GiB stacks", {.schedulers = 2, .stack_size = (size_t)2 << 30}},
        {"100000 ring entries", {.schedulers = 2, .ring_entries = 100000}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = bl_runtime_start(&bad[i].c);
        cr_assert_eq(rc, -EINVAL, "%s: %d", bad[i].what, rc);
        cr_assert_neq(bl_runtime_error()[0], 0, "%s: no error text", bad[i].what);
        cr_assert_eq(bl_schedulers(), 0);
        cr_assert_eq(bl_main(&bad[i].c, run_then_stop, NULL), -EINVAL, "%s via bl_main",
                     bad[i].what);
    }
    cr_assert_eq(bl_main(NULL, NULL, NULL), -EINVAL, "bl_main without a main function");
    /* A refused configuration leaves nothing behind: a good one starts. */
    bl_config good = {.schedulers = 2};
    atomic_store(&ran, 0);
    bl_test_run(&good, run_then_stop, NULL);
    cr_assert_eq(atomic_load(&ran), 1);
}

static void clear_env(void)
{
    static const char *vars[] = {
        "BEAMLINE_SCHEDULERS", "BEAMLINE_BIND",         "BEAMLINE_REDUCTIONS",
        "BEAMLINE_SPIN_US",    "BEAMLINE_WAKE",         "BEAMLINE_STACK_SIZE",
        "BEAMLINE_STACK_POOL", "BEAMLINE_RING_ENTRIES", "BEAMLINE_IOWQ_MAX",
        "BEAMLINE_TOPOLOGY",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

Test(runtime, config_from_env)
{
    clear_env();
    bl_config c = {0};
    cr_assert_eq(bl_config_from_env(&c), 0);
    bl_config zero = {0};
    cr_assert_eq(memcmp(&c, &zero, sizeof c), 0, "no variables: nothing changes");
    cr_assert_eq(bl_config_from_env(NULL), -EINVAL);

    setenv("BEAMLINE_SCHEDULERS", "3", 1);
    setenv("BEAMLINE_BIND", "spread", 1);
    setenv("BEAMLINE_REDUCTIONS", "100", 1);
    setenv("BEAMLINE_SPIN_US", "0", 1);
    setenv("BEAMLINE_WAKE", "eventfd", 1);
    setenv("BEAMLINE_STACK_SIZE", "64k", 1);
    setenv("BEAMLINE_STACK_POOL", "7", 1);
    setenv("BEAMLINE_RING_ENTRIES", "512", 1);
    setenv("BEAMLINE_IOWQ_MAX", "2", 1);
    c = (bl_config){.spin_us = 99, .ring_entries = 8};
    cr_assert_eq(bl_config_from_env(&c), 0, "%s", bl_runtime_error());
    cr_assert_eq(c.schedulers, 3);
    cr_assert_eq(c.bind, BL_BIND_SPREAD);
    cr_assert_eq(c.reductions, 100);
    cr_assert_eq(c.spin_us, 0);
    cr_assert(c.no_spin, "BEAMLINE_SPIN_US=0 means no spinning");
    cr_assert_eq(c.wake, BL_WAKE_EVENTFD);
    cr_assert_eq(c.stack_size, 64 << 10);
    cr_assert_eq(c.stack_pool_max, 7);
    cr_assert_eq(c.ring_entries, 512);
    cr_assert_eq(c.iowq_max, 2);

    /* Other spellings. */
    setenv("BEAMLINE_SPIN_US", "20", 1);
    setenv("BEAMLINE_STACK_SIZE", "1M", 1);
    setenv("BEAMLINE_BIND", "none", 1);
    setenv("BEAMLINE_WAKE", "msg_ring", 1);
    cr_assert_eq(bl_config_from_env(&c), 0, "%s", bl_runtime_error());
    cr_assert_eq(c.spin_us, 20);
    cr_assert(!c.no_spin, "a non-zero BEAMLINE_SPIN_US turns spinning back on");
    cr_assert_eq(c.stack_size, 1 << 20);
    cr_assert_eq(c.bind, BL_BIND_NONE);
    cr_assert_eq(c.wake, BL_WAKE_MSG_RING);
    setenv("BEAMLINE_BIND", "cores", 1);
    cr_assert_eq(bl_config_from_env(&c), 0);
    cr_assert_eq(c.bind, BL_BIND_CORES);

    /* Bad values: -EINVAL, and the message names the variable. */
    const struct {
        const char *var, *value;
    } bad[] = {
        {"BEAMLINE_BIND", "sideways"},      {"BEAMLINE_SCHEDULERS", "abc"},
        {"BEAMLINE_SCHEDULERS", "-1"},      {"BEAMLINE_SCHEDULERS", "3x"},
        {"BEAMLINE_SCHEDULERS", "5000"},    {"BEAMLINE_WAKE", "pigeon"},
        {"BEAMLINE_STACK_SIZE", "2G"},      {"BEAMLINE_STACK_SIZE", "99999999999999999999"},
        {"BEAMLINE_REDUCTIONS", "1e3"},     {"BEAMLINE_SPIN_US", "-5"},
        {"BEAMLINE_RING_ENTRIES", "40000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i].var, bad[i].value, 1);
        bl_config b = {0};
        int rc = bl_config_from_env(&b);
        cr_assert_eq(rc, -EINVAL, "%s=%s: %d", bad[i].var, bad[i].value, rc);
        cr_assert_not_null(strstr(bl_runtime_error(), bad[i].var), "%s=%s: error is \"%s\"",
                           bad[i].var, bad[i].value, bl_runtime_error());
        /* bl_runtime_start(NULL) reads the environment and refuses too. */
        rc = bl_runtime_start(NULL);
        cr_assert_eq(rc, -EINVAL, "start with %s=%s: %d", bad[i].var, bad[i].value, rc);
        cr_assert_not_null(strstr(bl_runtime_error(), bad[i].var), "%s", bl_runtime_error());
    }
}

Test(runtime, start_null_reads_the_environment)
{
    clear_env();
    setenv("BEAMLINE_SCHEDULERS", "2", 1);
    setenv("BEAMLINE_BIND", "none", 1);
    setenv("BEAMLINE_REDUCTIONS", "123", 1);
    setenv("BEAMLINE_SPIN_US", "0", 1);
    setenv("BEAMLINE_WAKE", "eventfd", 1);
    setenv("BEAMLINE_STACK_SIZE", "64k", 1);
    int rc = bl_runtime_start(NULL);
    cr_assert_eq(rc, 0, "%d (%s)", rc, bl_runtime_error());
    cr_assert_eq(bl_schedulers(), 2);
    /* Written before the schedulers started; read here on the starting thread. */
    cr_assert_eq(bl__rt->cfg.reductions, 123);
    cr_assert(bl__rt->cfg.no_spin);
    cr_assert_eq(bl__rt->cfg.stack_size, 64 << 10);
    cr_assert_eq(bl__rt->cfg.bind, BL_BIND_NONE);
    cr_assert(!bl__rt->msg_ring, "BEAMLINE_WAKE=eventfd");
    atomic_store(&ran, 0);
    cr_assert_eq(bl_spawn(NULL, run_then_stop, NULL, NULL), 0);
    cr_assert_eq(bl_runtime_wait(), 0);
    cr_assert_eq(atomic_load(&ran), 1);
}

/* ------------------------------------------------------------------------ */
/* Scheduler count and index                                                */
/* ------------------------------------------------------------------------ */

static void report_where(void *arg)
{
    int where = bl_current_scheduler();
    bl_send(*(bl_pid *)arg, T_WHERE, &where, sizeof where);
}

/*
 * Reports where it runs, then spawns report_where on scheduler 1 (index 0).
 * Spawning onto another scheduler goes through that scheduler's inject
 * queue, which nobody steals from, so the new process's first instructions
 * run there.  (A process spawned onto the caller's own scheduler lands in
 * the stealable run queue: an idle peer may take it before it first runs,
 * which .scheduler, a preference, allows.)
 */
static void where_relay(void *arg)
{
    report_where(arg);
    bl_spawn_opts o = {.scheduler = 1};
    BL_CHECK_EQ(bl_spawn(NULL, report_where, arg, &o), 0);
}

static void where_main(void *arg)
{
    BL_CHECK_EQ(bl_schedulers(), 2);
    /* bl_main's process goes to scheduler 0's inject queue (round-robin from 0). */
    BL_CHECK_EQ(bl_current_scheduler(), 0);
    bl_pid self = bl_self();
    bl_spawn_opts o = {.scheduler = 2};
    BL_CHECK_EQ(bl_spawn(NULL, where_relay, &self, &o), 0);
    for (int want = 1; want >= 0; want--) {
        bl_msg *m = bl_test_recv_tag(T_WHERE, 10000);
        BL_CHECK(m != NULL);
        if (m) BL_CHECK_EQ(*(int *)m->data, want);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_current_scheduler(), 0); /* woken through our inject queue */
}

Test(runtime, schedulers_and_current_scheduler)
{
    cr_assert_eq(bl_schedulers(), 0);
    cr_assert_eq(bl_current_scheduler(), -1);
    bl_config c = {.schedulers = 2};
    bl_test_run(&c, where_main, NULL);
    cr_assert_eq(bl_schedulers(), 0, "0 once the runtime is gone");

    /* A thread that is not a scheduler is outside, runtime or not. */
    cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
    cr_assert_eq(bl_schedulers(), 2);
    cr_assert_eq(bl_current_scheduler(), -1);
    bl_runtime_stop();
    cr_assert_eq(bl_runtime_wait(), 0);

    c.schedulers = 1;
    cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
    cr_assert_eq(bl_schedulers(), 1);
    bl_spawn_opts o = {.scheduler = 2};
    cr_assert_eq(bl_spawn(NULL, report_where, &(bl_pid){0}, &o), -EINVAL, "no scheduler 2");
    bl_runtime_stop();
    cr_assert_eq(bl_runtime_wait(), 0);
}

/* ------------------------------------------------------------------------ */
/* io_uring refused                                                         */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

/* io_uring_setup fails with EPERM, as under a container's seccomp profile. */
static void deny_io_uring_setup(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), /* foreign syscall ABI */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "no_new_privs: %s", strerror(errno));
    cr_assert_eq(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0, "seccomp: %s",
                 strerror(errno));
    cr_assert_eq(syscall(__NR_io_uring_setup, 4, NULL), -1);
    cr_assert_eq(errno, EPERM, "the filter works");
}

Test(runtime, io_uring_blocked_by_seccomp)
{
    deny_io_uring_setup();
    int fds = open_fds();
    bl_config c = {.schedulers = 2};
    for (int round = 0; round < 2; round++) {
        int rc = bl_runtime_start(&c);
        cr_assert_eq(rc, -EPERM, "start: %d (%s)", rc, bl_runtime_error());
        const char *e = bl_runtime_error();
        cr_log_info("bl_runtime_error: %s", e);
        cr_assert_not_null(strstr(e, "io_uring"), "names io_uring: \"%s\"", e);
        cr_assert_not_null(strstr(e, "seccomp"), "names the likely cause: \"%s\"", e);
        cr_assert_not_null(strstr(e, "io_uring_disabled"), "and the sysctl: \"%s\"", e);
        cr_assert_eq(bl_schedulers(), 0);
        cr_assert_eq(bl_send(1, T_DATA, NULL, 0), -ESRCH, "nothing half-started");
        cr_assert_eq(bl_spawn(NULL, run_then_stop, NULL, NULL), -ESRCH);
    }
    cr_assert_eq(bl_main(&c, run_then_stop, NULL), -EPERM);
    cr_assert_eq(open_fds(), fds, "no descriptor leaks from the failed starts");
}

/* Lowest RLIMIT_NOFILE that leaves exactly `free` descriptor numbers unused. */
static rlim_t limit_leaving(int free)
{
    rlim_t lim = 0;
    for (int left = free;; lim++) {
        if (fcntl((int)lim, F_GETFD) == -1 && errno == EBADF) {
            if (left == 0) return lim;
            left--;
        }
    }
}

/*
 * Some schedulers come up and others cannot (out of descriptors for their
 * ring or eventfd): the start fails with the error, the schedulers that did
 * start are stopped and joined, and nothing is left open.
 */
Test(runtime, partial_start_failure_cleans_up)
{
    bl_config c = {.schedulers = 2};
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fds = open_fds();
    /* Two rings and two eventfds are needed; leave room for fewer. */
    for (int free = 1; free <= 3; free++) {
        struct rlimit lim = {limit_leaving(free), old.rlim_max};
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
        int rc = bl_runtime_start(&c);
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        cr_log_info("%d free descriptors: %d (%s)", free, rc, bl_runtime_error());
        cr_assert_eq(rc, -EMFILE, "%d free descriptors: %d (%s)", free, rc, bl_runtime_error());
        cr_assert_neq(bl_runtime_error()[0], 0);
        cr_assert_eq(bl_schedulers(), 0);
        cr_assert_eq(open_fds(), fds, "%d free descriptors: descriptors left open", free);
        cr_assert_eq(bl_send(1, T_DATA, NULL, 0), -ESRCH);
    }
    atomic_store(&ran, 0);
    bl_test_run(&c, run_then_stop, NULL);
    cr_assert_eq(atomic_load(&ran), 1, "a later start works");
    cr_assert_eq(open_fds(), fds);
}

/* ------------------------------------------------------------------------ */
/* Calls that make no sense where they are made                             */
/* ------------------------------------------------------------------------ */

static _Atomic int sink_got;     /* messages the sink received */
static _Atomic int moved_freed;  /* moved buffers freed by the runtime */
static _Atomic int sink_checked; /* the sink's own checks are done */

static void count_free(void *p)
{
    atomic_fetch_add(&moved_freed, 1);
    free(p);
}

/* Counts messages until T_STOP, after checking the in-process errors. */
static void sink(void *arg)
{
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, -5, 0), -EINVAL);
    BL_CHECK_EQ(bl_recv(NULL, NULL, NULL, 0, 0), -EINVAL);
    BL_CHECK_EQ(bl_recv(&m, NULL, NULL, 0, 0), -ETIMEDOUT);
    BL_CHECK_EQ(bl_sleep(-1), -EINVAL);
    BL_CHECK_EQ(bl_runtime_wait(), -EPERM);
    BL_CHECK_EQ(bl_runtime_start(NULL), -EALREADY);
    BL_CHECK_EQ(bl_send(bl_self(), BL_TAG_SYSTEM, NULL, 0), -EINVAL);
    atomic_store(&sink_checked, 1);
    for (;;) {
        m = bl_receive(BL_INFINITY);
        BL_CHECK(m != NULL);
        if (!m) break;
        uint32_t tag = m->tag;
        BL_CHECK(tag < BL_TAG_SYSTEM);
        BL_CHECK_EQ(m->from, BL_PID_NONE); /* sent from outside a process */
        bl_msg_free(m);
        if (tag == T_STOP) break;
        atomic_fetch_add(&sink_got, 1);
    }
    bl_runtime_stop();
}

static void never_runs(void *arg)
{
    BL_CHECK(0 && "spawned with bad options");
}

Test(runtime, bad_calls_outside_a_process_are_values)
{
    bl_msg *m = NULL;
    int x = 42;
    /* Before the runtime exists. */
    cr_assert_eq(bl_recv(&m, NULL, NULL, 0, 0), -EPERM);
    cr_assert_eq(bl_recv(&m, NULL, NULL, BL_INFINITY, 0), -EPERM);
    cr_assert_null(bl_receive(0));
    cr_assert_eq(bl_yield(), -EPERM);
    cr_assert_eq(bl_sleep(1), -EPERM);
    cr_assert_eq(bl_exit(0), -EPERM);
    cr_assert_eq(bl_self(), BL_PID_NONE);
    cr_assert_eq(bl_mailbox_len(), 0);
    bl_recv_mark(); /* ignored */
    bl_msg_free(NULL);
    cr_assert(!bl_is_alive(1));
    cr_assert_eq(bl_send(1, T_DATA, &x, sizeof x), -ESRCH);
    cr_assert_eq(bl_send(bl__pid_make(0, 0), T_DATA, NULL, 0), -ESRCH);
    cr_assert_eq(bl_spawn(NULL, never_runs, NULL, NULL), -ESRCH);
    cr_assert_eq(bl_spawn(NULL, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(bl_spawn_handler(NULL, NULL, NULL, NULL), -EINVAL);
    cr_assert_neq(bl_make_ref(), BL_REF_NONE);
    cr_assert_neq(bl_make_ref(), bl_make_ref());

    bl_config c = {.schedulers = 2};
    cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
    atomic_store(&bl_test_failures, 0);

    /* Process-only calls on a thread that is not a scheduler. */
    cr_assert_eq(bl_recv(&m, NULL, NULL, 0, 0), -EPERM);
    cr_assert_eq(bl_yield(), -EPERM);
    cr_assert_eq(bl_sleep(1), -EPERM);
    cr_assert_eq(bl_exit(0), -EPERM);
    cr_assert_eq(bl_self(), BL_PID_NONE);

    /* Bad spawns. */
    bl_pid bad_pid = 12345;
    cr_assert_eq(bl_spawn(&bad_pid, NULL, NULL, NULL), -EINVAL);
    bl_spawn_opts o = {.scheduler = 99};
    cr_assert_eq(bl_spawn(&bad_pid, never_runs, NULL, &o), -EINVAL);
    o = (bl_spawn_opts){.scheduler = 3};
    cr_assert_eq(bl_spawn(&bad_pid, never_runs, NULL, &o), -EINVAL);
    o = (bl_spawn_opts){.scheduler = -1};
    cr_assert_eq(bl_spawn(&bad_pid, never_runs, NULL, &o), -EINVAL);
    o = (bl_spawn_opts){.priority = (bl_priority)9};
    cr_assert_eq(bl_spawn(&bad_pid, never_runs, NULL, &o), -EINVAL);
    cr_assert_eq(bad_pid, 12345, "a failed spawn leaves *pid alone");

    bl_pid s;
    cr_assert_eq(bl_spawn(&s, sink, NULL, NULL), 0);
    cr_assert_neq(s, BL_PID_NONE);
    cr_assert(WAIT_UNTIL(atomic_load(&sink_checked), 10000), "the sink started");

    /* Malformed pids. */
    const bl_pid malformed[] = {
        0,                               /* BL_PID_NONE */
        1ull << 63,                      /* bit 63 */
        s | 1ull << 63,                  /* bit 63 on a live pid */
        s | 1ull << 56,                  /* node 1 */
        s | 0x7Full << 56,               /* node 127 */
        s & ~0xFFFFFFFFull,              /* index part 0 */
        bl__pid_make(1000000, 0),        /* an index never allocated */
        bl__pid_make(UINT32_MAX - 1, 5), /* the largest index */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        bl_pid p = malformed[i];
        cr_assert_eq(bl_send(p, T_DATA, &x, sizeof x), -EINVAL, "pid %#llx", (unsigned long long)p);
        cr_assert_eq(bl_send_ref(p, T_DATA, 7, &x, sizeof x), -EINVAL);
        void *buf = malloc(16);
        cr_assert_eq(bl_send_move(p, T_DATA, buf, 16, count_free), -EINVAL);
        free(buf); /* on failure the caller still owns it */
        cr_assert(!bl_is_alive(p));
    }
    cr_assert_eq(atomic_load(&moved_freed), 0);

    /* Reserved tags and NULL data. */
    cr_assert_eq(bl_send(s, BL_TAG_SYSTEM, NULL, 0), -EINVAL);
    cr_assert_eq(bl_send(s, BL_TAG_SYSTEM + 5, &x, sizeof x), -EINVAL);
    cr_assert_eq(bl_send(s, UINT32_MAX, &x, sizeof x), -EINVAL);
    cr_assert_eq(bl_send_ref(s, BL_TAG_SYSTEM, 1, NULL, 0), -EINVAL);
    cr_assert_eq(bl_send(s, T_DATA, NULL, 5), -EINVAL);
    cr_assert_eq(bl_send_ref(s, T_DATA, 1, NULL, 5), -EINVAL);
    cr_assert_eq(bl_send_move(s, T_DATA, NULL, 5, NULL), -EINVAL);

    /* A stale pid (next generation of the sink's slot) is not an error. */
    bl_pid stale = bl__pid_make(bl__pid_idx(s), bl__pid_gen(s) + 1);
    cr_assert_eq(bl_send(stale, T_DATA, &x, sizeof x), 0);
    void *buf = malloc(16);
    cr_assert_eq(bl_send_move(stale, T_DATA, buf, 16, count_free), 0);
    cr_assert_eq(atomic_load(&moved_freed), 1, "a move to a dead pid frees the buffer");

    /* Good sends get through, and only they. */
    cr_assert_eq(bl_send(s, T_DATA, &x, sizeof x), 0);
    cr_assert_eq(bl_send(s, T_DATA, NULL, 0), 0);
    cr_assert_eq(bl_send(s, BL_TAG_SYSTEM - 1, &x, sizeof x), 0); /* the largest user tag */
    cr_assert_eq(bl_send(s, T_STOP, NULL, 0), 0);
    cr_assert_eq(bl_runtime_wait(), 0);
    cr_assert_eq(atomic_load(&sink_got), 3, "the sink got %d messages", atomic_load(&sink_got));
    cr_assert_eq(atomic_load(&bl_test_failures), 0, "%s", bl_test_first);

    /* After the runtime is gone. */
    cr_assert_eq(bl_send(s, T_DATA, &x, sizeof x), -ESRCH);
    cr_assert_eq(bl_spawn(NULL, never_runs, NULL, NULL), -ESRCH);
    cr_assert(!bl_is_alive(s));
}

/* ------------------------------------------------------------------------ */
/* Both wake-up mechanisms                                                  */
/* ------------------------------------------------------------------------ */

#define ROUND_TRIPS BL_SCALE(10000)

typedef struct pp_stats {
    _Atomic uint64_t wakeups; /* wake-ups sent by the schedulers the players ran on */
    _Atomic uint64_t sleeps;  /* times those schedulers went to sleep */
    _Atomic int moved;        /* rounds a player found itself on another scheduler */
} pp_stats;

static pp_stats pps;

typedef struct player {
    bl_pid peer;         /* the other player (the pinger's, set by the ponger) */
    bl_pid parent;       /* gets T_STOP from each player when it is done */
    int home;            /* scheduler index it was spawned on */
    struct player *ping; /* the ponger's: the pinger's arguments */
} player;

static void pinger(void *arg);

/* Own scheduler's counters: read on the thread that writes them. */
static void sched_counters(uint64_t *wakeups, uint64_t *sleeps)
{
    *wakeups = bl__tls_sched->st.wakeups_sent;
    *sleeps = bl__tls_sched->st.sleeps;
}

static void ponger(void *arg)
{
    player *pl = arg;
    BL_CHECK_EQ(bl_current_scheduler(), pl->home);
    uint64_t w0, s0, w1, s1;
    sched_counters(&w0, &s0);
    /* The pinger is spawned from here, so that it reaches scheduler 0
     * through the inject queue and surely starts there (see where_relay). */
    pl->ping->peer = bl_self();
    bl_spawn_opts o1 = {.scheduler = 1, .bound = true};
    BL_CHECK_EQ(bl_spawn(NULL, pinger, pl->ping, &o1), 0);
    for (;;) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        if (bl_current_scheduler() != pl->home) atomic_fetch_add(&pps.moved, 1);
        if (m->tag == T_STOP) {
            bl_msg_free(m);
            break;
        }
        BL_CHECK_EQ(m->tag, T_PING);
        bl_send(m->from, T_PONG, m->data, m->len);
        bl_msg_free(m);
    }
    sched_counters(&w1, &s1);
    if (bl_current_scheduler() == pl->home) {
        atomic_fetch_add(&pps.wakeups, w1 - w0);
        atomic_fetch_add(&pps.sleeps, s1 - s0);
    }
    bl_send(pl->parent, T_STOP, NULL, 0);
}

static void pinger(void *arg)
{
    player *pl = arg;
    BL_CHECK_EQ(bl_current_scheduler(), pl->home);
    uint64_t w0, s0, w1, s1;
    sched_counters(&w0, &s0);
    for (int i = 0; i < ROUND_TRIPS; i++) {
        BL_CHECK_EQ(bl_send(pl->peer, T_PING, &i, sizeof i), 0);
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break; /* a lost wake-up ends as a timeout here */
        BL_CHECK_EQ(m->tag, T_PONG);
        BL_CHECK_EQ(*(int *)m->data, i);
        bl_msg_free(m);
        if (bl_current_scheduler() != pl->home) atomic_fetch_add(&pps.moved, 1);
    }
    sched_counters(&w1, &s1);
    if (bl_current_scheduler() == pl->home) {
        atomic_fetch_add(&pps.wakeups, w1 - w0);
        atomic_fetch_add(&pps.sleeps, s1 - s0);
    }
    bl_send(pl->peer, T_STOP, NULL, 0);
    bl_send(pl->parent, T_STOP, NULL, 0);
}

static void pingpong_main(void *arg)
{
    bl_wake wake = *(bl_wake *)arg;
    /* Written by scheduler 0 during start-up, before any process ran. */
    BL_CHECK_EQ(bl__rt->msg_ring, wake == BL_WAKE_MSG_RING);
    player ping = {.parent = bl_self(), .home = 0};
    player pong = {.parent = bl_self(), .home = 1, .ping = &ping};
    /* Bound: each wake-up would otherwise bring the players together. */
    bl_spawn_opts o2 = {.scheduler = 2, .bound = true};
    BL_CHECK_EQ(bl_spawn(NULL, ponger, &pong, &o2), 0);
    for (int i = 0; i < 2; i++) { /* both players are done */
        bl_msg *m = bl_test_recv_tag(T_STOP, 120000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
}

Test(runtime, both_wake_mechanisms, .timeout = 240)
{
    const bl_wake wakes[] = {BL_WAKE_MSG_RING, BL_WAKE_EVENTFD};
    const char *names[] = {"msg_ring", "eventfd"};
    for (int i = 0; i < 2; i++) {
        memset(&pps, 0, sizeof pps);
        bl_config c = {.schedulers = 2, .wake = wakes[i], .no_spin = true};
        bl_wake w = wakes[i];
        bl_test_run(&c, pingpong_main, &w);
        cr_log_info("%s: %d round trips, %llu wake-ups sent, %llu sleeps, %d rounds migrated",
                    names[i], ROUND_TRIPS, (unsigned long long)atomic_load(&pps.wakeups),
                    (unsigned long long)atomic_load(&pps.sleeps), atomic_load(&pps.moved));
        /* With no spinning the schedulers really slept and had to be woken. */
        cr_assert_geq(atomic_load(&pps.wakeups), ROUND_TRIPS / 10, "%s: too few wake-ups",
                      names[i]);
        cr_assert_geq(atomic_load(&pps.sleeps), ROUND_TRIPS / 10, "%s: too few sleeps", names[i]);
        cr_assert_eq(atomic_load(&pps.moved), 0, "%s: a player left its scheduler", names[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* An idle runtime uses no CPU                                              */
/* ------------------------------------------------------------------------ */

static _Atomic int idle_got;

static void idle_waiter(void *arg)
{
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        bool stop = m->tag == T_STOP;
        bl_msg_free(m);
        if (stop) return;
        atomic_fetch_add(&idle_got, 1);
    }
}

static bool all_asleep(void)
{
    for (unsigned i = 0; i < bl__rt->nsched; i++)
        if (!atomic_load(&bl__rt->scheds[i]->sleeping)) return false;
    return true;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(runtime, idle_runtime_uses_no_cpu)
{
    bl_config c = {.schedulers = 2}; /* default spinning (50 us) */
    cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
    bl_pid w[2];
    for (int i = 0; i < 2; i++) {
        bl_spawn_opts o = {.scheduler = i + 1};
        cr_assert_eq(bl_spawn(&w[i], idle_waiter, NULL, &o), 0);
    }
    /* Some work first, so that the schedulers go from busy to idle. */
    const int n = BL_SCALE(2000);
    for (int i = 0; i < n; i++) cr_assert_eq(bl_send(w[i & 1], T_DATA, &i, sizeof i), 0);
    cr_assert(WAIT_UNTIL(atomic_load(&idle_got) == n, 20000), "%d of %d messages handled",
              atomic_load(&idle_got), n);

    /* The event: every scheduler has gone to sleep in its ring. */
    cr_assert(WAIT_UNTIL(all_asleep(), 5000), "schedulers did not go to sleep");
    uint64_t t0 = cpu_ns();
    thread_sleep_ms(200); /* the measurement interval */
    uint64_t used = cpu_ns() - t0;
    bool still = all_asleep();
    cr_log_info("idle runtime: %.3f ms of CPU in 200 ms", used / 1e6);
    cr_assert(still, "a scheduler woke up with nothing to do");
    cr_assert_lt(used, 5000000, "idle runtime used %.3f ms of CPU in 200 ms", used / 1e6);

    /* The sleepers still answer. */
    cr_assert_eq(bl_send(w[0], T_DATA, NULL, 0), 0);
    cr_assert_eq(bl_send(w[1], T_DATA, NULL, 0), 0);
    cr_assert(WAIT_UNTIL(atomic_load(&idle_got) == n + 2, 10000));
    bl_runtime_stop();
    cr_assert_eq(bl_runtime_wait(), 0);
}

/* ------------------------------------------------------------------------ */
/* bl_main returns when the main process does                               */
/* ------------------------------------------------------------------------ */

static _Atomic int ready;

/* Stacks of some blocked processes, to look at after the shutdown. */
#define NRANGES 64
static struct {
    void *lo;
    size_t size;
} ranges[NRANGES];

static void blocked_forever(void *arg)
{
    int k = atomic_fetch_add(&ready, 1);
    bl_proc *self = bl__self(); /* our own PCB: no other thread writes these fields */
    if (k < NRANGES && self && self->stack) {
        ranges[k].lo = self->stack->lo;
        ranges[k].size = self->stack->size;
    }
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    uint32_t never = T_NEVER;
    bl_msg *m = NULL;
    /* Messages that do not match pile up in the mailbox meanwhile. */
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
    BL_CHECK(0 && "a message that is never sent arrived");
}

static void sleeps_forever(void *arg)
{
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    bl_sleep(3600 * 1000);
    BL_CHECK(0 && "woke from an hour's sleep");
}

static void spins_forever(void *arg)
{
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    for (;;) bl_yield();
}

static int idle_handle(void *state, bl_msg *m)
{
    return 0;
}
static const bl_handler idle_handler = {.init = NULL, .handle = idle_handle, .terminate = NULL};

#define BLOCKED BL_SCALE(1000)

static void abandon_main(void *arg)
{
    /* Static: the last processes may start after this one has returned. */
    static bl_pid self;
    self = bl_self();
    bl_pid *pids = malloc(BLOCKED * sizeof *pids);
    BL_CHECK(pids != NULL);
    if (!pids) return;
    for (int i = 0; i < BLOCKED; i++) {
        bl_spawn_opts o = {.scheduler = 1 + i % 2, .stack_size = i % 10 == 0 ? 256 << 10 : 0};
        BL_CHECK_EQ(bl_spawn(&pids[i], blocked_forever, &self, &o), 0);
    }
    bl_spawn_opts o1 = {.scheduler = 1}, o2 = {.scheduler = 2};
    BL_CHECK_EQ(bl_spawn(NULL, sleeps_forever, &self, &o1), 0);
    BL_CHECK_EQ(bl_spawn(NULL, spins_forever, &self, &o2), 0);
    for (int i = 0; i < BLOCKED + 2; i++) {
        bl_msg *m = bl_test_recv_tag(T_READY, 20000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
    }
    /* Mail for them that they will never read: copies of every size class,
     * and moved buffers that only the shutdown can free. */
    char big[5000];
    memset(big, 7, sizeof big);
    for (int i = 0; i < BLOCKED; i++) {
        BL_CHECK_EQ(bl_send(pids[i], T_DATA, big, (size_t)(i * 37) % sizeof big), 0);
        if (i % 4 == 0) {
            void *b = malloc(64);
            BL_CHECK_EQ(bl_send_move(pids[i], T_DATA, b, 64, count_free), 0);
        }
    }
    /* Handler processes idle without a stack. */
    for (int i = 0; i < 10; i++) {
        bl_pid h;
        BL_CHECK_EQ(bl_spawn_handler(&h, &idle_handler, NULL, NULL), 0);
    }
    /* And some that never get to run at all. */
    for (int i = 0; i < 10; i++) BL_CHECK_EQ(bl_spawn(NULL, blocked_forever, &self, &o2), 0);
    free(pids);
    /* Return with all of them still there. */
}

Test(runtime, bl_main_returns_with_processes_blocked_forever, .timeout = 120)
{
    bl_config c = {.schedulers = 2};
    atomic_store(&moved_freed, 0);
    for (int round = 0; round < 2; round++) {
        atomic_store(&ready, 0);
        memset(ranges, 0, sizeof ranges);
        bl_test_run(&c, abandon_main, NULL);
        cr_assert_eq(bl_schedulers(), 0);
#ifdef BL_ASAN
        /* Criterion ignores LeakSanitizer's report at exit: ask now. */
        cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                     "round %d: memory leaked by the shutdown (report above)", round);
        /* The discarded stacks were unmapped with the frames of their
         * processes still on them.  Their redzones must be unpoisoned first:
         * the next mapping at those addresses (a process-table chunk, a
         * stack of the next runtime) would otherwise report
         * stack-buffer-overflow on its first write. */
        for (int i = 0; i < NRANGES; i++) {
            if (!ranges[i].lo) continue;
            void *bad = __asan_region_is_poisoned(ranges[i].lo, ranges[i].size);
            cr_assert_null(bad,
                           "round %d: discarded stack [%p, +%zu) still poisoned at %p "
                           "(bl__proc_discard / bl__stack_free do not unpoison)",
                           round, ranges[i].lo, ranges[i].size, bad);
        }
#endif
        /* Every moved buffer sent to a discarded process was freed. */
        cr_assert_eq(atomic_load(&moved_freed), (round + 1) * ((BLOCKED + 3) / 4),
                     "moved buffers freed: %d", atomic_load(&moved_freed));
    }
}
