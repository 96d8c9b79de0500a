#!/usr/bin/env python3
"""Table and chart for bench/io-models: medians per (VMM, model, workload).

usage: report.py RESULTS_DIR CHART_PNG RUNS CACHE
RESULTS_DIR holds raw.txt (bench/io/lib.sh format, label VMM:MODEL) and loc.txt.
"""
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

results, chart, runs, cache = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
MODELS = ["ide-pio", "ide-dma", "virtio-blk", "e1000", "virtio-net"]
WORKLOADS = {"seqwrite": "seq write 1 MiB", "seqread": "seq read 1 MiB",
             "randread-qd1": "rand read 4 KiB QD1", "tcp-g2h": "TCP guest->host",
             "tcp-h2g": "TCP host->guest"}
VMMS = {"rv": "ringvisor", "qemu": "QEMU"}


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


rows = [line.split() for line in (results / "raw.txt").read_text().splitlines() if line.strip()]
idle = {}  # (label, run) -> exits in the idle window (what the sync points cost)
samples = defaultdict(lambda: defaultdict(list))
for f in rows:
    if len(f) < 15:
        continue
    label, run, w = f[0], f[1], f[2]
    if w == "idle":
        idle[(label, run)] = num(f[8])
for f in rows:
    if len(f) < 15 or f[2] == "idle":
        continue
    label, run, w = f[0], f[1], f[2]
    vmm, model = label.split(":", 1)
    value, mib, irqs, exits, cpu_ms = num(f[3]), num(f[5]), num(f[7]), num(f[8]), num(f[14])
    s = samples[(model, w, vmm)]
    s["value"].append(value or 0.0)
    s["unit"] = f[4]
    if mib:
        if irqs is not None:
            s["irq"].append(irqs / mib)
        base = idle.get((label, run))
        if exits is not None and base is not None:
            s["exit"].append((exits - base) / mib)
        if cpu_ms is not None:
            s["cpu"].append(cpu_ms / 1000 / (mib / 1024))

loc = {}
for line in (results / "loc.txt").read_text().splitlines():
    model, n, what = line.split()
    loc[model] = f"{n} ({what})"


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:,.{digits}f}"


print(f"| model, workload (median of {runs} runs, 1 vCPU, cache={cache}) | ringvisor | QEMU | rv / QEMU "
      "| exits/MiB rv | exits/MiB QEMU | guest irqs/MiB rv | guest irqs/MiB QEMU "
      "| VMM CPU s/GiB rv | VMM CPU s/GiB QEMU | device LOC (ours) |")
print("|---" * 11 + "|")
plot = []
for model in MODELS:
    for w, wname in WORKLOADS.items():
        rv, q = samples.get((model, w, "rv")), samples.get((model, w, "qemu"))
        if not rv and not q:
            continue
        unit = (rv or q)["unit"]
        v = med((rv or {}).get("value", []))
        vq = med((q or {}).get("value", []))
        small = min(x for x in (v, vq, 100.0) if x is not None) < 1
        digits = 0 if unit == "iops" else (3 if small else 1)
        ratio = f"{v / vq:.2f}" if v and vq else "n/a"
        cells = [f"{model}: {wname} ({unit})", fmt(v, digits), fmt(vq, digits), ratio]
        for key, d in (("exit", 0), ("irq", 1), ("cpu", 2)):
            cells += [fmt(med((rv or {}).get(key, [])), d), fmt(med((q or {}).get(key, [])), d)]
        cells.append(loc.get(model, "n/a"))
        print("| " + " | ".join(cells) + " |")
        plot.append((f"{model}\\n{w}", v or 0, vq or 0, med((rv or {}).get("exit", [])) or 0,
                     med((q or {}).get("exit", [])) or 0, unit))

# ---- chart: throughput (log) and exits per MiB (log), ringvisor beside QEMU ----
disk = [p for p in plot if p[5] != "iops"]
dat = results / "chart.dat"
dat.write_text("".join(f'"{p[0]}" {max(p[1], 0.01)} {max(p[2], 0.01)} {max(p[3], 0.1)} {max(p[4], 0.1)}\n'
                       for p in disk))
script = f"""
set terminal pngcairo size 1400,900 font ",10"
set output "{chart}"
set multiplot layout 2,1 title "ringvisor I/O models vs QEMU (test host, median of {runs} runs, cache={cache})"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set key top left
set xtics font ",8"
set ylabel "MB/s (log)"
set title "Throughput"
plot "{dat}" using 2:xtic(1) title "ringvisor", "" using 3 title "QEMU"
set ylabel "KVM exits per MiB (log)"
set title "VM exits per MiB moved"
plot "{dat}" using 4:xtic(1) title "ringvisor", "" using 5 title "QEMU"
unset multiplot
"""
(results / "chart.gp").write_text(script)
subprocess.run(["gnuplot", str(results / "chart.gp")], check=True)
print(f"\nChart: {chart} (throughput and exits per MiB for the MB/s rows).")
