#!/usr/bin/python3
"""Console throughput with the default Linux guest: a guest program writing
to / reading from ttyS0 and hvc0, minivm -accel soft beside QEMU TCG (-M pc,
virtio-serial-pci + virtconsole) in one run, same kernel, initrd, command
line, -m 256M and one vCPU.

    bench/console/run.py BUILD_DIR [--runs N] [--mib N] [--hvc0-mib N]
                         [--paste-kib N] [--timeout S] [--only output|input]
                         [--device ttyS0|hvc0]

The guest runs one command at boot and powers off (guest/init's run mode:
the kernel command line "console=ttyS0 loglevel=1 panic=-1 -- run CMD ARGS").
loglevel=1 keeps kernel messages out of the payload; panic=-1 with
-no-reboot ends a VMM whose guest panicked (QEMU TCG on a loaded host
sometimes stops at "IO-APIC + timer doesn't work!"), and such a boot failure
is retried, up to --runs times per row.  The two VMMs take turns, one run
each per round.

  output  `devwrite DEV BYTES` writes a fixed pattern of 64-byte lines to the
          device opened once in raw mode.  The VMM's stdout (minivm: ttyS0
          and hvc0 both; QEMU: the device measured, the other one goes to a
          second file) is a regular file polled every 2 ms; the time is from
          the first pattern byte's arrival to the last's, and every byte is
          checked.
  input   `devread DEV BYTES` puts the device in raw mode, prints
          "devread: ready", reads BYTES and prints their count and CRC-32.
          After the ready line the host writes the paste (pattern lines) into
          the VMM's stdin pipe as fast as the VMM takes it and times ready ->
          result line; the CRC is checked.  minivm sends its terminal input to
          hvc0 with `-console hvc0`.

Figures: MB/s (10^6 bytes/s) per VMM, medians over --runs, the ratio
minivm/QEMU (above 1: minivm faster), the VMM's CPU use while the data
moved (CPU seconds of all its processes per second of transfer: 1.0 = one
core busy), MB per CPU second, and the rate the guest program itself
measured (devwrite: write start -> tcdrain; devread: first byte -> last).
minivm rows for hvc0 run only when `launcher --help` offers -console; until
then they print "minivm: hvc0 not available in this build".
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "guest", "tools"))
from devpattern import START as PATTERN_START, pattern  # noqa: E402
from linuxguest import (QEMU_SERIAL_STDIO, cpu_seconds, descendants,  # noqa: E402
                        guest_files, minivm_linux_cmd, qemu_linux_cmd)

MiB = 1 << 20
DEVICES = {"ttyS0": "/dev/ttyS0", "hvc0": "/dev/hvc0"}
READY = b"devread: ready\n"
INIT_READY = b"minivm: init ready\r\n"  # guest/init on ttyS0, right before the command
RESULT = re.compile(rb"devread: (\d+) bytes crc32 ([0-9a-f]{8}) in ([0-9.]+) s")
GUEST_TIME = re.compile(rb"devwrite: \d+ bytes in ([0-9.]+) s guest time")
RUN_EXIT = re.compile(rb"minivm: run exit (\d+)")


class Failed(Exception):
    pass


class BootFailed(Failed):
    """The VMM ended before the guest's command started (e.g. QEMU TCG on
    a loaded host: "IO-APIC + timer doesn't work!" and a panic): retried."""


def minivm_has_hvc0(build):
    launcher = os.path.join(build, "bin", "launcher")
    r = subprocess.run([launcher, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return b"-console" in r.stdout


def minivm_cmd(build, device, append, tmp):
    # Both devices' output is on stdout; -console picks the input's device.
    extra = ["-console", device] if device == "hvc0" else []
    return minivm_linux_cmd(build, append) + ["-no-reboot"] + extra


def qemu_cmd(build, device, append, tmp):
    """The device measured on stdio, the other one into a file."""
    other = os.path.join(tmp, "qemu-other-console.out")
    cmd = qemu_linux_cmd(build, append, "pc") + ["-no-reboot", "-device", "virtio-serial-pci"]
    if device == "ttyS0":
        return cmd + QEMU_SERIAL_STDIO + [
            "-chardev", f"file,id=hvc,path={other}", "-device", "virtconsole,chardev=hvc"]
    return cmd + [
        "-chardev", "stdio,id=hvc,signal=off", "-device", "virtconsole,chardev=hvc",
        "-chardev", f"file,id=ser,path={other}", "-serial", "chardev:ser"]


class VmmRun:
    """One VMM process whose stdout goes to a regular file that is polled
    every POLL_S, each new chunk's arrival timed; killed with its process
    group when done.  Not a pipe: QEMU's virtconsole drops output its
    chardev cannot take at once (hw/char/virtio-console.c never throttles a
    console port), so a pipe reader that falls behind by 64 KiB loses bytes;
    a file never refuses a write, for either VMM."""
    POLL_S = 0.002

    def __init__(self, cmd, timeout, tmp):
        self.deadline = time.monotonic() + timeout
        out_path, err_path = os.path.join(tmp, "vmm.out"), os.path.join(tmp, "vmm.err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                         start_new_session=True)
        self.out_file, self.err_path = open(out_path, "rb"), err_path
        self.out = bytearray()

    def pump(self):
        """Take in what the VMM wrote since the last call, waiting POLL_S if
        nothing; False once the VMM has exited and everything is read."""
        if time.monotonic() > self.deadline:
            last = bytes(self.out[-120:]).decode(errors="replace")
            raise Failed(f"timed out; last output: {last!r}")
        exited = self.proc.poll() is not None
        data = self.out_file.read()
        if data:
            self.out.extend(data)
            return True
        if exited:
            return False
        time.sleep(self.POLL_S)
        return True

    def wait_for(self, predicate, booting=False):
        """Read until predicate(); booting: the guest's command has not
        started yet, so an exit is a boot failure."""
        while not predicate():
            if not self.pump():
                tail = self.tail() or bytes(self.out[-300:]).decode(errors="replace")
                raise (BootFailed if booting else Failed)(f"VMM exited early: {tail}")

    def finish(self):
        """Wait for the guest's poweroff to end the VMM; check it ran clean."""
        while self.pump():
            pass
        status = self.proc.wait()
        if status != 0:
            raise Failed(f"exited {status}: {self.tail()}")

    def tail(self):
        with open(self.err_path, "rb") as f:
            err = f.read()[-400:]
        return (err or bytes(self.out[-200:])).decode(errors="replace").strip()

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.out_file.close()
        try:
            self.proc.stdin.close()
        except OSError:
            pass  # the rest of a paste to a dead process


