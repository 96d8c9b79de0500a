#!/bin/sh
# bench/io guest side (busybox sh), installed as /bin/rvio-guest in the bench
# initramfs and started through rv.cmd by bench/io/inside.sh, e.g.
#   SEQ=256M RAND_S=10 QDS="1 8" NET=200M HOST_IP=10.0.3.1 GUEST_IP=10.0.3.15 PHASES="..." rvio-guest
# Runs each workload on $DEV (default /dev/vda) and eth0 between two sync points. At a sync
# point the guest prints "RVB-SYNC <phase> <workload>" and waits for a line on
# the serial console: the L1 side reads KVM's exit counters meanwhile and then
# answers. Guest interrupt counts (virtio MSI-X lines in /proc/interrupts) are
# read right around the workload; results are printed after the second sync
# point, so console output (itself expensive: one exit per byte) stays out of
# the measured windows:
#   RVB-RESULT <workload> <rvio line fields...> irqs=<virtio interrupts>
#   RVB-IRQ <workload> <interrupt line name> <delta>
set -u
SEQ=${SEQ:-256M} RAND_S=${RAND_S:-10} QDS=${QDS:-1 8} NET=${NET:-200M}
HOST_IP=${HOST_IP:-10.0.3.1} GUEST_IP=${GUEST_IP:-10.0.3.15}
PHASES=${PHASES:-idle spin seqwrite seqread randread tcp-g2h tcp-h2g}
# The disk, and the /proc/interrupts lines whose counts are the device's
# interrupts (awk regex on the line: virtio MSI-X vectors, ata_piix's IRQ 14, eth0).
DEV=${DEV:-/dev/vda} IRQ_MATCH=${IRQ_MATCH:-virtio}

wait_dev() { i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; [ -e "$1" ]; }
sync_point() {
    echo "RVB-SYNC $1 $2"
    read -r _ </dev/ttyS0
}
irq_snapshot() { awk -v m="$IRQ_MATCH" '$0 ~ m { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print $NF, n }' /proc/interrupts >"$1"; }
# run WORKLOAD COMMAND...: the command's stdout (an RVIO line) goes to /tmp.
run() {
    w=$1; shift
    sync_point pre "$w"
    irq_snapshot /tmp/irq.before
    "$@" >/tmp/out 2>/tmp/err
    rc=$?
    irq_snapshot /tmp/irq.after
    sync_point post "$w"
    [ $rc -eq 0 ] || { echo "RVB-ERROR $w exit $rc: $(cat /tmp/err)"; return 1; }
    irqs=$(awk 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; s += d; if (d) printf "RVB-IRQ %s %s %d\n", w, $1, d >"/dev/stderr" } END { print s + 0 }' \
        w="$w" /tmp/irq.before /tmp/irq.after 2>/tmp/irqlines)
    cat /tmp/irqlines
    echo "RVB-RESULT $w $(sed -n 's/^RVIO //p' /tmp/out) irqs=$irqs"
}

case " $PHASES " in *" seq"*|*" rand"*)
wait_dev "$DEV" || { echo "RVB-ERROR no $DEV"; exit 1; }
b=${DEV#/dev/} q=/sys/block/${DEV#/dev/}/queue
echo "RVB-INFO $b sectors=$(cat /sys/block/$b/size) max_sectors_kb=$(cat $q/max_sectors_kb) max_hw_sectors_kb=$(cat $q/max_hw_sectors_kb) max_segments=$(cat $q/max_segments) nr_requests=$(cat $q/nr_requests) scheduler=$(cat $q/scheduler | tr ' ' ,) hwqueues=$(ls /sys/block/$b/mq | wc -l)"
[ -e /sys/class/ata_device/dev1.0/xfer_mode ] && echo "RVB-INFO ata xfer_mode=$(cat /sys/class/ata_device/dev1.0/xfer_mode)"
for d in /sys/bus/virtio/devices/*; do
    echo "RVB-INFO $(basename "$d") device=$(cat "$d/device") features=$(cat "$d/features")"
done
# no I/O scheduler: what the VMM does shows, not mq-deadline's batching
echo none >$q/scheduler 2>/dev/null
# Huge pages for rvio's 1 MiB buffers, so every request is one physically
# contiguous buffer whatever the VMM (Linux turns THP off by default below
# 512 MiB of RAM; with 4 KiB pages the split into ATA commands was luck).
thp=/sys/kernel/mm/transparent_hugepage/enabled
echo always >$thp 2>/dev/null
echo "RVB-INFO thp=$(cat $thp 2>/dev/null | tr ' ' ,)"
;;
esac
case " $PHASES " in *" tcp-"*)
    wait_dev /sys/class/net/eth0 || { echo "RVB-ERROR no eth0"; exit 1; }
    ip link set lo up; ip addr add "$GUEST_IP/24" dev eth0; ip link set eth0 up
    ping -c 2 -w 20 "$HOST_IP" >/dev/null || echo "RVB-WARN no ping reply from $HOST_IP"
    ;;
esac

status=0
for p in $PHASES; do
    case $p in
        idle) run idle true ;;  # baseline: what the sync points themselves cost
        spin) run spin rvio spin -t 2 ;;  # baseline: exits of a busy vCPU without I/O (timer...)
        seqwrite) run seqwrite rvio seqwrite -f "$DEV" -b 1M -n "$SEQ" ;;
        seqread) run seqread rvio seqread -f "$DEV" -b 1M -n "$SEQ" ;;
        randread) for qd in $QDS; do run "randread-qd$qd" rvio randread -f "$DEV" -b 4k -t "$RAND_S" -j "$qd"; done ;;
        tcp-g2h) run tcp-g2h rvio tcpsend -a "$HOST_IP:5001" -n "$NET" ;;
        tcp-h2g) run tcp-h2g rvio tcprecv -a "$HOST_IP:5002" ;;
        *) echo "RVB-ERROR unknown phase $p"; false ;;
    esac || status=1
done
exit $status
