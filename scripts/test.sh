#!/usr/bin/env bash
# Runs every test of the solution on this machine, as CI does. Usage: bash scripts/test.sh [extra dotnet test arguments]
# Needs the .NET 10 SDK and NuGet; the build itself makes TorchSharp load on Debian 12 (see README).
# The cluster tests start a private PostgreSQL server of their own on a loopback port: this script
# installs Debian's postgresql package when its server binaries are missing (as root, with apt-get),
# Debian's chromium package for the dashboard's browser test when /usr/bin/chromium is missing, and
# Debian's python3-numpy for the NumPy example's test when /usr/bin/python3 cannot import numpy.
set -euo pipefail
cd "$(dirname "$0")/.."

# install_debian_package PACKAGE WHAT: apt-get install as root, else say what is missing and stop.
install_debian_package() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's $1 package for $2"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "Debian's $1 package is missing ($2): install it, then run this again" >&2
    exit 1
  fi
}

# The cluster tests start a private PostgreSQL server (SWEEP_TEST_POSTGRES points them at another).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${SWEEP_TEST_POSTGRES:-}" ]; then
  install_debian_package postgresql "the cluster tests' PostgreSQL server"
fi
# The NumPy example's test runs examples/numpy-mlp with Debian's Python, the interpreter its spec names.
if ! /usr/bin/python3 -c "import numpy" >/dev/null 2>&1; then
  install_debian_package python3-numpy "the NumPy example's test"
fi
# The dashboard's browser test drives headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
  install_debian_package chromium "the dashboard's browser test"
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
