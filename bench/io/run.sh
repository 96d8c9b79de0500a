#!/usr/bin/env bash
# Guest I/O benchmark over virtio: ringvisor vs QEMU on the same kernel,
# initramfs, disk image, cache mode and TAP, in the same test-host run.
#   bench/io/run.sh [BUILD_DIR]
#   env: RUNS=3 CACHE=none|writeback SEQ=256M RAND_S=10 QDS="1 8" NET=200M
#        IMG_MIB=1024 MEM_MIB=512 (guest) L1_MEM_MIB=3072 (test host)
#        DISK=loop|results VMMS="rv qemu"
#        PHASES="seqwrite seqread randread tcp-g2h tcp-h2g" (a subset; idle and spin
#        are the exit baselines and always run)
# Workloads (bench/io/guest.sh, with bench/io/rvio.c in the guest):
#   sequential write then read of SEQ from /dev/vda, 1 MiB blocks, O_DIRECT (+fsync)
#   4 KiB random reads, O_DIRECT, RAND_S seconds at each queue depth in QDS (threads)
#   TCP guest->host and host->guest, NET bytes each, over the TAP (rvio both ends)
# The disk: a raw image of IMG_MIB, filled with data first (no holes), in the
# test host's tmpfs behind a loop device (DISK=loop; O_DIRECT works on it), or
# a file in the results directory (DISK=results; 9p in the test host, which
# caps every disk workload at a few MB/s). The results directory,
# BUILD_DIR/bench-io-results, keeps the raw numbers (bench-io/raw.txt,
# exits.txt, timeline.txt, consoles). Prints a markdown table of medians,
# ratios, guest virtio interrupts and KVM exits per MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
RUNS=${RUNS:-3} CACHE=${CACHE:-none} SEQ=${SEQ:-256M} RAND_S=${RAND_S:-10} QDS=${QDS:-1 8}
NET=${NET:-200M} PHASES="idle spin ${PHASES:-seqwrite seqread randread tcp-g2h tcp-h2g}" IMG_MIB=${IMG_MIB:-1024} MEM_MIB=${MEM_MIB:-512} DISK=${DISK:-loop} L1_MEM_MIB=${L1_MEM_MIB:-3072}
[[ $CACHE == none || $CACHE == writeback ]] || { echo "bench-io: CACHE must be none or writeback" >&2; exit 2; }
[[ $DISK == loop || $DISK == results ]] || { echo "bench-io: DISK must be loop or results" >&2; exit 2; }
[[ -x $build/ringvisor ]] || { echo "bench-io: $build/ringvisor not built" >&2; exit 1; }

# ---- guest assets: the stock guest kernel, a bench initramfs with rvio -------
"$root/tools/guest/build.sh" "$build/guest" >/dev/null
"$build/ringvisor" prepare-kernel --kernel "$build/guest/vmlinuz" --kernel-cache "$build/kernel-cache" >&2
bio=$build/bench-io
mkdir -p "$bio"
gcc -O2 -static -pthread -Wall -Wextra -o "$bio/rvio.tmp" "$root/bench/io/rvio.c"
mv "$bio/rvio.tmp" "$bio/rvio"
kver=$(cat "$build/guest/kernel-version")
key="$kver $(cat "$bio/rvio" "$root/bench/io/guest.sh" "$root/tools/guest/mkinitramfs.sh" "$root/tools/guest/init" /bin/busybox | sha256sum | cut -c1-16)"
if [[ ! -s $bio/initramfs.cpio.gz || "$(cat "$bio/.stamp" 2>/dev/null)" != "$key" ]]; then
    "$root/tools/guest/mkinitramfs.sh" --out "$bio/initramfs.cpio.gz" \
        --moddir "$build/guest/rootfs-kernel/lib/modules/$kver" --modules "virtio_pci virtio_blk virtio_net" \
        --extra "$bio/rvio:/bin/rvio" --extra "$root/bench/io/guest.sh:/bin/rvio-guest" 2>&1 | sed 's/^/  /' >&2
    echo "$key" >"$bio/.stamp"
