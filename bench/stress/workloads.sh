# The stress workloads: what each boots with and what the guest runs.
# Sourced by bench/stress/inside.sh (in the test host).
# shellcheck shell=bash

STRESS_WORKLOADS=(fio-read-1cpu fio-read-2cpu fio-write-1cpu fio-write-2cpu
    iperf-virtio iperf-e1000 xfer-virtio xfer-e1000 duplex-virtio mixed)

# workload_spec NAME -> "CPUS NIC" (NIC: none, virtio or e1000); every
# workload gets the data disk (/dev/vdb) next to the root disk.
workload_spec() {
    case $1 in
        fio-*-1cpu) echo "1 none" ;;
        fio-*-2cpu) echo "2 none" ;;
        *-e1000) echo "2 e1000" ;;
        iperf-virtio|xfer-virtio|duplex-virtio|mixed) echo "2 virtio" ;;
        *) return 1 ;;
    esac
}

# Guest-side pieces (POSIX sh + bash for /dev/tcp; Debian's fio and iperf3).
# The canary: 32 MiB of random data in the guest's tmpfs, hashed before and
# after the workload. No device may write there: a changed hash means a DMA
# write landed in memory the guest never offered.
G_CANARY_BEGIN='head -c 33554432 /dev/urandom >/dev/shm/canary; c0=$(sha256sum </dev/shm/canary)'
G_CANARY_END='c1=$(sha256sum </dev/shm/canary); [ "$c0" = "$c1" ] && echo STRESS-CANARY=ok || { echo STRESS-CANARY=CHANGED; st=1; }'
g_net_up() {  # GUEST_IP HOST_IP
    echo "i=0; while ! ip link show eth0 >/dev/null 2>&1 && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
ip addr add $1/24 dev eth0; ip link set eth0 up; ping -q -c 2 -w 20 $2 >/dev/null || echo STRESS-NOTE=no-ping"
}
FIO_COMMON='--name=stress --filename=/dev/vdb --ioengine=libaio --direct=1 --bs=4k --iodepth=32 --group_reporting --output-format=terse --terse-version=3'

# workload_cmd NAME HOST_IP GUEST_IP XFER_BYTES -> the guest's shell command.
# It ends by printing STRESS-RESULT=ok|fail and exits non-zero on failure.
workload_cmd() {
    local name=$1 host=$2 guest=$3 bytes=$4 body
    case $name in
        fio-read-*)
            body="fio $FIO_COMMON --rw=randread --runtime=20 --time_based >/tmp/fio.out || st=1; cut -d';' -f8 /tmp/fio.out | sed 's/^/STRESS-IOPS=/'" ;;
        fio-write-*)
            # Written then read back and checked (crc32c in every block).
            body="fio $FIO_COMMON --rw=randwrite --size=96M --verify=crc32c --do_verify=1 >/tmp/fio.out || { st=1; cat /tmp/fio.out; }; cut -d';' -f49 /tmp/fio.out | sed 's/^/STRESS-WIOPS=/'" ;;
        iperf-*)
            body="$(g_net_up "$guest" "$host")
for a in '' '-R' '-P 4' '-R -P 4'; do iperf3 -c $host -t 10 \$a -J >/tmp/ip.json || { st=1; echo STRESS-NOTE=iperf3\$a-failed; }
  grep -m1 '\"bits_per_second\"' /tmp/ip.json | tr -dc '0-9.' | sed \"s/^/STRESS-BPS\${a// /}=/\"; echo; done" ;;
        duplex-*)
            body="$(g_net_up "$guest" "$host")
iperf3 -c $host -t 20 --bidir >/tmp/ip.out || { st=1; tail -n 5 /tmp/ip.out; }" ;;
        xfer-*)
            # host->guest: L1 sends a file, the guest hashes what arrives;
            # guest->host: the guest sends random data and its hash, L1 checks.
            body="$(g_net_up "$guest" "$host")
h=\$(bash -c 'cat </dev/tcp/$host/5002' | sha256sum | cut -d' ' -f1); echo STRESS-H2G=\$h
head -c $bytes /dev/urandom >/tmp/g2h; echo STRESS-G2H=\$(sha256sum </tmp/g2h | cut -d' ' -f1)
bash -c 'cat /tmp/g2h >/dev/tcp/$host/5003' || st=1; rm -f /tmp/g2h" ;;
        mixed)
            body="$(g_net_up "$guest" "$host")
fio $FIO_COMMON --rw=randrw --runtime=20 --time_based >/tmp/fio.out & f=\$!
iperf3 -c $host -t 20 --bidir >/tmp/ip.out || { st=1; tail -n 5 /tmp/ip.out; }
wait \$f || st=1" ;;
        *) return 1 ;;
    esac
    # A heartbeat on the console every 10 s: a guest that is slow (a loaded
    # test host) keeps beating, a dead or hung one stops.
    printf '(i=0; while sleep 10; do i=$((i+1)); echo STRESS-BEAT=$i; done) & hb=$!\nst=0; %s\n%s\n%s\nkill $hb\n[ $st = 0 ] && echo STRESS-RESULT=ok || echo STRESS-RESULT=fail; exit $st' \
        "$G_CANARY_BEGIN" "$body" "$G_CANARY_END"
}
