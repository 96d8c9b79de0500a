#!/usr/bin/env bash
# Runs inside the test host (bench/guest-io/run.sh starts it): boots the
# Debian 12 guest (tools/rootfs: systemd, fio, iperf3) under each VMM, RUNS
# times, alternating the order, once per vCPU count and cache mode, and runs
# the rows of rows.sh in each boot. At each row's GIO-BEGIN and GIO-END line
# it reads the VMM's own CPU time and KVM's exit counters (bench/io/lib.sh).
# Output in $OUT:
#   raw.csv    vmm,run,cpus,cache,row,value,unit,mib,vmm_cpu_ms,exits,io_exits,mmio_exits,
#              halt_exits,irq_injections
#   threads.csv vmm,run,cpus,cache,row,thread,cpu_ms: the VMM's CPU over a
#              row by thread name (digits as N; "exited": threads gone by
#              the row's end, io_uring's io-wq workers among them)
#   logs/      each boot's console;  env.txt  what ran, with which options
#   kallsyms   the test host kernel's symbols (with PROFILE)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
RINGVISOR_BASE=${RINGVISOR_BASE:-}  # with "ringvisor-base" in VMMS: another binary, ringvisor's options
GUEST=${GUEST:-$root/build/guest}
ROOTFS=${ROOTFS:-$root/build/rootfs}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
KVMTOOL=${KVMTOOL:-}
RUNS=${RUNS:-3} VMMS=${VMMS:-ringvisor qemu kvmtool} CPUS=${CPUS:-1 2} CACHES=${CACHES:-none writeback}
NET_CPUS=${NET_CPUS:-2}   # iperf3 rows run in the boots with this many vCPUs (and the first cache mode)
SECONDS_PER_ROW=${SECONDS_PER_ROW:-8}
MEM_MIB=${MEM_MIB:-1024} DISK_MIB=${DISK_MIB:-1024}
QEMU_VHOST=${QEMU_VHOST:-off}
RV_DISK_OPTS=${RV_DISK_OPTS:-}   # more options for ringvisor's data disk (e.g. ,num_queues=1)
ROWS=${ROWS:-}                   # a subset of the rows (default: all of rows.sh)
L2_TIMEOUT=${L2_TIMEOUT:-900}
STALL_SECONDS=${STALL_SECONDS:-240}  # a guest silent on its console this long is stuck: ended
PEER_SCHED=${PEER_SCHED:-}  # diagnosis: "batch" starts QEMU and kvmtool under chrt -b 0 (ringvisor's default class)
PROFILE=${PROFILE:-}  # diagnosis: a command run as "$PROFILE -o FILE -p PID" over each row (perf record, strace -c -f)
out=${OUT:?}
TAP=rvtap-gio HOST_IP=10.0.6.1 GUEST_IP=10.0.6.15 MAC=52:54:00:12:34:60
. "$root/bench/guest-io/rows.sh"
mkdir -p "$out/logs"
RVIO=/bin/false  # lib.sh's rvio pieces are not used here
. "$root/bench/io/lib.sh"
csv=$out/raw.csv
[[ -s $csv ]] || echo "vmm,run,cpus,cache,row,value,unit,mib,vmm_cpu_ms,exits,io_exits,mmio_exits,halt_exits,irq_injections" >"$csv"
tcsv=$out/threads.csv
[[ -s $tcsv ]] || echo "vmm,run,cpus,cache,row,thread,cpu_ms" >"$tcsv"
log() { echo "guest-io: $*" >&2; }

# ---- L1 side: a filled data disk behind a loop device, the TAP, iperf3 -------
loopdev=
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null
    ip link del "$TAP" 2>/dev/null
    [[ -z $loopdev ]] || losetup -d "$loopdev" 2>/dev/null
    rm -f /tmp/gio-disk.img
}
trap cleanup EXIT
[[ -e /dev/loop-control ]] ||
    insmod "$GUEST/rootfs-kernel/lib/modules/$(uname -r)/kernel/drivers/block/loop.ko"
