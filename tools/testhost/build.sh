#!/usr/bin/env bash
# Build the test host (L1) assets: the Debian kernel (shared with the guest,
# from tools/guest/build.sh) and an initramfs with kvm-amd and the 9p stack.
#   tools/testhost/build.sh [OUTDIR]     (default build/testhost)
# Produces OUTDIR/vmlinux (uncompressed, booted via PVH: skips ~6 s of
# decompression under TCG) and OUTDIR/initramfs.cpio.gz; rebuilds only on change.
set -euo pipefail
RV_TOOL=testhost/build
. "$(dirname "$0")/../lib/common.sh"

out=$(realpath -m "${1:-$RV_ROOT/build/testhost}")
guest=$RV_ROOT/build/guest
MODULES="irqbypass ccp kvm kvm-amd
  9pnet netfs fscache 9p virtio_ring virtio virtio_pci_modern_dev
  virtio_pci_legacy_dev virtio_pci 9pnet_virtio
  tun bridge veth"

"$RV_ROOT/tools/guest/build.sh" "$guest"
kver=$(cat "$guest/kernel-version")
here=$RV_ROOT/tools/testhost
bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
key="$kver bb=$bbver $(echo "$MODULES" | rv_hash - "$here/build.sh" "$here/init" \
      "$RV_ROOT/tools/guest/mkinitramfs.sh" "$RV_ROOT/tools/lib/common.sh")"
mkdir -p "$out"
if ! rv_stamp_ok "$out/.stamp" "$key" || [[ ! -s "$out/initramfs.cpio.gz" ]]; then
    rv_log "building the L1 initramfs"
    ln -f "$guest/vmlinux" "$out/vmlinux" 2>/dev/null || cp "$guest/vmlinux" "$out/vmlinux"
    "$RV_ROOT/tools/guest/mkinitramfs.sh" --out "$out/initramfs.cpio.gz" \
        --init "$here/init" --modules "$MODULES" \
        --moddir "$guest/rootfs-kernel/lib/modules/$kver"
    echo "$key" >"$out/.stamp"
fi
rv_log "ready: $out/vmlinux $out/initramfs.cpio.gz"
