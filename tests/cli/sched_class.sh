#!/usr/bin/env bash
# `ringvisor run --sched`: every thread of the VMM (event loop, vCPUs, API
# server) is SCHED_BATCH by default, keeps the class it was started in with
# --sched normal, and a class given by chrt (here SCHED_IDLE) is kept.
# Needs /dev/kvm and a guest kernel (RV_TEST_KERNEL); skipped (77) without.
# Usage: tests/cli/sched_class.sh path/to/ringvisor
set -uo pipefail
rv=$1
kernel=${RV_TEST_KERNEL:-}
[[ -w /dev/kvm && -r $kernel ]] || { echo "skipped: needs /dev/kvm and RV_TEST_KERNEL"; exit 77; }
tmp=$(mktemp -d)
pid=
trap '[[ -z $pid ]] || kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME CLASS LAUNCHER... -- RUN-ARGS...: every thread's class (ps's
# CLS: B batch, TS other, IDL idle) once the API thread and both vCPU threads
# are there.
expect() {
    local name=$1 want=$2 launcher=() classes="" i
    shift 2
    while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
    shift
    rm -f "$tmp/api.sock"
    "${launcher[@]}" "$rv" run -k "$kernel" -m 128M --cpus 2 --api-sock "$tmp/api.sock" \
        --cmdline "console=ttyS0" "$@" </dev/null >"$tmp/out" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        local comms
        comms=$(ps -L -o comm= -p "$pid" 2>/dev/null | sort | tr '\n' ' ')
        [[ $comms == *rv-api*vcpu0*vcpu1* ]] && break
        sleep 0.1
    done
    classes=$(ps -L -o cls=,comm= -p "$pid" | awk '{ print $2 "=" $1 }' | sort | tr '\n' ' ')
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
    if [[ $classes == *vcpu1* ]] && ! tr ' ' '\n' <<<"$classes" | grep -v -e '^$' -e "=$want\$" >/dev/null; then
        passed=$((passed + 1)); echo "ok   $name: $classes"
    else
        failed=$((failed + 1)); echo "FAIL $name: want $want everywhere, got: $classes $(tail -n 3 "$tmp/out")"
    fi
}

expect default_is_batch B env --
expect sched_batch B env -- --sched batch
expect sched_normal TS env -- --sched normal
expect started_idle_stays_idle IDL chrt -i 0 --
echo "$passed passed, $failed failed"
((failed == 0))
