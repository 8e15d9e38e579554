"""The default guest's tools (guest/tools: devwrite, devread) and /init's run
mode ("-- run CMD ARGS" on the kernel command line), which bench/console and
later e2e tests rely on."""
import os
import random
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import LAUNCHER, LINUX_BOOT_TIMEOUT, linux_args, shell_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest" / "tools"))
from devpattern import START, pattern  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("MINIVM_GUEST") == "OFF",
    reason="built with -DMINIVM_GUEST=OFF: no Linux guest to boot")


def run_mode(kill_on_exit, command):
    """Boot with "-- run COMMAND"; return (exit status, stdout, stderr).  A
    guest that starts its shell instead waits for input until the timeout."""
    p = subprocess.Popen([str(LAUNCHER), *linux_args(append=f"console=ttyS0 -- run {command}")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    kill_on_exit(p)
    out, err = p.communicate(timeout=LINUX_BOOT_TIMEOUT)
    return p.returncode, out, err


def test_run_mode_runs_devwrite_and_powers_off(kill_on_exit):
    """init runs the command after "-- run", reports its status and powers
    off; devwrite's bytes arrive on ttyS0 exactly, then its report."""
    nbytes = 5000  # not a multiple of the line or the chunk size
    status, out, err = run_mode(kill_on_exit, f"devwrite /dev/ttyS0 {nbytes} 1000")
    assert status == 0, err.decode()
    assert out.count(START) == 1, out[-2000:]
    start = out.index(START)
    assert out[start:start + nbytes] == pattern(nbytes)
    rest = out[start + nbytes:]
    assert re.search(rb"devwrite: 5000 bytes in [0-9.]+ s guest time", rest), rest
    assert b"minivm: run exit 0" in rest, rest


def test_run_mode_reports_a_failing_command(kill_on_exit):
    status, out, err = run_mode(kill_on_exit, "devwrite /dev/ttyS0 12X")
    assert status == 0, err.decode()
    assert b"usage: devwrite" in out
    assert b"minivm: run exit 2" in out


def test_devread_checksums_a_paste_and_restores_the_terminal(linux_shell):
    """devread makes the shell's own tty raw (no echo, no CR/LF mapping),
    reads exactly the bytes pasted, prints their CRC-32, and gives the
    shell its settings back."""
    child = linux_shell()
    rng = random.Random(7)
    # Printable bytes and '\r': raw mode must keep '\r' as it is.
    data = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 \r\n")
                   for _ in range(20000))
    child.sendline(f"devread /dev/ttyS0 {len(data)}")
    child.expect("devread: ready\n")
    for i in range(0, len(data), 4096):
        child.send(data[i:i + 4096])
    child.expect(r"devread: (\d+) bytes crc32 ([0-9a-f]{8}) in", timeout=300)
    assert child.match.group(1) == str(len(data))
    assert child.match.group(2) == f"{zlib.crc32(data.encode()):08x}"
    child.expect("# ")
    assert shell_run(child, "echo $((6*7))") == "42"  # echo and ICRNL back on
