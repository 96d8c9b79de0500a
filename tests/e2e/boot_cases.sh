#!/usr/bin/env bash
# End-to-end boot cases for ringvisor, run inside the test host (one L1 boot
# serves them all). Each case boots the Debian kernel with the busybox
# initramfs under ringvisor and checks what the guest reports.
#   tests/e2e/run.sh            (from the host: builds assets, boots L1, runs this)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$E2E_ROOT"

RINGVISOR=${RINGVISOR:-$E2E_ROOT/build/ringvisor}
GUEST=${GUEST:-$E2E_ROOT/build/guest}
L2_TIMEOUT=${L2_TIMEOUT:-240}

# rv_boot LOG CPUS MEMORY 'guest command' [extra kernel args]: boots a guest,
# console output to LOG (stdout+stderr), returns ringvisor's exit status.
# RV_ARGS: more `run` options; RV_VERBOSE=1: ringvisor -v (VMM events on stderr).
rv_boot() {
    local log=$1 cpus=$2 mem=$3 cmd=$4 extra=${5:-}
    # shellcheck disable=SC2086  # one word per option
    timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" ${RV_VERBOSE:+-v} run ${RV_ARGS:-} --kernel "$GUEST/vmlinuz" \
        --initrd "$GUEST/initramfs.cpio.gz" --cpus "$cpus" --memory "$mem" \
        --cmdline "console=ttyS0 panic=-1 quiet $extra rv.cmd=$(guest_cmd_b64 "$cmd")" \
        </dev/null >"$log" 2>&1
}

# The value printed by the guest as KEY=value.
guest_value() { grep -a -o "$2=[^[:space:]]*" "$1" | tail -n 1 | cut -d= -f2 | tr -d '\r'; }

expect_clean_exit() {  # LOG STATUS
    [[ $2 -eq 0 ]] || e2e_fail "ringvisor exited $2: $(tail -n 3 "$1" | tr -d '\r')"
    grep -aq RINGVISOR-GUEST-INIT "$1" || e2e_fail "guest never reached init"
    grep -aq "RINGVISOR-CMD-EXIT=0" "$1" || e2e_fail "guest command failed"
}

case_cpus() {  # N
    local log=$E2E_LOGDIR/cpus-$1.console rc=0
    rv_boot "$log" "$1" 256M 'echo NPROC=$(nproc)' || rc=$?
    expect_clean_exit "$log" $rc
    local n; n=$(guest_value "$log" NPROC)
    [[ "$n" == "$1" ]] || e2e_fail "guest sees $n CPUs, expected $1"
    echo "nproc=$n"
}

case_memory() {  # SIZE-MiB: the kernel's "Memory: avail/total" total must match
    local mib=$1 log=$E2E_LOGDIR/memory-$1.console rc=0
    rv_boot "$log" 1 "${mib}M" 'echo TOTALK=$(dmesg | sed -n "s|.*Memory: [0-9]*K/\([0-9]*\)K.*|\1|p")' || rc=$?
    expect_clean_exit "$log" $rc
    local total; total=$(guest_value "$log" TOTALK)
    [[ -n "$total" ]] || e2e_fail "no Memory: line from the guest"
    local want=$((mib * 1024))
    # The kernel counts usable RAM: the 384 KiB legacy hole below 1 MiB and
    # the first page are not. Allow 1 MiB.
    ((total <= want && total >= want - 1024)) ||
        e2e_fail "guest has ${total} KiB of RAM, expected about ${want} KiB"
    grep -aq "MemTotal" /proc/meminfo
    echo "guest RAM ${total} KiB for --memory ${mib}M"
}

case_date() {
    local log=$E2E_LOGDIR/date.console rc=0 host guest
    rv_boot "$log" 1 128M 'echo GUEST_EPOCH=$(date +%s)' || rc=$?
    host=$(date +%s)
    expect_clean_exit "$log" $rc
    guest=$(guest_value "$log" GUEST_EPOCH)
    [[ "$guest" =~ ^[0-9]+$ ]] || e2e_fail "no date from the guest"
    # The guest printed its date at most L2_TIMEOUT ago and never in the future.
    ((guest <= host + 2 && host - guest <= 60)) ||
        e2e_fail "guest date $(date -ud @"$guest") vs host $(date -ud @"$host")"
    echo "guest $(date -ud @"$guest"), host $(date -ud @"$host")"
}

case_poweroff() {
    local log=$E2E_LOGDIR/poweroff.console rc=0
    rv_boot "$log" 1 128M 'poweroff -f' || rc=$?
    [[ $rc -eq 0 ]] || e2e_fail "poweroff: ringvisor exited $rc"
    grep -aq "Power down" "$log" || e2e_fail "guest did not power down"
}

case_reboot() {
    local log=$E2E_LOGDIR/reboot.console rc=0
    rv_boot "$log" 1 128M 'reboot -f' || rc=$?
    [[ $rc -eq 0 ]] || e2e_fail "reboot -f: ringvisor exited $rc"
    grep -aq "reboot: Restarting system" "$log" || e2e_fail "guest did not restart"
}

# reboot=KIND: each way Linux resets the machine ends the VM with status 0
# and says which one it was (-v: "guest stopped: ...").
case_reboot_via() {  # KIND EXPECTED-MESSAGE
    local log=$E2E_LOGDIR/reboot-$1.console rc=0
    RV_VERBOSE=1 rv_boot "$log" 1 128M 'reboot -f' "reboot=$1" || rc=$?
    [[ $rc -eq 0 ]] || e2e_fail "reboot=$1: ringvisor exited $rc"
    grep -aq "guest stopped: $2" "$log" ||
        e2e_fail "reboot=$1: expected '$2', got: $(grep -a 'guest stopped' "$log" | tr -d '\r')"
    grep -a "guest stopped" "$log" | tr -d '\r'
}

