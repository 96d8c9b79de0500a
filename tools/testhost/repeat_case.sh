#!/usr/bin/env bash
# Runs one e2e case N times per VMM in one test-host session, alternating the
# VMMs, and counts how the runs ended. A measurement for the nested-SVM
# faults (tools/testhost/README.md, "One vCPU per test host"), not a test.
#   tools/testhost/repeat_case.sh [--smp N] CASE_FILE CASE [BUILD_DIR]
#   e.g. tools/testhost/repeat_case.sh --smp 1 emulated_cases.sh e1000_ping_and_transfer
# Environment: N (runs per VMM, default 6), VMMS ("ringvisor qemu"; QEMU works
# for the cases of virtio_cases.sh and emulated_cases.sh), OUT (results;
# default BUILD_DIR/repeat-CASE). Per run: OUT/VMM-I/ holds the case's logs
# (and L1's KVM trace when it failed); OUT/summary one line per run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
N=${N:-6} VMMS=${VMMS:-ringvisor qemu}

if [[ ${1:-} == --inside ]]; then
    shift
    file=$1 case=$2 out=${RV_RESULTS:?}
    for ((i = 1; i <= N; i++)); do
        for v in $VMMS; do
            t0=$SECONDS
            line=$(VIRTIO_VMM=$v E2E_LOGDIR=$out/$v-$i "$root/tests/e2e/$file" "$case" 2>&1 | grep -a '^E2E ' || true)
            echo "run $i $v $((SECONDS - t0)) s: ${line:-no result}" | tee -a "$out/summary"
        done
    done
    exit 0
fi

smp=2
[[ ${1:-} == --smp ]] && { smp=$2; shift 2; }
(($# >= 2)) || { sed -n '5,6p' "$0" >&2; exit 2; }
file=$1 case=$2
build=$(realpath "${3:-$root/build}")
[[ -x $root/tests/e2e/$file ]] || { echo "repeat_case: no tests/e2e/$file" >&2; exit 2; }
out=$(realpath -m "${OUT:-$build/repeat-$case}")
mkdir -p "$out"; : >"$out/summary"
"$root/tools/testhost/run.sh" --smp "$smp" --timeout 20000 --results "$out" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" \
        ROOTFS="$build/rootfs" N="$N" VMMS="$VMMS" \
    "$root/tools/testhost/repeat_case.sh" --inside "$file" "$case" || true
for v in $VMMS; do
    echo "$v: $(grep -c " $v .*E2E PASS" "$out/summary" || true) passed, $(grep " $v " "$out/summary" | grep -vc "E2E PASS" || true) did not, of $N"
done
