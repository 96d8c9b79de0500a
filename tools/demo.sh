#!/usr/bin/env bash
# make demo: boot the Debian guest kernel with a busybox shell under
# ringvisor — directly when this machine's KVM runs guest kernel code
# natively, otherwise inside the test host (tools/testhost).
#   tools/demo.sh RINGVISOR GUEST_DIR MEMORY CPUS
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rv=$(realpath "$1") guest=$(realpath "$2") mem=$3 cpus=$4
cache=$root/build/kernel-cache
"$rv" prepare-kernel --kernel "$guest/vmlinuz" --kernel-cache "$cache" >/dev/null
run=("$rv" run --kernel "$guest/vmlinuz" --initrd "$guest/initramfs-virtio.cpio.gz"
     --kernel-cache "$cache" --memory "$mem" --cpus "$cpus" --rng
     --cmdline "console=ttyS0 quiet rv.shell")
[[ -s "$guest/initramfs-virtio.cpio.gz" ]] || run[4]=$guest/initramfs.cpio.gz

echo "== ringvisor check"
"$rv" check | sed 's/^/   /'
if "$rv" check | grep -q "runs natively"; then
    echo "== booting the guest directly: type 'poweroff' to end it, Ctrl-A x to quit at once"
    exec "${run[@]}"
fi
[[ -t 0 ]] || { echo "demo: needs a terminal (run it from an interactive shell)" >&2; exit 1; }
echo "== booting the guest inside the test host (an L1 Linux under QEMU with nested AMD-V)."
echo "   The guest shell appears after ~15 s. 'poweroff' ends the guest and the test host;"
echo "   Ctrl-A x quits QEMU (the test host) at once."
exec "$root/tools/testhost/run.sh" --interactive --timeout 3600 -- "${run[@]}"
