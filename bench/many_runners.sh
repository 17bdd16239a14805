#!/usr/bin/env bash
# Many runners on one machine (release build): N `swr run` processes started at once, one
# project each, sharing one state directory, under the default agent cap.
#   wall              from the first start to the last runner's exit
#   peak agents       most attempts running at once (from the store's attempt times)
#   idle timeouts     attempts lost to the idle timeout (goal: none)
#   store errors      runners that failed on the store, or ended other than completed
#   swr CPU / runner  each runner's own user+sys CPU (RUSAGE_SELF; agents excluded)
# Usage: bench/many_runners.sh [N...]   (default: 50 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
swr="${CARGO_TARGET_DIR:-$PWD/target}/release/swr"
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(50 200)

for n in "${counts[@]}"; do
  tmp=$(mktemp -d)
  cat > "$tmp/config.json" <<JSON
{"cache_dir": "$tmp/cache", "provider": "sim", "retry_jitter": "none",
 "activity_timeout_seconds": 20, "retry_backoff_seconds": 1}
JSON
  export HOME="$tmp" XDG_CONFIG_HOME="$tmp/xdg" XDG_CACHE_HOME="$tmp/xdg-cache"
  export SWR_LOG="swr::timing=debug" SWR_NO_PROGRESS_BAR=1
  export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b.invalid
  for i in $(seq 1 "$n"); do
    p="$tmp/p$i"
    mkdir -p "$p/.spec-workflow/specs/s"
    printf '# Tasks\n\n- [ ] 1. one\n- [ ] 2. two\n' > "$p/.spec-workflow/specs/s/tasks.md"
    git -C "$p" init -q && git -C "$p" add -A && git -C "$p" commit -qm init
  done
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$n"); do
    # Each agent works 0.3 s per task, printing as it goes (a real agent is slower still).
    SWR_SIM_PLAN="sleep:0.3,sleep:0.3" SWR_SIM_STATE="$tmp/p$i/.git/sim" \
      "$swr" --config "$tmp/config.json" run --project "$tmp/p$i" --spec s \
      > /dev/null 2> "$tmp/err$i" &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  end=$(date +%s.%N)
  "$swr" --config "$tmp/config.json" history --json > "$tmp/history.json"
  "$swr" --config "$tmp/config.json" status --all --json > "$tmp/status.json"
  python3 - "$tmp" "$n" "$start" "$end" "$failed" <<'PY'
import json, re, sys, glob, datetime
tmp, n, start, end, failed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
h = json.load(open(f"{tmp}/history.json"))
st = json.load(open(f"{tmp}/status.json"))
def ms(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
edges = sorted([(ms(a["started_at"]), 1) for a in h] + [(ms(a["ended_at"]), -1) for a in h if a["ended_at"]])
cur = peak = 0
for _, d in edges:
    cur += d; peak = max(peak, cur)
idle = sum(1 for a in h if a["outcome"] == "idle_timeout")
not_done = sum(1 for r in st if r["status"] != "completed")
store_err = 0
cpu = []
for f in glob.glob(f"{tmp}/err*"):
    text = open(f, errors="replace").read()
    store_err += len(re.findall(r"state store|database is locked|disk is full", text))
    m = re.search(r"cpu_user_us=(\d+) cpu_sys_us=(\d+)", text)
    if m: cpu.append((int(m.group(1)) + int(m.group(2))) / 1000)
cpu.sort()
print(f"{n} runners: wall {end - start:.1f} s, {len(h)} attempts, peak agents {peak}, "
      f"idle timeouts {idle}, store errors {store_err}, not completed {not_done}, exits != 0 {failed}")
if cpu:
    print(f"  swr CPU per runner: median {cpu[len(cpu)//2]:.0f} ms, p90 {cpu[int(len(cpu)*0.9)]:.0f} ms, max {cpu[-1]:.0f} ms")
PY
  rm -rf "$tmp"
done
