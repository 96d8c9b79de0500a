# Booting an L2 guest with devices, for the e2e case files that run inside
# the test host (virtio_cases.sh, emulated_cases.sh). Source after lib.sh.
# The VMM is ringvisor, or QEMU with VIRTIO_VMM=qemu (checks the cases and
# the guest side against a reference VMM).
# shellcheck shell=bash

RINGVISOR=${RINGVISOR:-$E2E_ROOT/build/ringvisor}
GUEST=${GUEST:-$E2E_ROOT/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$E2E_ROOT/build/kernel-cache}
VMM=${VIRTIO_VMM:-ringvisor}
WORK=${VIRTIO_WORK:-$(mktemp -d /tmp/rv-e2e.XXXXXX)}
L2_TIMEOUT=${L2_TIMEOUT:-240}
NET_BYTES=${NET_BYTES:-104857600}   # 100 MiB each way
NET_TIMEOUT=${NET_TIMEOUT:-420}     # the net cases' L2 timeout (about 200 s needed)
TAP=rvtap0 HOST_IP=10.0.2.1 GUEST_IP=10.0.2.15 GUEST_MAC=52:54:00:12:34:56
mkdir -p "$WORK"

# vm_boot LOG 'guest command' [DEVICE...]: boots the guest (1 vCPU, 256M,
# initramfs $INITRD) with
#   disk=PATH[,ro][,ide]   virtio-blk, or an ATA disk on the PIIX IDE controller
#   net=TAP[,mac=MAC][,e1000]   virtio-net, or an emulated e1000
#   console (virtio, hvc0)  rng  cmdline=ARGS (more kernel arguments)
#   stats=FILE (ringvisor --stats: exit and device counters; ignored by QEMU)
# console output to LOG (stdout+stderr); returns the VMM's exit status.
vm_boot() {
    local log=$1 cmd=$2 d n=0 con=ttyS0 args=() extra= machine=microvm,rtc=on,pcie=on ide=0
    shift 2
    for d; do
        case $VMM:$d in
            *:cmdline=*) extra+=" ${d#cmdline=}" ;;
            ringvisor:stats=*) args+=(--stats "${d#stats=}") ;;
            qemu:stats=*) ;;
            ringvisor:disk=*,ide) d=${d#disk=}; args+=(--disk "${d%,ide},iface=ide") ;;
            ringvisor:disk=*) args+=(--disk "${d#disk=}") ;;
            ringvisor:net=*,e1000) d=${d#net=}; args+=(--net "tap=${d%,e1000},model=e1000") ;;
            ringvisor:net=*) args+=(--net "tap=${d#net=}") ;;
            ringvisor:console) args+=(--console virtio) ;;
            ringvisor:rng) args+=(--rng) ;;
            qemu:disk=*)
                local p=${d#disk=} ro= ifc=virtio-blk-pci
                [[ $p == *,ide ]] && { p=${p%,ide}; ifc=ide; }
                [[ $p == *,ro ]] && { p=${p%,ro}; ro=,readonly=on; }
                if [[ $ifc == ide ]]; then  # the PIIX3 IDE of QEMU's pc machine
                    machine=pc args+=(-drive "file=$p,format=raw,if=ide,index=$ide$ro"); ide=$((ide + 1))
                else
                    args+=(-drive "file=$p,format=raw,if=none,id=d$n$ro" -device "$ifc,drive=d$n")
                fi ;;
            qemu:net=*)
                local t=${d#net=} mac= model=virtio-net-pci
                [[ $t == *,e1000 ]] && { t=${t%,e1000}; model=e1000; }
                [[ $t == *,mac=* ]] && { mac=,mac=${t#*,mac=}; t=${t%%,*}; }
                args+=(-netdev "tap,id=n$n,ifname=$t,script=no,downscript=no"
                       -device "$model,netdev=n$n$mac") ;;
            qemu:console)
                args+=(-device virtio-serial-pci -chardev stdio,id=c0 -device virtconsole,chardev=c0) ;;
            qemu:rng) args+=(-device virtio-rng-pci) ;;
            *) e2e_fail "vm_boot: unknown device '$d' for $VMM"; return ;;
        esac
        [[ $d != console ]] || con=hvc0
        n=$((n + 1))
    done
    local cmdline="console=$con panic=-1 quiet$extra rv.cmd=$(guest_cmd_b64 "$cmd")"
    if [[ $VMM == qemu ]]; then
        [[ $con == hvc0 ]] && args+=(-serial null) || args+=(-serial stdio)
        timeout -k 5 "$L2_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host \
            -M "$machine" -m 256 -smp 1 -nodefaults -no-user-config -display none \
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

# ---- disks -----------------------------------------------------------------

