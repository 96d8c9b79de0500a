#!/usr/bin/env bash
# Snapshot, restore and live migration end to end, run inside the test host. A guest counts
# on its console and writes one block per count to a disk (fsynced), as
# virtio-blk or as an IDE disk. `ringvisor snapshot` takes it mid-count,
# the VMM is killed, and `ringvisor run --restore` goes on in a new process:
# the count continues at the next number with the guest's uptime moving on
# by a step or two, every block of the disk is right when the guest powers
# off. One guest does it all at once (both disks, a TCP stream) and comes
# back with --clock-realtime, its wall clock right; two clones of one
# snapshot run side by side on disks of their own; a diff snapshot lays
# over a full one; broken snapshots are refused; the guest live-migrates
# between two processes, and migrations that fail leave it running.
#   tools/testhost/run.sh -- tests/e2e/snapshot_cases.sh [CASE...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

STEPS=${SNAPSHOT_STEPS:-40}   # counts the guest makes in all
AT=${SNAPSHOT_AT:-8}          # the count the snapshot is taken after

# Guest shell: count 1..STEPS, each count a 4 KiB block "block N" at block N
# of DEV written with fsync, then print the count and uptime; then power off.
count_script() {  # DEV...
    local d writes=
    for d in "$@"; do writes+="  dd if=/tmp/blk of=/dev/$d bs=4096 seek=\$i conv=fsync 2>/dev/null
"; done
    echo "set -e; $(wait_dev "$@")
i=1; while [ \$i -le $STEPS ]; do
  yes \"block \$i\" | head -c 4096 >/tmp/blk
$writes  echo TICK=\$i UP=\$(cut -d' ' -f1 /proc/uptime) NOW=\$(date +%s)
  sleep 0.2; i=\$((i+1))
done
echo COUNTED=$STEPS"
}

# Every block 1..STEPS of IMAGE holds its own count.
check_blocks() {  # IMAGE
    local i bad=0
    for ((i = 1; i <= STEPS; i++)); do
        [[ $(dd if="$1" bs=4096 skip=$i count=1 status=none | sha256sum) == "$(yes "block $i" | head -c 4096 | sha256sum)" ]] ||
            { echo "block $i of $1 is wrong: $(dd if="$1" bs=4096 skip=$i count=1 status=none | head -c 24 | od -An -c | tr -s ' ')"; bad=1; }
    done
    ((bad == 0)) || e2e_fail "$1: blocks differ from what the guest wrote"
    echo "ok: blocks 1..$STEPS of $(basename "$1")"
}

# The ticks of LOG, one count per line.
ticks() { grep -a -o 'TICK=[0-9]*' "$1" | cut -d= -f2; }
# A count's whole stamp is its line up to NOW's ten digits.
STAMP='UP=[0-9.]+ NOW=[0-9]{10}'
stamp_at() { grep -a -o -E "TICK=$2 $STAMP" "$1" | head -n 1; }  # LOG N
uptime_at() { stamp_at "$@" | cut -d' ' -f2 | cut -d= -f2; }
now_at() { stamp_at "$@" | cut -d' ' -f3 | cut -d= -f2; }
# The last count whose whole stamp is in LOG: a snapshot or a switch-over
# can cut the line the guest is printing anywhere, and its rest is printed
# by the restored guest.
last_whole() { grep -a -o -E "TICK=[0-9]+ $STAMP" "$1" | tail -n 1 | cut -d' ' -f1 | cut -d= -f2; }
# wait_tick LOG N: until count N's whole stamp is in LOG.
wait_tick() { e2e_wait_line "$1" "TICK=$2 $STAMP" 120; }
# guest_stream FIRST LOG: the guest's console across a snapshot or a
# migration, FIRST's then LOG's, without ringvisor's own lines (which can
# come in the middle of the line the guest was printing when it stopped).
guest_stream() { cat "$1" "$2" | sed -z 's/ringvisor: [^\n]*\n//g'; }

