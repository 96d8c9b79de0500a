#!/usr/bin/env bash
# Runs every e2e case file inside one test-host boot and reports
# "N passed, N failed" for them all. Usage: tests/e2e/run.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
[[ -x "$build/ringvisor" ]] || { echo "e2e: $build/ringvisor not built" >&2; exit 1; }
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$root/tools/testhost/build.sh" >/dev/null
results="$build/e2e-results"
rm -rf "$results"; mkdir -p "$results"
# 5 GiB for L1 so a 4 GiB guest (RAM split around the PCI hole) fits.
set +e
RINGVISOR="$build/ringvisor" GUEST="$build/guest" \
    "$root/tools/testhost/run.sh" --timeout 2400 --mem 5120 --results "$results" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" "$root/tests/e2e/boot_cases.sh"
rc=$?
set -e
echo "e2e: console logs in $results/e2e-logs" >&2
exit $rc
