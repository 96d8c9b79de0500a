#!/usr/bin/env bash
# Build a Debian 12 (bookworm) root file system image for real-distribution
# guests: systemd, Debian's own initramfs (initramfs-tools), fio and iperf3.
#   tools/rootfs/build.sh [OUTDIR]      (default build/rootfs)
# Produces in OUTDIR:
#   debian12.img   raw ext4 image (label rvroot), the whole root file system
#   initrd.img     Debian's initramfs for build/guest's kernel (boot it with
#                  build/guest/vmlinuz and root=LABEL=rvroot)
#   kernel-version the kernel the initramfs and /lib/modules are for
# The image has no fstab entry for /: the root stays as the kernel mounted it,
# so `ro` on the command line boots it read-only (one image shared by many
# runs, opened read-only by the VMM) and `rw` read-write.
# In the guest, rv-cmd.service runs the shell command given base64-encoded as
# rv.cmd=... on the kernel command line once the system is up (multi-user),
# printing RINGVISOR-GUEST-INIT before and RINGVISOR-CMD-EXIT=<status> after,
# then powers off through systemd. Without rv.cmd: a root shell on the console.
# Cached: rebuilt only when this script, the kernel or the mirror's package
# set changes; debootstrap's downloads are kept in build/cache/debootstrap.
set -euo pipefail
RV_TOOL=rootfs/build
. "$(dirname "$0")/../lib/common.sh"

out=$(realpath -m "${1:-$RV_ROOT/build/rootfs}")
guest=${RV_GUEST:-$(dirname "$out")/guest}   # the kernel build/guest boots (tools/guest/build.sh)
MIRROR=${RV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PACKAGES=systemd-sysv,udev,initramfs-tools,kmod,iproute2,iputils-ping,procps,fio,iperf3,e2fsprogs,util-linux,coreutils,libaio1
IMG_MIB=${RV_ROOTFS_MIB:-1536}

((EUID == 0)) || rv_die "needs root (debootstrap, chroot)"
"$RV_ROOT/tools/deps.sh"
"$RV_ROOT/tools/guest/build.sh" "$guest" >/dev/null
kver=$(cat "$guest/kernel-version")
key="$SUITE $PACKAGES $IMG_MIB $kver $(rv_hash "$0" "$RV_ROOT/tools/lib/common.sh")"
if rv_stamp_ok "$out/.stamp" "$key" && [[ -s "$out/debian12.img" && -s "$out/initrd.img" ]]; then
    exit 0
fi

mkdir -p "$out" "$RV_CACHE/debootstrap"
work=$(mktemp -d "$out/.work.XXXXXX")
root=$work/root
mounted=()
cleanup() {
    local m
    for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

rv_log "debootstrap $SUITE (minbase + $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$RV_CACHE/debootstrap" \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; rv_die "debootstrap failed (log above)"; }

rv_log "kernel $kver: modules and Debian's initramfs"
mkdir -p "$root/lib/modules" "$root/boot"
cp -a "$guest/rootfs-kernel/lib/modules/$kver" "$root/lib/modules/"
cp "$guest/rootfs-kernel/boot/config-$kver" "$guest/rootfs-kernel/boot/System.map-$kver" "$root/boot/"
for fs in proc sys dev; do
    mount --bind "/$fs" "$root/$fs"; mounted=("$root/$fs" "${mounted[@]}")
done
chroot "$root" depmod "$kver"
chroot "$root" mkinitramfs -o "/boot/initrd.img-$kver" "$kver" >"$work/mkinitramfs.log" 2>&1 ||
    { tail -n 30 "$work/mkinitramfs.log" >&2; rv_die "mkinitramfs failed"; }
for m in "${mounted[@]}"; do umount -l "$m"; done
mounted=()

rv_log "configuring the guest"
echo rvguest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 rvguest\n' >"$root/etc/hosts"
: >"$root/etc/fstab"   # no entry for /: it stays mounted as the command line says
chroot "$root" passwd -d root >/dev/null
install -m 755 /dev/stdin "$root/usr/local/sbin/rv-cmd" <<'SH'
#!/bin/sh
# Runs rv.cmd=<base64> from the kernel command line, then powers off.
exec </dev/null >/dev/console 2>&1
echo RINGVISOR-GUEST-INIT
cmd_b64=
for arg in $(cat /proc/cmdline); do
    case $arg in rv.cmd=*) cmd_b64=${arg#rv.cmd=} ;; esac
done
[ -n "$cmd_b64" ] || exit 0
if cmd=$(echo "$cmd_b64" | base64 -d 2>/dev/null) && [ -n "$cmd" ]; then
    sh -c "$cmd"
    status=$?
else
    echo "rv-cmd: rv.cmd is not valid base64"
    status=127
fi
echo "RINGVISOR-CMD-EXIT=$status"
systemctl --no-block poweroff
SH
cat >"$root/etc/systemd/system/rv-cmd.service" <<'UNIT'
[Unit]
Description=ringvisor test command (rv.cmd= on the kernel command line)
After=systemd-user-sessions.service systemd-udev-settle.service network.target
Wants=systemd-udev-settle.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rv-cmd
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable rv-cmd.service >/dev/null 2>&1
# /tmp on tmpfs, so a read-only root still has a writable /tmp.
cp "$root/usr/share/systemd/tmp.mount" "$root/etc/systemd/system/tmp.mount"
chroot "$root" systemctl enable tmp.mount >/dev/null 2>&1
# A console login without a password when no command is given.
mkdir -p "$root/etc/systemd/system/serial-getty@.service.d"
cat >"$root/etc/systemd/system/serial-getty@.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
UNIT
# Nothing that waits on a network or a clock that guests here do not have.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-timesyncd.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
done
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"

rv_log "making the ext4 image (${IMG_MIB} MiB)"
rm -f "$work/debian12.img"
truncate -s "${IMG_MIB}M" "$work/debian12.img"
mkfs.ext4 -q -F -L rvroot -d "$root" "$work/debian12.img" ||
    rv_die "mkfs.ext4 -d failed"
mv "$work/debian12.img" "$work/initrd.img" "$out/"
echo "$kver" >"$out/kernel-version"
echo "$key" >"$out/.stamp"
rv_log "ready: $out/debian12.img, $out/initrd.img (kernel $kver)"