# snapshot_of NAME INITRD DISKSPEC [RUN-ARGS [GUEST-PROLOGUE [GUEST-EPILOGUE]]]:
# boots the counting guest with an API socket, snapshots it after count AT
# into $WORK/NAME-snap (left paused), kills the VMM. Sets $img (the disk),
# $snap and $last; the console is $E2E_LOGDIR/NAME-1.console.
snapshot_of() {
    local name=$1 initrd=$2 spec=$3 dev=vda sock=$WORK/$1.sock log=$E2E_LOGDIR/$1-1.console
    local -a more; read -r -a more <<<"${4:-}"
    [[ $spec == *iface=ide* ]] && dev=sda
    img=$WORK/$name.img snap=$WORK/$name-snap
    rm -rf "$img" "$snap" "$sock"; truncate -s 16M "$img"
    # No timeout(1) around it: kill -9 must reach ringvisor itself.
    "$RINGVISOR" run --api-sock "$sock" --kernel "$GUEST/vmlinuz" \
        --initrd "$initrd" --kernel-cache "$KERNEL_CACHE" --cpus 1 --memory 256M \
        --disk "$img$spec" "${more[@]}" \
        --cmdline "console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd_b64 "${5:-}
$(count_script $dev ${EXTRA_COUNT_DEVS:-})
${6:-}")" \
        </dev/null >"$log" 2>&1 &
    local vmm=$!
    wait_tick "$log" "$AT" || { kill $vmm; e2e_fail "no TICK=$AT: $(tail -n 3 "$log" | tr -d '\r')"; }
    "$RINGVISOR" snapshot --api-sock "$sock" --keep-paused "$snap" ||
        { kill $vmm; e2e_fail "ringvisor snapshot failed"; }
    sleep 1  # a paused guest prints nothing more
    last=$(last_whole "$log")
    kill -9 $vmm; wait $vmm 2>/dev/null || true
    [[ -s $snap/state && -s $snap/memory ]] || e2e_fail "no state or memory file in $snap"
    echo "snapshot after TICK=$last: state $(stat -c %s "$snap/state") bytes, memory $(stat -c %s "$snap/memory") bytes"
    ((last >= AT && last + 2 <= STEPS)) || e2e_fail "the guest was at TICK=$last when snapshotted"
}

# The restored guest of LOG went on from count LAST (the last whole stamp of
# FIRST-LOG) to STEPS and powered off: across both consoles it counted
# 1..STEPS once each ($LOG.stream holds them joined). Its uptime is compared
# between count LAST and count LAST+2: the guest may have read LAST+1's
# stamps before it stopped and printed them after, but it had not yet
# finished LAST+1's line, so LAST+2's are read after it went on.
# AWAY: seconds the guest was away with its clock advanced on restore
# (--clock-realtime), else empty: its clock stood still.
check_continued() {  # LOG RC LAST FIRST-LOG [AWAY]
    local log=$1 rc=$2 last=$3 first_log=$4 away=${5:-} stream=$1.stream
    [[ $rc -eq 0 ]] || e2e_fail "restored ringvisor exited $rc: $(tail -n 3 "$log" | tr -d '\r')"
    guest_stream "$first_log" "$log" >"$stream"
    [[ $(ticks "$log" | tail -n 1) == "$STEPS" ]] || e2e_fail "the count stopped at $(ticks "$log" | tail -n 1)"
    [[ $(ticks "$stream" | tr '\n' ' ') == "$(seq -s ' ' 1 "$STEPS") " ]] ||
        e2e_fail "counts repeated or missing across the restore: $(ticks "$stream" | tr '\n' ' ')"
    grep -aq "COUNTED=$STEPS" "$log" && grep -aq "RINGVISOR-CMD-EXIT=0" "$log" ||
        e2e_fail "the guest's script did not finish"
    local before after
    before=$(uptime_at "$stream" "$last") after=$(uptime_at "$stream" $((last + 2)))
    echo "uptime $before at TICK=$last, $after at TICK=$((last + 2))"
    if [[ -z $away ]]; then
        # The guest's clock stood still while it was saved: its uptime moves
        # on by about two steps (0.2 s and the loop each), not by the time away.
        awk -v a="$before" -v b="$after" 'BEGIN { exit !(b > a && b - a < 5) }' ||
            e2e_fail "uptime went from $before to $after across the restore"
    else
        # It moved on by the time away (and two steps or so).
        awk -v a="$before" -v b="$after" -v w="$away" 'BEGIN { exit !(b - a >= w - 1 && b - a < w + 8) }' ||
            e2e_fail "uptime went from $before to $after across $away s away with --clock-realtime"
    fi
}

