#!/usr/bin/env python3
"""The Windows release's default guest under Wine (scripts/test-windows.sh):
launcher.exe with the release's minivm.conf, vmm-core.exe on the software CPU
(or the WHP engine),
dev-serial.exe and dev-net.exe, one boot.

  wine-guest-test.py RELEASE_DIR [ENGINE]   (what scripts/package-windows.sh
                                            zips; ENGINE: soft, or whpx)

Checks, in order: the busybox shell computes 6*7; eth0 has its DHCP lease
10.0.2.15/24 from libslirp; bytes sent from the host's 127.0.0.1 through a
hostfwd arrive in the guest with the same SHA-256; the guest sends them
back through 10.0.2.2 to a server of this script's own on 127.0.0.1, which
receives the same SHA-256; `poweroff` ends launcher.exe with status 0; on
the soft engine, vmm-core.exe's MINIVM_STATS line shows that its JIT (the
default) translated the guest.
Traffic goes only to 127.0.0.1 and the guest's own network.  Driven through
pipes (Wine's console is not a tty): ash sends ESC[6n after its prompt, so
"# " is matched unanchored."""
import hashlib
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 600  # seconds for the whole run: generous for a loaded machine
TRANSFER = 1 << 20  # bytes each way: a few seconds under Wine and the soft CPU
ENGINE = "soft"  # -accel, from the command line


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """launcher.exe's output, searched as it arrives; its input, typed."""

    def __init__(self, cmd, env=None):
        self.start = time.monotonic()
        self.vm = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True, env=env)
        os.set_blocking(self.vm.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.vm.stdout, selectors.EVENT_READ)
        self.seen, self.log = bytearray(), bytearray()

    def fail(self, why):
        if self.vm.poll() is None:
            os.killpg(self.vm.pid, 9)
        sys.exit(f"{why}; launcher.exe's output ends with:\n"
                 + self.log[-2000:].decode(errors="replace"))

    def expect(self, pattern):
        """Wait for regex pattern (bytes); consume the output up to its end
        and return the match."""
        regex = re.compile(pattern)
        while True:
            m = regex.search(bytes(self.seen))  # a copy: the match outlives the del
            if m:
                del self.seen[:m.end()]
                return m
            if time.monotonic() - self.start > TIMEOUT:
                self.fail(f"no {pattern!r} after {TIMEOUT} s")
            if not self.sel.select(1):
                continue
            data = os.read(self.vm.stdout.fileno(), 65536)
            if not data:
                self.fail(f"launcher.exe exited while waiting for {pattern!r}")
            self.seen += data
            self.log += data

    def rest(self):
        """What launcher.exe printed after the last match, once it exited."""
        os.set_blocking(self.vm.stdout.fileno(), True)
        data = self.vm.stdout.read()
        self.seen += data
        self.log += data
        return bytes(self.seen)

    def type(self, line):
        self.vm.stdin.write(line.encode() + b"\n")
        self.vm.stdin.flush()

    def run(self, command):
        """Run a shell command; return its output, found between markers
        that its echoed command line never holds whole."""
        self.type(f"echo '<<''out'; {command}; echo 'out''>>'")
        out = self.expect(rb"(?s)<<out\r*\n(.*?)\r*\n?out>>").group(1)
        self.expect(rb"# ")
        return out.replace(b"\r", b"").decode(errors="replace").strip()

    def say(self, what):
        print(f"test-windows: Linux under Wine ({ENGINE}): {what} "
              f"({time.monotonic() - self.start:.1f} s)")


class Sink(threading.Thread):
    """A TCP server on 127.0.0.1 that hashes what its one client sends."""

    def __init__(self):
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(TIMEOUT)
        self.port = self.server.getsockname()[1]
        self.digest, self.count = None, 0
        self.start()

    def run(self):
        conn, _ = self.server.accept()
        h = hashlib.sha256()
        with conn:
            while data := conn.recv(1 << 16):
                h.update(data)
                self.count += len(data)
        self.digest = h.hexdigest()


def main(release, engine="soft"):
    global ENGINE
    ENGINE = engine
    fwd = free_port()
    # MINIVM_STATS: vmm-core.exe says at exit how many blocks its JIT
    # translated (the soft engine's default on x86-64, Windows included).
    guest = Guest(["wine", os.path.join(release, "launcher.exe"), "run",
                   os.path.join(release, "minivm.conf"), "-accel", engine,
                   "-nic", f"user,hostfwd=tcp:127.0.0.1:{fwd}-:7777"],
                  env=dict(os.environ, MINIVM_STATS="1"))
    guest.expect(rb"minivm: init ready")
    guest.say("init ready")
    address = guest.expect(rb"minivm: eth0 (\S+)\r?\n").group(1).decode()
    if address != "10.0.2.15/24":
        guest.fail(f"eth0 has {address}, not the DHCP lease 10.0.2.15/24")
    guest.say(f"eth0 {address} by DHCP")
    guest.type("")
    guest.expect(rb"# ")
    if guest.run("echo $((6*7))") != "42":
        guest.fail("echo $((6*7)) did not print 42")

    # host -> guest through the hostfwd on the host's loopback
    data = os.urandom(TRANSFER)
    want = hashlib.sha256(data).hexdigest()
    # The prompt comes back once nc has had 2 s to listen.
    guest.type("(nc -l -p 7777 </dev/null >/tmp/in; echo RECEIVED) & sleep 2")
    guest.expect(rb"# ")
    with socket.create_connection(("127.0.0.1", fwd), timeout=60) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(TIMEOUT)
        while s.recv(4096):
            pass
    guest.expect(rb"RECEIVED")
    guest.type("")
    guest.expect(rb"# ")
    got = guest.run("sha256sum /tmp/in | cut -d' ' -f1")
    if got != want:
        guest.fail(f"hostfwd transfer: the guest's copy hashes to {got}, the host's to {want}")
    guest.say(f"{TRANSFER} bytes host 127.0.0.1:{fwd} -> hostfwd -> guest, same SHA-256")

    # guest -> host through 10.0.2.2
    sink = Sink()
    guest.run(f"nc 10.0.2.2 {sink.port} </tmp/in")
    sink.join(60)
    if sink.digest != want:
        guest.fail(f"guest -> 10.0.2.2:{sink.port}: the host got {sink.count} bytes hashing to "
                   f"{sink.digest}, the guest sent {TRANSFER} hashing to {want}")
    guest.say(f"{TRANSFER} bytes guest -> 10.0.2.2 -> host 127.0.0.1:{sink.port}, same SHA-256")

    guest.type("poweroff")
    try:
        status = guest.vm.wait(timeout=120)
    except subprocess.TimeoutExpired:
        guest.fail("launcher.exe did not exit after poweroff")
    if status != 0:
        guest.fail(f"launcher.exe exited {status} after poweroff")
    guest.say("powered off, status 0")
    if engine == "soft":
        translated = re.search(rb"the JIT translated (\d+) blocks", guest.rest())
        if not translated or int(translated.group(1)) < 1000:
            guest.fail("the soft engine did not run Linux on its JIT (MINIVM_STATS counts "
                       "fewer than 1000 translated blocks)")
        guest.say(f"the JIT translated {int(translated.group(1))} blocks")


if __name__ == "__main__":
    main(*sys.argv[1:])
