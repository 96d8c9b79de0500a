# The rows of the guest I/O benchmark and the guest script that runs them.
# Sourced by bench/guest-io/inside.sh (in the test host).
# shellcheck shell=bash

# fio on the data disk (/dev/vdb), libaio, O_DIRECT, one job, as users run it.
FIO_ROWS=(randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32 read-1m-qd8 write-1m-qd8)
# iperf3 between the guest and the test host over the TAP: guest->host (g2h)
# and host->guest (h2g), 1 and 4 streams.
NET_ROWS=(g2h-1 g2h-4 h2g-1 h2g-4)

# The data disk's last MiB holds the script (the kernel command line takes
# 2 KiB); fio stays below it.
SCRIPT_MIB_FROM_END=1

# row_cmd ROW SECONDS -> guest shell that prints "GIO-RESULT <row> <value>
# <unit> <MiB moved>" (value: IOPS for 4k rows, MB/s for 1m rows, Mbit/s for
# iperf3 rows).
row_cmd() {
    local row=$1 t=$2 rw bs qd
    case $row in
        randread-4k-*|randwrite-4k-*|read-1m-*|write-1m-*)
            rw=${row%%-*} bs=${row#*-}; bs=${bs%%-*}; qd=${row##*-qd}
            local fio="fio --name=gio --filename=/dev/vdb --size=\$FIO_SIZE --ioengine=libaio --direct=1 --rw=$rw --bs=$bs --iodepth=$qd --runtime=$t --time_based --output-format=terse --terse-version=3"
            # terse v3: 6/7/8 read KiB, KiB/s, IOPS; 47/48/49 the same for writes.
            local kb=6 bw=7 iops=8
            [[ $rw == *write ]] && kb=47 bw=48 iops=49
            if [[ $bs == 4k ]]; then
                echo "$fio >/tmp/fio.out && awk -F';' '/^3;/ { printf \"GIO-RESULT $row %d IOPS %.1f\\n\", \$$iops, \$$kb / 1024 }' /tmp/fio.out || { echo GIO-ERROR $row; cat /tmp/fio.out; }"
            else
                echo "$fio >/tmp/fio.out && awk -F';' '/^3;/ { printf \"GIO-RESULT $row %.1f MB/s %.1f\\n\", \$$bw * 1.024 / 1000, \$$kb / 1024 }' /tmp/fio.out || { echo GIO-ERROR $row; cat /tmp/fio.out; }"
            fi ;;
        g2h-*|h2g-*)
            local p=${row#*-} r=
            [[ $row == h2g-* ]] && r=-R
            # sum_received: what arrived, at the host (g2h) or in the guest (h2g).
            echo "iperf3 -c \$HOST -t $t -P $p $r -J >/tmp/ip.json && tr -d ' \\t\\n' </tmp/ip.json | grep -o '\"sum_received\":{[^}]*}' | tr ',' '\\n' | awk -F: '/\"bytes\"/ { b = \$2 } /\"bits_per_second\"/ { s = \$2 } END { printf \"GIO-RESULT $row %.1f Mbit/s %.1f\\n\", s / 1e6, b / 1048576 }' || { echo GIO-ERROR $row; tail -n 20 /tmp/ip.json; }" ;;
        *) return 1 ;;
    esac
}

# The guest's own view around a network row, for reading the console log
# (not parsed): its CPU split, eth0's packet counts, TCP's counters and where
# the NIC's interrupts went (cumulative, per queue and vCPU).
guest_net_diag() {
    echo "{ head -1 /proc/stat; grep eth0 /proc/net/dev; grep -E '^(Tcp|TcpExt):' /proc/net/snmp /proc/net/netstat; grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts; } | sed 's/^/GIO-DIAG $1 /'"
}

# guest_script HOST_IP GUEST_IP DISK_MIB SECONDS ROW... -> the bash script one
# boot runs: each row between GIO-BEGIN and GIO-END lines (L1 reads the VMM's
# CPU time and KVM's exit counters at each), a second of quiet around each,
# then GIO-ALL-DONE.
guest_script() {
    local host=$1 guest=$2 disk_mib=$3 t=$4 row
    shift 4
    cat <<EOF
HOST=$host FIO_SIZE=$((disk_mib - SCRIPT_MIB_FROM_END))M
echo GIO-NPROC=\$(nproc) GIO-QUEUES=\$(ls /sys/block/vdb/mq | wc -l)
EOF
    if [[ " $* " == *" g2h-"* || " $* " == *" h2g-"* ]]; then
        cat <<EOF
i=0; while ! ip link show eth0 >/dev/null 2>&1 && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
ip addr add $guest/24 dev eth0; ip link set eth0 up; ping -q -c 2 -w 20 $host >/dev/null || echo GIO-NOTE no-ping
EOF
    fi
    for row in "$@"; do
        local diag=:
        [[ $row == g2h-* || $row == h2g-* ]] && diag=guest_net_diag
        echo "sleep 1; echo GIO-BEGIN $row"
        $diag "$row"
        row_cmd "$row" "$t"
        echo "echo GIO-END $row; sleep 1"
        $diag "$row"
    done
    echo 'sleep 3; echo GIO-ALL-DONE'  # (the last row's GIO-END is sampled before the guest powers off)
}
