#!/usr/bin/env bash
# A real distribution under ringvisor, run inside the test host: the Debian 12
# image of tools/rootfs (systemd, Debian's own initramfs, fio) boots with 2
# vCPUs and 1 GiB, its root disk on virtio-blk and, in a second boot of the
# same image, on the emulated IDE controller; each boot runs fio (written,
# then read back and checked; then read by one job per vCPU) on a second disk
# of the same kind and powers off through systemd. On virtio, the data disk
# has one queue per vCPU (the default, num_queues= left out) and both carry
# requests, and a virtio-net NIC on a multi-queue TAP gets one queue pair
# per vCPU: two iperf3 clients, one pinned to each vCPU, send and then
# receive, and every rx and tx queue must interrupt the guest. L1 then
# checks that the root file system was left clean.
#   tools/testhost/run.sh --mem 4096 -- tests/e2e/distro_cases.sh [CASE...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

ROOTFS=${ROOTFS:-$E2E_ROOT/build/rootfs}
NET_TAP=rvtap-dq NET_HOST=10.0.6.1 NET_GUEST=10.0.6.15
DISTRO_TIMEOUT=${DISTRO_TIMEOUT:-600}
# The kernel's own signs of a dying guest (bench/stress/inside.sh counts the same).
DEATH_RE='Kernel panic|BUG: |Oops|general protection fault|double fault|rcu_(preempt|sched) detected|soft lockup|hard LOCKUP|blocked for more than|triple fault'

# One read-write copy of the image for both boots: the IDE boot starts from
# what the virtio boot's shutdown left behind.
ROOT_IMG=$WORK/debian12.img
prepare_root() {
    [[ -s $ROOT_IMG ]] || cp --sparse=always "$ROOTFS/debian12.img" "$ROOT_IMG"
}

# distro_boot NAME IFACE PREFIX FIO-SIZE: boots the image (root and data disk
# on IFACE, named /dev/PREFIX? in the guest) and runs fio on the disk that is
# not the root (FIO-SIZE written and checked). Linux does not promise which
# of two disks is sda, so the guest finds the data disk itself.
distro_boot() {
    local name=$1 iface=$2 prefix=$3 size=$4 log=$E2E_LOGDIR/$1.console data=$WORK/$1-data.img rc=0
    prepare_root
    rm -f "$data"; truncate -s 256M "$data"
    # On virtio, two readers, one pinned to each vCPU: blk-mq maps each CPU
    # to its own queue, so both queues carry requests. (On IDE one reader, as
    # before: two there triple-faulted the guest once in two sessions, which
    # is issue 11's to explain, not this case's.)
    local readers= netcmd=
    [[ $iface == virtio ]] && readers="--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split"
    # Virtio-net with a queue pair per vCPU: one iperf3 client pinned to
    # each vCPU, so each sends on its own tx queue (XPS) and, with -R, gets
    # its data on the rx queue the TAP learned for its flow.
    [[ $iface == virtio ]] && netcmd="ip addr add $NET_GUEST/24 dev eth0; ip link set eth0 up
ping -q -c 2 -w 20 $NET_HOST >/dev/null || echo NET-NOTE=no-ping
for r in '' -R; do
  taskset -c 0 iperf3 -c $NET_HOST -p 5201 -t 3 \$r >/tmp/ip0.out 2>&1 & a=\$!
  taskset -c 1 iperf3 -c $NET_HOST -p 5202 -t 3 \$r >/tmp/ip1.out 2>&1 & b=\$!
  st=ok; wait \$a || st=fail; wait \$b || st=fail; echo IPERF\$r=\$st; [ \$st = ok ] || tail -n 3 /tmp/ip0.out /tmp/ip1.out
done
echo NET-PAIRS=\$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l)
echo NET-IRQS=\$(qirqs \$(basename \$(readlink -f /sys/class/net/eth0/device))-)"
    # qirqs PREFIX: per queue, the interrupts all vCPUs took (/proc/interrupts).
    local cmd="qirqs() { awk -v d=\"\$1\" -v n=\$(nproc) 'index(\$NF, d) == 1 { s = 0; for (i = 2; i <= n + 1; i++) s += \$i; printf \"%s:%d \", substr(\$NF, length(d) + 1), s }' /proc/interrupts; }