# Data, not holes: a sparse image reads zeros without touching memory.
head -c "${DISK_MIB}M" /dev/urandom >/tmp/gio-disk.img
loopdev=$(losetup -f --show /tmp/gio-disk.img)
# The TAP is made again for each boot: multi-queue for ringvisor and QEMU
# (one queue pair per vCPU, each on its own TAP queue), single-queue for
# kvmtool (it opens the TAP once, without IFF_MULTI_QUEUE, which a
# multi-queue TAP refuses). iperf3's server comes back with its address.
iperf_pid=
make_tap() {  # [multi_queue]
    [[ -z $iperf_pid ]] || { kill "$iperf_pid" 2>/dev/null; wait "$iperf_pid" 2>/dev/null; }
    ip link del "$TAP" 2>/dev/null
    ip tuntap add dev "$TAP" mode tap ${1:-} && ip addr add "$HOST_IP/24" dev "$TAP" && ip link set "$TAP" up ||
        { log "cannot make the TAP (${1:-single queue})"; return 1; }
    iperf3 -s -B "$HOST_IP" >/dev/null 2>&1 &
    iperf_pid=$!
}

# ---- the VMMs: their usual options, plus O_DIRECT / io_uring where offered ----
vmm_cmd() {  # VMM CPUS CACHE CMDLINE -> argv, one per line
    local vmm=$1 cpus=$2 cache=$3 cmdline=$4 bin=$RINGVISOR
    [[ $vmm != ringvisor-base ]] || bin=$RINGVISOR_BASE
    [[ $vmm == ringvisor* || $PEER_SCHED != batch ]] || printf '%s\n' chrt -b 0
    case $vmm in
        ringvisor|ringvisor-base)
            printf '%s\n' "$bin" run --kernel "$GUEST/vmlinuz" --initrd "$ROOTFS/initrd.img" \
                --kernel-cache "$KERNEL_CACHE" --cpus "$cpus" --memory "${MEM_MIB}M" \
                --disk "$ROOTFS/debian12.img,ro" --disk "$loopdev,cache=$cache$RV_DISK_OPTS" \
                --net "tap=$TAP,mac=$MAC" --cmdline "$cmdline" ;;
        qemu)
            printf '%s\n' qemu-system-x86_64 -accel kvm -cpu host -M q35 -smp "$cpus" -m "$MEM_MIB" \
                -nodefaults -no-user-config -display none -serial stdio -no-reboot \
                -kernel "$GUEST/vmlinuz" -initrd "$ROOTFS/initrd.img" -append "$cmdline" \
                -drive "file=$ROOTFS/debian12.img,if=none,id=root,format=raw,readonly=on,cache=none,aio=io_uring" \
                -device virtio-blk-pci,drive=root \
                -drive "file=$loopdev,if=none,id=data,format=raw,cache=$cache,aio=io_uring" \
                -device virtio-blk-pci,drive=data \
                -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=$QEMU_VHOST,queues=$cpus" \
                -device "virtio-net-pci,netdev=n0,mac=$MAC,mq=on,vectors=$((2 * cpus + 2))" ;;
        kvmtool)
            local direct=; [[ $cache == none ]] && direct=,direct
            # (HOME: lkvm puts its control socket in ~/.lkvm; L1's / is read-only.)
            printf '%s\n' env HOME=/tmp "$KVMTOOL" run -k "$GUEST/vmlinuz" -i "$ROOTFS/initrd.img" -c "$cpus" -m "$MEM_MIB" \
                -d "$ROOTFS/debian12.img,ro" -d "$loopdev$direct" \
                -n "mode=tap,tapif=$TAP,guest_mac=$MAC" --console serial -p "$cmdline" ;;
        *) log "unknown VMM $vmm"; return 1 ;;
    esac
}

