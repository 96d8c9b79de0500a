#!/usr/bin/env bash
# End-to-end virtio cases for ringvisor, run inside the test host (one L1 boot
# serves them all; tests/e2e/run.sh runs them after boot_cases.sh). Each case
# boots the Debian kernel with build/guest/initramfs-virtio.cpio.gz (virtio
# drivers, ext4, e2fsprogs) and some virtio-pci devices, and checks both the
# guest's view and the host (L1) side: disk images, the TAP, the console.
#   tests/e2e/run.sh                          (from the host: builds, boots L1, runs this)
#   tools/testhost/run.sh -- tests/e2e/virtio_cases.sh [CASE...]   (only these cases)
#   E2E_NET_TRANSFER=0 tests/e2e/run.sh      only pings instead of the 100 MiB each
#                                            way (about 3 min); net_full_duplex_echo
#                                            runs only when named
#   VIRTIO_VMM=qemu ...                       the same cases with QEMU as the L2 VMM
#                                             (checks the cases and the guest side)
# Disk images and transfer files go to $VIRTIO_WORK (default: a fresh directory
# in L1's /tmp, a tmpfs: the 9p results share is several times slower for
# e2fsck/debugfs). After a failure the disk images are copied to $E2E_LOGDIR.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

INITRD=${VIRTIO_INITRD:-$GUEST/initramfs-virtio.cpio.gz}

# ---- block -----------------------------------------------------------------

# ext4 on /dev/vda survives power-off (guest_vm.sh).
case_blk_ext4() { ext4_poweroff_case blk-ext4 vda ""; }

# An ext4 image made on L1 (mkfs.ext4 -d), attached read-only: the guest reads
# a file (checksum matches), but a raw write and a read-write mount fail, and
# the image is unchanged afterwards.
case_blk_readonly() {
    local img=$WORK/ro.img src=$WORK/ro-src log=$E2E_LOGDIR/blk-readonly.console rc=0
    rm -rf "$img" "$src"; mkdir -p "$src"
    head -c 3000000 /dev/urandom >"$src/data.bin"
    mkfs.ext4 -q -F -d "$src" "$img" 32M
    local want before after
    want=$(sha256sum <"$src/data.bin" | cut -d' ' -f1)
    before=$(sha256sum <"$img" | cut -d' ' -f1)
    vm_boot "$log" "$(wait_dev vda) echo GETRO=\$(blockdev --getro /dev/vda)
mount -t ext4 -o ro /dev/vda /mnt && echo RSUM=\$(sha256sum </mnt/data.bin | cut -d' ' -f1); umount /mnt
if dd if=/dev/zero of=/dev/vda bs=4096 count=16 conv=fsync 2>/dev/null; then echo DDWRITE=ok; else echo DDWRITE=failed; fi
if mount -t ext4 -o rw /dev/vda /mnt 2>/dev/null && touch /mnt/new 2>/dev/null; then echo RWMOUNT=ok; else echo RWMOUNT=failed; fi
umount /mnt 2>/dev/null; true" "disk=$img,ro" || rc=$?
    expect_clean_exit "$log" $rc
    after=$(sha256sum <"$img" | cut -d' ' -f1)
    echo "guest: RSUM=$(guest_value "$log" RSUM) GETRO=$(guest_value "$log" GETRO) DDWRITE=$(guest_value "$log" DDWRITE) RWMOUNT=$(guest_value "$log" RWMOUNT)"
    [[ $(guest_value "$log" RSUM) == "$want" ]] || e2e_fail "guest read data.bin wrong: $(guest_value "$log" RSUM) != $want"
    [[ $(guest_value "$log" DDWRITE) == failed ]] || e2e_fail "a raw write to the read-only disk succeeded"
    [[ $(guest_value "$log" RWMOUNT) == failed ]] || e2e_fail "a read-write mount of the read-only disk worked"
    [[ $before == "$after" ]] || e2e_fail "the read-only image changed"
}

