"""Issue 8: the user-mode network - dev-net (virtio-net + libslirp) under
Debian's kernel on the software CPU, with real libslirp and real nng.

Traffic goes only to 127.0.0.1 and the guest's own network 10.0.2.0/24; the
DNS test answers from a resolver of its own on 127.0.0.1 inside a private
network namespace, never the machine's.  One booted guest serves most
checks (module fixture); restrict=on, DNS and the restart boot their own."""
import hashlib
import os
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest

from conftest import LAUNCHER, child_named, run_launcher

GUEST_DIR = Path(os.environ.get("MINIVM_BUILD", "build")) / "guest"
KERNEL = GUEST_DIR / "bzImage"
INITRD = GUEST_DIR / "initrd.img"
BOOT_TIMEOUT = 300
PROMPT = "# "
# Bytes moved each way, as the issue asks.  busybox nc under the software
# CPU moved 3.2-4.5 MB/s guest -> host and 3.7-9.3 MB/s host -> guest here
# (8 MiB runs), so 64 MiB takes about 15-25 s each way on a busy machine.
TRANSFER = 64 << 20

pytestmark = pytest.mark.skipif(
    os.environ.get("MINIVM_GUEST") == "OFF",
    reason="built with -DMINIVM_GUEST=OFF: no Linux guest to boot")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_args(nic):
    return ["run", "-accel", "soft", "-m", "256M", "-kernel", str(KERNEL),
            "-initrd", str(INITRD), "-append", "console=ttyS0 quiet", "-nic", nic]


def boot(nic, command=None):
    """Boot the default guest with -nic nic (or run command, an argv that
    ends with the launcher's); return the pexpect child once eth0 has its
    address."""
    assert KERNEL.exists() and INITRD.exists(), f"no guest in {GUEST_DIR}"
    argv = command or [str(LAUNCHER), *launcher_args(nic)]
    child = pexpect.spawn(argv[0], argv[1:], timeout=BOOT_TIMEOUT, encoding="utf-8",
                          codec_errors="replace", dimensions=(24, 200))
    child.expect("minivm: init ready")
    child.expect(r"minivm: eth0 (\S+)\r?\n", timeout=120)
    child.address = child.match.group(1)
    child.sendline("")
    child.expect(PROMPT)
    return child


def run(child, command, timeout=120):
    """Run a shell command; return its output, found between two markers
    (the terminal may wrap the echoed command line, which never holds them
    whole)."""
    child.sendline(f"echo '<<''out'; {command}; echo 'out''>>'")
    child.expect(r"(?s)<<out\r*\n(.*?)\r*\n?out>>", timeout=timeout)
    out = child.match.group(1).replace("\r", "")
    child.expect(PROMPT)
    return out.strip()


def stop(child):
    if child.isalive():
        child.terminate(force=True)


def uptime(child):
    return float(run(child, "cut -d' ' -f1 /proc/uptime"))