# restored NAME [clock]: `ringvisor run --restore $snap` to the end (console
# $E2E_LOGDIR/NAME-2.console); the count went on from $last. With `clock`,
# after 6 s away and with --clock-realtime: the guest's wall clock is right
# again (within 2 s of L1's) and its uptime moved on by the time away;
# without, its clock went on from where it was saved.
restored() {
    local name=$1 clock=${2:-} log=$E2E_LOGDIR/$1-2.console rc=0 away= snapped start ended now
    local -a args=()
    if [[ $clock == clock ]]; then
        sleep 6
        args=(--clock-realtime)
    fi
    snapped=$(now_at "$E2E_LOGDIR/$name-1.console" "$last") start=$(date +%s)
    timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --restore "$snap" "${args[@]}" </dev/null >"$log" 2>&1 || rc=$?
    ended=$(date +%s)
    [[ $clock == clock ]] && away=$((start - snapped))
    check_continued "$log" $rc "$last" "$E2E_LOGDIR/$name-1.console" "$away"
    now=$(now_at "$log.stream" $((last + 2)))
    echo "guest clock $now at TICK=$((last + 2)), after the restore ($snapped at the snapshot); L1 $start..$ended"
    if [[ $clock == clock ]]; then
        ((now >= start - 2 && now <= ended + 2)) ||
            e2e_fail "with --clock-realtime the guest's clock read $now, L1's $start..$ended"
    else
        ((now <= snapped + 2)) ||
            e2e_fail "the guest's clock read $now after the restore, $snapped at the snapshot"
    fi
}

restore_case() {  # NAME INITRD DISKSPEC
    local img snap last
    snapshot_of "$@"
    restored "$1"
    check_blocks "$img"
}

case_virtio_blk() { restore_case snap-virtio "$GUEST/initramfs-virtio.cpio.gz" ""; }
case_ide() { restore_case snap-ide "$GUEST/initramfs-emulated.cpio.gz" ",iface=ide"; }

