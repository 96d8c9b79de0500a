#!/usr/bin/env python3
"""Summary of bench/consolidation: one row per ramp, then per VMM (median of its ramps).

usage: report.py RESULTS_DIR      (steps.csv, procs.csv, ramps.csv, env.txt from inside.sh)

Per VM, in MiB:
  slope     host memory one more idle VM costs: minus the least-squares slope
            of L1's MemAvailable over the number of guests (steps n >= 1)
  guest     guest RAM the guest touched: Rss of the VMM's guest-RAM mapping
  RSS-guest the VMM process's Rss minus that (its own memory, shared pages
            such as libraries and the binary counted whole)
  PSS-guest the same with Pss (shared pages split among the processes that map them)
  USS-guest private pages only (what one more VMM process adds in user space)
  rest      slope - guest - USS-guest: what the slope holds outside the VMM
            processes (L1's kernel for the VM: KVM's vCPU and VM structures,
            nested page tables (SecPageTables), page tables, slab, stacks)
The meminfo columns are slopes per VM too (least squares over the same steps).
"""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

res = Path(sys.argv[1])
MiB = 1024.0


def rows(name):
    p = res / name
    if not p.exists():
        return []
    with p.open() as f:
        return list(csv.DictReader(f))


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def slope(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, d=1):
    return "n/a" if v is None else f"{v:,.{d}f}"


steps, procs, ramps = rows("steps.csv"), rows("procs.csv"), rows("ramps.csv")
env = (res / "env.txt").read_text() if (res / "env.txt").exists() else ""
by_ramp = defaultdict(list)
for s in steps:
    by_ramp[(s["session"], s["rep"], s["vmm"])].append(s)
procs_by = defaultdict(list)
for p in procs:
    procs_by[(p["session"], p["rep"], p["vmm"])].append(p)

KEYS = ["memavailable", "memfree", "anonpages", "secpagetables", "pagetables", "slab", "kernelstack"]
results = []
for r in ramps:
    key = (r["session"], r["rep"], r["vmm"])
    st = [s for s in by_ramp[key] if s["event"] in ("ok", "floor") and int(s["n"]) >= 1]
    n = [float(s["n"]) for s in st]
    sl = {k: slope(n, [num(s[k + "_kib"]) for s in st]) for k in KEYS}
    per_vm = -sl["memavailable"] / MiB if sl["memavailable"] is not None else None
    base = [s for s in by_ramp[key] if s["event"] == "baseline"]
    first = [s for s in by_ramp[key] if s["n"] == "1"]
    first_cost = None
    if base and first:
        first_cost = (num(base[0]["memavailable_kib"]) - num(first[0]["memavailable_kib"])) / MiB
    ps = [p for p in procs_by[key] if num(p["rss_kib"]) is not None]
    guest = mean([num(p["guest_rss_kib"]) / MiB for p in ps])
    rss_o = mean([(num(p["rss_kib"]) - num(p["guest_rss_kib"])) / MiB for p in ps])
    pss_o = mean([(num(p["pss_kib"]) - num(p["guest_pss_kib"])) / MiB for p in ps])
    uss_o = mean([(num(p["uss_kib"]) - num(p["guest_rss_kib"])) / MiB for p in ps])
    gmt = mean([num(p["guest_memtotal_kib"]) for p in ps])
    gmf = mean([num(p["guest_memfree_kib"]) for p in ps])
    guest_used = (gmt - gmf) / MiB if gmt is not None and gmf is not None else None
    boots = [num(s["boot_s"]) for s in by_ramp[key] if int(s["n"]) >= 1]
    rest = per_vm - guest - uss_o if None not in (per_vm, guest, uss_o) else None
    back = (num(r["after_avail_kib"]) - num(r["baseline_avail_kib"])) / MiB
    results.append(dict(session=r["session"], rep=r["rep"], vmm=r["vmm"], order=r["order"], alive=int(r["guests_alive"]),
                        started=int(r["started"]), reason=r["stop_reason"], per_vm=per_vm, first=first_cost,
                        guest=guest, guest_used=guest_used, rss_o=rss_o, pss_o=pss_o, uss_o=uss_o, rest=rest,
                        sl={k: (-v / MiB if k in ("memavailable", "memfree") else v / MiB) if v is not None else None
                            for k, v in sl.items()},
                        boot=med(boots), base=num(r["baseline_avail_kib"]) / MiB,
                        limit=num(r["limit_avail_kib"]) / MiB, back=back, clean=int(r["stopped_clean"]),
                        oom=int(r["oom_events"]), secs=int(r["seconds"])))

