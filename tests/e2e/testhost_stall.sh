#!/usr/bin/env bash
# The test host's own watchdog (tools/testhost/run.sh, RV_L1_STALL): runs on
# L0, not inside the test host, since it boots test hosts itself.
#   - a command that runs longer than RV_L1_STALL is not stopped: L1's
#     heartbeat keeps the watchdog quiet;
#   - an L1 whose vCPUs stop (QEMU's monitor `stop`, which is what a wedged
#     nested emulation looks like from L0: no instruction of L1 runs) is
#     stopped after RV_L1_STALL seconds with exit 124, "L1 STOPPED", and
#     the vCPUs' registers in testhost-stopped.txt.
# Prints E2E PASS/FAIL lines and "N passed, N failed" (tests/e2e/run.sh).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
passed=0 failed=0
pass() { echo "E2E PASS $1"; passed=$((passed + 1)); }
fail() {
    echo "E2E FAIL $1: $2"
    [[ -f "$3" ]] && tail -n 15 "$3" | sed 's/^/    | /'
    failed=$((failed + 1))
}

# 1. Heartbeat: 50 s of quiet work with RV_L1_STALL=30 ends normally.
res=$out/alive
rc=0
RV_L1_STALL=30 "$root/tools/testhost/run.sh" --smp 1 --mem 1024 --timeout 300 --results "$res" \
    -- sh -c 'sleep 50; echo quiet-done' >"$out/alive.out" 2>&1 || rc=$?
if ((rc == 0)) && grep -q '^quiet-done$' "$out/alive.out" && ! grep -q 'L1 STOPPED' "$out/alive.out"; then
    pass testhost_heartbeat_keeps_a_quiet_command_running
else
    fail testhost_heartbeat_keeps_a_quiet_command_running "exit $rc" "$out/alive.out"
fi

# 2. Stopped vCPUs: the watchdog saves their state and ends the run.
res=$out/stopped
sockdir=$(mktemp -d "${TMPDIR:-/tmp}/rv-mon.XXXXXX")   # short: a Unix socket path
trap 'rm -rf "$sockdir"' EXIT
sock=$sockdir/monitor.sock
rc=0 t0=$SECONDS
RV_L1_STALL=20 RV_L1_MONITOR=$sock "$root/tools/testhost/run.sh" --smp 1 --mem 1024 --timeout 600 \
    --results "$res" -- sh -c 'sleep 500; echo not-stopped' >"$out/stopped.out" 2>&1 &
pid=$!
# Once the command runs (the heartbeat file exists), stop L1's vCPUs.
for _ in $(seq 120); do [[ -e "$res/.rv-alive" ]] && break; sleep 1; done
python3 - "$sock" <<'EOF' || echo "testhost_stall: could not send stop to $sock" >>"$out/stopped.out"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.5)
s.sendall(b"stop\n")
time.sleep(0.5)
EOF
wait "$pid" || rc=$?
took=$((SECONDS - t0))
state=$res/testhost-stopped.txt
if ((rc == 124)) && grep -q 'L1 STOPPED' "$out/stopped.out" && ! grep -q not-stopped "$out/stopped.out" &&
    grep -q 'paused' "$state" && grep -q 'RIP=' "$state" && ((took < 200)); then
    pass testhost_watchdog_reports_a_stopped_l1
else
    fail testhost_watchdog_reports_a_stopped_l1 "exit $rc after $took s; state file: $(wc -l <"$state" 2>/dev/null || echo none) lines" "$out/stopped.out"
fi
echo "$passed passed, $failed failed"
((failed == 0))
