#!/usr/bin/env bash
# Runs every e2e case file inside one test-host boot: one results line per
# file ("boot_cases: N passed, N failed (T s)"), then the combined
# "N passed, N failed" as the last line. Exit status non-zero on any failure.
# Usage: tests/e2e/run.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# E2E_CASES="api_cases.sh ..." runs a subset (for working on one file).
read -r -a CASE_FILES <<<"${E2E_CASES:-boot_cases.sh virtio_cases.sh emulated_cases.sh distro_cases.sh api_cases.sh cgroup_cases.sh io_cases.sh snapshot_cases.sh}"

# ---- inside the test host: run the case files, record their counts --------
if [[ ${1:-} == --inside ]]; then
    counts=${RV_RESULTS:?}/e2e-counts
    : >"$counts"
    # relabel NAME: pass the case file's output through, prefix its summary
    # line with NAME and record the counts (or a failure if there was none).
    relabel() {
        local line got=
        while IFS= read -r line; do
            if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
                echo "$1: $line ($((SECONDS - t0)) s)"
                echo "$1 ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" >>"$counts"
                got=1
            else
                printf '%s\n' "$line"
            fi
        done
        [[ -n $got ]] || { echo "$1: ended without a summary line"; echo "$1 0 1" >>"$counts"; }
    }
    for f in "${CASE_FILES[@]}"; do
        t0=$SECONDS
        "$root/tests/e2e/$f" | relabel "${f%.sh}" || true
    done
    exit 0
fi

# ---- on the host -------------------------------------------------------------
build=$(realpath "${1:-$root/build}")
[[ -x "$build/ringvisor" ]] || { echo "e2e: $build/ringvisor not built" >&2; exit 1; }
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$root/tools/testhost/build.sh" >/dev/null
"$root/tools/testhost/l1_qemu.sh" >/dev/null   # once, before the test hosts start side by side
"$root/tools/rootfs/build.sh" "$build/rootfs" >/dev/null
# The decompressed guest kernel, cached here (the test host's root is
# read-only); virtio_cases.sh boots with --kernel-cache.
"$build/ringvisor" prepare-kernel --kernel "$build/guest/vmlinuz" \
    --kernel-cache "$build/kernel-cache" >/dev/null
results="$build/e2e-results"
rm -rf "$results"; mkdir -p "$results"
# Two test hosts of one vCPU each, side by side, each running part of the
# case files. One vCPU per test host because L0's emulated SVM (QEMU's TCG)
# kills L2 guests of any VMM when L1 has two: tools/testhost/README.md,
# "One vCPU per test host". E2E_HOSTS=1 runs every file in one test host.
# 5 GiB per L1 so a 4 GiB guest (RAM split around the PCI hole) fits.
# One attempt each: a test host that fails to boot or dies fails the run.
hosts=${E2E_HOSTS:-2}
groups=()
if ((hosts > 1)); then
    # By their run times in CI (about 10 minutes each).
    a=() b=()
    for f in "${CASE_FILES[@]}"; do
        case $f in cgroup_cases.sh | emulated_cases.sh | api_cases.sh | snapshot_cases.sh) a+=("$f") ;; *) b+=("$f") ;; esac
    done
    ((${#a[@]})) && groups+=("${a[*]}")
    ((${#b[@]})) && groups+=("${b[*]}")
else
    groups=("${CASE_FILES[*]}")
fi
run_host() {  # N "case files": one test host, its output in $results/host-N.out
    local dir=$results/host-$1
    mkdir -p "$dir"
    "$root/tools/testhost/run.sh" --smp 1 --timeout 2400 --mem 5120 --results "$dir" -- \
        env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" ROOTFS="$build/rootfs" \
            E2E_CASES="$2" E2E_NET_TRANSFER="${E2E_NET_TRANSFER:-1}" E2E_E1000_TRANSFER="${E2E_E1000_TRANSFER:-1}" \
        "$root/tests/e2e/run.sh" --inside >"$results/host-$1.out" 2>&1
}
pids=()
for i in "${!groups[@]}"; do
    run_host "$i" "${groups[i]}" &
    pids+=($!)
done
# The test host's own watchdog (two short, mostly idle test hosts on L0).
"$root/tests/e2e/testhost_stall.sh" "$results/testhost-stall" >"$results/testhost-stall.out" 2>&1 &
stall_pid=$!
passed=0 failed=0 host_fails=()
for i in "${!groups[@]}"; do
    rc=0; wait "${pids[i]}" || rc=$?
    cat "$results/host-$i.out"
    read -r -a files <<<"${groups[i]}"
    echo "e2e: console logs in $results/host-$i/e2e-logs" >&2
    while read -r _ p f; do
        passed=$((passed + p)) failed=$((failed + f))
    done < <(cat "$results/host-$i/e2e-counts" 2>/dev/null)
    ran=$(wc -l <"$results/host-$i/e2e-counts" 2>/dev/null || echo 0)
    if ((rc != 0 || ran < ${#files[@]})); then
        # With the test host's own last lines (a timeout's or a death's
        # console tail), which the totals below would otherwise bury.
        host_fails+=("e2e: test host $i failed (exit $rc) after $ran of ${#files[@]} case files; its last lines:
$(tail -n 25 "$results/host-$i.out" | sed 's/^/    # /')")
        failed=$((failed + 1))
    fi
done
wait "$stall_pid" || true
cat "$results/testhost-stall.out"
if [[ $(tail -n 1 "$results/testhost-stall.out") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
else
    host_fails+=("e2e: testhost_stall.sh ended without a summary line")
    failed=$((failed + 1))
fi
# CI shows only the tail of the output: repeat each failure (the FAIL line
# and its log tail) just above the totals.
for out in "$results"/host-*.out "$results/testhost-stall.out"; do
    awk '/^E2E FAIL /{f=1; print; next} f && /^    \| /{print; next} {f=0}' "$out"
done
((${#host_fails[@]} == 0)) || printf '%s\n' "${host_fails[@]}" >&2
echo "$passed passed, $failed failed"
((failed == 0))
