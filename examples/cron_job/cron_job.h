/*
 * cron_job.h - periodic work with a gen_server and bl_send_after.
 *
 * init arms a timer that sends the server a WORK message after the
 * interval; handle_info does the work and arms the next one.  Between runs
 * the server is idle and holds no stack.
 *
 * The seed's CronJob runs every 10 s forever.  Here the interval is a
 * parameter, and max_runs (0 = forever) lets the job stop itself normally
 * after that many runs.
 */
#ifndef CRON_JOB_H
#define CRON_JOB_H

#include <beamline.h>
#include <stdint.h>

/* The work to do: run counts from 1.  Runs in the job's process. */
typedef void (*cron_work_fn)(void *arg, int run);

/*
 * Starts a job linked to the caller that calls work(arg, run) every
 * interval_ms, and exits normally after max_runs runs (0 = never).
 * Returns 0, -EINVAL (no work, interval_ms < 1, max_runs < 0), or the errors
 * of bl_gen_server_start (-ECHILD when the first timer cannot be armed).
 */
int cron_job_start_link(bl_pid *pid, int64_t interval_ms, int max_runs, cron_work_fn work,
                        void *arg);

#endif
