#!/usr/bin/env bash
# Runs inside the test host (bench/stress/run.sh starts it): boots the Debian
# guest (tools/rootfs) under each VMM, alternating which goes first, RUNS
# times; each boot runs, one after another, the workloads that share a spec
# (workloads.sh), and results.csv gets how each workload ended:
#   session,workload,vmm,run,outcome,seconds,detail
# outcome: ok | death (panic, oops, RCU stall, lockup, triple fault, reset, the
# workload or the power-off never ending) | hang (booted, then silent for SILENT_LIMIT s: the guest
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
L2_TIMEOUT=${L2_TIMEOUT:-1200}   # one boot, all the workloads of one spec
SILENT_LIMIT=${SILENT_LIMIT:-120}  # no console output for this long after boot: hung
SESSION=${SESSION:-1}
RV_EXTRA=${RV_EXTRA:-}          # more ringvisor run options (e.g. --on-triple-fault=reset)
# Experiments on the test host itself: L1_THP sets L1's transparent_hugepage
# mode (never, madvise, always; empty: the test host's default, never); L1_CHURN=compact
# compacts L1's memory every CHURN_S seconds during each boot, which migrates
# guest pages (KVM then rebuilds the guest's nested page tables);
# L1_CHURN=fragment first fragments L1's free memory, so every compaction
# has pages to move.
L1_THP=${L1_THP:-} L1_CHURN=${L1_CHURN:-} CHURN_S=${CHURN_S:-1}
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
if [[ -n $L1_THP ]]; then
    echo "$L1_THP" >/sys/kernel/mm/transparent_hugepage/enabled
    echo "$L1_THP" >/sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null || echo madvise >/sys/kernel/mm/transparent_hugepage/defrag
fi
# L1's KVM events, saved beside the log of any boot that did not end ok.
. "$root/tools/testhost/ktrace.sh"
ktrace_setup

# The listeners of a boot: killed by name, since killing a pipeline's
# subshell leaves its socat (which would then answer the next boot's guest).
kill_listeners() { pkill -f "socat .*bind=$HOST_IP" 2>/dev/null; pkill -f "iperf3 -s -B $HOST_IP" 2>/dev/null; }

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

# segment TEXT WORKLOAD -> the console lines from STRESS-BEGIN=<workload> to
# the next STRESS-BEGIN (or the end: the last workload's segment takes in the
# power-off). No workload name is a prefix of another.
segment() { awk -v b="STRESS-BEGIN=$2" 'index($0, "STRESS-BEGIN=") { on = index($0, b) > 0 } on' <<<"$1"; }
lastlines() { grep -av '^$' <<<"$1" | tail -n 2 | tr '\n' ' ' | head -c 200; }

# classify LOG RC WORKLOAD SILENT(yes|no) FIRST(yes|no) -> "OUTCOME DETAIL",
# or nothing when the workload never began because an earlier one in the
# same boot ended it (it runs again in another boot). FIRST: the first
# workload this boot was to run, charged with deaths before any began.
# (Here-strings, not pipes into grep -q: with pipefail, an early grep exit
# fails the pipe. No process substitution: the chroot has no /dev/fd.)
classify() {
    local logf=$1 rc=$2 w=$3 silent=$4 first=$5 all seg sig end timed=no last
    all=$(tr -d '\r' <"$logf")
    ((rc == 124 || rc == 137)) && timed=yes
    last=$(grep -a -o 'STRESS-BEGIN=[a-z0-9-]*' <<<"$all" | tail -n 1 | cut -d= -f2)
    if grep -aq "STRESS-BEGIN=$w" <<<"$all"; then
        seg=$(segment "$all" "$w")
    elif [[ $first == yes && -z $last ]]; then
        seg=$all   # the boot died before any workload began
    else
        return 0
    fi
    sig=$(grep -a -m1 -oE "$DEATH_RE" <<<"$seg" | head -c 200)
    end=$(grep -a -o "STRESS-END=$w:[0-9]*" <<<"$seg" | cut -d: -f2)
    if [[ -n $sig ]]; then
        echo "death $sig (exit $rc${end:+, workload status $end})"
    elif [[ -z $end && $timed == yes ]] && ! grep -aq RINGVISOR-GUEST-INIT <<<"$all"; then
        echo "hang never reached init within ${L2_TIMEOUT} s; last: $(lastlines "$all")"
    elif [[ -z $end && $timed == yes && $silent == yes ]]; then
        echo "hang silent for ${SILENT_LIMIT} s; last: $(lastlines "$all")"
    elif [[ -z $end && $timed == yes ]]; then
        echo "slow still alive (heartbeat $(grep -a -o 'STRESS-BEAT=[0-9]*' <<<"$all" | tail -n 1 | cut -d= -f2)) at ${L2_TIMEOUT} s"
    elif [[ -z $end ]]; then
        echo "death the workload never ended (exit $rc): $(lastlines "$all")"
    elif grep -aq 'STRESS-CANARY=CHANGED' <<<"$seg"; then
        echo "corrupt the canary changed"
    elif grep -aqiE 'verify: bad|crc32c: verify failed|bad magic header' <<<"$seg"; then
        echo "corrupt fio verify: $(grep -aiE -m1 'verify' <<<"$seg" | head -c 150)"
    elif [[ $w == xfer-* && $(grep -a -o 'STRESS-H2G=[0-9a-f]*' <<<"$seg" | cut -d= -f2) != "$h2g_sum" ]]; then
        echo "corrupt host->guest hash differs"
    elif [[ $w == xfer-* && $(grep -a -o 'STRESS-G2H=[0-9a-f]*' <<<"$seg" | cut -d= -f2) != "$(cat "$out/g2h.sum" 2>/dev/null)" ]]; then
        echo "corrupt guest->host hash differs"
    elif [[ $end != 0 ]]; then
        echo "fail workload failed: $(grep -a -m2 -E 'STRESS-NOTE|error|fail|unreachable' <<<"$seg" | tr '\n' ' ' | head -c 200)"
    elif [[ $w == "$last" ]] && { ! grep -aq 'RINGVISOR-CMD-EXIT=' <<<"$all" || ((rc != 0)); }; then
        # The last workload of the boot: the guest must also power off.
        echo "death no clean power-off after the workload (exit $rc): $(lastlines "$all")"
    else
        echo "ok $(grep -a -oE 'STRESS-(IOPS|WIOPS|BPS[^=]*)=[0-9.]+' <<<"$seg" | tr '\n' ' ')"
    fi
}

