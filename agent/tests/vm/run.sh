#!/usr/bin/env bash
# Runs a program inside the IPVS test VM and exits with its status:
#     run.sh PROGRAM [ARGS...]
# It can be a cargo runner (CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER);
# the ipvs test binary calls it itself when it starts on the host.
#
# The guest: the Debian kernel under qemu TCG (no NIC, nothing leaves it),
# the base initramfs from prepare.sh (cached in HACTL_VM_CACHE, default
# target/ipvs-vm) and a payload cpio appended per run with PROGRAM (debug
# info stripped), hactl-agent as /payload/hactl-agent (HACTL_VM_AGENT),
# and the environment variables HACTL_*, RUST_BACKTRACE and RUST_LOG.
# The working directory inside is the caller's (an empty directory).
# HACTL_VM_FILES: a directory copied to /payload/files. HACTL_VM_INIT=systemd:
# systemd is PID 1 (the layer of prepare-systemd.sh appended), and the
# program runs as its unit hactl-vm-test.service.
#
# Exit 125 without booting when qemu cannot run at all (the caller prints
# that the tests were skipped and why).
set -euo pipefail
prog=${1:?usage: run.sh PROGRAM [ARGS...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
prog=$(readlink -f "$prog")
target=${CARGO_TARGET_DIR:-$(cd "$(dirname "$prog")/../.." && pwd)}
cache=${HACTL_VM_CACHE:-$target/ipvs-vm}

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "ipvs vm: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2
    exit 125
fi
"$here/prepare.sh" "$cache"
init=${HACTL_VM_INIT:-}
case "$init" in
    "") layers=("$cache/base.cpio"); boot='rdinit=/init' ;;
    systemd)
        "$here/prepare-systemd.sh" "$cache"
        layers=("$cache/base.cpio" "$cache/systemd.cpio")
        boot='rdinit=/init-systemd systemd.show_status=0 systemd.log_level=warning'
        ;;
    *) echo "vm: unknown HACTL_VM_INIT=$init" >&2; exit 1 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/hactl-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
payload="$work/root"
mkdir -p "$payload/payload"
strip_copy() {
    mkdir -p "$payload$(dirname "$2")"
    objcopy --strip-debug "$1" "$payload$2" 2>/dev/null || cp "$1" "$payload$2"
}
strip_copy "$prog" /payload/prog
# The agent binary, at a fixed path (the tests read HACTL_VM_AGENT): the
# path cargo compiled in may lie under /tmp, which the guest's init covers
# with a tmpfs.
agent="$(dirname "$prog")/../hactl-agent"
if [ -x "$agent" ]; then
    strip_copy "$(readlink -f "$agent")" /payload/hactl-agent
fi
if [ -n "${HACTL_VM_FILES:-}" ]; then
    cp -a "$HACTL_VM_FILES" "$payload/payload/files"
fi
# Libraries the program needs beyond what the base has.
base_list="$work/base.list"
cpio -it --quiet < "$cache/base.cpio" | sed 's|^\.||' > "$base_list"
ldd "$prog" | awk '/=> \// {print $3}' | while read -r lib; do
    grep -qx "$lib" "$base_list" && continue
    mkdir -p "$payload$(dirname "$lib")"
    cp -L "$lib" "$payload$lib"
done

quote() { printf "'%s' " "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
    echo '#!/bin/sh'
    env | grep -E '^(HACTL_[A-Z0-9_]*|RUST_BACKTRACE|RUST_LOG|RUST_TEST_THREADS)=' | while IFS= read -r kv; do
        printf 'export %s\n' "$(quote "$kv")"
    done
    echo 'export HACTL_IN_VM=1'
    echo 'export HACTL_VM_AGENT=/payload/hactl-agent'
    printf 'mkdir -p %s && cd %s\n' "$(quote "$PWD")" "$(quote "$PWD")"
    printf 'exec /payload/prog'
    for a in "$@"; do printf ' %s' "$(quote "$a")"; done
    echo
} > "$payload/payload/cmd"
chmod 0755 "$payload/payload/cmd"
(cd "$payload" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/payload.cpio"
cat "${layers[@]}" "$work/payload.cpio" > "$work/initrd"

log="$work/console"
# -m: the initramfs (tens of MB) lives in guest RAM besides the tests.
set +e
timeout "${HACTL_VM_TIMEOUT:-600}" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m "${HACTL_VM_MEMORY:-1024}" -smp "${HACTL_VM_CPUS:-2}" \
    -nodefaults -no-user-config -display none -serial stdio -nic none -no-reboot \
    -kernel "$cache/vmlinux" -initrd "$work/initrd" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 $boot mitigations=off cryptomgr.notests" \
    < /dev/null | sed -u 's/\r$//' | tee "$log" | grep --line-buffered -v '^HACTL_VM_EXIT=\|reboot: Power down'
qemu=${PIPESTATUS[0]}
set -e
status=$(sed -n 's/^HACTL_VM_EXIT=\([0-9]*\)$/\1/p' "$log" | tail -n1)
if [ -z "$status" ]; then
    echo "ipvs vm: the guest ended without reporting a status (qemu exit $qemu)" >&2
    exit 1
fi
exit "$status"
