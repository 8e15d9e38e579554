#!/bin/sh
# Installs every Debian package minivm needs to build, test and benchmark,
# enables deb-src so the MinGW build can fetch the Debian sources of nng,
# cmocka, xz-utils, pcre2, glib2.0 and libslirp (meson builds the last two),
# and adds the arm64 architecture (multiarch) for the arm64 cross build's
# libraries and the nested arm64 rig's kernel and busybox.
# Idempotent; needs root (or sudo).
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

PKGS="build-essential cmake ninja-build pkg-config git xz-utils
  libnng-dev libseccomp-dev libslirp-dev libglib2.0-dev libcmocka-dev liblzma-dev zlib1g-dev
  python3 python3-pytest python3-pexpect
  clang libclang-rt-14-dev
  gcc-mingw-w64-x86-64-posix mingw-w64-x86-64-dev wine wine64
  qemu-system-x86 busybox-static cpio dpkg-dev kmod meson libfdt-dev
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm qemu-user"
# The arm64 cross build links Debian's arm64 builds of its libraries
# (multiarch: they install beside the host's, under /usr/lib/aarch64-linux-gnu).
# libfdt-dev is not multi-arch: the host's (PKGS) gives the headers, libfdt1:arm64 the library.
# dev-net's libslirp and glib: libslirp-dev:arm64 pulls glib's arm64 runtime,
# libglib2.0-dev:arm64 is what slirp.pc requires (Debian 12: at the host's versions).
ARM64_PKGS="libnng-dev:arm64 libcmocka-dev:arm64 libseccomp-dev:arm64 libfdt1:arm64 zlib1g-dev:arm64
  libslirp-dev:arm64 libglib2.0-dev:arm64"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  missing="$missing "   # force apt-get update below
fi
for p in $ARM64_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done

# deb-src lines for the archive already configured (Debian 12 deb822 style).
src=/etc/apt/sources.list.d/minivm-src.sources
if [ ! -f "$src" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
    $SUDO tee "$src" >/dev/null
  missing="$missing "   # force apt-get update below
fi

# bookworm-backports, for the nested x86 rig's L1 QEMU only (below).  Debian
# marks backports NotAutomatic: nothing installed is upgraded from it.
bpo=/etc/apt/sources.list.d/minivm-backports.sources
if [ ! -f "$bpo" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  # The archive's first stanza (its mirror and key), suite bookworm-backports.
  awk '/^$/ {exit} /^Suites:/ {print "Suites: bookworm-backports"; next} {print}' \
    /etc/apt/sources.list.d/debian.sources | $SUDO tee "$bpo" >/dev/null
  missing="$missing "   # force apt-get update below
fi

if [ -n "$missing" ]; then
  $SUDO apt-get update -q
  [ -z "$(echo $missing)" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# The nested x86 rig's L1 runs under QEMU 10 from bookworm-backports, unpacked
# beside the system (/opt/minivm/qemu-l1), not installed: QEMU 7.2's emulation
# of nested SVM corrupted memory in L1 and in the guests of its KVM, whatever
# the VMM, about once in 10-20 boots (docs/PERFORMANCE.md, "The intermittent
# boot failure under nested KVM"); the benchmarks keep comparing with Debian
# 12's QEMU 7.2.
L1_QEMU=/opt/minivm/qemu-l1
if [ ! -x "$L1_QEMU/usr/bin/qemu-system-x86_64" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && $SUDO apt-get download -q qemu-system-x86/bookworm-backports \
    qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports seabios/bookworm-backports)
  $SUDO mkdir -p "$L1_QEMU"
  for deb in "$tmp"/*.deb; do $SUDO dpkg-deb -x "$deb" "$L1_QEMU"; done
  rm -rf "$tmp"
  "$L1_QEMU/usr/bin/qemu-system-x86_64" --version | head -n 1
fi
