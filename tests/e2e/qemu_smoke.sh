#!/usr/bin/env bash
# Smoke test of the e2e recipe with QEMU as the L2 VMM: boot build/guest's
# kernel + initramfs under /dev/kvm inside the test host and run a command.
#   tools/testhost/run.sh -- tests/e2e/qemu_smoke.sh
# (run outside the test host, it re-runs itself through tools/testhost/run.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${RV_TESTHOST:-}" ]]; then
    "$here/../../tools/guest/build.sh" >/dev/null 2>&1 || "$here/../../tools/guest/build.sh"
    exec "$here/../../tools/testhost/run.sh" -- "$here/qemu_smoke.sh" "$@"
fi
. "$here/lib.sh"
cd "$E2E_ROOT"

GUEST=$E2E_ROOT/build/guest
L2_TIMEOUT=${L2_TIMEOUT:-180}

kvm_works() {
    [[ -c /dev/kvm ]] || e2e_fail "/dev/kvm missing in the test host"
    grep -q '^kvm_amd ' /proc/modules || e2e_fail "kvm_amd not loaded"
    ls -l /dev/kvm
}

# boot_l2 KERNEL SMP GUEST-CMD EXPECTED-OUTPUT-REGEX
#   KERNEL: vmlinuz (bzImage) or vmlinux (ELF, PVH entry: no decompression)
boot_l2() {
    local kernel=$1 smp=$2 cmd=$3 expect=$4 log t0 t_init= line rc
    log=$E2E_LOGDIR/l2-console-$kernel-smp$smp.log
    [[ -s $GUEST/$kernel && -s $GUEST/initramfs.cpio.gz ]] ||
        e2e_fail "guest assets missing: run tools/guest/build.sh"
    t0=$EPOCHREALTIME
    set +e
    timeout -k 5 "$L2_TIMEOUT" qemu-system-x86_64 -accel kvm -M microvm,rtc=on -cpu host \
        -smp "$smp" -m 256 -nographic -no-reboot \
        -kernel "$GUEST/$kernel" -initrd "$GUEST/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd_b64 "$cmd")" </dev/null 2>&1 |
    while IFS= read -r line; do
        printf '%s\n' "${line%$'\r'}"
        if [[ -z "$t_init" && "$line" == *RINGVISOR-GUEST-INIT* ]]; then
            t_init=$(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
            echo "L2-TIMING boot-to-init ${t_init} s" >&2
        fi
    done >"$log"
    rc=${PIPESTATUS[0]}
    set -e
    cat "$log"
    echo "L2-TIMING total $(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }') s (qemu exit $rc)"
    ((rc != 124)) || e2e_fail "L2 timed out after $L2_TIMEOUT s"
    grep -q RINGVISOR-GUEST-INIT "$log" || e2e_fail "no RINGVISOR-GUEST-INIT from the guest"
    grep -q 'RINGVISOR-CMD-EXIT=0' "$log" || e2e_fail "no RINGVISOR-CMD-EXIT=0 from the guest"
    grep -qE "$expect" "$log" || e2e_fail "guest output lacks /$expect/"
}

run_case kvm_in_testhost kvm_works
run_case qemu_l2_bzimage boot_l2 vmlinuz 1 'nproc; date' '^1$'
run_case qemu_l2_pvh_smp2 boot_l2 vmlinux 2 'echo nproc=$(nproc)' '^nproc=2$'
for f in "$E2E_LOGDIR"/qemu_l2_*.log; do
    sed -n "s/^L2-TIMING /L2-TIMING $(basename "$f" .log): /p" "$f"
done
e2e_summary
