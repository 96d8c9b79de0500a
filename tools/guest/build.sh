#!/usr/bin/env bash
# Build the L2 guest assets: Debian's stock kernel and busybox initramfs images.
#   tools/guest/build.sh [OUTDIR]     (default build/guest)
# Produces in OUTDIR:
#   vmlinuz, vmlinux, kernel-version, rootfs-kernel/lib/modules/<ver>/
#   initramfs.cpio.gz         busybox + /init, no modules (boot cases)
#   initramfs-emulated.cpio.gz  ata_piix, sd_mod, e1000 and ext4, no virtio
#   initramfs-all.cpio.gz     both sets of drivers (a guest with virtio and
#                             emulated devices at once)
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

# ---- initramfs-virtio.cpio.gz, initramfs-emulated.cpio.gz -------------------
# The same busybox image plus drivers and the ext4 tools. Load order is
# resolved by mkinitramfs.sh from each module's depends= (virtio_pci pulls
# virtio, virtio_ring, virtio_pci_{modern,legacy}_dev; virtio_net pulls
# net_failover, failover; sd_mod pulls scsi_mod...; ext4 pulls jbd2, mbcache,
# crc16). crc32c_generic is ext4's and jbd2's soft dependency ("crc32c").
# The emulated variant has no virtio driver at all: its guest reaches disk
# and network only through the emulated IDE controller and e1000 NIC.
EXT4_MODULES="crc32c_generic libcrc32c ext4"
VIRTIO_MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_rng $EXT4_MODULES"
EMULATED_MODULES="ata_piix sd_mod e1000 $EXT4_MODULES"
DISK_BINS=(/sbin/mke2fs /sbin/e2fsck)
DISK_LINKS=(/sbin/mkfs.ext4 /sbin/fsck.ext4)   # symlinks next to the programs
bargs=(--extra /etc/mke2fs.conf:/etc/mke2fs.conf)
binfiles=(/etc/mke2fs.conf)
for b in "${DISK_BINS[@]}"; do
    [[ -x "$b" ]] || rv_die "$b missing: run tools/deps.sh (e2fsprogs)"
    bargs+=(--bin "$b")
    binfiles+=("$b" $(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'))
done
for l in "${DISK_LINKS[@]}"; do
    [[ -L "$l" ]] || rv_die "$l is not a symlink (e2fsprogs layout changed?)"
    bargs+=(--extra "$l:$l")
done
# variant NAME MODULES: builds initramfs-NAME.cpio.gz unless it is up to date.
variant() {
    local name=$1 modules=$2 vkey
    vkey="$key $(echo "$modules ${DISK_BINS[*]} ${DISK_LINKS[*]}" | rv_hash - "${binfiles[@]}")"
    if ! rv_stamp_ok "$out/.initramfs-$name.stamp" "$vkey" || [[ ! -s "$out/initramfs-$name.cpio.gz" ]]; then
        rv_log "building initramfs-$name.cpio.gz"
        "$here/mkinitramfs.sh" --out "$out/initramfs-$name.cpio.gz" --moddir "$moddir" \
            --modules "$modules" "${bargs[@]}"
        echo "$vkey" >"$out/.initramfs-$name.stamp"
    fi
}
variant virtio "$VIRTIO_MODULES"
variant emulated "$EMULATED_MODULES"
variant all "virtio_pci virtio_blk virtio_net virtio_console virtio_rng ata_piix sd_mod e1000 $EXT4_MODULES"
rv_log "ready: $out/vmlinuz and initramfs{,-virtio,-emulated,-all}.cpio.gz (kernel $kver)"
