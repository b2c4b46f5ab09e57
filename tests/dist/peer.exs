# tests/dist/peer.exs - the Elixir node of tests/dist, driven through stdin and stdout.
#
# It registers :echo, prints "ready", then answers each command line on stdin with
# one line on stdout.  End of input (the test is done, or died) halts the node.
#
# :echo sends {:"$bl", from, tag, data} back to from as {:"$bl", self(), tag, data}
# (a Beamline plain message), and answers {:ping, from, x} with {:pong, x}.  Victims
# (spawn) take part in links, monitors and exits; :exkv is a GenServer to call.
defmodule Peer do
  def echo do
    receive do
      {:"$bl", from, tag, data} when is_pid(from) -> send(from, {:"$bl", self(), tag, data})
      {:ping, from, x} -> send(from, {:pong, x})
      _ -> :ok
    end

    echo()
  end

  # A process registered as name: echoes '$bl' messages, and on "link", "unlink",
  # "monitor" does that to the sender first; {:exit, r} makes it exit with r.  With
  # "trap" it traps exits.  Its EXIT and DOWN messages go to :events.
  def victim(trap) do
    Process.flag(:trap_exit, trap)
    victim_loop()
  end

  def victim_loop do
    receive do
      {:"$bl", from, tag, data} when is_pid(from) ->
        case data do
          "link" -> Process.link(from)
          "unlink" -> Process.unlink(from)
          "monitor" -> Process.monitor(from)
          "exit2 " <> expr -> Process.exit(from, eval(expr))
          _ -> :ok
        end

        send(from, {:"$bl", self(), tag, data})

      {:exit, r} ->
        exit(r)

      {:EXIT, _, r} ->
        send(:events, {:event, "EXIT #{inspect(r)}"})

      {:DOWN, _, :process, _, r} ->
        send(:events, {:event, "DOWN #{inspect(r)}"})

      _ ->
        :ok
    end

    victim_loop()
  end

  def eval(expr), do: elem(Code.eval_string(expr), 0)

  # Sends {:ping, self(), "hello"} to {name, node} and waits for {:pong, x}.
  def cmd(["ping", name, node]) do
    send({String.to_atom(name), String.to_atom(node)}, {:ping, self(), "hello"})

    receive do
      {:pong, x} -> "pong #{x}"
    after
      5000 -> "timeout"
    end
  end


  def cmd(["spawn", name, trap]) do
    Process.register(spawn(fn -> victim(trap == "trap") end), String.to_atom(name))
    "ok"
  end

  def cmd(["exit", name | expr]) do
    send(String.to_atom(name), {:exit, eval(Enum.join(expr, " "))})
    "ok"
  end

  # Monitors {name, node} from a fresh process; its DOWN goes to :events.
  def cmd(["monitor", name, node]) do
    spawn(fn ->
      Process.monitor({String.to_atom(name), String.to_atom(node)})

      receive do
        {:DOWN, _, :process, _, r} -> send(:events, {:event, "DOWN #{inspect(r)}"})
      end
    end)

    "ok"
  end

  # The next EXIT or DOWN a victim got, or "none" after 10 s.
  def cmd(["event"]) do
    send(:events, {:next, self()})

    receive do
      {:event, e} -> e
    after
      10000 -> "none"
    end
  end

  # GenServer.call / cast to {name, node} with an Elixir term; the result, or the exit.
  def cmd(["call", name, node, timeout | expr]) do
    try do
      inspect(
        GenServer.call(
          {String.to_atom(name), String.to_atom(node)},
          eval(Enum.join(expr, " ")),
          String.to_integer(timeout)
        )
      )
    catch
      :exit, {r, _} -> "exit #{inspect(r)}"
    end
  end

  def cmd(["cast", name, node | expr]) do
    GenServer.cast({String.to_atom(name), String.to_atom(node)}, eval(Enum.join(expr, " ")))
    "ok"
  end

  def cmd(["connect", node]), do: "#{Node.connect(String.to_atom(node))}"
  def cmd(["hidden"]), do: Enum.map_join(Node.list(:hidden), " ", &Atom.to_string/1)
  def cmd(_), do: "unknown command"

  def loop do
    case IO.gets("") do
      :eof ->
        System.halt(0)

      {:error, _} ->
        System.halt(0)

      line ->
        IO.puts(cmd(String.split(String.trim(line))))
        loop()
    end
  end
end

# Events queue until asked for, one at a time.
defmodule Events do
  def loop(q, waiting) do
    receive do
      {:event, e} -> deliver(q ++ [e], waiting)
      {:next, pid} -> deliver(q, waiting ++ [pid])
    end
  end

  def deliver([e | q], [pid | w]) do
    send(pid, {:event, e})
    deliver(q, w)
  end

  def deliver(q, w), do: loop(q, w)
end

# An Elixir key-value GenServer, registered as :exkv: {:put, k, v}, {:get, k}, :crash, :slow.
defmodule ExKv do
  use GenServer
  def init(_), do: {:ok, %{}}
  def handle_call({:put, k, v}, _from, s), do: {:reply, :ok, Map.put(s, k, v)}
  def handle_call({:get, k}, _from, s), do: {:reply, Map.get(s, k), s}
  def handle_call(:crash, _from, _s), do: exit(:crashed)
  def handle_call(:whoami, _from, s), do: {:reply, self(), s}
  def handle_call(:slow, _from, s), do: (Process.sleep(3000); {:reply, :late, s})
  def handle_call(other, _from, s), do: {:reply, {:echo, other}, s}
  def handle_cast({:put, k, v}, s), do: {:noreply, Map.put(s, k, v)}
end

{:ok, _} = GenServer.start(ExKv, nil, name: :exkv)
Process.register(spawn(fn -> Events.loop([], []) end), :events)
Process.register(spawn(&Peer.echo/0), :echo)
IO.puts("ready")
Peer.loop()