# The whole guest at once: it counts on its console, writes each count's
# block to a virtio-blk disk and to an IDE disk (fsynced) and streams TCP to
# L1 over virtio-net; it is snapshotted, killed, and restored 6 s later with
# --clock-realtime. The count goes on, both disks hold every block, L1 gets
# every line of the stream once, and the guest's clock is right.
case_whole() {
    local img snap last lines=300 ide=$WORK/snap-whole-ide.img
    net_setup
    timeout 300 socat -u "TCP-LISTEN:5003,bind=$HOST_IP,reuseaddr" "OPEN:$dir/stream.txt,creat,trunc" &
    pids+=($!)
    rm -f "$ide"; truncate -s 16M "$ide"
    EXTRA_COUNT_DEVS=sda snapshot_of snap-whole "$GUEST/initramfs-all.cpio.gz" "" \
        "--net tap=$TAP --disk $ide,iface=ide" \
        "$(wait_dev eth0) $GUEST_NET_UP
(i=1; while [ \$i -le $lines ]; do echo \"line \$i\"; i=\$((i+1)); sleep 0.05; done | nc $HOST_IP 5003; echo STREAMED=\$?) &
sp=\$!" "wait \$sp"
    restored snap-whole clock
    check_blocks "$img"
    check_blocks "$ide"
    wait "${pids[0]}" || true
    pids=()  # (net_setup's trap would fail on a dead pid)
    local log=$E2E_LOGDIR/snap-whole-2.console
    [[ $(guest_value "$log" STREAMED) == 0 ]] || e2e_fail "the guest's nc ended with '$(guest_value "$log" STREAMED)'"
    local got; got=$(wc -l <"$dir/stream.txt")
    echo "L1 received $got lines: $(head -n 2 "$dir/stream.txt" | tr '\n' '|') ... $(tail -n 2 "$dir/stream.txt" | tr '\n' '|'); $(sort "$dir/stream.txt" | uniq -d | wc -l) repeated"
    [[ $(sha256sum <"$dir/stream.txt") == "$(for ((i = 1; i <= lines; i++)); do echo "line $i"; done | sha256sum)" ]] ||
        e2e_fail "the stream L1 received differs from lines 1..$lines ($got lines)"
}

# Two clones of one snapshot at once, each on a copy of the disk as it was.
case_clones() {
    local img snap last rcs=() pids=() i
    snapshot_of snap-clone "$GUEST/initramfs-virtio.cpio.gz" ""
    for i in 1 2; do
        cp "$img" "$WORK/clone-$i.img"
        timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --restore "$snap" \
            --drive-override "drive0=$WORK/clone-$i.img" </dev/null >"$E2E_LOGDIR/clone-$i.console" 2>&1 &
        pids+=($!)
    done
    for i in 0 1; do rcs[i]=0; wait "${pids[i]}" || rcs[i]=$?; done
    for i in 1 2; do
        check_continued "$E2E_LOGDIR/clone-$i.console" "${rcs[i - 1]}" "$last" "$E2E_LOGDIR/snap-clone-1.console"
        check_blocks "$WORK/clone-$i.img"
    done
    # The snapshot's own disk saw none of the clones' writes.
    [[ $(dd if="$img" bs=4096 skip=$STEPS count=1 status=none | sha256sum) != "$(yes "block $STEPS" | head -c 4096 | sha256sum)" ]] ||
        e2e_fail "a clone wrote to the original disk"
}

# A full snapshot early on, the guest runs on, then a diff snapshot: the
# diff's memory file holds a fraction of RAM; laid over the full one
# (rebase-snap) it restores the guest as of the diff. Its RAM is a memfd
# (--memory-backend memfd), dirty-logged like anonymous RAM.
case_diff() {
    local name=snap-diff sock=$WORK/snap-diff.sock log=$E2E_LOGDIR/snap-diff-1.console
    local img=$WORK/snap-diff.img full=$WORK/diff-full diff=$WORK/diff-diff merged=$WORK/diff-merged
    local log2=$E2E_LOGDIR/snap-diff-2.console rc=0
    rm -rf "$img" "$full" "$diff" "$merged" "$sock"; truncate -s 16M "$img"
    # No timeout(1) around it: kill -9 must reach ringvisor itself.
    "$RINGVISOR" run --api-sock "$sock" --track-dirty-pages --memory-backend memfd \
        --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs-virtio.cpio.gz" \
        --kernel-cache "$KERNEL_CACHE" --cpus 1 --memory 256M --disk "$img" \
        --cmdline "console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd_b64 "$(count_script vda)")" \
        </dev/null >"$log" 2>&1 &
    local vmm=$!
    e2e_wait_line "$log" "TICK=3 " 120 || { kill $vmm; e2e_fail "no TICK=3"; }
    "$RINGVISOR" snapshot --api-sock "$sock" "$full" || { kill $vmm; e2e_fail "full snapshot failed"; }
    e2e_wait_line "$log" "TICK=$AT " 60 || { kill $vmm; e2e_fail "no TICK=$AT after the full snapshot"; }
    "$RINGVISOR" snapshot --api-sock "$sock" --diff --keep-paused "$diff" ||
        { kill $vmm; e2e_fail "diff snapshot failed"; }
    sleep 1
    local last; last=$(last_whole "$log")
    kill -9 $vmm; wait $vmm 2>/dev/null || true
    local full_kib diff_kib
    full_kib=$(du -k "$full/memory" | cut -f1) diff_kib=$(du -k "$diff/memory" | cut -f1)
    echo "memory files: full ${full_kib} KiB, diff ${diff_kib} KiB allocated, both $(stat -c %s "$diff/memory") bytes"
    ((diff_kib * 4 < full_kib)) || e2e_fail "the diff holds ${diff_kib} KiB of ${full_kib} KiB"
    mkdir -p "$merged"
    mv "$full/memory" "$merged/memory"
    cp "$diff/state" "$merged/state"
    "$RINGVISOR" rebase-snap --base-file "$merged/memory" --diff-file "$diff/memory" ||
        e2e_fail "rebase-snap failed"
    timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --restore "$merged" </dev/null >"$log2" 2>&1 || rc=$?
    check_continued "$log2" $rc "$last" "$log"
    check_blocks "$img"
}

