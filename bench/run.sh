#!/bin/sh
# Every benchmark, minivm beside QEMU where there is a QEMU counterpart.
#   bench/run.sh [BUILD_DIR]   (default: build; run scripts/build.sh first)
# Figures and the commands behind them: docs/PERFORMANCE.md.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
echo "== ipc channel (vmm-core <-> device): round trip and posted writes"
"$build/bin/ipc_bench"
echo "== ttyS0 output throughput"
bench/serial/run.py "$build"
echo "== console with the Linux guest: ttyS0 and hvc0 output and input"
bench/console/run.py "$build"
echo "== software CPU speed (MIPS)"
bench/softcpu/run.py "$build"
echo "== Linux boot: launch -> init -> poweroff, peak RSS"
bench/boot/run.py "$build"
echo "== user-mode network (libslirp): iperf3 both ways, connections/s, ping"
bench/net/run.py "$build"
echo "== under KVM (nested in L1): boot, ttyS0/hvc0 output, network input"
bench/kvm/run.py "$build"
