#!/usr/bin/env bash
# End-to-end virtio cases for ringvisor, run inside the test host (one L1 boot
# serves them all; tests/e2e/run.sh runs them after boot_cases.sh). Each case
# boots the Debian kernel with build/guest/initramfs-virtio.cpio.gz (virtio
# drivers, ext4, e2fsprogs) and some virtio-pci devices, and checks both the
# guest's view and the host (L1) side: disk images, the TAP, the console.
#   tests/e2e/run.sh                          (from the host: builds, boots L1, runs this)
#   tools/testhost/run.sh -- tests/e2e/virtio_cases.sh [CASE...]   (only these cases)
#   E2E_NET_TRANSFER=1 tests/e2e/run.sh      adds net_ping_and_transfer (100 MiB each
#                                            way, about 3 min); net_full_duplex_echo
#                                            runs only when named
#   VIRTIO_VMM=qemu ...                       the same cases with QEMU as the L2 VMM
#                                             (checks the cases and the guest side)
# Disk images and transfer files go to $VIRTIO_WORK (default: a fresh directory
# in L1's /tmp, a tmpfs: the 9p results share is several times slower for
# e2fsck/debugfs). After a failure the disk images are copied to $E2E_LOGDIR.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$E2E_ROOT"

RINGVISOR=${RINGVISOR:-$E2E_ROOT/build/ringvisor}
GUEST=${GUEST:-$E2E_ROOT/build/guest}
INITRD=${VIRTIO_INITRD:-$GUEST/initramfs-virtio.cpio.gz}
KERNEL_CACHE=${KERNEL_CACHE:-$E2E_ROOT/build/kernel-cache}
VMM=${VIRTIO_VMM:-ringvisor}
WORK=${VIRTIO_WORK:-$(mktemp -d /tmp/rv-virtio.XXXXXX)}
L2_TIMEOUT=${L2_TIMEOUT:-240}
NET_BYTES=${NET_BYTES:-104857600}   # 100 MiB each way
NET_TIMEOUT=${NET_TIMEOUT:-420}     # the net cases' L2 timeout (about 200 s needed)
TAP=rvtap0 HOST_IP=10.0.2.1 GUEST_IP=10.0.2.15 GUEST_MAC=52:54:00:12:34:56
mkdir -p "$WORK"

# vm_boot LOG 'guest command' [DEVICE...]: boots the guest (1 vCPU, 256M) with
#   disk=PATH[,ro]  net=TAP[,mac=MAC]  console (virtio, hvc0)  rng
# console output to LOG (stdout+stderr); returns the VMM's exit status.
vm_boot() {
    local log=$1 cmd=$2 d n=0 con=ttyS0 args=()
    shift 2
    for d; do
        case $VMM:$d in
            ringvisor:disk=*) args+=(--disk "${d#disk=}") ;;
            ringvisor:net=*) args+=(--net "tap=${d#net=}") ;;
            ringvisor:console) args+=(--console virtio) ;;
            ringvisor:rng) args+=(--rng) ;;
            qemu:disk=*)
                local p=${d#disk=} ro=
                [[ $p == *,ro ]] && { p=${p%,ro}; ro=,readonly=on; }
                args+=(-drive "file=$p,format=raw,if=none,id=d$n$ro" -device "virtio-blk-pci,drive=d$n") ;;
            qemu:net=*)
                local t=${d#net=} mac=
                [[ $t == *,mac=* ]] && { mac=,mac=${t#*,mac=}; t=${t%%,*}; }
                args+=(-netdev "tap,id=n$n,ifname=$t,script=no,downscript=no"
                       -device "virtio-net-pci,netdev=n$n$mac") ;;
            qemu:console)
                args+=(-device virtio-serial-pci -chardev stdio,id=c0 -device virtconsole,chardev=c0) ;;
            qemu:rng) args+=(-device virtio-rng-pci) ;;
            *) e2e_fail "vm_boot: unknown device '$d' for $VMM"; return ;;
        esac
        [[ $d != console ]] || con=hvc0
        n=$((n + 1))
    done
    local cmdline="console=$con panic=-1 quiet rv.cmd=$(guest_cmd_b64 "$cmd")"
    if [[ $VMM == qemu ]]; then
        [[ $con == hvc0 ]] && args+=(-serial null) || args+=(-serial stdio)
        timeout -k 5 "$L2_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host \
            -M microvm,rtc=on,pcie=on -m 256 -smp 1 -nodefaults -no-user-config -display none \
            -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$INITRD" -append "$cmdline" "${args[@]}" \
            </dev/null >"$log" 2>&1
    else
        [[ -d $KERNEL_CACHE ]] && args+=(--kernel-cache "$KERNEL_CACHE")
        timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --kernel "$GUEST/vmlinuz" --initrd "$INITRD" \
            --cpus 1 --memory 256M "${args[@]}" --cmdline "$cmdline" </dev/null >"$log" 2>&1
    fi
}

