# BEAM anchor for the Beamline benchmark suite.
#
#   elixir --erl "+S N +P 2000000" bench/beam/bench.exs [--filter REGEX] [--out FILE]
#          [--only NAME,NAME,...]
#
# Implements the workloads of bench/README.md with plain processes (spawn/send/receive)
# and, for the OTP workloads, GenServer, Supervisor, DynamicSupervisor,
# PartitionSupervisor, Registry, Task and Agent, and prints
# {"workloads":[{"name":...,"unit":...,"value":...}, ...]} on stdout (and into FILE with
# --out). Progress goes to stderr.
#
# The same-scheduler workloads (ctx_switch, pingpong_same_sched) are measured only when
# the VM runs with one scheduler (+S 1): bench/run.py starts a second VM for them.
# In a VM with more schedulers they are skipped (nothing is emitted for them).
#
# --filter REGEX keeps the workloads whose name matches REGEX (a search, as in Google
# Benchmark's --benchmark_filter; a leading '-' negates it). --only keeps the listed names.

# The workloads that keep every scheduler busy (BeamBench.Multi) and BENCH_SIZE.
Code.require_file("multi.exs", __DIR__)

# ---------------------------------------------------------------- OTP workload modules

# The factorial of seed 000: Eval.reduce/1, Eval.worker/1 (one GenServer per chunk of
# 10 numbers, here stopped after its call) and Eval.stream/1 (recursive chunk-of-10
# products, no processes). concurrent/2 is ours: the chunks split into one contiguous
# slice per scheduler, each slice's product computed by rec_stream/1 in its own Task.
defmodule BeamBench.Fact do
  @chunk 10

  def reduce(list), do: Enum.reduce(list, 1, &(&1 * &2))

  def worker(n) do
    1..n
    |> Stream.chunk_every(@chunk)
    |> Stream.map(&start_call_stop/1)
    |> Enum.to_list()
    |> Enum.reduce(1, &(&1 * &2))
  end

  defp start_call_stop(chunk) do
    {:ok, pid} = GenServer.start(BeamBench.FactorialGs, chunk)
    product = GenServer.call(pid, :factorial)
    :ok = GenServer.stop(pid)
    product
  end

  def stream(n), do: Enum.to_list(1..n) |> rec_stream()

  def rec_stream(list) when is_list(list) and length(list) > @chunk do
    list
    |> Stream.chunk_every(@chunk)
    |> Stream.map(&reduce/1)
    |> Enum.to_list()
    |> rec_stream()
  end

  def rec_stream(list) when is_list(list), do: reduce(list)

  def concurrent(n, slices) do
    chunks = div(n + @chunk - 1, @chunk)
    per = div(chunks + slices - 1, slices) * @chunk

    1..n
    |> Enum.chunk_every(per)
    |> Enum.map(fn slice -> Task.async(fn -> rec_stream(slice) end) end)
    |> Enum.map(&Task.await(&1, :infinity))
    |> reduce()
  end
end

# The seed's FactorialGs: holds its chunk, answers :factorial with the chunk's product.
defmodule BeamBench.FactorialGs do
  def init(chunk), do: {:ok, chunk}
  def handle_call(:factorial, _from, s), do: {:reply, BeamBench.Fact.reduce(s), s}
end

# The server of the genserver_* workloads: answers :ping, counts :inc casts.
defmodule BeamBench.Echo do
  use GenServer
  def init(n), do: {:ok, n}
  def handle_call(:ping, _from, n), do: {:reply, :pong, n}
  def handle_call(:count, _from, n), do: {:reply, n, n}
  def handle_cast(:inc, n), do: {:noreply, n + 1}
end

# The supervised child of supervisor_restart_latency: its init tells the driver (its
# start argument, the same at every restart) that it is up.
defmodule BeamBench.RestartChild do
  use GenServer
  def start_link(driver), do: GenServer.start_link(__MODULE__, driver)

  def init(driver) do
    send(driver, {:child_up, self()})
    {:ok, driver}
  end

  def handle_call(:ping, _from, s), do: {:reply, :pong, s}
end

