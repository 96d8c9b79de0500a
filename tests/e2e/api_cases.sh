#!/usr/bin/env bash
# The control plane end to end, run inside the test host: a Firecracker-style
# session driven only through the API socket with curl (as Firecracker's
# getting-started guide does): configure logger, metrics, kernel, the Debian 12
# image of tools/rootfs as the root drive, a data drive, a NIC and the
# machine, InstanceStart, then pause and resume, throttle the data drive and
# the NIC (and lift the limits), flush metrics and end the VM with
# SendCtrlAltDel (systemd reboots it). The guest runs its steps in order
# (rv-cmd.service) and waits between them for a file L1 serves over HTTP, so
# L1 decides when each step may start.
#   tools/testhost/run.sh -- tests/e2e/api_cases.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/guest_vm.sh"
cd "$E2E_ROOT"

SOCK=$WORK/api.sock
# The data drive's limit: 5 MiB/s, a 2 MiB bucket refilled every 400 ms (two
# of dd's 1 MiB reads: tokens that arrive while the guest turns one read
# around are not lost). The guest must turn a 1 MiB read around in under
# 200 ms on average to keep up: at 10 MiB/s (100 ms) a loaded CI host did
# not (8.73 MiB/s), and the test measured the machine, not the limiter.
LIMIT_MIB=5
READ_MIB=40 SEND_MIB=8
GO_PORT=8000

api() {  # METHOD PATH [BODY] -> the HTTP status on stdout, the body in $WORK/api.out
    local args=(-sS --max-time 30 --unix-socket "$SOCK" -X "$1" -o "$WORK/api.out" -w '%{http_code}')
    [[ $# -lt 3 ]] || args+=(-H 'Content-Type: application/json' -d "$3")
    curl "${args[@]}" "http://localhost$2"
}
expect_api() {  # STATUS METHOD PATH [BODY]
    local want=$1 got
    shift
    got=$(api "$@") || true
    [[ $got == "$want" ]] || e2e_fail "$1 $2: HTTP $got, expected $want: $(cat "$WORK/api.out" 2>/dev/null)"
}
# The guest waits for step N: L1 serves $WORK/www/go-N once it may start.
guest_wait() { echo "until wget -q -O /dev/null http://$HOST_IP:$GO_PORT/go-$1; do sleep 0.2; done"; }
allow() { : >"$WORK/www/go-$1"; }
console_has() { grep -aq "$1" "$WORK/console.log"; }
wait_console() {  # PATTERN SECONDS
    local deadline=$((SECONDS + $2))
    until console_has "$1"; do
        ((SECONDS < deadline)) || e2e_fail "no '$1' on the guest console within $2 s: $(tail -n 3 "$WORK/console.log" | tr -d '\r')"
        kill -0 "$vmm" 2>/dev/null || e2e_fail "ringvisor exited while waiting for '$1'"
        sleep 0.2
    done
}
vmm_cpu_ms() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / t) }' "/proc/$1/stat"; }
ticks() { grep -a -o 'TICK=[0-9]*' "$WORK/console.log" | tail -n 1 | cut -d= -f2; }

