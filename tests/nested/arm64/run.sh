#!/bin/sh
# The nested arm64 rig: an L1 Linux (Debian's arm64 kernel, KVM built in,
# busybox-static:arm64) with the cross-built minivm in its initramfs, booted
# under qemu-system-aarch64 -M virt,virtualization=on; its /init
# (tests/nested/arm64/init) runs minivm with KVM: s003, then Debian's arm64
# kernel on 2 vCPUs with the network (guest/build-guest-arm64.sh), one line
# per check and "N passed, N failed".
#   run.sh BUILD_DIR   (the cross build: bin/, guests/; work files in BUILD_DIR/nested)
# Environment, for measurements: NESTED_L1_CPU (QEMU -cpu for L1),
# NESTED_L1_SMP, NESTED_APPEND (the arm64 guest's kernel command line),
# NESTED_IDLE / NESTED_STUCK / NESTED_TIMEOUT (seconds: see below).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
work=$build/nested
mkdir -p "$work/debs"
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }

# The arm64 guest (guest/build-guest-arm64.sh: Debian's arm64 kernel,
# busybox-static:arm64 and the virtio-net modules, downloaded once into
# debs/), rebuilt only when one of its inputs is newer.  Its kernel is L1's
# kernel too.  Unpacking the kernel package takes ~10 s here.
guest=$work/guest
if [ ! -e "$guest/initrd.img" ] || ! ls "$work"/debs/busybox-static_*_arm64.deb >/dev/null 2>&1 ||
	[ -n "$(find "$here/../../../guest" "$work/debs" -newer "$guest/initrd.img" \
	\( -name '*arm64*' -o -name kmodules.sh -o -name udhcpc.script \) 2>/dev/null)" ]; then
	sh "$here/../../../guest/build-guest-arm64.sh" "$guest" "$work/debs"
fi
kernel=$guest/Image

rm -rf "$work/root" "$work/kernel" # kernel/: what this rig unpacked before it used the guest's
mkdir -p "$work/root"
dpkg-deb -x "$(ls "$work"/debs/busybox-static_*_arm64.deb | tail -n 1)" "$work/bb"
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/lib" "$root/minivm/bin" "$root/minivm/lib" "$root/minivm/guests"
cp "$work/bb/bin/busybox" "$root/bin/"
for applet in sh mount cat cut od tr awk grep sed tail sleep timeout mkfifo poweroff echo; do
	ln -sf busybox "$root/bin/$applet"
done
cp "$here/init" "$root/init"
binaries="launcher vmm-core dev-serial dev-net"
for b in $binaries; do cp "$build/bin/$b" "$root/minivm/bin/"; done
cp "$build/guests/s003.bin" "$root/minivm/guests/"
cp "$guest/Image" "$guest/initrd.img" "$root/minivm/guests/"
# quiet: the kernel's log on the PL011 is an exit per register access;
# init_on_alloc=0 (Debian's default is on) and mitigations=off spare the
# guest work that tests nothing here (docs/PERFORMANCE.md has the figures).
echo "${NESTED_APPEND:-console=ttyAMA0 quiet init_on_alloc=0 mitigations=off}" \
	>"$root/minivm/guests/append"

# The binaries' shared libraries, from the arm64 multiarch directories.
libdirs="/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu"
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
todo=$(for b in $binaries; do echo "$root/minivm/bin/$b"; done)
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
# Uncompressed: under QEMU's emulation L1's kernel would inflate it.
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/L1.img"

# L1's own kernel could wedge under QEMU's emulation (the x86 rig's L1 has,
# in CI).  L1 prints "begin CHECK" before each check and "alive" every 15 s:
# when its console says nothing for IDLE seconds once its /init has spoken,
# or a check has not ended after STUCK seconds (the Linux boot is bounded at
# 300 s inside L1), or the whole run passes TIMEOUT seconds, the rig records
# where L1's vCPUs are (PC from QEMU's monitor) and stops it; an L1 that
# ends without its summary counts the same.  Once per run (RETRIES), if no
# check had failed, a fresh L1 runs every check again and its summary is the
# run's; else a FAIL line names the check that was running, then the summary.
IDLE=${NESTED_IDLE:-120}
STUCK=${NESTED_STUCK:-420}
TIMEOUT=${NESTED_TIMEOUT:-900}
RETRIES=${NESTED_RETRIES:-1}
monitor=$work/monitor.sock
echo "nested arm64: L1 image $(du -m "$work/L1.img" | cut -f1) MiB, ready after $(elapsed) s"