# Two images (32 and 48 MiB) at once: /dev/vda and /dev/vdb have the right
# sizes, each reads its own image, and what the guest writes lands in the right one.
case_blk_two_disks() {
    local a=$WORK/two-a.img b=$WORK/two-b.img log=$E2E_LOGDIR/blk-two-disks.console rc=0
    rm -f "$a" "$b"
    truncate -s 32M "$a"; truncate -s 48M "$b"
    printf 'HOST-WROTE-A' | dd of="$a" conv=notrunc status=none
    printf 'HOST-WROTE-B' | dd of="$b" conv=notrunc status=none
    vm_boot "$log" "set -e; $(wait_dev vda vdb) echo SIZES=\$(cat /sys/block/vda/size),\$(cat /sys/block/vdb/size)
echo READ=\$(head -c 12 /dev/vda),\$(head -c 12 /dev/vdb)
printf GUEST-WROTE-A | dd of=/dev/vda bs=512 seek=4096 conv=fsync 2>/dev/null
printf GUEST-WROTE-B | dd of=/dev/vdb bs=512 seek=4096 conv=fsync 2>/dev/null" "disk=$a" "disk=$b" || rc=$?
    expect_clean_exit "$log" $rc
    local sizes reads wa wb
    sizes=$(guest_value "$log" SIZES) reads=$(guest_value "$log" READ)
    wa=$(dd if="$a" bs=512 skip=4096 count=1 status=none | head -c 13)
    wb=$(dd if="$b" bs=512 skip=4096 count=1 status=none | head -c 13)
    echo "sizes (sectors) $sizes, guest read $reads, images now hold '$wa' / '$wb'"
    [[ $sizes == 65536,98304 ]] || e2e_fail "disk sizes $sizes sectors, expected 65536,98304"
    [[ $reads == HOST-WROTE-A,HOST-WROTE-B ]] || e2e_fail "guest read $reads from vda,vdb"
    [[ $wa == GUEST-WROTE-A && $wb == GUEST-WROTE-B ]] || e2e_fail "writes landed wrong: a.img '$wa', b.img '$wb'"
}

# ---- net -------------------------------------------------------------------

# 100 MiB each way (guest_vm.sh: net_transfer_case).
case_net() { net_transfer_case net ""; }

# Not run by default (name it on the command line): both directions at once.
# L1 sends NET_BYTES (port 5002) and the guest echoes the stream back as it
# arrives (port 5001): nc | tee | nc, the guest hashing what it received.
case_net_duplex() {
    local L2_TIMEOUT=$NET_TIMEOUT
    local log=$E2E_LOGDIR/net-duplex.console rc=0 t=$((L2_TIMEOUT + 10))
    net_setup
    head -c "$NET_BYTES" /dev/urandom >"$dir/sent.bin"
    timeout "$t" socat -u "OPEN:$dir/sent.bin,rdonly" "TCP-LISTEN:5002,bind=$HOST_IP,reuseaddr" &
    pids+=($!)
    timeout "$t" socat -u "TCP-LISTEN:5001,bind=$HOST_IP,reuseaddr" "CREATE:$dir/back.bin" &
    pids+=($!)
    vm_boot "$log" "set -e; $(wait_dev eth0) $GUEST_NET_UP
mkfifo /tmp/f; sha256sum </tmp/f >/tmp/s & t=\$(up)
nc $HOST_IP 5002 </dev/null | tee /tmp/f | nc $HOST_IP 5001; wait
echo RECEIVED=\$(cut -d' ' -f1 /tmp/s) ECHO_S=\$(echo \$(up) \$t | awk '{print \$1-\$2}')" \
        "net=$TAP,mac=$GUEST_MAC" || rc=$?
    expect_clean_exit "$log" $rc
    wait "${pids[@]}" || true
    pids=()
    local sent guest back
    sent=$(sha256sum <"$dir/sent.bin" | cut -d' ' -f1) guest=$(guest_value "$log" RECEIVED)
    back=$(sha256sum <"$dir/back.bin" | cut -d' ' -f1)
    echo "$NET_BYTES bytes each way in $(guest_value "$log" ECHO_S) s"
    echo "sent $sent, guest received $guest, came back $back ($(stat -c %s "$dir/back.bin") bytes)"
    net_checks "$log"
    [[ $guest == "$sent" ]] || e2e_fail "host->guest data differ: sent $sent, guest received ${guest:-nothing}"
    [[ $back == "$sent" ]] || e2e_fail "guest->host data differ: sent $sent, came back $back"
}

