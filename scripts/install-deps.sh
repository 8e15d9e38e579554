#!/bin/sh
# Installs every Debian package minivm needs to build, test and benchmark,
# and enables deb-src so the MinGW build can fetch Debian's nng source.
# Idempotent; needs root (or sudo).
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

PKGS="build-essential cmake ninja-build pkg-config git xz-utils
  libnng-dev libslirp-dev libglib2.0-dev libcmocka-dev liblzma-dev
  python3 python3-pytest python3-pexpect
  clang libclang-rt-14-dev
  gcc-mingw-w64-x86-64-posix mingw-w64-x86-64-dev wine wine64
  qemu-system-x86 busybox-static cpio dpkg-dev kmod"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done

# deb-src lines for the archive already configured (Debian 12 deb822 style).
src=/etc/apt/sources.list.d/minivm-src.sources
if [ ! -f "$src" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
    $SUDO tee "$src" >/dev/null
  missing="$missing "   # force apt-get update below
fi

if [ -n "$missing" ]; then
  $SUDO apt-get update -q
  [ -z "$(echo $missing)" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