fi

results=$build/bench-io-results
rm -rf "$results"; mkdir -p "$results/bench-io"
# DISK=loop (default): inside.sh fills an image in the test host's tmpfs and
# attaches it as a loop device. DISK=results: the image is a file in the
# results directory (9p in the test host; filled here at native speed).
img=
if [[ $DISK == results ]]; then
    img=$results/disk.img
    "$bio/rvio" fill -f "$img" -n "${IMG_MIB}M" >/dev/null
fi

t0=$SECONDS
set +e
"$root/tools/testhost/run.sh" --timeout 1500 --mem "$L1_MEM_MIB" --results "$results" -- \
    env RINGVISOR="$build/ringvisor" GUEST="$build/guest" KERNEL_CACHE="$build/kernel-cache" \
    INITRD="$bio/initramfs.cpio.gz" RVIO="$bio/rvio" IMG="$img" IMG_MIB="$IMG_MIB" CACHE="$CACHE" RUNS="$RUNS" MEM_MIB="$MEM_MIB" \
    SEQ="$SEQ" RAND_S="$RAND_S" QDS="$QDS" NET="$NET" VMMS="${VMMS:-rv qemu}" PHASES="$PHASES" "$root/bench/io/inside.sh" >"$results/bench-io/inside.out"
rc=$?
set -e
[[ -z $img ]] || rm -f "$img"
echo "bench-io: test host finished in $((SECONDS - t0)) s (exit $rc); raw numbers in $results/bench-io" >&2
raw=$results/bench-io/raw.txt
[[ -s $raw ]] || { echo "bench-io: no results" >&2; exit 1; }

