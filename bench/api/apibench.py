#!/usr/bin/env python3
"""Control-plane latency: ringvisor's REST API beside QEMU's QMP, same client
code (one kept-alive Unix-socket connection, blocking request/response).

  apibench.py roundtrip --ringvisor BIN --qemu BIN --guest ELF -n N --out CSV
      GET / and PUT /drives/{id} before start, PATCH /vm Paused + Resumed on
      a running guest; QMP query-status and stop + cont on a running guest.
      One row per request: vmm,op,microseconds.
  apibench.py startup --ringvisor BIN --guest ELF --runs N --out CSV
      Process start -> the guest's first byte on COM1, flag-driven and
      API-driven (socket up, PUT /boot-source, PUT /machine-config,
      InstanceStart), alternating; API-driven also records process start ->
      the InstanceStart response. One row per run: mode,metric,milliseconds.
"""
import argparse
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time


def now_us():
    return time.perf_counter_ns() / 1000.0


class Http:
    """HTTP/1.1 over a Unix socket, kept alive; enough for Content-Length replies."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def request(self, method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + data)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        while len(self.buf) < length:
            self._fill()
        payload, self.buf = self.buf[:length], self.buf[length:]
        return status, payload

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("API connection closed")
        self.buf += chunk


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        json.loads(self.file.readline())  # greeting
        self.command("qmp_capabilities")

    def command(self, name):
        self.sock.sendall(json.dumps({"execute": name}).encode() + b"\n")
        while True:
            msg = json.loads(self.file.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise RuntimeError(f"QMP {name}: {msg['error']}")
            # an event (STOP, RESUME): skip


def wait_for(path, seconds=20):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear in {seconds} s")
        time.sleep(0.0005)


def expect(status, want, what, payload=b""):
    if status != want:
        raise RuntimeError(f"{what}: HTTP {status}, expected {want}: {payload[:200]!r}")


def read_until_byte(proc, byte, seconds=60):
    """Reads the child's stdout until BYTE; returns the time it arrived (µs)."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("the guest printed nothing in time")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"the VMM exited first (status {proc.wait()})")
        if byte in chunk:
            return now_us()


def roundtrip(a):
    rows = []
    work = tempfile.mkdtemp(prefix="apibench.")
    disk = os.path.join(work, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)

    # ringvisor: before start, then on the running tiny guest.
    sock = os.path.join(work, "rv.sock")
    rv = subprocess.Popen([a.ringvisor, "run", "--api-sock", sock], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_for(sock)
        api = Http(sock)
        for _ in range(a.n):
            t = now_us(); s, p = api.request("GET", "/"); rows.append(("ringvisor", "GET /", now_us() - t))
            expect(s, 200, "GET /", p)
        drive = {"drive_id": "data", "path_on_host": disk, "is_root_device": False, "is_read_only": True}
        for _ in range(a.n):
            t = now_us(); s, p = api.request("PUT", "/drives/data", drive)
            rows.append(("ringvisor", "PUT /drives", now_us() - t))
            expect(s, 204, "PUT /drives", p)
        expect(*api.request("PUT", "/boot-source", {"kernel_image_path": a.guest})[:1], 204, "PUT /boot-source")
        expect(*api.request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[:1], 204,
               "PUT /machine-config")
        s, p = api.request("PUT", "/actions", {"action_type": "InstanceStart"})
        expect(s, 204, "InstanceStart", p)
        read_until_byte(rv, b"!")
        for _ in range(a.n):
            t = now_us(); s, p = api.request("PATCH", "/vm", {"state": "Paused"})
            t1 = now_us(); expect(s, 204, "PATCH /vm Paused", p)
            s, p = api.request("PATCH", "/vm", {"state": "Resumed"})
            t2 = now_us(); expect(s, 204, "PATCH /vm Resumed", p)
            rows += [("ringvisor", "pause", t1 - t), ("ringvisor", "resume", t2 - t1)]
    finally:
        rv.kill()
        rv.wait()

    # QEMU: KVM, no devices, SeaBIOS finds nothing to boot and idles.
    qsock = os.path.join(work, "qmp.sock")
    qemu = subprocess.Popen([a.qemu, "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "128", "-smp", "1",
                             "-nodefaults", "-display", "none", "-serial", "none",
                             "-qmp", f"unix:{qsock},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(qsock)
        qmp = Qmp(qsock)
        for _ in range(a.n):
            t = now_us(); st = qmp.command("query-status"); rows.append(("qemu", "query-status", now_us() - t))
            if st["status"] != "running":
                raise RuntimeError(f"QEMU is {st['status']}")
        for _ in range(a.n):
            t = now_us(); qmp.command("stop")
            t1 = now_us(); qmp.command("cont")
            t2 = now_us()
            rows += [("qemu", "stop", t1 - t), ("qemu", "cont", t2 - t1)]
    finally:
        qemu.kill()
        qemu.wait()
    with open(a.out, "w") as f:
        f.write("vmm,op,us\n")
        f.writelines(f"{v},{op},{us:.1f}\n" for v, op, us in rows)


def startup(a):
    rows = []
    work = tempfile.mkdtemp(prefix="apibench.")
    for run in range(a.runs):
        for mode in ("flags", "api") if run % 2 == 0 else ("api", "flags"):
            sock = os.path.join(work, f"s{run}.sock")
            t0 = now_us()
            if mode == "flags":
                argv = [a.ringvisor, "run", "--kernel", a.guest, "--memory", "128M", "--cpus", "1"]
            else:
                argv = [a.ringvisor, "run", "--api-sock", sock]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            try:
                if mode == "api":
                    wait_for(sock)
                    rows.append((mode, "to_api_socket", (now_us() - t0) / 1000))
                    api = Http(sock)
                    expect(*api.request("PUT", "/boot-source", {"kernel_image_path": a.guest})[:1], 204,
                           "PUT /boot-source")
                    expect(*api.request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[:1],
                           204, "PUT /machine-config")
                    rows.append((mode, "to_configured", (now_us() - t0) / 1000))
                    s, p = api.request("PUT", "/actions", {"action_type": "InstanceStart"})
                    expect(s, 204, "InstanceStart", p)
                    rows.append((mode, "to_instance_start", (now_us() - t0) / 1000))
                rows.append((mode, "to_first_guest_byte", (read_until_byte(proc, b"!") - t0) / 1000))
                status = proc.wait(timeout=30)
                if status != 0:
                    raise RuntimeError(f"{mode}: ringvisor exited {status} after the guest's reset")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    with open(a.out, "w") as f:
        f.write("mode,metric,ms\n")
        f.writelines(f"{m},{k},{v:.2f}\n" for m, k, v in rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["roundtrip", "startup"])
    p.add_argument("--ringvisor", required=True)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--guest", required=True)
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    (roundtrip if a.what == "roundtrip" else startup)(a)


if __name__ == "__main__":
    sys.exit(main())
