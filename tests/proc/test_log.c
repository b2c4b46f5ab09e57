/*
 * The logger: the text and JSON formats, levels, the bounded queue that
 * drops and counts, stderr output, and configuration from the environment
 * (variables fill what the program left at zero; unknown ones are warned
 * about with the closest known name).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_test.h"
#include "sched/sched.h"

Test(log, the_text_and_json_formats)
{
    bl_log_field f[] = {BL_LOG_S("name", "kv"),         BL_LOG_S("said", "a \"b\"\n"),
                        BL_LOG_I("code", -7),           BL_LOG_U("n", 42),
                        BL_LOG_P("child", BL_PID_NONE), BL_LOG_B("bin", "\x01\xff", 2)};
    bl_log_event e = {.time_us = 1765013467123456LL, /* 2025-12-06T09:31:07.123456Z */
                      .level = BL_LOG_ERROR,
                      .kind = "crash_report",
                      .msg = "process exited",
                      .fields = f,
                      .nfields = 6};
    char buf[512];
    int n = bl_log_format_text(&e, buf, sizeof buf);
    cr_assert_str_eq(buf, "2025-12-06T09:31:07.123456Z error crash_report \"process exited\" "
                          "name=kv said=\"a \\\"b\\\"\\n\" code=-7 n=42 child=<0.0.0> bin=0x01ff");
    cr_assert_eq(n, (int)strlen(buf));
    n = bl_log_format_json(&e, buf, sizeof buf);
    cr_assert_str_eq(buf, "{\"time\":\"2025-12-06T09:31:07.123456Z\",\"level\":\"error\","
                          "\"kind\":\"crash_report\",\"msg\":\"process exited\",\"name\":\"kv\","
                          "\"said\":\"a \\\"b\\\"\\n\",\"code\":-7,\"n\":42,\"child\":\"<0.0.0>\","
                          "\"bin\":\"0x01ff\"}");
    /* Cut as snprintf cuts: NUL-terminated, the whole length returned. */
    char small[16];
    cr_assert_eq(bl_log_format_json(&e, small, sizeof small), n);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_eq(bl_log_format_text(NULL, buf, sizeof buf), -EINVAL);
    e.level = 0;
    cr_assert_eq(bl_log_format_text(&e, buf, sizeof buf), -EINVAL);
    cr_assert_eq(bl_log_level_name(BL_LOG_DEBUG)[0], 'd');
    cr_assert_null(bl_log_level_name(9));
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool hold;         /* the handler waits while set */
static int got_events;    /* events the handler saw */
static uint64_t got_drop; /* the dropped count the logger reported */
static char got_kind[8][32];

static void slow_handler(const bl_log_event *e, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (hold) pthread_cond_wait(&cond, &lock);
    if (got_events < 8) snprintf(got_kind[got_events], sizeof got_kind[0], "%s", e->kind);
    got_events++;
    if (!strcmp(e->kind, "logger"))
        for (size_t i = 0; i < e->nfields; i++)
            if (!strcmp(e->fields[i].key, "dropped")) got_drop = e->fields[i].u;
    pthread_mutex_unlock(&lock);
}

static void flood(void *arg)
{
    (void)arg;
    int ok = 0, full = 0;
    uint64_t d0 = bl_log_dropped();
    for (int i = 0; i < 50; i++) {
        int rc = BL_LOG(BL_LOG_WARNING, "test", "flood", BL_LOG_I("i", i));
        BL_CHECK(rc == 0 || rc == -EAGAIN);
        ok += rc == 0;
        full += rc == -EAGAIN;
    }
    /* The handler holds the first: 4 queued behind it at most. */
    BL_CHECK(ok >= 4 && ok <= 5);
    BL_CHECK_EQ(full, 50 - ok);
    BL_CHECK_EQ(bl_log_dropped() - d0, (uint64_t)full);
    /* Below the level: nothing done. */
    BL_CHECK_EQ(bl_log(BL_LOG_DEBUG, "test", "quiet", NULL, 0), 1);
    BL_CHECK(!bl_log_enabled(BL_LOG_INFO) && bl_log_enabled(BL_LOG_NOTICE));
    BL_CHECK_EQ(bl_log(42, "test", NULL, NULL, 0), -EINVAL);
    BL_CHECK_EQ(bl_log(BL_LOG_ERROR, "test", NULL, NULL, 2), -EINVAL);
    pthread_mutex_lock(&lock);
    hold = false;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    /* Room again once the logger has caught up (bounded wait): the next
     * event goes in, after a line saying what was lost. */
    int rc = -EAGAIN;
    for (int i = 0; i < 5000 && rc == -EAGAIN; i++) {
        rc = BL_LOG(BL_LOG_WARNING, "last", NULL, BL_LOG_I("i", 99));
        if (rc == -EAGAIN) bl_sleep(1);
    }
    BL_CHECK_EQ(rc, 0);
}

Test(log, a_full_queue_drops_and_counts_and_says_so_later)
{
    hold = true;
    got_events = 0;
    got_drop = 0;
    bl_config c = {.schedulers = 1, .log_queue = 4, .log_handler = slow_handler};
    bl_test_run(&c, flood, NULL);
    /* The runtime's stop wrote out the queue. */
    cr_assert_gt(got_drop, 40);
    cr_assert_str_eq(got_kind[got_events - 1 < 8 ? got_events - 1 : 7], "last");
}

