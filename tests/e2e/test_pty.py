"""The launcher on a real terminal (a pty): raw mode while the guest runs,
Ctrl-A x stops the VM, and the terminal settings afterwards equal those
before -- also when dev-serial crashed in between."""
import os
import shlex
import signal
import termios
import time

import pexpect

from conftest import LAUNCHER, child_named, guest, write_conf

CTRL_A = "\x01"


def spawn_in_pty(tmp_path, register):
    conf = write_conf(tmp_path, vm={"engine": "kvm", "flat": guest("counter64"),
                                    "flat-mode": "long"})
    before, after = tmp_path / "before", tmp_path / "after"
    script = (f"stty -g > {before}; {shlex.quote(str(LAUNCHER))} run {conf}; "
              f"echo LAUNCHER-EXIT=$?; stty -g > {after}")
    child = pexpect.spawn("/bin/sh", ["-c", script], timeout=120,
                          dimensions=(24, 80))
    register(child)
    return child, before, after


def is_raw(fd):
    lflag = termios.tcgetattr(fd)[3]
    return not (lflag & (termios.ICANON | termios.ECHO | termios.ISIG))


def wait_raw(fd, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_raw(fd):
            return True
        time.sleep(0.02)
    return False


def launcher_pid(shell_pid):
    return child_named(shell_pid, "launcher")


def quit_and_check(child, before, after):
    child.send(CTRL_A + "x")
    child.expect(r"LAUNCHER-EXIT=(\d+)")
    assert child.match.group(1) == b"0"
    child.expect(pexpect.EOF)
    assert before.read_text() == after.read_text(), "terminal settings not restored"


def test_raw_mode_and_ctrl_a_x(tmp_path, kill_on_exit):
    child, before, after = spawn_in_pty(tmp_path, kill_on_exit)
    child.expect(r"\r?\n100\r?\n")          # the guest is running
    assert wait_raw(child.child_fd), "terminal not in raw mode while the guest runs"
    quit_and_check(child, before, after)


def test_terminal_restored_after_dev_serial_crash(tmp_path, kill_on_exit):
    child, before, after = spawn_in_pty(tmp_path, kill_on_exit)
    child.expect(r"\r?\n100\r?\n")
    launcher = launcher_pid(child.pid)
    serial = child_named(launcher, "dev-serial")
    os.kill(serial, signal.SIGKILL)
    # The restarted dev-serial takes the terminal again...
    deadline = time.monotonic() + 30
    while child_named(launcher, "dev-serial") == serial and time.monotonic() < deadline:
        time.sleep(0.05)
    child.expect(r"\r?\n\d+\r?\n")
    assert wait_raw(child.child_fd)
    # ...and Ctrl-A x still stops the VM and restores the terminal.
    quit_and_check(child, before, after)


def test_ctrl_a_h_prints_help(tmp_path, kill_on_exit):
    child, before, after = spawn_in_pty(tmp_path, kill_on_exit)
    child.expect(r"\r?\n100\r?\n")
    child.send(CTRL_A + "h")
    child.expect(r"C-a x")
    quit_and_check(child, before, after)
