#!/usr/bin/env bash
# Firecracker's REST API as curl speaks it over the Unix socket, then hostile
# clients (garbage bytes, a 10 MiB body, a half-sent request left open, 200
# concurrent curls), against fake_vmm_server: the real ApiServer on a fake
# VMM. The server must answer each as Firecracker would, keep answering GET /
# afterwards, and shut down cleanly, removing its socket.
# Usage: tests/cli/api_curl.sh path/to/fake_vmm_server
set -uo pipefail
server=$1
for tool in curl socat; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (tools/deps.sh)"; exit 77; }
done
tmp=$(mktemp -d /tmp/rv-api-curl-XXXXXX)
sock=$tmp/api.sock
hold=""
# A short request timeout, so the half-sent client is seen closed.
"$server" "$sock" --request-timeout-ms 2000 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
cleanup() {
    [[ -n "$hold" ]] && exec {hold}>&-
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.05; done
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# api NAME STATUS REGEX METHOD PATH [BODY] [CURL ARGS...]: the status, and
# the body matching REGEX.
api() {
    local name=$1 want=$2 pattern=$3 method=$4 path=$5 body=${6:-}
    shift 5; (($# > 0)) && shift
    local args=(-s --max-time 5 --unix-socket "$sock" -X "$method" -o "$tmp/body"
                -D "$tmp/headers" -w '%{http_code}')
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data-raw "$body")
    local got
    got=$(curl "${args[@]}" "$@" "http://localhost$path")
    local text
    text=$(cat "$tmp/body" 2>/dev/null)
    if [[ "$got" == "$want" && "$text" =~ $pattern ]]; then
        ok "$name: $got $text"
    else
        fail "$name: status $got (want $want), body '$text' (want /$pattern/)"
    fi
}

api get_root 200 '"state":"Not started"' GET /
api get_version 200 '"firecracker_version":"' GET /version
api put_boot_source 204 '^$' PUT /boot-source '{"kernel_image_path": "/boot/vmlinux", "boot_args": "console=ttyS0"}'
api put_machine_config 204 '^$' PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 1024}'
api patch_machine_config 204 '^$' PATCH /machine-config '{"vcpu_count": 4}'
api get_machine_config 200 '"vcpu_count":4' GET /machine-config
api bad_machine_config 400 '"fault_message":".*vcpu_count' PUT /machine-config '{"vcpu_count": "two", "mem_size_mib": 1}'
api put_drive 204 '^$' PUT /drives/rootfs '{"drive_id": "rootfs", "path_on_host": "/img/root.ext4", "is_root_device": true, "is_read_only": false}'
api drive_id_mismatch 400 'does not match' PUT /drives/other '{"drive_id": "rootfs", "path_on_host": "/x"}'
api put_nic 204 '^$' PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap0"}'
api put_entropy 204 '^$' PUT /entropy '{}'
api put_logger 204 '^$' PUT /logger '{"level": "Info"}'
api put_metrics 204 '^$' PUT /metrics '{"metrics_path": "/tmp/none.fifo"}'
api get_vm_config 200 '"drive_id":"rootfs"' GET /vm/config
api unknown_path 404 '"fault_message"' GET /balloon
api empty_body 400 'JSON body' PUT /boot-source '' -H 'Content-Type: application/json'
# curl's -d without a Content-Type sends a form; Firecracker refuses it too.
api form_content_type 400 'Content-Type' PUT /boot-source '' --data-raw '{"kernel_image_path": "/k"}'
api wrong_method 405 'not allowed' DELETE /drives/rootfs
if grep -qi '^allow: PUT, PATCH' "$tmp/headers"; then ok "allow_header"; else fail "allow_header: $(cat "$tmp/headers")"; fi
api pause_before_start 400 'not running' PATCH /vm '{"state": "Paused"}'
api instance_start 204 '^$' PUT /actions '{"action_type": "InstanceStart"}'
api get_root_running 200 '"state":"Running"' GET /
api boot_source_after_start 400 'after the VM has started' PUT /boot-source '{"kernel_image_path": "/k"}'
api pause 204 '^$' PATCH /vm '{"state": "Paused"}'
api get_root_paused 200 '"state":"Paused"' GET /
api resume 204 '^$' PATCH /vm '{"state": "Resumed"}'

# Hostile clients. Garbage bytes: 400, and the connection closes (socat ends).
out=$(printf '\x00\x01\xffGARBAGE\r\n\r\n' | timeout 5 socat -t 3 - "UNIX-CONNECT:$sock")
if [[ "$out" =~ ^HTTP/1.1\ 400 ]]; then ok "garbage_bytes: ${out%%$'\r'*}"; else fail "garbage_bytes: '$out'"; fi

# A 10 MiB body: refused from its Content-Length, not read.
head -c $((10 << 20)) /dev/zero | tr '\0' ' ' >"$tmp/big"
api ten_mib_body 413 'larger than the limit' PUT /drives/big '' -H 'Content-Type: application/json' --data-binary "@$tmp/big"

# A half-sent request left open: GET / from another client still answers
# within 1 s, and the half-sent one is closed at the request timeout.
mkfifo "$tmp/half.in"
timeout 20 socat -t 1 - "UNIX-CONNECT:$sock" <"$tmp/half.in" >"$tmp/half.out" &
half_pid=$!
exec {hold}>"$tmp/half.in"
printf 'PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"kern' >&"$hold"
sleep 0.2
start=$(date +%s%N)
api get_root_beside_half_request 200 '"state"' GET /
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
if ((elapsed_ms < 1000)); then ok "half_request_does_not_block: ${elapsed_ms} ms"; else fail "half_request_does_not_block: ${elapsed_ms} ms"; fi
if timeout 6 tail --pid="$half_pid" -f /dev/null; then
    ok "half_request_timed_out"
else
    fail "half_request_timed_out: the server kept the connection open"
fi
exec {hold}>&-
hold=""
wait "$half_pid" 2>/dev/null

# 200 concurrent curls.
pids=()
for i in $(seq 200); do
    curl -s --max-time 60 --unix-socket "$sock" -o /dev/null -w '%{http_code}\n' http://localhost/ \
        >"$tmp/many.$i" &
    pids+=($!)
done
wait "${pids[@]}"
good=$(cat "$tmp"/many.* | grep -c '^200$')
if ((good == 200)); then ok "concurrent_curls: 200/200"; else fail "concurrent_curls: $good/200"; fi

api still_serving 200 '"state":"Running"' GET /
if kill -0 "$server_pid" 2>/dev/null; then ok "server_alive"; else fail "server_alive"; fi

# A clean shutdown: exit 0, the stats line, the socket removed.
kill -TERM "$server_pid"
wait "$server_pid"
rc=$?
stats=$(tail -n 1 "$tmp/server.out")
if [[ $rc -eq 0 && "$stats" =~ \"too_large\":1 && "$stats" =~ \"malformed\":1 && ! -e "$sock" ]]; then
    ok "clean_shutdown: $stats"
else
    fail "clean_shutdown: exit $rc, socket $([[ -e $sock ]] && echo kept || echo removed), stats $stats, stderr $(cat "$tmp/server.err")"
fi

echo "api_curl: $passed passed, $failed failed"
((failed == 0))