# The value printed by the guest as KEY=value.
guest_value() { grep -a -o "$2=[^[:space:]]*" "$1" | tail -n 1 | cut -d= -f2- | tr -d '\r'; }

expect_clean_exit() {  # LOG STATUS
    [[ $2 -eq 0 ]] || e2e_fail "$VMM exited $2: $(tail -n 3 "$1" | tr -d '\r')"
    grep -aq RINGVISOR-GUEST-INIT "$1" || e2e_fail "guest never reached init"
    grep -aq "RINGVISOR-CMD-EXIT=0" "$1" ||
        e2e_fail "guest command failed: $(grep -a -B2 RINGVISOR-CMD-EXIT "$1" | tr -d '\r' | tr '\n' ' ')"
}

# Guest shell snippet: wait up to 5 s for the named /dev entries.
wait_dev() { echo "for d in $*; do i=0; while [ ! -e /dev/\$d ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done; done;"; }

# ---- block -----------------------------------------------------------------

# A fresh raw image: the guest makes ext4 on /dev/vda, writes files, records
# their checksums, syncs, unmounts and powers off. Then L1 checks the file
# system (e2fsck -fn) and the files (debugfs dump) against those checksums.
case_blk_ext4() {
    local img=$WORK/ext4.img log=$E2E_LOGDIR/blk-ext4.console rc=0 out=$WORK/ext4-out
    rm -rf "$img" "$out"; mkdir -p "$out"
    truncate -s 64M "$img"
    vm_boot "$log" "set -e; $(wait_dev vda) mkfs.ext4 -q -F /dev/vda; mount -t ext4 /dev/vda /mnt; cd /mnt
echo hello from the guest >small.txt; head -c 8388608 /dev/urandom >big.bin
mkdir dir; seq 1 20000 >dir/seq.txt; dd if=/dev/urandom of=dir/odd.bin bs=1000 count=777 2>/dev/null
sha256sum small.txt big.bin dir/seq.txt dir/odd.bin | sed 's/^/SUM /'; cd /; sync; umount /mnt" \
        "disk=$img" || rc=$?
    expect_clean_exit "$log" $rc
    local sums; sums=$(grep -a '^SUM ' "$log" | tr -d '\r')
    [[ $(wc -l <<<"$sums") -eq 4 ]] || e2e_fail "expected 4 checksums from the guest, got: $sums"
    e2fsck -fn "$img" || e2e_fail "e2fsck -fn found problems in the image after power-off"
    local hash name
    while read -r _ hash name; do
        mkdir -p "$out/$(dirname "$name")"
        debugfs -R "dump /$name $out/$name" "$img" 2>/dev/null
        [[ -f "$out/$name" ]] || e2e_fail "$name is missing from the image"
        [[ $(sha256sum <"$out/$name" | cut -d' ' -f1) == "$hash" ]] ||
            e2e_fail "$name differs from what the guest wrote ($(stat -c %s "$out/$name") bytes in the image)"
        echo "ok: $name ($(stat -c %s "$out/$name") bytes) $hash"
    done <<<"$sums"
}

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

# net_setup: TAP $TAP with $HOST_IP on L1, a scratch dir $dir in L1's /tmp
# and an EXIT trap (run_case's subshell) that removes both and stops $pids.
net_setup() {
    dir=$(mktemp -d /tmp/rv-net.XXXXXX) pids=()   # not local: the trap uses them
    trap 'ip link del "$TAP" 2>/dev/null; ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
    ip link del "$TAP" 2>/dev/null || true
    ip tuntap add dev "$TAP" mode tap
    ip addr add "$HOST_IP/24" dev "$TAP"
    ip link set "$TAP" up
}
# Guest shell: eth0 up with $GUEST_IP, ping L1, print the MAC; up() = uptime.
GUEST_NET_UP="ip link set lo up; ip addr add $GUEST_IP/24 dev eth0; ip link set eth0 up
ping -c 3 -w 30 $HOST_IP | tail -n 2; echo MAC=\$(cat /sys/class/net/eth0/address)
up() { cut -d' ' -f1 /proc/uptime; }"
net_checks() {  # LOG: ping replies and the MAC
    grep -aqE '[1-9][0-9]* packets received' "$1" || e2e_fail "no ping replies from $HOST_IP"
    [[ $(guest_value "$1" MAC) == "$GUEST_MAC" ]] || e2e_fail "guest MAC $(guest_value "$1" MAC), expected $GUEST_MAC"
}

