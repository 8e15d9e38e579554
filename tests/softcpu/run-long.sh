#!/bin/sh
# Long differential run of the software CPU against the host CPU, over many
# seeds, on every core:
#   tests/softcpu/run-long.sh [--build DIR] [--minutes N] [--jobs J]
# Each job runs rounds of up to one minute with a fresh random seed until the
# time is up.  Every mismatch is printed with its seed, its case number and a
# one-line replay command (softcpu_difftest --seed S --from I --cases 1) and
# the regressions.c initializer to add it to the fixed set CI replays.
# Exits 1 if any round found a mismatch.
set -eu
build=build
minutes=30
jobs=$(nproc 2>/dev/null || echo 1)
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--minutes) minutes=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	*) echo "usage: $0 [--build DIR] [--minutes N] [--jobs J]" >&2; exit 2 ;;
	esac
done
bin="$build/bin/softcpu_difftest"
[ -x "$bin" ] || { echo "run-long: no $bin (build first)" >&2; exit 2; }
end=$(($(date +%s) + minutes * 60))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One job: rounds until the end time; a round's output is printed whole
# when it ends, so that jobs do not interleave lines.
job() {
	while :; do
		left=$((end - $(date +%s)))
		[ "$left" -gt 0 ] || break
		[ "$left" -lt 60 ] || left=60
		seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
		if "$bin" --seed "$seed" --seconds "$left" >"$tmp/$1.out" 2>&1; then
			grep '^difftest:' "$tmp/$1.out" | grep -v 'regression cases'
		else
			echo "run-long: MISMATCH with seed $seed:"
			cat "$tmp/$1.out"
			touch "$tmp/failed"
		fi
	done
}

i=0
while [ "$i" -lt "$jobs" ]; do
	job "$i" &
	i=$((i + 1))
done
wait
if [ -e "$tmp/failed" ]; then
	echo "run-long: mismatches found (above)"
	exit 1
fi
echo "run-long: no mismatch in $minutes min on $jobs jobs"
