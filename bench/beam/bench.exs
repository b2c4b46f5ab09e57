# BEAM anchor for the Beamline benchmark suite.
#
#   elixir --erl "+S N +P 2000000" bench/beam/bench.exs [--filter REGEX] [--out FILE]
#          [--only NAME,NAME,...]
#
# Implements the workloads of bench/README.md with plain processes (spawn/send/receive)
# and prints {"workloads":[{"name":...,"unit":...,"value":...}, ...]} on stdout (and
# into FILE with --out). Progress goes to stderr.
#
# The same-scheduler workloads (ctx_switch, pingpong_same_sched) are measured only when
# the VM runs with one scheduler (+S 1): bench/run.py starts a second VM for them.
# In a VM with more schedulers they are skipped (nothing is emitted for them).
#
# --filter REGEX keeps the workloads whose name matches REGEX (a search, as in Google
# Benchmark's --benchmark_filter; a leading '-' negates it). --only keeps the listed names.

defmodule BeamBench do
  # Sizes (identical in bench/go/main.go; written down in bench/README.md).
  @ctx_yields_per_proc 500_000
  @spawn_exit_n 100_000
  @pingpong_n 100_000
  @ring_procs 1000
  @ring_laps 1000
  @million_n 1_000_000
  @idle_n 100_000
  @send_n 1_000_000
  @mbox_senders 20
  @mbox_per_sender 100_000
  @call_queued 500_000
  @call_n 10_000
  @timers_n 100_000
  @timers_ms 100
  @cascade_n 10_000
  @down_rounds 10_000
  @hib_n 100_000
  @prio_rounds 1000
  @prio_warmup 100

  # Measurement policy: one warm-up run, then at least @min_runs measured runs; more runs
  # are added while the measured runs of this workload took less than @budget_ns in
  # total, up to @max_runs. The reported figure is the median.
  @min_runs 5
  @max_runs 15
  @budget_ns 3_000_000_000

  # {name, unit, needs one scheduler, function}
  def workloads do
    [
      {"ctx_switch", "ns", true, &ctx_switch/0},
      {"spawn_exit", "ns", false, &spawn_exit/0},
      {"pingpong_same_sched", "ns", true, &pingpong/0},
      {"pingpong_cross_sched", "ns", false, &pingpong/0},
      {"ring_1000x1000", "ns", false, &ring/0},
      {"million_procs", "ms", false, &million_procs/0},
      {"idle_process_bytes", "bytes", false, &idle_process_bytes/0},
      {"send_throughput", "ns", false, &send_throughput/0},
      {"mailbox_20_senders", "ns", false, &mailbox_20_senders/0},
      {"call_with_500k_queued", "ns", false, &call_with_queued/0},
      {"timers_100k", "ms", false, &timers/0},
      {"link_exit_cascade", "ms", false, &link_exit_cascade/0},
      {"monitor_down_latency", "ns", false, &monitor_down_latency/0},
      {"hibernated_process_bytes", "bytes", false, &hibernated_process_bytes/0},
      {"priority_high_latency_under_load", "ns", false, &priority_high_latency_under_load/0}
    ]
  end

  def main(argv) do
    {opts, _rest, invalid} =
      OptionParser.parse(argv, strict: [filter: :string, out: :string, only: :string])

    if invalid != [] do
      IO.puts(:stderr, "bench.exs: unknown arguments #{inspect(invalid)}")
      System.halt(2)
    end

    keep = name_filter(opts[:filter])
    only = if opts[:only], do: String.split(opts[:only], ",", trim: true), else: nil
    scheds = :erlang.system_info(:schedulers_online)

    IO.puts(
      :stderr,
      "BEAM: Erlang/OTP #{:erlang.system_info(:otp_release)}, erts " <>
        "#{:erlang.system_info(:version)}, #{scheds} scheduler(s) online"
    )

    results =
      for {name, unit, one_sched, fun} <- workloads(),
          keep.(name),
          only == nil or name in only,
          runnable?(name, one_sched, scheds) do
        values = measure(fun)
        median = median(values)

        IO.puts(
          :stderr,
          "  #{name}: #{fmt(median)} #{unit} (median of #{length(values)}, " <>
            "min #{fmt(Enum.min(values))}, max #{fmt(Enum.max(values))})"
        )

        {name, unit, median}
      end

    json = to_json(results, scheds)
    IO.puts(json)
    if opts[:out], do: File.write!(opts[:out], json <> "\n")
  end

  defp runnable?(_name, false, _scheds), do: true
  defp runnable?(_name, true, 1), do: true

  defp runnable?(name, true, scheds) do
    IO.puts(:stderr, "  #{name}: skipped (needs +S 1, this VM has #{scheds} schedulers)")
    false
  end

  defp name_filter(nil), do: fn _ -> true end

  defp name_filter("-" <> re) do
    r = Regex.compile!(re)
    fn name -> not Regex.match?(r, name) end
  end

  defp name_filter(re) do
    r = Regex.compile!(re)
    fn name -> Regex.match?(r, name) end
  end

  # ---------------------------------------------------------------- harness

  defp now, do: :erlang.monotonic_time(:nanosecond)

  # Each run happens in a fresh driver process so that its heap and mailbox start empty.
  # The driver collects up to 1M replies, so its message queue is off the heap (see
  # spawn_off_heap/1); with the default, spawn_exit costs more than ten times as much.
  defp measure(fun) do
    _warmup = isolated(fun)
    t0 = now()
    runs(fun, [], 0, t0)
  end

  defp runs(fun, acc, n, t0) do
    if n >= @max_runs or (n >= @min_runs and now() - t0 >= @budget_ns) do
      acc
    else
      runs(fun, [isolated(fun) | acc], n + 1, t0)
    end
  end

  defp isolated(fun) do
    :erlang.garbage_collect()
    parent = self()
    ref = make_ref()

    {pid, mref} =
      :erlang.spawn_opt(fn -> send(parent, {ref, fun.()}) end, [
        :monitor,
        message_queue_data: :off_heap
      ])

    receive do
      {^ref, value} ->
        Process.demonitor(mref, [:flush])
        value

      {:DOWN, ^mref, :process, ^pid, reason} ->
        raise "workload run crashed: #{inspect(reason)}"
    end
  end

  defp median(values) do
    s = Enum.sort(values)
    n = length(s)

    if rem(n, 2) == 1,
      do: Enum.at(s, div(n, 2)),
      else: (Enum.at(s, div(n, 2) - 1) + Enum.at(s, div(n, 2))) / 2
  end

  # Processes that collect or hold many messages (the driver, the receivers of the
  # streaming workloads, the client of call_with_500k_queued) keep their message queue
  # off the heap, as OTP recommends for such processes: with the default (on_heap) every
  # garbage collection of the process scans its whole queue.
  defp spawn_off_heap(fun), do: :erlang.spawn_opt(fun, message_queue_data: :off_heap)

  defp recv_done(0), do: :ok
  defp recv_done(k), do: receive(do: (:done -> recv_done(k - 1)))

  # ---------------------------------------------------------------- workloads

  # Two processes on one scheduler, each calling erlang:yield/0 in a loop.
  def ctx_switch do
    parent = self()
    n = @ctx_yields_per_proc
    t0 = now()
    spawn(fn -> yield_loop(n, parent) end)
    spawn(fn -> yield_loop(n, parent) end)
    recv_done(2)
    (now() - t0) / (2 * n)
  end

  defp yield_loop(0, parent), do: send(parent, :done)

  defp yield_loop(k, parent) do
    :erlang.yield()
    yield_loop(k - 1, parent)
  end

  # 100k children, each sends :done to the parent and exits.
  def spawn_exit do
    parent = self()
    n = @spawn_exit_n
    t0 = now()
    spawn_senders(n, parent)
    recv_done(n)
    (now() - t0) / n
  end

  defp spawn_senders(0, _parent), do: :ok

  defp spawn_senders(k, parent) do
    spawn(fn -> send(parent, :done) end)
    spawn_senders(k - 1, parent)
  end

  # Round trips of an integer between the driver and one echo process.
  def pingpong do
    me = self()
    echo = spawn(fn -> echo_loop(me) end)
    t0 = now()
    ping_loop(echo, @pingpong_n)
    dt = now() - t0
    send(echo, :stop)
    dt / @pingpong_n
  end

  defp ping_loop(_echo, 0), do: :ok

  defp ping_loop(echo, k) do
    send(echo, k)

    receive do
      ^k -> ping_loop(echo, k - 1)
    end
  end

  defp echo_loop(peer) do
    receive do
      k when is_integer(k) ->
        send(peer, k)
        echo_loop(peer)

      :stop ->
        :ok
    end
  end

  # Ring of 1000 processes, a token (hops left) goes round 1000 times. Only the token
  # passing is timed, not building the ring.
  def ring do
    parent = self()
    procs = @ring_procs
    hops = @ring_procs * @ring_laps
    last = spawn(fn -> ring_init(parent) end)
    first = ring_build(procs - 1, last, parent)
    send(last, {:next, first})
    t0 = now()
    send(first, hops)

    receive do
      :ring_done -> :ok
    end

    dt = now() - t0
    send(first, :stop)
    dt / hops
  end

  defp ring_build(0, next, _parent), do: next

  defp ring_build(k, next, parent) do
    ring_build(k - 1, spawn(fn -> ring_node(next, parent) end), parent)
  end

  defp ring_init(parent) do
    receive do
      {:next, next} -> ring_node(next, parent)
    end
  end

  defp ring_node(next, parent) do
    receive do
      0 ->
        send(parent, :ring_done)
        ring_node(next, parent)

      t when is_integer(t) ->
        send(next, t - 1)
        ring_node(next, parent)

      :stop ->
        send(next, :stop)
    end
  end

  # 1M processes blocked in receive, each stopped by a message; each sends :done before
  # exiting. Whole run in ms.
  def million_procs do
    parent = self()
    n = @million_n
    t0 = now()
    pids = spawn_waiters(n, parent, [])
    stop_all(pids)
    recv_done(n)
    (now() - t0) / 1.0e6
  end

  defp spawn_waiters(0, _parent, acc), do: acc

  defp spawn_waiters(k, parent, acc) do
    pid =
      spawn(fn ->
        receive do
          :stop -> send(parent, :done)
        end
      end)

    spawn_waiters(k - 1, parent, [pid | acc])
  end

  defp stop_all([]), do: :ok

  defp stop_all([pid | rest]) do
    send(pid, :stop)
    stop_all(rest)
  end

  # Memory of 100k processes blocked in receive with an empty mailbox:
  # delta of erlang:memory(processes), minus the driver's own growth, / N.
  def idle_process_bytes do
    parent = self()
    n = @idle_n
    before = others_memory()
    pids = spawn_idle(n, parent, [])
    recv_ready(n)
    after_ = others_memory()
    stop_all(pids)
    recv_done(n)
    (after_ - before) / n
  end

  defp others_memory do
    :erlang.garbage_collect()
    {:memory, own} = Process.info(self(), :memory)
    :erlang.memory(:processes) - own
  end

  defp spawn_idle(0, _parent, acc), do: acc

  defp spawn_idle(k, parent, acc) do
    pid =
      spawn(fn ->
        send(parent, :ready)

        receive do
          :stop -> send(parent, :done)
        end
      end)

    spawn_idle(k - 1, parent, [pid | acc])
  end

  defp recv_ready(0), do: :ok
  defp recv_ready(k), do: receive(do: (:ready -> recv_ready(k - 1)))

  # One sender (the driver) sends 1M integers; the receiver counts them and replies :done.
  def send_throughput do
    parent = self()
    n = @send_n
    rcv = spawn_off_heap(fn -> count_loop(n, parent) end)
    t0 = now()
    send_ints(rcv, n)
    recv_done(1)
    (now() - t0) / n
  end

  defp count_loop(0, parent), do: send(parent, :done)

  defp count_loop(k, parent) do
    receive do
      i when is_integer(i) -> count_loop(k - 1, parent)
    end
  end

  defp send_ints(_to, 0), do: :ok

  defp send_ints(to, k) do
    send(to, k)
    send_ints(to, k - 1)
  end

  # 20 senders x 100k integers into one receiver.
  def mailbox_20_senders do
    parent = self()
    total = @mbox_senders * @mbox_per_sender
    rcv = spawn_off_heap(fn -> count_loop(total, parent) end)
    t0 = now()
    for _ <- 1..@mbox_senders, do: spawn(fn -> send_ints(rcv, @mbox_per_sender) end)
    recv_done(1)
    (now() - t0) / total
  end

  # A client with 500k unrelated messages in its mailbox makes 10k calls to a server.
  # make_ref/0 followed by a receive that matches on the ref lets the compiler and
  # runtime skip the old messages (receive marker).
  def call_with_queued do
    parent = self()
    server = spawn(fn -> server_loop() end)

    client =
      spawn_off_heap(fn ->
        fill_self(@call_queued)
        t0 = now()
        do_calls(server, @call_n)
        send(parent, {:call_time, now() - t0})
      end)

    dt =
      receive do
        {:call_time, dt} -> dt
      end

    send(server, :stop)
    _ = client
    dt / @call_n
  end

  defp fill_self(0), do: :ok

  defp fill_self(k) do
    send(self(), {:unrelated, k})
    fill_self(k - 1)
  end

  defp do_calls(_server, 0), do: :ok

  defp do_calls(server, k) do
    ref = make_ref()
    send(server, {:call, self(), ref})

    receive do
      {^ref, _reply} -> do_calls(server, k - 1)
    end
  end

  defp server_loop do
    receive do
      {:call, from, ref} ->
        send(from, {ref, :ok})
        server_loop()

      :stop ->
        :ok
    end
  end

  # 100k processes each wait 100 ms in receive-after and report their lateness;
  # the figure is the p99 lateness in ms.
  def timers do
    parent = self()
    n = @timers_n
    spawn_sleepers(n, parent)
    late = collect_late(n, [])
    s = Enum.sort(late)
    rank = ceil(0.99 * n)
    Enum.at(s, rank - 1) / 1.0e6
  end

  defp spawn_sleepers(0, _parent), do: :ok

  defp spawn_sleepers(k, parent) do
    spawn(fn ->
      start = now()

      receive do
      after
        @timers_ms -> :ok
      end

      send(parent, {:late, now() - start - @timers_ms * 1_000_000})
    end)

    spawn_sleepers(k - 1, parent)
  end

  defp collect_late(0, acc), do: acc

  defp collect_late(k, acc) do
    receive do
      {:late, l} -> collect_late(k - 1, [l | acc])
    end
  end

  # A chain of 10k processes, each spawn_link'ed by the one before and waiting forever.
  # The driver monitors the far end, kills the near end with a non-normal reason and
  # times until the far end's DOWN arrives (ms).
  def link_exit_cascade do
    parent = self()
    near = spawn(fn -> chain_node(@cascade_n - 1, parent) end)

    far =
      receive do
        {:chain_end, pid} -> pid
      end

    mref = Process.monitor(far)
    t0 = now()
    Process.exit(near, :cascade)

    reason =
      receive do
        {:DOWN, ^mref, :process, _, reason} -> reason
      end

    dt = now() - t0
    if reason != :cascade, do: raise("far end exited with #{inspect(reason)}")
    dt / 1.0e6
  end

  defp chain_node(0, parent) do
    send(parent, {:chain_end, self()})
    wait_forever()
  end

  defp chain_node(k, parent) do
    spawn_link(fn -> chain_node(k - 1, parent) end)
    wait_forever()
  end

  defp wait_forever do
    receive do
      :never_sent -> wait_forever()
    end
  end

  # 10k rounds: spawn a process that waits for a message, monitor it, wait until it is
  # ready, then time from sending it :exit_now until its DOWN arrives. Mean per round.
  def monitor_down_latency do
    parent = self()
    total = down_rounds(@down_rounds, parent, 0)
    total / @down_rounds
  end

  defp down_rounds(0, _parent, total), do: total

  defp down_rounds(k, parent, total) do
    pid =
      spawn(fn ->
        send(parent, :ready)

        receive do
          :exit_now -> :ok
        end
      end)

    mref = Process.monitor(pid)

    receive do
      :ready -> :ok
    end

    t0 = now()
    send(pid, :exit_now)

    receive do
      {:DOWN, ^mref, :process, _, _} -> :ok
    end

    down_rounds(k - 1, parent, total + now() - t0)
  end

  # 100k processes, each answers one synchronous request and then hibernates
  # (erlang:hibernate/3); spawned and synced one at a time. Delta of
  # erlang:memory(processes), minus the driver's own growth, / N.
  def hibernated_process_bytes do
    n = @hib_n
    before = others_memory()
    pids = spawn_hibernated(n, self(), [])
    after_ = others_memory()
    stop_all(pids)
    recv_done(n)
    (after_ - before) / n
  end

  defp spawn_hibernated(0, _parent, acc), do: acc

  defp spawn_hibernated(k, parent, acc) do
    pid =
      spawn(fn ->
        receive do
          {:sync, from} ->
            send(from, :synced)
            :erlang.hibernate(__MODULE__, :hibernated_wake, [parent])
        end
      end)

    send(pid, {:sync, parent})

    receive do
      :synced -> :ok
    end

    spawn_hibernated(k - 1, parent, [pid | acc])
  end

  # Where a hibernated process resumes on its next message (must be exported).
  def hibernated_wake(parent) do
    receive do
      :stop -> send(parent, :done)
    end
  end

  # Every scheduler busy with normal-priority work (2 x schedulers processes calling
  # erlang:yield/0 until told to stop); the driver, high priority itself, times 1000
  # round trips to a high-priority echo process (after 100 untimed ones). Median ns.
  def priority_high_latency_under_load do
    Process.flag(:priority, :high)
    me = self()
    spinners = for _ <- 1..(2 * :erlang.system_info(:schedulers_online)), do: spawn_spinner(me)
    for _ <- spinners, do: receive(do: (:spinning -> :ok))
    echo = :erlang.spawn_opt(fn -> echo_loop(me) end, priority: :high)
    _warm = round_trips(echo, @prio_warmup, [])
    times = round_trips(echo, @prio_rounds, [])
    send(echo, :stop)
    stop_all(spinners)
    recv_done(length(spinners))
    Enum.at(Enum.sort(times), div(@prio_rounds, 2)) * 1.0
  end

  defp spawn_spinner(parent) do
    spawn(fn ->
      send(parent, :spinning)
      spin(parent)
    end)
  end

  defp spin(parent) do
    receive do
      :stop -> send(parent, :done)
    after
      0 ->
        :erlang.yield()
        spin(parent)
    end
  end

  defp round_trips(_echo, 0, acc), do: acc

  defp round_trips(echo, k, acc) do
    t0 = now()
    send(echo, k)

    receive do
      ^k -> round_trips(echo, k - 1, [now() - t0 | acc])
    end
  end

  # ---------------------------------------------------------------- output

  defp fmt(v), do: :erlang.float_to_binary(Float.round(v * 1.0, 3), [:short])

  defp to_json(results, scheds) do
    entries =
      Enum.map(results, fn {name, unit, v} ->
        ~s({"name":"#{name}","unit":"#{unit}","value":#{fmt(v)}})
      end)

    runtime =
      ~s({"otp":"#{:erlang.system_info(:otp_release)}","erts":"#{:erlang.system_info(:version)}",) <>
        ~s("schedulers":#{scheds}})

    ~s({"workloads":[) <> Enum.join(entries, ",") <> ~s(],"runtime":) <> runtime <> "}"
  end
end

BeamBench.main(System.argv())
