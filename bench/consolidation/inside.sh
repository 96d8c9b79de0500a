#!/usr/bin/env bash
# Runs inside the test host (bench/consolidation/run.sh starts it): for each
# VMM in turn (the order alternates across repetitions), starts idle guests
# one at a time, each once the previous one printed its idle marker, until
#   - a guest fails to start (the VMM exits, or no idle marker within
#     START_TIMEOUT s; it is killed and not counted),
#   - a running guest dies (its VMM process is gone),
#   - L1's OOM killer ran (dmesg), or
#   - L1's MemAvailable is under FLOOR_MIB once the new guest idles,
#   - or MAX_GUESTS / RAMP_BUDGET_S is reached (a cap, reported as such).
# Then it checks every guest is alive (process, and a new heartbeat on its
# serial console), stops them all with SIGTERM and checks L1's memory came
# back. Per step it records L1's /proc/meminfo and every VMM process's Rss,
# Pss and USS (smaps_rollup) and the resident part of its guest-RAM mapping
# (smaps).
# Output in $OUT (default $RV_RESULTS/consolidation):
#   env.txt     date, versions, L1 memory, the VMM command lines (per session)
#   steps.csv   one row per step (n = guests started and idle; n = 0 is the baseline)
#   procs.csv   every VMM process at the limit (and its exit status after SIGTERM)
#   ramps.csv   one row per ramp: guests alive at the limit, why it stopped, memory back
#   (every row starts with the test-host session; a ramp already in ramps.csv is skipped)
#   <vmm>-r<rep>-s<session>/guest-<n>.{console,err}, guest-1.smaps, dmesg-*.txt
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
VMMS=${VMMS:-ringvisor qemu}        # ringvisor, qemu (microvm), qemu-q35
REPS=${REPS:-1}
MAX_GUESTS=${MAX_GUESTS:-0}         # 0: no cap
MEM_MIB=${MEM_MIB:-128}
FLOOR_MIB=${FLOOR_MIB:-64}
START_TIMEOUT=${START_TIMEOUT:-240} # s from starting a VMM to its guest's idle marker
SETTLE_S=${SETTLE_S:-5}             # s after the marker before measuring
BEAT_S=${BEAT_S:-20}                # the guest's heartbeat period
RAMP_BUDGET_S=${RAMP_BUDGET_S:-3000}
SESSION=${SESSION:-1}              # run.sh counts test-host sessions (a ramp whose L1 died runs again)
L1_MEM_MIB=${L1_MEM_MIB:-?}         # for env.txt (run.sh's --mem)
out=${OUT:-${RV_RESULTS:?}/consolidation}
mkdir -p "$out"

log() { echo "consolidation: $*" >&2; }

# Our own shell must not be what L1's OOM killer picks; the VMMs get the
# default score back (start_vmm) so they are judged as any process would be.
echo -1000 >/proc/self/oom_score_adj 2>/dev/null || log "cannot set oom_score_adj"

# ---- the guest and the VMMs ---------------------------------------------------
# Idle guest: the busybox initramfs; its init runs rv.cmd, which prints the
# marker with the guest's own view of its memory, then a heartbeat every BEAT_S s.
guest_sh="echo CONSOL-IDLE \$(awk '/^MemTotal|^MemFree/ { printf \"%s%s \", \$1, \$2 }' /proc/meminfo); i=0; while :; do sleep $BEAT_S; i=\$((i + 1)); echo CONSOL-BEAT=\$i; done"
cmdline="console=ttyS0 panic=-1 quiet rv.cmd=$(printf '%s' "$guest_sh" | base64 -w0)"

