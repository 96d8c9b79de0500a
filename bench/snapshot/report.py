#!/usr/bin/env python3
"""Tables for bench/snapshot: medians (min-max) per VMM from raw.txt."""
import statistics
import sys

raw, runs, mem = sys.argv[1], sys.argv[2], sys.argv[3]
snap, mig = {}, {}
for line in open(raw):
    f = line.split()
    if f[0] == "snapshot":
        snap.setdefault(f[1], []).append([float(x) for x in f[3:]])
    elif f[0] == "migrate":
        mig.setdefault((f[1], int(f[3])), []).append([float(x) for x in f[4:]])


def cell(values, fmt="{:.2f}"):
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def col(rows, i):
    return [r[i] for r in rows]


print(f"Snapshot and restore, {mem} MiB guest, 1 vCPU, {runs} runs each, median (min-max):\n")
print("| | ringvisor | QEMU 7.2 | ringvisor / QEMU |")
print("|---|---|---|---|")
for name, i, fmt, scale in [("create (s)", 0, "{:.2f}", 1), ("state file (KiB)", 1, "{:.0f}", 1 / 1024),
                            ("memory file (MiB)", 2, "{:.0f}", 1 / (1 << 20)),
                            ("restore: process start to the guest counting again (s)", 3, "{:.3f}", 1)]:
    r = [v * scale for v in col(snap.get("ringvisor", []), i)]
    q = [v * scale for v in col(snap.get("qemu", []), i)]
    ratio = f"{statistics.median(r) / statistics.median(q):.2f}" if r and q and statistics.median(q) else "-"
    print(f"| {name} | {cell(r, fmt)} | {cell(q, fmt) if i != 1 else '(in the stream)'} | {ratio if i != 1 else '-'} |")

print(f"\nLive migration, {mem} MiB guest, 1 vCPU, {runs} runs each, median (min-max); "
      "downtime = the gap between the last count the source printed and the first the "
      "destination printed (10 ms counter):\n")
print("| guest dirtying | VMM | completed | total (s) | downtime seen (ms) | downtime the VMM reports (ms) |")
print("|---|---|---|---|---|---|")
for d in sorted({k[1] for k in mig}):
    for vmm in ("ringvisor", "qemu"):
        rows = mig.get((vmm, d), [])
        done = [r for r in rows if r[3] == 1]
        print(f"| {d} MiB/s | {vmm} | {len(done)}/{len(rows)} | {cell(col(done, 0))} | "
              f"{cell(col(done, 1), '{:.0f}')} | {cell(col(done, 2), '{:.0f}')} |")
