#!/usr/bin/env bash
# Runs inside the test host (bench/stress/run.sh starts it): boots the Debian
# guest (tools/rootfs) under each VMM, alternating which goes first, once per
# workload and run, and records how each boot ended in $OUT/results.csv:
#   session,workload,vmm,run,outcome,seconds,detail
# outcome: ok | death (panic, oops, RCU stall, lockup, triple fault, reset, no
# command exit) | hang (booted, then silent for SILENT_LIMIT s: the guest
# prints a heartbeat every 10 s) | slow (still beating at L2_TIMEOUT: a loaded
# test host, not a death) | corrupt (canary, fio verify or transfer hash) |
# fail (the workload failed, the guest lived).
# Runs already in results.csv are skipped, so a new test-host session picks
# up where a dead one stopped ($OUT/current names the run that was going;
# run.sh records it as l1-died when the test host died).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
ROOTFS=${ROOTFS:-$root/build/rootfs}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
RUNS=${RUNS:-20}
VMMS=${VMMS:-ringvisor qemu}
MEM_MIB=${MEM_MIB:-1024}
DISK_MIB=${DISK_MIB:-512}
XFER_BYTES=${XFER_BYTES:-104857600}
L2_TIMEOUT=${L2_TIMEOUT:-900}
SILENT_LIMIT=${SILENT_LIMIT:-120}  # no console output for this long after boot: hung
SESSION=${SESSION:-1}
RV_EXTRA=${RV_EXTRA:-}          # more ringvisor run options (e.g. --on-triple-fault=reset)
out=${OUT:-${RV_RESULTS:?}/stress}
TAP=rvtap-st HOST_IP=10.0.5.1 GUEST_IP=10.0.5.15 MAC=52:54:00:12:34:58
. "$root/bench/stress/workloads.sh"
read -r -a workloads <<<"${WORKLOADS:-${STRESS_WORKLOADS[*]}}"
read -r -a vmms <<<"$VMMS"
mkdir -p "$out/logs"
csv=$out/results.csv
[[ -s $csv ]] || echo "session,workload,vmm,run,outcome,seconds,detail" >"$csv"

log() { echo "stress: $*" >&2; }
record() {  # WORKLOAD VMM RUN OUTCOME SECONDS DETAIL
    local detail=${6//,/;}
    echo "$SESSION,$1,$2,$3,$4,$5,${detail//$'\n'/ }" >>"$csv"
    sync "$csv" 2>/dev/null || true
    log "$1 $2 run $3: $4 ($5 s) $6"
}
recorded() { grep -q "^[0-9]*,$1,$2,$3," "$csv"; }

# ---- L1 side: data disk, TAP, servers ---------------------------------------
loopdev=
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null
    ip link del "$TAP" 2>/dev/null
    [[ -z $loopdev ]] || losetup -d "$loopdev" 2>/dev/null
    rm -f /tmp/stress-disk.img /tmp/stress-h2g
}
trap cleanup EXIT
[[ -e /dev/loop-control ]] ||
    insmod "$GUEST/rootfs-kernel/lib/modules/$(uname -r)/kernel/drivers/block/loop.ko"
# Filled with data (no holes), behind a loop device: tmpfs in L1's 6.1 kernel
# refuses O_DIRECT, a loop device takes it, so cache=none works for both VMMs.
head -c "${DISK_MIB}M" /dev/urandom >/tmp/stress-disk.img
loopdev=$(losetup -f --show /tmp/stress-disk.img)
head -c "$XFER_BYTES" /dev/urandom >/tmp/stress-h2g
h2g_sum=$(sha256sum </tmp/stress-h2g | cut -d' ' -f1)
ip link del "$TAP" 2>/dev/null
ip tuntap add dev "$TAP" mode tap && ip addr add "$HOST_IP/24" dev "$TAP" && ip link set "$TAP" up