case_api_session() {
    net_setup
    mkdir -p "$WORK/www"
    (cd "$WORK/www" && exec python3 -m http.server --bind "$HOST_IP" "$GO_PORT" >/dev/null 2>&1) &
    pids+=($!)
    local disk=$WORK/api-disk.img metrics=$WORK/metrics.json root_img=$WORK/debian12.img
    cp --sparse=always "$ROOTFS/debian12.img" "$root_img"
    head -c $((READ_MIB * 2 << 20)) /dev/urandom >"$disk"
    # L1 takes what the guest sends: unlimited (port 5001), then limited (5003).
    local port
    for port in 5001 5003; do
        # "BYTES SECONDS": what arrived, first byte to end (the guest's own
        # clock would stop while its socket buffer still holds megabytes).
        python3 -c '
import socket, sys, time
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
c, _ = s.accept()
n, t0 = 0, None
while chunk := c.recv(1 << 16):
    t0 = t0 or time.monotonic()
    n += len(chunk)
open(sys.argv[3], "w").write(f"{n} {time.monotonic() - t0:.3f}\n")' "$HOST_IP" "$port" "$WORK/received-$port" &
        pids+=($!)
    done

    # The guest's steps, a bash script (Debian has bash's /dev/tcp, not nc or
    # wget). Too long for the kernel command line (2 KiB), it rides on the
    # data drive past the bytes the steps read; rv.cmd= only loads it.
    local script
    script=$(cat <<GUEST
$GUEST_NET_UP
root=\$(findmnt -n -o SOURCE /); echo ROOTDEV=\$root
data=; for d in /dev/vd?; do [ "\$d" = "\$root" ] || data=\$d; done; echo DATADEV=\$data
(i=0; while true; do echo TICK=\$i UP=\$(up); i=\$((i+1)); sleep 0.5; done) &
go() { until (exec 3<>/dev/tcp/$HOST_IP/$GO_PORT && printf 'GET /go-%s HTTP/1.0\r\n\r\n' "\$1" >&3 && head -n 1 <&3 | grep -q ' 200 '); do sleep 0.2; done; }
since() { echo "\$(up) \$1" | awk '{ print \$1 - \$2 }'; }
go 1; t0=\$(up); dd if=\$data of=/dev/null bs=1M count=$READ_MIB iflag=direct 2>/dev/null; echo READ1=\$(since \$t0)
go 2; t0=\$(up); dd if=\$data of=/dev/null bs=1M count=$READ_MIB skip=$READ_MIB iflag=direct 2>/dev/null; echo READ2=\$(since \$t0)
go 3; t0=\$(up); head -c $((SEND_MIB << 20)) /dev/zero >/dev/tcp/$HOST_IP/5001; echo SEND0=\$(since \$t0)
go 4; t0=\$(up); head -c $((SEND_MIB << 20)) /dev/zero >/dev/tcp/$HOST_IP/5003; echo SEND1=\$(since \$t0)
echo STEPS-DONE
sleep 600
GUEST
)
    printf '%s\n' "$script" | dd of="$disk" bs=1M seek=$((2 * READ_MIB)) conv=notrunc status=none
    truncate -s $(((2 * READ_MIB + 1) << 20)) "$disk"
    local cmd="dd if=/dev/vdb bs=1M skip=$((2 * READ_MIB)) count=1 2>/dev/null | tr -d '\\000' >/tmp/steps.sh; exec bash /tmp/steps.sh"
    # --stats: where the vCPUs were if the case fails (the trap's SIGTERM ends ringvisor).
    "$RINGVISOR" run --api-sock "$SOCK" --kernel-cache "$KERNEL_CACHE" \
        --stats "$E2E_LOGDIR/api-session.stats.json" </dev/null >"$WORK/console.log" 2>&1 &
    vmm=$!
    pids+=($vmm)
    local i=0
    until [[ -S $SOCK ]]; do ((i++ < 100)) || e2e_fail "no API socket after 10 s"; sleep 0.1; done

    # Firecracker's getting-started sequence, plus ringvisor's own checks.
    expect_api 200 GET /
    grep -q '"state":"Not started"' "$WORK/api.out" || e2e_fail "GET / before start: $(cat "$WORK/api.out")"
    expect_api 204 PUT /logger '{"log_path": "'"$WORK"'/vmm.log", "level": "Info", "show_level": true}'
    expect_api 204 PUT /metrics '{"metrics_path": "'"$metrics"'"}'
    # The plain ELF vmlinux, as Firecracker users give it (ringvisor takes a
    # bzImage too), Debian's initramfs and the Debian 12 image as the root
    # drive; boot_args name no root=: the root device does (root=/dev/vda ro).
    expect_api 204 PUT /boot-source '{"kernel_image_path": "'"$GUEST/vmlinux"'", "initrd_path": "'"$ROOTFS/initrd.img"'", "boot_args": "console=ttyS0 reboot=k panic=1 quiet net.ifnames=0 rv.cmd='"$(guest_cmd_b64 "$cmd")"'"}'
    expect_api 204 PUT /drives/rootfs '{"drive_id": "rootfs", "path_on_host": "'"$root_img"'", "is_root_device": true, "is_read_only": true}'
    expect_api 204 PUT /drives/data '{"drive_id": "data", "path_on_host": "'"$disk"'", "is_root_device": false, "is_read_only": true, "rate_limiter": {"bandwidth": {"size": 2097152, "refill_time": '"$((2000 / LIMIT_MIB))"'}}}'
    expect_api 204 PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "'"$TAP"'", "guest_mac": "'"$GUEST_MAC"'"}'
    expect_api 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 512}'
    expect_api 400 PATCH /vm '{"state": "Paused"}'   # not started yet
    expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
    expect_api 400 PUT /boot-source '{"kernel_image_path": "/nope"}'   # not after start
    grep -q "fault_message" "$WORK/api.out" || e2e_fail "no fault_message for a refused request"
    wait_console 'TICK=4 ' 300
    [[ $(guest_value "$WORK/console.log" ROOTDEV) == /dev/vda ]] ||
        e2e_fail "the root device is '$(guest_value "$WORK/console.log" ROOTDEV)', not /dev/vda"

    # Paused: the ticks stop, the VMM uses no CPU; resumed: they go on, and
    # guest time did not jump by the pause.
    expect_api 204 PATCH /vm '{"state": "Paused"}'
    expect_api 200 GET /
    grep -q '"state":"Paused"' "$WORK/api.out" || e2e_fail "GET / while paused: $(cat "$WORK/api.out")"
    sleep 1
    local t_before cpu_before up_before
    t_before=$(ticks) cpu_before=$(vmm_cpu_ms "$vmm")
    up_before=$(grep -a -o 'TICK=[0-9]* UP=[0-9.]*' "$WORK/console.log" | tail -n 1 | sed 's/.*UP=//')
    sleep 5
    local t_after cpu_after
    t_after=$(ticks) cpu_after=$(vmm_cpu_ms "$vmm")
    echo "paused 5 s: ticks $t_before -> $t_after, VMM CPU $((cpu_after - cpu_before)) ms"
    [[ $t_after == "$t_before" ]] || e2e_fail "the guest kept running while paused (ticks $t_before -> $t_after)"
    ((cpu_after - cpu_before <= 100)) || e2e_fail "a paused VM used $((cpu_after - cpu_before)) ms of CPU in 5 s"
    expect_api 204 PATCH /vm '{"state": "Resumed"}'
    wait_console "TICK=$((t_before + 3)) " 60
    local up_next
    up_next=$(grep -a -o "TICK=$((t_before + 1)) UP=[0-9.]*" "$WORK/console.log" | sed 's/.*UP=//')
    echo "guest uptime across the pause: $up_before -> $up_next"
    awk -v a="$up_before" -v b="$up_next" 'BEGIN { exit !(b - a < 2.5) }' ||
        e2e_fail "guest time jumped across the pause: uptime $up_before -> $up_next"

    # Hostile clients while the VM runs: garbage, a 10 MiB body, a request
    # left half-sent, 200 at once. The API and the guest go on.
    printf 'GARBAGE\x00\xff\r\n\r\n' | timeout 10 socat - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1 || true
    local big=$WORK/big.json
    head -c $((10 << 20)) /dev/zero | tr '\0' 'a' >"$big"
    local code; code=$(curl -sS --max-time 30 --unix-socket "$SOCK" -X PUT -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary @"$big" http://localhost/drives/big 2>/dev/null) || true
    [[ $code == 413 || $code == 400 ]] || e2e_fail "a 10 MiB body got HTTP $code"
    (printf 'PUT /drives/x HTTP/1.1\r\nHost: l\r\nContent-Length: 100\r\n\r\n{"dri'; sleep 20) |
        socat - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1 &
    local half=$!
    local t0=$EPOCHREALTIME
    expect_api 200 GET /
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 2) }' || e2e_fail "GET / waited behind a half-sent request"
    local many=() ok=0
    for i in $(seq 200); do
        curl -sS --max-time 60 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' http://localhost/ >"$WORK/many.$i" 2>&1 &
        many+=($!)
    done
    wait "${many[@]}" 2>/dev/null || true
    ok=$(cat "$WORK"/many.* | grep -c '^200$') || true
    kill "$half" 2>/dev/null || true   # gone already if the server's request deadline closed it
    echo "hostile clients: garbage, 10 MiB body ($code), half-sent request, 200 concurrent ($ok answered 200)"
    ((ok == 200)) || e2e_fail "only $ok of 200 concurrent GET / got 200"
    local t_now; t_now=$(ticks)
    wait_console "TICK=$((t_now + 2)) " 30

    # The drive at LIMIT_MIB, then unlimited.
    allow 1
    wait_console 'READ1=' 120
    local read1; read1=$(guest_value "$WORK/console.log" READ1)
    local rate1; rate1=$(awk -v s="$read1" -v m="$READ_MIB" 'BEGIN { printf "%.2f", m / s }')
    echo "drive limited to $LIMIT_MIB MiB/s: $READ_MIB MiB in $read1 s = $rate1 MiB/s"
    # (The full bucket at the start adds 2 MiB: 5 % over the limit at 5 MiB/s.)
    awk -v r="$rate1" -v l=$LIMIT_MIB 'BEGIN { exit !(r >= 0.9 * l && r <= 1.1 * l) }' ||
        e2e_fail "the limited drive read at $rate1 MiB/s, not $LIMIT_MIB ±10 %"
    expect_api 204 PATCH /drives/data '{"drive_id": "data", "rate_limiter": {}}'
    allow 2
    wait_console 'READ2=' 120
    local read2; read2=$(guest_value "$WORK/console.log" READ2)
    echo "drive unlimited: $READ_MIB MiB in $read2 s"
    awk -v a="$read1" -v b="$read2" 'BEGIN { exit !(b < a / 2) }' || e2e_fail "lifting the drive's limit did not speed it up ($read1 s -> $read2 s)"

    # The NIC's transmit side: what it sends unlimited, then limited through
    # PATCH to a quarter of that, at most 4 MiB/s (below).
    allow 3
    wait_console 'SEND0=' 120
    received() {  # PORT -> "BYTES SECONDS" once L1 has it all
        local i=0
        until [[ -s $WORK/received-$1 ]]; do ((i++ < 300)) || e2e_fail "L1 got no end of the transfer on port $1"; sleep 0.2; done
        read -r bytes secs <"$WORK/received-$1"
        ((bytes == SEND_MIB << 20)) || e2e_fail "L1 received $bytes bytes on port $1, not $((SEND_MIB << 20))"
    }
    local bytes secs
    received 5001
    local rate0; rate0=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%d", b / s }')
    # At most 4 MiB/s: a throttled TCP stream is latency-bound in the nested
    # test host (the guest keeps only a few packets in flight per socket, TCP
    # small queues), and fell short of limits of 8.5 and 15.4 MB/s (7.7 and
    # 7.3 MB/s) once L1 sent 35-60 MB/s unlimited; at 4 MB/s it held +2.8 %.
    local tx_limit=$((rate0 / 4 < 4 << 20 ? rate0 / 4 : 4 << 20))
    echo "NIC tx unlimited: $bytes bytes in $secs s = $rate0 bytes/s; limiting to $tx_limit bytes/s"
    expect_api 204 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": '"$((tx_limit / 10))"', "refill_time": 100}}}'
    allow 4
    wait_console 'SEND1=' 300
    received 5003
    # The bucket starts full: up to its size (a tenth of a second's worth)
    # may leave at once, the rest at the limit; how much of it goes at once
    # depends on TCP's slow start (0.863 s and 0.979 s were both seen for 8
    # MiB at ~8.6 MB/s). So bytes/seconds is at most
    # limit * bytes / (bytes - size): +10 % above that is the cap the
    # limiter guarantees.
    # From below, the limiter can only answer for the time it held the
    # stream back (the device's tx_throttled_us): tokens come at the limit
    # the whole time, so a limiter that paces sends at least about
    # limit * held seconds, and a late or lost timer sends less. Outside the
    # holds the guest sets the pace, and a loaded test host slows it: a fresh
    # clone's make test beside a compile sent 2.12 MB/s against a 3.62 MB/s
    # limit while the limiter held it 25 times in 3.96 s (2026-12-07).
    expect_api 204 PUT /actions '{"action_type": "FlushMetrics"}'
    local held_us
    held_us=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["devices"]["eth0"]["tx_throttled_us"])' "$metrics") ||
        e2e_fail "no tx_throttled_us for eth0 in the metrics: $(tail -c 600 "$metrics")"
    local burst=$((tx_limit / 10)) rate1
    rate1=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%d", b / s }')
    echo "NIC tx limited to $tx_limit bytes/s (bucket $burst bytes): $bytes bytes in $secs s = $rate1 bytes/s; held back $((held_us / 1000)) ms"
    awk -v b="$bytes" -v s="$secs" -v l="$tx_limit" -v k="$burst" 'BEGIN { exit !(b / s <= 1.1 * l * b / (b - k)) }' ||
        e2e_fail "the limited NIC sent $rate1 bytes/s: above 1.1 x $tx_limit x $bytes / ($bytes - $burst)"
    awk -v b="$bytes" -v h="$held_us" -v l="$tx_limit" 'BEGIN { exit !(h > 0 && b >= 0.6 * l * h / 1e6) }' ||
        e2e_fail "the limited NIC held the stream $held_us us but sent only $bytes bytes: under 0.6 x $tx_limit bytes/s over the holds"
    wait_console STEPS-DONE 30

    # Metrics: the line FlushMetrics writes counts the work done.
    expect_api 204 PUT /actions '{"action_type": "FlushMetrics"}'
    python3 - "$metrics" "$READ_MIB" "$SEND_MIB" <<'PY' || e2e_fail "metrics do not match the work done"
