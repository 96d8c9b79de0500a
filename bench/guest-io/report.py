#!/usr/bin/env python3
"""Markdown table of bench/guest-io/run.sh's raw.csv: per row (vCPUs, cache,
workload) and VMM the median with min-max over the runs, ringvisor's ratio to
QEMU and to kvmtool (and to ringvisor-base, another ringvisor binary, when
measured; medians; higher is better for every row), and per VMM
the median VMM CPU time per GiB moved and KVM exits per MiB. Then, with
threads.csv beside RAW.csv, where that CPU went: per row and VMM, the median
CPU ms per GiB of each thread name, halt exits and injected interrupts per MiB.

    bench/guest-io/report.py RAW.csv
"""
import csv
import os
import statistics
import sys
from collections import defaultdict

ORDER = ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd1", "randwrite-4k-qd32",
         "read-1m-qd8", "write-1m-qd8", "g2h-1", "g2h-4", "h2g-1", "h2g-4"]


def num(text):
    try:
        return float(text)
    except ValueError:
        return None


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def main(path):
    rows = defaultdict(lambda: defaultdict(list))  # (cpus, cache, row) -> vmm -> [record]
    units = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (int(r["cpus"]), r["cache"], r["row"])
            rows[key][r["vmm"]].append(r)
            units[r["row"]] = r["unit"]
    vmms = [v for v in ("ringvisor", "ringvisor-base", "qemu", "kvmtool")
            if any(v in per for per in rows.values())]
    head = ["vCPUs", "cache", "workload", "unit"] + [f"{v} median (min-max)" for v in vmms]
    head += [f"rv/{v}" for v in vmms if v != "ringvisor"]
    head += [f"{v} CPU ms/GiB" for v in vmms] + [f"{v} exits/MiB" for v in vmms]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    order = {name: i for i, name in enumerate(ORDER)}
    for key in sorted(rows, key=lambda k: (k[0], k[1], order.get(k[2], 99))):
        cpus, cache, row = key
        per = rows[key]
        cells = [str(cpus), cache, row, units[row]]
        med = {}
        for v in vmms:
            vals = [x for x in (num(r["value"]) for r in per.get(v, [])) if x is not None]
            if not vals:
                cells.append("n/a")
                continue
            med[v] = statistics.median(vals)
            cells.append(f"{fmt(med[v])} ({fmt(min(vals))}-{fmt(max(vals))}), n={len(vals)}")
        for v in vmms:
            if v == "ringvisor":
                continue
            ok = "ringvisor" in med and med.get(v)
            cells.append(f"{med['ringvisor'] / med[v]:.2f}" if ok else "n/a")
        for field, scale in (("vmm_cpu_ms", 1024.0), ("exits", 1.0)):
            for v in vmms:
                per_unit = []
                for r in per.get(v, []):
                    mib, x = num(r["mib"]), num(r[field])
                    if mib and x is not None:
                        per_unit.append(x / mib * scale)
                cells.append(fmt(statistics.median(per_unit)) if per_unit else "n/a")
        print("| " + " | ".join(cells) + " |")
    threads = os.path.join(os.path.dirname(path), "threads.csv")
    if os.path.exists(threads):
        thread_table(path, threads, order)


def thread_table(raw_path, threads_path, order):
    """Per (cpus, cache, row, vmm): median ms/GiB of each thread name."""
    mib, counters = {}, defaultdict(lambda: defaultdict(list))
    with open(raw_path, newline="") as f:
        for r in csv.DictReader(f):
            run = (r["vmm"], r["run"], r["cpus"], r["cache"], r["row"])
            mib[run] = num(r["mib"])
            for c in ("halt_exits", "irq_injections"):
                x = num(r.get(c) or "")
                if mib[run] and x is not None:
                    counters[run[:1] + run[2:]][c].append(x / mib[run])
    per = defaultdict(lambda: defaultdict(list))  # (vmm, cpus, cache, row) -> thread -> [ms/GiB]
    with open(threads_path, newline="") as f:
        for r in csv.DictReader(f):
            run = (r["vmm"], r["run"], r["cpus"], r["cache"], r["row"])
            if mib.get(run):
                per[run[:1] + run[2:]][r["thread"]].append(num(r["cpu_ms"]) / mib[run] * 1024.0)
    if not per:
        return
    print()
    print("| vCPUs | cache | workload | VMM | CPU ms/GiB by thread (median) | halt exits/MiB | interrupts/MiB |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(per, key=lambda k: (int(k[1]), k[2], order.get(k[3], 99), k[0])):
        vmm, cpus, cache, row = key
        by = sorted(((statistics.median(v), t) for t, v in per[key].items()), reverse=True)
        cell = ", ".join(f"{t} {fmt(m)}" for m, t in by if m >= 1)
        c = counters.get(key, {})
        extra = [fmt(statistics.median(c[n])) if c.get(n) else "n/a" for n in ("halt_exits", "irq_injections")]
        print(f"| {cpus} | {cache} | {row} | {vmm} | {cell} | " + " | ".join(extra) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
