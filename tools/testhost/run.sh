#!/usr/bin/env bash
# Run COMMAND inside the test host: an L1 Debian Linux under QEMU TCG with an
# emulated AMD-V CPU, where kvm-amd provides /dev/kvm. The host's / is the L1
# root (read-only 9p, chroot), the working directory is preserved, and a
# writable results directory is mounted at its own path (also $RV_RESULTS).
#
#   tools/testhost/run.sh [--timeout SECS] [--smp N] [--mem MiB] [--results DIR]
#                         [--9p-cache loose|none|mmap] [--append KERNEL-ARGS]
#                         [--interactive]
#                         -- COMMAND...
#
# Exit status: COMMAND's status; 124 if the test host timed out (default
# 600 s; QEMU is killed) or stopped (no heartbeat from L1 for RV_L1_STALL
# seconds, default 300; DIR/testhost-stopped.txt has its vCPUs' registers);
# 125 if L1 failed to boot or died before COMMAND finished (see stderr).
# COMMAND's output goes to stdout; L1 diagnostics ("rv-l1: ...") to stderr.
# The full L1 console is kept in DIR/testhost-console.log.
set -euo pipefail
RV_TOOL=testhost
. "$(dirname "$0")/../lib/common.sh"

timeout=600 smp=2 mem=2048 results= cache=loose extra= interactive=0
# TESTHOST_TCG_THREAD=single: one host thread runs every L1 vCPU (QEMU's
# round-robin TCG) instead of one thread per vCPU; for experiments on the
# nested-SVM faults (docs/BENCHMARKS.md), not the default.
tcg_thread=${TESTHOST_TCG_THREAD:-multi}
[[ $tcg_thread == multi || $tcg_thread == single ]] || rv_die "TESTHOST_TCG_THREAD=$tcg_thread: multi or single"
while (($#)); do
    case $1 in
        --timeout) timeout=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --9p-cache) cache=$2; shift 2 ;;
        --append) extra=$2; shift 2 ;;
        --interactive) interactive=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) rv_die "unknown argument: $1 (usage: run.sh [options] -- COMMAND...)" ;;
    esac
