#!/bin/sh
# The nested arm64 rig: an L1 Linux (Debian's arm64 kernel, KVM built in,
# busybox-static:arm64) with the cross-built minivm in its initramfs, booted
# under qemu-system-aarch64 -M virt,virtualization=on -cpu max; its /init
# (tests/nested/arm64/init) runs minivm with KVM and prints "N passed, N failed".
#   run.sh BUILD_DIR [--linux]   (the cross build: bin/, guests/; work files in
#                                BUILD_DIR/nested; --linux: boot the arm64 Linux guest too)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
linux=${2:-}
work=$build/nested
mkdir -p "$work/debs"

# Debian's arm64 kernel and busybox, downloaded once (dpkg --add-architecture
# arm64 and apt-get update: scripts/install-deps.sh).
cd "$work/debs"
if ! ls linux-image-*-arm64_*.deb >/dev/null 2>&1; then
	kpkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/{sub(/:arm64$/, "", $2); print $2; exit}')
	apt-get download "$kpkg:arm64" >/dev/null
fi
ls busybox-static_*_arm64.deb >/dev/null 2>&1 || apt-get download busybox-static:arm64 >/dev/null

rm -rf "$work/kernel" "$work/root"
mkdir -p "$work/kernel" "$work/root"
dpkg-deb -x linux-image-*-arm64_*.deb "$work/kernel"
dpkg-deb -x busybox-static_*_arm64.deb "$work/bb"
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/lib" "$root/minivm/bin" "$root/minivm/lib" "$root/minivm/guests"
cp "$work/bb/bin/busybox" "$root/bin/"
for applet in $("$work/bb/bin/busybox" --list 2>/dev/null || echo sh mount cat cut od tr awk grep timeout poweroff echo); do
	ln -sf busybox "$root/bin/$applet"
done
cp "$here/init" "$root/init"
cp "$build/bin/launcher" "$build/bin/vmm-core" "$build/bin/dev-serial" "$root/minivm/bin/"
cp "$build/guests/s003.bin" "$root/minivm/guests/"
if [ "$linux" = --linux ]; then # the same kernel package, and busybox-static:arm64
	sh "$here/../../../guest/build-guest-arm64.sh" "$work/guest" "$work/debs"
	# gzip'd, as some distributions ship it: minivm inflates it (zlib).
	gzip -9 -n -c "$work/guest/Image" >"$root/minivm/guests/Image.gz"
	cp "$work/guest/initrd.img" "$root/minivm/guests/"
fi

# The binaries' shared libraries, from the arm64 multiarch directories.
libdirs="/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu"
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
todo="$root/minivm/bin/launcher $root/minivm/bin/vmm-core $root/minivm/bin/dev-serial"
while [ -n "$todo" ]; do
	next=""
	for f in $todo; do
		for lib in $(needed "$f"); do
			[ -e "$root/minivm/lib/$lib" ] && continue
			for d in $libdirs; do
				if [ -e "$d/$lib" ]; then
					cp -L "$d/$lib" "$root/minivm/lib/"
					next="$next $root/minivm/lib/$lib"
					break
				fi
			done
		done
	done
	todo=$next
done
cp -L /lib/ld-linux-aarch64.so.1 "$root/lib/"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/L1.img"
exec timeout $([ "$linux" = --linux ] && echo 840 || echo 300) qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on -smp 2 -m 1G \
	-nographic -no-reboot -kernel "$(ls "$work"/kernel/boot/vmlinuz-*)" -initrd "$work/L1.img" \
	-append "console=ttyAMA0 quiet panic=-1${linux:+ minivm.linux=1}"
