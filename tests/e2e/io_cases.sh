#!/usr/bin/env bash
# Fair and limited disk I/O between VMs (issue 14), inside the test host. Two
# guests (two ringvisor processes) read the same image at the same time,
# read-only with O_DIRECT, over and over. L1 measures each one's rate from
# its own GET /accounting (the drive's read_bytes, counted when a read
# completes) over one window, once both are reading:
#   - equal per-drive limits: the two rates are within 10 % of each other;
#   - both drives in one rate limit group of L bytes/s (their own limits
#     higher than half of it): the sum stays at or below L over the window,
#     plus what the group's bucket (full at the start) and the reads in
#     flight at its start explain, and reaches at least 0.6 L. One VM is
#     configured by flags, the other by --config-file, with the same group;
#     a third that defines the group with other limits is refused (exit 2)
#     naming both; the group's file outlives the first VM to exit and goes
#     with the last;
#   - io.max (cgroup v2) holds a VM's reads to its rbps, changed by PATCH.
#   tools/testhost/run.sh -- tests/e2e/io_cases.sh [CASE...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

INITRD=${VIRTIO_INITRD:-$GUEST/initramfs-virtio.cpio.gz}
RUN=$WORK/run   # RINGVISOR_RUN_DIR: the API sockets and rate-limit-groups/
IMG=$WORK/shared.img
IMG_MIB=64
WINDOW=20       # seconds measured, both guests reading throughout
# 256 KiB reads: each fits a bucket whole (a larger one would pass from a
# full bucket and leave a debt: the same long-run rate, coarser steps).
BS=$((256 << 10))
DRIVE_SIZE=$((512 << 10)) DRIVE_REFILL_MS=250   # 2 MiB/s per drive
GROUP_SIZE=$((768 << 10)) GROUP_REFILL_MS=250   # 3 MiB/s for the group

READER="$(wait_dev vda) echo READING; while :; do dd if=/dev/vda of=/dev/null bs=$BS iflag=direct 2>/dev/null; done"
CMDLINE="console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd_b64 "$READER")"
export RINGVISOR_RUN_DIR=$RUN

