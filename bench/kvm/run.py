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
1.0 means minivm is faster, for throughput above 1.0 does.  The run is
made of parts (a pair of boots, minivm's and QEMU's back to back; an io
round of both): when L1 dies under the emulation (it does, now and then),
the rig boots a fresh one that goes on from the part it lost, and the
values that part had printed are dropped here; so are a pair's when a
guest's kernel died in it (both VMMs' guests do, now and then, in this
L1) and the pair is measured again.  "pairs" is the median of
the ratios within each part, each measured in one L1.  Everything in
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
PART_ENDS = re.compile(r"bench: part [0-9]+ of [0-9]+ (ok|FAILED)")
# A part begun again, its values so far dropped: in a fresh L1, or after
# a guest's kernel died in this one (l1-init's bench_pair).
PART_AGAIN = re.compile(r"nested: a fresh L1 resumes the bench|bench: part [0-9]+ again: ")


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
    pair_ratios = {}  # what -> [minivm/QEMU within one part]
    units = {}
    part = []  # (what, vmm, value) of the part running
    dropped = 0
    for line in proc.stdout:
        sys.stdout.write(line)
        m = LINE.search(line.rstrip())
        if m:
            vmm, what, value, unit = m.groups()
            part.append((what, vmm, float(value)))
            units[what] = "KB/s" if unit else "s"
        elif PART_ENDS.search(line):
            mine, theirs = {}, {}
            for what, vmm, value in part:
                results.setdefault((what, vmm), []).append(value)
                (mine if vmm == "minivm" else theirs).setdefault(what, []).append(value)
            for what in mine.keys() & theirs.keys():
                b = statistics.median(theirs[what])
                if b:
                    pair_ratios.setdefault(what, []).append(statistics.median(mine[what]) / b)
            part = []
        elif PART_AGAIN.search(line):
            dropped += len(part)
            part = []
    status = proc.wait()
    dropped += len(part)
    print("\n%-26s %12s %12s %5s %7s %13s" % ("medians", "minivm kvm", "QEMU kvm", "unit", "ratio", "pairs"))
    for what in sorted(units, key=lambda w: (units[w], w)):
        mine, theirs = results.get((what, "minivm")), results.get((what, "qemu"))
        if not mine or not theirs:
            print("%-26s %12s %12s %5s %7s" % (what, "%d runs" % len(mine or []), "%d runs" % len(theirs or []),
                                                units[what], "-"))
            continue
        a, b = statistics.median(mine), statistics.median(theirs)
        pairs = pair_ratios.get(what, [])
        print("%-26s %12.2f %12.2f %5s %7.2f %13s" % (what, a, b, units[what], a / b if b else float("inf"),
                                                     "%.2f of %d" % (statistics.median(pairs), len(pairs))
                                                     if pairs else "-"))
    if dropped:
        print("bench/kvm: %d values of parts begun again left out" % dropped)
    if status:
        print("bench/kvm: the rig failed (status %d): some boot or transfer did not finish" % status)
    return status


if __name__ == "__main__":
    sys.exit(main())
