#!/usr/bin/env bash
# Runs every test of the solution on this machine, as CI does. Usage: bash scripts/test.sh [extra dotnet test arguments]
# Needs the .NET 10 SDK and NuGet; the build itself makes TorchSharp load on Debian 12 (see README).
# The cluster tests start a private PostgreSQL server of their own on a loopback port: this script
# installs Debian's postgresql package when its server binaries are missing (as root, with apt-get),
# and Debian's chromium package for the dashboard's browser test when /usr/bin/chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${SWEEP_TEST_POSTGRES:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian's postgresql package) for the cluster tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: install Debian's postgresql package (or set SWEEP_TEST_POSTGRES)" >&2
    exit 1
  fi
fi

# The dashboard's browser test drives headless Chromium: Debian's chromium package, installed the same way.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium (Debian's chromium package) for the dashboard's browser test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "/usr/bin/chromium is missing: install Debian's chromium package for the dashboard's browser test" >&2
    exit 1
  fi
fi

results=artifacts/test-results
rm -rf "$results"
status=0
# One test project at a time: the projects train LeNet and start whole clusters of processes, and
# on two cores they would otherwise starve each other's heartbeats.
dotnet build Sweep.Actors.sln -c Release
for project in tests/*/*.csproj; do
  dotnet test "$project" -c Release --no-build --logger "trx" --results-directory "$results" "$@" || status=$?
done

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
