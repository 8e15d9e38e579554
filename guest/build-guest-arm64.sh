#!/bin/sh
# build-guest-arm64.sh OUTDIR [DEBSDIR]
#
# Builds the arm64 guest from Debian's arm64 packages only (dpkg
# --add-architecture arm64 and apt-get update first: scripts/install-deps.sh):
#   OUTDIR/Image        Debian's arm64 kernel (linux-image-arm64's dependency):
#                       its vmlinuz as shipped (a plain Image in Debian 12;
#                       minivm also takes a gzip'd one)
#   OUTDIR/initrd.img   gzip newc cpio: busybox-static:arm64, /init
#                       (guest/init-arm64: eth0 by DHCP, a shell on the
#                       console), virtio_mmio, virtio_net and virtio_console
#                       (hvc0) with their dependencies (/etc/minivm/modules:
#                       the load order)
# Downloads go to DEBSDIR (default OUTDIR/debs) and are reused.  No root.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [DEBSDIR]" >&2; exit 2; }
die() { echo "build-guest-arm64: $*" >&2; exit 1; }
SRCDIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" "${2:-$1/debs}"
OUTDIR=$(cd "$1" && pwd)
DEBS=$(cd "${2:-$1/debs}" && pwd)

# Prints the cached .deb of arm64 package $1, downloading it first if needed.
fetch_deb() {
	deb=$(ls "$DEBS/$1"_*_arm64.deb 2>/dev/null | sort | tail -n 1)
	if [ -z "$deb" ]; then
		(cd "$DEBS" && apt-get download "$1:arm64" >&2) || die "apt-get download $1:arm64 failed"
		deb=$(ls "$DEBS/$1"_*_arm64.deb 2>/dev/null | sort | tail -n 1)
	fi
	[ -n "$deb" ] || die "no $1 .deb in $DEBS"
	echo "$deb"
}
kernel_pkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*-arm64\).*$/\1/p' | head -n 1) || true
[ -n "$kernel_pkg" ] || kernel_pkg=$(ls "$DEBS"/linux-image-[0-9]*-arm64_*.deb 2>/dev/null |
	sort | tail -n 1 | xargs -r basename | cut -d_ -f1)
[ -n "$kernel_pkg" ] || die "cannot resolve linux-image-arm64:arm64 (apt-get update?)"
kernel_deb=$(fetch_deb "$kernel_pkg")
busybox_deb=$(fetch_deb busybox-static)

WORK=$OUTDIR/work
rm -rf "$WORK"
mkdir -p "$WORK/kernel" "$WORK/busybox" "$WORK/root"
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$kernel_deb" "$WORK/kernel"
dpkg-deb -x "$busybox_deb" "$WORK/busybox"
vmlinuz=$(ls "$WORK"/kernel/boot/vmlinuz-* | head -n 1)
cp "$vmlinuz" "$OUTDIR/Image.tmp"
mv "$OUTDIR/Image.tmp" "$OUTDIR/Image"

release=$(ls "$WORK/kernel/lib/modules" | head -n 1)
[ -n "$release" ] || die "$kernel_deb has no /lib/modules/<release>"
. "$SRCDIR/kmodules.sh"
: >"$WORK/modules"
kmodules "$WORK/kernel/lib/modules/$release/kernel" "$WORK/modules" virtio_mmio virtio_net virtio_console

root=$WORK/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc/minivm" \
	"$root/etc/udhcpc" "$root/lib/modules"
cp "$WORK/busybox/bin/busybox" "$root/bin/"
# The applets /init, the udhcpc script and the nested rig's checks use (the
# busybox binary is arm64's: it cannot list them here).
for applet in sh mount echo cat cut grep poweroff uname sleep insmod ip udhcpc awk nproc; do
	ln -s busybox "$root/bin/$applet"
done
while read -r ko; do
	cp "$ko" "$root/lib/modules/"
	echo "/lib/modules/$(basename "$ko")" >>"$root/etc/minivm/modules"
done <"$WORK/modules"
cp "$SRCDIR/init-arm64" "$root/init"
chmod 755 "$root/init"
install -m 0755 "$SRCDIR/udhcpc.script" "$root/etc/udhcpc/default.script"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$OUTDIR/initrd.img.tmp"
mv "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
