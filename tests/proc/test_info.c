/*
 * Introspection: process info, process list, statistics.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_NOISE = 1, T_READY };

static void waiter(void *arg)
{
    bl_trap_exit(true);
    bl_set_priority(BL_PRIO_HIGH);
    bl_register("info_waiter", bl_self());
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static int idle_handle(void *state, bl_msg *m)
{
    return 0;
}
static const bl_handler idle = {.init = NULL, .handle = idle_handle, .terminate = NULL};

static void hib_fn(void *arg) {}
static void hibernator(void *arg)
{
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    bl_hibernate(hib_fn, NULL);
}

static void info_main(void *arg)
{
    bl_pid self = bl_self(), w, linked;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&w, &ref, waiter, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    BL_CHECK_EQ(bl_spawn_link(&linked, waiter, &self, NULL), 0); /* fails to register: taken */
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    for (int i = 0; i < 3; i++) bl_send(w, T_NOISE, "abc", 4);

    bl_proc_info in;
    /* The noise wakes it; it parks again once it has looked at it. */
    int tries = 0;
    do {
        bl_yield();
        BL_CHECK_EQ(bl_process_info(w, &in), 0);
    } while (in.status != BL_PROC_WAITING && ++tries < 1000);
    BL_CHECK_EQ(in.status, BL_PROC_WAITING);
    BL_CHECK_EQ(in.message_queue_len, 3);
    BL_CHECK_EQ(in.priority, BL_PRIO_HIGH);
    BL_CHECK(in.trap_exit);
    BL_CHECK(!strcmp(in.registered_name, "info_waiter"));
    BL_CHECK_EQ(in.nmonitored_by, 1);
    BL_CHECK_EQ(in.monitored_by[0], self);
    BL_CHECK(in.stack_bytes > 0); /* blocked in receive: it keeps its stack */
    BL_CHECK(in.total_bytes >= sizeof(bl_proc) + in.stack_bytes + 3 * 4);
    BL_CHECK(in.reductions > 0);

    /* Our own info: links and monitors from this side. */
    BL_CHECK_EQ(bl_process_info(self, &in), 0);
    BL_CHECK_EQ(in.status, BL_PROC_RUNNING);
    BL_CHECK_EQ(in.nlinks, 1);
    BL_CHECK_EQ(in.links[0], linked);
    BL_CHECK_EQ(in.nmonitors, 1);
    BL_CHECK_EQ(in.monitors[0], w);

    /* Stackless processes report no stack. */
    bl_pid h, hb;
    BL_CHECK_EQ(bl_spawn_handler(&h, &idle, NULL, NULL), 0);
    BL_CHECK_EQ(bl_process_info(h, &in), 0);
    BL_CHECK(in.handler);
    BL_CHECK_EQ(in.stack_bytes, 0);
    BL_CHECK_EQ(bl_spawn(&hb, hibernator, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    BL_CHECK_EQ(bl_process_info(hb, &in), 0);
    BL_CHECK_EQ(in.stack_bytes, 0);
    BL_CHECK(bl_is_alive(hb)); /* answering did not wake it into hib_fn */

    /* The process list has them all. */
    bl_pid all[64];
    size_t n = bl_processes(all, 64);
    BL_CHECK(n >= 5);
    int seen = 0;
    for (size_t i = 0; i < n && i < 64; i++) seen += all[i] == w || all[i] == h || all[i] == self;
    BL_CHECK_EQ(seen, 3);

    /* Dead and bad pids. */
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(w, &kill);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 5000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_process_info(w, &in), -ESRCH);
    BL_CHECK_EQ(bl_process_info(0, &in), -EINVAL);
    BL_CHECK_EQ(bl_process_info(self, NULL), -EINVAL);

    /* Statistics. */
    bl_scheduler_stats ss;
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &ss), 0);
    BL_CHECK(ss.switches > 0 && ss.uptime_ns > 0);
    BL_CHECK(ss.utilization >= 0 && ss.utilization <= 1);
    BL_CHECK_EQ(bl_scheduler_stats_get(99, &ss), -EINVAL);
    bl_runtime_stats rs;
    BL_CHECK_EQ(bl_runtime_stats_get(&rs), 0);
    BL_CHECK_EQ(rs.schedulers, 2);
    BL_CHECK(rs.processes >= 4);
    bl_exit_pid(linked, &kill);
}

Test(info, process_info_list_and_stats)
{
    bl_config c = {.schedulers = 2, .quiet = true};
    bl_test_run(&c, info_main, NULL);
    bl_proc_info in;
    cr_assert_eq(bl_process_info(1, &in), -EINVAL);
    cr_assert_eq(bl_runtime_stats_get(NULL), -ESRCH);
}