# one_boot VMM RUN CPUS CACHE ROW...: boots, samples the counters at each
# GIO-BEGIN / GIO-END, records each GIO-RESULT. The guest powers off after
# GIO-ALL-DONE (kvmtool has no ACPI: its guest only halts, so every VMM is
# ended 30 s after GIO-ALL-DONE if it is still running).
one_boot() {
    local vmm=$1 run=$2 cpus=$3 cache=$4; shift 4
    local script cmdline logf pid t0=$SECONDS seen=0 done_at= line row heard=$SECONDS
    local -A pre post tpre tpost
    script=$(guest_script "$HOST_IP" "$GUEST_IP" "$DISK_MIB" "$SECONDS_PER_ROW" "$@")
    dd if=/dev/zero of="$loopdev" bs=1M count=1 seek=$((DISK_MIB - SCRIPT_MIB_FROM_END)) oflag=direct status=none
    printf '%s\n' "$script" >/tmp/gio-script
    dd if=/tmp/gio-script of="$loopdev" bs=1M seek=$((DISK_MIB - SCRIPT_MIB_FROM_END)) conv=sync oflag=direct status=none
    local load="dd if=/dev/vdb bs=1M skip=$((DISK_MIB - SCRIPT_MIB_FROM_END)) count=1 iflag=direct 2>/dev/null | tr -d '\\000' >/tmp/gio.sh; exec bash /tmp/gio.sh"
    cmdline="console=ttyS0 root=LABEL=rvroot ro panic=-1 quiet net.ifnames=0 rv.cmd=$(printf '%s' "$load" | base64 -w0)"
    logf=$out/logs/$vmm-$cpus-$cache-$run.log
    if [[ $vmm == kvmtool ]]; then make_tap; else make_tap multi_queue; fi || return 1
    local argv; mapfile -t argv <<<"$(vmm_cmd "$vmm" "$cpus" "$cache" "$cmdline")"
    timeout -k 10 "$L2_TIMEOUT" "${argv[@]}" </dev/null >"$logf" 2>&1 &
    pid=$!
    # (No process substitution anywhere: the test host's chroot has no /dev/fd.)
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
        local n; n=$(wc -l <"$logf")
        if ((n > seen)); then
            heard=$SECONDS
            tail -n +$((seen + 1)) "$logf" | head -n $((n - seen)) >/tmp/gio-new
            seen=$n
            while IFS= read -r line; do
                line=${line//$'\r'/}
                # (A marker may follow the login prompt on the same line.)
                case $line in
                    *"GIO-BEGIN "*) row=${line##*GIO-BEGIN }; pre[$row]=$(sample); tpre[$row]=$(thread_sample)
                        profile_start "$out/profile-$vmm-$cpus-$cache-$run-$row" ;;
                    *"GIO-END "*) row=${line##*GIO-END }; post[$row]=$(sample); tpost[$row]=$(thread_sample)
                        profile_stop ;;
                    *GIO-ALL-DONE*) done_at=$SECONDS ;;
                esac
            done </tmp/gio-new
        fi
        [[ -z $done_at ]] || ((SECONDS - done_at < 30)) || { kill "$pid"; break; }
        ((SECONDS - heard < STALL_SECONDS)) ||
            { log "$vmm cpus=$cpus cache=$cache run $run: no console line for $STALL_SECONDS s, the guest is stuck: ended"; kill "$pid"; break; }
    done
    profile_stop
    wait "$pid"; local rc=$?
    local results=0 value unit mib d
    tr -d '\r' <"$logf" | grep -a -o 'GIO-RESULT .*' >/tmp/gio-results
    while read -r _ row value unit mib; do
        [[ -n ${pre[$row]:-} && -n ${post[$row]:-} ]] || { log "$row: no counter window"; continue; }
        d=$(awk -v a="${pre[$row]}" -v b="${post[$row]}" 'BEGIN {
                n = split(a, x, " "); split(b, y, " ")
                for (i = 1; i <= n; i++) printf "%s%s", (x[i] == "na" || y[i] == "na") ? "na" : y[i] - x[i], (i < n ? "," : "") }')
        echo "$vmm,$run,$cpus,$cache,$row,$value,$unit,$mib,$d" >>"$csv"
        # (The process's own CPU, d's first field, keeps exited threads' time.)
        awk -v a="${tpre[$row]:-}" -v b="${tpost[$row]:-}" -v all="${d%%,*}" -v k="$vmm,$run,$cpus,$cache,$row" 'BEGIN {
                n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], f, "="); t0[f[1]] = f[2] }
                n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], f, "="); t1[f[1]] = f[2] }
                for (t in t1) { d = t1[t] - t0[t]; sum += d; if (d > 0) printf "%s,%s,%d\n", k, t, d }
                if (n && all != "na") printf "%s,exited,%d\n", k, all - sum }' >>"$tcsv"
        results=$((results + 1))
    done </tmp/gio-results
    log "$vmm cpus=$cpus cache=$cache run $run: $results of $# rows, exit $rc, $((SECONDS - t0)) s$(grep -a -m3 -E 'GIO-ERROR|GIO-NOTE|GIO-NPROC' "$logf" | tr -d '\r' | tr '\n' ' ' | sed 's/^/ (/; s/ $/)/')"
}
# PROFILE over one row: started at its GIO-BEGIN, interrupted at its GIO-END.
profiler=
profile_start() {
    local d
    [[ -n $PROFILE ]] && d=$(vm_dir 2>/dev/null) || return 0
    $PROFILE -o "$1" -p "$(vm_dir_pid "$d")" </dev/null >"$1.log" 2>&1 &
    profiler=$!
}
profile_stop() {
    [[ -n $profiler ]] || return 0
    kill -INT "$profiler" 2>/dev/null; wait "$profiler" 2>/dev/null; profiler=
}

