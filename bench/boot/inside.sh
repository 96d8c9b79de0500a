#!/usr/bin/env bash
# Runs inside the test host (bench/boot/run.sh starts it): boots the same
# kernel + initramfs under ringvisor and under QEMU (-M microvm) RUNS times
# each, alternating, and measures
#   boot: VMM start -> the guest init's RINGVISOR-GUEST-INIT line on the console
#   overhead: the VMM's peak RSS (VmHWM) minus the guest RAM it has touched
#             (Rss of the guest-RAM mapping), sampled while the guest idles.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
RINGVISOR=${RINGVISOR:-$root/build/ringvisor}
GUEST=${GUEST:-$root/build/guest}
KERNEL_CACHE=${KERNEL_CACHE:-$root/build/kernel-cache}
RUNS=${RUNS:-5}
MEM_MIB=${MEM_MIB:-256}
CPUS=${CPUS:-1}
out=${RV_RESULTS:-/tmp}/bench-boot
mkdir -p "$out"
cmdline="console=ttyS0 panic=-1 quiet rv.cmd=$(printf 'sleep 8' | base64 -w0)"

# ringvisor as users run it: the bzImage's payload decompressed once on the
# host (bench/boot/run.sh warms the cache before the test host starts).
rv_cmd() {
    exec "$RINGVISOR" run --kernel-cache "$KERNEL_CACHE" --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs.cpio.gz" \
        --memory "${MEM_MIB}M" --cpus "$CPUS" --cmdline "$cmdline"
}
# ringvisor booting the bzImage as is, decompressing inside the guest as QEMU does.
rvbz_cmd() {
    exec "$RINGVISOR" run --no-kernel-cache --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs.cpio.gz" \
        --memory "${MEM_MIB}M" --cpus "$CPUS" --cmdline "$cmdline"
}
qemu_cmd() {
    exec qemu-system-x86_64 -accel kvm -cpu host -M microvm,rtc=on -smp "$CPUS" -m "$MEM_MIB" \
        -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz" -append "$cmdline"
}

# Guest-RAM Rss (KiB): the anonymous mapping at least as large as guest RAM.
guest_rss_kib() {
    awk -v want=$((MEM_MIB * 1024)) '
        /^[0-9a-f]+-[0-9a-f]+ / { size = -1 }
        /^Size:/ { size = $2 }
        /^Rss:/ { if (size >= want && (best == "" || size < bestsize)) { best = $2; bestsize = size } }
        END { print best + 0 }' "/proc/$1/smaps"
}

# one VMM-NAME RUN: prints "boot_seconds overhead_kib"
one() {
    local name=$1 run=$2 log=$out/$1-$2.console t0 t_init pid hwm guest
    rm -f "$log"
    t0=$EPOCHREALTIME
    "${name}_cmd" </dev/null >"$log" 2>&1 &
    pid=$!
    until grep -aq RINGVISOR-GUEST-INIT "$log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { echo "bench: $name exited before init" >&2; return 1; }
        sleep 0.01
    done
    t_init=$EPOCHREALTIME
    sleep 1  # let the guest settle in its idle `sleep`
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    guest=$(guest_rss_kib "$pid" 2>/dev/null || true)
    # A VMM that already exited (a very slow host) gives no memory sample.
    if [[ -z "$hwm" || -z "$guest" || "$guest" == 0 ]]; then hwm=-1 guest=0; fi
    wait "$pid" || true
    awk -v a="$t_init" -v b="$t0" -v h="$hwm" -v g="$guest" \
        'BEGIN { printf "%.3f %d %d %d\n", a - b, h - g, h, g }'
}

for ((i = 1; i <= RUNS; i++)); do
    for vmm in rv rvbz qemu; do
        line=$(one "$vmm" "$i")
        echo "$vmm $i $line" | tee -a "$out/raw.txt"
    done
done