# vm NAME ARGS...: ringvisor with its API socket $RUN/NAME.sock, in the
# background (pid in vms[NAME]), console in $E2E_LOGDIR/io-NAME.console.
declare -A vms
vm() {
    local name=$1
    shift
    rm -f "$RUN/$name.sock"
    "$RINGVISOR" run --api-sock "$RUN/$name.sock" --kernel-cache "$KERNEL_CACHE" "$@" \
        </dev/null >"$E2E_LOGDIR/io-$name.console" 2>&1 &
    vms[$name]=$!
}
vm_flags() {  # NAME ARGS...: the guest, configured by flags
    local name=$1
    shift
    vm "$name" --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --cpus 1 --memory 128M \
        --cmdline "$CMDLINE" "$@"
}
stop_vm() {  # NAME: SIGTERM, then its exit status must be 130
    local rc=0
    kill -TERM "${vms[$1]}" 2>/dev/null
    wait "${vms[$1]}" || rc=$?
    unset "vms[$1]"
    ((rc == 130)) || e2e_fail "VM $1 exited $rc, not 130 (SIGTERM): $(tail -n 3 "$E2E_LOGDIR/io-$1.console")"
}
setup() {
    rm -rf "$RUN"
    mkdir -p "$RUN"
    [[ -s $IMG ]] || head -c $((IMG_MIB << 20)) /dev/urandom >"$IMG"
    # (not local: the trap runs in run_case's subshell after we return)
    trap 'for p in "${vms[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
}
wait_reading() {  # NAME...: each guest reads its disk
    local n
    for n; do
        e2e_wait_line "$E2E_LOGDIR/io-$n.console" READING 400 ||
            e2e_fail "guest $n is not reading: $(tail -n 3 "$E2E_LOGDIR/io-$n.console" | tr -d '\r')"
    done
}
# sample NAME: "NS BYTES" in $sampled: L1's clock (ns) at the middle of the
# request, and the read_bytes of the VM's drive "data".
sample() {
    local t0 t1 out bytes
    t0=$(date +%s%N)
    out=$(curl -sS --max-time 10 --unix-socket "$RUN/$1.sock" http://localhost/accounting) ||
        e2e_fail "GET /accounting of $1 failed"
    t1=$(date +%s%N)
    bytes=$(jq -r '.total.block.data.read_bytes' <<<"$out")
    [[ $bytes =~ ^[0-9]+$ ]] || e2e_fail "GET /accounting of $1: no read_bytes for drive data: $out"
    sampled="$(((t0 + t1) / 2)) $bytes"
}
# measure NAME... : each VM's "t0 b0 t1 b1" over one WINDOW, in measured[NAME].
declare -A measured
measure() {
    local n
    for n; do
        sample "$n"
        measured[$n]=$sampled
    done
    sleep "$WINDOW"
    for n; do
        sample "$n"
        measured[$n]+=" $sampled"
    done
}
rate() {  # NAME -> bytes per second over its window
    local t0 b0 t1 b1
    read -r t0 b0 t1 b1 <<<"${measured[$1]}"
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%d", b / (t / 1e9) }'
}
mib() { awk -v r="$1" 'BEGIN { printf "%.3f", r / 1048576 }'; }

case_equal_limits() {
    setup
    local lim=bw_size=$DRIVE_SIZE,bw_refill_time=$DRIVE_REFILL_MS
    vm_flags a --disk "$IMG,ro,id=data,$lim"
    vm_flags b --disk "$IMG,ro,id=data,$lim"
    wait_reading a b
    sleep 3  # both in their loops
    measure a b
    local ra rb limit=$((DRIVE_SIZE * 1000 / DRIVE_REFILL_MS))
    ra=$(rate a) rb=$(rate b)
    echo "equal limits of $(mib $limit) MiB/s: guest a $(mib "$ra") MiB/s, guest b $(mib "$rb") MiB/s over ${WINDOW} s"
    awk -v a="$ra" -v b="$rb" 'BEGIN { hi = a > b ? a : b; lo = a > b ? b : a; exit !(lo > 0 && hi <= 1.1 * lo) }' ||
        e2e_fail "the guests read at $(mib "$ra") and $(mib "$rb") MiB/s: not within 10 % of each other"
    stop_vm a
    stop_vm b
}

case_group_limit() {
    setup
    local group=bw_size=$GROUP_SIZE,bw_refill_time=$GROUP_REFILL_MS
    local own=bw_size=$DRIVE_SIZE,bw_refill_time=$DRIVE_REFILL_MS
    vm_flags a --rate-limit-group "id=shared,$group" --disk "$IMG,ro,id=data,$own,rate_limit_group=shared"
    # The same group through --config-file (and the JSON's names).
    jq -n --arg k "$GUEST/vmlinuz" --arg i "$INITRD" --arg c "$CMDLINE" --arg img "$IMG" \
        --argjson gs "$GROUP_SIZE" --argjson gr "$GROUP_REFILL_MS" \
        --argjson ds "$DRIVE_SIZE" --argjson dr "$DRIVE_REFILL_MS" '{
        "boot-source": {kernel_image_path: $k, initrd_path: $i, boot_args: $c},
        "machine-config": {vcpu_count: 1, mem_size_mib: 128},
        "rate-limit-groups": [{id: "shared", rate_limiter: {bandwidth: {size: $gs, refill_time: $gr}}}],
        drives: [{drive_id: "data", path_on_host: $img, is_root_device: false, is_read_only: true,
                  rate_limiter: {bandwidth: {size: $ds, refill_time: $dr}}, rate_limit_group: "shared"}]
    }' >"$WORK/b.json"
    vm b --config-file "$WORK/b.json"
    wait_reading a b
    local file=$RUN/rate-limit-groups/shared
    [[ -f $file ]] || e2e_fail "no group file $file"
    echo "group file: $(stat -c '%n %s bytes, mode %a' "$file")"

    # Another VM defining the group with other limits: refused, naming both.
    local rc=0
    "$RINGVISOR" run --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --memory 128M --kernel-cache "$KERNEL_CACHE" \
        --rate-limit-group "id=shared,bw_size=$((GROUP_SIZE * 2)),bw_refill_time=$GROUP_REFILL_MS" \
        --disk "$IMG,ro,rate_limit_group=shared" </dev/null >"$WORK/c.out" 2>&1 || rc=$?
    echo "a third VM with other limits: exit $rc: $(tail -n 1 "$WORK/c.out")"
    ((rc == 2)) || e2e_fail "a VM with other limits for the group exited $rc, not 2"
    grep -q "size $((GROUP_SIZE * 2))" "$WORK/c.out" && grep -q "size $GROUP_SIZE," "$WORK/c.out" ||
        e2e_fail "the refusal does not name both limits: $(cat "$WORK/c.out")"

    sleep 3
    measure a b
    local ta0 ba0 ta1 ba1 tb0 bb0 tb1 bb1
    read -r ta0 ba0 ta1 ba1 <<<"${measured[a]}"
    read -r tb0 bb0 tb1 bb1 <<<"${measured[b]}"
    local sum=$((ba1 - ba0 + bb1 - bb0)) limit=$((GROUP_SIZE * 1000 / GROUP_REFILL_MS))
    # Every byte counted was granted between the earlier start and the later
    # end (or was in flight at the start: one read per guest), from a bucket
    # that held at most GROUP_SIZE then.
    local union=$(((ta1 > tb1 ? ta1 : tb1) - (ta0 < tb0 ? ta0 : tb0)))
    local common=$(((ta1 < tb1 ? ta1 : tb1) - (ta0 > tb0 ? ta0 : tb0)))
    local cap floor
    cap=$(awk -v l="$limit" -v t="$union" -v k=$((GROUP_SIZE + 2 * BS)) 'BEGIN { printf "%d", l * t / 1e9 + k }')
    floor=$(awk -v l="$limit" -v t="$common" 'BEGIN { printf "%d", 0.6 * l * t / 1e9 }')
    echo "group of $(mib $limit) MiB/s: guest a $(mib "$(rate a)") MiB/s, guest b $(mib "$(rate b)") MiB/s," \
        "together $sum bytes in $(awk -v t="$union" 'BEGIN { printf "%.2f", t / 1e9 }') s" \
        "= $(mib "$(awk -v b="$sum" -v t="$union" 'BEGIN { printf "%d", b / (t / 1e9) }')") MiB/s" \
        "(at most $cap bytes, at least $floor)"
    ((sum <= cap)) || e2e_fail "the group's drives read $sum bytes, more than $cap (limit x window + bucket + reads in flight)"
    ((sum >= floor)) || e2e_fail "the group's drives read $sum bytes, less than 0.6 of the limit ($floor)"

    # One VM exits: the group stays for the other, which reads on.
    stop_vm a
    [[ -f $file ]] || e2e_fail "the group file went with the first VM"
    local s0 s1
    sample b
    s0=${sampled#* }
    sleep 2
    sample b
    s1=${sampled#* }
    echo "after a exited: b read $((s1 - s0)) bytes in 2 s"
    ((s1 > s0)) || e2e_fail "b stopped reading once a had exited"
    stop_vm b
    [[ ! -e $file ]] || e2e_fail "the group file is left after the last VM exited"
}

# io.max (--io-max; machine-config's io_max, PATCHed while running): the
# kernel's blk-throttle caps the VM's reads at the block device its image is
# on (here the image behind a loop device, given as the drive: L1's /tmp is
# a tmpfs, which no io.max can name); an image on tmpfs is refused (exit 2)
# saying so.
case_io_max() {
    setup
    local cg=/sys/fs/cgroup loopdev= dev file
    trap 'for p in "${vms[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null
          [[ -n ${loopdev:-} ]] && losetup -d "$loopdev"
          echo "-io" >'"$cg"'/cgroup.subtree_control 2>/dev/null; umount '"$cg"' 2>/dev/null' EXIT
    mountpoint -q $cg || mount -t cgroup2 none $cg || e2e_fail "cannot mount cgroup2"
    # (L1 loads no loop driver itself: the guest kernel's modules are L1's.)
    [[ -e /dev/loop-control ]] ||
        insmod "$GUEST/rootfs-kernel/lib/modules/$(uname -r)/kernel/drivers/block/loop.ko" ||
        e2e_fail "cannot load the loop driver"
    loopdev=$(losetup -f --show "$IMG") || e2e_fail "losetup failed"
    dev=$(lsblk -dno MAJ:MIN "$loopdev" | tr -d ' ')
    vm_flags a --disk "$loopdev,ro,id=data,cache=none" --io-max rbps=$((1 << 20))
    wait_reading a
    file=$cg/ringvisor/rv-${vms[a]}/io.max
    echo "$file: $(cat "$file" 2>&1)"
    grep -qx "$dev rbps=1048576 wbps=max riops=max wiops=max" "$file" || e2e_fail "io.max is not set for $dev"
    # held MIB: after 3 s, a's rate over a window is within 0.6..1.1 x MIB MiB/s.
    held() {
        local rate
        sleep 3
        measure a
        rate=$(rate a)
        echo "io.max rbps $1 MiB/s: the guest read $(mib "$rate") MiB/s over ${WINDOW} s"
        awk -v r="$rate" -v l="$1" 'BEGIN { exit !(r >= 0.6 * l * 1048576 && r <= 1.1 * l * 1048576) }' ||
            e2e_fail "with io.max rbps=$1 MiB/s the guest read $(mib "$rate") MiB/s"
    }
    held 1
    local code
    code=$(curl -sS -o "$WORK/patch.out" -w '%{http_code}' --unix-socket "$RUN/a.sock" -X PATCH \
        -H 'Content-Type: application/json' -d '{"io_max": "rbps=3145728"}' http://localhost/machine-config)
    [[ $code == 204 ]] || e2e_fail "PATCH io_max: $code $(cat "$WORK/patch.out")"
    grep -qx "$dev rbps=3145728 wbps=max riops=max wiops=max" "$file" || e2e_fail "after PATCH: $(cat "$file")"
    held 3
    stop_vm a

    # An image on tmpfs: nothing for io.max to name.
    local rc=0
    "$RINGVISOR" run --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --memory 128M --kernel-cache "$KERNEL_CACHE" \
        --disk "$IMG,ro" --io-max rbps=1048576 </dev/null >"$WORK/tmpfs.out" 2>&1 || rc=$?
    echo "--io-max with an image on tmpfs: exit $rc: $(tail -n 1 "$WORK/tmpfs.out")"
    ((rc == 2)) || e2e_fail "--io-max with an image on tmpfs exited $rc, not 2"
    grep -q "no block device" "$WORK/tmpfs.out" || e2e_fail "unclear refusal: $(cat "$WORK/tmpfs.out")"
}

CASES=("io_equal_drive_limits_equal_rates case_equal_limits"
       "io_group_limit_holds_the_sum case_group_limit"
       "io_max_caps_reads_at_the_block_device case_io_max")
run_cases io "$@"
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
