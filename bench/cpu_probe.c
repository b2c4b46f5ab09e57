/*
 * bench/cpu_probe.c - how fast the CPUs run right now.
 *
 *   cpu_probe [--ms N] [--runs N]
 *
 * On each CPU this program may run on, in turn, pinned there: --runs
 * windows (default 5) of --ms milliseconds (default 20) of a chain of
 * dependent integer multiply-adds, each step needing the one before, so
 * that nothing but the core's clock and what else the host runs on it
 * decides the time per step.  Reports each CPU's median over its windows
 * and the slowest CPU's figure.
 *
 * bench/run.py runs it before and after each harness: on a virtual machine
 * the host can slow the guest's CPUs for seconds at a time (two runs of
 * the same loop a second apart have differed by 1.7x here), and a harness
 * that ran in such a spell is slower for it.  The report shows the figures
 * beside the table, so that a gap between harnesses can be told apart
 * from a gap between their speeds.
 *
 * Prints one JSON object on stdout:
 *   {"cpus": [0, 1], "ns_per_step": [0.55, 0.55], "ns_per_step_max": 0.55}
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

/* ns per step of the chain over a window of about ms milliseconds. */
static double window(unsigned ms)
{
    uint64_t x = 1, steps = 0, t0 = now_ns(), end = t0 + (uint64_t)ms * 1000000u, t;
    do {
        for (int i = 0; i < 100000; i++) {
            x = x * 3 + 1;
            /* Keeps the chain a chain: the compiler may not fold the steps. */
            __asm__ volatile("" : "+r"(x));
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
