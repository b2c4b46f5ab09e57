/*
 * main.c - cron_job, the program: a job of cron_job.h that runs every
 * 100 ms, three times, then stops itself.
 *
 * Run: ./cron_job  (exits 1 if the job does not run three times and stop)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cron_job.h"

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