class InitReadyFilter:
    """minivm writes both devices to stdout, and the guest's 8250 may still
    be sending init's ready line on ttyS0 when devwrite's first buffer is
    already out on hvc0 (two devices, no order between them): the output
    from `start` on, without that line if it landed there.  Searches only
    what arrived since the last call (the poll loop calls it every 2 ms)."""

    def __init__(self, out, start):
        self.out, self.start = out, start
        self.at = None  # where the line is in out, once found after start
        self.done = INIT_READY in out[:start]  # it came before the payload
        self.searched = start

    def _find(self):
        if self.done:
            return
        at = self.out.find(INIT_READY, max(self.start, self.searched - len(INIT_READY) + 1))
        self.searched = len(self.out)
        if at >= 0:
            self.at, self.done = at, True

    def length(self):
        self._find()
        return len(self.out) - self.start - (len(INIT_READY) if self.at is not None else 0)

    def data(self):
        self._find()
        if self.at is None:
            return bytes(self.out[self.start:])
        return bytes(self.out[self.start:self.at] + self.out[self.at + len(INIT_READY):])


def measure_output(make_cmd, device, nbytes, timeout, tmp):
    """Seconds from the first payload byte to the last, and CPU seconds in between."""
    append = f"console=ttyS0 loglevel=1 panic=-1 -- run devwrite {DEVICES[device]} {nbytes}"
    run = VmmRun(make_cmd(device, append, tmp), timeout, tmp)
    try:
        run.wait_for(lambda: PATTERN_START in run.out, booting=True)
        first, cpu0 = time.monotonic(), cpu_seconds(descendants(run.proc.pid))
        start = run.out.index(PATTERN_START)
        received = InitReadyFilter(run.out, start)
        run.wait_for(lambda: received.length() >= nbytes)
        last, cpu1 = time.monotonic(), cpu_seconds(descendants(run.proc.pid))
        run.finish()
    finally:
        run.kill()
    received = received.data()
    payload = received[:nbytes]
    expected = pattern(nbytes)
    if payload != expected:
        at = next(i for i, (a, b) in enumerate(zip(payload, expected)) if a != b)
        raise Failed(f"payload differs from the pattern at byte {at}: "
                     f"{payload[at:at + 40]!r}")
    rest = received[nbytes:]
    other = os.path.join(tmp, "qemu-other-console.out")
    if os.path.exists(other):
        rest += open(other, "rb").read()
        os.unlink(other)
    status = RUN_EXIT.search(rest)
    if not status or status.group(1) != b"0":
        raise Failed(f"devwrite did not exit 0: {rest[-300:]!r}")
    guest = GUEST_TIME.search(rest)
    return {"seconds": last - first, "cpu": cpu1 - cpu0,
            "guest": float(guest.group(1)) if guest else None}


