# BEAM anchor for the distribution workloads: two Elixir nodes over loopback.
#
#   ERL_EPMD_PORT=P elixir --sname NAME --cookie COOKIE bench/beam/dist.exs [--out FILE]
#          [--calls N] [--casts N] [--target NODE | --serve]
#
# Needs a distributed node (--sname) and a running epmd (bench/run.py starts a private
# one on port P). Starts a peer node on this host (OTP's :peer, same cookie), loads a
# plain gen_server module into it and registers it as :kv, then measures from here:
#   dist_call_rtt  us per GenServer.call({:kv, peer}, :ping), mean of N calls
#   dist_cast      us per GenServer.cast({:kv, peer}, {:put, i}): N casts, then one call,
#                  whose answer comes after every cast was handled
# and prints {"workloads":[...]} on stdout (and into FILE with --out), as bench.exs does.
# Progress goes to stderr. The peer is stopped before the script ends.
# --target NODE measures against {:kv, NODE} instead (a Beamline node, bench/dist_node.c),
# starting no peer. --serve registers :kv on this node, prints "ready" and runs until
# its stdin closes (the server of Beamline -> Elixir).

defmodule BeamBench.Dist do
  # The server the peer runs: plain gen_server callbacks, nothing of Elixir's library,
  # so that the module loads into a bare peer node.
  def server_module do
    {:module, mod, bin, _} =
      defmodule BeamBench.DistKV do
        def init(_), do: {:ok, 0}
        def handle_call(:ping, _from, n), do: {:reply, :pong, n}
        def handle_call(:count, _from, n), do: {:reply, n, n}
        def handle_cast({:put, _}, n), do: {:noreply, n + 1}
      end

    {mod, bin}
  end

  def serve do
    {mod, _bin} = server_module()
    {:ok, _} = :gen_server.start({:local, :kv}, mod, nil, [])
    IO.puts("ready")
    IO.read(:stdio, :eof)
  end

  def start_peer do
    {mod, bin} = server_module()
    name = :"bench_dist_peer_#{System.unique_integer([:positive])}"
    cookie = Atom.to_charlist(Node.get_cookie())
    {:ok, peer, node} = :peer.start_link(%{name: name, args: [~c"-setcookie", cookie]})
    {:module, ^mod} = :erpc.call(node, :code, :load_binary, [mod, ~c"dist.exs", bin])
    {:ok, _} = :erpc.call(node, :gen_server, :start, [{:local, :kv}, mod, nil, []])
    {peer, node}
  end

  def call_rtt(node, n) do
    :pong = GenServer.call({:kv, node}, :ping)
    t0 = System.monotonic_time(:nanosecond)
    Enum.each(1..n, fn _ -> :pong = GenServer.call({:kv, node}, :ping) end)
    (System.monotonic_time(:nanosecond) - t0) / n / 1000
  end

  def cast(node, n) do
    before = GenServer.call({:kv, node}, :count)
    t0 = System.monotonic_time(:nanosecond)
    Enum.each(1..n, fn i -> GenServer.cast({:kv, node}, {:put, i}) end)
    count = GenServer.call({:kv, node}, :count, 60_000)
    dt = System.monotonic_time(:nanosecond) - t0
    if count - before != n, do: raise("#{count - before} of #{n} casts handled")
    dt / n / 1000
  end
end

{opts, _, _} =
  OptionParser.parse(System.argv(),
    strict: [out: :string, calls: :integer, casts: :integer, target: :string, serve: :boolean]
  )

unless Node.alive?() do
  IO.puts(:stderr, "dist.exs: start me with --sname NAME --cookie COOKIE")
  System.halt(2)
end

if opts[:serve] do
  BeamBench.Dist.serve()
  System.halt(0)
end

{peer, node} =
  case opts[:target] do
    nil -> BeamBench.Dist.start_peer()
    target -> {nil, String.to_atom(target)}
  end

IO.puts(:stderr, "dist: measuring against #{node}")

results =
  try do
    rtt = BeamBench.Dist.call_rtt(node, opts[:calls] || 20_000)
    IO.puts(:stderr, "dist_call_rtt: #{Float.round(rtt, 2)} us")
    cast = BeamBench.Dist.cast(node, opts[:casts] || 1_000_000)
    IO.puts(:stderr, "dist_cast: #{Float.round(cast, 3)} us")
    [%{name: "dist_call_rtt", unit: "us", value: rtt}, %{name: "dist_cast", unit: "us", value: cast}]
  after
    if peer, do: :peer.stop(peer)
  end

json =
  "{\"workloads\":[" <>
    Enum.map_join(results, ",", fn w ->
      "{\"name\":\"#{w.name}\",\"unit\":\"#{w.unit}\",\"value\":#{w.value}}"
    end) <> "]}"

IO.puts(json)
if opts[:out], do: File.write!(opts[:out], json <> "\n")
