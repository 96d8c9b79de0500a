#!/usr/bin/env bash
# Bad input to `ringvisor run` gets exactly one line on stderr naming the
# problem ("ringvisor: error: ...") and exit status 2 — never a crash.
# Usage: tests/cli/bad_input.sh path/to/ringvisor
set -uo pipefail
rv=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'not a kernel\n' >"$tmp/garbage"
# A file with a valid boot-sector signature and "HdrS" but cut short.
python3 - "$tmp/truncated" <<'PY'
import sys
b = bytearray(0x250)
b[0x1FE:0x200] = b'\x55\xaa'
b[0x1F1] = 30          # setup_sects: claims 15 KiB of setup code
b[0x202:0x206] = b'HdrS'
b[0x206:0x208] = (0x20F).to_bytes(2, 'little')
open(sys.argv[1], 'wb').write(b)
PY
kernel=$tmp/garbage
[[ -n "${RV_TEST_KERNEL:-}" && -r "${RV_TEST_KERNEL}" ]] && kernel=$RV_TEST_KERNEL
passed=0 failed=0

# expect NAME REGEX ARGS...: status 2, one stderr line matching REGEX.
expect() {
    local name=$1 pattern=$2 rc err lines
    shift 2
    "$rv" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
    err=$(cat "$tmp/err")
    lines=$(grep -c '' "$tmp/err")
    if [[ $rc -eq 2 && $lines -eq 1 && "$err" =~ ^ringvisor:\ error:\ .*$pattern ]]; then
        passed=$((passed + 1)); echo "ok   $name: $err"
    else
        failed=$((failed + 1)); echo "FAIL $name: exit $rc, $lines stderr line(s): $err"
    fi
}

expect unknown_flag "not expected: --bogus" run --bogus
expect unknown_subcommand "not expected|subcommand" frobnicate
expect no_kernel "--kernel is required" run
expect missing_kernel "cannot read kernel: $tmp/nope: No such file" run -k "$tmp/nope"
expect kernel_is_directory "is a directory" run -k "$tmp"
expect not_a_bzimage "not a bzImage" run -k "$tmp/garbage"
expect truncated_bzimage "truncated|not a bzImage|too short" run -k "$tmp/truncated"
expect bad_memory_unit "invalid memory size '12Q'" run -k "$kernel" -m 12Q
if [[ "$kernel" != "$tmp/garbage" ]]; then  # checks made after the kernel is parsed
    expect missing_initrd "cannot read initrd" run -k "$kernel" -i "$tmp/nope"
    expect no_kvm "/nonexistent/kvm does not exist" run -k "$kernel" --kvm /nonexistent/kvm
fi
if [[ -w /dev/kvm && "$kernel" != "$tmp/garbage" ]]; then
    expect memory_too_small "too small" run -k "$kernel" -m 8M
    expect memory_too_large "more than this host" run -k "$kernel" -m 64T
    expect zero_cpus "--cpus 0: must be between 1 and" run -k "$kernel" --cpus 0
    expect too_many_cpus "--cpus 100000: must be between 1 and" run -k "$kernel" --cpus 100000
fi
expect negative_cpus "cpus" run -k "$kernel" --cpus -3
expect bad_disk_iface "unsupported interface 'scsi'" run -k "$kernel" --disk "$tmp/garbage,iface=scsi"
expect five_ide_disks "5 IDE disks, but the IDE controller has room for 4" run -k "$kernel" \
    --disk "$tmp/garbage,iface=ide" --disk "$tmp/garbage,iface=ide" --disk "$tmp/garbage,iface=ide" \
    --disk "$tmp/garbage,iface=ide" --disk "$tmp/garbage,iface=ide"
expect bad_net_model "unsupported model 'rtl8139'" run -k "$kernel" --net tap=t0,model=rtl8139
expect undefined_rate_limit_group "drives\[0\].rate_limit_group: no rate limit group 'g' is defined" \
    run -k "$kernel" --disk "$tmp/garbage,rate_limit_group=g"
expect rate_limit_group_limits_nothing "rate-limit-groups\[0\].rate_limiter: limits nothing" \
    run -k "$kernel" --rate-limit-group id=g --disk "$tmp/garbage,rate_limit_group=g"
expect bad_rate_limit_group_option "unknown option 'bw=1'" run -k "$kernel" --rate-limit-group id=g,bw=1
expect bad_io_weight "io_weight 0: must be 1..10000" run -k "$kernel" --io-weight 0
expect bad_io_max "--io-max: io_max \"rbps=fast\": rbps: not a number" run -k "$kernel" --io-max rbps=fast
expect bad_net_queues "queues= needs a number from 1 to 16, not '17'" run -k "$kernel" \
    --net tap=t0,queues=17
expect e1000_queues "model=e1000 has one queue pair" run -k "$kernel" --net tap=t0,model=e1000,queues=2
expect bad_sched "--sched: fifo not in \\{batch,normal\\}" run -k "$kernel" --sched fifo
echo "$passed passed, $failed failed"
((failed == 0))
