#!/bin/bash
# Second README command (and CI's): install what is missing, build, and run
# every test: unit tests (cmocka) and end-to-end tests (pytest) through ctest,
# the arm64 cross build with its unit tests and the nested arm64 KVM rig,
# the fuzz targets (dev-serial, the ipc decoder, virtio, dev-net) for a bounded time,
# and the MinGW build with its unit tests under Wine (the last two beside the
# first, on the second core).  Ends with one summary line over all suites.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }

passed=0 failed=0
logs=$(mktemp -d); trap 'rm -rf "$logs"' EXIT

# Adds a ctest run's counts ("N% tests passed, F tests failed out of T").
count_ctest() { # name, log
	local line t f
	line=$(grep -E 'tests? failed out of [0-9]+' "$2" | tail -1)
	if [ -z "$line" ]; then
		echo "test.sh: $1: ctest printed no summary (build or configure failed)"
		failed=$((failed + 1))
		return
	fi
	f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
	t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
	passed=$((passed + t - f)) failed=$((failed + f))
}

linux() {
	cmake -S . -B build -G Ninja -DMINIVM_TESTS=ON &&
		ninja -C build || return
	ctest --test-dir build --output-on-failure --timeout 900
	local rc=$?
	# The figures some tests print (the differential test's size), which
	# ctest keeps in its log when they pass.
	grep -h '^difftest:' build/Testing/Temporary/LastTest.log
	return $rc
}

# The arm64 cross build: its unit tests under qemu-user, then the nested rig
# (an arm64 Linux with KVM under qemu-system-aarch64 runs minivm: s003, then
# an arm64 Linux guest on 2 vCPUs with the network to its shell and
# poweroff; ≈ 1–2½ min, docs/PERFORMANCE.md).
arm64() {
	cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
		-DMINIVM_TESTS=ON &&
		ninja -C build-arm64 &&
		ctest --test-dir build-arm64 --output-on-failure --timeout 300
}

fuzz() {
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang \
		-DMINIVM_FUZZ=ON -DMINIVM_TESTS=OFF &&
		ninja -C build-fuzz fuzz_dev_serial fuzz_ipc_decode fuzz_virtio fuzz_dev_net &&
		ctest --test-dir build-fuzz --output-on-failure -R fuzz
}

# The Linux suite (guests on the software CPU, timing-sensitive terminals)
# runs in the foreground; the fuzzers and the MinGW build with its Wine tests
# share the second core at a lower priority, so CI takes the time of the
# longest suite rather than their sum.  Their output follows the Linux suite's.
(
	renice -n 10 -p $BASHPID >/dev/null # inherited by everything it starts
	fuzz > "$logs/fuzz" 2>&1
	scripts/test-windows.sh > "$logs/windows" 2>&1
) &
background=$!
# Async commands of a script ignore SIGINT: an interrupted run takes them along.
kill_tree() { local child; for child in $(pgrep -P "$1"); do kill_tree "$child"; done; kill "$1" 2>/dev/null; }
trap 'kill_tree $background; exit 130' INT TERM

echo "=== Linux build: unit and end-to-end tests"
linux 2>&1 | tee "$logs/linux"
count_ctest "Linux build" "$logs/linux"
echo "=== arm64 cross build: unit tests (qemu-user) and nested KVM"
arm64 2>&1 | tee "$logs/arm64"
count_ctest "arm64 cross build" "$logs/arm64"

wait $background
echo "=== fuzzing"
cat "$logs/fuzz"
count_ctest "fuzzing" "$logs/fuzz"
echo "=== MinGW build under Wine"
cat "$logs/windows"
count_ctest "MinGW build under Wine" "$logs/windows"

echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