# ext4_poweroff_case NAME DEV DISKSPEC...: on a fresh 64 MiB raw image the
# guest makes ext4 on /dev/DEV, writes files, records their checksums, syncs,
# unmounts and powers off. Then L1 checks the file system (e2fsck -fn) and the
# files (debugfs dump) against those checksums: nothing lost after a flush.
# DISKSPEC is vm_boot's disk= argument without the path (e.g. "" or ",ide").
ext4_poweroff_case() {
    local name=$1 dev=$2 spec=$3 img=$WORK/$1.img log=$E2E_LOGDIR/$1.console rc=0 out=$WORK/$1-out
    rm -rf "$img" "$out"; mkdir -p "$out"
    truncate -s 64M "$img"
    vm_boot "$log" "set -e; $(wait_dev "$dev") mkfs.ext4 -q -F /dev/$dev; mount -t ext4 /dev/$dev /mnt; cd /mnt
echo hello from the guest >small.txt; head -c 8388608 /dev/urandom >big.bin
mkdir dir; seq 1 20000 >dir/seq.txt; dd if=/dev/urandom of=dir/odd.bin bs=1000 count=777 2>/dev/null
sha256sum small.txt big.bin dir/seq.txt dir/odd.bin | sed 's/^/SUM /'; cd /; sync; umount /mnt" \
        "disk=$img$spec" || rc=$?
    expect_clean_exit "$log" $rc
    local sums; sums=$(grep -a '^SUM ' "$log" | tr -d '\r')
    [[ $(wc -l <<<"$sums") -eq 4 ]] || e2e_fail "expected 4 checksums from the guest, got: $sums"
    e2fsck -fn "$img" || e2e_fail "e2fsck -fn found problems in the image after power-off"
    local hash file
    while read -r _ hash file; do
        mkdir -p "$out/$(dirname "$file")"
        debugfs -R "dump /$file $out/$file" "$img" 2>/dev/null
        [[ -f "$out/$file" ]] || e2e_fail "$file is missing from the image"
        [[ $(sha256sum <"$out/$file" | cut -d' ' -f1) == "$hash" ]] ||
            e2e_fail "$file differs from what the guest wrote ($(stat -c %s "$out/$file") bytes in the image)"
        echo "ok: $file ($(stat -c %s "$out/$file") bytes) $hash"
    done <<<"$sums"
}

# ---- network ---------------------------------------------------------------

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
echo NETDRV=\$(basename \$(readlink /sys/class/net/eth0/device/driver))
up() { cut -d' ' -f1 /proc/uptime; }"
net_checks() {  # LOG [DRIVER]: ping replies, the MAC, eth0's driver (default virtio_net)
    grep -aqE '[1-9][0-9]* packets received' "$1" || e2e_fail "no ping replies from $HOST_IP"
    [[ $(guest_value "$1" NETDRV) == "${2:-virtio_net}" ]] ||
        e2e_fail "eth0 is driven by '$(guest_value "$1" NETDRV)', expected ${2:-virtio_net}"
    [[ $(guest_value "$1" MAC) == "$GUEST_MAC" ]] || e2e_fail "guest MAC $(guest_value "$1" MAC), expected $GUEST_MAC"
}


