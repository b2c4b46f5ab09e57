/*
 * The control socket (net/control.c): stats, procs and info replies over a
 * Unix socket of mode 0600, removed at the stop; bounds on requests; a bad
 * path is an error logged, not a failed start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bl_test_hoard.h"
#include "ops_client.h"

enum { T_NOISE = 40 };

static char path[108];

static char reply[1 << 16];

static void control_main(void *arg)
{
    (void)arg;
    bl_pid self = bl_self(), h, gs;
    struct stat st;
    BL_CHECK_EQ(stat(path, &st), 0);
    BL_CHECK(S_ISSOCK(st.st_mode));
    BL_CHECK_EQ(st.st_mode & 0777, 0600);

    BL_CHECK_EQ(bl_spawn(&h, bl_test_hoarder, &self, NULL), 0);
    bl_ref mon;
    BL_CHECK_EQ(bl_monitor(h, &mon), 0);
    for (int i = 0; i < 5; i++) bl_send(h, T_NOISE, "hello world", 11);
    bl_send(h, T_GO, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    bl_gen_server_opts go = {.name = &BL_NAME_LOCAL("ctl_gs")};
    BL_CHECK_EQ(bl_gen_server_start(&gs, &bl_test_idle_gs, NULL, &go), 0);
    char hp[32], mp[32], line[128];
    bl_pid_format(h, hp, sizeof hp);
    bl_pid_format(self, mp, sizeof mp);

    int fd = ops_connect(path);
    BL_CHECK(fd >= 0);
    if (fd < 0) return;
    ops_ask(fd, "stats\n", reply, sizeof reply);
    BL_CHECK(strncmp(reply, "stats time_ns=", 14) == 0);
    BL_CHECK(strstr(reply, " schedulers=2 ") && strstr(reply, " processes=3 "));
    BL_CHECK(strstr(reply, "\nsched id=0 ") && strstr(reply, "\nsched id=1 "));
    BL_CHECK(strstr(reply, " rss_bytes=") && strstr(reply, " stacks_in_use="));

    /* By queue: the hoarder and its five messages come first. */
    ops_ask(fd, "procs 2 queue\n", reply, sizeof reply);
    BL_CHECK(strstr(reply, "procs total=3 shown=2 ") != NULL);
    snprintf(line, sizeof line, "\nproc pid=%s status=waiting kind=plain prio=normal msgs=5 ", hp);
    BL_CHECK(strstr(reply, line) != NULL);
    ops_ask(fd, "procs\n", reply, sizeof reply);
    BL_CHECK(strstr(reply, " kind=gen_server ") && strstr(reply, " name=ctl_gs\n"));
    /* Reductions per interval: the idle hoarder used none since the last procs. */
    ops_ask(fd, "procs\n", reply, sizeof reply);
    BL_CHECK(strstr(reply, " interval_ns=0 ") == NULL);
    snprintf(line, sizeof line, "\nproc pid=%s ", hp);
    char *hl = strstr(reply, line), *hend = hl ? strchr(hl + 1, '\n') : NULL;
    BL_CHECK(hend && hend - 14 > hl && strncmp(hend - 14, " dreds=0 name=", 14) == 0);
    /* Main, running or parked in the receive of this very reply. */
    snprintf(line, sizeof line, "\nproc pid=%s status=", mp);
    BL_CHECK(strstr(reply, line) != NULL);

    ops_ask(fd, "info ctl_gs\n", reply, sizeof reply);
    BL_CHECK(strstr(reply, "answered=yes") && strstr(reply, " kind=gen_server "));
    BL_CHECK(strstr(reply, " name=ctl_gs ") != NULL);
    snprintf(line, sizeof line, "info %s\n", hp);
    ops_ask(fd, line, reply, sizeof reply);
    BL_CHECK(strstr(reply, "answered=yes") && strstr(reply, " msgs=5 "));
    snprintf(line, sizeof line, "\nmonitored_by n=1 %s\n", mp);
    BL_CHECK(strstr(reply, line) != NULL);
    BL_CHECK(strstr(reply, "\nmessages n=5\n") != NULL);
    snprintf(line, sizeof line, "\nmessage from=%s tag=%d len=11 data=hello\\x20world\n", mp,
             T_NOISE);
    BL_CHECK(strstr(reply, line) != NULL);

    ops_ask(fd, "info nobody\n", reply, sizeof reply);
    BL_CHECK(strcmp(reply, "error no such process\nend\n") == 0);
    ops_ask(fd, "info <0.999999.0>\n", reply, sizeof reply);
    BL_CHECK(strcmp(reply, "error no such process\nend\n") == 0);
    ops_ask(fd, "procs 5 color\n", reply, sizeof reply);
    BL_CHECK(strncmp(reply, "error procs:", 12) == 0);
    ops_ask(fd, "bogus\n", reply, sizeof reply);
    BL_CHECK(strncmp(reply, "error unknown request bogus", 27) == 0);
    ops_ask(fd, "help\n", reply, sizeof reply);
    BL_CHECK(strstr(reply, "help procs") != NULL);

    /* A line past 1 KiB: an error, and the connection is closed. */
    char big[3000];
    memset(big, 'x', sizeof big);
    BL_CHECK(bl_io_send_all(fd, big, sizeof big, 0, 5000) >= 0);
    size_t n = ops_recv_until(fd, reply, sizeof reply, NULL);
    BL_CHECK(n > 0 && strcmp(reply, "error request line too long\nend\n") == 0);
    bl_io_close(fd);

    /* quit closes. */
    fd = ops_connect(path);
    BL_CHECK(fd >= 0);
    BL_CHECK(bl_io_send_all(fd, "quit\n", 5, 0, 5000) >= 0);
    BL_CHECK_EQ(ops_recv_until(fd, reply, sizeof reply, NULL), 0);
    bl_io_close(fd);

    bl_send(h, T_STOP, NULL, 0);
    bl_gen_server_stop(gs, NULL, 5000);
}

