# Shared by the inside scripts of bench/io and bench/io-models (sourced; runs
# in the test host): KVM exit counters per VM from debugfs, the VMM's own CPU
# time, and one boot answered at the guest's sync points.
# Needs: $out (results dir), $RVIO, $HOST_IP; the caller defines the VMM
# command functions. raw.txt line:
#   label run workload value unit mib seconds irqs exits io_exits mmio_exits halt_exits irq_exits irq_injections vmm_cpu_ms
# shellcheck shell=bash

# ---- KVM exit counters -------------------------------------------------------
dbg=/sys/kernel/debug/kvm
exits_why=
if [[ ! -d $dbg ]]; then
    mount -t debugfs none /sys/kernel/debug 2>"$out/debugfs-mount.err" ||
        exits_why="mount -t debugfs failed in the test host: $(cat "$out/debugfs-mount.err")"
fi
[[ -n $exits_why || -r $dbg/exits ]] || exits_why="no $dbg/exits after mounting debugfs"
# exits: all VM exits (to L1's KVM, handled in kernel or not); io/mmio_exits:
# those that went on to the VMM in user space (ioeventfd kicks do not);
# irq_exits: host (L1) interrupts; irq_injections: interrupts injected into the guest.
COUNTERS=(exits io_exits mmio_exits halt_exits irq_exits irq_injections)
# The debugfs directory of the one running VM ("<pid>-<vm fd>"): its files sum
# the vCPU counters of that VM.
vm_dir() {
    local d name found=
    for d in "$dbg"/[0-9]*-[0-9]*; do
        name=${d##*/}
        [[ -d $d && -d /proc/${name%%-*} ]] || continue
        [[ -z $found ]] || { echo "bench-io: more than one VM in $dbg" >&2; return 1; }
        found=$d
    done
    [[ -n $found ]] && echo "$found"
}
# The VMM's pid from its debugfs directory ("<pid>-<vm fd>").
vm_dir_pid() { local n=${1##*/}; echo "${n%%-*}"; }
# CPU time of the VMM process itself, in ms: user + system minus the time
# its vCPU threads spent running the guest (guest_time, inside utime).
vmm_cpu_ms() {  # PID
    local tck; tck=$(getconf CLK_TCK)
    awk -v t="$tck" '{ sub(/^.*\) /, ""); print int(($12 + $13 - $41) * 1000 / t) }' "/proc/$1/stat" 2>/dev/null || echo na
}
snapshot() {  # LABEL RUN PHASE WORKLOAD -> a line in exits.txt
    local d c v line="$1 $2 $3 $4" pid=
    if [[ -z $exits_why ]] && d=$(vm_dir); then
        for c in "${COUNTERS[@]}"; do read -r v <"$d/$c"; line+=" $v"; done
        pid=$(vm_dir_pid "$d")
    else
        for c in "${COUNTERS[@]}"; do line+=" na"; done
    fi
    if [[ -n $pid ]]; then line+=" $(vmm_cpu_ms "$pid")"; else line+=" na"; fi
    echo "$line" >>"$out/exits.txt"
}

# one LABEL RUN COMMAND: boot (COMMAND execs the VMM), answer the guest's sync
# points, then turn the console's RVB-RESULT lines and the counter snapshots
# into raw.txt lines.
one() {
    local vmm=$1 run=$2 cmd=$3 log=$out/$1-$2.console fifo ofifo pids=() line rc=0 t0=$SECONDS
    # (no process substitution: the chroot's /dev has no /dev/fd)
    fifo=$(mktemp -u /tmp/rvio-in.XXXXXX) ofifo=$(mktemp -u /tmp/rvio-out.XXXXXX)
    mkfifo "$fifo" "$ofifo"
    exec 3<>"$fifo"; rm -f "$fifo"
    : >"$log"
    "$RVIO" tcpsink -a "$HOST_IP:5001" >"$out/$vmm-$run.tcpsink" 2>&1 & pids+=($!)
    "$RVIO" tcpsource -a "$HOST_IP:5002" -n "$NET" >"$out/$vmm-$run.tcpsource" 2>&1 & pids+=($!)
    local start_ms=$(( ${EPOCHREALTIME/./} / 1000 ))
    (s=0; ("$cmd") <&3 2>&1 || s=$?; echo "RVB-VMM-EXIT $s") >"$ofifo" &
    while IFS= read -r line; do
        line=${line//$'\r'/}
        printf '%s\n' "$line" >>"$log"
        [[ $line != *RVB-* && $line != *RINGVISOR-* ]] ||
            echo "$vmm $run $(( ${EPOCHREALTIME/./} / 1000 - start_ms )) ms $line" >>"$out/timeline.txt"
        if [[ $line == RVB-SYNC\ * ]]; then
            read -r _ phase w <<<"$line"
            snapshot "$vmm" "$run" "$phase" "$w"
            echo >&3
        fi
    done <"$ofifo"
    wait $! || true
    exec 3>&-; rm -f "$ofifo"
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    grep -q '^RVB-VMM-EXIT 0$' "$log" && grep -q 'RINGVISOR-CMD-EXIT=0' "$log" || rc=1
    echo "bench-io: $vmm run $run: $((SECONDS - t0)) s$( ((rc == 0)) || echo ", FAILED: $(grep -E 'RVB-ERROR|RVB-VMM-EXIT|CMD-EXIT' "$log" | tr '\n' ' ')")" >&2
    # raw.txt: the window's counters minus nothing (the idle row is the baseline)
    awk -v vmm="$vmm" -v run="$run" '
        FILENAME == ARGV[1] {
            if ($1 == vmm && $2 == run) { k = $4; for (i = 5; i <= NF; i++) c[$3, k, i] = $i; n = NF }
            next }
        $1 == "RVB-RESULT" {
            w = $2; delete f
            for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            if (w ~ /^randread/) { val = f["iops"]; unit = "iops" } else { val = f["mbps"]; unit = "MB/s" }
            line = sprintf("%s %s %s %s %s %.3f %s %s", vmm, run, w, val == "" ? 0 : val, unit, f["bytes"] / 1048576, f["seconds"] + 0, f["irqs"])
            for (i = 5; i <= n; i++) {
                a = c["pre", w, i]; b = c["post", w, i]
                line = line " " ((a == "na" || b == "na" || a == "" || b == "") ? "na" : b - a)
            }
            print line
        }' "$out/exits.txt" "$log" >>"$out/raw.txt"
    return $rc
}


# ---- the disk and the TAP ---------------------------------------------------
# setup_loop_disk FILE: a raw image of IMG_MIB in L1's tmpfs, filled with data
# (no holes), behind a loop device, which (unlike tmpfs in L1's 6.1 kernel)
# takes O_DIRECT, so both cache modes work on the same image. Sets IMG and
# loopdev. setup_tap: $TAP with $HOST_IP, up. bench_cleanup (trap EXIT) undoes both.
loopdev=
disk_file=
setup_loop_disk() {
    disk_file=$1
    [[ -e /dev/loop-control ]] ||
        insmod "$GUEST/rootfs-kernel/lib/modules/$(uname -r)/kernel/drivers/block/loop.ko"
    "$RVIO" fill -f "$disk_file" -n "${IMG_MIB}M" >"$out/fill.txt"
    loopdev=$(losetup -f --show "$disk_file")
    IMG=$loopdev
}
setup_tap() {
    ip link del "$TAP" 2>/dev/null || true
    ip tuntap add dev "$TAP" mode tap
    ip addr add "$HOST_IP/24" dev "$TAP"
    ip link set "$TAP" up
}
bench_cleanup() {
    ip link del "$TAP" 2>/dev/null || true
    [[ -z $loopdev ]] || losetup -d "$loopdev" 2>/dev/null || true
    [[ -z $disk_file ]] || rm -f "$disk_file"
}
