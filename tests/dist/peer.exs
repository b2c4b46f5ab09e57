# tests/dist/peer.exs - the Elixir node of tests/dist, driven through stdin and stdout.
#
# It registers :echo, prints "ready", then answers each command line on stdin with
# one line on stdout.  End of input (the test is done, or died) halts the node.
#
# :echo sends {:"$bl", from, tag, data} back to from as {:"$bl", self(), tag, data}
# (a Beamline plain message), and answers {:ping, from, x} with {:pong, x}.
defmodule Peer do
  def echo do
    receive do
      {:"$bl", from, tag, data} when is_pid(from) -> send(from, {:"$bl", self(), tag, data})
      {:ping, from, x} -> send(from, {:pong, x})
      _ -> :ok
    end

    echo()
  end

  # Sends {:ping, self(), "hello"} to {name, node} and waits for {:pong, x}.
  def cmd(["ping", name, node]) do
    send({String.to_atom(name), String.to_atom(node)}, {:ping, self(), "hello"})

    receive do
      {:pong, x} -> "pong #{x}"
    after
      5000 -> "timeout"
    end
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

Process.register(spawn(&Peer.echo/0), :echo)
IO.puts("ready")
Peer.loop()