for line in env.splitlines():
    if line.startswith(("session:", "date:", "L1:", "ringvisor:", "qemu:", "guest:", "VMMS=")):
        print(f"    {line}")
deaths = rows("l1-deaths.csv")
for d in deaths:
    print(f"    L1 DIED in session {d['session']} during rep {d['rep']} {d['vmm']} (test host exit {d['testhost_exit']}, "
          f"{d['console']}); that ramp ran again in the next session")
print()
print("Per ramp (MiB per VM unless said):")
print()
print("| session | rep | VMM | order | guests alive at the limit (started) | stopped because | MemAvailable at start / limit / after stop (MiB) "
      "| MiB per VM (MemAvailable slope) | first VM | guest RAM touched (Rss) | guest's own MemTotal-MemFree "
      "| VMM RSS - guest | VMM PSS - guest | VMM USS - guest | rest (kernel) | SecPageTables | PageTables | Slab | KernelStack "
      "| boot to idle, median (s) | clean stops | OOM events | seconds |")
print("|---" * 23 + "|")
for x in results:
    sl = x["sl"]
    print(f"| {x['session']} | {x['rep']} | {x['vmm']} | {x['order']} | {x['alive']} ({x['started']}) | {x['reason']} "
          f"| {fmt(x['base'], 0)} / {fmt(x['limit'], 0)} / {fmt(x['base'] + x['back'], 0)} "
          f"| {fmt(x['per_vm'])} | {fmt(x['first'])} | {fmt(x['guest'])} | {fmt(x['guest_used'])} "
          f"| {fmt(x['rss_o'])} | {fmt(x['pss_o'])} | {fmt(x['uss_o'])} | {fmt(x['rest'])} "
          f"| {fmt(sl['secpagetables'], 2)} | {fmt(sl['pagetables'], 2)} | {fmt(sl['slab'], 2)} | {fmt(sl['kernelstack'], 2)} "
          f"| {fmt(x['boot'])} | {x['clean']}/{x['started']} | {x['oom']} | {x['secs']} |")
print()

vmms = []
for x in results:
    if x["vmm"] not in vmms:
        vmms.append(x["vmm"])
summ = {}
for v in vmms:
    xs = [x for x in results if x["vmm"] == v]
    summ[v] = {k: med([x[k] for x in xs]) for k in ("alive", "per_vm", "guest", "rss_o", "pss_o", "uss_o", "rest")}
    summ[v]["n"] = len(xs)
    summ[v]["alives"] = ", ".join(str(x["alive"]) for x in xs)
print("Summary (median over ramps; MiB):")
print()
print("| VMM | ramps | guests running at the limit | MiB per VM (MemAvailable slope) | guest RAM touched | "
      "VMM overhead per VM: RSS - guest | PSS - guest | USS - guest | rest: L1 kernel per VM |")
print("|---" * 9 + "|")
for v in vmms:
    s = summ[v]
    print(f"| {v} | {s['n']} | {s['alives']} | {fmt(s['per_vm'])} | {fmt(s['guest'])} | {fmt(s['rss_o'])} "
          f"| {fmt(s['pss_o'])} | {fmt(s['uss_o'])} | {fmt(s['rest'])} |")
if "ringvisor" in summ:
    rv = summ["ringvisor"]
    for v in vmms:
        if v == "ringvisor":
            continue
        q = summ[v]
        def ratio(k):
            return fmt(rv[k] / q[k], 2) if rv[k] is not None and q[k] else "n/a"
        print(f"| ringvisor / {v} | | {ratio('alive')} | {ratio('per_vm')} | {ratio('guest')} | {ratio('rss_o')} "
              f"| {ratio('pss_o')} | {ratio('uss_o')} | {ratio('rest')} |")
