"""Supervision: a crashed dev-serial is restarted without rebooting the guest;
killing the launcher leaves no process behind."""
import os
import signal
import subprocess
import time

import pytest

from conftest import ENGINES, LAUNCHER, alive, child_named, guest, wait_gone, write_conf

# Bytes the guest may have written that were still in flight (queued in the
# ipc socket or in the dead process) when dev-serial was killed.  They are
# lost, not repeated; anything beyond this is a real gap.
MAX_LOST_BYTES = 64 * 1024


def start_counter(tmp_path, register, engine="kvm"):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("counter64"),
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


def assert_one_gap_at_most(actual, max_lost):
    """actual must be the counter's ideal output "0\\n1\\n2\\n..." with at most
    one contiguous run of at most max_lost bytes missing (lost in flight):
    no repeat, no reset, no second gap."""
    n, expected = 0, bytearray()
    while len(expected) < len(actual) + max_lost + 64:
        expected += b"%d\n" % n
        n += 1
    i = 0                                   # common prefix
    while i < len(actual) and actual[i] == expected[i]:
        i += 1
    if i == len(actual):
        return
    rest = actual[i:]
    for j in range(i + 1, i + max_lost + 1):
        if expected[j:j + len(rest)] == rest:
            return
    raise AssertionError(f"output diverges at byte {i} and does not resume within "
                         f"{max_lost} bytes: {actual[max(0, i - 40):i + 40]!r}")


def count_lines(n):
    return lambda data: data.count(b"\n") >= n


@pytest.mark.parametrize("engine", ENGINES)
def test_dev_serial_crash_is_restarted_without_guest_reset(tmp_path, kill_on_exit, engine):
    p = start_counter(tmp_path, kill_on_exit, engine)
    serial = child_named(p.pid, "dev-serial")
    core = child_named(p.pid, "vmm-core")
    before = read_until(p.stdout, count_lines(3000), 120)

    os.kill(serial, signal.SIGKILL)
    restarted = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and restarted in (None, serial):
        restarted = child_named(p.pid, "dev-serial")
    assert restarted != serial, "dev-serial was not restarted"
    assert alive(core), "vmm-core died with dev-serial"

    after = read_until(p.stdout, count_lines(3000), 120)
    assert_one_gap_at_most(before + after, MAX_LOST_BYTES)
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