# The guest configures eth0, pings L1, streams NET_BYTES from its
# /dev/urandom to L1 (port 5001), then receives NET_BYTES of L1's random data
# (port 5002): busybox nc in the guest, socat -u in L1 (one direction only,
# so the guest nc's half-close does not end it). SHA-256 must match on both
# ends. The guest hashes while it streams: nothing that size stays in its RAM.
case_net() {
    local L2_TIMEOUT=$NET_TIMEOUT   # (vm_boot sees it: dynamic scope)
    local log=$E2E_LOGDIR/net.console rc=0 t=$((L2_TIMEOUT + 10))
    net_setup
    head -c "$NET_BYTES" /dev/urandom >"$dir/h2g.bin"
    timeout "$t" socat -u "TCP-LISTEN:5001,bind=$HOST_IP,reuseaddr" "CREATE:$dir/g2h.bin" &
    pids+=($!)
    timeout "$t" socat -u "OPEN:$dir/h2g.bin,rdonly" "TCP-LISTEN:5002,bind=$HOST_IP,reuseaddr" &
    pids+=($!)
    local t0=$SECONDS
    vm_boot "$log" "set -e; $(wait_dev eth0) $GUEST_NET_UP
mkfifo /tmp/f; sha256sum </tmp/f >/tmp/s & t=\$(up)
head -c $NET_BYTES /dev/urandom | tee /tmp/f | nc $HOST_IP 5001; wait
echo G2H=\$(cut -d' ' -f1 /tmp/s) G2H_S=\$(echo \$(up) \$t | awk '{print \$1-\$2}'); t=\$(up)
echo H2G=\$(nc $HOST_IP 5002 </dev/null | sha256sum | cut -d' ' -f1) H2G_S=\$(echo \$(up) \$t | awk '{print \$1-\$2}')" \
        "net=$TAP,mac=$GUEST_MAC" || rc=$?
    local secs=$((SECONDS - t0))
    expect_clean_exit "$log" $rc
    wait "${pids[@]}" || true
    pids=()
    local g2h_guest g2h_host h2g_guest h2g_host
    g2h_guest=$(guest_value "$log" G2H) h2g_guest=$(guest_value "$log" H2G)
    g2h_host=$(sha256sum <"$dir/g2h.bin" | cut -d' ' -f1) h2g_host=$(sha256sum <"$dir/h2g.bin" | cut -d' ' -f1)
    echo "boot+test ${secs} s; $NET_BYTES bytes guest->host in $(guest_value "$log" G2H_S) s (incl. urandom and hashing), host->guest in $(guest_value "$log" H2G_S) s"
    echo "g2h guest $g2h_guest host $g2h_host ($(stat -c %s "$dir/g2h.bin") bytes); h2g host $h2g_host guest $h2g_guest"
    net_checks "$log"
    [[ -n $g2h_guest && $g2h_guest == "$g2h_host" ]] || e2e_fail "guest->host data differ: guest $g2h_guest, host $g2h_host"
    [[ -n $h2g_guest && $h2g_guest == "$h2g_host" ]] || e2e_fail "host->guest data differ: host $h2g_host, guest $h2g_guest"
}

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

# The network smoke test run by default: eth0 with the configured MAC on the
# TAP, pings to L1. (The 100 MiB transfer above runs with E2E_NET_TRANSFER=1.)
case_net_ping() {
    local log=$E2E_LOGDIR/net-ping.console rc=0
    net_setup
    vm_boot "$log" "set -e; $(wait_dev eth0) $GUEST_NET_UP" "net=$TAP,mac=$GUEST_MAC" || rc=$?
    expect_clean_exit "$log" $rc
    net_checks "$log"
    grep -a "packets received" "$log"
}

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
    "net_ping case_net_ping"
    "console_hvc0 case_console_hvc0"
    "hwrng_yields_data case_hwrng"
)
# Run only when named on the command line; the transfer also with E2E_NET_TRANSFER=1.
EXTRA_CASES=("net_ping_and_transfer case_net" "net_full_duplex_echo case_net_duplex")
[[ ${E2E_NET_TRANSFER:-0} == 1 ]] && CASES+=("net_ping_and_transfer case_net")
[[ -s $INITRD ]] || { echo "virtio cases: $INITRD missing (tools/guest/build.sh)"; exit 1; }
if [[ $VMM == qemu ]]; then
    echo "e2e virtio cases under QEMU: $(qemu-system-x86_64 --version | head -1)"
else
    echo "ringvisor e2e virtio cases: $("$RINGVISOR" check | head -2 | tr '\n' ' ')"
fi
if (($#)); then
    selected=()
    for c in "${CASES[@]}" "${EXTRA_CASES[@]}"; do
        printf '%s\n' "$@" | grep -qx "${c%% *}" && selected+=("$c")
    done
    ((${#selected[@]})) || { echo "virtio cases: no case named $*"; exit 1; }
    CASES=("${selected[@]}")
fi
for c in "${CASES[@]}"; do
    read -r name fn <<<"$c"
    t0=$SECONDS
    run_case "$name" "$fn"
    echo "    ($((SECONDS - t0)) s)"
done
if ((E2E_FAILED)) && [[ -z ${VIRTIO_WORK:-} ]]; then
    mkdir -p "$E2E_LOGDIR/virtio-images" && cp "$WORK"/*.img "$E2E_LOGDIR/virtio-images/" 2>/dev/null
fi
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
