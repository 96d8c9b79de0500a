#!/usr/bin/env bash
# The QEMU that emulates the test host (L1): Debian's bookworm-backports QEMU
# (10.x), unpacked into OUTDIR without installing it; the system's QEMU (7.2)
# stays the L2 peer that benchmarks compare against.
#   tools/testhost/l1_qemu.sh [OUTDIR]   (default build/cache/l1-qemu)
# Prints the emulator's path; its firmware is in OUTDIR/root/usr/share/{qemu,seabios}
# (run.sh passes them with -L).
# Why: under QEMU 7.2's TCG, L2 guests of both VMMs died under I/O load
# (double faults at entry_SYSCALL_64 under QEMU as the L2 VMM too, triple
# faults) and L1 itself wedged in soft lockups; see tools/testhost/README.md.
# The packages come from Debian's archive through apt, with a private list
# and cache directory (the system's apt sources are not changed).
set -euo pipefail
RV_TOOL=testhost/l1-qemu
. "$(dirname "$0")/../lib/common.sh"

out=$(realpath -m "${1:-$RV_CACHE/l1-qemu}")
SUITE=bookworm-backports
PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
key="$SUITE ${PKGS[*]} $(rv_hash "$0")"
if rv_stamp_ok "$out/.stamp" "$key" && [[ -x $out/root/usr/bin/qemu-system-x86_64 ]]; then
    echo "$out/root/usr/bin/qemu-system-x86_64"
    exit 0
fi

mkdir -p "$out/apt/lists/partial" "$out/apt/cache/archives/partial" "$out/debs"
cat >"$out/apt/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${RV_DEBIAN_MIRROR:-http://deb.debian.org/debian} $SUITE main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$out/apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$out/apt/lists" -o "Dir::Cache=$out/apt/cache"
          -o "APT::Sandbox::User=root" -q)
rv_log "fetching ${PKGS[*]} from $SUITE"
apt-get "${apt_opts[@]}" update >"$out/apt.log" 2>&1 ||
    { cat "$out/apt.log" >&2; rv_die "apt-get update ($SUITE) failed"; }
rm -f "$out/debs/"*.deb
(cd "$out/debs" && apt-get "${apt_opts[@]}" download "${PKGS[@]/%//$SUITE}" >>"$out/apt.log" 2>&1) ||
    { cat "$out/apt.log" >&2; rv_die "apt-get download from $SUITE failed"; }
rm -rf "$out/root"
for deb in "$out/debs/"*.deb; do dpkg-deb -x "$deb" "$out/root"; done
"$out/root/usr/bin/qemu-system-x86_64" --version >/dev/null ||
    rv_die "the $SUITE QEMU does not run on this system (missing libraries?)"
echo "$key" >"$out/.stamp"
rv_log "ready: $("$out/root/usr/bin/qemu-system-x86_64" --version | head -1)"
echo "$out/root/usr/bin/qemu-system-x86_64"
