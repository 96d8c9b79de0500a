#!/usr/bin/env bash
# Consolidation: how many idle guests (128 MiB, 1 vCPU, the busybox
# initramfs of tools/guest) ringvisor and QEMU 7.2 each run in one test host
# of a fixed memory size before it runs out of memory, and what each added VM
# costs the host beyond the guest RAM it touched. One test-host session;
# inside.sh says how a ramp runs and ends.
#   bench/consolidation/run.sh [BUILD_DIR]
#   env: L1_MEM_MIB=4096 L1_SMP=2 VMMS="ringvisor qemu" (also qemu-q35) REPS=1
#        MAX_GUESTS=0 (no cap) MEM_MIB=128 FLOOR_MIB=64 START_TIMEOUT=240
#        SETTLE_S=5 BEAT_S=20 RAMP_BUDGET_S=3000 MAX_SESSIONS=3
#        RINGVISOR=BUILD_DIR/ringvisor (measure a copy: others may rebuild)
#        RINGVISOR_DESC="<commit>" (what the binary was built from)
#        OUT=BUILD_DIR/bench-consolidation (wiped first)
# Prints the summary (markdown, report.py); raw data in OUT/consolidation:
# steps.csv, procs.csv, ramps.csv, l1-deaths.csv, env.txt, consoles, each
# session's L1 console.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
RINGVISOR=$(realpath "${RINGVISOR:-$build/ringvisor}")
L1_MEM_MIB=${L1_MEM_MIB:-4096} L1_SMP=${L1_SMP:-2}
VMMS=${VMMS:-ringvisor qemu} REPS=${REPS:-1} MAX_GUESTS=${MAX_GUESTS:-0}
MEM_MIB=${MEM_MIB:-128} FLOOR_MIB=${FLOOR_MIB:-64} START_TIMEOUT=${START_TIMEOUT:-240}
SETTLE_S=${SETTLE_S:-5} BEAT_S=${BEAT_S:-20} RAMP_BUDGET_S=${RAMP_BUDGET_S:-3000} MAX_SESSIONS=${MAX_SESSIONS:-3}
OUT=$(realpath -m "${OUT:-$build/bench-consolidation}")
[[ -x $RINGVISOR ]] || { echo "consolidation: $RINGVISOR not built" >&2; exit 1; }

"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$RINGVISOR" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >&2
# Which ringvisor: say it with RINGVISOR_DESC (e.g. "644883b") when RINGVISOR
# is a copy; by default the tree's HEAD now and the binary's mtime.
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src 2>/dev/null || commit+="+dirty-src"
RINGVISOR_DESC=${RINGVISOR_DESC:-"HEAD at run start $commit, binary of $(date -u -r "$RINGVISOR" +%FT%TZ)"}

rm -rf "$OUT"; mkdir -p "$OUT/consolidation"
nv=$(wc -w <<<"$VMMS")
timeout=$((REPS * nv * (RAMP_BUDGET_S + START_TIMEOUT + 2 * BEAT_S + 200) + 300))
echo "consolidation: test host with --mem $L1_MEM_MIB --smp $L1_SMP (timeout ${timeout} s); VMMS=\"$VMMS\" REPS=$REPS MAX_GUESTS=$MAX_GUESTS guest ${MEM_MIB} MiB floor ${FLOOR_MIB} MiB" >&2
t0=$SECONDS
res=$OUT/consolidation
# A ramp needs all its guests in one L1; when L1 dies (nested emulation,
# tools/testhost/README.md) the ramp it was in is logged in l1-deaths.csv and
# run again from scratch in a new session, at most MAX_SESSIONS sessions.
echo "session,rep,vmm,testhost_exit,console" >"$res/l1-deaths.csv"
for ((session = 1; session <= MAX_SESSIONS; session++)); do
    set +e
    "$root/tools/testhost/run.sh" --mem "$L1_MEM_MIB" --smp "$L1_SMP" --timeout "$timeout" --results "$OUT" -- \
        env RINGVISOR="$RINGVISOR" RINGVISOR_DESC="$RINGVISOR_DESC" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" \
        VMMS="$VMMS" REPS="$REPS" MAX_GUESTS="$MAX_GUESTS" MEM_MIB="$MEM_MIB" FLOOR_MIB="$FLOOR_MIB" \
        START_TIMEOUT="$START_TIMEOUT" SETTLE_S="$SETTLE_S" BEAT_S="$BEAT_S" RAMP_BUDGET_S="$RAMP_BUDGET_S" \
        L1_MEM_MIB="$L1_MEM_MIB" SESSION="$session" OUT="$res" "$root/bench/consolidation/inside.sh" >&2
    rc=$?
    set -e
    echo "consolidation: session $session: test host exited $rc after $((SECONDS - t0)) s" >&2
    cp "$OUT/testhost-console.log" "$res/testhost-console-s$session.log" 2>/dev/null || true
    ((rc == 124 || rc == 125)) && [[ -s $res/current ]] || break
    read -r crep cvmm <"$res/current"
    echo "$session,$crep,$cvmm,$rc,testhost-console-s$session.log" >>"$res/l1-deaths.csv"
    echo "consolidation: L1 died (or timed out) during rep $crep $cvmm; that ramp runs again" >&2
    rm -f "$res/current"
done
python3 "$root/bench/consolidation/report.py" "$res" | tee "$res/summary.md"
exit "$rc"
