/*
 * sched/watchdog.c - the long-schedule monitor (the BEAM's
 * system_monitor long_schedule).
 *
 * Scheduling is cooperative: a process gives its scheduler back only when
 * it calls the runtime (a receive, a send that uses up its slice, I/O,
 * bl_yield).  C code in a loop that never does holds its scheduler, and
 * every other process queued there waits.  This thread finds such
 * processes and reports them through the logger (kind long_schedule, level
 * warning) with their pid, registered name and how long they have run.
 *
 * It costs the schedulers nothing: no clock read, no store and no atomic
 * read-modify-write on a context switch.  Every period (a quarter of the
 * threshold, between 1 and 50 ms) it reads each scheduler's switch count
 * (a statistic the scheduler keeps anyway) and its current process (a
 * relaxed pointer the scheduler stores anyway).  When both are unchanged
 * across samples spanning the threshold, one process has run all that
 * time: it is reported once, and once more with its duration when it
 * returns.  The durations are lower bounds: the process was switched in
 * somewhere between the sample before and the first that saw it.  The time
 * is wall time: a scheduler thread preempted by the kernel holds its
 * process as much as a loop does.
 *
 * The thread runs from bl_runtime_start to bl_runtime_wait, and not at all
 * with bl_config.no_long_schedule (BEAMLINE_LONG_SCHEDULE_MS=0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/names.h"
#include "sched/sched.h"

/* What the watchdog last saw of one scheduler. */
typedef struct seen {
    uint64_t switches; /* the switch count then */
    bl_proc *cur;      /* the process running then */
    uint64_t since;    /* the first sample that saw this pair (ns) */
    uint64_t last;     /* the latest sample that saw it (ns) */
    bl_pid pid;        /* cur's pid, once reported */
    bool reported;     /* the long schedule was reported */
} seen;

static pthread_t thread;
static bool running;

static void report(bl_sched *s, const seen *w, uint64_t ran_ns, bool ended)
{
    char name[BL_NAME_MAX + 1] = "";
    (void)bl__names_name_of(w->pid, name, sizeof name);
    uint64_t ms = ran_ns / 1000000u;
    if (ended)
        BL_LOG(BL_LOG_WARNING, "long_schedule", "process returned to its scheduler",
               BL_LOG_P("pid", w->pid), BL_LOG_S("name", name), BL_LOG_U("ran_ms", ms),
               BL_LOG_U("scheduler", s->index));
    else
        BL_LOG(BL_LOG_WARNING, "long_schedule",
               "process runs without returning to its scheduler (a loop that never calls the "
               "runtime: bl_yield in it, or bl_dirty_run)",
               BL_LOG_P("pid", w->pid), BL_LOG_S("name", name), BL_LOG_U("ran_ms", ms),
               BL_LOG_U("threshold_ms", s->rt->cfg.long_schedule_ms),
               BL_LOG_U("scheduler", s->index));
}

/* One sample of scheduler s at time now. */
static void look(bl_sched *s, seen *w, uint64_t now, uint64_t threshold)
{
    uint64_t sw = BL_STAT(s, switches);
    bl_proc *cur = bl__sched_current(s);
    if (cur && sw == w->switches && cur == w->cur) {
        w->last = now;
        if (!w->reported && now - w->since >= threshold) {
            w->pid = bl__proc_pid_peek(cur);
            w->reported = true;
            /* Only this thread writes the count: a load and a store suffice. */
            atomic_store_explicit(&s->st.long_schedules, BL_STAT(s, long_schedules) + 1,
                                  memory_order_relaxed);
            report(s, w, now - w->since, false);
        }
        return;
    }
    if (w->reported) report(s, w, w->last - w->since, true);
    *w = (seen){.switches = sw, .cur = cur, .since = now, .last = now};
}

static void *watch(void *arg)
{
    bl_runtime *rt = arg;
    uint64_t threshold = (uint64_t)rt->cfg.long_schedule_ms * 1000000u;
    uint64_t period = threshold / 4;
    if (period < 1000000u) period = 1000000u;
    if (period > 50000000u) period = 50000000u;
    seen *w = calloc(rt->nsched, sizeof *w);
    if (!w) return NULL;
    struct timespec ts = {.tv_sec = (time_t)(period / 1000000000u),
                          .tv_nsec = (long)(period % 1000000000u)};
    /* bl_runtime_stop sets stop_futex and wakes every waiter on it. */
    while (!atomic_load_explicit(&rt->stop_futex, memory_order_acquire)) {
        syscall(SYS_futex, &rt->stop_futex, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
        uint64_t now = bl__now_ns();
        for (unsigned i = 0; i < rt->nsched; i++) look(rt->scheds[i], &w[i], now, threshold);
    }
    free(w);
    return NULL;
}

int bl__watchdog_start(bl_runtime *rt)
{
    if (rt->cfg.no_long_schedule || !rt->cfg.long_schedule_ms) return 0;
    int rc = pthread_create(&thread, NULL, watch, rt);
    if (rc) return -rc;
    pthread_setname_np(thread, "bl-watchdog");
    running = true;
    return 0;
}

void bl__watchdog_stop(void)
{
    if (!running) return;
    pthread_join(thread, NULL);
    running = false;
}
