/*
 * bench/bench_util.h - what every workload file shares: a monotonic clock
 * and the driver that runs a workload as a process and hands its figure
 * back to the benchmark thread.
 */
#ifndef BL_BENCH_UTIL_H
#define BL_BENCH_UTIL_H

#include <beamline.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A workload run: fn stores its figure in result (left alone: the failure value). */
typedef struct driver {
    void (*fn)(struct driver *d);
    double result;
    sem_t done;
} driver;

static inline void driver_entry(void *arg)
{
    driver *d = arg;
    d->fn(d);
    sem_post(&d->done);
}

/*
 * Runs fn as a process with the given stack size (0 = default) and waits,
 * on the calling thread, for its figure; fail when it could not start or
 * did not set one.
 */
static inline double drive_with(void (*fn)(driver *d), size_t stack_size, double fail)
{
    driver d = {.fn = fn, .result = fail};
    sem_init(&d.done, 0, 0);
    bl_spawn_opts o = {.stack_size = stack_size};
    if (bl_spawn(NULL, driver_entry, &d, &o) != 0) return fail;
    while (sem_wait(&d.done) != 0) {
    }
    sem_destroy(&d.done);
    return d.result;
}

#endif /* BL_BENCH_UTIL_H */
