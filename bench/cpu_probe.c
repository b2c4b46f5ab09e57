/*
 * bench/cpu_probe.c - how fast the CPUs run right now.
 *
 *   cpu_probe [--ms N] [--runs N]
 *
 * On each CPU this program may run on, in turn, pinned there: --runs
 * windows (default 5) of --ms milliseconds (default 20) of a step made of
 * eight independent integer chains and two loads from a table in L1, which
 * keeps the core's ports and front end busy the way a runtime's own code
 * does.  Reports each CPU's median ns per step over its windows and the
 * slowest CPU's figure.
 *
 * Why such a step and not one dependent chain: on a virtual machine the
 * host slows the guest's CPUs for seconds at a time, and a dependent chain
 * (latency-bound, one port) showed only part of it.  Here the chain stayed
 * at 0.55-0.58 ns per step while genserver_start_call_stop went from 620
 * to 1,080 ns and back, run after run; this step went from 1.36 to 1.9-2.0
 * ns exactly when the benchmark slowed (what else runs on the same
 * physical core, on the host, shares its ports).
 *
 * bench/run.py runs it before and after each harness, and the report shows
 * the figures beside the table, so that a gap between harnesses can be
 * told apart from a gap between their speeds.
 *
 * Prints one JSON object on stdout:
 *   {"cpus": [0, 1], "ns_per_step": [1.36, 1.37], "ns_per_step_max": 1.37}
 * Exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ns per step over a window of about ms milliseconds. */
static double window(unsigned ms)
{
    static uint64_t tab[512];
    for (unsigned i = 0; i < 512; i++) tab[i] = i * 2654435761u;
    uint64_t a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8, steps = 0;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)ms * 1000000u, t;
    do {
        for (unsigned i = 0; i < 100000; i++) {
            a = a * 3 + tab[i & 511];
            b ^= b << 1;
            c += c >> 3;
            d = d * 5 + 1;
            e ^= tab[(i * 7) & 511];
            f += e >> 2;
            g = g * 7 + h;
            h ^= a;
            /* Keeps every chain: the compiler may not drop or fold them. */
            __asm__ volatile(""
                             : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f), "+r"(g),
                               "+r"(h));
        }
        steps += 100000;
    } while ((t = now_ns()) < end);
    return (double)(t - t0) / (double)steps;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    unsigned ms = 20, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ms") && i + 1 < argc)
            ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: cpu_probe [--ms N] [--runs N]\n");
            return 1;
        }
    }
    if (ms == 0 || ms > 10000 || runs == 0 || runs > 100) {
        fprintf(stderr, "cpu_probe: --ms 1..10000, --runs 1..100\n");
        return 1;
    }
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        perror("cpu_probe: sched_getaffinity");
        return 1;
    }
    double *w = malloc(sizeof *w * runs);
    if (!w) return 1;
    printf("{\"cpus\": [");
    int n = 0;
    double med[CPU_SETSIZE], worst = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &allowed)) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
        for (unsigned r = 0; r < runs; r++) w[r] = window(ms);
        qsort(w, runs, sizeof *w, cmp);
        med[n] = w[runs / 2];
        if (med[n] > worst) worst = med[n];
        printf("%s%d", n ? ", " : "", c);
        n++;
    }
    printf("], \"ns_per_step\": [");
    for (int i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", med[i]);
    printf("], \"ns_per_step_max\": %.4f}\n", worst);
    free(w);
    return n ? 0 : 1;
}
