// bench/beamline_bench.cc - the Google Benchmark binary behind `make bench`.
//
// Each benchmark runs one workload of bench/workloads.c a few times inside
// the running runtime and reports the median as the user counter "value",
// with the unit as the label (the runner's contract, see bench/README.md).
// The runtime is configured from the BEAMLINE_* environment variables.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>

extern "C" {
#include <beamline.h>
}
#include "workloads.h"

namespace
{

// How many runs a workload gets.  TIMED is the anchors' method
// (bench/README.md): one warm-up run, then at least 5 measured runs, more
// while the measured runs took less than 3 s in all, up to 15.  A positive
// count is exactly that many runs, without a warm-up: the sleep-bound
// workloads (3, as in the anchors) and the ones measured once.
constexpr int TIMED = 0;
constexpr int TIMED_MIN_RUNS = 5;
constexpr int TIMED_MAX_RUNS = 15;
constexpr double TIMED_BUDGET_NS = 3e9;

double mono_ns()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

void report(benchmark::State &state, const char *unit, int runs, const std::function<double()> &fn)
{
    std::vector<double> v;
    for (auto _ : state) {
        if (runs == TIMED && std::isnan(fn())) { /* the warm-up */
            state.SkipWithError("the workload failed (see bench/workloads.c)");
            break;
        }
        double t0 = mono_ns();
        for (int i = 0;; i++) {
            if (runs == TIMED ? i >= TIMED_MAX_RUNS ||
                                    (i >= TIMED_MIN_RUNS && mono_ns() - t0 >= TIMED_BUDGET_NS)
                              : i >= runs)
                break;
            double x = fn();
            if (std::isnan(x)) {
                state.SkipWithError("the workload failed (see bench/workloads.c)");
                break;
            }
            v.push_back(x);
        }
    }
    if (state.error_occurred()) return;
    std::sort(v.begin(), v.end());
    state.counters["value"] = v.empty() ? 0 : v[v.size() / 2];
    /* The spread of the runs the median comes from, and their count. */
    state.counters["min"] = v.empty() ? 0 : v.front();
    state.counters["max"] = v.empty() ? 0 : v.back();
    state.counters["runs"] = (double)v.size();
    state.SetLabel(unit);
}

bool restart(const bl_config *cfg);

// Reports fn run on a runtime restarted with the environment's settings as
// set changes them; the default runtime is back afterwards.
void report_with(benchmark::State &s, const char *unit, int runs,
                 const std::function<void(bl_config &)> &set, const std::function<double()> &fn)
{
    bl_config c{};
    if (bl_config_from_env(&c) != 0) std::exit(1);
    set(c);
    restart(&c);
    report(s, unit, runs, fn);
    restart(nullptr);
}

// Same-scheduler workloads run on a one-scheduler runtime, as the BEAM's run
// with +S 1 and Go's with GOMAXPROCS=1: nothing can be stolen away.
void one_scheduler(benchmark::State &s, const std::function<double()> &fn)
{
    report_with(
        s, "ns", TIMED, [](bl_config &c) { c.schedulers = 1; }, fn);
}

void ctx_switch(benchmark::State &s)
{
    one_scheduler(s, wl_ctx_switch);
}
void spawn_exit(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_spawn_exit);
}
void pingpong_same_sched(benchmark::State &s)
{
    one_scheduler(s, [] { return wl_pingpong(0); });
}
void pingpong_cross_sched(benchmark::State &s)
{
    report(s, "ns", TIMED, [] { return wl_pingpong(1); });
}
void pingpong_any_sched(benchmark::State &s)
{
    report(s, "ns", TIMED, [] { return wl_pingpong(2); });
}
void ring_1000x1000(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_ring);
}
void million_procs(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_million_procs);
}
// Restarts the runtime with cfg (NULL: from the environment again).
bool restart(const bl_config *cfg)
{
    bl_runtime_stop();
    bl_runtime_wait();
    if (bl_runtime_start(cfg) == 0) return true;
    std::fprintf(stderr, "beamline_bench: %s\n", bl_runtime_error());
    std::exit(1);
}

// The process table never shrinks while the runtime runs, so the memory
// of an idle process is measured in a fresh runtime.
void idle_process_bytes(benchmark::State &s)
{
    restart(nullptr);
    report(s, "bytes", 1, wl_idle_process_bytes);
}

// The listing walks every slot the table ever handed out: a fresh runtime
// holds just the 100,000 (and the driver).
void processes_snapshot_100k(benchmark::State &s)
{
    restart(nullptr);
    report(s, "ms", 3, wl_processes_snapshot_100k);
}