class TcpSink:
    """A TCP server on 127.0.0.1 that hashes everything one client sends."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.digest = None
        self.count = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        h = hashlib.sha256()
        with conn:
            while data := conn.recv(1 << 16):
                h.update(data)
                self.count += len(data)
        self.digest = h.hexdigest()

    def result(self, timeout):
        self.thread.join(timeout)
        self.server.close()
        return self.digest, self.count


def build_netpeer(directory):
    """tests/e2e/guest/netpeer.c, static, for the guest (same architecture)."""
    out = Path(directory) / "netpeer"
    subprocess.run(["cc", "-static", "-O2", "-o", str(out),
                    str(Path(__file__).parent / "guest" / "netpeer.c")], check=True)
    return out.read_bytes()


def send_file(child, port, data, path):
    """Copy data into the guest at path through the tcp forward to guest
    port 7777."""
    run(child, f"rm -f {path}; (nc -l -p 7777 </dev/null >{path}; echo RECEIVED) & true")
    time.sleep(1)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(300)
        while s.recv(4096):
            pass
    child.expect("RECEIVED", timeout=300)
    child.sendline("")
    child.expect(PROMPT)


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    netpeer = build_netpeer(tmp_path_factory.mktemp("netpeer"))
    tcp_fwd, udp_fwd, http_fwd = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    child = boot(f"user,hostfwd=tcp::{tcp_fwd}-:7777,hostfwd=udp::{udp_fwd}-:7778,"
                 f"hostfwd=tcp:127.0.0.1:{http_fwd}-:80")
    child.ports = {"tcp": tcp_fwd, "udp": udp_fwd, "http": http_fwd}
    send_file(child, tcp_fwd, netpeer, "/bin/netpeer")
    run(child, "chmod +x /bin/netpeer; (netpeer udp-echo 7778 &); (netpeer tcp-reply 80 &)")
    yield child
    stop(child)


def test_dhcp_address_route_and_ping(vm):
    assert vm.address == "10.0.2.15/24"
    assert "default via 10.0.2.2 dev eth0" in run(vm, "ip route")
    out = run(vm, "ping -c 3 -W 5 10.0.2.2", timeout=60)
    assert "3 packets transmitted, 3 packets received" in out


def test_guest_to_host_tcp(vm):
    mib = TRANSFER >> 20
    digest = run(vm, f"dd if=/dev/urandom of=/tmp/out bs=1M count={mib} 2>/dev/null; "
                     "sha256sum /tmp/out | cut -d' ' -f1")
    sink = TcpSink()
    start = time.monotonic()
    run(vm, f"nc 10.0.2.2 {sink.port} </tmp/out; rm /tmp/out", timeout=600)
    got, count = sink.result(60)
    took = time.monotonic() - start
    print(f"guest -> host: {count} bytes in {took:.1f} s ({count / took / 1e6:.2f} MB/s)")
    assert count == TRANSFER and got == digest


def test_guest_to_host_tcp_tso_at_mtu_1500(vm):
    """At MTU 1500 the guest's TCP sends TSO segments (HOST_TSO4: up to
    64 KiB, MSS 1460) that dev-net hands to libslirp whole: 4 MiB arrive
    intact, and nothing is retransmitted (a device that dropped TSO frames
    still delivers, but only through the guest's MSS-sized retransmits)."""
    size = 4 << 20
    retransmitted = "awk '/^Tcp:/ && $2 ~ /[0-9]/ {print $13}' /proc/net/snmp"
    digest = run(vm, f"dd if=/dev/urandom of=/tmp/out bs=1M count={size >> 20} 2>/dev/null; "
                     "sha256sum /tmp/out | cut -d' ' -f1; ip link set eth0 mtu 1500")
    sink = TcpSink()
    try:
        before = int(run(vm, retransmitted))
        run(vm, f"nc 10.0.2.2 {sink.port} </tmp/out; rm /tmp/out", timeout=300)
        after = int(run(vm, retransmitted))
    finally:
        run(vm, "ip link set eth0 mtu 65520")
    got, count = sink.result(60)
    assert count == size and got == digest
    assert after - before < 100, f"{after - before} TCP segments retransmitted"


def test_host_to_guest_tcp_hostfwd(vm):
    data = os.urandom(TRANSFER)
    start = time.monotonic()
    send_file(vm, vm.ports["tcp"], data, "/tmp/in")
    took = time.monotonic() - start
    print(f"host -> guest: {len(data)} bytes in {took:.1f} s ({len(data) / took / 1e6:.2f} MB/s)")
    assert run(vm, "sha256sum /tmp/in | cut -d' ' -f1; rm /tmp/in") == hashlib.sha256(data).hexdigest()


class TftpServer:
    """Read-only TFTP (RFC 1350, 512-byte blocks) of one file on 127.0.0.1:
    busybox's tftp is the guest's UDP client."""

    def __init__(self, data):
        self.data = data
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(120)
        request, peer = self.sock.recvfrom(1024)
        assert request[:2] == b"\0\1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # the transfer's own port
            s.bind(("127.0.0.1", 0))
            s.settimeout(1)
            blocks = len(self.data) // 512 + 1
            for block in range(1, blocks + 1):
                chunk = self.data[(block - 1) * 512:block * 512]
                packet = struct.pack("!HH", 3, block & 0xffff) + chunk
                for _ in range(30):
                    s.sendto(packet, peer)
                    try:
                        ack, _ = s.recvfrom(1024)
                    except TimeoutError:
                        continue
                    if ack[:2] == b"\0\4" and struct.unpack("!H", ack[2:4])[0] == block & 0xffff:
                        break

    def close(self):
        self.thread.join(120)
        self.sock.close()


def test_udp_guest_to_host_tftp(vm):
    """UDP both ways through the NAT: the guest's requests and acks out to
    127.0.0.1, the data back in; 1 MiB with identical sha256."""
    data = os.urandom(1 << 20)
    server = TftpServer(data)
    start = time.monotonic()
    out = run(vm, f"tftp -g -r blob -l /tmp/blob 10.0.2.2 {server.port}; "
                  "sha256sum /tmp/blob | cut -d' ' -f1", timeout=300)
    server.close()
    print(f"tftp guest <- host: {len(data)} bytes in {time.monotonic() - start:.1f} s")
    assert out.splitlines()[-1] == hashlib.sha256(data).hexdigest(), out


def test_udp_hostfwd(vm):
    """Host -> guest through the udp forward: netpeer echoes each datagram,
    a large one too (one frame at MTU 65520)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for size in (16, 1400, 8000, 60000):
            payload = os.urandom(size)
            for _ in range(5):
                s.sendto(payload, ("127.0.0.1", vm.ports["udp"]))
                try:
                    echo, _ = s.recvfrom(65536)
                    break
                except TimeoutError:
                    echo = None
            assert echo == payload, f"no echo of {size} bytes"


def http_get(port, timeout=60):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        reply = b""
        while data := s.recv(4096):
            reply += data
    return reply


def test_100_concurrent_host_to_guest_connections(vm):
    results = [None] * 100

    def get(i):
        try:
            results[i] = http_get(vm.ports["http"], timeout=240)
        except OSError as e:
            results[i] = e

    threads = [threading.Thread(target=get, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    bad = [r for r in results if not (isinstance(r, bytes) and b"netpeer-reply" in r)]
    assert not bad, f"{len(bad)} of 100 failed, e.g. {bad[0]!r}"


def test_kill_dev_net_during_a_transfer(vm):
    """kill -9 of dev-net mid-transfer: the launcher restarts it, the guest is
    not reset, the old connection fails promptly, new ones work both ways."""
    launcher_pid = vm.pid
    before = uptime(vm)
    run(vm, "dd if=/dev/zero of=/tmp/big bs=1M count=64 2>/dev/null")
    sink = socket.create_server(("127.0.0.1", 0))
    sink.settimeout(60)
    vm.sendline(f"nc 10.0.2.2 {sink.getsockname()[1]} </tmp/big; echo NC-ENDED $?")
    conn, _ = sink.accept()
    conn.settimeout(60)
    received = 0
    while received < (1 << 20):
        received += len(conn.recv(1 << 16))
    dev_net = child_named(launcher_pid, "dev-net")
    os.kill(dev_net, 9)
    killed = time.monotonic()
    # The host side of the old connection ends with the old process
    # (EOF or reset; a timeout would be a connection left hanging).
    try:
        while conn.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    conn.close()
    # A new host -> guest connection (netpeer's tcp-reply)
    first = None
    while time.monotonic() - killed < 30:
        try:
            if b"netpeer-reply" in http_get(vm.ports["http"], timeout=2):
                first = time.monotonic() - killed
                break
        except OSError:
            time.sleep(0.02)
    assert first is not None, "no new connection within 30 s of the kill"
    print(f"kill -9 of dev-net -> first new host->guest connection: {first:.2f} s")
    # The goal is 1 s; on a busy 2-core CI machine under the software CPU
    # the guest's own timers (a SYN-ACK retransmitted after 1 s) can add a
    # few seconds, so the test only bounds it.
    assert first < 5
    # The old connection fails in the guest promptly (RST from the new NAT).
    vm.expect(r"NC-ENDED (\d+)", timeout=30)
    assert vm.match.group(1) != "0"
    vm.expect(PROMPT)
    assert dev_net != child_named(launcher_pid, "dev-net")
    # Guest -> host works again, and the guest was never reset.
    sink2 = TcpSink()
    run(vm, f"echo after-restart | nc 10.0.2.2 {sink2.port}")
    digest, count = sink2.result(30)
    assert count == len("after-restart\n")
    assert uptime(vm) > before
    assert "minivm: init ready" not in vm.before
    assert run(vm, "ip -4 -o addr show eth0 | awk '{print $4}'") == "10.0.2.15/24"


def test_restrict_blocks_egress_but_keeps_hostfwd():
    fwd = free_port()
    sink = socket.create_server(("127.0.0.1", 0))
    sink.settimeout(1)
    child = boot(f"user,restrict=on,hostfwd=tcp::{fwd}-:80")
    try:
        out = run(child, f"nc -w 3 10.0.2.2 {sink.getsockname()[1]} </dev/null; echo rc=$?",
                  timeout=60)
        with pytest.raises(TimeoutError):
            sink.accept()
        assert "rc=0" not in out
        run(child, "mkdir -p /www; echo restricted-page >/www/index.html; httpd -p 80 -h /www")
        assert b"restricted-page" in http_get(fwd)
    finally:
        stop(child)
        sink.close()


DNS_SERVER = r'''
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("dns ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    qid, flags, qd = struct.unpack(">HHH", q[:6])
    end = 12
    while q[end]:
        end += 1 + q[end]
    question = q[12:end + 5]
    qtype = struct.unpack(">H", q[end + 1:end + 3])[0]
    answers = b""
    if qtype == 1:
        answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 42])
    reply = struct.pack(">HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0) + question + answers
    s.sendto(reply, peer)
'''


def test_dns_through_10_0_2_3(tmp_path):
    """The guest resolves a name through 10.0.2.3: libslirp forwards to the
    resolver in /etc/resolv.conf, which here is bind-mounted, inside a private
    user+network+mount namespace, to name our own resolver on 127.0.0.1."""
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (tmp_path / "dns.py").write_text(DNS_SERVER)
    script = (f"ip link set lo up && mount --bind {tmp_path}/resolv.conf /etc/resolv.conf && "
              f"({shlex.quote(sys.executable)} {tmp_path}/dns.py >{tmp_path}/dns.log 2>&1 &) && "
              f"sleep 1 && exec {shlex.join([str(LAUNCHER), *launcher_args('user')])}")
    child = boot(None, ["unshare", "-rnm", "sh", "-c", script])
    try:
        out = run(child, "nslookup answer.minivm.test 10.0.2.3", timeout=60)
        assert "127.0.0.42" in out, out
    finally:
        stop(child)


def test_bad_value_is_one_line_naming_flag_and_key():
    r = run_launcher(launcher_args("user,mtu=70000"), timeout=60)
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "-nic" in lines[0] and "mtu" in lines[0], lines


def test_busy_host_port_is_one_clear_error(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        start = time.monotonic()
        r = run_launcher(launcher_args(f"user,hostfwd=tcp::{port}-:22"), timeout=120)
        assert r.returncode != 0
        err = r.stderr.decode()
        assert f"127.0.0.1:{port}" in err and "in use" in err, err
        assert time.monotonic() - start < 30  # at start, not after a boot
