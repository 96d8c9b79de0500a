# The stress workloads: what each boots with and what the guest runs.
# Sourced by bench/stress/inside.sh (in the test host).
# shellcheck shell=bash

STRESS_WORKLOADS=(fio-read-1cpu fio-write-1cpu fio-read-2cpu fio-write-2cpu
    iperf-virtio xfer-virtio duplex-virtio mixed iperf-e1000 xfer-e1000 iperf-e1000-fixed)

# workload_spec NAME -> "CPUS NIC" (NIC: none, virtio or e1000); every
# workload gets the data disk (/dev/vdb) next to the root disk. Workloads with
# the same spec run one after another in one boot (inside.sh), so the 2-vCPU
# fio runs share the virtio-net guest (its NIC idle while fio runs).
workload_spec() {
    case $1 in
        fio-*-1cpu) echo "1 none" ;;
        *-e1000|*-e1000-fixed) echo "2 e1000" ;;
        fio-*-2cpu|iperf-virtio|xfer-virtio|duplex-virtio|mixed) echo "2 virtio" ;;
        *) return 1 ;;
    esac
}

# The data disk's last MiB holds the guest's script (the kernel command line
# takes 2 KiB): rv.cmd= only loads it. fio stays below it.
SCRIPT_MIB_FROM_END=1

# workload_body NAME -> bash run in the guest; it sets st=1 on failure and
# prints STRESS-<metric>= lines. $HOST, $BYTES and $FIO are the script's.
workload_body() {
    case $1 in
        fio-read-*)
            echo 'fio $FIO --rw=randread --runtime=10 --time_based >/tmp/fio.out || { st=1; cat /tmp/fio.out; }
cut -d";" -f8 /tmp/fio.out | sed "s/^/STRESS-IOPS=/"' ;;
        fio-write-*)
            # Written then read back and checked (crc32c in every block).
            echo 'fio $FIO --rw=randwrite --size=32M --verify=crc32c --do_verify=1 >/tmp/fio.out || { st=1; cat /tmp/fio.out; }
cut -d";" -f49 /tmp/fio.out | sed "s/^/STRESS-WIOPS=/"' ;;
        iperf-*-fixed)
            # The same four tests, each moving a fixed 25 MiB instead of
            # running 5 s: every VMM's guest moves the same data, so deaths
            # per boot compare at equal work (iperf-e1000 moved 3.3x more
            # under ringvisor than under QEMU).
            echo 'for a in "" "-R" "-P 4" "-R -P 4"; do
  iperf3 -c $HOST -n 25M $a -J >/tmp/ip.json || { st=1; echo "STRESS-NOTE=iperf3 $a failed"; }
  echo "STRESS-BPS${a// /}=$(grep -m1 "\"bits_per_second\"" /tmp/ip.json | tr -dc 0-9.)"; done' ;;
        iperf-*)
            echo 'for a in "" "-R" "-P 4" "-R -P 4"; do
  iperf3 -c $HOST -t 5 $a -J >/tmp/ip.json || { st=1; echo "STRESS-NOTE=iperf3 $a failed"; }
  echo "STRESS-BPS${a// /}=$(grep -m1 "\"bits_per_second\"" /tmp/ip.json | tr -dc 0-9.)"; done' ;;
        duplex-*)
            echo 'iperf3 -c $HOST -t 10 --bidir >/tmp/ip.out || { st=1; tail -n 5 /tmp/ip.out; }' ;;
        xfer-*)
            # host->guest: L1 sends a file, the guest hashes what arrives;
            # guest->host: the guest sends random data and its hash, L1 checks.
            echo 'echo STRESS-H2G=$(cat </dev/tcp/$HOST/5002 | sha256sum | cut -d" " -f1)
head -c $BYTES /dev/urandom >/tmp/g2h; echo STRESS-G2H=$(sha256sum </tmp/g2h | cut -d" " -f1)
cat /tmp/g2h >/dev/tcp/$HOST/5003 || st=1; rm -f /tmp/g2h' ;;
        mixed)
            echo 'fio $FIO --rw=randrw --runtime=10 --time_based >/tmp/fio.out & f=$!
iperf3 -c $HOST -t 10 --bidir >/tmp/ip.out || { st=1; tail -n 5 /tmp/ip.out; }
wait $f || { st=1; cat /tmp/fio.out; }' ;;
        *) return 1 ;;
    esac
}

# guest_script NIC HOST_IP GUEST_IP XFER_BYTES DISK_MIB WORKLOAD... -> the
# bash script one boot runs: the workloads in order, each between
# STRESS-BEGIN=<name> and STRESS-END=<name>:<status>, a heartbeat on the
# console every 10 s throughout (a slow guest keeps beating, a dead or hung
# one stops). Around each workload, a canary: 8 MiB of random data in the
# guest's tmpfs, hashed before and after. No device may write there: a
# changed hash means a DMA write landed in memory the guest never offered.
guest_script() {
    local nic=$1 host=$2 guest=$3 bytes=$4 disk_mib=$5 w
    shift 5
    cat <<EOF
HOST=$host BYTES=$bytes
FIO="--name=stress --filename=/dev/vdb --size=$((disk_mib - SCRIPT_MIB_FROM_END))M --ioengine=libaio --direct=1 --bs=4k --iodepth=32 --group_reporting --output-format=terse --terse-version=3"
(i=0; while sleep 10; do i=\$((i+1)); echo STRESS-BEAT=\$i; done) & hb=\$!
EOF
    [[ $nic == none ]] || cat <<EOF
i=0; while ! ip link show eth0 >/dev/null 2>&1 && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
ip addr add $guest/24 dev eth0; ip link set eth0 up; ping -q -c 2 -w 20 $host >/dev/null || echo STRESS-NOTE=no-ping
EOF
    echo 'all=0'
    for w in "$@"; do
        echo "echo STRESS-BEGIN=$w; st=0"
        echo 'head -c 8388608 /dev/urandom >/dev/shm/canary; c0=$(sha256sum </dev/shm/canary)'
        workload_body "$w"
        echo 'c1=$(sha256sum </dev/shm/canary); [ "$c0" = "$c1" ] || { echo STRESS-CANARY=CHANGED; st=1; }'
        echo "echo STRESS-END=$w:\$st; [ \$st = 0 ] || all=1"
    done
    echo 'kill $hb; exit $all'
}
