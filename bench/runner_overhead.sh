#!/usr/bin/env bash
# Measures the runner's own overhead with the simulated agent (release build):
#   exit_to_recorded  time from the agent's exit being seen to its attempt written to the store
#   exit_to_next      time from one agent's exit to the next agent's spawn (no backoff)
#   git_and_tasks     the part of exit_to_next spent in `git rev-parse HEAD` and reading tasks.md
#   flood peak RSS    VmHWM of swr while the agent prints 200 MB
# Usage: bench/runner_overhead.sh [TASKS]   (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."
tasks="${1:-40}"
cargo build --release --quiet
swr="${CARGO_TARGET_DIR:-$PWD/target}/release/swr"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
proj="$tmp/proj"
mkdir -p "$proj/.spec-workflow/specs/bench"
{ echo "# Tasks"; for i in $(seq 1 "$tasks"); do echo "- [ ] $i. Task $i"; done; } \
  > "$proj/.spec-workflow/specs/bench/tasks.md"
git -C "$proj" init -q
git -C "$proj" -c user.name=b -c user.email=b@b.invalid add -A
git -C "$proj" -c user.name=b -c user.email=b@b.invalid commit -qm init
cat > "$tmp/config.json" <<JSON
{"cache_dir": "$tmp/cache", "provider": "sim", "retry_jitter": "none"}
JSON
export HOME="$tmp" XDG_CONFIG_HOME="$tmp/xdg" XDG_CACHE_HOME="$tmp/xdg-cache"
export SWR_SIM_STATE="$tmp/sim-state" SWR_LOG="swr::timing=debug" SWR_NO_PROGRESS_BAR=1
start=$(date +%s.%N)
"$swr" --config "$tmp/config.json" run --project "$proj" --spec bench 2> "$tmp/err" >/dev/null
end=$(date +%s.%N)
stats() { # name field
  grep -o "$2=[0-9]*" "$tmp/err" | cut -d= -f2 | tr -cd '0-9\n'  | sort -n | awk -v name="$1" '
    { v[NR] = $1 } END {
      if (NR == 0) { print name ": no samples"; exit }
      printf "%-18s n=%d  median %.2f ms  p90 %.2f ms  max %.2f ms\n", name, NR,
        v[int((NR + 1) / 2)] / 1000, v[int(NR * 0.9 + 0.5)] / 1000, v[NR] / 1000 }'
}
echo "swr run over $tasks tasks (one agent per task): $(echo "$end - $start" | bc) s in all"
stats exit_to_recorded exit_to_recorded_us
stats exit_to_next exit_to_next_spawn_us
stats git_and_tasks git_and_tasks_us
stats cleanup cleanup_us
stats spawn "[^_]spawn_us"
paste -d' ' <(grep -o "exit_to_next_spawn_us=[0-9]*" "$tmp/err" | cut -d= -f2) \
            <(grep -o "git_and_tasks_us=[0-9]*" "$tmp/err" | cut -d= -f2) \
  | awk '{ print $1 - $2 }' | sort -n \
  | awk '{ v[NR] = $1 } END { if (NR) printf "%-18s n=%d  median %.2f ms  (exit_to_next minus git_and_tasks)\n", "runner_own", NR, v[int((NR + 1) / 2)] / 1000 }'

# Flood: 200 MB from the agent, peak RSS of swr.
rm -f "$tmp/sim-state"
sed -i 's/- \[x\]/- [ ]/' "$proj/.spec-workflow/specs/bench/tasks.md"
SWR_SIM_PLAN="flood:200" "$swr" --config "$tmp/config.json" run --project "$proj" --spec bench \
  --max-iterations 1 >/dev/null 2>&1 &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  kb=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
  sleep 0.05
done
wait "$pid" || true
echo "flood peak RSS     $((peak / 1024)) MB (VmHWM of swr while the agent printed 200 MB)"