# The guest configures eth0, pings L1, then
#  - receives NET_BYTES of L1's random data (L1: socat -u to port 5002; the
#    guest: busybox nc) and hashes it as it arrives: SHA-256 must match;
#  - serves a 1 MiB random block with busybox httpd, which L1 fetches
#    NET_BYTES/1 MiB times with curl (sendfile: large TCP writes, cheap for the
#    slow nested guest): L1 checks the total size and every 1 MiB against the
#    block's SHA-256, then tells the guest it is done (port 9000).
net_transfer_case() {  # NAME NETSPEC ("" or ",e1000") [L2 TIMEOUT, default NET_TIMEOUT]
    local driver=virtio_net; [[ $2 == *e1000* ]] && driver=e1000
    local L2_TIMEOUT=${3:-$NET_TIMEOUT}   # (vm_boot sees it: dynamic scope)
    local log=$E2E_LOGDIR/$1.console rc=0 t=$((L2_TIMEOUT + 10)) mib=$((NET_BYTES / 1048576))
    local stats=$E2E_LOGDIR/$1.stats.json
    net_setup
    head -c "$NET_BYTES" /dev/urandom >"$dir/h2g.bin"
    timeout "$t" socat -u "OPEN:$dir/h2g.bin,rdonly" "TCP-LISTEN:5002,bind=$HOST_IP,reuseaddr" &
    pids+=($!)
    (
        url=http://$GUEST_IP:8080/blk
        # Wait until httpd listens (the guest boots, then receives first):
        # a connection that is refused is not a transfer. Once it listens,
        # no fetch is retried: a failed transfer fails the case.
        timeout "$t" bash -c "until (exec 3<>/dev/tcp/$GUEST_IP/8080) 2>/dev/null; do sleep 1; done" || exit 1
        for ((i = 0; i < mib; i++)); do
            timeout "$t" curl -sf "$url" || exit 1
        done >"$dir/g2h.bin"
        # "done": one connection to the guest's nc, which listens since before
        # the first block was served; refused is a failure, not retried.
        timeout 60 bash -c "exec 3<>/dev/tcp/$GUEST_IP/9000" || exit 1
    ) &
    pids+=($!)
    local t0=$SECONDS
    # NETMON lines every 20 s: whether a slow or stuck transfer still moves.
    vm_boot "$log" "set -e; $(wait_dev eth0) $GUEST_NET_UP
(s=/sys/class/net/eth0/statistics; while sleep 20; do echo NETMON rx_packets=\$(cat \$s/rx_packets) tx_packets=\$(cat \$s/tx_packets) irqs=\$(awk '/eth0/ {print \$2}' /proc/interrupts); done) &
t=\$(up); echo H2G=\$(nc $HOST_IP 5002 </dev/null | sha256sum | cut -d' ' -f1) H2G_S=\$(echo \$(up) \$t | awk '{print \$1-\$2}')
mkdir -p /tmp/www; head -c 1048576 /dev/urandom >/tmp/www/blk; echo BLOCK=\$(sha256sum </tmp/www/blk | cut -d' ' -f1)
t=\$(up); httpd -p 8080 -h /tmp/www; nc -l -p 9000 >/dev/null
echo G2H_S=\$(echo \$(up) \$t | awk '{print \$1-\$2}')" \
        "net=$TAP,mac=$GUEST_MAC$2" "stats=$stats" || rc=$?
    local secs=$((SECONDS - t0))
    # The NIC's own view at exit (ring indexes, interrupt state), for a stall.
    [[ ! -s $stats ]] || python3 -c 'import json, sys
for d in json.load(open(sys.argv[1])).get("pci_devices", []):
    if d["counters"]: print("device", d["slot"], d["name"], " ".join(f"{k}={v}" for k, v in d["counters"].items()))' "$stats" || true
    expect_clean_exit "$log" $rc
    wait "${pids[@]}" || true
    pids=()
    local block got chunks h2g_guest h2g_host
    block=$(guest_value "$log" BLOCK) h2g_guest=$(guest_value "$log" H2G)
    got=$(stat -c %s "$dir/g2h.bin")
    chunks=$(split -b 1048576 --filter='sha256sum' "$dir/g2h.bin" | cut -d' ' -f1 | sort | uniq -c | tr -s ' ')
    h2g_host=$(sha256sum <"$dir/h2g.bin" | cut -d' ' -f1)
    echo "boot+test ${secs} s; $NET_BYTES bytes host->guest in $(guest_value "$log" H2G_S) s (incl. hashing), guest->host in $(guest_value "$log" G2H_S) s"
    echo "g2h: $got bytes, 1 MiB chunks by hash:$chunks (guest block $block); h2g host $h2g_host guest $h2g_guest"
    net_checks "$log" "$driver"
    [[ -n $h2g_guest && $h2g_guest == "$h2g_host" ]] || e2e_fail "host->guest data differ: host $h2g_host, guest $h2g_guest"
    [[ -n $block && $got == "$NET_BYTES" && $chunks == " $mib $block" ]] ||
        e2e_fail "guest->host data differ: $got bytes, chunks$chunks, guest block $block"
    # Linux posts mergeable buffers of 1.5 KiB and more, a ring of them:
    # virtio-net reads most packets straight into them (and the data above
    # arrived whole).
    if [[ $driver == virtio_net ]]; then
        python3 -c 'import json, sys
c = next(d["counters"] for d in json.load(open(sys.argv[1]))["pci_devices"] if "rx_in_place" in d["counters"])
print("rx packets", c["rx_packets"], "read in place", c["rx_in_place"])
sys.exit(0 if c["rx_in_place"] * 2 >= c["rx_packets"] > 0 else 1)' "$stats" ||
            e2e_fail "virtio-net read fewer than half the packets into the guest's buffers in place"
    fi
}

# net_ping_case NAME NETSPEC: eth0 with the configured MAC on the TAP, pings to L1.
net_ping_case() {
    local log=$E2E_LOGDIR/$1.console rc=0 driver=virtio_net
    [[ $2 == *e1000* ]] && driver=e1000
    net_setup
    vm_boot "$log" "set -e; $(wait_dev eth0) $GUEST_NET_UP" "net=$TAP,mac=$GUEST_MAC$2" || rc=$?
    expect_clean_exit "$log" $rc
    net_checks "$log" "$driver"
    grep -a "packets received" "$log"
}