/* Points stderr at a temporary file; returns the saved stderr. */
static int capture_stderr(char *path, size_t len)
{
    snprintf(path, len, "/tmp/bl_log_test_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return saved;
}

static char *release_stderr(int saved, const char *path)
{
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char text[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    text[n > 0 ? n : 0] = 0;
    if (fd >= 0) close(fd);
    unlink(path);
    return text;
}

static void log_one(void *arg)
{
    (void)arg;
    BL_CHECK_EQ(
        BL_LOG(BL_LOG_NOTICE, "orders", "paid", BL_LOG_S("id", "A17"), BL_LOG_U("cents", 995)), 0);
}

Test(log, json_lines_on_stderr)
{
    char path[64];
    int saved = capture_stderr(path, sizeof path);
    bl_config c = {.schedulers = 1, .log_format = BL_LOG_JSON};
    bl_test_run(&c, log_one, NULL);
    char *text = release_stderr(saved, path);
    char *line = strstr(text, "{\"time\":\"");
    cr_assert(line, "%s", text);
    cr_assert(strstr(line, "\"level\":\"notice\",\"kind\":\"orders\",\"pid\":\"<0.") != NULL, "%s",
              line);
    cr_assert(strstr(line, "\"msg\":\"paid\",\"id\":\"A17\",\"cents\":995}\n") != NULL, "%s", line);
}

Test(log, journald_or_stderr_without_a_journal)
{
    char path[64];
    int saved = capture_stderr(path, sizeof path);
    bl_config c = {.schedulers = 1, .log_format = BL_LOG_JOURNALD};
    bl_test_run(&c, log_one, NULL);
    char *text = release_stderr(saved, path);
    /* With no journal socket, the text line goes to stderr instead. */
    if (access("/run/systemd/journal/socket", W_OK) != 0)
        cr_assert(strstr(text, "notice orders <0.") != NULL, "%s", text);
}

Test(log, outside_a_runtime_events_are_written_at_once)
{
    char path[64];
    int saved = capture_stderr(path, sizeof path);
    cr_assert_eq(BL_LOG(BL_LOG_ERROR, "early", "before start", BL_LOG_I("x", 1)), 0);
    char *text = release_stderr(saved, path);
    cr_assert(strstr(text, " error early \"before start\" x=1\n") != NULL, "%s", text);
}

static void check_config(void *arg)
{
    (void)arg;
    const bl_config *c = &bl__rt->cfg;
    BL_CHECK_EQ(c->reductions, 777);   /* set by the program: kept */
    BL_CHECK_EQ(c->ring_entries, 512); /* left at zero: the variable's */
    BL_CHECK_EQ(c->log_level, BL_LOG_INFO);
    BL_CHECK_EQ(c->bind, BL_BIND_NONE);
}

static bl_log_event warned;
static char warned_var[64], warned_hint[64];

static void keep_warning(const bl_log_event *e, void *arg)
{
    (void)arg;
    if (strcmp(e->kind, "runtime") != 0) return;
    warned.level = e->level;
    for (size_t i = 0; i < e->nfields; i++) {
        if (!strcmp(e->fields[i].key, "variable"))
            snprintf(warned_var, sizeof warned_var, "%s", e->fields[i].str);
        if (!strcmp(e->fields[i].key, "did_you_mean"))
            snprintf(warned_hint, sizeof warned_hint, "%s", e->fields[i].str);
    }
}

Test(log, variables_fill_what_the_program_left_at_zero_and_unknown_ones_are_named)
{
    setenv("BEAMLINE_REDUCTIONS", "1234", 1);
    setenv("BEAMLINE_RING_ENTRIES", "512", 1);
    setenv("BEAMLINE_LOG_LEVEL", "info", 1);
    setenv("BEAMLINE_BIND", "none", 1);
    setenv("BEAMLINE_SCHEDULER", "2", 1);
    bl_config c = {.schedulers = 1, .reductions = 777, .log_handler = keep_warning};
    bl_test_run(&c, check_config, NULL);
    cr_assert_eq(warned.level, BL_LOG_WARNING);
    cr_assert_str_eq(warned_var, "BEAMLINE_SCHEDULER");
    cr_assert_str_eq(warned_hint, "BEAMLINE_SCHEDULERS");
    /* A malformed value is an error even under a given configuration. */
    setenv("BEAMLINE_LOG_FORMAT", "xml", 1);
    cr_assert_eq(bl_main(&c, check_config, NULL), -EINVAL);
    cr_assert(strstr(bl_runtime_error(), "BEAMLINE_LOG_FORMAT=xml") != NULL, "%s",
              bl_runtime_error());
    unsetenv("BEAMLINE_LOG_FORMAT");
    unsetenv("BEAMLINE_REDUCTIONS");
    unsetenv("BEAMLINE_RING_ENTRIES");
    unsetenv("BEAMLINE_LOG_LEVEL");
    unsetenv("BEAMLINE_BIND");
    unsetenv("BEAMLINE_SCHEDULER");
}
