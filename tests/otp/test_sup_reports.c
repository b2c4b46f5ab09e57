/*
 * Supervisor reports, as SASL writes them: child_terminated for each exit
 * (with the supervisor's name, the child's id, pid, reason and restart
 * type), shutdown when the restart intensity is reached, start_error for a
 * child that fails to start, and progress reports only at level info.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "bl_test.h"

enum { T_CRASH = 1, T_STARTED = 2 };

static bl_pid main_pid;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
typedef struct seen {
    char kind[24];
    char context[32];
    char sup_name[32];
    char child_id[32];
    char reason[64];
    char detail[32];
    char restart[16];
    bl_pid child_pid;
    bl_pid pid;
} seen;
static seen events[64];
static int nevents;

static void copy_str(char *dst, size_t len, const bl_log_field *f)
{
    if (f->kind == BL_LOG_STR)
        snprintf(dst, len, "%s", f->str);
    else if (f->kind == BL_LOG_BYTES)
        snprintf(dst, len, "%.*s", (int)f->bytes.len, (const char *)f->bytes.ptr);
}

static void record(const bl_log_event *e, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    if (nevents < 64) {
        seen *s = &events[nevents++];
        memset(s, 0, sizeof *s);
        snprintf(s->kind, sizeof s->kind, "%s", e->kind);
        s->pid = e->pid;
        for (size_t i = 0; i < e->nfields; i++) {
            const bl_log_field *f = &e->fields[i];
            if (!strcmp(f->key, "context")) copy_str(s->context, sizeof s->context, f);
            if (!strcmp(f->key, "supervisor_name")) copy_str(s->sup_name, sizeof s->sup_name, f);
            if (!strcmp(f->key, "child_id")) copy_str(s->child_id, sizeof s->child_id, f);
            if (!strcmp(f->key, "reason")) copy_str(s->reason, sizeof s->reason, f);
            if (!strcmp(f->key, "detail")) copy_str(s->detail, sizeof s->detail, f);
            if (!strcmp(f->key, "restart_type")) copy_str(s->restart, sizeof s->restart, f);
            if (!strcmp(f->key, "child_pid")) s->child_pid = f->pid;
        }
    }
    pthread_mutex_unlock(&lock);
}

static int count(const char *kind, const char *context)
{
    int n = 0;
    for (int i = 0; i < nevents; i++)
        n += !strcmp(events[i].kind, kind) && (!context || !strcmp(events[i].context, context));
    return n;
}

static const seen *find(const char *kind, const char *context)
{
    for (int i = 0; i < nevents; i++)
        if (!strcmp(events[i].kind, kind) && !strcmp(events[i].context, context)) return &events[i];
    return NULL;
}

/* The worker: exits with custom 7 "boom" when told to. */
static void worker(void *arg)
{
    (void)arg;
    uint32_t tag = T_CRASH;
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0) == 0) bl_msg_free(m);
    bl_reason boom = {.kind = BL_CUSTOM, .code = 7, .detail = "boom", .detail_len = 4};
    bl_exit_reason(&boom);
}

/* Starts the worker and tells the test's process its pid. */
static int start_worker(void *arg, bl_pid *pid)
{
    (void)arg;
    int rc = bl_spawn_link(pid, worker, NULL, NULL);
    if (rc == 0 && main_pid) bl_send(main_pid, T_STARTED, pid, sizeof *pid);
    return rc;
}

static int start_fails(void *arg, bl_pid *pid)
{
    (void)arg;
    (void)pid;
    return -EIO;
}

static bl_pid sup_pid;

/* Crashes the child until the supervisor gives up (3 restarts allowed). */
static void crash_until_shutdown(void *arg)
{
    (void)arg;
    bl_trap_exit(true);
    main_pid = bl_self();
    bl_child_spec spec = {.id = "worker1", .start = start_worker};
    bl_name name = BL_NAME_LOCAL("my_sup");
    bl_sup_opts o = {.name = &name, .max_restarts = 3, .max_seconds = 60};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup_pid, &spec, 1, &o), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(sup_pid, &ref), 0);
    /* Each start announces the child: crash it, until the supervisor's DOWN. */
    for (int round = 0; round < 20; round++) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) return;
        bool down = m->tag == BL_TAG_DOWN && m->ref == ref;
        if (m->tag == T_STARTED) bl_send(*(const bl_pid *)m->data, T_CRASH, NULL, 0);
        bl_msg_free(m);
        if (down) return;
    }
    BL_CHECK(!"the supervisor did not give up");
}

Test(sup_reports, each_exit_is_reported_and_giving_up_too)
{
    nevents = 0;
    bl_config c = {.schedulers = 2, .log_handler = record};
    bl_test_run(&c, crash_until_shutdown, NULL);
    cr_assert_eq(count("supervisor_report", "child_terminated"), 4);
    cr_assert_eq(count("supervisor_report", "shutdown"), 1);
    cr_assert_eq(count("crash_report", NULL), 4);
    cr_assert_eq(count("progress", NULL), 0, "progress reports are off at notice");
    const seen *t = find("supervisor_report", "child_terminated");
    cr_assert_str_eq(t->sup_name, "my_sup");
    cr_assert_str_eq(t->child_id, "worker1");
    cr_assert_str_eq(t->reason, "custom");
    cr_assert_str_eq(t->detail, "boom");
    cr_assert_str_eq(t->restart, "permanent");
    cr_assert_neq(t->child_pid, BL_PID_NONE);
    cr_assert_eq(t->pid, sup_pid);
    const seen *s = find("supervisor_report", "shutdown");
    cr_assert_str_eq(s->reason, "reached_max_restart_intensity");
    cr_assert_str_eq(s->child_id, "worker1");
}

static void start_error_main(void *arg)
{
    (void)arg;
    bl_trap_exit(true);
    main_pid = BL_PID_NONE;
    bl_child_spec specs[2] = {{.id = "ok", .start = start_worker},
                              {.id = "broken", .start = start_fails}};
    bl_pid p;
    BL_CHECK_EQ(bl_supervisor_start_link(&p, specs, 2, NULL), BL_SUP_CHILD_FAILED);
}

Test(sup_reports, a_child_that_fails_to_start_is_reported_and_progress_at_info)
{
    nevents = 0;
    bl_config c = {.schedulers = 1, .log_handler = record, .log_level = BL_LOG_INFO};
    bl_test_run(&c, start_error_main, NULL);
    const seen *e = find("supervisor_report", "start_error");
    cr_assert(e);
    cr_assert_str_eq(e->child_id, "broken");
    cr_assert_eq(count("progress", "child_started"), 1);
    cr_assert_str_eq(find("progress", "child_started")->child_id, "ok");
}

Test(sup_reports, quiet_turns_them_off)
{
    nevents = 0;
    bl_config c = {.schedulers = 1, .log_handler = record, .quiet = true};
    bl_test_run(&c, crash_until_shutdown, NULL);
    cr_assert_eq(count("supervisor_report", NULL), 0);
    cr_assert_eq(count("crash_report", NULL), 0);
}