# ---- the VMMs -----------------------------------------------------------------
vmm_cmd() {  # VMM CPUS NIC CMDLINE STATS -> argv on stdout, one per line
    local vmm=$1 cpus=$2 nic=$3 cmdline=$4 stats=$5
    case $vmm in
        ringvisor)
            printf '%s\n' "$RINGVISOR" run --kernel "$GUEST/vmlinuz" --initrd "$ROOTFS/initrd.img" \
                --kernel-cache "$KERNEL_CACHE" --cpus "$cpus" --memory "${MEM_MIB}M" \
                --disk "$ROOTFS/debian12.img,ro" --disk "$loopdev,cache=none" --stats "$stats"
            case $nic in
                virtio) printf '%s\n' --net "tap=$TAP,mac=$MAC" ;;
                e1000) printf '%s\n' --net "tap=$TAP,mac=$MAC,model=e1000" ;;
            esac
            [[ -z $RV_EXTRA ]] || printf '%s\n' $RV_EXTRA
            printf '%s\n' --cmdline "$cmdline" ;;
        qemu)
            printf '%s\n' qemu-system-x86_64 -accel kvm -cpu host -M q35 -smp "$cpus" -m "$MEM_MIB" \
                -nodefaults -no-user-config -display none -serial stdio -no-reboot \
                -kernel "$GUEST/vmlinuz" -initrd "$ROOTFS/initrd.img" -append "$cmdline" \
                -drive "file=$ROOTFS/debian12.img,if=none,id=root,format=raw,readonly=on,cache=none,aio=io_uring" \
                -device virtio-blk-pci,drive=root \
                -drive "file=$loopdev,if=none,id=data,format=raw,cache=none,aio=io_uring" \
                -device virtio-blk-pci,drive=data
            case $nic in
                virtio|e1000)
                    local model=virtio-net-pci; [[ $nic == e1000 ]] && model=e1000
                    printf '%s\n' -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off" \
                        -device "$model,netdev=n0,mac=$MAC" ;;
            esac ;;
        *) log "unknown VMM $vmm"; return 1 ;;
    esac
}

# Kernel messages that mean the guest is dying or dead.
DEATH_RE='(Kernel panic|BUG: |Oops|general protection fault|double fault|rcu_(preempt|sched) detected|rcu: INFO: |soft lockup|hard LOCKUP|blocked for more than [0-9]+ seconds|triple fault|KVM internal error|VM entry failed).{0,100}'

classify() {  # LOG RC WORKLOAD SILENT(yes|no) -> "OUTCOME DETAIL"
    local logf=$1 rc=$2 w=$3 silent=$4 sig
    sig=$(tr -d '\r' <"$logf" | grep -a -m1 -oE "$DEATH_RE" | head -c 200)
    if [[ -n $sig ]] && ((rc == 124 || rc == 137)); then
        echo "death $sig (then no end within ${L2_TIMEOUT} s)"
    elif ((rc == 124 || rc == 137)) && ! grep -aq RINGVISOR-GUEST-INIT "$logf"; then
        echo "hang never reached init within ${L2_TIMEOUT} s; last: $(tr -d '\r' <"$logf" | grep -av '^$' | tail -n 2 | tr '\n' ' ' | head -c 200)"
    elif ((rc == 124 || rc == 137)) && [[ $silent == yes ]]; then
        echo "hang booted, then silent for ${SILENT_LIMIT} s; last: $(tr -d '\r' <"$logf" | grep -av '^$' | tail -n 2 | tr '\n' ' ' | head -c 200)"
    elif ((rc == 124 || rc == 137)); then
        echo "slow still alive (heartbeat $(grep -a -o 'STRESS-BEAT=[0-9]*' "$logf" | tail -n 1 | cut -d= -f2)) at ${L2_TIMEOUT} s"
    elif [[ -n $sig ]]; then
        echo "death $sig (exit $rc)"
    elif ! grep -aq 'RINGVISOR-CMD-EXIT=' "$logf"; then
        echo "death no command exit (exit $rc): $(tr -d '\r' <"$logf" | grep -av '^$' | tail -n 2 | tr '\n' ' ' | head -c 200)"
    elif grep -aq 'STRESS-CANARY=CHANGED' "$logf"; then
        echo "corrupt the canary changed"
    elif grep -aqiE 'verify: bad|crc32c: verify failed|bad magic header' "$logf"; then
        echo "corrupt fio verify: $(grep -aiE -m1 'verify' "$logf" | head -c 150)"
    elif ! grep -aq 'RINGVISOR-CMD-EXIT=0' "$logf" || ((rc != 0)); then
        echo "fail workload failed (exit $rc): $(tr -d '\r' <"$logf" | grep -a -m2 -E 'STRESS-NOTE|error|fail|unreachable' | tr '\n' ' ' | head -c 200)"
    elif [[ $w == xfer-* && $(grep -a -o 'STRESS-H2G=[0-9a-f]*' "$logf" | cut -d= -f2) != "$h2g_sum" ]]; then
        echo "corrupt host->guest hash differs"
    elif [[ $w == xfer-* && $(grep -a -o 'STRESS-G2H=[0-9a-f]*' "$logf" | cut -d= -f2) != "$(cat "$out/g2h.sum" 2>/dev/null)" ]]; then
        echo "corrupt guest->host hash differs"
    else
        echo "ok $(tr -d '\r' <"$logf" | grep -a -oE 'STRESS-(IOPS|WIOPS|BPS[^=]*)=[0-9.]+' | tr '\n' ' ')"
    fi
}