# Seed 001's SlowGenServer: init sleeps 1 s.
defmodule BeamBench.SlowGenServer do
  use GenServer
  def start_link(args), do: GenServer.start_link(__MODULE__, args)

  def init(_args) do
    :timer.sleep(1000)
    {:ok, :noop}
  end
end

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
  @fact_n 10_000
  @gs_rounds 10_000
  @gs_calls 100_000
  @gs_casts 1_000_000
  @idle_gs_n 100_000
  @restart_rounds 1000
  @reg_n 100_000
  @dispatch_subs 1000
  @dispatch_rounds 100
  @task_n 100_000
  @agent_n 100_000

  # Measurement policy: one warm-up run, then at least @min_runs measured runs; more runs
  # are added while the measured runs of this workload took less than @budget_ns in
  # total, up to @max_runs. The reported figure is the median.
  @min_runs 5
  @max_runs 15
  @budget_ns 3_000_000_000
  # The sleep-bound workloads (seconds each) have no warm-up and exactly @sleep_runs runs.
  @sleep_runs 3
  @sleep_workloads ~w(two_email_tasks_1s async_stream_12x500ms_c4 dynsup_5_slow_children
                      partsup_5_slow_children yield_many_timeouts)

  # {name, unit, needs one scheduler, function}
  def workloads do
    [
      {"ctx_switch", "ns", true, &ctx_switch/0},
      {"spawn_exit", "ns", false, &spawn_exit/0},
      {"pingpong_same_sched", "ns", true, &pingpong/0},
      {"pingpong_cross_sched", "ns", false, &pingpong_cross/0},
      {"pingpong_any_sched", "ns", false, &pingpong/0},
      {"ring_1000x1000", "ns", false, &ring/0},
      {"million_procs", "ms", false, &million_procs/0},
      {"idle_process_bytes", "bytes", false, &idle_process_bytes/0},
      {"send_throughput", "ns", false, &send_throughput/0},
      {"mailbox_20_senders", "ns", false, &mailbox_20_senders/0},
      {"call_with_500k_queued", "ns", false, &call_with_queued/0},
      {"genserver_call_500k_queued", "ns", false, &genserver_call_queued/0},
      {"timers_100k", "ms", false, &timers/0},
      {"link_exit_cascade", "ms", false, &link_exit_cascade/0},
      {"monitor_down_latency", "ns", false, &monitor_down_latency/0},
      {"hibernated_process_bytes", "bytes", false, &hibernated_process_bytes/0},
      {"priority_high_latency_under_load", "ns", false, &priority_high_latency_under_load/0},
      {"fact10k_reduce", "ms", false, &fact10k_reduce/0},
      {"fact10k_genserver", "ms", false, &fact10k_genserver/0},
      {"fact10k_genserver_rate", "per_ms", false, &fact10k_genserver_rate/0},
      {"fact10k_stream", "ms", false, &fact10k_stream/0},
      {"fact10k_concurrent", "ms", false, &fact10k_concurrent/0},
      {"two_email_tasks_1s", "ms", false, &two_email_tasks_1s/0},
      {"async_stream_12x500ms_c4", "ms", false, &async_stream_12x500ms_c4/0},
      {"dynsup_5_slow_children", "ms", false, &dynsup_5_slow_children/0},
      {"partsup_5_slow_children", "ms", false, &partsup_5_slow_children/0},
      {"yield_many_timeouts", "ms", false, &yield_many_timeouts/0},
      {"genserver_start_call_stop", "ns", false, &genserver_start_call_stop/0},
      {"genserver_call_rtt", "ns", false, &genserver_call_rtt/0},
      {"genserver_cast", "ns", false, &genserver_cast/0},
      {"idle_genserver_bytes", "bytes", false, &idle_genserver_bytes/0},
      {"supervisor_restart_latency", "us", false, &supervisor_restart_latency/0},
      {"registry_register", "ns", false, &registry_register/0},
      {"registry_lookup", "ns", false, &registry_lookup/0},
      {"registry_dispatch_1000", "us", false, &registry_dispatch_1000/0},
      {"task_async_await", "ns", false, &task_async_await/0},
      {"agent_update", "ns", false, &agent_update/0},
      {"io_sleep_100k", "ms", false, &io_sleep_100k/0},
      {"echo_rps", "per_s", false, &echo_rps/0},
      {"accept_rate", "per_s", false, &accept_rate/0},
      {"file_read_4k_iops", "per_s", false, &file_read_4k_iops/0},
      {"many_to_one_call", "per_s", false, &BeamBench.Multi.many_to_one_call/0},
      {"many_to_one_call_partitioned", "per_s", false,
       &BeamBench.Multi.many_to_one_call_partitioned/0},
      {"skynet_1m", "ms", false, &BeamBench.Multi.skynet_1m/0}
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
        values = measure(fun, name in @sleep_workloads)
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
  defp measure(fun, true = _sleep_bound) do
    for _ <- 1..@sleep_runs, do: isolated(fun)
  end

  defp measure(fun, false) do
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

  # 100k children (BENCH_SIZE), each sends :done to the parent and exits.
  def spawn_exit do
    parent = self()
    n = BeamBench.Multi.bench_size(@spawn_exit_n)
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

  # pingpong_cross_sched: the same round trips with the two processes bound
  # to two different schedulers (spawn_opt's {scheduler, N}, which the BEAM
  # accepts although it is not documented), as Beamline places them, so that
  # every message crosses cores.  Left to itself the BEAM keeps the pair on
  # one scheduler.
  def pingpong_cross do
    me = self()

    :erlang.spawn_opt(
      fn ->
        pinger = self()
        echo = :erlang.spawn_opt(fn -> echo_loop(pinger) end, [{:scheduler, 2}])
        t0 = now()
        ping_loop(echo, @pingpong_n)
        dt = now() - t0
        send(echo, :stop)
        send(me, {:pingpong_cross, dt / @pingpong_n})
      end,
      [{:scheduler, 1}]
    )

    receive do
      {:pingpong_cross, ns} -> ns
    end
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
  # passing is timed, not building the ring. BENCH_SIZE sets the ring's size; the laps
  # keep the hops at 1000 x 1000 (at least one lap).
  def ring do
    parent = self()
    procs = BeamBench.Multi.bench_size(@ring_procs)
    hops = procs * max(1, div(@ring_procs * @ring_laps, procs))
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
    server = spawn(fn -> server_loop() end)
    dt = queued_client_time(fn -> do_calls(server, @call_n) end)
    send(server, :stop)
    dt / @call_n
  end

  # The same client through GenServer.call: 500k unrelated messages in its mailbox,
  # then 10k calls to the server of genserver_call_rtt. gen:call takes its monitor
  # (an alias) after a receive marker, so neither the reply's receive nor the
  # demonitor's flush scans the old messages.
  def genserver_call_queued do
    {:ok, server} = GenServer.start(BeamBench.Echo, 0)
    dt = queued_client_time(fn -> gs_calls(server, @call_n) end)
    GenServer.stop(server)
    dt / @call_n
  end

  # Runs calls in a client whose mailbox holds @call_queued unrelated messages
  # first; returns the time the calls took.
  defp queued_client_time(calls) do
    parent = self()

    spawn_off_heap(fn ->
      fill_self(@call_queued)
      t0 = now()
      calls.()
      send(parent, {:call_time, now() - t0})
    end)

    receive do
      {:call_time, dt} -> dt
    end
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

  # ---------------------------------------------------------------- OTP workloads

  # factorial(10_000) as seed 000 computes it (BeamBench.Fact). Each run checks its
  # result against a reference computed once (by reduce), untimed.
  defp fact_expected do
    case :persistent_term.get({__MODULE__, :fact}, nil) do
      nil ->
        v = BeamBench.Fact.reduce(1..@fact_n)
        :persistent_term.put({__MODULE__, :fact}, v)
        v

      v ->
        v
    end
  end

  defp fact_timed(fun) do
    expected = fact_expected()
    t0 = now()
    v = fun.()
    dt = now() - t0
    if v != expected, do: raise("factorial(#{@fact_n}) came out wrong")
    dt
  end

  def fact10k_reduce, do: fact_timed(fn -> BeamBench.Fact.reduce(1..@fact_n) end) / 1.0e6
  def fact10k_genserver, do: fact_timed(fn -> BeamBench.Fact.worker(@fact_n) end) / 1.0e6
  def fact10k_stream, do: fact_timed(fn -> BeamBench.Fact.stream(@fact_n) end) / 1.0e6

  # gen_servers started (and called and stopped) per ms in fact10k_genserver.
  def fact10k_genserver_rate do
    ms = fact_timed(fn -> BeamBench.Fact.worker(@fact_n) end) / 1.0e6
    div(@fact_n + 9, 10) / ms
  end

  def fact10k_concurrent do
    s = :erlang.system_info(:schedulers_online)
    fact_timed(fn -> BeamBench.Fact.concurrent(@fact_n, s) end) / 1.0e6
  end

  defp ms_since(t0), do: (now() - t0) / 1.0e6

  # Seed 000's Email1, awaited: two tasks that each sleep 1 s.
  def two_email_tasks_1s do
    t0 = now()

    ["a@com", "b@com"]
    |> Enum.map(fn email -> Task.async(fn -> Process.sleep(1000) && email end) end)
    |> Enum.each(&Task.await/1)

    ms_since(t0)
  end

  # Seed 000's MyTasks.back_pressured: 12 items of 500 ms, max_concurrency 4, unordered,
  # under a Task.Supervisor (started and stopped outside the timing).
  def async_stream_12x500ms_c4 do
    {:ok, tsup} = Task.Supervisor.start_link()
    emails = Enum.map(?a..?l, fn x -> <<x>> <> "@com" end)
    t0 = now()

    Task.Supervisor.async_stream_nolink(tsup, emails, fn e -> Process.sleep(500) && e end,
      max_concurrency: 4,
      ordered: false
    )
    |> Stream.run()

    dt = ms_since(t0)
    Supervisor.stop(tsup)
    dt
  end

  # Seed 001 (scaling dynamic supervisors): 5 processes each start a SlowGenServer (init
  # sleeps 1 s) under one DynamicSupervisor, which starts them one after the other. Timed
  # from spawning the 5 starters until all 5 start_child calls have returned.
  def dynsup_5_slow_children do
    {:ok, sup} = DynamicSupervisor.start_link(strategy: :one_for_one)
    dt = start_5_slow(fn _i -> sup end)
    Supervisor.stop(sup)
    dt
  end

  # The same through a PartitionSupervisor of 6 DynamicSupervisors, keys 1..5: integer
  # keys route to rem(key, 6), so each child has a supervisor of its own.
  def partsup_5_slow_children do
    name = BeamBench.SlowPartitionSupervisor

    {:ok, sup} =
      PartitionSupervisor.start_link(
        name: name,
        partitions: 6,
        child_spec: DynamicSupervisor.child_spec([])
      )

    dt = start_5_slow(fn i -> {:via, PartitionSupervisor, {name, i}} end)
    Supervisor.stop(sup)
    dt
  end

  defp start_5_slow(sup_for) do
    parent = self()
    t0 = now()

    for i <- 1..5 do
      spawn(fn ->
        {:ok, _} = DynamicSupervisor.start_child(sup_for.(i), BeamBench.SlowGenServer)
        send(parent, :started)
      end)
    end

    for _ <- 1..5 do
      receive do
        :started -> :ok
      after
        60_000 -> raise "a slow child did not start"
      end
    end

    ms_since(t0)
  end

  # Seed 001's yield_many example at 1/10 scale: 10 tasks sleep i x 100 ms, yield_many
  # waits 500 ms, the tasks that have not answered are shut down (:brutal_kill). Tasks
  # 1-4 must answer and 6-10 must not; task 5 (500 ms against a 500 ms timeout) may go
  # either way. Timed from the first Task.async to the last shutdown.
  def yield_many_timeouts do
    t0 = now()

    tasks =
      for i <- 1..10 do
        Task.async(fn ->
          Process.sleep(i * 100)
          i
        end)
      end

    results =
      tasks
      |> Task.yield_many(500)
      |> Enum.map(fn {task, res} -> {res, res || Task.shutdown(task, :brutal_kill)} end)

    dt = ms_since(t0)
    answered = for {{:ok, v}, _} <- results, do: v

    if answered != [1, 2, 3, 4] and answered != [1, 2, 3, 4, 5],
      do: raise("yield_many: tasks #{inspect(answered)} answered")

    dt
  end

  # 10k rounds of GenServer.start + call + stop, one after the other. ns per round.
  def genserver_start_call_stop do
    t0 = now()
    gs_rounds(@gs_rounds)
    (now() - t0) / @gs_rounds
  end

  defp gs_rounds(0), do: :ok

  defp gs_rounds(k) do
    {:ok, pid} = GenServer.start(BeamBench.Echo, 0)
    :pong = GenServer.call(pid, :ping)
    :ok = GenServer.stop(pid)
    gs_rounds(k - 1)
  end

  # 100k GenServer.call round trips to one server. ns per call.
  def genserver_call_rtt do
    {:ok, pid} = GenServer.start(BeamBench.Echo, 0)
    t0 = now()
    gs_calls(pid, @gs_calls)
    dt = now() - t0
    GenServer.stop(pid)
    dt / @gs_calls
  end

  defp gs_calls(_pid, 0), do: :ok

  defp gs_calls(pid, k) do
    :pong = GenServer.call(pid, :ping)
    gs_calls(pid, k - 1)
  end

  # 1M casts to one server (message queue off the heap, as the other streaming
  # receivers), then a call that answers once every cast has been handled. ns per cast.
  def genserver_cast do
    {:ok, pid} = GenServer.start(BeamBench.Echo, 0, spawn_opt: [message_queue_data: :off_heap])

    t0 = now()
    gs_casts(pid, @gs_casts)
    n = GenServer.call(pid, :count, :infinity)
    dt = now() - t0
    GenServer.stop(pid)
    if n != @gs_casts, do: raise("the server handled #{n} casts")
    dt / @gs_casts
  end

  defp gs_casts(_pid, 0), do: :ok

  defp gs_casts(pid, k) do
    GenServer.cast(pid, :inc)
    gs_casts(pid, k - 1)
  end

  # 100k idle GenServers (started one at a time, each waiting for a message); memory
  # delta as in idle_process_bytes.
  def idle_genserver_bytes do
    n = @idle_gs_n
    before = others_memory()
    pids = for _ <- 1..n, do: elem(GenServer.start(BeamBench.Echo, 0), 1)
    after_ = others_memory()
    Enum.each(pids, &GenServer.stop/1)
    (after_ - before) / n
  end

  # A one_for_one Supervisor with one GenServer child (restart intensity raised so it
  # never gives up). 1000 rounds: kill the child (exit signal :kill), time until the
  # restarted child, whose init reports to the driver, has answered a call. us per round.
  def supervisor_restart_latency do
    {:ok, sup} =
      Supervisor.start_link([{BeamBench.RestartChild, self()}],
        strategy: :one_for_one,
        max_restarts: 1_000_000,
        max_seconds: 1
      )

    first = receive(do: ({:child_up, pid} -> pid))
    {total, _} = restart_rounds(@restart_rounds, first, 0)
    Supervisor.stop(sup)
    total / @restart_rounds / 1000
  end

  defp restart_rounds(0, pid, total), do: {total, pid}

  defp restart_rounds(k, old, total) do
    t0 = now()
    Process.exit(old, :kill)

    new =
      receive do
        {:child_up, pid} -> pid
      after
        60_000 -> raise "the child was not restarted"
      end

    :pong = GenServer.call(new, :ping)
    restart_rounds(k - 1, new, total + now() - t0)
  end

  # A unique Registry (one partition); the driver registers 100k integer keys
  # (BENCH_SIZE). ns per register. The registry drivers trap exits: registering links
  # them to the registry, whose shutdown at the end would otherwise take them down.
  def registry_register do
    Process.flag(:trap_exit, true)
    {:ok, reg} = Registry.start_link(keys: :unique, name: BeamBench.Reg)
    n = BeamBench.Multi.bench_size(@reg_n)
    t0 = now()
    reg_keys(n)
    dt = now() - t0
    Supervisor.stop(reg)
    dt / n
  end

  defp reg_keys(0), do: :ok

  defp reg_keys(k) do
    {:ok, _} = Registry.register(BeamBench.Reg, k, nil)
    reg_keys(k - 1)
  end

  # The same 100k keys registered (untimed), then 100k lookups. ns per lookup.
  def registry_lookup do
    Process.flag(:trap_exit, true)
    {:ok, reg} = Registry.start_link(keys: :unique, name: BeamBench.Reg)
    n = BeamBench.Multi.bench_size(@reg_n)
    reg_keys(n)
    me = self()
    t0 = now()
    lookups(n, me)
    dt = now() - t0
    Supervisor.stop(reg)
    dt / n
  end

  defp lookups(0, _me), do: :ok

  defp lookups(k, me) do
    [{^me, nil}] = Registry.lookup(BeamBench.Reg, k)
    lookups(k - 1, me)
  end

  # A duplicate Registry; 1000 processes register under one key. 100 rounds of
  # Registry.dispatch sending each a message, each answering the driver; a round ends
  # when all 1000 have answered. us per round.
  def registry_dispatch_1000 do
    Process.flag(:trap_exit, true)
    {:ok, reg} = Registry.start_link(keys: :duplicate, name: BeamBench.PubSub)
    me = self()

    subs =
      for _ <- 1..@dispatch_subs do
        spawn(fn ->
          {:ok, _} = Registry.register(BeamBench.PubSub, :topic, nil)
          send(me, :ready)
          subscriber(me)
        end)
      end

    recv_ready(@dispatch_subs)
    t0 = now()
    dispatch_rounds(@dispatch_rounds)
    dt = now() - t0
    stop_all(subs)
    recv_done(@dispatch_subs)
    Supervisor.stop(reg)
    dt / @dispatch_rounds / 1000
  end

  defp subscriber(driver) do
    receive do
      {:broadcast, k} ->
        send(driver, {:got, k})
        subscriber(driver)

      :stop ->
        send(driver, :done)
    end
  end

  defp dispatch_rounds(0), do: :ok

  defp dispatch_rounds(k) do
    Registry.dispatch(BeamBench.PubSub, :topic, fn entries ->
      for {pid, _} <- entries, do: send(pid, {:broadcast, k})
    end)

    recv_got(@dispatch_subs, k)
    dispatch_rounds(k - 1)
  end

  defp recv_got(0, _k), do: :ok
  defp recv_got(n, k), do: receive(do: ({:got, ^k} -> recv_got(n - 1, k)))

  # 100k rounds of Task.await(Task.async(fn -> :ok end)). ns per round.
  def task_async_await do
    t0 = now()
    tasks(@task_n)
    (now() - t0) / @task_n
  end

  defp tasks(0), do: :ok

  defp tasks(k) do
    :ok = Task.await(Task.async(fn -> :ok end))
    tasks(k - 1)
  end

  # An Agent holding an integer; 100k Agent.update(+1) (each a synchronous call). ns
  # per update.
  def agent_update do
    {:ok, agent} = Agent.start_link(fn -> 0 end)
    t0 = now()
    agent_updates(agent, @agent_n)
    dt = now() - t0
    n = Agent.get(agent, & &1)
    Agent.stop(agent)
    if n != @agent_n, do: raise("the agent counted #{n}")
    dt / @agent_n
  end

  defp agent_updates(_agent, 0), do: :ok

  defp agent_updates(agent, k) do
    :ok = Agent.update(agent, &(&1 + 1))
    agent_updates(agent, k - 1)
  end

  # ---------------------------------------------------------------- I/O

  # 100k processes each sleep 10 ms: ms until the last one has woken and reported.
  def io_sleep_100k do
    me = self()
    t0 = now()
    for _ <- 1..100_000, do: spawn(fn -> Process.sleep(10); send(me, :slept) end)
    BeamBench.Multi.collect(:slept, 100_000)
    (now() - t0) / 1.0e6
  end

  @echo_conns 64
  @echo_rounds 1000

  # 64 loopback connections, 32-byte messages in lockstep: round trips per second.
  def echo_rps do
    {:ok, l} = :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, backlog: 1024])
    {:ok, port} = :inet.port(l)
    spawn_link(fn -> echo_accept(l, @echo_conns) end)
    me = self()
    msg = :binary.copy("e", 32)
    t0 = now()

    for _ <- 1..@echo_conns do
      spawn_link(fn ->
        {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
        echo_rounds(s, msg, @echo_rounds)
        :gen_tcp.close(s)
        send(me, :echoed)
      end)
    end

    BeamBench.Multi.collect(:echoed, @echo_conns)
    dt = now() - t0
    :gen_tcp.close(l)
    @echo_conns * @echo_rounds * 1.0e9 / dt
  end

  defp echo_accept(_l, 0), do: :ok

  defp echo_accept(l, k) do
    {:ok, s} = :gen_tcp.accept(l)
    pid = spawn(fn -> echo_serve(s) end)
    :ok = :gen_tcp.controlling_process(s, pid)
    echo_accept(l, k - 1)
  end

  defp echo_serve(s) do
    case :gen_tcp.recv(s, 32) do
      {:ok, data} ->
        :ok = :gen_tcp.send(s, data)
        echo_serve(s)

      {:error, _} ->
        :gen_tcp.close(s)
    end
  end

  defp echo_rounds(_s, _msg, 0), do: :ok

  defp echo_rounds(s, msg, k) do
    :ok = :gen_tcp.send(s, msg)
    {:ok, ^msg} = :gen_tcp.recv(s, 32)
    echo_rounds(s, msg, k - 1)
  end

  @accept_clients 4
  @accept_each 2500

  # 4 clients connect and close; the server accepts and closes: connections per second.
  def accept_rate do
    {:ok, l} = :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, backlog: 4096])
    {:ok, port} = :inet.port(l)
    me = self()
    t0 = now()

    spawn_link(fn ->
      accept_close(l, @accept_clients * @accept_each)
      send(me, :accepted)
    end)

    for _ <- 1..@accept_clients do
      spawn_link(fn ->
        for _ <- 1..@accept_each do
          {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
          :gen_tcp.close(s)
        end

        send(me, :connected)
      end)
    end

    BeamBench.Multi.collect(:connected, @accept_clients)
    BeamBench.Multi.collect(:accepted, 1)
    dt = now() - t0
    :gen_tcp.close(l)
    @accept_clients * @accept_each * 1.0e9 / dt
  end

  defp accept_close(_l, 0), do: :ok

  defp accept_close(l, k) do
    {:ok, s} = :gen_tcp.accept(l)
    :gen_tcp.close(s)
    accept_close(l, k - 1)
  end

  @file_bytes 64 * 1024 * 1024
  @readers 16
  @reads_each 4000

  # 16 processes, random 4 KiB preads of a 64 MiB file in the page cache: reads per second.
  def file_read_4k_iops do
    path = bench_file()
    me = self()
    blocks = div(@file_bytes, 4096)
    t0 = now()

    for _ <- 1..@readers do
      spawn_link(fn ->
        {:ok, f} = :file.open(path, [:raw, :read, :binary])

        for _ <- 1..@reads_each do
          b = :rand.uniform(blocks) - 1
          {:ok, <<^b::little-32, _::binary>>} = :file.pread(f, b * 4096, 4096)
        end

        :file.close(f)
        send(me, :read)
      end)
    end

    BeamBench.Multi.collect(:read, @readers)
    @readers * @reads_each * 1.0e9 / (now() - t0)
  end

  # The file, made once per run of this script: each 4 KiB block starts with its number.
  defp bench_file do
    path = Path.join(System.tmp_dir!(), "beam_bench_#{System.pid()}.dat")

    unless File.exists?(path) do
      System.at_exit(fn _ -> File.rm(path) end)
      {:ok, f} = :file.open(path, [:raw, :write, :binary])

      for b <- 0..(div(@file_bytes, 4096) - 1) do
        :ok = :file.write(f, [<<b::little-32>>, :binary.copy(<<0>>, 4092)])
      end

      :file.close(f)
    end

    path
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
