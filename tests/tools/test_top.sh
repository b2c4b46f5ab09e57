#!/bin/sh
# beamline-top in a real terminal: tmux runs it, attached to a program under
# load (top_load), at a fixed size; the test waits for what the screen must
# show (polling capture-pane, bounded), presses keys and checks the screen
# again.  Everything it starts is stopped on any exit (trap).
#
# Usage: test_top.sh BEAMLINE_TOP TOP_LOAD   (exit 77: tmux missing, skipped)
set -u
TOP=$1
LOAD=$2
if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed: skipped"
    exit 77
fi
dir=$(mktemp -d /tmp/bl_top.XXXXXX)
sock=$dir/ctl.sock
tm="tmux -L bl_top_$$ -f /dev/null"
load_pid=
cleanup() {
    $tm kill-server 2>/dev/null
    if [ -n "$load_pid" ]; then
        kill "$load_pid" 2>/dev/null
        wait "$load_pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $1"
    echo "---- screen ----"
    cat "$dir/screen" 2>/dev/null
    exit 1
}

# Polls the screen until it matches the regular expression $1, within $2 s.
wait_screen() {
    i=0
    while [ "$i" -lt $(($2 * 20)) ]; do
        $tm capture-pane -p -t top > "$dir/screen" 2>/dev/null
        grep -Eq -- "$1" "$dir/screen" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    fail "the screen never showed /$1/"
}

BEAMLINE_CONTROL=$sock BEAMLINE_SCHEDULERS=2 "$LOAD" &
load_pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ "$i" -gt 200 ] && fail "the program never opened $sock"
    kill -0 "$load_pid" 2>/dev/null || fail "the program exited"
    sleep 0.05
done

$tm new-session -d -s top -x 120 -y 40 "$TOP $sock" || fail "tmux could not start"
# The scheduler lines (utilization from two samples) and the server by name.
wait_screen '^0 +[0-9.]+% ' 10
wait_screen '^1 +[0-9.]+% ' 10
wait_screen 'top_load_server +gen_server' 10
wait_screen 'processes 7 ' 10

# m: by queue length; the hoarder and its 100 messages come first, selected.
$tm send-keys -t top m
wait_screen 'sort: queue' 5
wait_screen '^> <0\.[0-9]+\.[0-9]+> +top_load_hoarder +plain +waiting +100 ' 5
# b, then r: the other sorts.
$tm send-keys -t top b
wait_screen 'sort: memory' 5
$tm send-keys -t top r
wait_screen 'sort: reductions' 5
# Down moves the selection off the first row, up brings it back.
$tm send-keys -t top m
wait_screen '^> <0\.[0-9]+\.[0-9]+> +top_load_hoarder' 5
$tm send-keys -t top Down
wait_screen '^  <0\.[0-9]+\.[0-9]+> +top_load_hoarder' 5
$tm send-keys -t top Up
wait_screen '^> <0\.[0-9]+\.[0-9]+> +top_load_hoarder' 5
# Enter: its full info, asked of the process.
$tm send-keys -t top Enter
wait_screen 'answered +yes' 5
wait_screen 'messages n=100' 5
wait_screen 'message from=<0\.[0-9]+\.[0-9]+> tag=40 len=6 data=queued' 5
# Any key: back to the list.
$tm send-keys -t top x
wait_screen 'SWITCH/S' 5
# q: beamline-top ends, and with it the tmux session.
$tm send-keys -t top q
i=0
while $tm has-session -t top 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && fail "beamline-top did not quit"
    sleep 0.05
done
kill "$load_pid"
wait "$load_pid"
rc=$?
load_pid=
[ "$rc" -eq 0 ] || fail "the program exited with $rc"
[ -e "$sock" ] && fail "the socket was left behind"
echo "beamline-top: 1 passed, 0 failed"
exit 0
