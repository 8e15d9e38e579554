#!/usr/bin/python3
"""Linux boot: launch -> shell -> poweroff, minivm -accel soft (its JIT, and
the interpreter alone: "minivm interp", --jit off) beside QEMU TCG (-M
microvm and the default pc machine), on the same kernel and initrd.

    bench/boot/run.py BUILD_DIR [--runs N] [--timeout S] [--guest-unxz-build DIR]

The guest is BUILD_DIR/guest (guest/build-guest.sh): Debian's kernel, a
busybox initrd whose /init writes the boot marker (port 0x3f0) and prints
"minivm: init ready".  Every VMM gets -m 256M, one vCPU, "console=ttyS0",
ttyS0 on its stdio through pipes, and no network device.  Measured per run:

  ready   launch -> "minivm: init ready" on the serial output (like for like)
  marker  minivm only: vmm-core's own launch -> boot-marker time
          (MINIVM_BOOT_TIME=1; "launch" is the launcher's start)
  kernel  the guest's printk clock at the ready line: what the kernel itself
          spent; ready - kernel is what passed before its clock started
          (QEMU: firmware and the bzImage's in-guest xz decompression;
          minivm unpacks the kernel on the host with liblzma, except the
          "minivm unxz" row)
  exit    launch -> the VMM exited after "poweroff" at the "# " prompt
  RSS     peak RSS of each process: the kernel's VmHWM (a high-water mark,
          so sampling it every 50 ms misses nothing but the last 50 ms)

Runs are interleaved (one of each VMM, then again) so machine load hits all
alike; medians and the ratios minivm/QEMU are printed.  A run that does not
reach the shell within --timeout is killed and counted as a hang (QEMU's
microvm under TCG sometimes hangs before its first kernel message); hangs
are retried up to --runs more times.

QEMU's microvm gets pit=on and, on its command line only, tsc_early_khz= the
host's TSC frequency (QEMU's TCG reads the host's TSC).  microvm has no HPET
and no ACPI PM timer, so the PIT is the kernel's only reference for the TSC,
and under TCG on a loaded host the PIT calibration fails ("Fast TSC
calibration failed", "Unable to calibrate against PIT", "Marking TSC
unstable due to could not calculate TSC khz"); the kernel then hangs before
its next message (every launch at load 10 on 2 CPUs, 2026-12-03).  Given the
frequency, it skips the calibration, a few ms of the pc machine's boot
(docs/PERFORMANCE.md, "Linux boot", has the details).
"""
import argparse
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from linuxguest import (QEMU_SERIAL_STDIO, children_of, guest_files,  # noqa: E402
                        minivm_linux_cmd, qemu_linux_cmd)

READY = b"minivm: init ready"
PROMPT = b"# "  # busybox ash sends ESC[6n after it: never anchor
PRINTK_TIME = re.compile(rb"\[ *(\d+\.\d+)\] ")
MARKER = re.compile(rb"boot marker: (\d+) ms after launch")
SAMPLE_S = 0.05
MiB = 1 << 20


class Hang(Exception):
    pass


def peak_rss(pid):
    """(name, VmHWM in bytes) of pid, or None once it has exited."""
    name, hwm = None, None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        return None
    return (name, hwm) if name and hwm else None


def boot_once(cmd, env, timeout):
    """Run one VMM: wait for the ready line and the prompt, type poweroff,
    wait for the exit.  Returns the figures of the run (seconds, bytes)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    out, err = bytearray(), bytearray()
    ready = kernel = None
    powered_off = False
    rss = {}  # pid -> (name, peak)
    next_sample = start
    try:
        while sel.get_map():
            now = time.monotonic()
            if now - start > timeout:
                lines = out.rstrip().split(b"\n")
                last = lines[-1].strip().decode(errors="replace")[:100] if out else "nothing"
                raise Hang(f"no {'exit' if ready else 'shell'} after {timeout:.0f} s; "
                           f"last output: {last}")
            if now >= next_sample:
                for pid in [proc.pid] + children_of(proc.pid):
                    sample = peak_rss(pid)
                    if sample:
                        rss[pid] = sample
                next_sample = now + SAMPLE_S
            for key, _ in sel.select(SAMPLE_S):
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                (out if key.fileobj is proc.stdout else err).extend(data)
            if ready is None and READY in out:
                ready = time.monotonic() - start
                head = out[:out.index(READY)]
                stamps = PRINTK_TIME.findall(head)
                kernel = float(stamps[-1]) if stamps else None
            if ready is not None and not powered_off and PROMPT in out[out.index(READY):]:
                proc.stdin.write(b"poweroff\n")
                proc.stdin.flush()
                powered_off = True
        status = proc.wait(timeout=max(1, timeout - (time.monotonic() - start)))
        exited = time.monotonic() - start
    except subprocess.TimeoutExpired:
        raise Hang(f"no exit within {timeout:.0f} s of launch") from None
    finally:
        # The VMM runs in its own session: a hang, an error or ^C here must
        # not leave it (and the launcher's children) running.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if status != 0 or not powered_off:
        raise RuntimeError(f"{cmd[0]} exited {status} (poweroff sent: {powered_off}): "
                           f"{err.decode(errors='replace').strip()[-500:]}")
    marker = MARKER.search(err)
    return {"ready": ready, "kernel": kernel, "exit": exited,
            "marker": int(marker.group(1)) / 1000 if marker else None,
            "rss": {name: peak for name, peak in rss.values()}}


def host_tsc_khz():
    """The host's TSC frequency: /proc/cpuinfo's "cpu MHz", which is it on
    hosts with a constant TSC (tsc: Detected ... MHz processor)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return round(float(line.split(":")[1]) * 1000)
    raise RuntimeError("no 'cpu MHz' in /proc/cpuinfo")


