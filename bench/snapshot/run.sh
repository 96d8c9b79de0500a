#!/usr/bin/env bash
# Snapshot, restore and live-migration benchmark: ringvisor beside QEMU
# (microvm) on the same guest in one test-host session (bench/snapshot/inside.sh
# says what is measured and how). Not a CI test: published in docs/BENCHMARKS.md.
#   bench/snapshot/run.sh [BUILD_DIR]   (env: RUNS=3 MEM_MIB=512 DIRTY_RATES="0 10 50 200")
# Prints markdown tables: medians with min-max.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$root/tools/testhost/build.sh" >/dev/null
"$build/ringvisor" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >/dev/null
results=$build/bench-results-snapshot
rm -rf "$results"; mkdir -p "$results"
RUNS=${RUNS:-3} MEM_MIB=${MEM_MIB:-512} DIRTY_RATES=${DIRTY_RATES:-0 10 50 200}
"$root/tools/testhost/run.sh" --smp 1 --mem $((MEM_MIB * 3 + 1024)) --timeout 3600 --results "$results" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" RUNS="$RUNS" \
    MEM_MIB="$MEM_MIB" DIRTY_RATES="$DIRTY_RATES" "$root/bench/snapshot/inside.sh" >&2
python3 "$root/bench/snapshot/report.py" "$results/bench-snapshot/raw.txt" "$RUNS" "$MEM_MIB"
