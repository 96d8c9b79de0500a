#!/usr/bin/env python3
"""The API's own start-up cost on a host without usable /dev/kvm (this
project's build machine): both front ends run up to the point where the VM
would be created — opening /dev/kvm — which fails the same way in both.
Flag-driven: process start -> its error line on stderr. API-driven: process
start -> socket, PUT /boot-source, PUT /machine-config, InstanceStart's error
response. The difference is what the API adds before the VM is built.
  native_overhead.py --ringvisor BIN --guest ELF [--runs 50]"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apibench import Http, now_us, wait_for  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--ringvisor", required=True)
p.add_argument("--guest", required=True)
p.add_argument("--runs", type=int, default=50)
a = p.parse_args()
if os.path.exists("/dev/kvm"):
    sys.exit("native_overhead.py: /dev/kvm exists here; use apibench.py startup instead")
work = tempfile.mkdtemp(prefix="apinative.")
res = {"flags": [], "api": []}
for run in range(a.runs):
    for mode in ("flags", "api") if run % 2 == 0 else ("api", "flags"):
        sock = os.path.join(work, f"{run}.sock")
        t0 = now_us()
        if mode == "flags":
            proc = subprocess.Popen([a.ringvisor, "run", "--kernel", a.guest, "--memory", "128M", "--cpus", "1"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            line = proc.stderr.readline()
            res[mode].append((now_us() - t0) / 1000)
            assert b"kvm" in line.lower(), line
            proc.wait()
        else:
            proc = subprocess.Popen([a.ringvisor, "run", "--api-sock", sock], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(sock)
            api = Http(sock)
            assert api.request("PUT", "/boot-source", {"kernel_image_path": a.guest})[0] == 204
            assert api.request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
            status, body = api.request("PUT", "/actions", {"action_type": "InstanceStart"})
            res[mode].append((now_us() - t0) / 1000)
            assert status == 400 and b"kvm" in body.lower(), body
            proc.kill()
            proc.wait()
f, ap = statistics.median(res["flags"]), statistics.median(res["api"])
print(f"| process start -> VM creation (ms), {a.runs} runs alternating | median | min | max |")
print("|---|---|---|---|")
for m in ("flags", "api"):
    print(f"| {m} | {statistics.median(res[m]):.2f} | {min(res[m]):.2f} | {max(res[m]):.2f} |")
print(f"\nAPI-driven minus flag-driven (medians): {ap - f:.2f} ms")