# ---- table ---------------------------------------------------------------------
# raw.txt: vmm run workload value unit mib seconds irqs exits io_exits mmio_exits halt_exits irq_exits irq_injections
# Per MiB: each run's counts divided by that run's MiB moved; exits minus the
# same boot's idle window (what the two sync points alone cost). Medians over runs.
exits_note=$(sed -n 's/^exits: //p' "$results/bench-io/env.txt")
mib() { sed 's/[kK]$/ KiB/; s/[mM]$/ MiB/; s/[gG]$/ GiB/' <<<"$1"; }
awk -v runs="$RUNS" -v cache="$CACHE" -v seq="$(mib "$SEQ")" -v rs="$RAND_S" -v net="$(mib "$NET")" -v mem="$MEM_MIB" '
    function median(s,   a, n, i, j, t) {
        n = split(s, a, " "); if (!n) return "n/a"
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function range(s,   a, n, i, lo, hi) {
        n = split(s, a, " "); if (n < 2) return ""
        lo = hi = a[1]; for (i = 2; i <= n; i++) { if (a[i] + 0 < lo + 0) lo = a[i]; if (a[i] + 0 > hi + 0) hi = a[i] }
        return sprintf(" (%s-%s)", fmtv(lo), fmtv(hi))
    }
    function fmtv(v) { return v == "n/a" ? v : sprintf(fmt, v) }
    function add(k, v) { vals[k] = vals[k] (vals[k] == "" ? "" : " ") v }
    { rows[NR] = $0 }
    $3 == "idle" { idle[$1, $2] = $9 }
    END {
        for (r = 1; r <= NR; r++) {
            split(rows[r], f, " "); v = f[1]; w = f[3]
            if (w == "idle") continue
            if (w == "spin") { if (f[9] != "na" && idle[v, f[2]] != "na" && f[7] > 0) add(v SUBSEP "spin", (f[9] - idle[v, f[2]]) / f[7]); continue }
            if (!(w in seen)) { seen[w] = 1; order[++nw] = w; unit[w] = f[5] }
            add(v SUBSEP w SUBSEP "val", f[4])
            if (f[6] > 0) {
                add(v SUBSEP w SUBSEP "irq", f[8] / f[6])
                if (f[9] != "na" && idle[v, f[2]] != "na") add(v SUBSEP w SUBSEP "exit", (f[9] - idle[v, f[2]]) / f[6])
            }
        }
        name["seqwrite"] = "seq write " seq ", 1 MiB, O_DIRECT + fsync"; name["seqread"] = "seq read " seq ", 1 MiB, O_DIRECT"
        name["tcp-g2h"] = "TCP guest->host, " net; name["tcp-h2g"] = "TCP host->guest, " net
        printf "| median (min-max) of %d runs, 1 vCPU, %s MiB, cache=%s | ringvisor | QEMU | ringvisor / QEMU | guest irqs/MiB rv | guest irqs/MiB QEMU | KVM exits/MiB rv | KVM exits/MiB QEMU |\n", runs, mem, cache
        print "|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nw; i++) {
            w = order[i]
            label = (w in name) ? name[w] : w
            if (w ~ /^randread-qd/) label = "rand read 4 KiB, O_DIRECT, QD " substr(w, 12) ", " rs " s"
            label = label " (" unit[w] ")"
            fmt = (unit[w] == "iops") ? "%.0f" : "%.1f"
            rv = median(vals["rv", w, "val"]); q = median(vals["qemu", w, "val"])
            ratio = (rv != "n/a" && q != "n/a" && q > 0) ? sprintf("%.2f", rv / q) : "n/a"
            ri = median(vals["rv", w, "irq"]); qi = median(vals["qemu", w, "irq"])
            re = median(vals["rv", w, "exit"]); qe = median(vals["qemu", w, "exit"])
            printf "| %s | %s%s | %s%s | %s | %s | %s | %s | %s |\n", label, fmtv(rv), range(vals["rv", w, "val"]),
                fmtv(q), range(vals["qemu", w, "val"]), ratio,
                ri == "n/a" ? ri : sprintf("%.1f", ri), qi == "n/a" ? qi : sprintf("%.1f", qi),
                re == "n/a" ? re : sprintf("%.1f", re), qe == "n/a" ? qe : sprintf("%.1f", qe)
        }
        rs_ = median(vals["rv", "spin"]); qs_ = median(vals["qemu", "spin"])
        if (rs_ != "n/a" || qs_ != "n/a")
            printf "\nBusy vCPU without I/O (spin, 2 s): %s exits/s under ringvisor, %s under QEMU (median): exits that scale with time, not bytes, are part of every per-MiB figure above.\n", rs_ == "n/a" ? rs_ : sprintf("%.0f", rs_), qs_ == "n/a" ? qs_ : sprintf("%.0f", qs_)
    }' "$raw"
# ringvisor --stats (whole boot, at exit) against debugfs at the last sync point
stats=$(for j in "$results"/bench-io/rv-*.stats.json; do
    [[ -s $j ]] || continue
    r=${j##*/rv-}; r=${r%.stats.json}
    last=$(awk -v r="$r" '$1 == "rv" && $2 == r { v = $5 } END { print v }' "$results/bench-io/exits.txt")
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
msi = d.get("msi_interrupts", 0)
msi = sum(msi.values()) if isinstance(msi, dict) else sum(msi) if isinstance(msi, list) else msi
print(d.get("totals", {}).get("exits", "na"), msi, sys.argv[2] or "na")' "$j" "$last"
done)
echo
if [[ -n $stats ]]; then
    awk '{ n++; s = s sprintf("%s%d exits (debugfs at the last sync point: %s), %d MSIs", n > 1 ? "; " : "", $1, $3, $2) }
         END { print "ringvisor --stats, whole boot at exit, per run: " s "." }' <<<"$stats"
fi
echo "Disk: $(sed -n 's/^disk: //p' "$results/bench-io/env.txt")."
echo "KVM exits: $exits_note. Exits per MiB exclude the boot's idle sync window (bench-io/raw.txt, workload idle)."
exit $rc
