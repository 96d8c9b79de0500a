#!/usr/bin/env bash
# Install the Debian packages that tools/guest, tools/testhost and tests/e2e
# need. Idempotent and quick when everything is already installed.
set -euo pipefail

PKGS=(
    # build
    cmake make g++ pkg-config libgtest-dev libgmock-dev libfmt-dev libcli11-dev
    liburing-dev liblzma-dev libzstd-dev zlib1g-dev nlohmann-json3-dev libboost-dev libgd-dev python3
    # fuzzing (libFuzzer): clang 16 understands libstdc++ 12's <expected>
    clang-16 libclang-rt-16-dev
    # guest assets, test host, e2e, benchmarks
    qemu-system-x86 qemu-utils busybox-static cpio gzip zstd xz-utils kmod
    e2fsprogs coreutils apt iproute2 gnuplot-nox socat curl jq
    # the Debian guest image (tools/rootfs), iperf3's server for bench/stress in the test host
    debootstrap iperf3
)

installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
missing=()
for p in "${PKGS[@]}"; do
    grep -qx "$p installed" <<<"$installed" || missing+=("$p")
done

# apt-cache needs package lists to resolve linux-image-amd64 (guest/build.sh).
have_lists=0
compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null && have_lists=1

if ((${#missing[@]} == 0 && have_lists)); then
    exit 0
fi
if ((EUID != 0)); then
    echo "deps.sh: need root to install: ${missing[*]:-(apt lists)}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((${#missing[@]})); then
    echo "deps.sh: installing ${missing[*]}" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
