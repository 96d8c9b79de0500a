#!/usr/bin/env bash
# Runs inside the test host (bench/snapshot/run.sh starts it): snapshot,
# restore and live migration of the same guest (kernel + busybox initramfs,
# MEM_MIB, 1 vCPU, no disk) under ringvisor and QEMU, alternating, RUNS
# times. The guest prints a counter every 10 ms on its serial console; every
# console line is stamped with L1's clock as it arrives, so
#   restore: VMM start -> the first count the restored guest prints
#   downtime: the last count the source printed -> the first the destination
#             printed (what a user of the guest sees; includes up to 10 ms of
#             the counter's own period)
#   total: the migrate command until the source has handed over
# In the background the guest rewrites a DIRTY MiB tmpfs file with `yes`
# output every second: pages of data, not of zeros (which both VMMs send
# as a flag rather than a page).
# QEMU: -M microvm, HMP `stop` + `migrate exec:cat > FILE`, `-incoming
# exec:cat FILE` + `cont` for snapshot/restore; `migrate unix:` to a second
# QEMU with `-incoming unix:` for live migration (its defaults: 300 ms
# downtime limit). Prints raw rows to $out/raw.txt:
#   snapshot VMM RUN create_s state_bytes memory_bytes restore_s
#   migrate VMM RUN DIRTY total_s downtime_ms reported_downtime_ms ok
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
RUNS=${RUNS:-3}
MEM_MIB=${MEM_MIB:-512}
DIRTY_RATES=${DIRTY_RATES:-0 10 50 200}
MIG_TIMEOUT=${MIG_TIMEOUT:-90}
out=${RV_RESULTS:-/tmp}/bench-snapshot
work=$(mktemp -d /tmp/rv-bench-snap.XXXXXX)
mkdir -p "$out"
raw=$out/raw.txt
: >"$raw"

guest_cmd() {  # DIRTY MiB/s
    local d=$1 dirty=
    ((d > 0)) && dirty="(while :; do yes | head -c $((d << 20)) >/tmp/dirty; sleep 1; done) &"
    printf '%s' "$dirty i=0; while :; do i=\$((i+1)); echo T=\$i; usleep 10000; done" | base64 -w0
}
cmdline() { echo "console=ttyS0 panic=-1 quiet rv.cmd=$(guest_cmd "$1")"; }

