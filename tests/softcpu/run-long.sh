#!/bin/sh
# Longer differential run of the software CPU against the host CPU:
#   tests/softcpu/run-long.sh BUILD_DIR [MINUTES]
# Runs one-minute rounds with fresh seeds; stops at the first mismatch and
# prints the seed to replay it (softcpu_difftest --seed S).
set -eu
build=${1:?usage: run-long.sh BUILD_DIR [MINUTES]}
minutes=${2:-30}
bin="$build/bin/softcpu_difftest"
i=0
while [ "$i" -lt "$minutes" ]; do
	seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
	"$bin" --seconds 60 --seed "$seed" || { echo "run-long: mismatch with seed $seed"; exit 1; }
	i=$((i + 1))
done
