#!/usr/bin/env bash
# What each I/O model costs: the same guest workloads over an emulated IDE
# disk (PIO and DMA), virtio-blk, an emulated e1000 and virtio-net, under
# ringvisor and QEMU, in one test-host run on the same image and TAP.
#   bench/io-models/run.sh [BUILD_DIR]
#   env: RUNS=3 CACHE=none|writeback SEQ=64M SEQ_PIO=2M RAND_S=5 NET=30M
#        MODELS="ide-pio ide-dma virtio-blk e1000 virtio-net" VMMS="rv qemu"
#        L1_MEM_MIB=3072 CHART=docs/io-models.png
# Prints a markdown table (medians) and writes a PNG chart (gnuplot): per row
# throughput, KVM exits per MiB, guest interrupts per MiB, the VMM's own CPU
# seconds per GiB (user + system minus guest time) and the device model's
# lines of code. Raw numbers in BUILD_DIR/io-models-results/io-models.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
RUNS=${RUNS:-3} CACHE=${CACHE:-none} L1_MEM_MIB=${L1_MEM_MIB:-3072}
CHART=${CHART:-$root/docs/io-models.png}
[[ -x $build/ringvisor ]] || { echo "io-models: $build/ringvisor not built" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "io-models: gnuplot missing (tools/deps.sh installs it)" >&2; exit 1; }

# ---- guest assets: stock kernel; one initramfs with every driver and rvio ----
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$build/ringvisor" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >&2
mkdir -p "$build/bench-io" "$build/io-models"
gcc -O2 -static -pthread -Wall -Wextra -o "$build/bench-io/rvio.tmp" "$root/bench/io/rvio.c"
mv "$build/bench-io/rvio.tmp" "$build/bench-io/rvio"
kver=$(cat "$build/guest/kernel-version")
modules="virtio_pci virtio_blk virtio_net ata_piix sd_mod e1000"
key="$kver $modules $(cat "$build/bench-io/rvio" "$root/bench/io/guest.sh" "$root/tools/guest/mkinitramfs.sh" "$root/tools/guest/init" /bin/busybox | sha256sum | cut -c1-16)"
initrd=$build/io-models/initramfs.cpio.gz
if [[ ! -s $initrd || "$(cat "$build/io-models/.stamp" 2>/dev/null)" != "$key" ]]; then
    "$root/tools/guest/mkinitramfs.sh" --out "$initrd" \
        --moddir "$build/guest/rootfs-kernel/lib/modules/$kver" --modules "$modules" \
        --extra "$build/bench-io/rvio:/bin/rvio" --extra "$root/bench/io/guest.sh:/bin/rvio-guest" 2>&1 | sed 's/^/  /' >&2
    echo "$key" >"$build/io-models/.stamp"
fi

results=$build/io-models-results
rm -rf "$results"; mkdir -p "$results/io-models"
t0=$SECONDS
set +e
"$root/tools/testhost/run.sh" --timeout 5400 --mem "$L1_MEM_MIB" --results "$results" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" \
    INITRD="$initrd" RVIO="$build/bench-io/rvio" CACHE="$CACHE" RUNS="$RUNS" \
    ${SEQ:+SEQ=$SEQ} ${SEQ_PIO:+SEQ_PIO=$SEQ_PIO} ${RAND_S:+RAND_S=$RAND_S} ${NET:+NET=$NET} \
    ${MODELS:+MODELS="$MODELS"} VMMS="${VMMS:-rv qemu}" \
    "$root/bench/io-models/inside.sh" >"$results/io-models/inside.out"
rc=$?
set -e
echo "io-models: test host finished in $((SECONDS - t0)) s (exit $rc); raw numbers in $results/io-models" >&2
[[ -s $results/io-models/raw.txt ]] || { echo "io-models: no results" >&2; exit 1; }

# Lines of code of each device model (non-blank, non-comment lines of its
# .h/.cpp); virtio rows add the shared virtio core (virtqueue + PCI transport).
loc() { cat "$@" | grep -cvE '^\s*(//.*)?$'; }
core=$(loc "$root"/src/devices/virtio/*.{h,cpp})
cat >"$results/io-models/loc.txt" <<LOC
ide-pio $(loc "$root"/src/devices/legacy/ide/*) ide
ide-dma $(loc "$root"/src/devices/legacy/ide/*) ide
virtio-blk $(( $(loc "$root"/src/devices/virtio/blk/*) + core )) blk+core
e1000 $(loc "$root"/src/devices/legacy/e1000/*) e1000
virtio-net $(( $(loc "$root"/src/devices/virtio/net/*) + core )) net+core
LOC
python3 "$root/bench/io-models/report.py" "$results/io-models" "$CHART" "$RUNS" "$CACHE"
exit $rc
