/*
 * Crash reports: abnormal exits only, with pid, registered name, reason
 * (detail as text or hex, cut when long), initial function and queue length.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_GO = 1 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bl_pid pid;
    char name[32];
    char reason[32];
    int64_t code;
    char detail[1200];
    char initial[160];
    uint64_t qlen;
} reports[16];
static int nreports;

/* The text of a field as the text format shows it (bytes: text or hex). */
static void field_text(const bl_log_field *f, char *buf, size_t len)
{
    bl_log_event e = {.level = BL_LOG_ERROR, .kind = "k", .fields = f, .nfields = 1};
    char line[2600];
    BL_CHECK(bl_log_format_text(&e, line, sizeof line) > 0);
    const char *v = strchr(line, '=');
    snprintf(buf, len, "%s", v ? v + 1 : "");
}

static void record(const bl_log_event *e, void *arg)
{
    BL_CHECK(arg == &nreports);
    if (strcmp(e->kind, "crash_report") != 0) return;
    BL_CHECK_EQ(e->level, BL_LOG_ERROR);
    pthread_mutex_lock(&lock);
    if (nreports < 16) {
        __typeof__(reports[0]) *r = &reports[nreports];
        memset(r, 0, sizeof *r);
        r->pid = e->pid;
        r->qlen = UINT64_MAX;
        for (size_t i = 0; i < e->nfields; i++) {
            const bl_log_field *f = &e->fields[i];
            if (!strcmp(f->key, "name")) snprintf(r->name, sizeof r->name, "%s", f->str);
            if (!strcmp(f->key, "reason")) snprintf(r->reason, sizeof r->reason, "%s", f->str);
            if (!strcmp(f->key, "code")) r->code = f->i;
            if (!strcmp(f->key, "detail")) field_text(f, r->detail, sizeof r->detail);
            if (!strcmp(f->key, "initial_call"))
                snprintf(r->initial, sizeof r->initial, "%s", f->str);
            if (!strcmp(f->key, "message_queue_len")) r->qlen = f->u;
        }
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
    bl_config c = {.schedulers = 2, .log_handler = record, .log_handler_arg = &nreports};
    bl_test_run(&c, crash_main, NULL);
    cr_assert_eq(nreports, 2);
    cr_assert_eq(reports[0].pid, crashed[0]);
    cr_assert_str_eq(reports[0].name, "crasher");
    cr_assert_str_eq(reports[0].reason, "custom");
    cr_assert_eq(reports[0].code, 99);
    cr_assert_eq(reports[1].pid, crashed[1]);
    cr_assert_str_eq(reports[1].name, "");
    cr_assert_eq(reports[1].code, 5);
    /* The initial function: its symbol, or the program's file and offset. */
    const char *off = strstr(reports[0].initial, "+0x");
    Dl_info di;
    cr_assert(dladdr((void *)named_crasher, &di));
    cr_assert(strstr(reports[0].initial, "named_crasher") ||
                  (off && strtoull(off + 3, NULL, 16) ==
                              (uintptr_t)named_crasher - (uintptr_t)di.dli_fbase),
              "initial_call %s", reports[0].initial);
    cr_assert_eq(reports[0].qlen, 0);
}

Test(crash, quiet_turns_reports_off)
{
    nreports = 0;
    bl_config c = {
        .schedulers = 1, .log_handler = record, .log_handler_arg = &nreports, .quiet = true};
    bl_test_run(&c, crash_main, NULL);
    cr_assert_eq(nreports, 0);
}

/* Crashes with queued messages and a detail given as arg (a bl_reason). */
static void crash_with_mail(void *arg)
{
    for (int i = 0; i < 3; i++) BL_CHECK_EQ(bl_send(bl_self(), 7, "x", 1), 0);
    bl_exit_reason(arg);
}

static void detail_main(void *arg)
{
    bl_pid p;
    static char big[2000];
    memset(big, 'a', sizeof big);
    bl_reason text = {.kind = BL_CUSTOM, .code = 7, .detail = "boom", .detail_len = 4};
    bl_reason bin = {.kind = BL_CUSTOM, .code = 8, .detail = "\x01\xff", .detail_len = 2};
    bl_reason lng = {.kind = BL_CUSTOM, .code = 9, .detail = big, .detail_len = sizeof big};
    run_and_wait(crash_with_mail, &text, &p);
    run_and_wait(crash_with_mail, &bin, &p);
    run_and_wait(crash_with_mail, &lng, &p);
}

Test(crash, the_detail_is_shown_as_text_or_hex_and_cut_when_long)
{
    nreports = 0;
    bl_config c = {.schedulers = 1, .log_handler = record, .log_handler_arg = &nreports};
    bl_test_run(&c, detail_main, NULL);
    cr_assert_eq(nreports, 3);
    cr_assert_str_eq(reports[0].detail, "boom");
    cr_assert_eq(reports[0].qlen, 3);
    cr_assert_str_eq(reports[1].detail, "0x01ff");
    cr_assert(strstr(reports[2].detail, "...(2000 bytes)") != NULL, "%s", reports[2].detail);
    cr_assert_lt(strlen(reports[2].detail), 600);
    cr_assert_eq(reports[2].code, 9);
}
