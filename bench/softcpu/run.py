#!/usr/bin/python3
"""Speed of the software CPU: MIPS on the benchmark guests under minivm's
soft engine (its JIT, and the interpreter: --jit off) and under QEMU's TCG,
measured in the same run; the ratio is the JIT's to TCG's.

    bench/softcpu/run.py BUILD_DIR [--runs N] [--cpu-time] [--guest NAME]...

Each guest runs its loop twice, with a small and a large iteration count
(patched into the binary at offset 8); MIPS = extra instructions / extra
time, so process start-up and the guest's mode switches cancel out.  The
guest prints the instructions its loop executed, which the figure uses.
Medians of N runs (default 3).  --cpu-time measures the CPU time the
emulator's processes used (user + system, all threads) instead of elapsed
time: steadier on a machine busy with other work.  QEMU: the pc machine with a 64 KiB BIOS of
HLT bytes whose reset vector jumps to 0000:0000, the guest loaded at 0,
isa-debugcon on port 0xf1 and isa-debug-exit on 0xf4 (the guest writes it
when done).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flatguest import jmp0_bios, patched, qemu_flat_cmd  # noqa: E402

GUESTS = {  # name: (small, large) iteration counts for minivm; QEMU runs QEMU_SCALE times more
    "intloop": (1_000_000, 10_000_000),
    "memcpy": (2_000_000, 20_000_000),
    "checksum": (2_000_000, 20_000_000),
    "x87": (500_000, 5_000_000),
    "ssefp": (1_000_000, 10_000_000),
    "sse4": (1_000_000, 10_000_000),
    "strscan": (2_000_000, 20_000_000),
}
QEMU_SCALE = 10  # QEMU is faster: longer runs keep its start-up noise small


def last_number(text):
    numbers = [line.strip() for line in text.splitlines() if line.strip().isdigit()]
    if not numbers:
        raise RuntimeError(f"guest printed no instruction count: {text!r}")
    return int(numbers[-1])


class Clock:
    """Elapsed time, or with cpu=True the CPU time of waited-for children."""

    def __init__(self, cpu):
        self.cpu = cpu

    def now(self):
        if not self.cpu:
            return time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime


CLOCK = Clock(cpu=False)


def run_minivm(build, guest, jit):
    cmd = [os.path.join(build, "bin", "launcher"), "run", "-accel", "soft", "--flat", guest, "--debugcon", "0xf1",
           "--jit", "on" if jit else "off"]
    start = CLOCK.now()
    out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    elapsed = CLOCK.now() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr}")
    return last_number(out.stdout), elapsed


# QEMU's default CPU model (qemu64) has no SSSE3/SSE4: name the features the guest uses.
QEMU_CPU = {"sse4": "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt"}


def run_qemu(bios, guest, tmp, name):
    log = os.path.join(tmp, "debugcon.txt")
    if os.path.exists(log):
        os.remove(log)
    cmd = qemu_flat_cmd(bios, guest, "tcg") + [
        "-device", "isa-debugcon,iobase=0xf1,chardev=d", "-chardev", f"file,id=d,path={log}"]
    if name in QEMU_CPU:
        cmd += ["-cpu", QEMU_CPU[name]]
    start = CLOCK.now()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
    elapsed = CLOCK.now() - start
    return last_number(open(log).read()), elapsed


def mips(runner, small, large, runs):
    rates = []
    for _ in range(runs):
        n1, t1 = runner(small)
        n2, t2 = runner(large)
        rates.append((n2 - n1) / (t2 - t1) / 1e6)
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu-time", action="store_true", help="measure CPU time instead of elapsed time")
    parser.add_argument("--guest", action="append", choices=sorted(GUESTS), help="only these guests (repeatable)")
    args = parser.parse_args()
    CLOCK.cpu = args.cpu_time
    qemu = shutil.which("qemu-system-x86_64")
    with tempfile.TemporaryDirectory() as tmp:
        bios = jmp0_bios(tmp)
        print(f"{'guest':10} {'minivm JIT':>12} {'interpreter':>12} {'QEMU TCG':>12} {'ratio':>7}")
        for name, (small, large) in GUESTS.items():
            if args.guest and name not in args.guest:
                continue
            src = os.path.join(args.build, "bench", "softcpu", f"{name}.bin")
            pick = {n: patched(src, 8, "<Q", n, tmp) for n in (small, large, small * QEMU_SCALE, large * QEMU_SCALE)}
            ours = mips(lambda n: run_minivm(args.build, pick[n], True), small, large, args.runs)
            interp = mips(lambda n: run_minivm(args.build, pick[n], False), small, large, args.runs)
            if qemu:
                theirs = mips(lambda n: run_qemu(bios, pick[n], tmp, name), small * QEMU_SCALE,
                              large * QEMU_SCALE, args.runs)
                print(f"{name:10} {ours:7.0f} MIPS {interp:7.0f} MIPS {theirs:7.0f} MIPS {ours / theirs:7.2f}")
            else:
                print(f"{name:10} {ours:7.0f} MIPS {interp:7.0f} MIPS {'(no qemu-system-x86_64)':>20}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
