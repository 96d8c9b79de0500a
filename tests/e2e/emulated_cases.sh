#!/usr/bin/env bash
# End-to-end cases for the emulated (full-virtualization) devices, run inside
# the test host after virtio_cases.sh. The guest boots with
# build/guest/initramfs-emulated.cpio.gz: ata_piix, sd_mod, e1000 and ext4,
# no virtio driver at all, so it reaches its disks only through ringvisor's
# PIIX IDE controller and its network only through the e1000.
#   tools/testhost/run.sh -- tests/e2e/emulated_cases.sh [CASE...]   (only these cases)
#   VIRTIO_VMM=qemu ...   the same cases with QEMU (pc machine for IDE) as the L2 VMM
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

INITRD=${EMULATED_INITRD:-$GUEST/initramfs-emulated.cpio.gz}
VIRTIO_INITRD=${VIRTIO_INITRD:-$GUEST/initramfs-virtio.cpio.gz}

# Guest shell: what drives /dev/sda and in which transfer mode, and that no
# virtio driver is loaded.
ATA_FACTS='echo MODEL=$(tr " " _ </sys/block/sda/device/model) XFER=$(cat /sys/class/ata_device/dev1.0/xfer_mode 2>/dev/null)
echo VIRTIO=$(ls /sys/bus/virtio/devices 2>/dev/null | wc -l) PIIX=$(ls -d /sys/bus/pci/drivers/ata_piix/0000:* 2>/dev/null | wc -l)'

ata_checks() {  # LOG: ata_piix drives the disk, no virtio device exists
    echo "guest: PIIX=$(guest_value "$1" PIIX) MODEL=$(guest_value "$1" MODEL) XFER=$(guest_value "$1" XFER) VIRTIO=$(guest_value "$1" VIRTIO)"
    [[ $(guest_value "$1" PIIX) == 1 ]] || e2e_fail "ata_piix did not bind to the IDE controller"
    [[ $(guest_value "$1" VIRTIO) == 0 ]] || e2e_fail "the guest has virtio devices"
}

# ---- IDE ---------------------------------------------------------------------

# ext4 on /dev/sda (ata_piix, DMA) survives power-off: e2fsck clean, files equal.
case_ide_ext4() { ext4_poweroff_case ide-ext4 sda ",ide"; }

