#!/bin/sh
# Cross-builds every minivm process for Windows with MinGW-w64, checks that
# the .exes need only DLLs every Windows has, runs the unit tests under Wine,
# and smoke-tests the real processes under Wine.
#   scripts/test-windows.sh [BUILD_DIR]        (default: build-mingw)
# Exits non-zero on any failure; the last lines are ctest's summary.
set -eu

cd "$(dirname "$0")/.."
BUILD=${1:-build-mingw}

fail() {
	echo "test-windows: $*" >&2
	exit 1
}

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake
cmake --build "$BUILD"
BIN=$BUILD/bin
BUILD=$(cd "$BUILD" && pwd)

# ---- only system DLLs: an .exe that needs libwinpthread-1.dll & co. does not
# start on a clean Windows.  (-static in the top-level CMakeLists sees to it.)
# glib (in dev-net.exe) adds ole32 and shell32, libslirp iphlpapi.
SYSTEM_DLLS="KERNEL32.dll msvcrt.dll WS2_32.dll ADVAPI32.dll USER32.dll bcrypt.dll MSWSOCK.dll
	IPHLPAPI.DLL ole32.dll SHELL32.dll"
for exe in launcher vmm-core dev-serial dev-net; do
	[ -f "$BIN/$exe.exe" ] || fail "$exe.exe was not built (the Windows set is launcher, vmm-core, dev-serial, dev-net)"
