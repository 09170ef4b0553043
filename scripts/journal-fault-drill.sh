#!/usr/bin/env bash
# Journal-fault drill for docs/reliability.md: runs a 12-trial synthetic sweep, breaks its journal
# mid-sweep in each way below, ROUNDS times each, and measures how long the process took to stop
# after the fault; then resumes it and verifies that every trial's test points (report metrics.csv,
# every column but the timings) equal an uninterrupted run of the same spec, point for point.
# A round whose stop line or numbers are wrong is reported as FAILED (exit code 1).
#
#   sudo bash scripts/journal-fault-drill.sh [ROUNDS]      (root: it mounts a small tmpfs)
#
# Faults: disk-full (a 1200k tmpfs fills up), lock (another connection holds SQLite's write lock
# for longer than SWEEP_JOURNAL_BUSY_RETRY=2s), sigkill (kill -9 of `sweep run`, then resume at once).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dotnet build src/Orchestrator -c Release -v quiet -nologo >/dev/null
sweep=src/Orchestrator/bin/Release/net10.0/sweep
work=$(mktemp -d /tmp/sweep-drill-XXXX)
trap 'umount -l "$work/tiny" 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/spec.conf" <<'EOF'
sweep {
  name = journal-faults
  model = synthetic
  max-iter = 300
  test-interval = 10
  seed = 3
  grid { batch-size = [16, 32, 64], base-lr = [0.005, 0.01, 0.02, 0.04] }
  synthetic { iteration-ms = 6 }
}
EOF

# metrics.csv without the timing columns (seconds, peakMemoryBytes), sorted: what must be identical.
numbers() { cut -d, -f1-7 "$1" | sort; }

"$sweep" run "$work/spec.conf" --sweep-id reference --data-dir "$work/ref" --workers 2 >/dev/null
"$sweep" report reference --data-dir "$work/ref" --out "$work/ref/report" >/dev/null
numbers "$work/ref/report/metrics.csv" > "$work/reference.csv"
points=$(($(wc -l < "$work/reference.csv") - 1))

# wait_for_progress LOG: until the run has shown iteration 100 of some trial.
wait_for_progress() { for _ in $(seq 1 600); do grep -q "iter 100/300" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

failed=0
printf '| fault | round | stop after the fault (s) | exit | stop line | resume | test points equal to the uninterrupted run |\n|---|---|---|---|---|---|---|\n'
for fault in disk-full lock sigkill; do
  for round in $(seq 1 "$rounds"); do
    data="$work/$fault-$round"
    env=()
    case $fault in
      disk-full)
        mkdir -p "$work/tiny"; umount -l "$work/tiny" 2>/dev/null || true
        mount -t tmpfs -o size=1200k tmpfs "$work/tiny"; data="$work/tiny/d" ;;
      lock) env=(SWEEP_JOURNAL_BUSY_RETRY=2s) ;;
    esac
    env "${env[@]}" "$sweep" run "$work/spec.conf" --sweep-id drill --data-dir "$data" --workers 2 > "$work/run.log" 2>&1 &
    pid=$!
    start=""
    case $fault in
      disk-full) start=$(date +%s.%N) ;; # the disk fills up within the first seconds
      lock)
        wait_for_progress "$work/run.log"
        python3 - "$data/journal.db" <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
time.sleep(30)
EOF
        locker=$!; start=$(date +%s.%N) ;;
      sigkill) wait_for_progress "$work/run.log"; start=$(date +%s.%N); kill -9 $pid ;;
    esac
    code=0; wait $pid || code=$?
    stop=$(echo "$(date +%s.%N) - $start" | bc)
    [ "$fault" = lock ] && kill $locker 2>/dev/null && wait $locker 2>/dev/null || true
    last=$(tail -n 1 "$work/run.log")
    line=ok
    case $fault in
      disk-full) [[ $code == 1 && $last == "journal $data/journal.db: disk full (SQLite error 13: database or disk is full); nothing was lost, free space and run: sweep resume drill --data-dir $data" ]] || line=WRONG ;;
      lock) [[ $code == 1 && $last == "journal $data/journal.db: the database stayed locked by another process"*"and run: sweep resume drill --data-dir $data" ]] || line=WRONG ;;
      sigkill) [[ $code == 137 ]] || line=WRONG ;;
    esac
    grep -q "   at " "$work/run.log" && line="WRONG (stack trace)"
    [ "$fault" = disk-full ] && mount -o remount,size=64m "$work/tiny"
    resume=0; "$sweep" resume drill --data-dir "$data" --workers 2 > "$work/resume.log" 2>&1 || resume=$?
    "$sweep" report drill --data-dir "$data" --out "$work/report" >/dev/null 2>&1 || true
    equal=no
    if [ -f "$work/report/metrics.csv" ] && cmp -s <(numbers "$work/report/metrics.csv") "$work/reference.csv"; then equal="yes ($points of $points)"; fi
    rm -rf "$work/report"
    [[ $line == ok && $resume == 0 && $equal == yes* ]] || { failed=1; equal="$equal FAILED"; }
    printf '| %s | %s | %.1f | %s | %s | exit %s | %s |\n' "$fault" "$round" "$stop" "$code" "$line" "$resume" "$equal"
    [ "$fault" = disk-full ] && umount -l "$work/tiny"
  done
done
exit $failed
