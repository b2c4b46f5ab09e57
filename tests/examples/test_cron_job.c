/*
 * examples/cron_job/cron_job.c: a job re-armed with send_after, ended by max_runs
 * or by a stop.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "examples/cron_job/cron_job.h"

#include "bl_test.h"

enum { T_RUN = 1 };

/* The work: tells the test process which run this is. */
static void report_run(void *arg, int run)
{
    bl_send(*(bl_pid *)arg, T_RUN, &run, sizeof run);
}

static int next_run(int64_t ms)
{
    bl_msg *m = bl_test_recv_tag(T_RUN, ms);
    int run = -1;
    if (m) memcpy(&run, m->data, sizeof run);
    bl_msg_free(m);
    return run;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void runs_main(void *arg)
{
    bl_pid me = bl_self(), job;
    /* Trapping exits turns the link's exit signal into a message we can wait for. */
    bl_trap_exit(true);
    int64_t start = mono_ms();
    BL_CHECK_EQ(cron_job_start_link(&job, 50, 3, report_run, &me), 0);
    for (int i = 1; i <= 3; i++) BL_CHECK_EQ(next_run(5000), i);
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 5000);
    BL_CHECK(m != NULL);
    if (m) {
        bl_reason why;
        BL_CHECK_EQ(m->from, job);
        BL_CHECK_EQ(bl_msg_reason(m, &why), 0);
        BL_CHECK_EQ(why.kind, BL_NORMAL);
    }
    bl_msg_free(m);
    /* Each run is armed after the previous one: three intervals at least. */
    BL_CHECK(mono_ms() - start >= 150);
    BL_CHECK(!bl_is_alive(job));
    /* Exactly three runs. */
    BL_CHECK_EQ(next_run(0), -1);
}

Test(cron_job, stops_after_max_runs)
{
    bl_test_run(NULL, runs_main, NULL);
}

static void forever_main(void *arg)
{
    bl_pid me = bl_self(), job;
    BL_CHECK_EQ(cron_job_start_link(&job, 10, 0, report_run, &me), 0);
    for (int i = 1; i <= 5; i++) BL_CHECK_EQ(next_run(5000), i);
    /* A message of another kind is ignored. */
    BL_CHECK_EQ(bl_send(job, 77, NULL, 0), 0);
    BL_CHECK_EQ(next_run(5000), 6);
    BL_CHECK_EQ(bl_gen_server_stop(job, NULL, 1000), 0);
    BL_CHECK(!bl_is_alive(job));

    BL_CHECK_EQ(cron_job_start_link(&job, 0, 1, report_run, &me), -EINVAL);
    BL_CHECK_EQ(cron_job_start_link(&job, 10, -1, report_run, &me), -EINVAL);
    BL_CHECK_EQ(cron_job_start_link(&job, 10, 1, NULL, &me), -EINVAL);
}

Test(cron_job, runs_until_stopped)
{
    bl_test_run(NULL, forever_main, NULL);
}