# A triple fault the guest did not ask for is a crash: status 4, naming the
# vCPU, with the crash report. reboot=t makes Linux reset by triple fault,
# the one way to produce one at will; --on-triple-fault=reset takes it as a
# reboot.
case_triple_fault() {
    local log=$E2E_LOGDIR/triple-fault.console rc=0
    rv_boot "$log" 2 128M 'reboot -f' 'reboot=t' || rc=$?
    [[ $rc -eq 4 ]] || e2e_fail "triple fault: ringvisor exited $rc, expected 4"
    grep -aq "ringvisor: guest crashed: vCPU [01]: triple fault" "$log" ||
        e2e_fail "no 'guest crashed: vCPU N: triple fault' message"
    grep -aq "crash report: vCPU 1: " "$log" || e2e_fail "no crash report for the other vCPU"
    grep -a -E "guest crashed|crash report" "$log" | head -n 6 | tr -d '\r'
    local log2=$E2E_LOGDIR/triple-fault-reset.console
    rc=0
    RV_ARGS=--on-triple-fault=reset rv_boot "$log2" 1 128M 'reboot -f' 'reboot=t' || rc=$?
    [[ $rc -eq 0 ]] || e2e_fail "--on-triple-fault=reset: ringvisor exited $rc, expected 0"
}

# The CPU the guest sees is consistent: CPUID leaf 0xD agrees with the XCR0
# the guest enables, so Linux keeps XSAVE (and AVX where the host has it).
case_xsave() {
    local log=$E2E_LOGDIR/xsave.console rc=0
    rv_boot "$log" 2 256M 'dmesg | grep -E "x86/fpu|XSAVE"; grep -o -w -E "xsave|avx" /proc/cpuinfo | sort -u | tr "\n" " "; echo' || rc=$?
    expect_clean_exit "$log" $rc
    ! grep -aq "XSAVE consistency problem" "$log" || e2e_fail "$(grep -a 'XSAVE consistency' "$log" | tr -d '\r')"
    grep -aq "x86/fpu: Enabled xstate features" "$log" || e2e_fail "the guest did not enable XSAVE"
    grep -a -E "x86/fpu: Enabled|xsave" "$log" | tr -d '\r'
}

case_panic() {
    local log=$E2E_LOGDIR/panic.console rc=0
    rv_boot "$log" 1 128M 'echo c > /proc/sysrq-trigger' || rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || e2e_fail "panic: ringvisor exited $rc, expected a failure status"
    grep -aq "ringvisor: guest kernel panic: Kernel panic - not syncing" "$log" ||
        e2e_fail "no clear panic message from ringvisor"
    echo "exit status $rc"
}

case_panic_without_reboot() {  # panic=0: the guest stops instead of resetting
    local log=$E2E_LOGDIR/panic-noreboot.console rc=0
    rv_boot "$log" 1 128M 'echo c > /proc/sysrq-trigger' 'panic=0' || rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || e2e_fail "panic=0: ringvisor exited $rc, expected a failure status"
    grep -aq "ringvisor: guest kernel panic" "$log" || e2e_fail "no clear panic message"
}

# The tiny-guest KVM tests (tests/kvm: exits, resets, MSI routes, KVM state
# saved and restored) in L1's KVM: ctest skips them where the machine itself
# has no /dev/kvm. Only the triple-fault test may skip (it needs ring-0 code
# to run natively, which L1's KVM does not always report).
case_kvm_tests() {
    local out=$E2E_LOGDIR/kvm_tests.out rc=0 skipped
    timeout -k 5 120 "$E2E_ROOT/build/tests/kvm_tests" >"$out" 2>&1 || rc=$?
    ((rc == 0)) || e2e_fail "kvm_tests exited $rc: $(grep -a 'FAILED \]\|Failure' "$out" | head -5 | tr '\n' ' ')"
    skipped=$(grep -a '^\[  SKIPPED \] [A-Za-z]' "$out" | grep -v TripleFaultIsACrash | sort -u | tr '\n' ' ' || true)
    [[ -z $skipped ]] || e2e_fail "skipped in the test host: $skipped"
    echo "$(grep -a -c '^\[       OK \]' "$out") KVM tests passed"
}

echo "ringvisor e2e boot cases: $("$RINGVISOR" check | head -2 | tr '\n' ' ')"
run_case boot_1_cpu case_cpus 1
run_case boot_2_cpus case_cpus 2
run_case memory_256M case_memory 256
run_case memory_4G_split_around_pci_hole case_memory 4096
run_case date_is_right case_date
run_case poweroff_exits_0 case_poweroff
run_case reboot_exits_0 case_reboot
run_case reboot_acpi_reset_register case_reboot_via acpi "guest reset through port 0xCF9"
run_case reboot_keyboard_controller case_reboot_via kbd "guest reset through the i8042 controller"
run_case reboot_port_cf9 case_reboot_via pci "guest reset through port 0xCF9"
run_case triple_fault_is_a_crash case_triple_fault
run_case xsave_consistent case_xsave
run_case panic_exits_nonzero case_panic
run_case panic_without_reboot_exits_nonzero case_panic_without_reboot
run_case kvm_tests_in_l1 case_kvm_tests
e2e_summary
