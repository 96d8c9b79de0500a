#!/usr/bin/env bash
# Guest deaths under I/O load, counted per VMM: boots the Debian 12 guest
# (tools/rootfs: systemd, root on virtio-blk, a data disk) under ringvisor and
# under QEMU, alternating, RUNS times per workload, in one test-host session,
# and counts how each workload ended (bench/stress/inside.sh says what counts
# as a death; the workloads that share a spec share a boot). Not a CI test: a measurement, published in docs/BENCHMARKS.md.
#   bench/stress/run.sh [BUILD_DIR]
# Environment: RUNS (20), WORKLOADS (all: see workloads.sh), VMMS
# ("ringvisor qemu"), OUT (BUILD_DIR/stress-<date>), L2_TIMEOUT (1200 s, one boot),
# MAX_SESSIONS (3: a new test host continues where a dead one stopped),
# RV_EXTRA (more ringvisor options), RINGVISOR (the binary to measure;
# default BUILD_DIR/ringvisor); on the test host: L1_THP (never|madvise|always;
# the test host's default is never), L1_COMPACTION (vm.compaction_proactiveness;
# default 0), L1_CHURN=compact with CHURN_S (see inside.sh), L1_SMP (L1's
# vCPUs, default 2; the e2e suite uses 1: tools/testhost/README.md).
# Prints a table: workload, VMM, runs, deaths (incl. hangs), corrupt, failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
out=$(realpath -m "${OUT:-$build/stress-$(date -u +%Y%m%d-%H%M%S)}")
MAX_SESSIONS=${MAX_SESSIONS:-3}
RINGVISOR=$(realpath "${RINGVISOR:-$build/ringvisor}")
[[ -x $RINGVISOR ]] || { echo "stress: $RINGVISOR not built (make build)" >&2; exit 1; }
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$root/tools/rootfs/build.sh" "$build/rootfs" >/dev/null
"$root/tools/testhost/build.sh" >/dev/null
"$RINGVISOR" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >/dev/null
mkdir -p "$out"
. "$root/bench/stress/workloads.sh"
read -r -a workloads <<<"${WORKLOADS:-${STRESS_WORKLOADS[*]}}"
read -r -a vmms <<<"${VMMS:-ringvisor qemu}"
expected=$(( ${#workloads[@]} * ${#vmms[@]} * ${RUNS:-20} ))
# Runs recorded for the chosen workloads and VMMs (a results.csv may also
# hold rows of other VMMs or workloads from earlier invocations).
done_runs() {
    [[ -s $out/results.csv ]] || { echo 0; return; }
    awk -F, -v w=" ${workloads[*]} " -v v=" ${vmms[*]} " -v n="${RUNS:-20}" \
        'NR > 1 && index(w, " " $2 " ") && index(v, " " $3 " ") && $4 <= n { c++ } END { print c + 0 }' "$out/results.csv"
}
# Sessions are numbered on from the last one recorded, so rows of a resumed
# invocation (perhaps with another binary: env.txt says which) stay apart.
first=$( [[ -s $out/results.csv ]] && awk -F, 'NR > 1 && $1 > m { m = $1 } END { print m + 1 }' "$out/results.csv" || echo 1)

for ((s = first; s < first + MAX_SESSIONS; s++)); do
    # A timeout per session: every run's L2 limit plus boot slack.
    per=$(( ${L2_TIMEOUT:-1200} + 90 ))
    set +e
    "$root/tools/testhost/run.sh" --smp "${L1_SMP:-2}" --mem 4096 ${L1_COMPACTION:+--append rv.compaction=$L1_COMPACTION} --timeout $(( (expected - $(done_runs)) * per + 300 )) \
        --results "$out" -- env SESSION="$s" OUT="$out" RINGVISOR="$RINGVISOR" \
        GUEST="$build/guest" ROOTFS="$build/rootfs" KERNEL_CACHE="$build/kernel-cache" \
        RUNS="${RUNS:-20}" WORKLOADS="${workloads[*]}" VMMS="${vmms[*]}" \
        L2_TIMEOUT="${L2_TIMEOUT:-1200}" RV_EXTRA="${RV_EXTRA:-}" L1_THP="${L1_THP:-}" \
        L1_CHURN="${L1_CHURN:-}" CHURN_S="${CHURN_S:-1}" "$root/bench/stress/inside.sh"
    rc=$?
    set -e
    mv "$out/testhost-console.log" "$out/testhost-console-$s.log" 2>/dev/null || true
    if [[ -s $out/current ]]; then
        read -r w v r <"$out/current"; rm -f "$out/current"
        if ((rc == 124 || rc == 125)); then
            # The run that was going when the test host died or wedged.
            echo "$s,$w,$v,$r,l1-died,0,the test host died (exit $rc) during this run" >>"$out/results.csv"
        else
            echo "stress: the harness failed (exit $rc) during $w $v run $r: see above" >&2; exit 1
        fi
    fi
    (($(done_runs) < expected)) || break
    echo "stress: session $s ended (exit $rc) after $(done_runs) of $expected runs; starting another" >&2
done

echo "results: $out/results.csv"
awk -F, 'NR > 1 {
        k = $2 "," $3; if (!(k in runs)) keys[++n] = k; runs[k]++
        if ($5 == "death" || $5 == "hang" || $5 == "l1-died") d[k]++
        if ($5 == "slow") sl[k]++
        if ($5 == "corrupt") c[k]++
        if ($5 == "fail") f[k]++ }
    END {
        printf "%-16s %-10s %5s %7s %8s %7s %5s\n", "workload", "vmm", "runs", "deaths", "corrupt", "failed", "slow"
        for (i = 1; i <= n; i++) { k = keys[i]; split(k, p, ",")
            printf "%-16s %-10s %5d %7d %8d %7d %5d\n", p[1], p[2], runs[k], d[k], c[k], f[k], sl[k] } }' "$out/results.csv"
