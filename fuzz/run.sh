#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 16 (ASan + UBSan) and runs each
# for a bounded time. Exit status non-zero if any target finds a crash.
#   fuzz/run.sh [BUILD_DIR] [SECONDS_PER_TARGET]     (defaults: build, 30)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/build}")/fuzz
seconds=${2:-${FUZZ_SECONDS:-30}}
mkdir -p "$out"
cxx=${CXX_FUZZ:-clang++-16}
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found (tools/deps.sh installs clang-16)" >&2; exit 1; }
# clang 16 implements what libstdc++ 12's <expected> needs but does not yet
# advertise it through __cpp_concepts.
flags=(-std=c++2b -U__cpp_concepts -D__cpp_concepts=202002L -O1 -g
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/src" -I"$root/tests")
base=("$root"/src/base/{fd,log}.cpp "$root"/src/memory/guest_memory.cpp "$root"/src/devices/virtio/queue.cpp
      "$root"/src/devices/rate_limiter{,_timer}.cpp "$root"/src/devices/rate_limit_group.cpp)

declare -A sources=(
    [virtqueue]=""
    [virtio_blk]="$(echo "$root"/src/devices/virtio/blk/*.cpp "$root"/src/backends/block/*.cpp)"
    [virtio_net]="$(echo "$root"/src/devices/virtio/net/*.cpp "$root"/src/backends/net/*.cpp "$root"/src/snapshot/state_codec.cpp)"
    [ide]="$(echo "$root"/src/devices/legacy/ide/*.cpp "$root"/src/backends/block/*.cpp "$root"/src/devices/pci/config_space.cpp "$root"/src/snapshot/state_codec.cpp)"
    [e1000]="$(echo "$root"/src/devices/legacy/e1000/*.cpp "$root"/src/devices/pci/config_space.cpp "$root"/src/snapshot/state_codec.cpp)"
    [snapshot]="$(echo "$root"/src/snapshot/*.cpp "$root"/src/devices/legacy/{uart16550,cmos_rtc,i8042,i8042_keyboard,acpi_pm}.cpp "$root"/src/devices/pci/{config_space,msix}.cpp "$root"/src/devices/virtio/{pci_transport,pci_transport_state,common_cfg}.cpp "$root"/src/devices/virtio/rng/*.cpp)"
)
declare -A libs=([virtqueue]="" [virtio_blk]="-luring" [virtio_net]="" [ide]="-luring" [e1000]="-lz" [snapshot]="")

status=0 summary=()
for name in virtqueue virtio_blk virtio_net ide e1000 snapshot; do
    bin=$out/${name}_fuzz
    # shellcheck disable=SC2086
    if ! "$cxx" "${flags[@]}" "$root/fuzz/${name}_fuzz.cpp" "${base[@]}" ${sources[$name]} \
            -lfmt ${libs[$name]} -o "$bin" 2>"$out/$name.build.log"; then
        echo "fuzz: building $name failed:" >&2; tail -20 "$out/$name.build.log" >&2
        status=1; summary+=("$name: BUILD FAILED"); continue
    fi
    mkdir -p "$out/corpus/$name"
    # Hand-made seeds (fuzz/seeds/NAME) reach paths random bytes rarely do.
    seeds=()
    [[ -d $root/fuzz/seeds/$name ]] && seeds=("$root/fuzz/seeds/$name")
    if "$bin" "$out/corpus/$name" "${seeds[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 >"$out/$name.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$name.log" | grep -o '[0-9]*$')
        summary+=("$name: ok, ${runs:-?} runs in ${seconds}s")
    else
        echo "fuzz: $name found a problem:" >&2; grep -A30 "ERROR\|runtime error\|==ERROR" "$out/$name.log" | head -40 >&2
        status=1; summary+=("$name: FAILED (see $out/$name.log)")
    fi
done
printf 'fuzz: %s\n' "${summary[@]}"
passed=$(printf '%s\n' "${summary[@]}" | grep -c ': ok' || true)
echo "$passed passed, $(( ${#summary[@]} - passed )) failed"
exit $status
