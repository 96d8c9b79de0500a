# Shared helpers for tools/guest and tools/testhost. Source it; do not run it.
# shellcheck shell=bash

RV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RV_CACHE=${RV_CACHE:-$RV_ROOT/build/cache}

rv_log() { echo "${RV_TOOL:-rv}: $*" >&2; }
rv_die() { echo "${RV_TOOL:-rv}: error: $*" >&2; exit 1; }

# rv_hash FILE... -> one short hash over the contents of the files
rv_hash() { cat "$@" | sha256sum | cut -c1-16; }

# rv_stamp_ok STAMPFILE KEY -> true if STAMPFILE holds exactly KEY
rv_stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# rv_kernel_pkg -> "linux-image-6.x-amd64 VERSION", resolved from the
# linux-image-amd64 metapackage (needs apt lists: tools/deps.sh). apt-cache is
# slow here (no pkgcache), so the answer is cached until the apt lists change.
rv_kernel_pkg() {
    local sig memo=$RV_CACHE/kernel-pkg line pkg ver
    sig=$(stat -c '%n %Y %s' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16)
    if [[ -f "$memo" ]] && read -r line <"$memo" && [[ "${line%% *}" == "$sig" ]]; then
        echo "${line#* }"; return 0
    fi
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [[ -n "$pkg" ]] || rv_die "cannot resolve linux-image-amd64; run tools/deps.sh (apt-get update)"
    ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
    [[ -n "$ver" ]] || rv_die "no version for $pkg in the apt lists"
    mkdir -p "$RV_CACHE"
    echo "$sig $pkg $ver" >"$memo"
    echo "$pkg $ver"
}

# rv_fetch_deb PKG VER -> path of the cached .deb (downloaded once)
rv_fetch_deb() {
    local pkg=$1 ver=$2 dir=$RV_CACHE/debs deb
    deb=$dir/${pkg}_${ver//:/%3a}_amd64.deb
    if [[ ! -s "$deb" ]]; then
        mkdir -p "$dir"
        rv_log "downloading $pkg=$ver"
        (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
            rv_die "apt-get download $pkg=$ver failed"
        [[ -s "$deb" ]] || rv_die "expected $deb after download"
    fi
    echo "$deb"
}

# rv_extract_vmlinux BZIMAGE OUT: decompress the bzImage payload into the ELF
# vmlinux. QEMU boots that through its PVH entry point, which skips the
# in-guest decompression (about 6 s under TCG).
rv_extract_vmlinux() {
    local k=$1 setup off len start magic
    u() { od -An -tu"$2" -j "$1" -N"$2" "$k" | tr -d ' '; }
    setup=$(u $((0x1f1)) 1); off=$(u $((0x248)) 4); len=$(u $((0x24c)) 4)
    start=$(( (setup + 1) * 512 + off ))
    magic=$(od -An -tx1 -j "$start" -N4 "$k" | tr -d ' ')
    case $magic in
        fd377a58) tail -c +$((start + 1)) "$k" | head -c "$len" | xz -dc --single-stream ;;
        28b52ffd) tail -c +$((start + 1)) "$k" | head -c "$len" | zstd -qdc ;;
        1f8b*)    tail -c +$((start + 1)) "$k" | head -c "$len" | gzip -dc 2>/dev/null ;;
        *) rv_die "unknown bzImage payload compression (magic $magic) in $k" ;;
    esac >"$2.tmp" || true
    [[ "$(od -An -c -N4 "$2.tmp" | tr -d ' ')" == 177ELF ]] || rv_die "could not extract vmlinux from $k"
    mv "$2.tmp" "$2"
}

# rv_ensure_kernel OUTDIR
#   -> OUTDIR/vmlinuz (bzImage), OUTDIR/vmlinux (ELF, PVH-bootable),
#      OUTDIR/rootfs-kernel/{boot,lib/modules/VER}, OUTDIR/kernel-version
# Re-extracts only when the package version or this file changes.
rv_ensure_kernel() {
    local out=$1 pkg ver key stamp deb tmp kver
    read -r pkg ver < <(rv_kernel_pkg)
    key="$pkg $ver $(declare -f rv_ensure_kernel rv_fetch_deb rv_extract_vmlinux | sha256sum | cut -c1-16)"
    stamp=$out/.kernel.stamp
    if rv_stamp_ok "$stamp" "$key" && [[ -s "$out/vmlinuz" && -s "$out/vmlinux" && -s "$out/kernel-version" ]]; then
        return 0
    fi
    deb=$(rv_fetch_deb "$pkg" "$ver")
    mkdir -p "$out"
    tmp=$(mktemp -d "$out/.kernel.XXXXXX")
    rv_log "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; rv_die "dpkg-deb -x $deb failed"; }
    kver=$(basename "$(find "$tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
    [[ -n "$kver" && -f "$tmp/boot/vmlinuz-$kver" ]] || { rm -rf "$tmp"; rv_die "no vmlinuz in $deb"; }
    chmod 755 "$tmp"
    rm -rf "$tmp/usr" "$out/rootfs-kernel"
    mv "$tmp" "$out/rootfs-kernel"
    cp "$out/rootfs-kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
    rv_extract_vmlinux "$out/vmlinuz" "$out/vmlinux"
    echo "$kver" >"$out/kernel-version"
    echo "$key" >"$stamp"
}