# Both VMMs boot the same decompressed kernel at its 64-bit/PVH entry (no
# decompressor in the guest): ringvisor through its kernel cache (the ELF
# payload of vmlinuz, warmed by run.sh), QEMU from vmlinux (PVH note).
vmm_argv() {  # VMM -> argv, one per line
    case $1 in
        ringvisor)
            printf '%s\n' "$RINGVISOR" run --kernel-cache "$KERNEL_CACHE" --kernel "$GUEST/vmlinuz" \
                --initrd "$GUEST/initramfs.cpio.gz" --memory "${MEM_MIB}M" --cpus 1 --cmdline "$cmdline" ;;
        qemu|qemu-q35)
            local m=microvm,rtc=on; [[ $1 == qemu-q35 ]] && m=q35
            printf '%s\n' qemu-system-x86_64 -accel kvm -cpu host -M "$m" -smp 1 -m "$MEM_MIB" \
                -nodefaults -no-user-config -display none -serial stdio -no-reboot \
                -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.cpio.gz" -append "$cmdline" ;;
        *) return 1 ;;
    esac
}
# (the chroot has no /dev/fd, so no process substitution: argv via a file)
start_vmm() {  # VMM CONSOLE ERR -> pid in $started
    local argv=()
    vmm_argv "$1" >"$out/.argv"
    mapfile -t argv <"$out/.argv"
    ( echo 0 >/proc/self/oom_score_adj 2>/dev/null; exec "${argv[@]}" ) </dev/null >"$2" 2>"$3" &
    started=$!
}

# ---- measurements ---------------------------------------------------------------
MEMINFO_KEYS=(MemAvailable MemFree AnonPages Cached Shmem Slab SUnreclaim KernelStack PageTables SecPageTables)
meminfo() {  # -> the values of MEMINFO_KEYS (kB), space-separated
    awk -v keys="${MEMINFO_KEYS[*]}" '
        BEGIN { n = split(keys, k, " ") }
        { sub(":", "", $1); v[$1] = $2 }
        END { for (i = 1; i <= n; i++) printf "%s%s", (k[i] in v ? v[k[i]] : "na"), (i < n ? " " : "\n") }' /proc/meminfo
}
avail_kib() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
# proc_mem PID -> "rss pss uss anon guest_size guest_rss guest_pss" (kB):
# totals from smaps_rollup; the guest-RAM mapping from smaps, the smallest
# mapping at least as large as the guest's RAM (both VMMs map it in one piece).
# (Per step every VMM's smaps_rollup is read, but only the new VMM's smaps:
# under TCG, parsing 40 QEMUs' smaps took most of a minute per step. A guest
# that idles does not change its guest-RAM Rss; procs.csv has it again at the limit.)
proc_rollup() {  # PID -> "rss pss uss anon" (kB), no fork
    local k v rest r= p= u=0 an=0
    while read -r k v rest; do
        case $k in
            Rss:) r=$v ;; Pss:) p=$v ;; Private_Clean:|Private_Dirty:) u=$((u + v)) ;; Anonymous:) an=$v ;;
        esac
    done 2>/dev/null <"/proc/$1/smaps_rollup" || return 1
    [[ -n $r ]] || return 1
    echo "$r $p $u $an"
}
proc_mem() {
    local a b
    a=$(proc_rollup "$1") || return 1
    b=$(awk -v want=$((MEM_MIB * 1024)) '
        /^[0-9a-f]+-[0-9a-f]+ / { size = -1 }
        /^Size:/ { size = $2 }
        /^Rss:/ { rss = $2 }
        /^Pss:/ { if (size >= want && (bs == "" || size < bs)) { bs = size; br = rss; bp = $2 } }
        END { print bs + 0, br + 0, bp + 0 }' "/proc/$1/smaps" 2>/dev/null) || return 1
    echo "$a $b"
}
alive() {  # PID: exists and is not a zombie (no fork)
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }; st=${st%% *}
    [[ -n $st && $st != Z && $st != X ]]
}
oom_count() { dmesg 2>/dev/null | grep -cE 'invoked oom-killer|Out of memory: Killed|oom-kill:' ; }

