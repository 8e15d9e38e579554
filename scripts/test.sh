#!/bin/bash
# Second README command (and CI's): install what is missing, build, and run
# every test: unit tests (cmocka) and end-to-end tests (pytest) through ctest,
# the dev-serial fuzz target for a bounded time, and the MinGW build with its
# unit tests under Wine.  Ends with one summary line over all suites.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }

passed=0 failed=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

# Adds a ctest run's counts ("N% tests passed, F tests failed out of T").
count_ctest() {
	local line t f
	line=$(grep -E 'tests? failed out of [0-9]+' "$log" | tail -1)
	if [ -z "$line" ]; then
		echo "test.sh: $1: ctest printed no summary (build or configure failed)"
		failed=$((failed + 1))
		return
	fi
	f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
	t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
	passed=$((passed + t - f)) failed=$((failed + f))
}

run_suite() { # name, command...
	local name=$1; shift
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	count_ctest "$name"
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

fuzz() {
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang \
		-DMINIVM_FUZZ=ON -DMINIVM_TESTS=OFF &&
		ninja -C build-fuzz fuzz_dev_serial fuzz_ipc_decode &&
		ctest --test-dir build-fuzz --output-on-failure -R fuzz
}

run_suite "Linux build: unit and end-to-end tests" linux
run_suite "dev-serial fuzzing" fuzz
run_suite "MinGW build under Wine" scripts/test-windows.sh

echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
