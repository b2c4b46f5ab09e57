/*
 * bench/bench_util.h - what every workload file shares: a monotonic clock,
 * the driver that runs a workload as a process and hands its figure back
 * to the benchmark thread, a bounded tagged receive and the resident set.
 */
#ifndef BL_BENCH_UTIL_H
#define BL_BENCH_UTIL_H

#include <beamline.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
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

/*
 * How long a workload waits for any one message before it gives up: a run
 * that lost one reports a failure instead of hanging.
 */
#define WAIT_MS 60000

/* The first message with the given tag, or NULL after WAIT_MS. */
static inline bl_msg *recv_tag_wait(uint32_t tag)
{
    bl_msg *m = NULL;
    return bl_recv(&m, bl_match_tag, &tag, WAIT_MS, 0) == 0 ? m : NULL;
}

/*
 * The process or key count of the size-swept workloads (ring_1000x1000,
 * spawn_exit, registry_register, registry_lookup): BENCH_SIZE from the
 * environment (run.py --sweep size=...), else dflt.  -1 when BENCH_SIZE is
 * set but is not an integer from 1 to 100,000,000: the workload then fails
 * instead of quietly running at another size.
 */
static inline long bench_size(long dflt)
{
    const char *s = getenv("BENCH_SIZE");
    if (!s || !*s) return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 100000000) {
        fprintf(stderr, "beamline_bench: BENCH_SIZE=%s is not a count from 1 to 100000000\n", s);
        return -1;
    }
    return v;
}

/* Resident set of this process, bytes (0 when /proc cannot tell). */
static inline long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * 4096;
}

#endif /* BL_BENCH_UTIL_H */