# ---- env.txt ----------------------------------------------------------------------
{
    echo "session: $SESSION"
    echo "date: $(date -u +%FT%TZ)"
    echo "L1: kernel $(uname -r), nproc $(nproc), --mem ${L1_MEM_MIB} MiB, MemTotal $(awk '/^MemTotal/ { print $2 }' /proc/meminfo) kB, THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null), swap $(awk '/^SwapTotal/ { print $2 }' /proc/meminfo) kB"
    echo "ringvisor: $RINGVISOR sha256 $(sha256sum <"$RINGVISOR" | cut -c1-16) (${RINGVISOR_DESC:-?})"
    echo "qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "guest: kernel $(cat "$GUEST/kernel-version" 2>/dev/null), $GUEST/initramfs.cpio.gz sha256 $(sha256sum <"$GUEST/initramfs.cpio.gz" | cut -c1-16), ${MEM_MIB} MiB, 1 vCPU, serial console to a file, no disks or NICs"
    echo "VMMS=$VMMS REPS=$REPS MAX_GUESTS=$MAX_GUESTS FLOOR_MIB=$FLOOR_MIB START_TIMEOUT=$START_TIMEOUT SETTLE_S=$SETTLE_S BEAT_S=$BEAT_S RAMP_BUDGET_S=$RAMP_BUDGET_S"
    echo "guest command (rv.cmd): $guest_sh"
    for v in $VMMS; do echo "$v: $(vmm_argv "$v" | tr '\n' ' ')"; done
} >"$out/env-s$SESSION.txt"
cat "$out/env-s$SESSION.txt" >>"$out/env.txt"
cat "$out/env-s$SESSION.txt" >&2

steps=$out/steps.csv procs=$out/procs.csv ramps=$out/ramps.csv
[[ -s $steps ]] || echo "session,rep,vmm,order,n,t_s,boot_s,memavailable_kib,memfree_kib,anonpages_kib,cached_kib,shmem_kib,slab_kib,sunreclaim_kib,kernelstack_kib,pagetables_kib,secpagetables_kib,new_rss_kib,new_pss_kib,new_uss_kib,new_guest_size_kib,new_guest_rss_kib,sum_rss_kib,sum_pss_kib,sum_uss_kib,sum_guest_rss_kib,alive,event" >"$steps"
[[ -s $procs ]] || echo "session,rep,vmm,idx,pid,rss_kib,pss_kib,uss_kib,anon_kib,guest_size_kib,guest_rss_kib,guest_pss_kib,guest_memtotal_kib,guest_memfree_kib,exit_status" >"$procs"
[[ -s $ramps ]] || echo "session,rep,vmm,order,guests_alive,started,stop_reason,baseline_avail_kib,limit_avail_kib,after_avail_kib,stopped_clean,oom_events,seconds" >"$ramps"

pids=() grss=()   # the VMMs of the current ramp, the guest-RAM Rss of each (kB)
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

