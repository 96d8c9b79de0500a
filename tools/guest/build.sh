#!/usr/bin/env bash
# Build the L2 guest assets: Debian's stock kernel and a busybox initramfs.
#   tools/guest/build.sh [OUTDIR]     (default build/guest)
# Produces OUTDIR/vmlinuz, OUTDIR/initramfs.cpio.gz, OUTDIR/kernel-version and
# OUTDIR/rootfs-kernel/lib/modules/<ver>/. Rebuilds only when inputs change.
set -euo pipefail
RV_TOOL=guest/build
. "$(dirname "$0")/../lib/common.sh"

out=$(realpath -m "${1:-$RV_ROOT/build/guest}")
"$RV_ROOT/tools/deps.sh"
rv_ensure_kernel "$out"

here=$RV_ROOT/tools/guest
bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
key="$(cat "$out/kernel-version") bb=$bbver $(rv_hash "$here/build.sh" "$here/mkinitramfs.sh" "$here/init" "$RV_ROOT/tools/lib/common.sh")"
if ! rv_stamp_ok "$out/.initramfs.stamp" "$key" || [[ ! -s "$out/initramfs.cpio.gz" ]]; then
    rv_log "building initramfs.cpio.gz"
    "$here/mkinitramfs.sh" --out "$out/initramfs.cpio.gz" \
        --moddir "$out/rootfs-kernel/lib/modules/$(cat "$out/kernel-version")"
    echo "$key" >"$out/.initramfs.stamp"
fi
rv_log "ready: $out/vmlinuz $out/initramfs.cpio.gz (kernel $(cat "$out/kernel-version"))"