# ---- live migration ------------------------------------------------------------

# Two TAPs on a bridge that holds $HOST_IP: the source's NIC on rvtapA, the
# destination's on rvtapB (two processes cannot share a single-queue TAP).
bridge_setup() {
    dir=$(mktemp -d /tmp/rv-mig.XXXXXX) pids=()   # not local: the trap uses them
    trap 'ip link del rvbr0 2>/dev/null; ip link del rvtapA 2>/dev/null; ip link del rvtapB 2>/dev/null
          ((${#pids[@]} == 0)) || kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
    modprobe bridge 2>/dev/null || true
    ip link add rvbr0 type bridge
    ip addr add "$HOST_IP/24" dev rvbr0
    ip link set rvbr0 up
    local t
    for t in rvtapA rvtapB; do
        ip tuntap add dev "$t" mode tap
        ip link set "$t" master rvbr0
        ip link set "$t" up
    done
}

# The counting guest with a NIC on rvtapA streaming lines to L1 and
# rewriting 8 MiB of a tmpfs file every second (a steady dirty rate), with
# data and with zeros in turn (Pages and Zeros frames); $vmm
# its pid.
migration_source() {  # NAME SOCK IMG LINES
    local log=$E2E_LOGDIR/$1-src.console
    "$RINGVISOR" run --api-sock "$2" --kernel "$GUEST/vmlinuz" \
        --initrd "$GUEST/initramfs-virtio.cpio.gz" --kernel-cache "$KERNEL_CACHE" --cpus 1 \
        --memory 256M --disk "$3" --net tap=rvtapA \
        --cmdline "console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd_b64 "$(wait_dev eth0) $GUEST_NET_UP
(i=1; while [ \$i -le $4 ]; do echo \"line \$i\"; i=\$((i+1)); sleep 0.05; done | nc $HOST_IP 5003; echo STREAMED=\$?) &
sp=\$!
(while :; do yes | head -c 8388608 >/tmp/dirty; sleep 1; dd if=/dev/zero of=/tmp/dirty bs=1M count=8 conv=notrunc 2>/dev/null; sleep 1; done) &
$(count_script vda)
wait \$sp")" </dev/null >"$log" 2>&1 &
    vmm=$!
    pids+=($vmm)
    wait_tick "$log" "$AT" || e2e_fail "no TICK=$AT: $(tail -n 3 "$log" | tr -d '\r')"
}

# The guest moves to a second ringvisor mid-count while streaming TCP: the
# count goes on at the next number there, the stream arrives whole, every
# block is right, the source ends (status 0) once the destination runs, and
# the NIC announces itself there.
case_migrate() {
    local sock=$WORK/mig.sock img=$WORK/mig.img to=unix:$WORK/mig-in.sock lines=300 vmm rc=0
    local src_log=$E2E_LOGDIR/mig-src.console dst_log=$E2E_LOGDIR/mig-dst.console
    bridge_setup
    rm -f "$img" "$sock"; truncate -s 16M "$img"
    timeout 300 socat -u "TCP-LISTEN:5003,bind=$HOST_IP,reuseaddr" "OPEN:$dir/stream.txt,creat,trunc" &
    pids+=($!)
    local receiver=$!
    migration_source mig "$sock" "$img" $lines
    rm -f "$WORK/mig-in.sock"
    timeout -k 5 "$L2_TIMEOUT" "$RINGVISOR" run --incoming "$to" --net-override net0=rvtapB \
        --stats "$WORK/mig-dst.stats" </dev/null >"$dst_log" 2>&1 &
    local dst=$!
    pids+=($dst)
    local i; for ((i = 0; i < 50; i++)); do [[ -S $WORK/mig-in.sock ]] && break; sleep 0.1; done
    timeout 120 "$RINGVISOR" migrate --api-sock "$sock" --to "$to" | tee "$WORK/migrate.out" ||
        e2e_fail "ringvisor migrate failed (124: still under way after 120 s)"
    local src_rc=0; e2e_wait_pid "$vmm" 30 || src_rc=$?
    ((src_rc == 0)) || e2e_fail "the source exited $src_rc (124: still ran 30 s after the migration): $(tail -n 2 "$src_log" | tr -d '\r')"
    # The source ended only once the destination ran the guest.
    kill -0 "$dst" 2>/dev/null || e2e_fail "the destination is gone as the source ends"
    e2e_wait_line "$dst_log" "TICK=" 30 || e2e_fail "the destination's guest never counted"
    grep -aq "migrated to" "$src_log" || e2e_fail "the source did not say it migrated"
    local last; last=$(last_whole "$src_log")
    wait "$dst" || rc=$?
    check_continued "$dst_log" $rc "$last" "$src_log"
    check_blocks "$img"
    wait "$receiver" || true
    [[ $(guest_value "$dst_log" STREAMED) == 0 ]] || e2e_fail "the guest's nc ended with '$(guest_value "$dst_log" STREAMED)'"
    [[ $(sha256sum <"$dir/stream.txt") == "$(for ((i = 1; i <= lines; i++)); do echo "line $i"; done | sha256sum)" ]] ||
        e2e_fail "the stream L1 received differs from lines 1..$lines ($(wc -l <"$dir/stream.txt") lines)"
    echo "stream: $lines lines whole; $(tail -n 1 "$WORK/migrate.out")"
    # The NIC announced its new place and the guest's driver acknowledged it
    # on the control queue (VIRTIO_NET_F_GUEST_ANNOUNCE).
    local announces acks
    announces=$(grep -o '"announces": *[0-9]*' "$WORK/mig-dst.stats" | head -n 1 | tr -dc 0-9)
    acks=$(grep -o '"ctrl_commands": *[0-9]*' "$WORK/mig-dst.stats" | head -n 1 | tr -dc 0-9)
    echo "destination virtio-net: ${announces:-none} announce(s), ${acks:-no} control command(s)"
    ((${announces:-0} >= 1 && ${acks:-0} >= 1)) || e2e_fail "the NIC did not announce itself after the move"
}

# Migrations that fail leave the source running: one cancelled by its
# timeout, one whose destination is killed half-way. The guest then counts
# to the end and powers off at the source with every block right.
case_migrate_fails() {
    local STEPS=90 sock=$WORK/migf.sock img=$WORK/migf.img to=unix:$WORK/migf-in.sock vmm rc
    local src_log=$E2E_LOGDIR/migf-src.console
    bridge_setup
    rm -f "$img" "$sock"; truncate -s 16M "$img"
    timeout 300 socat -u "TCP-LISTEN:5003,bind=$HOST_IP,reuseaddr" "OPEN:$dir/stream.txt,creat,trunc" &
    pids+=($!)
    migration_source migf "$sock" "$img" 100
    # 1: the timeout cancels it (20 MiB/s: 256 MiB take about 13 s).
    rm -f "$WORK/migf-in.sock"
    timeout 60 "$RINGVISOR" run --incoming "$to" --net-override net0=rvtapB </dev/null \
        >"$E2E_LOGDIR/migf-dst1.console" 2>&1 &
    local dst=$!
    local i; for ((i = 0; i < 50; i++)); do [[ -S $WORK/migf-in.sock ]] && break; sleep 0.1; done
    rc=0; timeout 60 "$RINGVISOR" migrate --api-sock "$sock" --to "$to" --bandwidth 20 --timeout 1 \
        >"$WORK/migf-1.out" 2>&1 || rc=$?
    cat "$WORK/migf-1.out"
    ((rc == 1)) && grep -q "cancelled" "$WORK/migf-1.out" || e2e_fail "a timed-out migration: exit $rc"
    wait "$dst" 2>/dev/null || true
    kill -0 "$vmm" || e2e_fail "the source died after a cancelled migration"
    # 2: the destination dies half-way.
    rm -f "$WORK/migf-in.sock"
    "$RINGVISOR" run --incoming "$to" --net-override net0=rvtapB </dev/null \
        >"$E2E_LOGDIR/migf-dst2.console" 2>&1 &
    dst=$!
    for ((i = 0; i < 50; i++)); do [[ -S $WORK/migf-in.sock ]] && break; sleep 0.1; done
    timeout 120 "$RINGVISOR" migrate --api-sock "$sock" --to "$to" --bandwidth 20 >"$WORK/migf-2.out" 2>&1 &
    local mig=$!
    sleep 2
    kill -9 "$dst"
    rc=0; wait "$mig" || rc=$?
    cat "$WORK/migf-2.out"
    ((rc == 1)) && grep -q "failed" "$WORK/migf-2.out" || e2e_fail "a migration whose destination died: exit $rc"
    # The source goes on to the end.
    rc=0; e2e_wait_pid "$vmm" "$L2_TIMEOUT" || rc=$?
    ((rc != 124)) || e2e_fail "the source's guest had not finished $L2_TIMEOUT s after the failed migrations: $(tail -n 3 "$src_log" | tr -d '\r')"
    ((rc == 0)) || e2e_fail "the source exited $rc: $(tail -n 2 "$src_log" | tr -d '\r')"
    [[ $(ticks "$src_log" | tail -n 1) == "$STEPS" && $(ticks "$src_log" | wc -l) == "$STEPS" ]] ||
        e2e_fail "the source's count: $(ticks "$src_log" | tr '\n' ' ')"
    grep -aq "RINGVISOR-CMD-EXIT=0" "$src_log" || e2e_fail "the guest's script did not finish"
    check_blocks "$img"
}

# A broken snapshot is refused before any VM runs, with a message.
case_refused() {
    local img snap last out=$WORK/refused.out rc
    snapshot_of snap-bad "$GUEST/initramfs-virtio.cpio.gz" ""
    cp -r "$snap" "$WORK/bad"
    truncate -s -1 "$WORK/bad/memory"
    rc=0; "$RINGVISOR" run --restore "$WORK/bad" </dev/null >"$out" 2>&1 || rc=$?
    cat "$out"
    ((rc == 2)) && grep -q "memory file holds" "$out" || e2e_fail "a short memory file: exit $rc"
    cp "$snap/memory" "$WORK/bad/memory"
    head -c 1000 "$snap/state" >"$WORK/bad/state"
    rc=0; "$RINGVISOR" run --restore "$WORK/bad" </dev/null >"$out" 2>&1 || rc=$?
    cat "$out"
    ((rc == 2)) && grep -qi "truncated\|snapshot" "$out" || e2e_fail "a truncated state file: exit $rc"
    rc=0; "$RINGVISOR" run --restore "$snap" --kernel "$GUEST/vmlinuz" </dev/null >"$out" 2>&1 || rc=$?
    cat "$out"
    ((rc == 2)) || e2e_fail "--restore with --kernel: exit $rc"
}

CASES=(
    "snapshot_restore_virtio_blk case_virtio_blk"
    "snapshot_restore_ide case_ide"
    "snapshot_restore_whole_guest case_whole"
    "snapshot_two_clones case_clones"
    "snapshot_diff_over_full case_diff"
    "migrate_while_counting_and_streaming case_migrate"
    "migrate_failed_leaves_source_running case_migrate_fails"
    "snapshot_broken_refused case_refused"
)
echo "e2e snapshot cases"
run_cases snapshot "$@"
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
