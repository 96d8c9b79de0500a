#!/usr/bin/env python3
"""Markdown table of bench/guest-io/run.sh's raw.csv: per row (vCPUs, cache,
workload) and VMM the median with min-max over the runs, ringvisor's ratio to
QEMU and to kvmtool (and to ringvisor-base, another ringvisor binary, when
measured; medians; higher is better for every row), and per VMM
the median VMM CPU time per GiB moved and KVM exits per MiB.

    bench/guest-io/report.py RAW.csv
"""
import csv
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