Test(control, stats_procs_info)
{
    snprintf(path, sizeof path, "/tmp/bl_ctl_%d.sock", (int)getpid());
    bl_config c = {.schedulers = 2, .control = path, .quiet = true};
    bl_test_run(&c, control_main, NULL);
    struct stat st;
    cr_assert_eq(stat(path, &st), -1, "the socket was not removed");
    cr_assert_eq(errno, ENOENT);
}

/* ---- a path that cannot be used: the program runs, the error is logged ---- */

static _Atomic int control_errors;

static void on_log(const bl_log_event *e, void *arg)
{
    (void)arg;
    if (!strcmp(e->kind, "control") && e->level == BL_LOG_ERROR) control_errors++;
}

static void nothing(void *arg)
{
    (void)arg;
}

Test(control, bad_path_is_logged)
{
    control_errors = 0;
    bl_config c = {.control = "/nonexistent-dir/x.sock", .log_handler = on_log};
    bl_test_run(&c, nothing, NULL);
    cr_assert_eq(control_errors, 1);

    /* A regular file in the way is left alone. */
    char file[] = "/tmp/bl_ctl_file_XXXXXX";
    int fd = mkstemp(file);
    cr_assert(fd >= 0);
    close(fd);
    c.control = file;
    bl_test_run(&c, nothing, NULL);
    cr_assert_eq(control_errors, 2);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    unlink(file);

    /* A path too long for a Unix socket. */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    c.control = longp;
    bl_test_run(&c, nothing, NULL);
    cr_assert_eq(control_errors, 3);
}

/* ---- a scheduler stuck in a loop: the view still answers, and shows it ---- */

static _Atomic int spin_on;

/* A loop that never calls the runtime, until main says stop (10 s at most). */
static void spinner(void *arg)
{
    (void)arg;
    bl_register("stuck_loop", bl_self());
    int64_t end = bl_test_ms() + 10000;
    while (atomic_load(&spin_on) && bl_test_ms() < end) {
    }
}

static void stuck_main(void *arg)
{
    (void)arg;
    bl_pid sp;
    atomic_store(&spin_on, 1);
    bl_spawn_opts o = {.scheduler = 2, .bound = true};
    BL_CHECK_EQ(bl_spawn(&sp, spinner, NULL, &o), 0);
    char spid[32], line[128];
    bl_pid_format(sp, spid, sizeof spid);
    int fd = ops_connect(path);
    BL_CHECK(fd >= 0);
    if (fd < 0) return;
    /* Scheduler 1 runs the spinner, registered (asked until it shows: it
     * starts at once, but its thread may wait for a CPU). */
    bool shown = false, named = false;
    for (int64_t end = bl_test_ms() + 5000; !(shown && named) && bl_test_ms() < end;) {
        ops_ask(fd, "stats\n", reply, sizeof reply);
        char *s1 = strstr(reply, "\nsched id=1 busy_ns=");
        snprintf(line, sizeof line, " current=%s\n", spid);
        shown = s1 && strstr(s1, line) != NULL;
        ops_ask(fd, "procs 10\n", reply, sizeof reply);
        snprintf(line, sizeof line, "proc pid=%s status=running kind=plain ", spid);
        char *p = strstr(reply, line);
        named = p && strncmp(strchr(p, '\n') - 16, " name=stuck_loop", 16) == 0;
    }
    BL_CHECK(shown && named);
    /* It cannot answer: the snapshot does, after 2 s. */
    int64_t t0 = bl_test_ms();
    ops_ask(fd, "info stuck_loop\n", reply, sizeof reply);
    int64_t took = bl_test_ms() - t0;
    BL_CHECK(strstr(reply, "answered=no status=running") != NULL);
    BL_CHECK(strstr(reply, " name=stuck_loop") != NULL);
    BL_CHECK(took >= 1900 && took < 5000);
    atomic_store(&spin_on, 0);
    bl_io_close(fd);
}

Test(control, answers_while_a_scheduler_is_stuck)
{
    snprintf(path, sizeof path, "/tmp/bl_ctl_stuck_%d.sock", (int)getpid());
    bl_config c = {.schedulers = 2, .control = path, .quiet = true, .no_long_schedule = true};
    bl_test_run(&c, stuck_main, NULL);
}
