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

double wl_ctx_switch(void);              /* ns per switch */
double wl_spawn_exit(void);              /* ns per spawn + run + exit */
double wl_pingpong(int cross);           /* ns per round trip; cross 2: placed by the runtime */
double wl_ring(void);                    /* ns per hop */
double wl_million_procs(void);           /* ms for the whole run */
double wl_idle_process_bytes(void);      /* bytes per idle process */
double wl_ten_million_idle_gib(void);    /* GiB of RSS for 10M idle handler processes */
double wl_processes_snapshot_100k(void); /* ms to list 100k idle processes; NAN on failure */
double wl_send_throughput(void);         /* ns per message */
double wl_mailbox_20_senders(void);      /* ns per message */
double wl_call_with_500k_queued(void);   /* ns per call */
double wl_timers_100k(void);             /* p99 lateness, ms */
/* These return NAN when the run went wrong. */
double wl_link_exit_cascade(void);                /* ms from the exit signal to the far DOWN */
double wl_monitor_down_latency(void);             /* ns from "exit now" to the DOWN */
double wl_hibernated_process_bytes(void);         /* bytes per hibernated process */
double wl_priority_high_latency_under_load(void); /* median round trip, ns */

/* The OTP workloads (bench/workloads_otp.c); NAN when the run went wrong. */
double wl_fact10k_reduce(void);             /* ms for factorial(10_000) by one reduce */
double wl_fact10k_genserver(void);          /* ms, one gen_server per chunk of 10 */
double wl_fact10k_genserver_rate(void);     /* gen_servers per ms, as fact10k_genserver */
double wl_fact10k_stream(void);             /* ms, recursive chunk-of-10 products */
double wl_fact10k_concurrent(void);         /* ms, one slice of chunks per scheduler */
double wl_genserver_start_call_stop(void);  /* ns per start + call + stop */
double wl_genserver_call_rtt(void);         /* ns per call */
double wl_genserver_call_500k_queued(void); /* ns per call, 500k messages in the caller's queue */
double wl_genserver_cast(void);             /* ns per cast, handled */
double wl_idle_genserver_bytes(void);       /* bytes per idle gen_server */
double wl_agent_update(void);               /* ns per Agent.update */
double wl_registry_register(void);          /* ns per register */
double wl_registry_lookup(void);            /* ns per lookup */
double wl_registry_dispatch_1000(void);     /* us per dispatch to 1000 subscribers */
double wl_task_async_await(void);           /* ns per Task.async + await */
double wl_supervisor_restart_latency(void); /* us from a child's kill to its successor's reply */
/* I/O (bench/workloads_io.c) */
double wl_io_sleep_100k(void);     /* ms until the last of 100k 10 ms sleepers wakes */
double wl_echo_rps(void);          /* loopback echo round trips per second */
double wl_accept_rate(void);       /* loopback connections accepted per second */
double wl_file_read_4k_iops(void); /* random 4 KiB preads per second (page cache) */
/* Sleep-bound, ms for the whole run. */
double wl_two_email_tasks_1s(void);
double wl_async_stream_12x500ms_c4(void);
double wl_dynsup_5_slow_children(void);
double wl_partsup_5_slow_children(void);
double wl_yield_many_timeouts(void);
/* Many processes at once (bench/workloads_multi.c); NAN when the run went wrong. */
double wl_many_to_one_call(void);             /* calls per second into one gen_server */
double wl_many_to_one_call_partitioned(void); /* calls per second, one server per scheduler */
double wl_skynet_1m(void);                    /* ms for the skynet tree of 1M leaves */
/* The HTTP request parser (bench/workloads_http*.c); NAN when a parse went wrong. */
double wl_http_parse_49b(void);                /* ns per 49-byte request head */
double wl_http_parse_49b_libhttp_parser(void); /* the same, libhttp-parser (if built) */

#ifdef __cplusplus
}
#endif

#endif
