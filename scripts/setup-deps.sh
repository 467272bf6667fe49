#!/usr/bin/env bash
# Install the Debian packages physmem needs, using sudo when not root.
# Usage: scripts/setup-deps.sh [build|run|test]
#   run adds what the Python client needs (numpy); test adds that and the VM
#   and test tools.
set -euo pipefail

want=(cmake gcc make pkg-config libevent-dev libjson-c-dev libsystemd-dev)
case ${1:-build} in
run|test) want+=(python3 python3-numpy) ;;
esac
if [ "${1:-build}" = test ]; then
	want+=(libcmocka-dev python3-pytest valgrind util-linux qemu-system-x86 busybox-static
	       linux-image-amd64 linux-headers-amd64 linux-source sparse cpio kmod e2fsprogs
	       varlink-go groff jq debootstrap build-essential g++ fakeroot debhelper dh-dkms dkms
	       bash-completion udev systemd clang libclang-rt-dev abigail-tools strace)
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "physmem: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
