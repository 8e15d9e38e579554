#!/usr/bin/python3
"""minivm -accel kvm beside QEMU -accel kvm, on a real KVM nested in QEMU's
software emulation of AMD SVM (our hosts' own /dev/kvm is PVM).

    bench/kvm/run.py BUILD_DIR [--runs N]

Runs the nested rig's ratio run (tests/nested/x86/run.sh BUILD_DIR --bench
N; its l1-init describes each measurement): inside one L1, both VMMs boot
the default guest with the same devices (ttyS0, a virtio console, virtio-net
on libslirp with a forward), N times each, to "minivm: init ready" on L1's
clock with the kernel's log on ttyS0 and with "quiet", each boot split into
phases ({launch to kernel clock}, {kernel to /init}, {/init to marker}: the
guest's dmesg and uptime placed on L1's clock); then N rounds, per
VMM, of output to ttyS0 and hvc0 (the guest's devwrite, guest time) and of
4 MiB from L1 into the guest through the forward (L1's clock).  Prints the
rig's lines, then medians and the ratios minivm/QEMU: for boot times below
1.0 means minivm is faster, for throughput above 1.0 does.  Everything in
the guest runs at the speed of the emulated L1 (about 10x a real host's
seconds): the ratios are the figures.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

LINE = re.compile(r"bench: (minivm|qemu)-kvm (\[[^]]*\]|\([^)]*\)|\{[^}]*\}) ([0-9.]+)( KB/s)?$")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", help="build directory (scripts/build.sh)")
    ap.add_argument("--runs", type=int, default=3, help="boots and transfer rounds per VMM (3)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    rig = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "nested", "x86", "run.sh")
    proc = subprocess.Popen(["sh", rig, args.build, "--bench", str(args.runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    results = {}  # (what, vmm) -> [values]
    units = {}
    for line in proc.stdout:
        sys.stdout.write(line)
        m = LINE.search(line.rstrip())
        if m:
            vmm, what, value, unit = m.groups()
            results.setdefault((what, vmm), []).append(float(value))
            units[what] = "KB/s" if unit else "s"
    status = proc.wait()
    print("\n%-26s %12s %12s %5s %7s" % ("medians", "minivm kvm", "QEMU kvm", "unit", "ratio"))
    for what in sorted(units, key=lambda w: (units[w], w)):
        mine, theirs = results.get((what, "minivm")), results.get((what, "qemu"))
        if not mine or not theirs:
            print("%-26s %12s %12s %5s %7s" % (what, "%d runs" % len(mine or []), "%d runs" % len(theirs or []),
                                                units[what], "-"))
            continue
        a, b = statistics.median(mine), statistics.median(theirs)
        print("%-26s %12.2f %12.2f %5s %7.2f" % (what, a, b, units[what], a / b if b else float("inf")))
    if status:
        print("bench/kvm: the rig failed (status %d): some boot or transfer did not finish" % status)
    return status


if __name__ == "__main__":
    sys.exit(main())