done
exes=$(find "$BIN" -maxdepth 1 -name '*.exe' | sort)
for exe in $exes; do
	for dll in $(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^.*DLL Name: //p'); do
		ok=no
		for sys in $SYSTEM_DLLS; do
			# DLL names are case-insensitive on Windows.
			[ "$(echo "$dll" | tr A-Z a-z)" = "$(echo "$sys" | tr A-Z a-z)" ] && ok=yes
		done
		[ $ok = yes ] || fail "$(basename "$exe") imports $dll, which is not a Windows system DLL"
	done
done
echo "test-windows: every .exe imports only system DLLs"

# ---- Wine: one private prefix per run.  A persistent server, and Wine's
# background processes (services.exe...) started by wineboot before ctest:
# started by the first test instead, they would hold ctest's output pipe and
# ctest would wait ~10 min for them.
export WINEPREFIX="$BUILD/wine-prefix" WINEDEBUG=-all
rm -rf "$WINEPREFIX"
mkdir -p "$WINEPREFIX"
wineserver -p
trap 'wineserver -k 2>/dev/null || true' EXIT
wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed"

# ---- smoke tests of the real processes
out=$(wine "$BIN/launcher.exe" --version 2>&1) || fail "launcher.exe --version failed: $out"
echo "test-windows: launcher.exe --version: $out"

# No Windows Hypervisor Platform under Wine (until the stand-in is put in
# system32 below): vmm-core must say so in one line naming the DLL and what
# to do, and `auto` must fall back to the software CPU, saying so.
[ -f "$BIN/vmm-core.exe" ] || fail "vmm-core.exe was not built"
set +e
out=$(wine "$BIN/vmm-core.exe" --engine whpx --memory 16777216 --cpus 1 --flat NUL 2>&1)
rc=$?
set -e
lines=$(printf '%s\n' "$out" | grep -c .)
if [ $rc -eq 0 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$out" | grep -q 'WinHvPlatform.dll' ||
	! printf '%s' "$out" | grep -q 'Windows Hypervisor Platform' ||
	! printf '%s' "$out" | grep -q -- '-accel soft'; then
	fail "vmm-core.exe --engine whpx should fail with one line naming WinHvPlatform.dll, the feature and -accel soft; got status $rc: $out"
fi
echo "test-windows: vmm-core.exe --engine whpx: $out"

# The test guests, assembled with the host's gcc as tests/guests does on Linux.
for name in s001 outs16 uart64 mmio64 level64 badinput64 triple tlbout64; do
	gcc -c -o "$BUILD/$name.o" "tests/guests/$name.S"
	gcc -nostdlib -static -no-pie -Wl,-Ttext=0 -Wl,--build-id=none -o "$BUILD/$name.elf" "$BUILD/$name.o"
	objcopy -O binary -j .text "$BUILD/$name.elf" "$BUILD/$name.bin"
done

set +e
out=$(timeout 60 wine "$BIN/launcher.exe" check 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | grep -q '^engine whpx: not available: .*WinHvPlatform.dll' &&
	[ "$(printf '%s\n' "$out" | grep -c '^  s001: ok')" -eq 1 ] && [ $rc -eq 0 ] ||
	fail "launcher.exe check without WHP: status $rc, output: $out"
# The soft engine's JIT maps its code cache (a section mapped twice) here.
printf '%s\n' "$out" | grep -q '^  JIT: yes, the default' ||
	fail "launcher.exe check: the soft engine has no JIT under Wine: $out"
echo "test-windows: launcher.exe check without WHP says why, runs s001 on soft, the JIT maps"

set +e
err=$(timeout 60 wine "$BIN/launcher.exe" run --flat "$BUILD/s001.bin" --debugcon 0xf1 2>&1 >/dev/null </dev/null)
rc=$?
set -e
printf '%s' "$err" | grep -q 'engine auto: .*WinHvPlatform.dll.*using the soft engine' && [ $rc -eq 0 ] ||
	fail "engine auto without WHP should fall back to soft in one line; status $rc: $err"
echo "test-windows: engine auto without WHP: $err"

# The s001 program through vmm-core.exe (software CPU) -> named pipe ->
# dev-serial.exe: the guest's debug port output must come out as "Helo".
url="ipc://minivm-smoke-$$-serial"
wine "$BIN/vmm-core.exe" --engine soft --memory 16777216 --cpus 1 --flat "$BUILD/s001.bin" \
	--device "serial=$url" &
core=$!
set +e
out=$(timeout 60 wine "$BIN/dev-serial.exe" --connect "$url" --debugcon 0xf1 --stdio off </dev/null)
serial_rc=$?
wait $core
core_rc=$?
set -e
[ "$out" = "Helo" ] && [ $serial_rc -eq 0 ] && [ $core_rc -eq 0 ] ||
	fail "s001 under Wine: vmm-core status $core_rc, dev-serial status $serial_rc, output '$out'"
echo "test-windows: s001 under Wine printed Helo"

# The same through the real launcher.exe, which starts and supervises both.
set +e
out=$(timeout 60 wine "$BIN/launcher.exe" run --flat "$BUILD/s001.bin" -accel soft --debugcon 0xf1 </dev/null)
rc=$?
set -e
[ "$out" = "Helo" ] && [ $rc -eq 0 ] ||
	fail "launcher.exe run --flat s001.bin under Wine: status $rc, output '$out'"
echo "test-windows: launcher.exe ran s001 under Wine and printed Helo"

# The release (scripts/package-windows.sh): the folder and its zip hold
# the four .exes, README-windows.txt, minivm.conf and the default guest,
# built for Windows exactly as for Linux (guest/build-guest.sh, cached debs).
release=$(sh scripts/package-windows.sh "$BUILD" | tail -1) || fail "packaging the release failed"
python3 - "$release" <<'EOF' || fail "the release zip lacks files"
import sys, zipfile
names = {n.split("/", 1)[-1] for n in zipfile.ZipFile(sys.argv[1]).namelist()}
want = {"launcher.exe", "vmm-core.exe", "dev-serial.exe", "dev-net.exe", "README-windows.txt",
        "minivm.conf", "bzImage", "initrd.img"}
sys.exit(f"missing: {sorted(want - names)}" if want - names else None)
EOF
echo "test-windows: release $(basename "$release")"

# Issues 4, 10 and 11 under Wine, one boot of the release's minivm.conf:
# Debian's kernel on the software CPU's JIT to the busybox shell with the network on
# (dev-net.exe): the DHCP lease, a hostfwd transfer from 127.0.0.1 into the
# guest and one back through 10.0.2.2, each with the same SHA-256, then
# `poweroff` ends launcher.exe with 0 (scripts/wine-guest-test.py).
python3 scripts/wine-guest-test.py "${release%.zip}" ||
	fail "Linux under Wine: the shell, the network, poweroff or the JIT failed"

# ---- the WHP engine under Wine: the stand-in WinHvPlatform.dll
# (tests/whp-standin, the soft CPU behind Microsoft's documented API) in the
# prefix's system32, where LOAD_LIBRARY_SEARCH_SYSTEM32 finds it.
cp "$BUILD/whp-standin/WinHvPlatform.dll" "$WINEPREFIX/drive_c/windows/system32/"

set +e
out=$(timeout 60 wine "$BIN/launcher.exe" check 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | grep -q '^engine whpx: available' &&
	printf '%s\n' "$out" | grep -q '^  hypervisor present: yes' &&
	[ "$(printf '%s\n' "$out" | grep -c '^  s001: ok')" -eq 2 ] && [ $rc -eq 0 ] ||
	fail "launcher.exe check with the WHP stand-in: status $rc, output: $out"
echo "test-windows: launcher.exe check with the WHP stand-in:"
printf '%s\n' "$out" | sed 's/^/    /'

# A flat guest: launcher.exe's status, stdout and stderr.
run_flat() { # ENGINE GUEST FLAT-MODE [launcher flags]
	engine=$1 name=$2 mode=$3
	shift 3
	set +e
	flat_out=$(timeout 60 wine "$BIN/launcher.exe" run --flat "$BUILD/$name.bin" --flat-mode "$mode" \
		-accel "$engine" "$@" 2>"$BUILD/flat.err" </dev/null)
	flat_rc=$?
	set -e
	flat_err=$(cat "$BUILD/flat.err")
}
expect_whpx() { # GUEST FLAT-MODE EXPECTED-STDOUT [launcher flags]
	name=$1 mode=$2 want=$3
	shift 3
	run_flat whpx "$name" "$mode" "$@"
	[ "$flat_out" = "$want" ] && [ $flat_rc -eq 0 ] ||
		fail "$name on whpx: status $flat_rc, output '$flat_out', stderr: $flat_err"
	echo "test-windows: $name on whpx: ok"
}
expect_whpx s001 real Helo --debugcon 0xf1
expect_whpx outs16 real Helo --debugcon 0xf1 # string I/O, emulated by the engine
# Whether WHP exits on HLT while it emulates the LAPIC is not documented:
# with the stand-in suspending the VP silently, the engine's halt watcher
# must still end the guest.
export WHP_STANDIN_HALT_EXITS=0
expect_whpx s001 real Helo --debugcon 0xf1
unset WHP_STANDIN_HALT_EXITS
# The hypervisor missing, and a partition refused: one line each.
for failure in no-hypervisor create-partition; do
	export WHP_STANDIN_FAIL=$failure
	run_flat whpx s001 real --debugcon 0xf1
	unset WHP_STANDIN_FAIL
	case $failure in
	no-hypervisor) want='no hypervisor is running: enable virtualization' ;;
	create-partition) want='refused to create a partition (HRESULT 0x80370303)' ;;
	esac
	[ $flat_rc -ne 0 ] && [ "$(printf '%s\n' "$flat_err" | grep -c 'engine whpx')" -eq 1 ] &&
		printf '%s' "$flat_err" | grep -q "$want" ||
		fail "whpx with $failure should fail with one line saying '$want'; status $flat_rc: $flat_err"
	echo "test-windows: whpx with $failure: $flat_err"
done
expect_whpx uart64 long "Hello from long mode via the 16550"
expect_whpx tlbout64 long Helo --debugcon 0xf1 # an exit's instruction read through the page tables
expect_whpx level64 long "level irq: 5 deliveries"
# An MSR nobody has: #GP in the guest, as on the other engines.
expect_whpx badinput64 long "$(printf 'rdmsr: #GP\nwrmsr: #GP\nirq to APIC 127: raised')"
printf '[vm]\nflat = %s/mmio64.bin\nflat-mode = long\nengine = whpx\n[serial]\nmmio-uart = 0xd0000000\n' \
	"$BUILD" >"$BUILD/mmio64.conf"
set +e
out=$(timeout 60 wine "$BIN/launcher.exe" run "$BUILD/mmio64.conf" 2>&1 </dev/null)
rc=$?
set -e
printf '%s\n' "$out" | grep -q '^Hello from the MMIO UART' &&
	printf '%s\n' "$out" | grep -q 'unowned mmio read: ffffffff' && [ $rc -eq 0 ] ||
	fail "mmio64 on whpx: status $rc, output: $out"
echo "test-windows: mmio64 on whpx: ok"
run_flat whpx triple real
[ $flat_rc -eq 2 ] && printf '%s' "$flat_err" | grep -q 'triple fault.*RIP' ||
	fail "triple on whpx should end with status 2 and a triple-fault line with RIP; status $flat_rc: $flat_err"
echo "test-windows: triple on whpx: $flat_err"
run_flat auto s001 real --debugcon 0xf1
printf '%s' "$flat_err" | grep -q 'engine auto: using the whpx engine' && [ "$flat_out" = Helo ] ||
	fail "engine auto with WHP present should pick whpx and say so: output '$flat_out', stderr: $flat_err"
echo "test-windows: engine auto with WHP: $flat_err"

# The same guest on the WHP engine, network included.
python3 scripts/wine-guest-test.py "${release%.zip}" whpx ||
	fail "Linux under Wine on whpx: the shell, the network or poweroff failed"

# ---- unit tests under Wine (CMAKE_CROSSCOMPILING_EMULATOR runs each .exe
# with wine).
ctest --test-dir "$BUILD" --output-on-failure --timeout 120
