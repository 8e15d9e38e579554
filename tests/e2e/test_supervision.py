"""Supervision: a crashed dev-serial is restarted without rebooting the guest;
killing the launcher leaves no process behind."""
import os
import re
import signal
import subprocess
import time

from conftest import LAUNCHER, alive, child_named, guest, wait_gone, write_conf

# Bytes the guest may have written that were still in flight (queued in the
# ipc socket or in the dead process) when dev-serial was killed.  They are
# lost, not repeated; anything beyond this is a real gap.
MAX_LOST_BYTES = 64 * 1024


def start_counter(tmp_path, register):
    conf = write_conf(tmp_path, vm={"engine": "kvm", "flat": guest("counter64"),
                                    "flat-mode": "long"})
    p = subprocess.Popen([str(LAUNCHER), "run", str(conf)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    register(p)
    return p


def read_until(stream, predicate, timeout):
    """Read from a pipe until predicate(data) holds; return the data."""
    data = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    os.set_blocking(fd, False)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            break
        data += chunk
        if predicate(data):
            return data
    raise AssertionError(f"timed out; got {len(data)} bytes ending {data[-80:]!r}")


def count_lines(n):
    return lambda data: data.count(b"\n") >= n


def test_dev_serial_crash_is_restarted_without_guest_reset(tmp_path, kill_on_exit):
    p = start_counter(tmp_path, kill_on_exit)
    serial = child_named(p.pid, "dev-serial")
    core = child_named(p.pid, "vmm-core")
    before = read_until(p.stdout, count_lines(200), 120)

    os.kill(serial, signal.SIGKILL)
    restarted = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and restarted in (None, serial):
        restarted = child_named(p.pid, "dev-serial")
    assert restarted != serial, "dev-serial was not restarted"
    assert alive(core), "vmm-core died with dev-serial"

    after = read_until(p.stdout, lambda d: d.count(b"\n") >= 200, 120)
    stream = (before + after).decode()
    numbers = [int(x) for x in re.findall(r"^(\d+)$", stream, re.M)]
    assert numbers[0] == 0, "the counter did not start at 0"
    # Strictly one more each line, except across the restart, where the only
    # allowed discontinuity is a jump forward by what was in flight (never
    # backwards: a restart from 0 would mean the guest was reset).
    jumps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    assert len(jumps) <= 1, jumps[:5]
    for a, b in jumps:
        assert b > a, f"counter went back from {a} to {b}: guest reset or repeat"
        lost = sum(len(str(n)) + 1 for n in range(a + 1, b))
        assert lost <= MAX_LOST_BYTES, f"{lost} bytes lost across the restart"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert "dev-serial" in p.stderr.read().decode(), "the restart was not logged"


def test_killing_launcher_leaves_no_process(tmp_path, kill_on_exit):
    p = start_counter(tmp_path, kill_on_exit)
    serial = child_named(p.pid, "dev-serial")
    core = child_named(p.pid, "vmm-core")
    read_until(p.stdout, count_lines(10), 120)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert wait_gone([serial, core], timeout=10), "children outlived the launcher"


def test_sigterm_to_launcher_stops_everything(tmp_path, kill_on_exit):
    p = start_counter(tmp_path, kill_on_exit)
    serial = child_named(p.pid, "dev-serial")
    core = child_named(p.pid, "vmm-core")
    read_until(p.stdout, count_lines(10), 120)
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=20) == 128 + signal.SIGTERM
    assert wait_gone([serial, core], timeout=10)