# The VM's counters now: VMM CPU ms, exits, io, mmio and halt exits,
# interrupts injected.
sample() {
    local d c v line
    if [[ -z $exits_why ]] && d=$(vm_dir 2>/dev/null); then
        line=$(vmm_cpu_ms "$(vm_dir_pid "$d")")
        for c in exits io_exits mmio_exits halt_exits irq_injections; do read -r v <"$d/$c"; line+=" $v"; done
    else
        line="na na na na na na"
    fi
    echo "$line"
}

# The VM process's CPU (user + system - guest, as vmm_cpu_ms) by thread
# name, digits as N: "name=ms ...".
thread_sample() {
    local d pid
    [[ -z $exits_why ]] && d=$(vm_dir 2>/dev/null) || return 0
    pid=$(vm_dir_pid "$d")
    cat "/proc/$pid"/task/*/stat 2>/dev/null | awk -v t="$(getconf CLK_TCK)" '
        { c = $0; sub(/^[0-9]+ \(/, "", c); sub(/\) [^)]*$/, "", c); gsub(/[0-9]+/, "N", c); gsub(/[ ,=]/, "_", c)
          s = $0; sub(/^.*\) /, "", s); split(s, f, " "); ms[c] += (f[12] + f[13] - f[41]) * 1000 / t }
        END { for (k in ms) printf "%s=%d ", k, ms[k] }'
}

read -r -a vmms <<<"$VMMS"
if [[ " ${vmms[*]} " == *" kvmtool "* && ! -x $KVMTOOL ]]; then
    log "no kvmtool (KVMTOOL='$KVMTOOL'): measuring without it"
    vmms=("${vmms[@]/kvmtool/}"); read -r -a vmms <<<"${vmms[*]}"
fi
{
    echo "date: $(date -u +%FT%TZ)  L1 kernel: $(uname -r)  nproc: $(nproc)  MemTotal: $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR ($(cd "$root" && git rev-parse --short HEAD 2>/dev/null))"
    [[ -z $RINGVISOR_BASE ]] || echo "ringvisor-base: $RINGVISOR_BASE"
    echo "qemu: $(qemu-system-x86_64 --version | head -1), vhost=$QEMU_VHOST"
    echo "kvmtool: ${KVMTOOL:-none} $( [[ -x $KVMTOOL ]] && "$KVMTOOL" version 2>/dev/null)"
    echo "VMMS=${vmms[*]} RUNS=$RUNS CPUS=$CPUS CACHES=$CACHES NET_CPUS=$NET_CPUS SECONDS_PER_ROW=$SECONDS_PER_ROW MEM_MIB=$MEM_MIB DISK_MIB=$DISK_MIB (loop over L1 tmpfs)"
    [[ -z $PEER_SCHED ]] || echo "PEER_SCHED=$PEER_SCHED (QEMU and kvmtool under chrt -b 0)"
    echo "exits: ${exits_why:-from $dbg}"
    for v in "${vmms[@]}"; do echo "$v: $(vmm_cmd "$v" CPUS CACHE CMDLINE | tr '\n' ' ')"; done
} >>"$out/env.txt"
# The test host's kernel symbols, for reading PROFILE's output on the build
# machine (perf report --kallsyms OUT/kallsyms).
[[ -z $PROFILE ]] || cat /proc/kallsyms >"$out/kallsyms"

read -r -a caches <<<"$CACHES"
for ((r = 1; r <= RUNS; r++)); do
    for cpus in $CPUS; do
        for cache in "${caches[@]}"; do
            rows=("${FIO_ROWS[@]}")
            [[ $cpus != "$NET_CPUS" || $cache != "${caches[0]}" ]] || rows+=("${NET_ROWS[@]}")
            [[ -z $ROWS ]] || read -r -a rows <<<"$ROWS"
            order=("${vmms[@]}")
            ((r % 2)) || order=($(printf '%s\n' "${vmms[@]}" | tac))
            for v in "${order[@]}"; do one_boot "$v" "$r" "$cpus" "$cache" "${rows[@]}"; done
        done
    done
done
exit 0
