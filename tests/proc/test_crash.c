/*
 * Crash reports: abnormal exits only, with pid, registered name and reason.
 */
#include <errno.h>
#include <pthread.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_GO = 1 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bl_pid pid;
    char name[32];
    bl_reason_kind kind;
    int32_t code;
} reports[16];
static int nreports;

static void record(const bl_crash_report *r, void *arg)
{
    BL_CHECK(arg == &nreports);
    pthread_mutex_lock(&lock);
    if (nreports < 16) {
        reports[nreports].pid = r->pid;
        snprintf(reports[nreports].name, sizeof reports[0].name, "%s", r->name ? r->name : "");
        reports[nreports].kind = r->reason->kind;
        reports[nreports].code = r->reason->code;
    }
    nreports++;
    pthread_mutex_unlock(&lock);
}

static void exit_with(void *arg)
{
    bl_exit_reason(arg);
}

static void named_crasher(void *arg)
{
    bl_register("crasher", bl_self());
    bl_exit(99);
}

static void run_and_wait(bl_entry_fn fn, void *arg, bl_pid *pid)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(pid, &ref, fn, arg, NULL), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
}

static bl_pid crashed[2];

static int stop_at_once(void *state, bl_msg *m)
{
    return BL_STOP;
}
static const bl_handler stopper = {.init = NULL, .handle = stop_at_once, .terminate = NULL};

static void wait_forever(void *arg)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

static void crash_main(void *arg)
{
    bl_pid p;
    bl_ref ref0;
    /* Clean exits: no report. */
    bl_reason normal = BL_REASON(BL_NORMAL), sd = BL_REASON(BL_SHUTDOWN),
              sdd = {.kind = BL_SHUTDOWN, .detail = "why", .detail_len = 3};
    run_and_wait(exit_with, &normal, &p);
    run_and_wait(exit_with, &sd, &p);
    run_and_wait(exit_with, &sdd, &p);
    /* Abnormal: reported, with the registered name when there is one. */
    run_and_wait(named_crasher, NULL, &crashed[0]);
    bl_reason custom = {.kind = BL_CUSTOM, .code = 5};
    run_and_wait(exit_with, &custom, &crashed[1]);
    /* A handler that stops with BL_STOP exits normally: no report. */
    bl_pid h;
    BL_CHECK_EQ(bl_spawn_handler(&h, &stopper, NULL, NULL), 0);
    BL_CHECK_EQ(bl_monitor(h, &ref0), 0);
    bl_send(h, T_GO, NULL, 0);
    bl_msg *d = NULL;
    BL_CHECK_EQ(bl_recv(&d, bl_match_ref, &ref0, 10000, 0), 0);
    bl_reason dr;
    BL_CHECK(d && bl_msg_reason(d, &dr) == 0 && dr.kind == BL_NORMAL);
    bl_msg_free(d);
    /* Killed by a signal: not its own crash, no report. */
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, wait_forever, NULL, NULL), 0);
    bl_reason boom = {.kind = BL_CUSTOM, .code = 6};
    bl_exit_pid(p, &boom);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
}

Test(crash, abnormal_exits_are_reported)
{
    nreports = 0;
    bl_config c = {.schedulers = 2, .logger = record, .logger_arg = &nreports};
    bl_test_run(&c, crash_main, NULL);
    cr_assert_eq(nreports, 2);
    cr_assert_eq(reports[0].pid, crashed[0]);
    cr_assert_str_eq(reports[0].name, "crasher");
    cr_assert_eq(reports[0].kind, BL_CUSTOM);
    cr_assert_eq(reports[0].code, 99);
    cr_assert_eq(reports[1].pid, crashed[1]);
    cr_assert_str_eq(reports[1].name, "");
    cr_assert_eq(reports[1].code, 5);
}

Test(crash, quiet_turns_reports_off)
{
    nreports = 0;
    bl_config c = {.schedulers = 1, .logger = record, .logger_arg = &nreports, .quiet = true};
    bl_test_run(&c, crash_main, NULL);
    cr_assert_eq(nreports, 0);
}
