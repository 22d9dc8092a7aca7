#!/usr/bin/env bash
# Builds the systemd layer of the test VM (tests/systemd.rs): a newc cpio
# that run.sh appends to the base initramfs of prepare.sh when
# HACTL_VM_INIT=systemd, so that systemd is PID 1 in the guest. It holds
# systemd, systemctl, journald and journalctl as this machine's systemd
# package installed them (Debian 12: systemd 252) with their shared
# libraries, a minimal set of the distribution's units (the targets a
# service's default dependencies name, journald's units), and the guest's
# test unit (systemd/hactl-vm-test.service), which runs /payload/cmd,
# prints its exit status for run.sh and powers off.
#
# Usage: prepare-systemd.sh CACHE_DIR. Prints nothing on a warm cache.
# Needs the systemd package (scripts/test installs it) and cpio.
set -euo pipefail
cache=${1:?usage: prepare-systemd.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
stamp="$cache/systemd.stamp"
here=$(cd "$(dirname "$0")" && pwd)
want=$( (cat "$0" "$here"/systemd/*; /usr/lib/systemd/systemd --version 2>/dev/null | head -n1) | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$cache/systemd.cpio" ]; then
    exit 0
fi
if [ ! -x /usr/lib/systemd/systemd ] || ! command -v systemctl >/dev/null 2>&1; then
    echo "systemd vm: systemd is not installed (apt-get install systemd)" >&2
    exit 1
fi
echo "systemd vm: preparing the systemd layer in $cache" >&2

root="$cache/systemd-root"
rm -rf "$root" && mkdir -p "$root"
# Programs at the guest paths the units name, with what ldd says they load
# (the base initramfs keeps busybox in /bin, so paths are spelt /lib/...).
copy_with_libs() {
    local src=$1 dst=$2
    mkdir -p "$root$(dirname "$dst")"
    cp -L "$src" "$root$dst"
    ldd "$src" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
for prog in systemd systemd-journald systemd-shutdown; do
    copy_with_libs "/usr/lib/systemd/$prog" "/lib/systemd/$prog"
done
copy_with_libs "$(command -v systemctl)" /usr/bin/systemctl
copy_with_libs "$(command -v journalctl)" /usr/bin/journalctl

units="$root/lib/systemd/system"
mkdir -p "$units"
for u in basic.target sysinit.target multi-user.target network.target network-online.target \
         local-fs.target swap.target sockets.target timers.target paths.target slices.target \
         shutdown.target final.target umount.target poweroff.target systemd-poweroff.service \
         system.slice systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket; do
    [ -f "/usr/lib/systemd/system/$u" ] && cp "/usr/lib/systemd/system/$u" "$units/$u"
done
cp "$here/systemd/hactl-vm-test.service" "$units/"
ln -s multi-user.target "$units/default.target"
mkdir -p "$units/multi-user.target.wants" "$units/sockets.target.wants" "$units/sysinit.target.wants"
ln -s ../hactl-vm-test.service "$units/multi-user.target.wants/"
ln -s ../systemd-journald.socket "$units/sockets.target.wants/"
ln -s ../systemd-journald-dev-log.socket "$units/sockets.target.wants/"
ln -s ../systemd-journald.service "$units/sysinit.target.wants/"

install -m 0755 "$here/systemd/init" "$root/init-systemd"
install -m 0755 "$here/systemd/payload" "$root/lib/systemd/hactl-vm-payload"
mkdir -p "$root"/{etc/systemd/system,var/lib,var/tmp,var/log,usr/local/lib,root}
cp -L /etc/os-release "$root/etc/os-release"
# A fixed machine id: journald and PID 1 want one.
echo 5ac7d0c0ffee4b1d8e2a6c1d5e7f9a31 > "$root/etc/machine-id"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) > "$cache/systemd.cpio.tmp"
mv "$cache/systemd.cpio.tmp" "$cache/systemd.cpio"
rm -rf "$root"
echo "$want" > "$stamp"