# one_boot VMM RUN WORKLOAD... : one boot of the guest running the workloads
# (all with the same spec) in order; each gets its own line in results.csv.
one_boot() {
    local vmm=$1 run=$2; shift 2
    local ws=("$@") cpus nic cmdline logf pid rc t0=$SECONDS deadline pids=() w script
    local spec; spec=$(workload_spec "${ws[0]}")   # (no process substitution: the chroot has no /dev/fd)
    read -r cpus nic <<<"$spec"
    # The script goes into the data disk's last MiB; rv.cmd= loads and runs it.
    script=$(guest_script "$nic" "$HOST_IP" "$GUEST_IP" "$XFER_BYTES" "$DISK_MIB" "${ws[@]}")
    dd if=/dev/zero of=/tmp/stress-disk.img bs=1M count=1 seek=$((DISK_MIB - SCRIPT_MIB_FROM_END)) conv=notrunc status=none
    printf '%s\n' "$script" | dd of=/tmp/stress-disk.img bs=1M seek=$((DISK_MIB - SCRIPT_MIB_FROM_END)) iflag=fullblock conv=notrunc,fsync status=none
    blockdev --flushbufs "$loopdev" 2>/dev/null || true
    local load="dd if=/dev/vdb bs=1M skip=$((DISK_MIB - SCRIPT_MIB_FROM_END)) count=1 iflag=direct 2>/dev/null | tr -d '\\000' >/tmp/stress.sh; exec bash /tmp/stress.sh"
    cmdline="console=ttyS0 root=LABEL=rvroot ro panic=-1 quiet net.ifnames=0 rv.cmd=$(printf '%s' "$load" | base64 -w0)"
    local tag="${ws[0]}+$((${#ws[@]} - 1))-$vmm-$run"
    logf=$out/logs/$tag.log
    [[ ! -e $logf ]] || logf=$out/logs/$tag-$SECONDS.log
    echo "${ws[0]} $vmm $run" >"$out/current"; sync "$out/current" 2>/dev/null || true
    kill_listeners
    if [[ $L1_CHURN == compact ]]; then
        (while :; do echo 1 >/proc/sys/vm/compact_memory; sleep "$CHURN_S"; done) & pids+=($!)
    elif [[ $L1_CHURN == fragment ]]; then
        # Fills 128 MiB of L1's tmpfs in 4 KiB files, frees every other one
        # (free memory in holes between pages in use), then compacts: the
        # guest's pages keep being moved for as long as the boot runs.
        (while :; do
            mkdir -p /tmp/churn
            python3 -c 'import os
for i in range(32768): open(f"/tmp/churn/{i}", "wb").write(bytes(4096))
for i in range(0, 32768, 2): os.unlink(f"/tmp/churn/{i}")'
            echo 1 >/proc/sys/vm/compact_memory; rm -rf /tmp/churn; sleep "$CHURN_S"
        done) & pids+=($!)
    fi
    if [[ $nic != none ]]; then
        iperf3 -s -B "$HOST_IP" >/dev/null 2>&1 & pids+=($!)
        if [[ " ${ws[*]} " == *" xfer-"* ]]; then
            rm -f "$out/g2h.sum"
            socat -u FILE:/tmp/stress-h2g "TCP-LISTEN:5002,bind=$HOST_IP,reuseaddr" 2>/dev/null & pids+=($!)
            (socat -u "TCP-LISTEN:5003,bind=$HOST_IP,reuseaddr" - 2>/dev/null | sha256sum | cut -d' ' -f1 >"$out/g2h.sum") & pids+=($!)
        fi
    fi
    local argv; mapfile -t argv <<<"$(vmm_cmd "$vmm" "$cpus" "$nic" "$cmdline" "${logf%.log}.stats.json")"
    l1_counters >"${logf%.log}.l1-before"
    ktrace_reset
    timeout -k 10 "$L2_TIMEOUT" "${argv[@]}" </dev/null >"$logf" 2>&1 &
    pid=$!
    # A VMM that even SIGKILL does not end (a wedged host) is left behind.
    deadline=$((SECONDS + L2_TIMEOUT + 60))
    local boot= size=0 last_growth=$SECONDS silent=no cur=
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 1
        [[ -n $boot ]] || ! grep -aq RINGVISOR-GUEST-INIT "$logf" || boot=$((SECONDS - t0))
        local now; now=$(stat -c %s "$logf" 2>/dev/null || echo 0)
        ((now == size)) || {
            size=$now; last_growth=$SECONDS
            # The workload going now (for run.sh, should the test host die).
            local b; b=$(grep -a -o 'STRESS-BEGIN=[a-z0-9-]*' "$logf" | tail -n 1 | cut -d= -f2)
            [[ -z $b || $b == "$cur" ]] || { cur=$b; echo "$cur $vmm $run" >"$out/current"; sync "$out/current" 2>/dev/null || true; }
        }
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
    l1_counters | l1_delta "${logf%.log}.l1-before" >"${logf%.log}.l1-counters"
    rm -f "${logf%.log}.l1-before"
    ((${#pids[@]} == 0)) || { kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
    kill_listeners
    local first=yes verdict saved=no
    for w in "${ws[@]}"; do
        verdict=$(classify "$logf" "$rc" "$w" "$silent" "$first")
        first=no
        [[ -n $verdict ]] || continue
        [[ ${verdict%% *} == ok || $saved == yes ]] || { ktrace_save "${logf%.log}.trace.gz"; saved=yes; }
        record "$w" "$vmm" "$run" "${verdict%% *}" $((SECONDS - t0)) "${verdict#* }${boot:+ (up after $boot s; boot $(basename "$logf" .log))}"
    done
    rm -f "$out/current"
}

# What L1 did during a boot, whatever the VMM: its interrupts and IPIs by
# kind (/proc/interrupts, summed over CPUs) and its KVM's global exit and
# injection counters (debugfs). Deltas per boot land beside the log
# (<boot>.l1-counters, "name delta" lines), for comparing how hard each
# VMM's guest drives L1's (emulated) SVM for the same workload.
l1_counters() {
    awk 'NR > 1 && $1 ~ /^[A-Z]+:$/ { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
        sub(":", "", $1); print "irq_" $1, n }' /proc/interrupts
    local f
    for f in /sys/kernel/debug/kvm/*; do
        [[ -f $f ]] && printf 'kvm_%s %s\n' "${f##*/}" "$(cat "$f" 2>/dev/null || echo 0)"
    done
}
l1_delta() {  # BEFORE_FILE < AFTER -> "name delta" for the counters that moved
    awk 'NR == FNR { b[$1] = $2; next } ($2 - b[$1]) != 0 { print $1, $2 - b[$1] }' "$1" -
}
[[ -d /sys/kernel/debug/kvm ]] || mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true

{
    echo "session $SESSION: $(date -u +%FT%TZ) L1 $(uname -r) nproc $(nproc) MemTotal $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR ($(stat -c %y "$RINGVISOR")) $(cd "$root" && git rev-parse --short HEAD 2>/dev/null)"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "workloads: ${workloads[*]}  runs: $RUNS  vmms: ${vmms[*]}  mem: $MEM_MIB MiB  disk: $DISK_MIB MiB  xfer: $XFER_BYTES  rv extra: $RV_EXTRA"
    echo "L1 THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled) defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag)  compaction_proactiveness: $(cat /proc/sys/vm/compaction_proactiveness)  churn: ${L1_CHURN:-none}${L1_CHURN:+ every $CHURN_S s}"
} >>"$out/env.txt"

# Workloads with one spec share a boot, in the order given.
specs=()
for w in "${workloads[@]}"; do
    sp=$(workload_spec "$w") || { log "unknown workload $w (known: ${STRESS_WORKLOADS[*]})"; exit 2; }
    [[ " ${specs[*]} " == *" ${sp/ /_} "* ]] || specs+=("${sp/ /_}")
done
for ((r = 1; r <= RUNS; r++)); do
    for sp in "${specs[@]}"; do
        order=("${vmms[@]}")
        ((r % 2)) || order=($(printf '%s\n' "${vmms[@]}" | tac))   # alternate who goes first
        for v in "${order[@]}"; do
            # A boot that dies leaves the workloads after the one it died in
            # unrun: they get another boot (at most BOOTS_PER_RUN in all).
            for ((b = 1; b <= ${BOOTS_PER_RUN:-3}; b++)); do
                pending=()
                for w in "${workloads[@]}"; do
                    [[ $(workload_spec "$w") == "${sp/_/ }" ]] || continue
                    recorded "$w" "$v" "$r" || pending+=("$w")
                done
                ((${#pending[@]})) || break
                one_boot "$v" "$r" "${pending[@]}"
            done
        done
    done
done
exit 0