# ---- one ramp ---------------------------------------------------------------------------
ramp() {  # REP VMM ORDER
    local rep=$1 vmm=$2 order=$3 dir=$out/$2-r$1-s$SESSION n started t0 tb boot reason= alivec p i m line
    local base_avail limit_avail after_avail oom0 oomn new dead rc nstarted
    mkdir -p "$dir"; pids=() grss=()
    sync; echo 3 >/proc/sys/vm/drop_caches; sleep 2
    oom0=$(oom_count)
    base_avail=$(avail_kib)
    echo "$SESSION,$rep,$vmm,$order,0,0,,$(meminfo | tr ' ' ','),,,,,,0,0,0,0,0,baseline" >>"$steps"
    log "== rep $rep: $vmm (order $order), baseline MemAvailable $((base_avail / 1024)) MiB"
    t0=$SECONDS
    for ((n = 1; ; n++)); do
        if ((MAX_GUESTS && n > MAX_GUESTS)); then reason="cap: MAX_GUESTS=$MAX_GUESTS"; break; fi
        if ((SECONDS - t0 > RAMP_BUDGET_S)); then reason="cap: RAMP_BUDGET_S=$RAMP_BUDGET_S"; break; fi
        tb=${EPOCHREALTIME/./}
        start_vmm "$vmm" "$dir/guest-$n.console" "$dir/guest-$n.err"
        p=$started
        while ! grep -aq CONSOL-IDLE "$dir/guest-$n.console" 2>/dev/null; do
            if ! alive "$p"; then
                wait "$p"; rc=$?
                reason="guest $n failed to start: VMM exited $rc: $(tail -c 300 "$dir/guest-$n.err" | tr '\n,' '  ')"
                break 2
            fi
            if ((${EPOCHREALTIME/./} - tb > START_TIMEOUT * 1000000)); then
                kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
                reason="guest $n failed to start: no idle marker within ${START_TIMEOUT} s (killed)"
                break 2
            fi
            sleep 0.5
        done
        boot=$(((${EPOCHREALTIME/./} - tb) / 100000)); boot=$((boot / 10)).$((boot % 10))
        pids+=("$p")
        sleep "$SETTLE_S"
        # every VMM of this ramp: totals, and who died
        local srss=0 spss=0 suss=0 sguest=0 nm last=$((${#pids[@]} - 1))
        alivec=0 dead=
        if m=$(proc_mem "${pids[last]}"); then
            read -r -a nm <<<"$m"
            new="${nm[0]},${nm[1]},${nm[2]},${nm[4]},${nm[5]}" grss[last]=${nm[5]}
        else
            grss[last]=0
        fi
        for i in "${!pids[@]}"; do
            if alive "${pids[i]}" && m=$(proc_rollup "${pids[i]}"); then
                alivec=$((alivec + 1))
                read -r -a nm <<<"$m"
                srss=$((srss + nm[0])) spss=$((spss + nm[1])) suss=$((suss + nm[2])) sguest=$((sguest + grss[i]))
            else
                dead+=" $((i + 1))"
            fi
        done
        [[ -n ${new:-} ]] || new=",,,,"
        oomn=$(($(oom_count) - oom0))
        line="$SESSION,$rep,$vmm,$order,$n,$((SECONDS - t0)),$boot,$(meminfo | tr ' ' ','),$new,$srss,$spss,$suss,$sguest,$alivec"
        new=
        limit_avail=$(avail_kib)
        if ((oomn > 0)); then
            echo "$line,oom" >>"$steps"; reason="L1 OOM killer ran ($oomn events)"
            dmesg >"$dir/dmesg-oom.txt" 2>&1; break
        elif [[ -n $dead ]]; then
            echo "$line,died" >>"$steps"; reason="guest(s)$dead died"; break
        elif ((limit_avail < FLOOR_MIB * 1024)); then
            echo "$line,floor" >>"$steps"; reason="MemAvailable $((limit_avail / 1024)) MiB < floor ${FLOOR_MIB} MiB"; break
        fi
        echo "$line,ok" >>"$steps"
        log "$vmm r$rep: guest $n idle after ${boot} s; MemAvailable $((limit_avail / 1024)) MiB; alive $alivec"
    done
    limit_avail=$(avail_kib)
    log "$vmm r$rep: stopped starting guests: $reason"

    # every guest alive at the limit: process, and a heartbeat after this point
    local -a off=() ok=()
    local mt mf
    for i in "${!pids[@]}"; do off[i]=$(stat -c %s "$dir/guest-$((i + 1)).console" 2>/dev/null || echo 0); ok[i]=0; done
    local deadline=$((SECONDS + 2 * BEAT_S + 30)) waiting
    while :; do
        waiting=0
        for i in "${!pids[@]}"; do
            ((ok[i])) && continue
            alive "${pids[i]}" || { ok[i]=-1; continue; }
            if tail -c +$((off[i] + 1)) "$dir/guest-$((i + 1)).console" 2>/dev/null | grep -aq CONSOL-BEAT; then ok[i]=1; else waiting=1; fi
        done
        ((waiting && SECONDS < deadline)) || break
        sleep 1
    done
    alivec=0
    for i in "${!pids[@]}"; do
        ((ok[i] == 1)) && alivec=$((alivec + 1))
        m=$(proc_mem "${pids[i]}" 2>/dev/null) || m="na na na na na na na"
        read -r mt mf <<<"$(grep -ao 'CONSOL-IDLE MemTotal:[0-9]* MemFree:[0-9]*' "$dir/guest-$((i + 1)).console" | head -1 | sed 's/[^0-9 ]//g; s/^ *//')"
        procline[i]="$SESSION,$rep,$vmm,$((i + 1)),${pids[i]},$(tr ' ' ',' <<<"$m"),${mt:-},${mf:-}"
        # the first guest's full smaps, to see what the VMM's own memory is
        ((i == 0)) && cp "/proc/${pids[i]}/smaps" "$dir/guest-1.smaps" 2>/dev/null
        ((ok[i] == 1)) || log "$vmm r$rep: guest $((i + 1)) (pid ${pids[i]}) not alive at the limit (${ok[i]})"
    done
    log "$vmm r$rep: $alivec of ${#pids[@]} guests alive at the limit (process and heartbeat)"

    # stop them all cleanly: SIGTERM, 60 s, then SIGKILL
    nstarted=${#pids[@]}
    local clean=0
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    deadline=$((SECONDS + 60))
    for i in "${!pids[@]}"; do
        while alive "${pids[i]}" && ((SECONDS < deadline)); do sleep 0.2; done
        if alive "${pids[i]}"; then kill -KILL "${pids[i]}" 2>/dev/null; fi
        wait "${pids[i]}"; rc=$?
        echo "${procline[i]},$rc" >>"$procs"
        # ringvisor: 130 on SIGTERM (a clean stop); QEMU: 0 ("terminating on signal 15")
        case $vmm:$rc in ringvisor:130|qemu*:0) clean=$((clean + 1)) ;; esac
    done
    pids=()
    unset procline
    sleep 3; sync; echo 3 >/proc/sys/vm/drop_caches; sleep 2
    after_avail=$(avail_kib)
    oomn=$(($(oom_count) - oom0))
    ((oomn == 0)) || dmesg >"$dir/dmesg-end.txt" 2>&1
    echo "$SESSION,$rep,$vmm,$order,$alivec,$nstarted,${reason//,/;},$base_avail,$limit_avail,$after_avail,$clean,$oomn,$((SECONDS - t0))" >>"$ramps"
    log "$vmm r$rep: stopped $clean cleanly; MemAvailable baseline $((base_avail / 1024)) MiB, at the limit $((limit_avail / 1024)), after stop $((after_avail / 1024)) MiB; OOM events $oomn; $((SECONDS - t0)) s"
}

declare -a procline
read -r -a vmms <<<"$VMMS"
for ((rep = 1; rep <= REPS; rep++)); do
    order=("${vmms[@]}")
    if ((rep % 2 == 0)); then
        order=(); for ((j = ${#vmms[@]} - 1; j >= 0; j--)); do order+=("${vmms[j]}"); done
    fi
    for j in "${!order[@]}"; do
        # a ramp finished in an earlier session (run.sh reruns the one whose L1 died)
        if grep -q "^[0-9]*,$rep,${order[j]}," "$ramps"; then log "rep $rep ${order[j]}: done in an earlier session"; continue; fi
        echo "$rep ${order[j]}" >"$out/current"; sync "$out/current" 2>/dev/null
        ramp "$rep" "${order[j]}" "$((j + 1))"
    done
done
rm -f "$out/current"
log "done"
