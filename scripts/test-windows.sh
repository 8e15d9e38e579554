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
SYSTEM_DLLS="KERNEL32.dll msvcrt.dll WS2_32.dll ADVAPI32.dll USER32.dll bcrypt.dll MSWSOCK.dll"
exes=$(find "$BIN" -maxdepth 1 -name '*.exe' | sort)
[ -n "$exes" ] || fail "no .exe in $BIN"
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
if [ -f "$BIN/launcher.exe" ]; then
	out=$(wine "$BIN/launcher.exe" --version 2>&1) || fail "launcher.exe --version failed: $out"
	echo "test-windows: launcher.exe --version: $out"
else
	fail "launcher.exe was not built"
fi

# No Windows Hypervisor Platform under Wine: vmm-core must say so in one
# line naming the DLL and what to do.
[ -f "$BIN/vmm-core.exe" ] || fail "vmm-core.exe was not built"
set +e
out=$(wine "$BIN/vmm-core.exe" --engine whpx --memory 16777216 --cpus 1 --flat NUL 2>&1)
rc=$?
set -e
lines=$(printf '%s\n' "$out" | grep -c .)
if [ $rc -eq 0 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$out" | grep -q 'WinHvPlatform.dll' ||
	! printf '%s' "$out" | grep -q -- '-accel soft'; then
	fail "vmm-core.exe --engine whpx should fail with one line naming WinHvPlatform.dll and -accel soft; got status $rc: $out"
fi
echo "test-windows: vmm-core.exe --engine whpx: $out"

# The s001 program through vmm-core.exe (software CPU) -> named pipe ->
# dev-serial.exe: the guest's debug port output must come out as "Helo".
# Assembled with the host's gcc, as tests/guests does on Linux.
gcc -c -o "$BUILD/s001.o" tests/guests/s001.S
gcc -nostdlib -static -no-pie -Wl,-Ttext=0 -Wl,--build-id=none -o "$BUILD/s001.elf" "$BUILD/s001.o"
objcopy -O binary -j .text "$BUILD/s001.elf" "$BUILD/s001.bin"
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

# Issue 4 under Wine: Debian's kernel on the software CPU to the busybox
# shell, `echo $((6*7))` prints 42, `poweroff` ends launcher.exe with 0.
# The guest is built for Windows exactly as for Linux (guest/build-guest.sh,
# cached debs).  Driven through pipes (Wine's console is not a tty): ash
# sends ESC[6n after its prompt, so "# " is matched unanchored.  About 12 s
# here with host-side decompression (liblzma), about 30 s without.
[ -f "$BUILD/guest/bzImage" ] && [ -f "$BUILD/guest/initrd.img" ] ||
	sh guest/build-guest.sh "$BUILD/guest" || fail "could not build the Linux guest"
(cd "$BUILD" && python3 - <<'EOF') || fail "Linux under Wine did not reach the shell and power off"
import os, selectors, subprocess, sys, time

TIMEOUT = 600  # seconds for the whole boot: generous for a loaded machine
cmd = ["wine", "bin/launcher.exe", "run", "-accel", "soft", "-m", "256M",
       "-kernel", "guest/bzImage", "-initrd", "guest/initrd.img", "-append", "console=ttyS0"]
start = time.monotonic()
vm = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, start_new_session=True)
os.set_blocking(vm.stdout.fileno(), False)
sel = selectors.DefaultSelector()
sel.register(vm.stdout, selectors.EVENT_READ)
# What to wait for, and what to type once it has arrived.
steps = [(b"minivm: init ready", None), (b"# ", b"echo $((6*7))\n"),
         (b"\n42\r", None), (b"# ", b"poweroff\n")]
seen, log = bytearray(), bytearray()
while steps:
    if time.monotonic() - start > TIMEOUT:
        os.killpg(vm.pid, 9)
        sys.exit(f"no {steps[0][0]!r} after {TIMEOUT} s; the output ends with:\n"
                 + log[-2000:].decode(errors="replace"))
    if not sel.select(1):
        continue
    data = os.read(vm.stdout.fileno(), 65536)
    if not data:
        sys.exit("launcher.exe exited before the shell ran the test; output ends with:\n"
                 + log[-2000:].decode(errors="replace"))
    seen += data
    log += data
    while steps and steps[0][0] in seen:
        want, reply = steps.pop(0)
        del seen[:seen.index(want) + len(want)]
        if want == b"minivm: init ready":
            print(f"test-windows: Linux under Wine: init ready {time.monotonic() - start:.1f} s after launch")
        if reply:
            vm.stdin.write(reply)
            vm.stdin.flush()
try:
    status = vm.wait(timeout=120)
except subprocess.TimeoutExpired:
    os.killpg(vm.pid, 9)
    sys.exit("launcher.exe did not exit after poweroff")
if status != 0:
    sys.exit(f"launcher.exe exited {status} after poweroff")
print(f"test-windows: Linux under Wine printed 42 and powered off, {time.monotonic() - start:.1f} s in all")
EOF

# ---- unit tests under Wine (CMAKE_CROSSCOMPILING_EMULATOR runs each .exe
# with wine).
ctest --test-dir "$BUILD" --output-on-failure --timeout 120
