#!/usr/bin/env bash
# Boot-time and memory-overhead benchmark: ringvisor vs QEMU microvm on the
# same kernel, initramfs, memory and vCPUs, in the same test-host run.
#   bench/boot/run.sh [BUILD_DIR]     (env: RUNS=5 MEM_MIB=256 CPUS=1)
# Prints a markdown table of medians and ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$build/ringvisor" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >&2
results=$build/bench-results
rm -rf "$results"; mkdir -p "$results"
RUNS=${RUNS:-5} MEM_MIB=${MEM_MIB:-256} CPUS=${CPUS:-1}
"$root/tools/testhost/run.sh" --timeout 1800 --results "$results" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" RUNS="$RUNS" MEM_MIB="$MEM_MIB" \
    CPUS="$CPUS" "$root/bench/boot/inside.sh" >&2
raw=$results/bench-boot/raw.txt
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v vmm="$1" -v c="$2" '$1 == vmm && (c == 3 || $5 > 0) { print $c }' "$raw" | median; }
rb=$(col rv 3) zb=$(col rvbz 3) qb=$(col qemu 3)
ro=$(col rv 4) zo=$(col rvbz 4) qo=$(col qemu 4)
echo "| median of $RUNS runs, ${MEM_MIB} MiB, $CPUS vCPU | ringvisor | ringvisor --no-kernel-cache | QEMU microvm | ringvisor / QEMU |"
echo "|---|---|---|---|---|"
awk -v r="$rb" -v z="$zb" -v q="$qb" 'BEGIN { printf "| boot to init (s) | %.2f | %.2f | %.2f | %.2f |\n", r, z, q, r / q }'
awk -v r="$ro" -v z="$zo" -v q="$qo" 'BEGIN { printf "| VMM overhead: peak RSS - guest RAM touched (MiB) | %.1f | %.1f | %.1f | %.2f |\n", r / 1024, z / 1024, q / 1024, r / q }'
