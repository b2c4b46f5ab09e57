/*
 * sched/clock.c - the runtime's clock: now, and the deadline of a timeout.
 */
#include "sched/sched.h"

#include <stdatomic.h>
#include <time.h>

uint64_t bl__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A long timeout (a call's default 5 s) needs no precise clock: the coarse
 * one costs a fifth (6 ns against 27 here) and lags by at most its
 * resolution, so adding twice that never makes a deadline early, only up
 * to 2 x 4 ms late on a timeout of a second or more.  Shorter ones stay
 * precise.
 */
#define COARSE_FROM_MS 1000

uint64_t bl__deadline_ns(int64_t ms)
{
    static _Atomic int64_t margin = -1;
    struct timespec ts;
    int64_t m = atomic_load_explicit(&margin, memory_order_relaxed);
    if (ms >= COARSE_FROM_MS && m < 0) {
        m = clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0 && ts.tv_sec == 0
                ? 2 * ts.tv_nsec
                : 0; /* unknown: use the precise clock */
        atomic_store_explicit(&margin, m, memory_order_relaxed);
    }
    if (ms < COARSE_FROM_MS || m == 0) return bl__now_ns() + (uint64_t)ms * 1000000u;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (uint64_t)m +
           (uint64_t)ms * 1000000u;
}