one_run() {  # WORKLOAD VMM RUN
    local w=$1 vmm=$2 run=$3 cpus nic cmd cmdline logf pid rc t0=$SECONDS deadline pids=()
    local spec; spec=$(workload_spec "$w")   # (no process substitution: the chroot has no /dev/fd)
    read -r cpus nic <<<"$spec"
    cmd=$(workload_cmd "$w" "$HOST_IP" "$GUEST_IP" "$XFER_BYTES")
    cmdline="console=ttyS0 root=LABEL=rvroot ro panic=-1 quiet net.ifnames=0 rv.cmd=$(printf '%s' "$cmd" | base64 -w0)"
    logf=$out/logs/$w-$vmm-$run.log
    echo "$w $vmm $run" >"$out/current"; sync "$out/current" 2>/dev/null || true
    if [[ $nic != none ]]; then
        iperf3 -s -B "$HOST_IP" >/dev/null 2>&1 & pids+=($!)
        if [[ $w == xfer-* ]]; then
            rm -f "$out/g2h.sum"
            socat -u FILE:/tmp/stress-h2g "TCP-LISTEN:5002,bind=$HOST_IP,reuseaddr" 2>/dev/null & pids+=($!)
            (socat -u "TCP-LISTEN:5003,bind=$HOST_IP,reuseaddr" - 2>/dev/null | sha256sum | cut -d' ' -f1 >"$out/g2h.sum") & pids+=($!)
        fi
    fi
    local argv; mapfile -t argv <<<"$(vmm_cmd "$vmm" "$cpus" "$nic" "$cmdline" "$out/logs/$w-$vmm-$run.stats.json")"
    timeout -k 10 "$L2_TIMEOUT" "${argv[@]}" </dev/null >"$logf" 2>&1 &
    pid=$!
    # A VMM that even SIGKILL does not end (a wedged host) is left behind.
    deadline=$((SECONDS + L2_TIMEOUT + 60))
    local boot= size=0 last_growth=$SECONDS silent=no
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 1
        [[ -n $boot ]] || ! grep -aq RINGVISOR-GUEST-INIT "$logf" || boot=$((SECONDS - t0))
        local now; now=$(stat -c %s "$logf" 2>/dev/null || echo 0)
        ((now == size)) || { size=$now; last_growth=$SECONDS; }
        # Booted and silent past the limit: hung. Ended now, rather than
        # waiting for the timeout (the heartbeat is every 10 s).
        if [[ -n $boot ]] && ((SECONDS - last_growth > SILENT_LIMIT)); then
            silent=yes
            kill -TERM "$pid" 2>/dev/null
            break
        fi
    done
    if [[ $silent == yes ]]; then
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 30)); do sleep 1; waited=$((waited + 1)); done
        kill -KILL "$pid" 2>/dev/null
        rc=124
    elif kill -0 "$pid" 2>/dev/null; then
        rc=137; disown "$pid"
    else
        wait "$pid"; rc=$?
    fi
    ((${#pids[@]} == 0)) || { kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
    local verdict; verdict=$(classify "$logf" "$rc" "$w" "$silent")
    record "$w" "$vmm" "$run" "${verdict%% *}" $((SECONDS - t0)) "${verdict#* }${boot:+ (up after $boot s)}"
    rm -f "$out/current"
}

{
    echo "session $SESSION: $(date -u +%FT%TZ) L1 $(uname -r) nproc $(nproc) MemTotal $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR ($(stat -c %y "$RINGVISOR")) $(cd "$root" && git rev-parse --short HEAD 2>/dev/null)"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "workloads: ${workloads[*]}  runs: $RUNS  vmms: ${vmms[*]}  mem: $MEM_MIB MiB  disk: $DISK_MIB MiB  xfer: $XFER_BYTES  rv extra: $RV_EXTRA"
} >>"$out/env.txt"

for w in "${workloads[@]}"; do
    workload_spec "$w" >/dev/null || { log "unknown workload $w (known: ${STRESS_WORKLOADS[*]})"; exit 2; }
    for ((r = 1; r <= RUNS; r++)); do
        order=("${vmms[@]}")
        ((r % 2)) || order=($(printf '%s\n' "${vmms[@]}" | tac))   # alternate who goes first
        for v in "${order[@]}"; do
            recorded "$w" "$v" "$r" || one_run "$w" "$v" "$r"
        done
    done
done
exit 0
