"""Supervision: a crashed dev-serial is restarted without rebooting the guest,
mid-output and mid-paste; killing the launcher leaves no process behind."""
import os
import re
import signal
import subprocess
import threading
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


PASTE_LINES = 16 * 1024  # "%08d\n" each: 144 KiB


def assert_paste_not_doubled(echoed, lines):
    """echoed is what the echo guest gave back of the numbered lines: bytes
    may be missing (in the dead dev-serial, in flight), never repeated, so
    the whole numbers it holds strictly increase; a gap leaves at most a
    torn line or two."""
    numbers, torn = [], 0
    for line in echoed.split(b"\n"):
        if re.fullmatch(rb"\d{8}", line):
            numbers.append(int(line))
        else:
            torn += 1
    repeats = [(a, b) for a, b in zip(numbers, numbers[1:]) if b <= a]
    assert not repeats, f"lines repeated or out of order: {repeats[:5]}"
    assert torn <= 4, f"{torn} torn lines: more gaps than one restart explains"
    assert numbers and numbers[-1] == lines - 1, "the end of the paste did not arrive"


@pytest.mark.parametrize("engine", ENGINES)
def test_dev_serial_crash_mid_paste_doubles_nothing(tmp_path, kill_on_exit, engine):
    """Killed while the guest drains ttyS0's receive ring (the core pops it
    from the state page): the restarted dev-serial takes the core's pops
    first, so nothing the guest read is delivered again."""
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("echo64"),
                                    "flat-mode": "long"})
    p = subprocess.Popen([str(LAUNCHER), "run", str(conf)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    kill_on_exit(p)
    paste = b"".join(b"%08d\n" % n for n in range(PASTE_LINES))

    def write_paste():
        try:
            p.stdin.write(paste + b"\x04")  # Ctrl-D: the echo guest says bye
            p.stdin.close()
        except BrokenPipeError:
            pass                             # the assertions below say why

    writer = threading.Thread(target=write_paste, daemon=True)
    writer.start()
    serial = child_named(p.pid, "dev-serial")
    before = read_until(p.stdout, lambda d: len(d) >= len(paste) // 4, 120)
    os.kill(serial, signal.SIGKILL)
    after = read_until(p.stdout, lambda d: d.endswith(b"bye\n"), 300)
    p.wait(timeout=30)
    out = before + after
    assert out.startswith(b"echo ready\n"), out[:80]
    assert_paste_not_doubled(out[len(b"echo ready\n"):-len(b"bye\n")], PASTE_LINES)
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
