#!/usr/bin/env bash
# The cluster chaos soak of issue 13, 10-minute version (docs/reliability.md): a `run` node and two
# `sweep worker --journal` nodes with 2 slots each and a `resume --join` standby, on loopback with a
# private PostgreSQL journal, run a synthetic sweep of 1,000 trials while every 20 s a node drawn from
# the seed is killed with kill -9 and replaced 5 s later by a node of the same kind joining a live one.
# It is the test ClusterSoakTests (CI runs its 3-minute version); this runs it longer, asserts the soft
# targets too, and prints the report (also in artifacts/soak/report.md, with every node's console and
# JSON log beside it).
#
#   bash bench/cluster-soak.sh [MINUTES]        (default 10)
#
# Every other parameter is an environment variable the test reads (defaults in brackets):
#   SWEEP_SOAK_KILL_EVERY [20] s, SWEEP_SOAK_REPLACE_AFTER [5] s, SWEEP_SOAK_JOIN [random|oldest],
#   SWEEP_SOAK_SEED [13], SWEEP_SOAK_NODES [run=1,worker=2,standby=1], SWEEP_SOAK_SLOTS [2],
#   SWEEP_SOAK_TRIALS [5x10x(2 per minute)], SWEEP_SOAK_ITERATIONS [160], SWEEP_SOAK_ITERATION_MS [20],
#   SWEEP_SOAK_FINISH_WITHIN [300] s after the window, SWEEP_SOAK_STRICT [1 here, 0 in CI],
#   SWEEP_SOAK_REPORT [artifacts/soak/report.md].
# Needs PostgreSQL's server binaries (bash scripts/test.sh installs Debian's postgresql) or
# SWEEP_TEST_POSTGRES. Follow it while it runs: tail -f artifacts/soak/progress.log
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-${SWEEP_SOAK_MINUTES:-10}}
case $minutes in
  '' | *[!0-9.]* | *.*.*) echo "cluster-soak.sh: MINUTES must be a number, got '$minutes'" >&2; exit 2 ;;
esac
report=$(realpath -m "${SWEEP_SOAK_REPORT:-artifacts/soak/report.md}")
rm -f "$report"

dotnet build tests/Sweep.Orchestrator.Tests -c Release -v quiet -nologo >/dev/null
echo "soak: $minutes min of chaos; follow it with: tail -f $(dirname "$report")/progress.log"
status=0
SWEEP_SOAK_MINUTES=$minutes SWEEP_SOAK_STRICT=${SWEEP_SOAK_STRICT:-1} SWEEP_SOAK_REPORT=$report \
  dotnet test tests/Sweep.Orchestrator.Tests -c Release --no-build --nologo \
  --filter "FullyQualifiedName~Sweep.Orchestrator.Tests.Cluster.ClusterSoakTests" || status=$?
echo
if [ -f "$report" ]; then
  cat "$report"
else
  echo "no report: the soak stopped before it measured anything (see the test's output above)" >&2
  status=1
fi
exit "$status"
