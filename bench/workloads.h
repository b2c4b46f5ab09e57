/*
 * bench/workloads.h - the Beamline side of each benchmark workload.
 *
 * Each function runs one complete workload inside the running runtime (the
 * caller is an ordinary thread; the work happens in processes) and returns
 * the figure in the workload's unit.  bench/README.md defines the workloads;
 * bench/beam/ and bench/go/ implement the same ones.
 */
#ifndef BL_BENCH_WORKLOADS_H
#define BL_BENCH_WORKLOADS_H

#ifdef __cplusplus
extern "C" {
#endif

double wl_ctx_switch(void);            /* ns per switch */
double wl_spawn_exit(void);            /* ns per spawn + run + exit */
double wl_pingpong(int cross);         /* ns per round trip */
double wl_ring(void);                  /* ns per hop */
double wl_million_procs(void);         /* ms for the whole run */
double wl_idle_process_bytes(void);    /* bytes per idle process */
double wl_ten_million_idle_gib(void);  /* GiB of RSS for 10M idle handler processes */
double wl_send_throughput(void);       /* ns per message */
double wl_mailbox_20_senders(void);    /* ns per message */
double wl_call_with_500k_queued(void); /* ns per call */
double wl_timers_100k(void);           /* p99 lateness, ms */
/* These return NAN when the run went wrong. */
double wl_link_exit_cascade(void);                /* ms from the exit signal to the far DOWN */
double wl_monitor_down_latency(void);             /* ns from "exit now" to the DOWN */
double wl_hibernated_process_bytes(void);         /* bytes per hibernated process */
double wl_priority_high_latency_under_load(void); /* median round trip, ns */

#ifdef __cplusplus
}
#endif

#endif
