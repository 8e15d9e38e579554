"""The input path: host stdin -> dev-serial's input queue -> the guest's RBR
reads, with the echo64 guest writing every byte back.  Through pipes the
bytes pass untouched and nothing is lost (the queue applies backpressure);
on a pty the Ctrl-A escapes apply."""
import os
import signal
import subprocess
import time

import pexpect
import pytest

from conftest import ENGINES, LAUNCHER, alive, child_named, guest, wait_gone, write_conf

CTRL_A = "\x01"
CTRL_D = b"\x04"
BULK_SIZE = 256 * 1024


def echo_conf(tmp_path, engine="kvm"):
    return write_conf(tmp_path, vm={"engine": engine, "flat": guest("echo64"),
                                    "flat-mode": "long"})


def random_bytes_without_ctrl_d(n):
    data = bytearray()
    while len(data) < n:
        data += os.urandom(n).replace(CTRL_D, b"")
    return bytes(data[:n])


@pytest.mark.parametrize("engine", ENGINES)
def test_pipe_bulk_input_echoes_every_byte(tmp_path, capsys, engine):
    data = random_bytes_without_ctrl_d(BULK_SIZE)
    start = time.monotonic()
    r = subprocess.run([str(LAUNCHER), "run", str(echo_conf(tmp_path, engine))],
                       input=data + CTRL_D, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=800)
    elapsed = time.monotonic() - start
    with capsys.disabled():                 # shown even when output is captured
        print(f"\n{BULK_SIZE} bytes echoed through the guest ({engine}) in {elapsed:.1f} s "
              f"({BULK_SIZE / elapsed / 1024:.1f} KiB/s)")
    assert r.returncode == 0, r.stderr.decode()
    expected = b"echo ready\n" + data + b"bye\n"
    if r.stdout != expected:
        n = next((i for i, (a, b) in enumerate(zip(r.stdout, expected)) if a != b),
                 min(len(r.stdout), len(expected)))
        raise AssertionError(f"output differs from offset {n}: {len(r.stdout)} bytes, "
                             f"{len(expected)} expected; {r.stderr.decode()}")


def test_pipe_eof_does_not_stop_the_guest(tmp_path):
    p = subprocess.Popen([str(LAUNCHER), "run", str(echo_conf(tmp_path))],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        core = child_named(p.pid, "vmm-core")
        serial = child_named(p.pid, "dev-serial")
        p.stdin.write(b"abc")
        p.stdin.close()                     # end of input, no Ctrl-D
        time.sleep(1)
        assert p.poll() is None, "the launcher stopped at the end of its input"
        assert alive(core) and alive(serial)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == b"echo ready\nabc", err.decode()
    assert p.returncode != 0
    assert wait_gone([core, serial]), "vmm-core or dev-serial outlived the launcher"


def test_pty_typing_echoes_and_ctrl_a_ctrl_a_sends_ctrl_a(tmp_path, kill_on_exit):
    child = pexpect.spawn(str(LAUNCHER), ["run", str(echo_conf(tmp_path))],
                          timeout=60, dimensions=(24, 80))
    kill_on_exit(child)
    child.expect_exact("echo ready")
    child.send("typed")
    child.expect_exact("typed")
    child.send(CTRL_A + CTRL_A)             # one Ctrl-A reaches the guest...
    child.send("z")
    child.expect_exact(CTRL_A + "z")        # ...which echoes it back
    child.send(CTRL_A + "x")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
