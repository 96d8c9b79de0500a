# L1's KVM tracepoints in a ring buffer, for diagnosing guest deaths in the
# test host (sourced by bench/stress/inside.sh and tests/e2e/lib.sh, inside
# L1). ktrace_reset before a boot, ktrace_save FILE.trace.gz after one that
# died: the dying vCPU's last exits (SVM's kvm_exit shows the RIP even at a
# shutdown, whose registers KVM has already reset), the interrupts and
# exceptions L1's KVM injected, async page faults and nested page table
# zaps, as L1 saw them; plus L1's dmesg tail beside it.
# The buffer freezes (tracing_on 0) at the first nested page fault taken
# while the guest walked its own page tables at a GPA of 4 GiB or more: no
# guest of the stress or e2e runs (at most 2 GiB) keeps page tables there,
# and a vCPU whose state was replaced by L1's own (CR3 pointing into L1's
# memory) loops on exactly that fault; freezing keeps the events that led
# to it instead of letting the loop overwrite them. ktrace_reset unfreezes.
# KTRACE=0 turns it off; KTRACE_KB is the buffer per CPU.
# shellcheck shell=bash
KTRACE=${KTRACE:-1} KTRACE_KB=${KTRACE_KB:-16384}
ktrace_dir=/sys/kernel/tracing
KTRACE_EVENTS="kvm/kvm_exit kvm/kvm_inj_virq kvm/kvm_inj_exception kvm/kvm_userspace_exit
  kvm/kvm_msi_set_irq kvm/kvm_set_irq kvm/kvm_apic_accept_irq kvm/kvm_async_pf_not_present
  kvm/kvm_async_pf_ready kvm/kvm_async_pf_completed kvm/kvm_page_fault kvm/kvm_cr kvm/kvm_msr
  kvmmmu/kvm_mmu_invalidate_zap_all_pages kvmmmu/kvm_mmu_prepare_zap_page"
ktrace_setup() {  # -> a line on stderr saying what is traced
    [[ $KTRACE == 1 ]] || return 0
    [[ -e $ktrace_dir/trace ]] || mount -t tracefs nodev "$ktrace_dir" 2>/dev/null ||
        { KTRACE=0; echo "ktrace: no tracefs in L1: boots are not traced" >&2; return 0; }
    echo "$KTRACE_KB" >"$ktrace_dir/buffer_size_kb" 2>/dev/null || true
    local e n=0
    for e in $KTRACE_EVENTS; do
        [[ -e $ktrace_dir/events/$e/enable ]] && echo 1 >"$ktrace_dir/events/$e/enable" && n=$((n + 1))
    done
    # PFERR_GUEST_PAGE (bit 33): the fault came from the guest's page walk.
    local freeze=" (no freeze trigger)"
    echo 'traceoff if fault_address >= 0x100000000 && error_code & 0x200000000' \
        >"$ktrace_dir/events/kvm/kvm_page_fault/trigger" 2>/dev/null &&
        freeze=", frozen at a guest page walk above 4 GiB"
    echo "ktrace: $n KVM events traced in L1 (${KTRACE_KB} KiB per CPU$freeze)" >&2
}
ktrace_reset() {
    [[ $KTRACE == 1 ]] || return 0
    echo >"$ktrace_dir/trace" 2>/dev/null || true
    echo 1 >"$ktrace_dir/tracing_on" 2>/dev/null || true
}
ktrace_save() {  # FILE.trace.gz
    [[ $KTRACE == 1 ]] || return 0
    [[ $(cat "$ktrace_dir/tracing_on" 2>/dev/null) == 0 ]] &&
        echo "ktrace: frozen by a guest page walk above 4 GiB (the trace ends there)" >&2
    gzip -c "$ktrace_dir/trace" >"$1" 2>/dev/null || true
    dmesg 2>/dev/null | tail -n 200 >"${1%.trace.gz}.l1-dmesg" || true
}