# ata_piix finds the controller, the disk has the image's size, libata picked
# a DMA mode; and with libata.dma=0 the same disk works in PIO mode: MIB of
# random data written at an odd sector and read back through the page cache
# and with O_DIRECT match what L1 finds in the image.
ide_rw_case() {  # NAME KERNEL-ARGS EXPECTED-XFER-REGEX MIB
    local img=$WORK/$1.img log=$E2E_LOGDIR/$1.console rc=0 sectors=$(($4 * 2048)) pages=$(($4 * 256))
    rm -f "$img"; truncate -s 48M "$img"
    vm_boot "$log" "set -e; $(wait_dev sda) $ATA_FACTS
echo SECTORS=\$(cat /sys/block/sda/size)
head -c $(($4 * 1048576)) /dev/urandom >/tmp/data; echo WSUM=\$(sha256sum </tmp/data | cut -d' ' -f1)
dd if=/tmp/data of=/dev/sda bs=512 seek=777 conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
echo RSUM=\$(dd if=/dev/sda bs=512 skip=777 count=$sectors 2>/dev/null | sha256sum | cut -d' ' -f1)
echo DSUM=\$(dd if=/dev/sda bs=4096 skip=1024 count=$pages iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" \
        "disk=$img,ide" "cmdline=$2" || rc=$?
    expect_clean_exit "$log" $rc
    ata_checks "$log"
    local w r d host direct
    w=$(guest_value "$log" WSUM) r=$(guest_value "$log" RSUM) d=$(guest_value "$log" DSUM)
    host=$(dd if="$img" bs=512 skip=777 count=$sectors status=none | sha256sum | cut -d' ' -f1)
    direct=$(dd if="$img" bs=4096 skip=1024 count=$pages status=none | sha256sum | cut -d' ' -f1)
    echo "sectors $(guest_value "$log" SECTORS); wrote $w, read back $r, image holds $host; O_DIRECT read $d, image $direct"
    [[ $(guest_value "$log" SECTORS) == 98304 ]] || e2e_fail "/dev/sda has $(guest_value "$log" SECTORS) sectors, expected 98304"
    [[ $(guest_value "$log" XFER) =~ $3 ]] || e2e_fail "transfer mode '$(guest_value "$log" XFER)', expected $3"
    [[ -n $w && $w == "$r" && $w == "$host" ]] || e2e_fail "data differ: guest wrote $w, read $r, image $host"
    [[ -n $d && $d == "$direct" ]] || e2e_fail "O_DIRECT read $d, image $direct"
}
case_ide_dma() { ide_rw_case ide-dma "" "DMA" 4; }
case_ide_pio() { ide_rw_case ide-pio "libata.dma=0" "PIO" 1; }  # PIO: about 30 s per MiB here

# Four disks, master and slave on both channels: each (by channel and
# position) has its image's size and reads its own image's first bytes.
case_ide_four_disks() {
    local log=$E2E_LOGDIR/ide-four.console rc=0 i args=() want=
    for i in 0 1 2 3; do
        rm -f "$WORK/four$i.img"; truncate -s $((16 + 8 * i))M "$WORK/four$i.img"
        printf 'IMAGE-%d' "$i" | dd of="$WORK/four$i.img" conv=notrunc status=none
        args+=("disk=$WORK/four$i.img,ide")
        want+="$(((16 + 8 * i) * 2048)):IMAGE-$i,"
    done
    # sdX names follow probe order; walk the disks by SCSI address instead:
    # host 0/1 = primary/secondary channel, target 0/1 = master/slave.
    vm_boot "$log" "$(wait_dev sda sdb sdc sdd) for a in 0:0:0:0 0:0:1:0 1:0:0:0 1:0:1:0; do b=\$(ls /sys/class/scsi_disk/\$a/device/block); printf '%s:%s,' \$(cat /sys/block/\$b/size) \$(head -c 7 /dev/\$b); done | sed 's/^/DISKS=/'; echo" \
        "${args[@]}" || rc=$?
    expect_clean_exit "$log" $rc
    echo "guest: $(guest_value "$log" DISKS)"
    [[ $(guest_value "$log" DISKS) == "$want" ]] || e2e_fail "disks '$(guest_value "$log" DISKS)', expected '$want'"
}

# The same image attached as IDE in one boot and as virtio-blk in the next
# reads back identical: L1 makes ext4 with a file; the IDE guest checks it,
# adds a file and hashes the whole device after unmounting; the virtio guest
# (initramfs-virtio) hashes /dev/vda and reads both files.
case_ide_then_virtio() {
    local img=$WORK/same.img src=$WORK/same-src rc=0 want
    local log1=$E2E_LOGDIR/same-ide.console log2=$E2E_LOGDIR/same-virtio.console
    rm -rf "$img" "$src"; mkdir -p "$src"
    head -c 2500000 /dev/urandom >"$src/host.bin"
    mkfs.ext4 -q -F -d "$src" "$img" 32M
    want=$(sha256sum <"$src/host.bin" | cut -d' ' -f1)
    vm_boot "$log1" "set -e; $(wait_dev sda) $ATA_FACTS
mount -t ext4 /dev/sda /mnt; echo HOSTFILE=\$(sha256sum </mnt/host.bin | cut -d' ' -f1)
head -c 1500000 /dev/urandom >/mnt/guest.bin; echo GUESTFILE=\$(sha256sum </mnt/guest.bin | cut -d' ' -f1)
umount /mnt; echo DEVSUM=\$(sha256sum </dev/sda | cut -d' ' -f1)" "disk=$img,ide" || rc=$?
    expect_clean_exit "$log1" $rc
    ata_checks "$log1"
    local INITRD=$VIRTIO_INITRD
    vm_boot "$log2" "set -e; $(wait_dev vda) echo DEVSUM=\$(sha256sum </dev/vda | cut -d' ' -f1)
mount -t ext4 -o ro /dev/vda /mnt; echo HOSTFILE=\$(sha256sum </mnt/host.bin | cut -d' ' -f1)
echo GUESTFILE=\$(sha256sum </mnt/guest.bin | cut -d' ' -f1); umount /mnt" "disk=$img" || rc=$?
    expect_clean_exit "$log2" $rc
    local image; image=$(sha256sum <"$img" | cut -d' ' -f1)
    echo "device: ide $(guest_value "$log1" DEVSUM) virtio $(guest_value "$log2" DEVSUM) image $image"
    echo "guest.bin: ide $(guest_value "$log1" GUESTFILE) virtio $(guest_value "$log2" GUESTFILE)"
    [[ $(guest_value "$log1" HOSTFILE) == "$want" ]] || e2e_fail "IDE guest read host.bin wrong"
    [[ $(guest_value "$log1" DEVSUM) == "$image" ]] || e2e_fail "IDE guest's device hash differs from the image"
    [[ $(guest_value "$log2" DEVSUM) == "$image" ]] || e2e_fail "virtio guest's device hash differs from the image"
    [[ $(guest_value "$log2" HOSTFILE) == "$want" ]] || e2e_fail "virtio guest read host.bin wrong"
    [[ -n $(guest_value "$log1" GUESTFILE) && $(guest_value "$log2" GUESTFILE) == "$(guest_value "$log1" GUESTFILE)" ]] ||
        e2e_fail "guest.bin written over IDE reads back differently over virtio"
}

# ---- e1000 -------------------------------------------------------------------

# eth0 on the e1000 driver: link, the configured MAC, pings, 100 MiB each way.
# Every e1000 register access is a trap: allow it more time than virtio-net.
case_e1000_net() { net_transfer_case e1000-net ",e1000" "${E1000_NET_TIMEOUT:-420}"; }
case_e1000_ping() { net_ping_case e1000-ping ",e1000"; }

CASES=(
    "ide_ext4_survives_poweroff case_ide_ext4"
    "ide_dma_read_write case_ide_dma"
    "ide_pio_read_write case_ide_pio"
    "ide_four_disks case_ide_four_disks"
    "ide_then_virtio_read_identical case_ide_then_virtio"
    "e1000_ping_and_transfer case_e1000_net"
)
# E2E_E1000_TRANSFER=0: only link, MAC and ping over the e1000 (the 100 MiB
# transfer each way takes about 2.5 minutes in the test host).
EXTRA_CASES=("e1000_ping case_e1000_ping")
[[ ${E2E_E1000_TRANSFER:-1} == 1 ]] || CASES[5]="e1000_ping case_e1000_ping"
[[ -s $INITRD ]] || { echo "emulated cases: $INITRD missing (tools/guest/build.sh)"; exit 1; }
echo "e2e emulated-device cases under $VMM"
run_cases emulated "$@"
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
