#!/usr/bin/python3
"""The user-mode network: minivm (dev-net: virtio-net + libslirp) beside QEMU
TCG's -netdev user (the same libslirp), on the same Linux guest.

    bench/net/run.py BUILD_DIR [--runs N] [--seconds N]

Both VMMs run the default guest (BUILD_DIR/guest, one vCPU, -m 256M, the
software CPU / TCG) with a bench initrd: the default initrd with one more
newc cpio appended (the kernel unpacks concatenated archives), built here at
run time in a temporary directory.  It adds Debian's dynamically linked
iperf3 with the libraries ldd names (from this host's iperf3 package, which
must be installed: apt-get install iperf3), the static netpeer of
tests/e2e/guest/netpeer.c, and /netbench.sh.  The default initrd stays small.

The guest runs /netbench.sh in init's run mode: it waits for its DHCP lease,
pings 10.0.2.2 (libslirp's gateway: the reply never leaves libslirp), then
serves iperf3 on ports 5201 and 5202 (one server per test: see
IPERF_PORTS) and netpeer tcp-reply on port 80.  The host reaches them
through hostfwd on 127.0.0.1 only, and measures

  h->g   iperf3 -c (host sends, guest receives), Mbit/s received
  g->h   iperf3 -c -R (guest sends), Mbit/s received on the host
  conn/s sequential TCP connections host -> guest (connect, one request,
         the reply, close) for --seconds
  ping   the guest's RTT to 10.0.2.2, median of the per-packet times

for QEMU -M pc with virtio-net-pci (its default MTU, 1500), minivm with its
default MTU (65520) and minivm with -nic user,mtu=1500.  Runs are interleaved
(one of each VMM, then again) so load hits all alike; medians over runs and
the ratios minivm/QEMU are printed.
"""
import argparse
import json
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from linuxguest import (QEMU_SERIAL_STDIO, guest_files, minivm_linux_cmd,  # noqa: E402
                        qemu_linux_cmd)

NETPEER_C = os.path.join(HERE, "..", "..", "tests", "e2e", "guest", "netpeer.c")
# One iperf3 server per test, each used once.  An iperf3 server that
# finishes a test closes its control socket, then its listening socket, and
# listens anew: a client that connects in between (the next test, started
# at once) is queued on the old listener and reset when it closes ("control
# socket has closed unexpectedly", "Connection reset by peer" at 0.0 s).
# The slower the guest, the wider that window: back to back, 4 of 12 -R
# tests failed so under minivm and 4 of 12 under QEMU TCG.
IPERF_PORTS = {"h->g": 5201, "g->h": 5202}
REPLY_PORT = 80
PINGS = 20
BOOT_TIMEOUT = 600