/* The i() table lists every live process, with names. */
static void print_main(void *arg)
{
    bl_pid self = bl_self(), w;
    BL_CHECK_EQ(bl_spawn(&w, waiter, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 5000));
    char path[] = "/tmp/bl_i_XXXXXX";
    int fd = mkstemp(path);
    BL_CHECK(fd >= 0);
    int n = bl_print_processes(fd);
    BL_CHECK_EQ(n, 2);
    char buf[4096] = {0};
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    BL_CHECK(got > 0);
    BL_CHECK(strstr(buf, "info_waiter") != NULL);
    BL_CHECK(strstr(buf, "2 processes") != NULL);
    BL_CHECK(strstr(buf, "waiting") != NULL);
    close(fd);
    unlink(path);
    BL_CHECK_EQ(bl_print_processes(-1), -EBADF);
    bl_reason kill = BL_REASON(BL_KILL);
    bl_exit_pid(w, &kill);
}

Test(info, print_processes_like_i)
{
    bl_config c = {.schedulers = 2, .quiet = true};
    bl_test_run(&c, print_main, NULL);
    cr_assert_eq(bl_print_processes(1), -EPERM);
}

/* Asking for info must not reorder a stream the process is receiving. */
enum { T_SEQ = 10, T_DONE_SEQ };
#define STREAM 20000

static void in_order_receiver(void *arg)
{
    bl_pid owner = *(bl_pid *)arg;
    int ok = 1;
    for (int i = 0; i < BL_SCALE(STREAM); i++) {
        bl_msg *m = bl_test_recv_tag(T_SEQ, 10000);
        if (!m) {
            ok = 0;
            break;
        }
        if (*(int *)m->data != i) ok = 0;
        bl_msg_free(m);
    }
    bl_send(owner, T_DONE_SEQ, &ok, sizeof ok);
}

typedef struct stream_arg {
    bl_pid to;
    _Atomic int *done;
} stream_arg;

static void streamer(void *arg)
{
    stream_arg *a = arg;
    for (int i = 0; i < BL_SCALE(STREAM); i++) bl_send(a->to, T_SEQ, &i, sizeof i);
    atomic_store(a->done, 1);
}

static void prober(void *arg)
{
    stream_arg *a = arg;
    bl_proc_info in;
    while (!atomic_load(a->done)) bl_process_info(a->to, &in);
}

static void order_main(void *arg)
{
    bl_pid self = bl_self(), r;
    _Atomic int done = 0;
    bl_spawn_opts s1 = {.scheduler = 1}, s2 = {.scheduler = 2};
    BL_CHECK_EQ(bl_spawn(&r, in_order_receiver, &self, &s1), 0);
    stream_arg a = {r, &done};
    bl_pid pr;
    bl_ref pref;
    BL_CHECK_EQ(bl_spawn_monitor(&pr, &pref, prober, &a, &s2), 0);
    BL_CHECK_EQ(bl_spawn(NULL, streamer, &a, &s2), 0);
    bl_msg *m = bl_test_recv_tag(T_DONE_SEQ, 60000);
    BL_CHECK(m && *(int *)m->data == 1);
    bl_msg_free(m);
    /* The prober reads `a` and `done` on this stack: wait for it to end. */
    m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &pref, 60000, 0), 0);
    bl_msg_free(m);
}

Test(info, asking_does_not_reorder_messages, .timeout = 120)
{
    for (int round = 0; round < 5; round++) bl_test_run(NULL, order_main, NULL);
}

/* The I/O settings say what the rings really got. */
static void io_settings_main(void *arg)
{
    const bl_config *want = arg;
    bl_io_settings io;
    BL_CHECK_EQ(bl_io_settings_get(NULL), -EINVAL);
    BL_CHECK_EQ(bl_io_settings_get(&io), 0);
    BL_CHECK_EQ(io.ring_entries, want->ring_entries);
    BL_CHECK_EQ(io.iowq_max, want->iowq_max);
    BL_CHECK_EQ(io.io_buffers, want->io_buffers);
    BL_CHECK_EQ(io.dirty_threads, 3u);
    /* Eventfd asked for: eventfd it is.  SQPOLL asked for: on, unless the
     * kernel refused it (then no DEFER_TASKRUN either, which needs a plain ring). */
    BL_CHECK_EQ(io.wake, BL_WAKE_EVENTFD);
    BL_CHECK(!io.sqpoll || !io.defer_taskrun);
    BL_CHECK(strcmp(bl_wake_name(io.wake), "eventfd") == 0);
    BL_CHECK(strcmp(bl_wake_name(BL_WAKE_MSG_RING), "msg_ring") == 0);
}

Test(info, io_settings)
{
    bl_io_settings io;
    cr_assert_eq(bl_io_settings_get(&io), -ESRCH);
    bl_config c = {.schedulers = 2,
                   .wake = BL_WAKE_EVENTFD,
                   .sqpoll = true,
                   .ring_entries = 128,
                   .iowq_max = 2,
                   .io_buffers = 64,
                   .dirty_threads = 3};
    bl_test_run(&c, io_settings_main, &c);
    c.sqpoll = false;
    bl_test_run(&c, io_settings_main, &c);
}