def measure_input(make_cmd, device, nbytes, timeout, tmp):
    """Seconds from the ready line to the result line, and CPU seconds."""
    append = f"console=ttyS0 loglevel=1 panic=-1 -- run devread {DEVICES[device]} {nbytes}"
    paste = pattern(nbytes)
    run = VmmRun(make_cmd(device, append, tmp), timeout, tmp)
    try:
        run.wait_for(lambda: READY in run.out, booting=True)
        ready_at = run.out.index(READY) + len(READY)
        first, cpu0 = time.monotonic(), cpu_seconds(descendants(run.proc.pid))
        # A thread writes the paste (the pipe blocks while the VMM holds
        # back) while this one reads the output.
        writer = threading.Thread(target=write_all, args=(run.proc.stdin, paste), daemon=True)
        writer.start()
        run.wait_for(lambda: RESULT.search(run.out, ready_at))
        last, cpu1 = time.monotonic(), cpu_seconds(descendants(run.proc.pid))
        writer.join(timeout=5)
        run.finish()
    finally:
        run.kill()
    m = RESULT.search(run.out, ready_at)
    got = (int(m.group(1)), m.group(2).decode())
    want = (nbytes, f"{zlib.crc32(paste):08x}")
    if got != want:
        raise Failed(f"devread got {got[0]} bytes crc32 {got[1]}, sent {want[0]} crc32 {want[1]}")
    return {"seconds": last - first, "cpu": cpu1 - cpu0, "guest": float(m.group(3))}


def write_all(pipe, data):
    try:
        for i in range(0, len(data), 4096):
            pipe.write(data[i:i + 4096])
            pipe.flush()
    except (BrokenPipeError, ValueError):
        pass  # the VMM went away: the reader reports it


def summary(name, nbytes, runs):
    """(median rate, its text): MB/s, the VMM's CPU use (cores busy), MB per
    CPU second (the rate a VMM would reach with a core to itself, a fairer
    comparison when other work takes the CPUs), and the guest's own rate."""
    rates = [nbytes / r["seconds"] for r in runs]
    cpu = statistics.median(r["cpu"] / r["seconds"] for r in runs)
    per_cpu = statistics.median(nbytes / r["cpu"] if r["cpu"] else float("inf") for r in runs)
    guest = [r["guest"] for r in runs if r["guest"]]
    guest_rate = f", guest {nbytes / statistics.median(guest) / 1e6:.3f}" if guest else ""
    return (statistics.median(rates),
            f"{name} {statistics.median(rates) / 1e6:7.3f} MB/s (cpu {cpu:.2f}, "
            f"{per_cpu / 1e6:.3f} MB/CPU-s{guest_rate})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=float, default=1, help="MiB written to ttyS0")
    ap.add_argument("--hvc0-mib", type=float, default=16, help="MiB written to hvc0")
    ap.add_argument("--paste-kib", type=int, default=1024, help="KiB pasted into each device")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per VMM run")
    ap.add_argument("--only", choices=["output", "input"], help="run one direction only")
    ap.add_argument("--device", choices=list(DEVICES), help="run one device only")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    guest_files(args.build)
    hvc0 = minivm_has_hvc0(args.build)
    vmms = [("minivm", lambda d, a, t: minivm_cmd(args.build, d, a, t)),
            ("qemu", lambda d, a, t: qemu_cmd(args.build, d, a, t))]
    cases = []
    if args.only != "input":
        cases += [("output", "ttyS0", int(args.mib * MiB), measure_output),
                  ("output", "hvc0", int(args.hvc0_mib * MiB), measure_output)]
    if args.only != "output":
        cases += [("input", dev, args.paste_kib * 1024, measure_input)
                  for dev in ("ttyS0", "hvc0")]
    cases = [c for c in cases if args.device in (None, c[1])]

    print(f"Console, default guest, -m 256M, console=ttyS0 loglevel=1 panic=-1; "
          f"minivm -accel soft, "
          f"qemu -accel tcg -M pc; medians of {args.runs} runs; cpu = VMM CPU s per s",
          flush=True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for direction, device, nbytes, measure in cases:
            # The VMMs take turns, one run each per round: the host's load
            # (and a cloud host's steal time) drifts over minutes, and a
            # VMM's runs in a row would meet a different host than the
            # other's.
            runs = {name: [] for name, _ in vmms
                    if not (name == "minivm" and device == "hvc0" and not hvc0)}
            boot_failures = {name: 0 for name in runs}
            for _ in range(args.runs * 2):
                for name, make_cmd in vmms:
                    if name not in runs or len(runs[name]) >= args.runs:
                        continue
                    try:
                        runs[name].append(measure(make_cmd, device, nbytes, args.timeout, tmp))
                    except BootFailed as e:
                        boot_failures[name] += 1
                        print(f"{device} {direction}, {name}: boot failure "
                              f"{boot_failures[name]}: {e}", flush=True)
                        if boot_failures[name] >= args.runs:
                            print(f"{device} {direction}, {name}: FAILED: {e}", flush=True)
                            failed = True
                            del runs[name]
                    except (Failed, subprocess.TimeoutExpired) as e:
                        print(f"{device} {direction}, {name}: FAILED: {e}", flush=True)
                        failed = True
                        del runs[name]
            results = {name: summary(name, nbytes, r) for name, r in runs.items()
                       if len(r) == args.runs}
            cols = [results[n][1] for n, _ in vmms if n in results]
            if "minivm" in results and "qemu" in results:
                cols.append(f"minivm/qemu {results['minivm'][0] / results['qemu'][0]:.3f}")
            elif device == "hvc0" and not hvc0:
                cols.insert(0, "minivm: hvc0 not available in this build")
            print(f"{device} {direction} {nbytes / MiB:g} MiB: " + "   ".join(cols), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
