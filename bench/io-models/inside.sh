#!/usr/bin/env bash
# Runs inside the test host (bench/io-models/run.sh starts it): the same guest
# workloads over each way of giving the guest a device, on the same disk image
# and TAP, under ringvisor and under QEMU, RUNS times each:
#   ide-pio     ATA disk on the PIIX IDE controller, guest libata.dma=0
#   ide-dma     the same, bus-master DMA (libata's default)
#   virtio-blk  virtio-blk over PCI
#   e1000       emulated Intel 82540EM
#   virtio-net  virtio-net over PCI
# Output in $RV_RESULTS/io-models (see bench/io/lib.sh for raw.txt; the label
# is VMM:MODEL).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
INITRD=${INITRD:-$root/build/io-models/initramfs.cpio.gz}
RVIO=${RVIO:-$root/build/bench-io/rvio}
IMG_MIB=${IMG_MIB:-512} CACHE=${CACHE:-none} RUNS=${RUNS:-3} MEM_MIB=${MEM_MIB:-512}
SEQ=${SEQ:-64M} SEQ_PIO=${SEQ_PIO:-2M} RAND_S=${RAND_S:-5} NET=${NET:-30M}
MODELS=${MODELS:-ide-pio ide-dma virtio-blk e1000 virtio-net}
VMMS=${VMMS:-rv qemu}
L2_TIMEOUT=${L2_TIMEOUT:-400}
out=${OUT:-${RV_RESULTS:-/tmp}/io-models}
TAP=rvtap-io HOST_IP=10.0.3.1 GUEST_IP=10.0.3.15 MAC=52:54:00:12:34:57
mkdir -p "$out"
: >"$out/raw.txt"; : >"$out/exits.txt"; : >"$out/timeline.txt"
. "$root/bench/io/lib.sh"

trap bench_cleanup EXIT
setup_loop_disk /tmp/io-models-disk.img
setup_tap

b64() { printf '%s' "$1" | base64 -w0; }
# guest_env MODEL: what bench/io/guest.sh runs for it, and extra kernel args.
guest_env() {
    case $1 in
        ide-pio) echo "DEV=/dev/sda IRQ_MATCH=ata_piix SEQ=$SEQ_PIO PHASES='idle seqwrite seqread randread'" ;;
        ide-dma) echo "DEV=/dev/sda IRQ_MATCH=ata_piix SEQ=$SEQ PHASES='idle seqwrite seqread randread'" ;;
        virtio-blk) echo "DEV=/dev/vda IRQ_MATCH=virtio SEQ=$SEQ PHASES='idle seqwrite seqread randread'" ;;
        e1000) echo "IRQ_MATCH=eth0 PHASES='idle tcp-g2h tcp-h2g'" ;;
        virtio-net) echo "IRQ_MATCH=virtio PHASES='idle tcp-g2h tcp-h2g'" ;;
    esac
}
cmdline_for() {
    local extra=
    [[ $1 == ide-pio ]] && extra=" libata.dma=0"
    echo "console=ttyS0 panic=-1 quiet$extra rv.cmd=$(b64 "$(guest_env "$1") RAND_S=$RAND_S QDS=1 NET=$NET HOST_IP=$HOST_IP GUEST_IP=$GUEST_IP rvio-guest")"
}

rv_cmd() {
    local dev=()
    case $MODEL in
        ide-*) dev=(--disk "$IMG,iface=ide,cache=$CACHE") ;;
        virtio-blk) dev=(--disk "$IMG,cache=$CACHE") ;;
        e1000) dev=(--net "tap=$TAP,mac=$MAC,model=e1000") ;;
        virtio-net) dev=(--net "tap=$TAP,mac=$MAC") ;;
    esac
    # --stats next to the console log (lib.sh one's $log): device counters
    # for a run that stalls.
    exec timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --kernel-cache "$KERNEL_CACHE" --kernel "$GUEST/vmlinuz" \
        --initrd "$INITRD" --memory "${MEM_MIB}M" --cpus 1 "${dev[@]}" --cmdline "$(cmdline_for "$MODEL")" \
        --stats "${log%.console}.stats.json"
}
# QEMU: its PIIX3 IDE and e1000 on the pc machine (where they live), virtio
# on microvm with PCIe as in bench/io; the same decompressed kernel (PVH).
qemu_cmd() {
    local machine=microvm,rtc=on,pcie=on dev=()
    local drive="file=$IMG,format=raw,cache=$CACHE,aio=io_uring"
    local netdev="tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off"
    case $MODEL in
        ide-*) machine=pc dev=(-drive "$drive,if=ide,index=0") ;;
        virtio-blk) dev=(-drive "$drive,if=none,id=d0" -device virtio-blk-pci,drive=d0) ;;
        e1000) machine=pc dev=(-netdev "$netdev" -device "e1000,netdev=n0,mac=$MAC") ;;
        virtio-net) dev=(-netdev "$netdev" -device "virtio-net-pci,netdev=n0,mac=$MAC") ;;
    esac
    exec timeout -k 5 "$L2_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host -M "$machine" \
        -m "$MEM_MIB" -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel "$GUEST/vmlinux" -initrd "$INITRD" -append "$(cmdline_for "$MODEL")" "${dev[@]}"
}

{
    echo "date: $(date -u +%FT%TZ)  L1 kernel: $(uname -r)  nproc: $(nproc)  MemTotal: $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR ($(stat -c '%y' "$RINGVISOR"))"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "disk: $IMG over /tmp/io-models-disk.img (${IMG_MIB} MiB, tmpfs), filled: $(cat "$out/fill.txt"), cache=$CACHE"
    echo "RUNS=$RUNS MEM_MIB=$MEM_MIB SEQ=$SEQ SEQ_PIO=$SEQ_PIO RAND_S=$RAND_S NET=$NET MODELS=$MODELS"
    echo "exits: ${exits_why:-from $dbg/<pid>-<fd>/{${COUNTERS[*]}}}"
    declare -f guest_env cmdline_for rv_cmd qemu_cmd
} >"$out/env.txt"

status=0
for ((i = 1; i <= RUNS; i++)); do
    for MODEL in $MODELS; do
        order=$VMMS
        ((i % 2)) || order=$(echo "$VMMS" | awk '{ for (j = NF; j > 0; j--) printf "%s%s", $j, (j > 1 ? " " : "") }')
        for vmm in $order; do
            one "$vmm:$MODEL" "$i" "${vmm}_cmd" || status=1
        done
    done
done
cat "$out/raw.txt"
exit $status
