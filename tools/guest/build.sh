#!/usr/bin/env bash
# Build the L2 guest assets: Debian's stock kernel and busybox initramfs images.
#   tools/guest/build.sh [OUTDIR]     (default build/guest)
# Produces in OUTDIR:
#   vmlinuz, vmlinux, kernel-version, rootfs-kernel/lib/modules/<ver>/
#   initramfs.cpio.gz         busybox + /init, no modules (boot cases)
#   initramfs-virtio.cpio.gz  the same plus the virtio drivers ($VIRTIO_MODULES:
#                             virtio-pci, -blk, -net, -console, -rng, and ext4),
#                             loaded by /init at boot, and e2fsprogs' mke2fs/
#                             mkfs.ext4 and e2fsck/fsck.ext4 with their shared
#                             libraries (busybox has no ext4 tools)
# Rebuilds only when inputs change (stamps keyed on the kernel and busybox
# versions, the scripts, and the contents of the copied programs).
set -euo pipefail
RV_TOOL=guest/build
. "$(dirname "$0")/../lib/common.sh"

out=$(realpath -m "${1:-$RV_ROOT/build/guest}")
"$RV_ROOT/tools/deps.sh"
rv_ensure_kernel "$out"

here=$RV_ROOT/tools/guest
kver=$(cat "$out/kernel-version")
moddir=$out/rootfs-kernel/lib/modules/$kver
bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
key="$kver bb=$bbver $(rv_hash "$here/build.sh" "$here/mkinitramfs.sh" "$here/init" "$RV_ROOT/tools/lib/common.sh")"
if ! rv_stamp_ok "$out/.initramfs.stamp" "$key" || [[ ! -s "$out/initramfs.cpio.gz" ]]; then
    rv_log "building initramfs.cpio.gz"
    "$here/mkinitramfs.sh" --out "$out/initramfs.cpio.gz" --moddir "$moddir"
    echo "$key" >"$out/.initramfs.stamp"
fi

# ---- initramfs-virtio.cpio.gz ---------------------------------------------
# Load order is resolved by mkinitramfs.sh from each module's depends=
# (virtio_pci pulls virtio, virtio_ring, virtio_pci_{modern,legacy}_dev;
# virtio_net pulls net_failover, failover; ext4 pulls jbd2, mbcache, crc16).
# crc32c_generic is ext4's and jbd2's soft dependency (crypto "crc32c").
VIRTIO_MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_rng
  crc32c_generic libcrc32c ext4"
VIRTIO_BINS=(/sbin/mke2fs /sbin/e2fsck)
VIRTIO_LINKS=(/sbin/mkfs.ext4 /sbin/fsck.ext4)   # symlinks next to the programs
vargs=(--out "$out/initramfs-virtio.cpio.gz" --moddir "$moddir" --modules "$VIRTIO_MODULES"
       --extra /etc/mke2fs.conf:/etc/mke2fs.conf)
binfiles=(/etc/mke2fs.conf)
for b in "${VIRTIO_BINS[@]}"; do
    [[ -x "$b" ]] || rv_die "$b missing: run tools/deps.sh (e2fsprogs)"
    vargs+=(--bin "$b")
    binfiles+=("$b" $(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'))
done
for l in "${VIRTIO_LINKS[@]}"; do
    [[ -L "$l" ]] || rv_die "$l is not a symlink (e2fsprogs layout changed?)"
    vargs+=(--extra "$l:$l")
done
vkey="$key $(echo "$VIRTIO_MODULES ${VIRTIO_BINS[*]} ${VIRTIO_LINKS[*]}" | rv_hash - "${binfiles[@]}")"
if ! rv_stamp_ok "$out/.initramfs-virtio.stamp" "$vkey" || [[ ! -s "$out/initramfs-virtio.cpio.gz" ]]; then
    rv_log "building initramfs-virtio.cpio.gz"
    "$here/mkinitramfs.sh" "${vargs[@]}"
    echo "$vkey" >"$out/.initramfs-virtio.stamp"
fi
rv_log "ready: $out/vmlinuz $out/initramfs.cpio.gz $out/initramfs-virtio.cpio.gz (kernel $kver)"