# stamp FILE: each line of stdin as "L1-time line". Real-time priority, so
# that a line is stamped as it arrives, not once L1's one vCPU gets round to
# the reader (the VMMs keep it busy while they migrate).
stamp() {
    chrt -f 10 bash -c 'while IFS= read -r l; do printf "%s %s\n" "$EPOCHREALTIME" "$l"; done' >"$1"
}
first_count_time() { grep -a -m1 ' T=' "$1" | cut -d' ' -f1; }
last_count_time() { grep -a ' T=' "$1" | tail -n 1 | cut -d' ' -f1; }
wait_count() {  # FILE N SECONDS
    local deadline=$((SECONDS + $3))
    until [[ $(grep -a -c ' T=' "$1" 2>/dev/null) -ge $2 ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
hmp() { printf '%s\n' "$2" | socat - "UNIX-CONNECT:$1" 2>/dev/null | tr -d '\r'; }
qemu_args() {
    echo -accel kvm -cpu host -M microvm,rtc=on -smp 1 -m "$MEM_MIB" -nodefaults -no-user-config \
        -display none -serial stdio -no-reboot -kernel "$GUEST/vmlinuz" \
        -initrd "$GUEST/initramfs.cpio.gz"
}
rv_boot() {  # SOCK LOG DIRTY [--track-dirty-pages]
    "$RINGVISOR" run --api-sock "$1" --kernel-cache "$KERNEL_CACHE" --kernel "$GUEST/vmlinuz" \
        --initrd "$GUEST/initramfs.cpio.gz" --memory "${MEM_MIB}M" --cpus 1 \
        --cmdline "$(cmdline "$3")" </dev/null 2>&1 | stamp "$2" &
}
q_boot() {  # MON LOG DIRTY [more args]
    local mon=$1 log=$2 d=$3
    shift 3
    # shellcheck disable=SC2046
    qemu-system-x86_64 $(qemu_args) -append "$(cmdline "$d")" -monitor "unix:$mon,server,nowait" "$@" \
        </dev/null 2>&1 | stamp "$log" &
}
# minus A B: A - B (seconds, 3 decimals); ms A B: (A - B) in ms.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a - b) * 1000 }'; }
stop_all() { pkill -9 -f "$RINGVISOR run" 2>/dev/null; pkill -9 qemu-system 2>/dev/null; sleep 0.5; }

snapshot_rv() {  # RUN
    local s=$work/rv.sock dir=$work/rv-snap log=$work/rv-snap-src.log log2=$work/rv-snap-dst.log
    rm -rf "$dir" "$s"
    rv_boot "$s" "$log" 0
    wait_count "$log" 100 120 || { echo "bench: ringvisor guest never counted" >&2; stop_all; return; }
    local t0=$EPOCHREALTIME
    "$RINGVISOR" snapshot --api-sock "$s" --keep-paused "$dir" >/dev/null || { stop_all; return; }
    local t1=$EPOCHREALTIME
    stop_all
    sync; echo 3 >/proc/sys/vm/drop_caches  # restore reads the files, not the page cache
    local t2=$EPOCHREALTIME
    "$RINGVISOR" run --restore "$dir" </dev/null 2>&1 | stamp "$log2" &
    wait_count "$log2" 1 60 || echo "bench: the restored ringvisor guest never counted" >&2
    local t3; t3=$(first_count_time "$log2")
    stop_all
    echo "snapshot ringvisor $1 $(minus "$t1" "$t0") $(stat -c %s "$dir/state") $(stat -c %s "$dir/memory") $(minus "$t3" "$t2")" >>"$raw"
}

snapshot_qemu() {  # RUN
    local mon=$work/q.mon file=$work/q-snap log=$work/q-snap-src.log log2=$work/q-snap-dst.log
    rm -f "$file" "$mon"
    q_boot "$mon" "$log" 0
    wait_count "$log" 100 120 || { echo "bench: QEMU guest never counted" >&2; stop_all; return; }
    local t0=$EPOCHREALTIME
    hmp "$mon" stop >/dev/null
    hmp "$mon" "migrate \"exec:cat > $file\"" >/dev/null
    until hmp "$mon" "info migrate" | grep -q "Migration status: completed"; do sleep 0.02; done
    local t1=$EPOCHREALTIME
    stop_all
    sync; echo 3 >/proc/sys/vm/drop_caches
    local t2=$EPOCHREALTIME
    rm -f "$mon"
    q_boot "$mon" "$log2" 0 -incoming "exec:cat $file"
    # Loaded once the status is no longer "inmigrate"; the saved VM was stopped.
    local st=
    until st=$(hmp "$mon" "info status") && [[ $st == *"VM status"* && $st != *inmigrate* ]]; do sleep 0.01; done
    hmp "$mon" cont >/dev/null
    wait_count "$log2" 1 60 || echo "bench: the restored QEMU guest never counted" >&2
    local t3; t3=$(first_count_time "$log2")
    stop_all
    echo "snapshot qemu $1 $(minus "$t1" "$t0") 0 $(stat -c %s "$file") $(minus "$t3" "$t2")" >>"$raw"
}

migrate_rv() {  # RUN DIRTY
    local s=$work/rv.sock in=$work/rv-in.sock log=$work/rv-mig-src.log log2=$work/rv-mig-dst.log
    rm -f "$s" "$in"
    rv_boot "$s" "$log" "$2"
    wait_count "$log" 200 120 || { echo "bench: ringvisor guest never counted" >&2; stop_all; return; }
    "$RINGVISOR" run --incoming "unix:$in" </dev/null 2>&1 | stamp "$log2" &
    for _ in $(seq 100); do [[ -S $in ]] && break; sleep 0.05; done
    local t0=$EPOCHREALTIME ok=1
    timeout "$MIG_TIMEOUT" "$RINGVISOR" migrate --api-sock "$s" --to "unix:$in" >"$work/rv-mig.out" 2>&1 || ok=0
    local t1=$EPOCHREALTIME
    wait_count "$log2" 1 30 || ok=0
    local last first reported
    last=$(last_count_time "$log") first=$(first_count_time "$log2")
    reported=$(sed -n 's/.* \([0-9]*\) ms paused.*/\1/p' "$work/rv-mig.out")
    stop_all
    if ((ok)); then
        echo "migrate ringvisor $1 $2 $(minus "$t1" "$t0") $(ms "$first" "$last") ${reported:-0} 1" >>"$raw"
    else
        echo "migrate ringvisor $1 $2 $(minus "$t1" "$t0") 0 0 0" >>"$raw"
    fi
}

migrate_qemu() {  # RUN DIRTY
    local mon=$work/q.mon mon2=$work/q2.mon in=$work/q-in.sock log=$work/q-mig-src.log log2=$work/q-mig-dst.log
    rm -f "$mon" "$mon2" "$in"
    q_boot "$mon" "$log" "$2"
    wait_count "$log" 200 120 || { echo "bench: QEMU guest never counted" >&2; stop_all; return; }
    q_boot "$mon2" "$log2" "$2" -incoming "unix:$in"
    for _ in $(seq 100); do [[ -S $in ]] && break; sleep 0.05; done
    local t0=$EPOCHREALTIME ok=0 info=
    hmp "$mon" "migrate -d unix:$in" >/dev/null
    local deadline=$((SECONDS + MIG_TIMEOUT))
    while ((SECONDS < deadline)); do
        info=$(hmp "$mon" "info migrate")
        grep -q "Migration status: completed" <<<"$info" && { ok=1; break; }
        grep -q "Migration status: failed" <<<"$info" && break
        sleep 0.05
    done
    local t1=$EPOCHREALTIME
    ((ok)) || hmp "$mon" migrate_cancel >/dev/null
    ((ok)) && { wait_count "$log2" 1 30 || ok=0; }
    local last first reported
    last=$(last_count_time "$log") first=$(first_count_time "$log2")
    reported=$(sed -n 's/^downtime: \([0-9]*\) ms.*/\1/p' <<<"$info")
    stop_all
    if ((ok)); then
        echo "migrate qemu $1 $2 $(minus "$t1" "$t0") $(ms "$first" "$last") ${reported:-0} 1" >>"$raw"
    else
        echo "migrate qemu $1 $2 $(minus "$t1" "$t0") 0 0 0" >>"$raw"
    fi
}

for ((run = 1; run <= RUNS; run++)); do
    snapshot_rv "$run"
    snapshot_qemu "$run"
    for d in $DIRTY_RATES; do
        migrate_rv "$run" "$d"
        migrate_qemu "$run" "$d"
    done
    echo "bench: run $run done" >&2
done
cat "$raw"
rm -rf "$work"
