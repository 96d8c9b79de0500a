#!/usr/bin/env bash
# Build a gzip'd newc initramfs: busybox-static (+ applet links), /init, kernel
# modules with their transitive dependencies, and extra files.
#
#   mkinitramfs.sh --out FILE [--modules "mod1 mod2"] [--moddir DIR]
#                  [--init FILE] [--extra SRC:DST ...] [--bin PATH ...]
#
#   --moddir  lib/modules/<ver> directory (default: the one under
#             build/guest/rootfs-kernel, made by tools/guest/build.sh)
#   --init    script installed as /init (default: tools/guest/init)
#   --extra   copy host file or directory SRC to DST inside the image
#   --bin     copy the host's dynamically linked program PATH (symlinks to it
#             are followed) to the same path, with the shared libraries `ldd`
#             lists and the dynamic loader; it replaces a busybox applet link
#
# Modules end up as plain .ko files in /lib/modules/rv/ and their load order
# (dependencies first) in /etc/rv-modules; the init scripts insmod them.
set -euo pipefail
RV_TOOL=mkinitramfs
. "$(dirname "$0")/../lib/common.sh"

out= modules= moddir= init=$RV_ROOT/tools/guest/init
extras=() bins=()
while (($#)); do
    case $1 in
        --out) out=$2; shift 2 ;;
        --modules) modules=$2; shift 2 ;;
        --moddir) moddir=$2; shift 2 ;;
        --init) init=$2; shift 2 ;;
        --extra) extras+=("$2"); shift 2 ;;
        --bin) bins+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) rv_die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -n "$out" ]] || rv_die "--out FILE is required"
[[ -f "$init" ]] || rv_die "init script not found: $init"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] && $BUSYBOX --list-full >/dev/null 2>&1 ||
    rv_die "$BUSYBOX missing: run tools/deps.sh (busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    rv_die "$BUSYBOX is dynamically linked: install busybox-static (tools/deps.sh)"
fi

mkdir -p "$(dirname "$out")"
stage=$(mktemp -d "$(dirname "$out")/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt,lib/modules/rv}
cp "$BUSYBOX" "$stage/bin/busybox"
for applet in $($BUSYBOX --list-full); do
    [[ -e "$stage/$applet" ]] || ln -s /bin/busybox "$stage/$applet"
done
install -m 0755 "$init" "$stage/init"
: >"$stage/etc/rv-modules"

# ---- modules ---------------------------------------------------------------
if [[ -n "${modules// /}" ]]; then
    if [[ -z "$moddir" ]]; then
        kdir=$RV_ROOT/build/guest/rootfs-kernel/lib/modules
        [[ -d "$kdir" ]] || rv_die "no --moddir and no $kdir (run tools/guest/build.sh)"
        moddir=$(find "$kdir" -mindepth 1 -maxdepth 1 -type d | head -n1)
    fi
    [[ -d "$moddir/kernel" ]] || rv_die "not a modules directory: $moddir"

    norm() { local n=${1##*/}; n=${n%%.ko*}; echo "${n//-/_}"; }
    declare -A path=() builtin=() state=()
    while IFS= read -r f; do path[$(norm "$f")]=$f; done < <(find "$moddir/kernel" -name '*.ko*')
    if [[ -f "$moddir/modules.builtin" ]]; then
        while IFS= read -r f; do builtin[$(norm "$f")]=1; done <"$moddir/modules.builtin"
    fi

    order=()
    add() {  # depth-first: dependencies before the module itself
        local m; m=$(norm "$1")
        [[ -z "${state[$m]:-}" ]] || return 0
        state[$m]=1
        if [[ -z "${path[$m]:-}" ]]; then
            if [[ -n "${builtin[$m]:-}" ]]; then rv_log "$m is built into the kernel, skipping"
            else rv_log "warning: module $m not found, skipping"; fi
            return 0
        fi
        local deps d
        deps=$(modinfo -F depends "${path[$m]}" 2>/dev/null) ||
            rv_die "modinfo failed on ${path[$m]}"
        for d in ${deps//,/ }; do add "$d"; done
        order+=("$m")
    }
    for m in $modules; do add "$m"; done

    for m in "${order[@]}"; do
        src=${path[$m]} dst=$stage/lib/modules/rv/$m.ko
        case $src in
            *.ko) cp "$src" "$dst" ;;
            *.ko.xz) xz -dc "$src" >"$dst" ;;
            *.ko.zst) zstd -qdc "$src" >"$dst" ;;
            *.ko.gz) gzip -dc "$src" >"$dst" ;;
            *) rv_die "unknown module compression: $src" ;;
        esac
        echo "$m" >>"$stage/etc/rv-modules"
    done
    rv_log "modules: ${order[*]}"
fi

# ---- extra files -----------------------------------------------------------
for e in "${extras[@]}"; do
    src=${e%%:*} dst=${e#*:}
    [[ "$e" == *:* && -n "$src" && -n "$dst" ]] || rv_die "--extra wants SRC:DST, got '$e'"
    [[ -e "$src" ]] || rv_die "--extra source not found: $src"
    mkdir -p "$stage/$(dirname "$dst")"
    # never write through a busybox applet link (it points at the host's /bin/busybox)
    [[ ! -L "$stage/$dst" ]] || rm -f "$stage/$dst"
    cp -a "$src" "$stage/$dst"
done

# ---- dynamically linked programs -------------------------------------------
# ldd lines: "libx.so.N => /path (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
# "linux-vdso.so.1 (0x...)" (no file).
for b in "${bins[@]}"; do
    [[ -f "$b" && -x "$b" ]] || rv_die "--bin: not an executable file: $b"
    libs=$(ldd "$b" 2>/dev/null) || rv_die "--bin: ldd failed on $b (statically linked?)"
    for f in "$b" $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs"); do
        dst=$stage/${f#/}
        [[ ! -L "$dst" ]] || rm -f "$dst"
        [[ -e "$dst" ]] && continue
        mkdir -p "$(dirname "$dst")"
        cp -L "$f" "$dst"
    done
done
((${#bins[@]} == 0)) || rv_log "programs: ${bins[*]}"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 | gzip -6 -n) >"$out.tmp"
mv "$out.tmp" "$out"
