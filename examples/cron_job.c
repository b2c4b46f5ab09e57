/*
 * cron_job.c - periodic work with a gen_server and bl_send_after.
 *
 * init arms a timer that sends the server a WORK message after the
 * interval; handle_info does the work and arms the next one.  Between runs
 * the server is idle and holds no stack.
 *
 * The seed's CronJob runs every 10 s forever.  Here the interval is a
 * parameter, and max_runs (0 = forever) lets the job stop itself normally
 * after that many runs, so the scenario ends: every 100 ms, three times.
 * Run: ./cron_job  (exits 1 if the job does not run three times and stop)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- the module's API ---- */

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

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "cron_job: expected %s (line %d)\n", #cond, __LINE__);                 \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The work: counts its runs (it runs in the job's process, hence the atomic). */
static void work(void *arg, int run)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    printf("Working... (run %d)\n", run);
}

static void scenario(void *arg)
{
    _Atomic int runs = 0;
    int64_t start = now_ms();
    /* The link exists before the job runs, so trapping exits guarantees we hear of its end. */
    bl_trap_exit(true);
    bl_pid job;
    EXPECT(cron_job_start_link(&job, 100, 3, work, &runs) == 0);

    /* Wait for the job to finish: its EXIT message, with a generous bound. */
    uint32_t exit_tag = BL_TAG_EXIT;
    bl_msg *exit_msg = NULL;
    bl_reason why = BL_REASON(BL_KILLED);
    EXPECT(bl_recv(&exit_msg, bl_match_tag, &exit_tag, 5000, 0) == 0);
    if (exit_msg) {
        EXPECT(exit_msg->from == job);
        bl_msg_reason(exit_msg, &why);
    }
    bl_msg_free(exit_msg);

    EXPECT(why.kind == BL_NORMAL);
    EXPECT(atomic_load(&runs) == 3);
    /* Timers never fire early: three intervals have passed at least. */
    EXPECT(now_ms() - start >= 300);
    printf("Done after %d runs\n", atomic_load(&runs));
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
#endif