void ten_million_idle(benchmark::State &s)
{
    restart(nullptr);
    report(s, "GiB", 1, wl_ten_million_idle_gib);
    restart(nullptr);
}

// Cross-scheduler round trips with spinning off, so every message needs a
// real wake-up through the ring: the cost of each wake mechanism.
void wake_roundtrip(benchmark::State &s, bl_wake mode)
{
    report_with(
        s, "ns", 3,
        [mode](bl_config &c) {
            c.wake = mode;
            c.no_spin = true;
            c.spin_us = 0;
        },
        [] { return wl_pingpong(1); });
}
void wake_msg_ring(benchmark::State &s)
{
    wake_roundtrip(s, BL_WAKE_MSG_RING);
}
void wake_eventfd(benchmark::State &s)
{
    wake_roundtrip(s, BL_WAKE_EVENTFD);
}
void send_throughput(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_send_throughput);
}
void mailbox_20_senders(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_mailbox_20_senders);
}
void call_with_500k_queued(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_call_with_500k_queued);
}
void timers_100k(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_timers_100k);
}

// A cascade kills 10,000 processes with a non-normal reason, and every
// abnormal exit makes a crash report: measured with crash reports off (the
// BEAM logs nothing for a process killed by an exit signal either).
void link_exit_cascade(benchmark::State &s)
{
    report_with(
        s, "ms", TIMED, [](bl_config &c) { c.quiet = true; }, wl_link_exit_cascade);
}
void monitor_down_latency(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_monitor_down_latency);
}
// As idle_process_bytes: a fresh runtime, because the process table never
// shrinks.
void hibernated_process_bytes(benchmark::State &s)
{
    restart(nullptr);
    report(s, "bytes", 1, wl_hibernated_process_bytes);
}
void priority_high_latency_under_load(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_priority_high_latency_under_load);
}

// ---- OTP workloads (bench/workloads_otp.c) ----

void fact10k_reduce(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_fact10k_reduce);
}
void fact10k_genserver(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_fact10k_genserver);
}
void fact10k_genserver_rate(benchmark::State &s)
{
    report(s, "per_ms", TIMED, wl_fact10k_genserver_rate);
}
void fact10k_stream(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_fact10k_stream);
}
void fact10k_concurrent(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_fact10k_concurrent);
}
void genserver_start_call_stop(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_genserver_start_call_stop);
}
void genserver_call_rtt(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_genserver_call_rtt);
}
void genserver_call_500k_queued(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_genserver_call_500k_queued);
}
void genserver_cast(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_genserver_cast);
}
// As idle_process_bytes: a fresh runtime, because the process table never
// shrinks.
void idle_genserver_bytes(benchmark::State &s)
{
    restart(nullptr);
    report(s, "bytes", 1, wl_idle_genserver_bytes);
}
void agent_update(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_agent_update);
}

// ---- I/O workloads (bench/workloads_io.c) ----

void io_sleep_100k(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_io_sleep_100k);
}
void echo_rps(benchmark::State &s)
{
    report(s, "per_s", TIMED, wl_echo_rps);
}
void accept_rate(benchmark::State &s)
{
    report(s, "per_s", TIMED, wl_accept_rate);
}
void file_read_4k_iops(benchmark::State &s)
{
    report(s, "per_s", TIMED, wl_file_read_4k_iops);
}
void registry_register(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_registry_register);
}
void registry_lookup(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_registry_lookup);
}
void registry_dispatch_1000(benchmark::State &s)
{
    report(s, "us", TIMED, wl_registry_dispatch_1000);
}
void task_async_await(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_task_async_await);
}
// Each kill makes a supervisor report (an error event): measured with the
// level above it, as Elixir runs by default (it shows no SASL reports), and
// without a thousand lines on stderr.
void supervisor_restart_latency(benchmark::State &s)
{
    report_with(
        s, "us", TIMED, [](bl_config &c) { c.log_level = BL_LOG_CRITICAL; },
        wl_supervisor_restart_latency);
}
// Sleep-bound (1 to 5 s a run): 3 runs, as in the anchors.
void two_email_tasks_1s(benchmark::State &s)
{
    report(s, "ms", 3, wl_two_email_tasks_1s);
}
void async_stream_12x500ms_c4(benchmark::State &s)
{
    report(s, "ms", 3, wl_async_stream_12x500ms_c4);
}
void dynsup_5_slow_children(benchmark::State &s)
{
    report(s, "ms", 3, wl_dynsup_5_slow_children);
}
void partsup_5_slow_children(benchmark::State &s)
{
    report(s, "ms", 3, wl_partsup_5_slow_children);
}
void yield_many_timeouts(benchmark::State &s)
{
    report(s, "ms", 3, wl_yield_many_timeouts);
}

