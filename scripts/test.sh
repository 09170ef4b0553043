#!/usr/bin/env bash
# Runs every test of the solution on this machine, as CI does. Usage: bash scripts/test.sh [extra dotnet test arguments]
# Needs only the .NET 10 SDK and NuGet; the build itself makes TorchSharp load on Debian 12 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

results=artifacts/test-results
rm -rf "$results"
status=0
dotnet test Sweep.Actors.sln -c Release --logger "trx" --results-directory "$results" "$@" || status=$?

# One plain closing line over all test projects, whatever the runner printed above it.
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { printf '%s' "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(get passed))); failed=$((failed + $(get failed)))
  skipped=$((skipped + $(get notExecuted)))
done
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
