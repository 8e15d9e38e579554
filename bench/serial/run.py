#!/usr/bin/python3
"""ttyS0 output throughput: the flood guest prints COUNT bytes through the
16550 (polling LSR before each byte, as Linux's console does) under minivm
and under QEMU, side by side in one run, and prints bytes/s and the ratios.

    bench/serial/run.py BUILD_DIR [--runs N] [--kvm-bytes N] [--soft-bytes N]

Pairs compared: minivm -accel kvm vs qemu -accel kvm (the same hardware
exits, so this compares the VMMs' I/O paths: minivm forwards every access to
the dev-serial process) and minivm -accel soft vs qemu -accel tcg.  Throughput = extra bytes / extra time
between a small and a large COUNT, so start-up cancels out.  Medians of N
runs.  Output goes to a file in both cases and its size is checked.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flatguest import jmp0_bios, patched, qemu_flat_cmd  # noqa: E402


def timed(cmd, out_path, ok_codes):
    """Run cmd with stdout to out_path; return the wall time."""
    with open(out_path, "wb") as out:
        start = time.monotonic()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.PIPE, timeout=1800)
        elapsed = time.monotonic() - start
    if r.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode()}")
    return elapsed


def minivm(build, accel):
    launcher = os.path.join(build, "bin", "launcher")

    def run(guest, count, tmp):
        out = os.path.join(tmp, "minivm.out")
        elapsed = timed([launcher, "run", "-accel", accel, "--flat", guest, "-m", "16M"],
                        out, {0})
        size = os.path.getsize(out)
        if size != count:
            raise RuntimeError(f"minivm printed {size} bytes, expected {count}")
        return elapsed
    return run


def qemu(accel, tmp):
    bios = jmp0_bios(tmp)

    def run(guest, count, tmp_dir):
        out = os.path.join(tmp_dir, "qemu.out")
        cmd = qemu_flat_cmd(bios, guest, accel, "16M") + [
            "-chardev", f"file,id=s,path={out}", "-serial", "chardev:s"]
        # Serial output goes to the chardev file, so stdout is discarded.
        elapsed = timed(cmd, os.devnull, {1})
        size = os.path.getsize(out)
        if size != count:
            raise RuntimeError(f"qemu printed {size} bytes, expected {count}")
        return elapsed
    return run


def throughput(runner, src, small, large, runs, tmp):
    rates = []
    g_small, g_large = (patched(src, 8, "<I", n, tmp) for n in (small, large))
    for _ in range(runs):
        t_small = runner(g_small, small, tmp)
        t_large = runner(g_large, large, tmp)
        if t_large <= t_small:
            raise RuntimeError(f"{large} bytes took no longer than {small}: "
                               "raise --kvm-bytes or --soft-bytes until start-up noise is small")
        rates.append((large - small) / (t_large - t_small))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kvm-bytes", type=int, default=65536,
                    help="bytes printed in the kvm pair (every access is a slow PVM exit here)")
    ap.add_argument("--soft-bytes", type=int, default=4 << 20,
                    help="bytes printed in the soft/tcg pair")
    args = ap.parse_args()
    src = os.path.join(args.build, "bench", "serial", "flood.bin")
    pairs = [("kvm", "kvm", args.kvm_bytes), ("soft", "tcg", args.soft_bytes)]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for ours, theirs, large in pairs:
            small = large // 8
            try:
                a = throughput(minivm(args.build, ours), src, small, large, args.runs, tmp)
                b = throughput(qemu(theirs, tmp), src, small, large, args.runs, tmp)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"serial {ours} vs qemu {theirs}: FAILED: {e}")
                failed = True
                continue
            print(f"ttyS0 output, minivm -accel {ours}: {a / 1e3:9.1f} KB/s   "
                  f"qemu -accel {theirs}: {b / 1e3:9.1f} KB/s   ratio minivm/qemu: {a / b:.2f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