echo PID1=\$(cat /proc/1/comm); echo ROOTDEV=\$root; echo DATADEV=\$dev
echo NPROC=\$(nproc)
fio --name=check --filename=\$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
    --iodepth=16 --size=$size --verify=crc32c --do_verify=1 --output-format=terse >/tmp/fio.out &&
    grep -q '^3;' /tmp/fio.out && echo FIO-WRITE-VERIFY=ok || { echo FIO-WRITE-VERIFY=fail; cat /tmp/fio.out; }
fio --name=read --filename=\$dev --ioengine=libaio --direct=1 --rw=randread --bs=4k \
    --iodepth=32 --runtime=5 --time_based $readers --group_reporting --output-format=terse >/tmp/fio.out &&
    echo FIO-READ-IOPS=\$(grep '^3;' /tmp/fio.out | cut -d';' -f8)
echo HW-QUEUES=\$(ls /sys/block/\${dev#/dev/}/mq 2>/dev/null | wc -l)
vdev=\$(basename \$(readlink -f /sys/block/\${dev#/dev/}/device 2>/dev/null) 2>/dev/null)
echo QUEUE-IRQS=\$(qirqs \$vdev-req.)
$netcmd
echo FAILED-UNITS=\$(systemctl --failed --no-legend | wc -l); systemctl --failed --no-legend"
    # The script is longer than the kernel command line takes (2 KiB): it
    # travels in the data disk's last MiB (fio stays below it), and rv.cmd=
    # finds the data disk, loads it and runs it.
    printf '%s\n' "$cmd" | dd of="$data" bs=1M seek=255 conv=notrunc status=none
    local load="root=\$(findmnt -n -o SOURCE /); dev=; for d in /dev/$prefix?; do [ \"\$d\" = \"\$root\" ] || dev=\$d; done
dd if=\$dev bs=1M skip=255 count=1 2>/dev/null | tr -d '\\000' >/tmp/distro.sh; . /tmp/distro.sh"
    local ifc= nic=()
    [[ $iface == ide ]] && ifc=,iface=ide
    if [[ $iface == virtio ]]; then
        # A multi-queue TAP and an iperf3 server per client; queues= left
        # out: one pair per vCPU is the default.
        ip link del "$NET_TAP" 2>/dev/null || true
        ip tuntap add dev "$NET_TAP" mode tap multi_queue && ip addr add "$NET_HOST/24" dev "$NET_TAP" &&
            ip link set "$NET_TAP" up || e2e_fail "cannot make the multi-queue TAP $NET_TAP"
        iperf3 -s -B "$NET_HOST" -p 5201 -D && iperf3 -s -B "$NET_HOST" -p 5202 -D ||
            e2e_fail "cannot start the iperf3 servers"
        nic=(--net "tap=$NET_TAP")
    fi
    local t0=$SECONDS
    timeout -k 5 "$DISTRO_TIMEOUT" "$RINGVISOR" run --kernel "$GUEST/vmlinuz" --initrd "$ROOTFS/initrd.img" \
        --kernel-cache "$KERNEL_CACHE" --cpus 2 --memory 1G \
        --disk "$ROOT_IMG$ifc" --disk "$data$ifc" "${nic[@]}" --stats "$E2E_LOGDIR/$name.stats.json" \
        --cmdline "console=ttyS0 root=LABEL=rvroot rw panic=-1 quiet net.ifnames=0 rv.cmd=$(guest_cmd_b64 "$load")" \
        </dev/null >"$log" 2>&1 || rc=$?
    if [[ $iface == virtio ]]; then
        pkill -f "iperf3 -s -B $NET_HOST" || true
        ip link del "$NET_TAP" 2>/dev/null || true
    fi
    echo "boot, fio, iperf3 and power-off: $((SECONDS - t0)) s"
    grep -a -E 'PID1=|ROOTDEV=|DATADEV=|NPROC=|FIO-|HW-QUEUES=|QUEUE-IRQS=|IPERF|NET-|FAILED-UNITS=' "$log" | tr -d '\r'
    ! grep -aqE "$DEATH_RE" "$log" || e2e_fail "the guest died: $(grep -aE -m1 "$DEATH_RE" "$log" | tr -d '\r')"
    ((rc == 0)) || e2e_fail "ringvisor exited $rc: $(tail -n 3 "$log" | tr -d '\r')"
    [[ $(guest_value "$log" PID1) == systemd ]] || e2e_fail "PID 1 is '$(guest_value "$log" PID1)', not systemd"
    local rootdev datadev
    rootdev=$(guest_value "$log" ROOTDEV) datadev=$(guest_value "$log" DATADEV)
    [[ $rootdev =~ ^/dev/${prefix}[a-z]$ ]] || e2e_fail "root is on '$rootdev', expected a /dev/${prefix}? disk"
    [[ $datadev =~ ^/dev/${prefix}[a-z]$ && $datadev != "$rootdev" ]] || e2e_fail "no second /dev/${prefix}? disk (found '$datadev')"
    [[ $(guest_value "$log" NPROC) == 2 ]] || e2e_fail "the guest sees $(guest_value "$log" NPROC) CPUs, expected 2"
    [[ $(guest_value "$log" FIO-WRITE-VERIFY) == ok ]] || e2e_fail "fio write+verify on $datadev failed"
    [[ $(guest_value "$log" FIO-READ-IOPS) =~ ^[1-9][0-9]*$ ]] || e2e_fail "fio read on $datadev failed"
    if [[ $iface == virtio ]]; then
        # Multiqueue by default (one per vCPU): both queues carried requests
        # (each queue's interrupt, as /proc/interrupts counts it, fired).
        [[ $(guest_value "$log" HW-QUEUES) == 2 ]] ||
            e2e_fail "$datadev has $(guest_value "$log" HW-QUEUES) hardware queues, expected 2 (one per vCPU)"
        local irqs; irqs=$(grep -a -o 'QUEUE-IRQS=.*' "$log" | tr -d '\r' | cut -d= -f2)
        [[ $irqs =~ (^| )0:[1-9][0-9]*( |$) && $irqs =~ (^| )1:[1-9][0-9]*( |$) ]] ||
            e2e_fail "not both of $datadev's queues interrupted the guest: '$irqs'"
        # Virtio-net: two queue pairs (one per vCPU), traffic both ways, and
        # every rx (input.N) and tx (output.N) queue interrupted the guest.
        [[ $(guest_value "$log" IPERF) == ok && $(guest_value "$log" IPERF-R) == ok ]] ||
            e2e_fail "iperf3 over the multi-queue NIC failed (sending: '$(guest_value "$log" IPERF)', receiving: '$(guest_value "$log" IPERF-R)')"
        [[ $(guest_value "$log" NET-PAIRS) == 2 ]] ||
            e2e_fail "eth0 has $(guest_value "$log" NET-PAIRS) rx queues, expected 2 (one pair per vCPU)"
        irqs=$(grep -a -o 'NET-IRQS=.*' "$log" | tr -d '\r' | cut -d= -f2)
        local q
        for q in input.0 input.1 output.0 output.1; do
            [[ $irqs =~ (^| )$q:[1-9][0-9]*( |$) ]] ||
                e2e_fail "eth0's queue $q did not interrupt the guest: '$irqs'"
        done
    fi
    grep -aq 'RINGVISOR-CMD-EXIT=0' "$log" || e2e_fail "the guest command did not finish"
    grep -aq 'reboot: Power down' "$log" || e2e_fail "no 'reboot: Power down': systemd did not power off"
    # Cleanly unmounted: e2fsck finds nothing to fix (-n: read-only check).
    e2fsck -fn "$ROOT_IMG" >"$WORK/fsck.out" 2>&1 || { cat "$WORK/fsck.out"; e2e_fail "the root file system is not clean after power-off"; }
    echo "e2fsck -fn: clean"
}

case_virtio_root() { distro_boot debian-virtio virtio vd 48M; }
# IDE moves a sector at a time through trapped registers: a smaller fio job.
case_ide_root() { distro_boot debian-ide ide sd 8M; }

CASES=(
    "debian_systemd_virtio_root case_virtio_root"
    "debian_systemd_ide_root case_ide_root"
)
[[ -s $ROOTFS/debian12.img && -s $ROOTFS/initrd.img ]] ||
    { echo "distro cases: $ROOTFS/debian12.img missing (tools/rootfs/build.sh)"; exit 1; }
run_cases distro "$@"
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
