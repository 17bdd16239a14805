#!/usr/bin/env bash
# Measures `swr tui` with N generated projects (default 2000), in tmux:
#   - time to first frame and to the full tree (discovery runs in the background),
#   - idle CPU over 10 s (utime+stime from /proc/PID/stat) and VmRSS,
#   - delay from an agent crash (SIGKILL to the simulated agent) to "Retry: 1/3" on screen.
# Usage: SWR_BIN=target/release/swr bench/tui_idle.sh [N]   (SWR_BIN: any swr binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-2000}
bin=$(realpath "${SWR_BIN:-target/release/swr}")
dir=$(mktemp -d /tmp/swr-tui-bench.XXXXXX)
cfg=$("$here/tui_setup.sh" "$dir" "$n")
# A copy of the binary under $dir: its path is unique, so pgrep finds only our processes.
cp "$bin" "$dir/swr"
bin="$dir/swr"
sock="swr-bench-$$"
tm() { tmux -L "$sock" "$@"; }
screen() { tm capture-pane -p -t b; }
ms() { date +%s%3N; }
# Only our processes, by pid: every one runs the copy of the binary under $dir.
cleanup() {
  tm kill-server 2>/dev/null || true
  for p in $(pgrep -f "^$dir/swr" || true); do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$dir"
}
trap cleanup EXIT

t0=$(ms)
tm new-session -d -s b -x 160 -y 48 \
  "env HOME=$dir/home XDG_CONFIG_HOME=$dir/config XDG_CACHE_HOME=$dir/cache NO_COLOR=1 SWR_SIM_PLAN=hang $bin --config $cfg tui"
until screen | grep -q "Projects"; do sleep 0.005; done
t1=$(ms)
until screen | grep -q "Projects $n "; do sleep 0.01; done
t2=$(ms)
echo "projects:              $n ($((n * 2 - 1)) specs)"
echo "first frame:           $((t1 - t0)) ms after start (tmux polling granularity ~5 ms)"
echo "full tree:             $((t2 - t0)) ms after start"

pid=$(pgrep -f "^$bin --config $cfg tui" | head -1)
sleep 2
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); s0=$(ms)
sleep 10
c1=$(cpu); s1=$(ms)
echo "idle CPU:              $(awk -v d=$((c1 - c0)) -v t="$tck" -v w=$((s1 - s0)) 'BEGIN{printf "%.2f %% of a core (%d ticks in %.1f s)", 100 * d / t / (w / 1000), d, w / 1000}')"
echo "RSS:                   $(awk '/VmRSS/{print $2, $3}' "/proc/$pid/status")"

# Crash to display: start a runner (the plan hangs the agent), then SIGKILL the agent (a SIGSEGV sent by kill is swallowed once by the Rust runtime's handler).
tm send-keys -t b Enter; sleep 0.3
tm send-keys -t b j; sleep 0.3
tm send-keys -t b s
for _ in $(seq 1 300); do
  agent=$(pgrep -f "^$bin sim-agent" | head -1 || true)
  [ -n "$agent" ] && break
  sleep 0.05
done
[ -n "$agent" ] || { echo "no agent started"; screen; exit 1; }
sleep 1
t3=$(ms)
kill -KILL "$agent"
until screen | grep -q "Retry: 1/3"; do sleep 0.005; done
t4=$(ms)
echo "crash -> on screen:    $((t4 - t3)) ms (SIGKILL to the agent until 'Retry: 1/3' is drawn)"
tm send-keys -t b q; sleep 0.3; tm send-keys -t b y
for _ in $(seq 1 200); do pgrep -f "$dir/" > /dev/null || break; sleep 0.1; done
