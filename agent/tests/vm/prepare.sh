#!/usr/bin/env bash
# Builds the cached half of the IPVS test VM (the project's notes:
# shared/notes/ipvs-in-a-vm.md): a Debian kernel as an uncompressed vmlinux
# and a base initramfs (newc cpio, uncompressed, so a per-run payload cpio
# can be appended) holding busybox, the ip_vs modules and their insmod
# order, iproute2's ip, ipvsadm, keepalived and openssl (the SSL_GET test's
# server) with their shared libraries.
#
# Usage: prepare.sh CACHE_DIR. Prints nothing on a warm cache. Needs
# apt-get (download only), dpkg-deb, depmod/modprobe (kmod), cpio, python3,
# busybox-static, keepalived, ipvsadm and openssl; scripts/test installs them.
set -euo pipefail
cache=${1:?usage: prepare.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
stamp="$cache/base.stamp"
here=$(cd "$(dirname "$0")" && pwd)
# Rebuild when this script or the guest's init changes.
want=$(cat "$0" "$here/init" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$cache/vmlinux" ] && [ -f "$cache/base.cpio" ]; then
    exit 0
fi
echo "ipvs vm: preparing kernel and base initramfs in $cache" >&2

# The kernel package linux-image-amd64 points at (Debian 12: 6.1).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
    echo "ipvs vm: cannot resolve linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
deb=$(ls "$cache"/"$pkg"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "ipvs vm: apt-get download $pkg failed" >&2; exit 1; }
    deb=$(ls "$cache"/"$pkg"_*.deb | head -n1)
fi
kver=${pkg#linux-image-}

tree="$cache/kernel"
rm -rf "$tree" && mkdir -p "$tree"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tree" \
    "./boot/vmlinuz-$kver" \
    "./lib/modules/$kver/kernel/net/netfilter" \
    "./lib/modules/$kver/kernel/net/ipv4/netfilter" \
    "./lib/modules/$kver/kernel/net/ipv6/netfilter" \
    "./lib/modules/$kver/kernel/net/bridge/bridge.ko" \
    "./lib/modules/$kver/kernel/net/802" \
    "./lib/modules/$kver/kernel/net/llc" \
    "./lib/modules/$kver/kernel/drivers/net/veth.ko" \
    "./lib/modules/$kver/kernel/lib" \
    "./lib/modules/$kver/kernel/crypto" \
    "./lib/modules/$kver/kernel/arch/x86/crypto"

# The uncompressed ELF boots about twice as fast under TCG (CONFIG_PVH).
python3 - "$tree/boot/vmlinuz-$kver" "$cache/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("no xz payload in vmlinuz")
out = lzma.LZMADecompressor().decompress(data[start:])
if out[:4] != b"\x7fELF":
    sys.exit("xz payload is not an ELF")
open(sys.argv[2], "wb").write(out)
PY

depmod -b "$tree" "$kver" 2>/dev/null
schedulers="rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh"
mods="veth bridge ip_vs"
for s in $schedulers; do mods="$mods ip_vs_$s"; done
order=()
for m in $mods; do
    while read -r word path _; do
        [ "$word" = insmod ] || continue
        rel=${path#"$tree"}
        case " ${order[*]-} " in *" $rel "*) ;; *) order+=("$rel") ;; esac
    done < <(modprobe -d "$tree" -S "$kver" --show-depends "$m")
done

root="$cache/root"
rm -rf "$root" && mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var/run,payload,lib/modules}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
    # ip is iproute2's, copied below: busybox's has no netns.
    [ "$a" = ip ] && continue
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
: > "$root/etc/modules.order"
for rel in "${order[@]}"; do
    mkdir -p "$root$(dirname "$rel")"
    cp "$tree$rel" "$root$rel"
    echo "$rel" >> "$root/etc/modules.order"
done

# Dynamic programs at their host paths, with what ldd says they load.
copy_with_libs() {
    local bin=$1
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    ldd "$bin" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
for bin in /usr/sbin/ip /usr/sbin/ipvsadm /usr/sbin/keepalived /usr/bin/openssl; do
    copy_with_libs "$bin"
done
# openssl reads its config at start.
mkdir -p "$root/usr/lib/ssl"
cp -L /usr/lib/ssl/openssl.cnf "$root/usr/lib/ssl/openssl.cnf"
# The dynamic loader at the path the ELF interpreter names.
mkdir -p "$root/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
echo "nogroup:x:65534:" >> "$root/etc/group"
echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh" >> "$root/etc/passwd"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
cp "$here/init" "$root/init"
chmod 0755 "$root/init"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) > "$cache/base.cpio.tmp"
mv "$cache/base.cpio.tmp" "$cache/base.cpio"
rm -rf "$tree" "$root"
echo "$want" > "$stamp"
