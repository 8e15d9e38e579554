"""Helpers shared by the benchmarks that boot the default Linux guest
(BUILD_DIR/guest: Debian's kernel, the busybox initrd of guest/build-guest.sh)
under minivm and under QEMU's TCG with the same kernel, initrd, command line,
RAM size and one vCPU.  The serial/console wiring is left to each benchmark.
"""
import os

MEMORY = "256M"


def guest_files(build):
    """(bzImage, initrd) of BUILD_DIR/guest; exits with a message if missing."""
    guest = os.path.join(build, "guest")
    files = (os.path.join(guest, "bzImage"), os.path.join(guest, "initrd.img"))
    for path in files + (os.path.join(build, "bin", "launcher"),):
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing (build with -DMINIVM_GUEST=ON)")
    return files


def minivm_linux_cmd(build, append, accel="soft", launcher=None, initrd=None):
    """minivm's command line; its ttyS0 (and hvc0 output) is its stdio.
    initrd replaces the default guest's (a benchmark's own, e.g. bench/net's)."""
    kernel, default_initrd = guest_files(build)
    initrd = initrd or default_initrd
    return [launcher or os.path.join(build, "bin", "launcher"), "run", "-accel", accel,
            "-smp", "1", "-m", MEMORY, "-kernel", kernel, "-initrd", initrd,
            "-append", append]


def qemu_linux_cmd(build, append, machine="pc", initrd=None):
    """QEMU TCG's command line with no devices but the machine's own; add the
    serial/console wiring (see QEMU_SERIAL_STDIO).  initrd as for minivm's."""
    kernel, default_initrd = guest_files(build)
    initrd = initrd or default_initrd
    return ["qemu-system-x86_64", "-accel", "tcg", "-M", machine, "-smp", "1", "-m", MEMORY,
            "-kernel", kernel, "-initrd", initrd, "-append", append, "-nodefaults",
            "-no-user-config", "-display", "none", "-nic", "none"]


# ttyS0 on QEMU's stdin/stdout; signal=off: ^C is a byte for the guest.
QEMU_SERIAL_STDIO = ["-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"]


def children_of(pid):
    """Pids whose parent is pid (this kernel has no /proc/PID/task/*/children)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The field after "(comm)" is the state, then the parent's pid.
        if int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def descendants(pid):
    """pid and every process below it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children_of(p)
    return found


def cpu_seconds(pids):
    """User + system CPU time consumed so far by the live processes in pids."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / ticks