# The network smoke test: eth0 with the configured MAC on the TAP, pings to L1.
case_net_ping() { net_ping_case net-ping ""; }

# ---- console, rng ----------------------------------------------------------

# virtio console as the only guest console: the init marker and a command's
# output arrive through hvc0.
case_console_hvc0() {
    local log=$E2E_LOGDIR/console-hvc0.console rc=0
    vm_boot "$log" 'echo ACTIVE=$(cat /sys/class/tty/console/active); echo COMPUTED-$((6 * 7))' console || rc=$?
    expect_clean_exit "$log" $rc
    echo "active console: $(guest_value "$log" ACTIVE)"
    [[ $(guest_value "$log" ACTIVE) == hvc0 ]] || e2e_fail "guest console is '$(guest_value "$log" ACTIVE)', expected hvc0"
    grep -aq COMPUTED-42 "$log" || e2e_fail "the command's output did not arrive"
}

# virtio-rng: /dev/hwrng is backed by virtio_rng and yields 4096 bytes that
# look random (nearly all 256 byte values occur).
case_hwrng() {
    local log=$E2E_LOGDIR/hwrng.console rc=0
    vm_boot "$log" 'set -e; echo RNG=$(cat /sys/class/misc/hw_random/rng_current)
echo NBYTES=$(head -c 4096 /dev/hwrng | wc -c)
echo DISTINCT=$(head -c 4096 /dev/hwrng | od -An -v -tu1 | tr -s " " "\n" | grep . | sort -u | wc -l)' rng || rc=$?
    expect_clean_exit "$log" $rc
    local rng n distinct
    rng=$(guest_value "$log" RNG) n=$(guest_value "$log" NBYTES) distinct=$(guest_value "$log" DISTINCT)
    echo "rng_current=$rng bytes=$n distinct byte values=$distinct"
    [[ $rng == virtio_rng* ]] || e2e_fail "hwrng is '$rng', expected virtio_rng"
    [[ $n == 4096 ]] || e2e_fail "read $n bytes from /dev/hwrng, expected 4096"
    ((distinct >= 200)) || e2e_fail "only $distinct distinct byte values in 4096 bytes from /dev/hwrng"
}

CASES=(
    "blk_ext4_survives_poweroff case_blk_ext4"
    "blk_readonly_refuses_writes case_blk_readonly"
    "blk_two_disks case_blk_two_disks"
    "net_ping_and_transfer case_net"
    "console_hvc0 case_console_hvc0"
    "hwrng_yields_data case_hwrng"
)
# Run only when named on the command line. E2E_NET_TRANSFER=0 trades the
# 100 MiB transfer (about 3 min) for the ping alone.
EXTRA_CASES=("net_ping case_net_ping" "net_full_duplex_echo case_net_duplex")
[[ ${E2E_NET_TRANSFER:-1} == 0 ]] && CASES[3]="net_ping case_net_ping"
[[ -s $INITRD ]] || { echo "virtio cases: $INITRD missing (tools/guest/build.sh)"; exit 1; }
if [[ $VMM == qemu ]]; then
    echo "e2e virtio cases under QEMU: $(qemu-system-x86_64 --version | head -1)"
else
    echo "ringvisor e2e virtio cases: $("$RINGVISOR" check | head -2 | tr '\n' ' ')"
fi
run_cases virtio "$@"
if ((E2E_FAILED)) && [[ -z ${VIRTIO_WORK:-} ]]; then
    mkdir -p "$E2E_LOGDIR/virtio-images" && cp "$WORK"/*.img "$E2E_LOGDIR/virtio-images/" 2>/dev/null
fi
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
