/*
 * cron_job.c - the job's gen_server (see cron_job.h): init arms the first
 * timer, and handle_info does the work and arms the next one.
 */
#include <beamline.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "cron_job.h"

/* ---- the server ---- */

enum { CRON_WORK = 1 }; /* the message the timer sends */

typedef struct cron_job {
    int64_t interval_ms; /* between the end of one run and the next */
    int max_runs;        /* 0 = run forever */
    int runs;            /* done so far */
    cron_work_fn work;
    void *arg;
} cron_job;

/* Process.send_after(self(), :work, interval). */
static int schedule_work(const cron_job *job)
{
    return bl_send_after(bl_self(), CRON_WORK, NULL, 0, job->interval_ms, NULL);
}

static void cron_init(void *arg, void **state, bl_gs_result *r)
{
    cron_job *job = malloc(sizeof *job);
    if (!job || schedule_work(arg) != 0) {
        free(job);
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start returns -ECHILD */
        return;
    }
    *job = *(const cron_job *)arg;
    *state = job;
}

static void cron_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    cron_job *job = *state;
    if (m->tag != CRON_WORK) return; /* anything else: ignored */
    job->work(job->arg, ++job->runs);
    if (job->max_runs && job->runs >= job->max_runs)
        bl_gs_stop(r, NULL); /* done: exit with reason normal */
    else if (schedule_work(job) != 0)
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* no timer, no job: let a supervisor know */
}

static void cron_release(void *state)
{
    free(state);
}

static const bl_gen_server cron_callbacks = {
    .init = cron_init,
    .handle_info = cron_info,
    .release = cron_release,
};

int cron_job_start_link(bl_pid *pid, int64_t interval_ms, int max_runs, cron_work_fn work,
                        void *arg)
{
    if (!work || interval_ms < 1 || max_runs < 0) return -EINVAL;
    /* init copies this before start returns. */
    cron_job job = {.interval_ms = interval_ms, .max_runs = max_runs, .work = work, .arg = arg};
    return bl_gen_server_start_link(pid, &cron_callbacks, &job, NULL);
}
