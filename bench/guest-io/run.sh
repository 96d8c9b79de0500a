#!/usr/bin/env bash
# fio and iperf3 inside a real distribution, ringvisor beside QEMU and
# kvmtool: the Debian 12 guest of tools/rootfs (systemd, fio, iperf3; the
# same kernel, initramfs and root image for every VMM) boots under each VMM
# in one test-host session, RUNS times, alternating the order, for each vCPU
# count and cache mode, and runs the rows of bench/guest-io/rows.sh on a
# second virtio-blk disk (a filled 1 GiB image behind a loop device in L1's
# tmpfs) and over a TAP to the test host. Prints a markdown table of medians
# with min-max, the ratios to QEMU and kvmtool, VMM CPU per GiB and exits per
# MiB (bench/guest-io/report.py).
#   bench/guest-io/run.sh [BUILD_DIR]
# Environment: RUNS (3), VMMS ("ringvisor qemu kvmtool"), CPUS ("1 2"),
# CACHES ("none writeback"), NET_CPUS (2: iperf3 rows run in those boots, with
# the first cache mode), SECONDS_PER_ROW (8), QEMU_VHOST (off: ringvisor has
# no in-kernel virtio-net either; "on" to compare with vhost-net),
# KVMTOOL (a built lkvm; default: built from ../shared/peers into
# BUILD_DIR/peers, or measured without kvmtool, saying so), RINGVISOR (the
# binary; default BUILD_DIR/ringvisor), RINGVISOR_BASE (another ringvisor
# binary, e.g. main before a change: with "ringvisor-base" in VMMS it boots
# with ringvisor's options, for an A/B of the change in one session),
# OUT (BUILD_DIR/guest-io-<date>),
# ROWS (a subset of the rows), RV_DISK_OPTS (more --disk options for
# ringvisor's data disk, e.g. ",num_queues=1"), L2_TIMEOUT (900 s per boot),
# STALL_SECONDS (240: a boot whose console is silent that long is ended as
# stuck), PROFILE (diagnosis: "$PROFILE -o FILE -p PID" runs over each row,
# e.g. "perf record -g" or "strace -c -f"; FILE is OUT/profile-VMM-CPUS-CACHE-RUN-ROW),
# PEER_SCHED (diagnosis: "batch" runs QEMU and kvmtool under chrt -b 0, in
# the scheduling class ringvisor's threads have by default),
# L1_SMP (the test host's vCPUs, 2; 1 avoids the nesting fault that kills
# guests and L1 at 2, but L2's vCPUs and the VMM then share one CPU).
# Besides the table: OUT/raw.csv, OUT/threads.csv (the VMM's CPU per row by
# thread), OUT/logs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
out=$(realpath -m "${OUT:-$build/guest-io-$(date -u +%Y%m%d-%H%M%S)}")
RINGVISOR=$(realpath "${RINGVISOR:-$build/ringvisor}")
[[ -x $RINGVISOR ]] || { echo "guest-io: $RINGVISOR not built (make build)" >&2; exit 1; }
if [[ ${VMMS:-} == *ringvisor-base* ]]; then
    [[ -x ${RINGVISOR_BASE:-} ]] || { echo "guest-io: ringvisor-base in VMMS needs RINGVISOR_BASE=/path/to/ringvisor" >&2; exit 1; }
    RINGVISOR_BASE=$(realpath "$RINGVISOR_BASE")
fi
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$root/tools/rootfs/build.sh" "$build/rootfs" >/dev/null
"$root/tools/testhost/build.sh" >/dev/null
"$RINGVISOR" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >/dev/null

# kvmtool: not packaged by Debian; built from the peers' source, for measurement only.
peers=$root/../shared/peers
if [[ -z ${KVMTOOL:-} && ${VMMS:-kvmtool} == *kvmtool* ]]; then
    tarball=$(ls "$peers"/kvmtool-*.tar.gz 2>/dev/null | head -n 1 || true)
    if [[ -n $tarball ]]; then
        src=$build/peers/$(basename "$tarball" .tar.gz)
        if [[ ! -x $src/lkvm ]]; then
            mkdir -p "$build/peers" && tar -xzf "$tarball" -C "$build/peers"
            make -C "$src" -j"$(nproc)" lkvm >"$build/peers/lkvm-build.log" 2>&1 ||
                { tail -n 20 "$build/peers/lkvm-build.log" >&2; echo "guest-io: building lkvm failed" >&2; exit 1; }
        fi
        KVMTOOL=$src/lkvm
    else
        echo "guest-io: no kvmtool source in $peers and no KVMTOOL=: measuring without kvmtool" >&2
    fi
fi
mkdir -p "$out"
"$root/tools/testhost/run.sh" --smp "${L1_SMP:-2}" --mem 4096 --timeout "${TIMEOUT:-7200}" --results "$out" -- \
    env OUT="$out" RINGVISOR="$RINGVISOR" RINGVISOR_BASE="${RINGVISOR_BASE:-}" GUEST="$build/guest" ROOTFS="$build/rootfs" \
    KERNEL_CACHE="$build/kernel-cache" KVMTOOL="${KVMTOOL:-}" RUNS="${RUNS:-3}" \
    VMMS="${VMMS:-ringvisor qemu kvmtool}" CPUS="${CPUS:-1 2}" CACHES="${CACHES:-none writeback}" \
    NET_CPUS="${NET_CPUS:-2}" SECONDS_PER_ROW="${SECONDS_PER_ROW:-8}" QEMU_VHOST="${QEMU_VHOST:-off}" \
    RV_DISK_OPTS="${RV_DISK_OPTS:-}" ROWS="${ROWS:-}" L2_TIMEOUT="${L2_TIMEOUT:-900}" STALL_SECONDS="${STALL_SECONDS:-240}" \
    PROFILE="${PROFILE:-}" PEER_SCHED="${PEER_SCHED:-}" \
    "$root/bench/guest-io/inside.sh"
echo "results: $out (raw.csv, threads.csv, env.txt, logs/)"
python3 "$root/bench/guest-io/report.py" "$out/raw.csv"