done
(($#)) || rv_die "no COMMAND given (usage: run.sh [options] -- COMMAND...)"

th=$RV_ROOT/build/testhost
buildlog=$(mktemp)
if ! "$RV_ROOT/tools/testhost/build.sh" "$th" >"$buildlog" 2>&1; then
    cat "$buildlog" >&2; rm -f "$buildlog"; rv_die "tools/testhost/build.sh failed"
fi
rm -f "$buildlog"

mkdir -p "$th/runs"
priv=$(mktemp -d "$th/runs/run.XXXXXX")
if [[ -n "$results" ]]; then
    mkdir -p "$results"; results=$(realpath "$results"); keep=1
else
    results=$priv/results; mkdir -p "$results"; keep=0
fi
rm -f "$results/.rv-exit-status" "$results/.rv-alive" "$results/.rv-l1-kallsyms.gz"
console=$results/testhost-console.log

main_pid=$BASHPID pipe_pid= watch_pid=
cleanup() {
    local pid
    [[ $BASHPID == "$main_pid" ]] || return 0   # not in the pipeline's subshells
    [[ -z "$watch_pid" ]] || kill "$watch_pid" 2>/dev/null || true
    if [[ -s "$priv/qemu.pid" ]] && pid=$(cat "$priv/qemu.pid") && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    [[ -z "$pipe_pid" ]] || wait "$pipe_pid" 2>/dev/null || true
    rm -rf "$priv"
    [[ -z "${monitor:-}" || "$monitor" == "$priv"/* || -n ${RV_L1_MONITOR:-} ]] || rm -rf "$(dirname "$monitor")"
    ((keep)) || rm -rf "$results"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The QEMU that emulates L1: bookworm-backports' (tools/testhost/l1_qemu.sh
# says why), or RV_L1_QEMU (e.g. qemu-system-x86_64 for the system's 7.2)
# with RV_L1_QEMU_ARGS.
l1_qemu_args=()
if [[ -n ${RV_L1_QEMU:-} ]]; then
    l1_qemu=$RV_L1_QEMU
    read -r -a l1_qemu_args <<<"${RV_L1_QEMU_ARGS:-}"
else
    l1_qemu=$("$RV_ROOT/tools/testhost/l1_qemu.sh" 2>"$priv/l1-qemu.log") ||
        { cat "$priv/l1-qemu.log" >&2; rv_die "no QEMU for the test host"; }
    l1_root=$(dirname "$(dirname "$(dirname "$l1_qemu")")")
    l1_qemu_args=(-L "$l1_root/usr/share/seabios" -L "$l1_root/usr/share/qemu")
fi

# L0 QEMU's monitor (HMP) for L1: RV_L1_MONITOR=PATH puts its socket where
# a person (or a test) can reach it while L1 runs. By default it lives in
# $priv, or in a short temporary directory when $priv's path is too long
# for a Unix socket (108 bytes).
monitor=${RV_L1_MONITOR:-$priv/monitor.sock}
if [[ -z ${RV_L1_MONITOR:-} ]] && ((${#monitor} > 100)); then
    monitor=$(mktemp -d "${TMPDIR:-/tmp}/rv-l1.XXXXXX")/monitor.sock
fi
((${#monitor} <= 107)) || rv_die "RV_L1_MONITOR=$monitor: longer than a Unix socket path can be"
# Seconds without L1's heartbeat before run.sh calls L1 stopped (below).
stall=${RV_L1_STALL:-300}
[[ $stall =~ ^[0-9]+$ ]] && ((stall >= 20)) || rv_die "RV_L1_STALL=$stall: a number of seconds, at least 20"
b64() { printf '%s' "$1" | base64 -w0; }
cmd=$(printf '%q ' "$@")
# maxcpus=1: the other vCPUs are onlined by init after the modules are loaded
# (module loading is several times slower with 2 vCPUs under TCG). The
# crypto self-tests cost ~0.5 s under TCG.
# transparent_hugepage=never (and init's compaction_proactiveness=0): L1 does
# not move guest pages behind the nested emulation's back (README: page
# migration in L1 kills L2 guests and L1); --append transparent_hugepage=always
# overrides it for experiments.
append="console=ttyS0 panic=-1 quiet loglevel=1 mitigations=off maxcpus=1 transparent_hugepage=never"
append+=" cryptomgr.notests=1 initcall_blacklist=crypto_kdf108_init rv.9p=cache=$cache $extra"
append+=" rv.cmd=$(b64 "$cmd") rv.cwd=$(b64 "$PWD") rv.res=$(b64 "$results")"
((${#append} < 2000)) || rv_die "COMMAND too long for the kernel command line; put it in a script"

# Interactive: the terminal is L1's serial console and COMMAND's stdin
# (QEMU's escape is Ctrl-A: Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A).
if ((interactive)); then
    [[ -t 0 ]] || rv_die "--interactive needs a terminal on stdin"
    append+=" rv.tty=1"
    set +e
    timeout -k 5 --foreground "$timeout" "$l1_qemu" "${l1_qemu_args[@]}" \
        -accel tcg,thread="$tcg_thread" -smp "$smp" -cpu EPYC,+svm,+npt -M q35 -m "$mem" \
        -nographic -no-reboot -nic none -pidfile "$priv/qemu.pid" \
        -kernel "$th/vmlinux" -initrd "$th/initramfs.cpio.gz" -append "$append" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$results",mount_tag=results,security_model=none,multidevs=remap \
        2>"$priv/qemu.stderr"
    set -e
    status=$(cat "$results/.rv-exit-status" 2>/dev/null || echo 125)
    exit "$status"
fi

# Output filter: COMMAND's output (between the markers) to stdout, rv-l1
# diagnostics to stderr, everything to the console log.
t0=$EPOCHREALTIME
filter() {
    local line on=0 rest
    while IFS= read -r line || [[ -n "$line" ]]; do
        printf '%s\n' "$line" >>"$console"
        line=${line%$'\r'}; line=${line%$'\r'}
        if ((on)); then
            if [[ "$line" == *@@RV-L1-END@@* ]]; then
                rest=${line%%@@RV-L1-END@@*}; [[ -z "$rest" ]] || printf '%s\n' "$rest"
                on=0
            else
                printf '%s\n' "$line"
            fi
        elif [[ "$line" == @@RV-L1-BEGIN@@ ]]; then
            on=1
        elif [[ "$line" == rv-l1:* ]]; then
            printf '%s\n' "$line" >&2
            [[ "$line" != "rv-l1: ready"* ]] ||
                printf 'testhost: L1 ready after %.1f s wall time\n' "$(bc_sub "$EPOCHREALTIME" "$t0")" >&2
        fi
    done
}
# tail of the console without terminal control sequences
console_tail() { tail -n "$1" "$console" | sed 's/\x1b[[?0-9;]*[a-zA-Z]//g; s/\x1bc//g; s/\r$//' >&2; }
bc_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

: >"$console"
# In the background + wait, so that a signal to run.sh runs the traps (which
# kill QEMU) at once; bash defers traps while a foreground pipeline runs.
# (errexit holds in this subshell too: QEMU's status is caught, not fatal.)
{
    qemu_rc=0
    timeout -k 5 "$timeout" "$l1_qemu" "${l1_qemu_args[@]}" \
        -accel tcg,thread="$tcg_thread" -smp "$smp" -cpu EPYC,+svm,+npt -M q35 -m "$mem" \
        -nographic -no-reboot -nic none -pidfile "$priv/qemu.pid" \
        -monitor unix:"$monitor",server=on,wait=off \
        -kernel "$th/vmlinux" -initrd "$th/initramfs.cpio.gz" -append "$append" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$results",mount_tag=results,security_model=none,multidevs=remap \
        </dev/null 2>"$priv/qemu.stderr" || qemu_rc=$?
    echo "$qemu_rc" >"$priv/qemu.rc"
} 2>/dev/null | filter &
pipe_pid=$!

# L1 that stops: the nested emulation can wedge L1 (README), and then no
# timeout inside L1 fires. init rewrites .rv-alive every 10 s while COMMAND
# runs; after RV_L1_STALL seconds (default 300) without it, save what QEMU
# says L1's vCPUs are doing and stop QEMU.
watch_l1() {
    local alive=$results/.rv-alive age pid
    while sleep 10; do
        [[ -e "$alive" ]] || continue   # L1 still booting: QEMU's timeout covers that
        age=$(($(date +%s) - $(stat -c %Y "$alive" 2>/dev/null || date +%s)))
        ((age > stall)) || continue
        echo "$age" >"$priv/l1-stopped"
        pid=$(cat "$priv/qemu.pid" 2>/dev/null) || pid=
        timeout 120 python3 "$RV_ROOT/tools/testhost/l1_state.py" "$monitor" \
            "$results/.rv-l1-kallsyms.gz" $pid >"$results/testhost-stopped.txt" 2>&1
        [[ -z "$pid" ]] || kill -KILL "$pid" 2>/dev/null
        return 0
    done
}
watch_l1 </dev/null >/dev/null 2>&1 &
watch_pid=$!
wait "$pipe_pid"
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=
qrc=$(cat "$priv/qemu.rc" 2>/dev/null || echo 1)
total=$(bc_sub "$EPOCHREALTIME" "$t0")

if [[ -s "$priv/l1-stopped" ]]; then
    echo "testhost: L1 STOPPED: no heartbeat for $(cat "$priv/l1-stopped") s (RV_L1_STALL=$stall); QEMU killed." >&2
    echo "testhost: its vCPUs' registers and code: $results/testhost-stopped.txt; last console lines:" >&2
    console_tail 15
    exit 124
fi
if ((qrc == 124 || qrc == 137)); then
    echo "testhost: TIMEOUT: killed QEMU after ${timeout} s; last console lines:" >&2
    console_tail 15
    exit 124
fi
status=$(cat "$results/.rv-exit-status" 2>/dev/null || true)
if [[ ! "$status" =~ ^[0-9]+$ ]]; then
    if [[ -z "$status" ]]; then
        echo "testhost: L1 FAILED before running the command (QEMU exit $qrc); last console lines:" >&2
    else
        echo "testhost: L1 DIED while the command was running (QEMU exit $qrc); last console lines:" >&2
    fi
    console_tail 25
    # QEMU's stderr minus the harmless "TCG doesn't support requested feature" noise
    if grep -qv "TCG doesn't support" "$priv/qemu.stderr"; then
        echo "testhost: QEMU stderr:" >&2
        grep -v "TCG doesn't support" "$priv/qemu.stderr" >&2
    fi
    exit 125
fi
echo "testhost: command exited $status, total ${total} s" >&2
exit "$status"