# One command to L1's QEMU monitor; prints the answer.
monitor() { # command
	python3 "$here/../monitor.py" "$monitor" "$1"
}

# Boots L1 with its console into $log (and this rig's stdout); sets $wedged
# to why L1 was stopped, or empty.
boot_l1() {
	echo "nested arm64: booting L1 (console: $log)"
	: >"$log"
	rm -f "$monitor"
	# -cpu max has EL2 with VHE; pauth=off spares emulating pointer
	# authentication, which Debian's kernels use in every function
	# (cortex-a72, without VHE, was slower: docs/PERFORMANCE.md).
	qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
		-cpu "${NESTED_L1_CPU:-max,pauth=off}" -smp "${NESTED_L1_SMP:-2}" -m 1G \
		-nographic -no-reboot -monitor unix:"$monitor",server=on,wait=off \
		-kernel "$kernel" -initrd "$work/L1.img" \
		-append "console=ttyAMA0 quiet panic=-1" </dev/null >"$log" 2>&1 &
	qemu=$!
	tail -f --pid=$qemu "$log" &
	copier=$!
	wedged=""
	silent=0 last=-1 checks=0 progress_at=$(date +%s)
	while kill -0 $qemu 2>/dev/null; do
		sleep 5
		now=$(date +%s)
		size=$(stat -c %s "$log")
		if [ "$size" = "$last" ]; then silent=$((silent + 5)); else silent=0 last=$size; fi
		grep -q "L1 /init at" "$log" || silent=0 # L1's kernel boots quietly
		n=$(grep -c "^\(begin\|PASS\|FAIL\) " "$log")
		[ "$n" != "$checks" ] && checks=$n progress_at=$now
		if [ $silent -ge "$IDLE" ]; then
			wedged="its console silent for $silent s"
		elif [ $((now - progress_at)) -ge "$STUCK" ]; then
			wedged="no check ended for $((now - progress_at)) s"
		elif [ "$(elapsed)" -ge "$TIMEOUT" ]; then
			wedged="the rig's $TIMEOUT s timeout"
		fi
		if [ -n "$wedged" ]; then
			# L1's kernel runs with KASLR: its PCs compare only within one boot.
			for i in 1 2 3; do
				monitor "info registers -a" | tr -d '\r' |
					sed -n 's/^ *PC=\([0-9a-f]*\).*/nested arm64: L1 vCPU at PC \1/p'
			done >>"$log" 2>&1
			kill $qemu
			break
		fi
	done
	wait $qemu
	sleep 0.2 # tail's last lines
	kill $copier 2>/dev/null
	wait $copier
	# L1 can also end without its summary (its /init died: the kernel panics).
	grep -q "^[0-9]* passed, [0-9]* failed" "$log" || wedged=${wedged:-"it ended without a summary"}
}

set +e
attempt=1
while :; do
	log=$work/console.$attempt.log
	boot_l1
	[ -z "$wedged" ] && break
	running=$(sed -n 's/^begin \(.*\)\r*$/\1/p' "$log" | tail -n 1)
	echo "nested arm64: L1 stopped after $(elapsed) s in '${running:-its boot}': $wedged"
	if [ "$RETRIES" -gt 0 ] && ! grep -q "^FAIL " "$log" && [ "$(elapsed)" -lt "$TIMEOUT" ]; then
		RETRIES=$((RETRIES - 1)) attempt=$((attempt + 1))
		echo "nested arm64: retrying every check on a fresh L1"
		continue
	fi
	passed=$(grep -c "^PASS " "$log")
	failed=$(($(grep -c "^FAIL " "$log") + 1))
	printf 'FAIL l1-alive: L1 stopped in %s\n%d passed, %d failed\n' \
		"'${running:-its boot}'" "$passed" "$failed"
	exit 1
done
set -e
echo "nested arm64: L1 ran, the rig took $(elapsed) s"
grep -q "^[0-9]* passed, 0 failed" "$log"
