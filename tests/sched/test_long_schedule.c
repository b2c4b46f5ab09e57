/*
 * The long-schedule watchdog (sched/watchdog.c): a process that runs a C
 * loop without calling the runtime is reported with its pid, name and time;
 * one that yields as often is not.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bl_test.h"

/* The events of kind long_schedule, as the log handler saw them. */
#define MAX_EV 32
typedef struct ev {
    bl_pid pid;
    char name[64];
    uint64_t ran_ms;
    bool ended;
} ev;
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static ev evs[MAX_EV];
static int nev;

static void on_log(const bl_log_event *e, void *arg)
{
    (void)arg;
    if (strcmp(e->kind, "long_schedule") != 0) return;
    ev v = {.ended = e->msg && strstr(e->msg, "returned") != NULL};
    for (size_t i = 0; i < e->nfields; i++) {
        const bl_log_field *f = &e->fields[i];
        if (!strcmp(f->key, "pid")) v.pid = f->pid;
        if (!strcmp(f->key, "ran_ms")) v.ran_ms = f->u;
        if (!strcmp(f->key, "name")) snprintf(v.name, sizeof v.name, "%s", f->str);
    }
    pthread_mutex_lock(&ev_lock);
    if (nev < MAX_EV) evs[nev++] = v;
    pthread_mutex_unlock(&ev_lock);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 300 ms of a loop that never calls the runtime. */
static void spinner(void *arg)
{
    (void)arg;
    bl_register("busy_loop", bl_self());
    uint64_t end = mono_ms() + 300;
    while (mono_ms() < end) {
    }
}

/* 300 ms of the same loop, yielding every 100 us. */
static void yielder(void *arg)
{
    (void)arg;
    uint64_t end = mono_ms() + 300;
    while (mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t until = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 100;
        do clock_gettime(CLOCK_MONOTONIC, &ts);
        while ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 < until);
        bl_yield();
    }
}

static bl_pid spin_pid, yield_pid;

/* Runs fn on scheduler 2 (main stays on 1) and waits for its end. */
static bl_pid run_on_2(bl_entry_fn fn)
{
    bl_pid p;
    bl_ref ref;
    bl_spawn_opts o = {.scheduler = 2, .bound = true};
    BL_CHECK_EQ(bl_spawn(&p, fn, NULL, &o), 0);
    BL_CHECK_EQ(bl_monitor(p, &ref), 0);
    bl_msg *down = bl_test_recv_tag(BL_TAG_DOWN, 20000);
    BL_CHECK(down != NULL);
    bl_msg_free(down);
    return p;
}

static void watch_main(void *arg)
{
    (void)arg;
    /* Each on the other scheduler: main is never stuck behind them. */
    yield_pid = run_on_2(yielder);
    spin_pid = run_on_2(spinner);
    /* The watchdog counts what it reported on the spinner's scheduler. */
    bl_scheduler_stats st;
    BL_CHECK_EQ(bl_scheduler_stats_get(1, &st), 0);
    BL_CHECK_EQ(st.long_schedules, 1);
    BL_CHECK_EQ(bl_scheduler_stats_get(0, &st), 0);
    BL_CHECK_EQ(st.long_schedules, 0);
}

Test(long_schedule, a_loop_is_reported_a_yielding_one_is_not)
{
    nev = 0;
    bl_config c = {.schedulers = 2, .long_schedule_ms = 100, .log_handler = on_log};
    bl_test_run(&c, watch_main, NULL);
    /* The runtime's stop wrote every queued event out. */
    int found = 0;
    for (int i = 0; i < nev; i++) {
        cr_assert_neq(evs[i].pid, yield_pid, "the yielding process was reported");
        if (evs[i].pid == spin_pid && !evs[i].ended) {
            found++;
            cr_assert_geq(evs[i].ran_ms, 100);
            cr_assert_str_eq(evs[i].name, "busy_loop");
        }
    }
    cr_assert_eq(found, 1, "%d events of the spinner (of %d)", found, nev);
}

/* BEAMLINE_LONG_SCHEDULE_MS=0 turns the watchdog off: the loop goes unreported. */
Test(long_schedule, off)
{
    nev = 0;
    setenv("BEAMLINE_LONG_SCHEDULE_MS", "0", 1);
    bl_config c = {.schedulers = 2, .log_handler = on_log};
    bl_test_run(&c, spinner, NULL);
    unsetenv("BEAMLINE_LONG_SCHEDULE_MS");
    cr_assert_eq(nev, 0);
}
