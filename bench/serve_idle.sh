#!/usr/bin/env bash
# Measures `swr serve` with N generated projects (default 2000) and no runners:
#   - time of GET /api/projects (discovery and progress of every spec, what the dashboard loads),
#   - idle CPU over 10 s (utime+stime from /proc/PID/stat) with no client, then with a
#     dashboard's live stream (/api/events) open, and VmRSS,
#   - delay from `swr queue add` to the runner running, as /api/runners reports it.
# Usage: SWR_BIN=target/release/swr bench/serve_idle.sh [N]   (SWR_BIN: any swr binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-2000}
bin=$(realpath "${SWR_BIN:-target/release/swr}")
unset SWR_BIN
dir=$(mktemp -d /tmp/swr-serve-bench.XXXXXX)
cfg=$("$here/tui_setup.sh" "$dir" "$n")
# A copy of the binary under $dir: its path is unique, so pgrep finds only our processes.
cp "$bin" "$dir/swr"
bin="$dir/swr"
export HOME=$dir/home XDG_CONFIG_HOME=$dir/config XDG_CACHE_HOME=$dir/cache NO_COLOR=1 SWR_SIM_PLAN=hang
ms() { date +%s%3N; }
cleanup() {
  [ -n "${sse:-}" ] && kill "$sse" 2>/dev/null || true
  # SIGTERM: the service stops the runners it started, then exits.
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do pgrep -f "^$dir/swr" > /dev/null || break; sleep 0.1; done
  for p in $(pgrep -f "^$dir/swr" || true); do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin" --config "$cfg" serve --listen 127.0.0.1:0 2> "$dir/serve.err" &
pid=$!
for _ in $(seq 1 200); do grep -q "listening on" "$dir/serve.err" && break; sleep 0.05; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/serve.err" | head -1)
[ -n "$base" ] || { echo "swr serve did not start:"; cat "$dir/serve.err"; exit 1; }

t0=$(ms)
specs=$(curl -sf "$base/api/projects" | grep -o '"spec":' | wc -l)
t1=$(ms)
echo "projects:              $n ($specs specs)"
echo "GET /api/projects:     $((t1 - t0)) ms (discovery and progress of every spec)"

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
idle() {
  sleep 2
  local c0 s0 c1 s1
  c0=$(cpu); s0=$(ms)
  sleep 10
  c1=$(cpu); s1=$(ms)
  awk -v d=$((c1 - c0)) -v t="$tck" -v w=$((s1 - s0)) 'BEGIN{printf "%.2f %% of a core (%d ticks in %.1f s)", 100 * d / t / (w / 1000), d, w / 1000}'
}
echo "idle CPU, no client:   $(idle)"
curl -sN "$base/api/events" > /dev/null &
sse=$!
echo "idle CPU, live page:   $(idle)"
echo "RSS:                   $(awk '/VmRSS/{print $2, $3}' "/proc/$pid/status")"

t2=$(ms)
"$bin" --config "$cfg" queue add -p "$dir/repos/app0" -s demo > /dev/null
until curl -sf "$base/api/runners?active=true" | grep -q '"status":"running"'; do sleep 0.01; done
t3=$(ms)
echo "queue add -> running:  $((t3 - t2)) ms (until /api/runners shows it; includes the CLI's own start)"
