#!/usr/bin/env bash
# Runs inside the test host (bench/io/run.sh starts it): boots the same kernel,
# bench initramfs, disk image and TAP under ringvisor and under QEMU, RUNS
# times each, alternating which goes first, and runs the guest workloads of
# bench/io/guest.sh in each boot. At each of the guest's sync points it reads
# KVM's per-VM exit counters from debugfs (when it can be mounted).
# Output in $RV_RESULTS/bench-io (or OUT):
#   raw.txt     one line per VMM, run and workload:
#               vmm run workload value unit mib seconds irqs exits io_exits mmio_exits halt_exits irq_exits irq_injections
#               (value: MB/s, or IOPS for randread; exits "na" without debugfs;
#               idle = the sync points alone, spin = a busy vCPU without I/O for 2 s)
#   exits.txt   every counter snapshot;  <vmm>-<run>.console  the guest console
#   timeline.txt  the guest's marker lines with ms since the VMM started
#   rv-<run>.stats.json  ringvisor --stats (whole boot), if ringvisor has it
#   env.txt     what was run, and why exits are n/a if they are
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
INITRD=${INITRD:-$root/build/bench-io/initramfs.cpio.gz}
RVIO=${RVIO:-$root/build/bench-io/rvio}
IMG=${IMG:-}        # empty: a loop device over IMG_MIB in L1's tmpfs (see below)
IMG_MIB=${IMG_MIB:-1024}
CACHE=${CACHE:-none}
RUNS=${RUNS:-3} MEM_MIB=${MEM_MIB:-512}
SEQ=${SEQ:-256M} RAND_S=${RAND_S:-10} QDS=${QDS:-1 8} NET=${NET:-200M}
PHASES=${PHASES:-idle spin seqwrite seqread randread tcp-g2h tcp-h2g}
VMMS=${VMMS:-rv qemu}
L2_TIMEOUT=${L2_TIMEOUT:-300}
out=${OUT:-${RV_RESULTS:-/tmp}/bench-io}
TAP=rvtap-io HOST_IP=10.0.3.1 GUEST_IP=10.0.3.15 MAC=52:54:00:12:34:57
mkdir -p "$out"
: >"$out/raw.txt"; : >"$out/exits.txt"; : >"$out/timeline.txt"

. "$root/bench/io/lib.sh"

# ---- the disk and the network ---------------------------------------------------
# Default: a filled image behind a loop device in L1's tmpfs (lib.sh). A file
# on the results share (9p) works too (IMG=...), but 9p then bounds every
# workload at a few MB/s.
trap bench_cleanup EXIT
[[ -n $IMG ]] || setup_loop_disk /tmp/bench-io-disk.img
setup_tap

b64() { printf '%s' "$1" | base64 -w0; }
cmdline="console=ttyS0 panic=-1 quiet rv.cmd=$(b64 "SEQ=$SEQ RAND_S=$RAND_S QDS='$QDS' NET=$NET HOST_IP=$HOST_IP GUEST_IP=$GUEST_IP PHASES='$PHASES' rvio-guest")"

# --stats (when this ringvisor has it): its whole-boot counters at exit, kept
# as <vmm>-<run>.stats.json and compared with debugfs by run.sh. The
# per-workload windows need debugfs: --stats is written only at exit.
rv_stats=0
"$RINGVISOR" run --help 2>/dev/null | grep -q -- '--stats' && rv_stats=1
rv_cmd() {
    local stats=()
    ((rv_stats)) && stats=(--stats "$out/rv-$run.stats.json")
    exec timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --kernel-cache "$KERNEL_CACHE" --kernel "$GUEST/vmlinuz" \
        --initrd "$INITRD" --memory "${MEM_MIB}M" --cpus 1 --disk "$IMG,cache=$CACHE" \
        --net "tap=$TAP,mac=$MAC" "${stats[@]}" --cmdline "$cmdline"
}
# QEMU boots the same kernel's decompressed payload (PVH entry), as ringvisor
# does from its kernel cache: only boot time differs, which is not measured.
qemu_cmd() {
    exec timeout -k 5 "$L2_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host -M microvm,rtc=on,pcie=on \
        -m "$MEM_MIB" -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel "$GUEST/vmlinux" -initrd "$INITRD" -append "$cmdline" \
        -drive "file=$IMG,if=none,id=d0,format=raw,cache=$CACHE,aio=io_uring" -device virtio-blk-pci,drive=d0 \
        -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off" -device "virtio-net-pci,netdev=n0,mac=$MAC"
}

{
    echo "date: $(date -u +%FT%TZ)  L1 kernel: $(uname -r)  nproc: $(nproc)  MemTotal: $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR ($(stat -c '%y' "$RINGVISOR"))"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    if [[ -n $loopdev ]]; then echo "disk: $IMG over /tmp/bench-io-disk.img (${IMG_MIB} MiB, tmpfs), filled: $(cat "$out/fill.txt"), cache=$CACHE"
    else echo "disk: $IMG ($(stat -c %s "$IMG") bytes, $(stat -f -c %T "$(dirname "$IMG")")) cache=$CACHE"; fi
    echo "RUNS=$RUNS MEM_MIB=$MEM_MIB SEQ=$SEQ RAND_S=$RAND_S QDS=$QDS NET=$NET PHASES=$PHASES"
    echo "exits: ${exits_why:-from $dbg/<pid>-<fd>/{${COUNTERS[*]}}}"
    declare -f rv_cmd qemu_cmd
} >"$out/env.txt"

status=0
for ((i = 1; i <= RUNS; i++)); do
    order=$VMMS
    ((i % 2)) || order=$(echo "$VMMS" | awk '{ for (j = NF; j > 0; j--) printf "%s%s", $j, (j > 1 ? " " : "") }')
    for vmm in $order; do
        one "$vmm" "$i" "${vmm}_cmd" || status=1
    done
done
cat "$out/raw.txt"
exit $status
