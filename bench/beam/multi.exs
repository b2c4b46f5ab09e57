# BEAM side of the workloads that keep every scheduler busy at once (many_to_one_call,
# many_to_one_call_partitioned, skynet_1m), and the BENCH_SIZE parameter of the
# size-swept workloads. Loaded by bench.exs; bench/README.md defines the workloads,
# bench/workloads_multi.c and bench/go/multi.go implement the same ones.

# The server of the many_to_one_call workloads: answers :ping (BeamBench.Echo's call),
# with a start_link/1 for PartitionSupervisor's child spec.
defmodule BeamBench.CallServer do
  use GenServer
  def start_link(_arg), do: GenServer.start_link(__MODULE__, 0)
  def init(n), do: {:ok, n}
  def handle_call(:ping, _from, n), do: {:reply, :pong, n}
end

defmodule BeamBench.Multi do
  # Sizes (identical in bench/workloads_multi.c and bench/go/multi.go).
  @m2o_calls 100_000
  @sky_leaves 1_000_000
  @sky_fanout 10
  @sky_sum 499_999_500_000

  defp now, do: :erlang.monotonic_time(:nanosecond)

  # The process or key count of the size-swept workloads (ring_1000x1000, spawn_exit,
  # registry_register, registry_lookup): BENCH_SIZE from the environment (run.py
  # --sweep size=...), else the default. Anything but an integer from 1 to 100,000,000
  # raises, so that no figure is taken at another size than asked for.
  def bench_size(default) do
    case System.get_env("BENCH_SIZE") do
      nil ->
        default

      "" ->
        default

      s ->
        case Integer.parse(s) do
          {n, ""} when n >= 1 and n <= 100_000_000 -> n
          _ -> raise "BENCH_SIZE=#{s} is not a count from 1 to 100000000"
        end
    end
  end

  # 2 x schedulers client processes each make 100k GenServer.calls to one server.
  # Calls per second from the release of the clients to the last one's end.
  def many_to_one_call do
    {:ok, srv} = GenServer.start(BeamBench.CallServer, 0)
    rate = call_storm(fn _i -> srv end)
    GenServer.stop(srv)
    rate
  end

  # The same through a PartitionSupervisor of one server per scheduler: client i looks
  # up the server of key i (partition rem(i, schedulers)) once, before the timing.
  def many_to_one_call_partitioned do
    name = BeamBench.CallPartitions

    {:ok, sup} =
      PartitionSupervisor.start_link(
        name: name,
        partitions: :erlang.system_info(:schedulers_online),
        child_spec: BeamBench.CallServer.child_spec(nil)
      )

    rate = call_storm(fn i -> GenServer.whereis({:via, PartitionSupervisor, {name, i}}) end)
    Supervisor.stop(sup)
    rate
  end

  # The clients are spawned, find their server, say they are ready and wait for :go;
  # where they run is left to the VM (a process cannot be placed on a scheduler).
  defp call_storm(server_for) do
    clients = 2 * :erlang.system_info(:schedulers_online)
    me = self()

    pids =
      for i <- 0..(clients - 1) do
        spawn_link(fn ->
          srv = server_for.(i)
          send(me, :ready)

          receive do
            :go -> :ok
          end

          calls(srv, @m2o_calls)
          send(me, :called)
        end)
      end

    collect(:ready, clients)
    t0 = now()
    Enum.each(pids, &send(&1, :go))
    collect(:called, clients)
    clients * @m2o_calls * 1.0e9 / (now() - t0)
  end

  defp calls(_srv, 0), do: :ok

  defp calls(srv, k) do
    :pong = GenServer.call(srv, :ping)
    calls(srv, k - 1)
  end

  # Receives k messages `tag`, each within 60 s (bench.exs uses it too).
  def collect(_tag, 0), do: :ok

  def collect(tag, k) do
    receive do
      ^tag -> collect(tag, k - 1)
    after
      60_000 -> raise "timed out waiting for #{tag}"
    end
  end

  # The skynet tree: a leaf sends its number, an inner node spawns 10 children over
  # equal slices of its leaves and sends the sum of their answers. ms per run.
  def skynet_1m do
    me = self()
    t0 = now()
    spawn(fn -> skynet(me, 0, @sky_leaves) end)

    sum =
      receive do
        {:sky, s} -> s
      after
        60_000 -> raise "skynet: no answer"
      end

    dt = now() - t0
    if sum != @sky_sum, do: raise("skynet: the sum came out #{sum}")
    dt / 1.0e6
  end

  defp skynet(parent, num, 1), do: send(parent, {:sky, num})

  defp skynet(parent, num, size) do
    me = self()
    sub = div(size, @sky_fanout)

    for i <- 0..(@sky_fanout - 1) do
      spawn(fn -> skynet(me, num + i * sub, sub) end)
    end

    send(parent, {:sky, sky_sum(@sky_fanout, 0)})
  end

  defp sky_sum(0, acc), do: acc
  defp sky_sum(k, acc), do: receive(do: ({:sky, v} -> sky_sum(k - 1, acc + v)))
end
