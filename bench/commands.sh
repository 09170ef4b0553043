#!/usr/bin/env bash
# How long the read-only commands take on a finished sweep (issue 14: "well under a second").
# Usage: bench/commands.sh [DATA-DIR] [SWEEP-ID]   (default: ./sweep-data and its newest sweep)
# Each command runs three times; its output is checked before its time is printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sweep="$root/src/Orchestrator/bin/Release/net10.0/sweep"
[ -x "$sweep" ] || { echo "build first: dotnet build -c Release Sweep.Actors.sln" >&2; exit 2; }
data="${1:-sweep-data}"
id="${2:-$("$sweep" status --data-dir "$data" | tail -n 1 | cut -d' ' -f1)}"
[ -n "$id" ] || { echo "no sweep in $data" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
check() { # NAME EXPECTED-TEXT FILE
  grep -qF -- "$2" "$3" || { echo "$1: output does not contain '$2'" >&2; cat "$3" >&2; exit 1; }
}
time_of() { # NAME EXPECTED-TEXT ARGS...
  local name="$1" expected="$2"; shift 2
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$sweep" "$@" > "$out/stdout" 2> "$out/stderr"
    end=$(date +%s.%N)
    check "$name" "$expected" "$out/stdout"
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%-28s %s s\n' "$name" "$(printf '%.2f ' "${times[@]}")"
}
time_of "status" "$id" status --data-dir "$data"
time_of "status ID" "trial" status "$id" --data-dir "$data"
time_of "status ID --json" "\"sweepId\"" status "$id" --data-dir "$data" --json
time_of "watch ID (ended sweep)" "$id" watch "$id" --data-dir "$data"
time_of "logs ID" ": completed, test accuracy" logs "$id" --data-dir "$data"
time_of "report ID" "report for sweep $id" report "$id" --data-dir "$data" --out "$out/report"
# The dashboard: from starting the process until it answers the sweep's status.
port=$((20000 + RANDOM % 20000))
times=()
for _ in 1 2 3; do
  start=$(date +%s.%N)
  "$sweep" dashboard --data-dir "$data" --port "$port" > "$out/dash" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/api/sweeps/$id" -o "$out/api.json"; do
    kill -0 "$pid" 2>/dev/null || { echo "dashboard exited:" >&2; cat "$out/dash" >&2; exit 1; }
    sleep 0.01
  done
  end=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" || true
  check "dashboard" "\"sweepId\"" "$out/api.json"
  times+=("$(echo "$end - $start" | bc)")
done
printf '%-28s %s s\n' "dashboard to first answer" "$(printf '%.2f ' "${times[@]}")"