// ---- Many processes at once (bench/workloads_multi.c) ----

void many_to_one_call(benchmark::State &s)
{
    report(s, "per_s", TIMED, wl_many_to_one_call);
}
void many_to_one_call_partitioned(benchmark::State &s)
{
    report(s, "per_s", TIMED, wl_many_to_one_call_partitioned);
}
void skynet_1m(benchmark::State &s)
{
    report(s, "ms", TIMED, wl_skynet_1m);
}

void http_parse_49b(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_http_parse_49b);
}
#ifdef BL_BENCH_LIBHTTP_PARSER
void http_parse_49b_libhttp_parser(benchmark::State &s)
{
    report(s, "ns", TIMED, wl_http_parse_49b_libhttp_parser);
}
#endif

} // namespace

#define WORKLOAD(fn) BENCHMARK(fn)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond)
WORKLOAD(ctx_switch);
WORKLOAD(spawn_exit);
WORKLOAD(pingpong_same_sched);
WORKLOAD(pingpong_cross_sched);
WORKLOAD(pingpong_any_sched);
WORKLOAD(ring_1000x1000);
WORKLOAD(million_procs);
WORKLOAD(idle_process_bytes);
WORKLOAD(ten_million_idle);
WORKLOAD(processes_snapshot_100k);
WORKLOAD(send_throughput);
WORKLOAD(mailbox_20_senders);
WORKLOAD(call_with_500k_queued);
WORKLOAD(genserver_call_500k_queued);
WORKLOAD(timers_100k);
WORKLOAD(link_exit_cascade);
WORKLOAD(monitor_down_latency);
WORKLOAD(hibernated_process_bytes);
WORKLOAD(priority_high_latency_under_load);
WORKLOAD(wake_msg_ring);
WORKLOAD(wake_eventfd);
WORKLOAD(fact10k_reduce);
WORKLOAD(fact10k_genserver);
WORKLOAD(fact10k_genserver_rate);
WORKLOAD(fact10k_stream);
WORKLOAD(fact10k_concurrent);
WORKLOAD(two_email_tasks_1s);
WORKLOAD(async_stream_12x500ms_c4);
WORKLOAD(dynsup_5_slow_children);
WORKLOAD(partsup_5_slow_children);
WORKLOAD(yield_many_timeouts);
WORKLOAD(genserver_start_call_stop);
WORKLOAD(genserver_call_rtt);
WORKLOAD(genserver_cast);
WORKLOAD(idle_genserver_bytes);
WORKLOAD(supervisor_restart_latency);
WORKLOAD(registry_register);
WORKLOAD(registry_lookup);
WORKLOAD(registry_dispatch_1000);
WORKLOAD(task_async_await);
WORKLOAD(agent_update);
WORKLOAD(io_sleep_100k);
WORKLOAD(echo_rps);
WORKLOAD(accept_rate);
WORKLOAD(file_read_4k_iops);
WORKLOAD(many_to_one_call);
WORKLOAD(many_to_one_call_partitioned);
WORKLOAD(skynet_1m);
WORKLOAD(http_parse_49b);
#ifdef BL_BENCH_LIBHTTP_PARSER
WORKLOAD(http_parse_49b_libhttp_parser);
#endif

// `beamline_bench --io_settings` starts a runtime configured from the
// environment, prints the I/O settings its rings really got as one JSON line,
// and exits.
static int print_io_settings()
{
    bl_io_settings io;
    int rc = bl_runtime_start(nullptr);
    if (rc == 0) {
        rc = bl_io_settings_get(&io);
        bl_runtime_stop();
        bl_runtime_wait();
    }
    if (rc != 0) {
        std::fprintf(stderr, "beamline_bench: I/O settings: %s\n", bl_runtime_error());
        return 1;
    }
    std::printf("{\"wake\": \"%s\", \"sqpoll\": %s}\n", bl_wake_name(io.wake),
                io.sqpoll ? "true" : "false");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && std::strcmp(argv[1], "--io_settings") == 0) return print_io_settings();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int rc = bl_runtime_start(nullptr);
    if (rc != 0) {
        std::fprintf(stderr, "beamline_bench: %s\n", bl_runtime_error());
        return 1;
    }
    benchmark::AddCustomContext("schedulers", std::to_string(bl_schedulers()));
    bl_io_settings io;
    if (bl_io_settings_get(&io) == 0) {
        benchmark::AddCustomContext("wake", bl_wake_name(io.wake));
        benchmark::AddCustomContext("sqpoll", io.sqpoll ? "on" : "off");
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    bl_runtime_stop();
    bl_runtime_wait();
    return 0;
}