def vmms(build, guest_unxz_build):
    append = "console=ttyS0"
    microvm_append = f"{append} tsc_early_khz={host_tsc_khz()}"
    minivm_env = dict(os.environ, MINIVM_BOOT_TIME="1")
    unxz_launcher = (os.path.join(guest_unxz_build, "bin", "launcher")
                     if guest_unxz_build else None)
    return [
        ("minivm jit", minivm_linux_cmd(build, append) + ["--jit", "on"], minivm_env),
        ("minivm interp", minivm_linux_cmd(build, append) + ["--jit", "off"], minivm_env),
        ("qemu microvm", qemu_linux_cmd(build, microvm_append, "microvm,pit=on") + QEMU_SERIAL_STDIO,
         None),
        ("qemu pc", qemu_linux_cmd(build, append, "pc") + QEMU_SERIAL_STDIO, None),
    ] + ([("minivm unxz", minivm_linux_cmd(build, append, launcher=unxz_launcher),
           minivm_env)] if guest_unxz_build else [])


def median(runs, key):
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def fmt(seconds):
    return f"{seconds:7.2f} s" if seconds is not None else "      -  "


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds a run may take to reach the shell and exit")
    ap.add_argument("--guest-unxz-build", metavar="DIR",
                    help="also boot with DIR's launcher, built with "
                    "-DMINIVM_HOST_DECOMPRESS=OFF: the kernel's own xz decompressor "
                    "runs in the software CPU, as in a Windows build without liblzma")
    args = ap.parse_args()
    # Turn SIGTERM into an exit so the VMM being measured is killed too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    guest_files(args.build)

    machines = vmms(args.build, args.guest_unxz_build)
    results = {name: [] for name, _, _ in machines}
    hangs = {name: [] for name, _, _ in machines}
    broken = set()  # VMMs that failed other than by hanging: not run again
    for _ in range(2 * args.runs):
        for name, cmd, env in machines:
            if (name in broken or len(results[name]) >= args.runs
                    or len(hangs[name]) >= args.runs):
                continue
            try:
                results[name].append(boot_once(cmd, env, args.timeout))
            except Hang as e:
                hangs[name].append(str(e))
                print(f"{name}: hang: {e}", flush=True)
            except RuntimeError as e:
                print(f"{name}: FAILED: {e}", flush=True)
                broken.add(name)

    print(f"Linux boot, -m 256M, console=ttyS0, medians of {args.runs} runs "
          f"(kernel = the guest's printk clock at the ready line)")
    failed = bool(broken)
    print(f"{'':14} {'ready':>9} {'kernel':>9} {'marker':>9} {'exit':>9}  hangs  peak RSS")
    for name, _, _ in machines:
        runs = results[name]
        if not runs:
            print(f"{name:14} no successful run")
            failed = True
            continue
        names = sorted({n for r in runs for n in r["rss"]})
        rss = ", ".join(f"{n} {statistics.median(r['rss'].get(n, 0) for r in runs) / MiB:.0f} MiB"
                        for n in names)
        print(f"{name:14} {fmt(median(runs, 'ready'))} {fmt(median(runs, 'kernel'))} "
              f"{fmt(median(runs, 'marker'))} {fmt(median(runs, 'exit'))}  "
              f"{len(hangs[name])}/{len(runs) + len(hangs[name])}  {rss}")
    ours = results[machines[0][0]]
    for name, _, _ in machines[1:]:
        if ours and results[name] and name.startswith("qemu"):
            print(f"minivm / {name}: ready {median(ours, 'ready') / median(results[name], 'ready'):.2f}, "
                  f"exit {median(ours, 'exit') / median(results[name], 'exit'):.2f} "
                  "(time ratios: below 1 is faster than QEMU)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
