#!/bin/sh
# Runs inside the test host (bench/api/run.sh starts it): the round-trip
# measurement, then the start-up one. Environment: RINGVISOR, OUT, N, RUNS.
set -e
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/apibench.py" roundtrip --ringvisor "$RINGVISOR" --guest "$OUT/tiny-idle.elf" -n "$N" --out "$OUT/roundtrip.csv"
python3 "$here/apibench.py" startup --ringvisor "$RINGVISOR" --guest "$OUT/tiny-reboot.elf" --runs "$RUNS" --out "$OUT/startup.csv"
