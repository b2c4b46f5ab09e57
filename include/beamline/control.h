/*
 * beamline/control.h - watching a running program from outside: the
 * control socket (what beamline-top attaches to) and the Prometheus
 * metrics endpoint.
 *
 * Both are opt-in: nothing listens unless bl_config.control (a Unix socket
 * path, or BEAMLINE_CONTROL) or bl_config.metrics (address:port, or
 * BEAMLINE_METRICS, e.g. 127.0.0.1:9568) is set.  They are served by one
 * thread of the runtime's own ("bl-control", net/control.c), not by a
 * process: the view keeps working while every scheduler is stuck in a loop,
 * which is exactly what it must show then.  If a socket cannot be set up
 * (a path too long, a directory that does not exist, a file in the way, an
 * address in use) the program still starts: the failure is logged (level
 * error, kind control) and that endpoint is off.
 *
 * The control socket is created with mode 0600 (only the program's user may
 * attach), replaces a stale socket left at its path (never another kind of
 * file) and is removed at the runtime's stop.  Its protocol is one request
 * per line and a reply of lines ending with a line "end"; a connection may
 * ask any number of times (try `socat - UNIX-CONNECT:path`):
 *
 *   stats           one line "stats key=value ..." for the whole program
 *                   (time_ns, uptime_ns, schedulers, processes, rss_bytes,
 *                   stacks_in_use, stack_bytes_in_use, stacks_pooled,
 *                   stacks_cold, stack_pool_bytes, slab_bytes, envelopes,
 *                   io_inflight, log_queued, log_dropped, long_schedules),
 *                   then one line "sched id=N key=value ..." per scheduler
 *                   (busy_ns, uptime_ns, idle_ns, runq, switches, steals,
 *                   sleeps, wakeups_sent, io_inflight, long_schedules,
 *                   current: the pid running now or 0).  Counters are
 *                   cumulative: a client computes rates and utilization
 *                   from two samples and their time_ns.
 *   procs [N] [KEY] one line "procs total=T shown=S interval_ns=I sort=KEY",
 *                   then the top N processes (default 50, at most 100000),
 *                   by KEY: reductions (used since this connection's last
 *                   procs, the default), queue (message queue length) or
 *                   memory, each as "proc pid=<0.I.G> status=... kind=...
 *                   prio=... msgs=... reds=... dreds=... stack=... memory=...
 *                   name=..." (dreds: reductions since the last procs).
 *   info PID|NAME   the process's full info, asked of the process (links,
 *                   monitors, monitored_by, the first queued messages):
 *                   "info pid=... answered=yes|no ..." then "links n=N pid
 *                   ...", "monitors ...", "monitored_by ...", "message
 *                   from=... tag=... len=... data=..." lines.  A process that
 *                   does not answer within 2 s (stuck in a loop) gets
 *                   answered=no and what the snapshot knows.
 *   help            the requests.
 *   quit            closes the connection.
 * Errors are one line "error TEXT" (then "end").  Values never hold spaces:
 * a name's or a message's bytes outside printable ASCII, and space, '=' and
 * '\', are written as \xHH.  A request line is at most 1 KiB; an idle
 * connection is closed after 60 s; at most 16 connections at once.
 *
 * The metrics endpoint answers GET /metrics with the Prometheus text format
 * 0.0.4 (scheduler, process, memory, I/O and logger counters and gauges,
 * counters ending in _total), 404 for any other path, 405 for another
 * method, 400 for a malformed request, and closes the connection after the
 * reply.  A request must arrive whole within 5 s and 8 KiB.
 *
 * Where this differs from Erlang: observer and etop attach as a
 * distributed Erlang node; here a plain local socket does (no cookie, file
 * permissions instead), and the metrics are served by the runtime itself
 * (prometheus.erl is a library the program adds).
 */
#ifndef BEAMLINE_CONTROL_H
#define BEAMLINE_CONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The TCP port the metrics endpoint listens on (the one the kernel chose
 * when the configuration said port 0), or -ENOTCONN when it is off or the
 * runtime is not running.
 */
int bl_metrics_port(void);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_CONTROL_H */