# Run by the guest's init ("-- run sh /netbench.sh").  Busybox sh.
GUEST_SCRIPT = f"""\
tries=0
until ip -4 -o addr show eth0 2>/dev/null | grep -q 10.0.2.15; do
	tries=$((tries + 1))
	[ $tries -lt 600 ] || {{ echo "netbench: no lease"; exit 1; }}
	sleep 0.2
done
echo "netbench: mtu $(cat /sys/class/net/eth0/mtu)"
ping -c {PINGS} -i 0.2 10.0.2.2
netpeer tcp-reply {REPLY_PORT} &
iperf3 -s -p {IPERF_PORTS["h->g"]} >/dev/null &
iperf3 -s -p {IPERF_PORTS["g->h"]} >/dev/null &
# Ready once all listen (state 0A in /proc/net/tcp*): a connection through
# hostfwd before that is reset.
listening() {{ cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":$1 .* 0A "; }}
until listening {IPERF_PORTS["h->g"]:04X} && listening {IPERF_PORTS["g->h"]:04X} &&
	listening {REPLY_PORT:04X}; do
	sleep 0.2
done
echo "netbench: ready"
wait
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_libraries(program):
    """The absolute paths ldd resolves for program, the dynamic loader too."""
    out = subprocess.run(["ldd", program], check=True, capture_output=True, text=True).stdout
    return re.findall(r"(/\S+) \(0x", out)


def bench_initrd(build, workdir):
    """The default initrd plus a cpio of iperf3, its libraries, netpeer and
    the guest script; returns its path."""
    iperf3 = shutil.which("iperf3")
    if not iperf3:
        raise SystemExit("iperf3 is missing on the host (apt-get install iperf3)")
    root = os.path.join(workdir, "root")
    for path in [iperf3] + shared_libraries(iperf3):
        dest = root + path
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(os.path.realpath(path), dest)
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(root, "bin", "netpeer"),
                    NETPEER_C], check=True)
    with open(os.path.join(root, "netbench.sh"), "w") as f:
        f.write(GUEST_SCRIPT)
    names = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, check=True,
                           capture_output=True).stdout
    layer = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                           input=names, check=True, capture_output=True).stdout
    with open(guest_files(build)[1], "rb") as f:
        base = f.read()
    # The kernel looks for the next archive's magic on a 4-byte boundary and
    # skips the zero padding before it.
    path = os.path.join(workdir, "initrd-net.img")
    with open(path, "wb") as f:
        f.write(base + b"\0" * (-len(base) % 4) + layer)
    return path


def vmm_commands(build, initrd):
    """(name, argv builder taking {guest port: host port}) of each configuration."""
    append = "console=ttyS0 quiet -- run sh /netbench.sh"

    def fwd(host_ports):
        """hostfwd options for {guest port: host port}."""
        return ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in host_ports.items())

    def qemu(host_ports):
        return qemu_linux_cmd(build, append, initrd=initrd) + QEMU_SERIAL_STDIO + [
            "-netdev", f"user,id=n,{fwd(host_ports)}", "-device", "virtio-net-pci,netdev=n"]

    def minivm(mtu):
        def cmd(host_ports):
            nic = "user," + (f"mtu={mtu}," if mtu else "") + fwd(host_ports)
            return minivm_linux_cmd(build, append, initrd=initrd) + ["-nic", nic]
        return cmd

    return [("QEMU TCG (mtu 1500)", qemu), ("minivm (mtu 65520)", minivm(None)),
            ("minivm mtu=1500", minivm(1500))]


class Guest:
    """One VMM running the guest script; its serial output collected."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.output = b""

    def expect(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.output)):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                tail = self.output[-2000:].decode(errors="replace")
                raise SystemExit(f"no {pattern!r} (exit {self.proc.poll()}); output ends:\n{tail}")
            if self.sel.select(min(left, 1)):
                self.output += self.proc.stdout.read() or b""
        return m

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def iperf3(port, seconds, reverse):
    """Mbit/s received by the receiving end."""
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J",
            "--connect-timeout", "30000"] + (["-R"] if reverse else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    result = json.loads(out.stdout)
    if "error" in result:
        raise SystemExit(f"iperf3 {' '.join(argv[1:])}: {result['error']}")
    return result["end"]["sum_received"]["bits_per_second"] / 1e6


def connections_per_second(port, seconds):
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            reply = b""
            while data := s.recv(4096):
                reply += data
        if b"netpeer-reply" not in reply:
            raise SystemExit(f"connection {count}: reply {reply!r}")
        count += 1
    return count / (time.monotonic() - start)


def run_once(command, seconds):
    host_ports = {guest: free_port() for guest in list(IPERF_PORTS.values()) + [REPLY_PORT]}
    guest = Guest(command(host_ports))
    try:
        mtu = int(guest.expect(rb"netbench: mtu (\d+)\r?\n", BOOT_TIMEOUT).group(1))
        guest.expect(rb"packets received", 120)
        rtts = [float(t) for t in re.findall(rb"time=([\d.]+) ms", guest.output)]
        guest.expect(rb"netbench: ready", 60)
        return {"mtu": mtu,
                "h->g Mbit/s": iperf3(host_ports[IPERF_PORTS["h->g"]], seconds, reverse=False),
                "g->h Mbit/s": iperf3(host_ports[IPERF_PORTS["g->h"]], seconds, reverse=True),
                "conn/s": connections_per_second(host_ports[REPLY_PORT], seconds),
                "ping ms": statistics.median(rtts)}
    except BaseException:
        tail = guest.output[-3000:].decode(errors="replace")
        print(f"the guest's serial output ends:\n{tail}", file=sys.stderr)
        raise
    finally:
        guest.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory(prefix="minivm-benchnet-") as workdir:
        configs = vmm_commands(args.build, bench_initrd(args.build, workdir))
        results = {name: [] for name, _ in configs}
        for run in range(args.runs):
            for name, command in configs:
                r = run_once(command, args.seconds)
                results[name].append(r)
                print(f"run {run + 1} {name}: " +
                      ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in r.items()), flush=True)
    keys = ["h->g Mbit/s", "g->h Mbit/s", "conn/s", "ping ms"]
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in keys}
               for name, rs in results.items()}
    qemu = medians[configs[0][0]]
    print(f"\nmedians of {args.runs} run(s), {args.seconds} s each; ratio = minivm/QEMU")
    print(f"{'':22}" + "".join(f"{k:>16}" for k in keys))
    for name, m in medians.items():
        print(f"{name:22}" + "".join(f"{m[k]:16.2f}" for k in keys))
        if m is not qemu:
            print(f"{'  ratio':22}" + "".join(f"{m[k] / qemu[k]:16.2f}" for k in keys))
    print(f"load average at end: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
