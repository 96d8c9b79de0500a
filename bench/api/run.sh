#!/usr/bin/env bash
# Control-plane benchmark, in one test-host run:
#  - round trip of ringvisor's API (GET /, PUT /drives before start, PATCH /vm
#    Paused and Resumed on a running guest) beside QEMU's QMP (query-status,
#    stop, cont on a running guest), N requests each over one kept-alive
#    connection, the same Python client code for both: p50/p99 in µs;
#  - process start -> the guest's first instruction's output, flag-driven and
#    API-driven, RUNS runs alternating: medians in ms (the API must add < 5 ms).
# The guest is bench/api/tiny.S (one byte to COM1), so boot time is not noise.
#   bench/api/run.sh [BUILD_DIR]      (env: N=10000 RUNS=20)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
N=${N:-10000} RUNS=${RUNS:-20}
out=$build/bench-api
rm -rf "$out"; mkdir -p "$out"
for v in idle reboot; do
    flag=; [[ $v == reboot ]] && flag=-DREBOOT
    gcc -c $flag -o "$out/tiny-$v.o" "$root/bench/api/tiny.S"
    ld -static -nostdlib -Ttext=0x1000000 -e _start -o "$out/tiny-$v.elf" "$out/tiny-$v.o"
done
"$root/tools/testhost/run.sh" --timeout 3000 --results "$out" -- \
    env RINGVISOR="$build/ringvisor" OUT="$out" N="$N" RUNS="$RUNS" "$root/bench/api/inside.sh" >&2
python3 - "$out" "$N" "$RUNS" <<'PY'
import csv, statistics, sys
out, n, runs = sys.argv[1], sys.argv[2], sys.argv[3]
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
rows = {}
for r in csv.DictReader(open(f"{out}/roundtrip.csv")):
    rows.setdefault((r["vmm"], r["op"]), []).append(float(r["us"]))
print(f"| round trip, {n} requests each (µs) | p50 | p99 | max |")
print("|---|---|---|---|")
for (vmm, op), v in rows.items():
    print(f"| {vmm} {op} | {pct(v, 50):.0f} | {pct(v, 99):.0f} | {max(v):.0f} |")
st = {}
for r in csv.DictReader(open(f"{out}/startup.csv")):
    st.setdefault((r["mode"], r["metric"]), []).append(float(r["ms"]))
print()
print(f"| process start -> (ms), {runs} runs alternating | median | min | max |")
print("|---|---|---|---|")
for (mode, metric), v in sorted(st.items()):
    print(f"| {mode}: {metric.replace('_', ' ')} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} |")
f, a = statistics.median(st[("flags", "to_first_guest_byte")]), statistics.median(st[("api", "to_first_guest_byte")])
print(f"\nAPI-driven minus flag-driven, to the guest's first byte (medians): {a - f:.1f} ms")
PY