import json, sys
line = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
read_mib, send_mib = int(sys.argv[2]), int(sys.argv[3])
data, eth0 = line["devices"]["data"], line["devices"]["eth0"]
print("metrics: data", {k: v for k, v in data.items() if "read" in k or "throttl" in k},
      "eth0", {k: v for k, v in eth0.items() if k.startswith("tx") or "throttl" in k})
assert data["read_bytes"] >= 2 * read_mib << 20, data
assert eth0["tx_bytes"] >= 2 * send_mib << 20, eth0
assert eth0["tx_throttled"] > 0, eth0
assert line["vcpu"] and all(v["guest_time_ms"] >= 0 for v in line["vcpu"]), line["vcpu"]
assert line["api_server"], line
PY
    expect_api 200 GET /vm/config
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert [d["drive_id"] for d in c["drives"]] == ["rootfs", "data"] and c["drives"][0]["is_root_device"] and c["machine-config"]["vcpu_count"] == 2, c' "$WORK/api.out" ||
        e2e_fail "GET /vm/config: $(cat "$WORK/api.out")"

    # Ctrl-Alt-Del: the guest reboots, ringvisor exits 0.
    expect_api 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
    local rc=0 waited=0
    while kill -0 "$vmm" 2>/dev/null && ((waited < 60)); do sleep 1; waited=$((waited + 1)); done
    kill -0 "$vmm" 2>/dev/null && e2e_fail "ringvisor still runs 60 s after SendCtrlAltDel"
    wait "$vmm" || rc=$?
    ((rc == 0)) || e2e_fail "ringvisor exited $rc after SendCtrlAltDel: $(tail -n 3 "$WORK/console.log" | tr -d '\r')"
    [[ ! -e $SOCK ]] || e2e_fail "the API socket is left behind"
    echo "SendCtrlAltDel: ringvisor exited 0 after ${waited} s"
}

CASES=("api_firecracker_session case_api_session")
run_cases api "$@"
sleep 1  # a failed case's trap has just sent ringvisor SIGTERM: let it write --stats
cp "$WORK/console.log" "$E2E_LOGDIR/api-session.console" 2>/dev/null
cp "$WORK/vmm.log" "$E2E_LOGDIR/api-session.vmm.log" 2>/dev/null
[[ -n ${VIRTIO_WORK:-} ]] || rm -rf "$WORK"
e2e_summary
