#!/bin/sh
# build-guest-arm64.sh OUTDIR [DEBSDIR]
#
# Builds the arm64 guest from Debian's arm64 packages only (dpkg
# --add-architecture arm64 and apt-get update first: scripts/install-deps.sh):
#   OUTDIR/Image        Debian's arm64 kernel (linux-image-arm64's dependency):
#                       its vmlinuz as shipped (a plain Image in Debian 12;
#                       minivm also takes a gzip'd one)
#   OUTDIR/initrd.img   gzip newc cpio: busybox-static:arm64 and /init
#                       (guest/init-arm64: a shell on the console)
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

root=$WORK/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$WORK/busybox/bin/busybox" "$root/bin/"
for applet in sh mount echo cat grep poweroff uname sleep; do
	ln -s busybox "$root/bin/$applet"
done
cp "$SRCDIR/init-arm64" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$OUTDIR/initrd.img.tmp"
mv "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
