#!/usr/bin/env bash
# Creates a throw-away swr world under $1: HOME, XDG dirs, a config and N projects (default 1)
# under repos/, the first a git repo with a 4-task spec "demo" for the simulated agent.
# Prints the config path. Used by bench/tui_idle.sh and for poking at `swr tui` by hand.
set -euo pipefail
root=${1:?usage: tui_setup.sh DIR [N_PROJECTS]}
n=${2:-1}
mkdir -p "$root"/{home,config,cache,repos}
root=$(cd "$root" && pwd -P)
cat > "$root/config.json" <<JSON
{
  "repos_root": "$root/repos",
  "cache_dir": "$root/cache",
  "provider": "sim",
  "retry_backoff_seconds": 1,
  "retry_jitter": "none",
  "retry_max_retries": 3,
  "stop_grace_seconds": 2,
  "activity_timeout_seconds": 20
}
JSON
tasks='# Tasks

- [ ] 1. Write the module
- [ ] 2. Test it
- [ ] 3. Document it
- [ ] 4. Release it
'
p="$root/repos/app0"
mkdir -p "$p/.spec-workflow/specs/demo"
printf '%s' "$tasks" > "$p/.spec-workflow/specs/demo/tasks.md"
(cd "$p" && git init -q && git -c user.name=t -c user.email=t@t add -A && git -c user.name=t -c user.email=t@t commit -qm init)
for ((i = 1; i < n; i++)); do
  q="$root/repos/app$i/.spec-workflow/specs"
  mkdir -p "$q/alpha" "$q/beta"
  printf '%s' "$tasks" > "$q/alpha/tasks.md"
  printf -- '- [x] 1. done\n- [ ] 2. todo\n' > "$q/beta/tasks.md"
done
echo "$root/config.json"
