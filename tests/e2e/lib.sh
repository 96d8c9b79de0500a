# Helpers for e2e cases that run inside the test host (tools/testhost/run.sh).
# Source it from a bash script:
#   . "$(dirname "$0")/lib.sh"
#   run_case boots_to_init  check_boot ...
#   e2e_summary            # prints "N passed, N failed"; returns 1 on failures
# shellcheck shell=bash

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_PASSED=0
E2E_FAILED=0
# Per-case logs: under the writable results share when in the test host.
E2E_LOGDIR=${E2E_LOGDIR:-${RV_RESULTS:-/tmp}/e2e-logs}
mkdir -p "$E2E_LOGDIR"

# Inside the test host: L1's KVM events of each case, kept when it fails.
if [[ -n ${RV_RESULTS:-} ]]; then
    . "$E2E_ROOT/tools/testhost/ktrace.sh"
    ktrace_setup 2>/dev/null
fi

# guest_cmd_b64 'shell command' -> base64 for the guest's rv.cmd= argument
guest_cmd_b64() { printf '%s' "$1" | base64 -w0; }

# e2e_fail MSG: print a failure reason (the case's last output line is used
# as the reason in the FAIL line) and return 1.
e2e_fail() { echo "$*" >&2; return 1; }

# e2e_descendants PID: the processes PID started, and theirs (timeout(1)
# puts its command in a process group of its own).
e2e_descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1"); do echo "$c"; e2e_descendants "$c"; done
}

# e2e_threads PID: PID's threads and the kernel function each waits in.
e2e_threads() { ps -L -o tid,stat,wchan:26,comm -p "$1" | tail -n +2; }

# run_case NAME CMD...: run CMD with output to $E2E_LOGDIR/NAME.log and print
#   E2E PASS NAME                  if it exits 0
#   E2E FAIL NAME: <reason>        otherwise, reason = exit status and the
#                                  last output line; the log tail follows
run_case() {
    local name=$1 log rc reason
    shift
    log=$E2E_LOGDIR/$name.log
    # The case runs in a subshell with errexit on, so the first failing
    # command (e.g. `check || e2e_fail why`) ends it.
    local had_e=0
    [[ $- == *e* ]] && had_e=1
    set +e
    declare -F ktrace_reset >/dev/null && ktrace_reset
    # A deadline per case: one that hangs is killed with everything it
    # started (its own process group) and fails alone, with its log, instead
    # of taking the test host's whole run with it. (E2E_CASE_TIMEOUT: the
    # longest case in CI takes about 260 s.)
    local limit=${E2E_CASE_TIMEOUT:-600} late="E2E: $name ran past its" pid dog
    : >"$log"
    set -m
    (set -e; "$@") </dev/null >>"$log" 2>&1 &
    pid=$!
    (sleep "$limit"
     echo "E2E: what was running (ringvisor's threads with their wait channels):"
     sid=$(ps -o sid= -p "$pid" | tr -d ' ')   # timeout(1) leaves the group, not the session
     ps -o pid,stat,etimes,args --forest -s "$sid" | cut -c1-160
     for p in $(pgrep -s "$sid" -x ringvisor); do e2e_threads "$p"; done
     echo "$late $limit s deadline (E2E_CASE_TIMEOUT); killed"
     kill -TERM -- -"$pid" $(e2e_descendants "$pid"); sleep 5
     kill -KILL -- -"$pid" $(e2e_descendants "$pid")) >>"$log" 2>/dev/null &
    dog=$!
    set +m
    wait "$pid"
    rc=$?
    kill -- -"$dog" 2>/dev/null
    ((rc == 0)) || ! declare -F ktrace_save >/dev/null || ktrace_save "$E2E_LOGDIR/$name.trace.gz"
    ((had_e)) && set -e
    if ((rc == 0)); then
        E2E_PASSED=$((E2E_PASSED + 1))
        echo "E2E PASS $name"
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        # A case killed at its deadline shows more: what was running.
        local shown=20
        if reason=$(grep -a "^$late" "$log"); then shown=50; else
            reason=$(grep -av '^[[:space:]]*$' "$log" | tail -n 1 | tr -d '\r' || true)
        fi
        echo "E2E FAIL $name: exit $rc${reason:+: $reason}"
        tail -n "$shown" "$log" | sed 's/^/    | /'
    fi
    return 0
}

# e2e_summary: the final line, exactly "N passed, N failed".
e2e_summary() {
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    ((E2E_FAILED == 0))
}

# e2e_wait_line FILE PATTERN TIMEOUT: wait until FILE has a line matching
# the extended regex PATTERN; false on timeout.
e2e_wait_line() {
    local file=$1 pat=$2 deadline=$((SECONDS + $3))
    until grep -qE "$pat" "$file" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# e2e_wait_pid PID SECS: wait for the background job PID, at most SECS:
# its exit status, or 124 once it is killed (SIGKILL) at the deadline, after
# its threads and where they wait are printed.
e2e_wait_pid() {
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "e2e: pid $1 still runs after $2 s; its threads:"
            e2e_threads "$1"
            kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
            return 124
        fi
        sleep 0.2
    done
    wait "$1"
}

# run_cases KIND [NAME...]: runs the cases listed in the CASES array ("name
# function" strings), or only those named (found in CASES or EXTRA_CASES);
# exits when a name is unknown. (Call it plainly, not in `run_cases || ...`:
# that context would switch off errexit inside every case.)
run_cases() {
    local kind=$1 c name fn t0 selected=()
    shift
    if (($#)); then
        for c in "${CASES[@]}" "${EXTRA_CASES[@]}"; do
            printf '%s\n' "$@" | grep -qx "${c%% *}" && selected+=("$c")
        done
        ((${#selected[@]})) || { echo "$kind cases: no case named $*"; exit 1; }
    else
        selected=("${CASES[@]}")
    fi
    for c in "${selected[@]}"; do
        read -r name fn <<<"$c"
        t0=$SECONDS
        run_case "$name" "$fn"
        echo "    ($((SECONDS - t0)) s)"
    done
}
