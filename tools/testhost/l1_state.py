#!/usr/bin/env python3
"""Print what the test host's (L1's) vCPUs are doing, from the L0 QEMU monitor.

    tools/testhost/l1_state.py MONITOR_SOCKET [L1_KALLSYMS_GZ [QEMU_PID]]

run.sh calls this when L1 has stopped (its heartbeat file is no longer
written): the registers of every vCPU, three times a second apart (is it
spinning or halted, and where), and the instructions at each vCPU's RIP.
With L1_KALLSYMS_GZ (L1's text symbols from /proc/kallsyms, gzipped, which
init saves at boot), RIPs in L1's kernel are named (an L2 guest running the
same kernel without KASLR gets the same names: CR3 and GS tell them apart).
With QEMU_PID, the CPU
each of QEMU's threads used over those seconds (a TCG vCPU thread at 100 %
is executing something; at 0 % it waits for an event).
"""
import bisect
import gzip
import os
import re
import socket
import sys
import time

PROMPT = b"(qemu) "
ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Monitor:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(path)
        self._read_to_prompt()  # the banner

    def _read_to_prompt(self):
        buf = b""
        while not buf.endswith(PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the monitor closed the connection")
            buf += chunk
        return ESCAPES.sub(b"", buf[: -len(PROMPT)]).decode(errors="replace")

    def run(self, command):
        self.sock.sendall(command.encode() + b"\n")
        out = self._read_to_prompt()
        lines = out.splitlines()
        # The monitor echoes the command line first.
        while lines and (not lines[0].strip() or lines[0].strip().endswith(command)):
            lines.pop(0)
        return "\n".join(lines)


def load_symbols(kallsyms_gz):
    """Sorted (address, name) of L1's kernel text symbols."""
    syms = []
    try:
        with gzip.open(kallsyms_gz, "rt") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tT":
                    syms.append((int(parts[0], 16), parts[2]))
    except (OSError, EOFError, ValueError):
        return []
    return sorted(s for s in syms if s[0])


def name(symbols, addr):
    if not symbols or addr < symbols[0][0]:
        return ""
    i = bisect.bisect_right(symbols, (addr, "\uffff")) - 1
    base, sym = symbols[i]
    return f"{sym}+0x{addr - base:x}" if addr - base < 0x100000 else ""


def thread_ticks(pid):
    """{tid: (name, utime + stime in clock ticks)} of a process's threads."""
    ticks = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ticks
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[tid] = (comm, int(fields[11]) + int(fields[12]))
    return ticks


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    symbols = load_symbols(argv[2]) if len(argv) >= 3 else []
    mon = Monitor(argv[1])
    print("== info status\n" + mon.run("info status"))
    cpus = mon.run("info cpus")
    print("== info cpus\n" + cpus)
    indexes = [int(m) for m in re.findall(r"CPU #(\d+)", cpus)] or [0]
    pid = argv[3] if len(argv) >= 4 else None
    t0, before = time.monotonic(), thread_ticks(pid) if pid else {}
    for round_ in range(3):
        regs = mon.run("info registers -a")
        print(f"== info registers -a (sample {round_ + 1} of 3)\n{regs}")
        for m in re.finditer(r"RIP=([0-9a-f]{16})", regs):
            where = name(symbols, int(m.group(1), 16))
            print(f"   RIP {m.group(1)} {where or '(not in L1 kernel text: an L2 guest or user space)'}")
        time.sleep(1)
    if pid:
        after, hz = thread_ticks(pid), os.sysconf("SC_CLK_TCK")
        seconds = time.monotonic() - t0
        print(f"== QEMU's threads: CPU over the last {seconds:.1f} s")
        for tid, (comm, ticks) in sorted(after.items(), key=lambda kv: int(kv[0])):
            used = (ticks - before.get(tid, (comm, ticks))[1]) / hz
            print(f"   {tid:>8} {comm:<20} {100 * used / seconds:5.0f} %")
    for i in indexes:
        mon.run(f"cpu {i}")
        print(f"== vCPU {i}: x/16i $pc\n" + mon.run("x/16i $pc"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, EOFError) as e:
        print(f"l1_state: cannot read the monitor: {e}", file=sys.stderr)
        sys.exit(1)
