#!/bin/sh
# build-guest.sh OUTDIR [--initrd-compression gzip|none] [--tools DIR]
#
# Builds minivm's default guest from Debian packages only:
#   OUTDIR/bzImage          Debian's stock kernel (linux-image-amd64's dependency)
#   OUTDIR/initrd.img       newc cpio: busybox-static, /init, the virtio modules,
#                           and with --tools every executable file of DIR in
#                           /usr/bin (the build passes guest/tools' static
#                           programs: devwrite, devread)
#   OUTDIR/vmlinux-version  the kernel release, what `uname -r` prints in the guest
#
# Downloads go to OUTDIR/debs and are reused: once the two .debs are there the
# script makes no network access.  Needs no root (apt-get download does not).
# Idempotent: every run rebuilds the outputs from the cached packages.
#
# The guest's /init (guest/init) writes the boot-time marker: byte 123 to I/O
# port 0x3f0.
set -eu

usage() {
	echo "usage: $0 OUTDIR [--initrd-compression gzip|none] [--tools DIR]" >&2
	exit 2
}
die() {
	echo "build-guest: $*" >&2
	exit 1
}

[ $# -ge 1 ] || usage
OUTDIR=$1
shift
COMPRESSION=gzip
TOOLS=
while [ $# -gt 0 ]; do
	case "$1" in
	--initrd-compression)
		[ $# -ge 2 ] || usage
		COMPRESSION=$2
		shift 2
		;;
	--tools)
		[ $# -ge 2 ] || usage
		TOOLS=$2
		shift 2
		;;
	*) usage ;;
	esac
done
case "$COMPRESSION" in gzip | none) ;; *) usage ;; esac
[ -z "$TOOLS" ] || [ -d "$TOOLS" ] || die "--tools $TOOLS is not a directory"

SRCDIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR/debs"
OUTDIR=$(cd "$OUTDIR" && pwd)
DEBS=$OUTDIR/debs

for tool in dpkg-deb cpio gzip; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg cpio gzip)"
done

# ---- the packages ----------------------------------------------------------

# linux-image-amd64 is a metapackage; the kernel is its versioned dependency
# (linux-image-6.1.0-56-amd64 today).  apt-cache reads only the local lists.
kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1) || true
if [ -z "$kernel_pkg" ]; then
	# No package lists: fall back to a kernel downloaded earlier.
	cached=$(ls "$DEBS"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort | tail -n 1)
	[ -n "$cached" ] || die "cannot resolve linux-image-amd64 with apt-cache (run apt-get update) and no kernel in $DEBS"
	kernel_pkg=$(basename "$cached" | cut -d_ -f1)
fi

# Prints the cached .deb of package $1, downloading it first if needed.
fetch_deb() {
	pkg=$1
	deb=$(ls "$DEBS/${pkg}"_*.deb 2>/dev/null | sort | tail -n 1)
	if [ -z "$deb" ]; then
		echo "build-guest: downloading $pkg" >&2
		(cd "$DEBS" && apt-get download "$pkg" >&2) ||
			die "apt-get download $pkg failed (no network to the Debian archive, or run apt-get update)"
		deb=$(ls "$DEBS/${pkg}"_*.deb 2>/dev/null | sort | tail -n 1)
		[ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $DEBS"
	fi
	echo "$deb"
}
kernel_deb=$(fetch_deb "$kernel_pkg")
busybox_deb=$(fetch_deb busybox-static)

WORK=$OUTDIR/work
rm -rf "$WORK"
mkdir -p "$WORK/kernel" "$WORK/busybox"
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$kernel_deb" "$WORK/kernel"
dpkg-deb -x "$busybox_deb" "$WORK/busybox"

release=$(ls "$WORK/kernel/lib/modules" | head -n 1)
[ -n "$release" ] || die "$kernel_deb has no /lib/modules/<release>"
vmlinuz=$WORK/kernel/boot/vmlinuz-$release
[ -f "$vmlinuz" ] || die "$kernel_deb has no /boot/vmlinuz-$release"
grep -q '^CONFIG_DEVPORT=y' "$WORK/kernel/boot/config-$release" ||
	echo "build-guest: warning: CONFIG_DEVPORT is off, /init cannot write the boot marker" >&2

# ---- the virtio modules, in dependency order --------------------------------

MODDIR=$WORK/kernel/lib/modules/$release/kernel
WANTED="virtio_mmio virtio_pci virtio_net virtio_console"

. "$SRCDIR/kmodules.sh"
ORDER=$WORK/modules # the modules' .ko files, dependencies first
: >"$ORDER"
kmodules "$MODDIR" "$ORDER" $WANTED

# ---- the initrd tree -----------------------------------------------------------

ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/proc" "$ROOT/sys" \
	"$ROOT/dev" "$ROOT/tmp" "$ROOT/root" "$ROOT/etc/minivm" "$ROOT/etc/udhcpc" \
	"$ROOT/lib/modules/$release"
cp "$WORK/busybox/bin/busybox" "$ROOT/bin/busybox"
# Applet links as busybox --install -s would make them, without running it here.
"$ROOT/bin/busybox" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$ROOT/$applet"
done

while read -r ko; do
	cp "$ko" "$ROOT/lib/modules/$release/"
	echo "/lib/modules/$release/$(basename "$ko")" >>"$ROOT/etc/minivm/modules"
done <"$ORDER"

install -m 0755 "$SRCDIR/init" "$ROOT/init"
install -m 0755 "$SRCDIR/udhcpc.script" "$ROOT/etc/udhcpc/default.script"
if [ -n "$TOOLS" ]; then
	for tool in "$TOOLS"/*; do
		if [ -f "$tool" ] && [ -x "$tool" ]; then
			install -m 0755 "$tool" "$ROOT/usr/bin/"
		fi
	done
fi
echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
echo "root:x:0:" >"$ROOT/etc/group"
chmod 1777 "$ROOT/tmp"

# ---- outputs -------------------------------------------------------------------------

# Sorted names and a fixed mtime: the same packages give the same initrd.
find "$ROOT" -exec touch -h -d @0 {} +
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) >"$WORK/initrd.cpio"
case "$COMPRESSION" in
gzip) gzip -9 -n -c "$WORK/initrd.cpio" >"$OUTDIR/initrd.img.tmp" ;;
none) cp "$WORK/initrd.cpio" "$OUTDIR/initrd.img.tmp" ;;
esac
mv "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
cp "$vmlinuz" "$OUTDIR/bzImage"
echo "$release" >"$OUTDIR/vmlinux-version"

echo "build-guest: $OUTDIR/bzImage ($release), $OUTDIR/initrd.img ($COMPRESSION;" \
	"modules: $(tr '\n' ' ' <"$ORDER"| sed 's/ $//'))" >&2
