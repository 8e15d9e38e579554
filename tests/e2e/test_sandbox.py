"""Issue 12: every process the launcher starts runs in its sandbox (seccomp
filter, no_new_privs, no capabilities); the guest still boots and answers, a
killed dev-serial comes back sandboxed, and --no-sandbox turns it all off.
What a sandbox forbids is tested on the same profiles in
tests/unit/test_sandbox.c."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ENGINES, LAUNCHER, LINUX_INITRD, LINUX_KERNEL, boot_linux, child_named, children,
                      guest, process_name, shell_run, write_conf)
from test_linux_boot import wait_exit

GUEST_BUILT = os.environ.get("MINIVM_GUEST") != "OFF"


def status_fields(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(re.findall(r"^(\w+):\s*(.*)$", text, re.M))


def sandboxed(pid):
    f = status_fields(pid)
    return f["Seccomp"] == "2" and f["NoNewPrivs"] == "1" and f["CapEff"] == "0" * 16


def wait_all_sandboxed(launcher_pid, names, timeout=30):
    """Every child of the launcher (at least the named ones) sandboxed; a
    process enters its sandbox once attached, so wait for that."""
    deadline = time.monotonic() + timeout
    while True:
        kids = {k: process_name(k) for k in children(launcher_pid)}
        if set(names) <= set(kids.values()) and all(sandboxed(k) for k in kids):
            return kids
        if time.monotonic() > deadline:
            raise AssertionError("not every process is sandboxed: " + ", ".join(
                f"{n} {status_fields(k).get('Seccomp')}/{status_fields(k).get('NoNewPrivs')}/"
                f"{status_fields(k).get('CapEff')}" for k, n in kids.items()))
        time.sleep(0.05)


@pytest.mark.skipif(not GUEST_BUILT, reason="built with -DMINIVM_GUEST=OFF: no Linux guest")
def test_linux_guest_runs_sandboxed_and_survives_a_device_restart():
    assert LINUX_KERNEL.exists() and LINUX_INITRD.exists()
    # The network too: dev-net is the one device with host sockets.
    child = boot_linux(["-nic", "user"])
    try:
        kids = wait_all_sandboxed(child.pid, ["vmm-core", "dev-serial", "dev-net"])
        if os.getuid() == 0:  # the soft engine's core and every device become nobody
            for k in kids:
                assert status_fields(k)["Uid"].split() == ["65534"] * 4
        # (init's DHCP line may land before, inside or after the answer)
        assert "sandboxed-42" in shell_run(child, "echo sandboxed-$((6*7))").splitlines()

        serial = child_named(child.pid, "dev-serial")
        os.kill(serial, signal.SIGKILL)
        child.expect("re-attached .*, state resumed")
        wait_all_sandboxed(child.pid, ["vmm-core", "dev-serial", "dev-net"])
        assert child_named(child.pid, "dev-serial") != serial
        # (the line may come back twice: the new dev-serial resets the terminal)
        assert "again-42" in shell_run(child, "echo again-$((6*7))").splitlines()
        child.sendline("poweroff")
        wait_exit(child)
        child.close()
        assert child.exitstatus == 0
        assert "sandbox" not in (child.before or "")
    finally:
        child.close(force=True)


def start(tmp_path, engine, extra=()):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("counter64"),
                                    "flat-mode": "long"})
    return subprocess.Popen([str(LAUNCHER), "run", str(conf), *extra], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_flat_guest_processes_are_sandboxed(tmp_path, engine):
    p = start(tmp_path, engine)
    try:
        wait_all_sandboxed(p.pid, ["vmm-core", "dev-serial"])
        time.sleep(1)  # the guest runs on, nothing was forbidden
        assert p.poll() is None, p.stderr.read().decode()
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_no_sandbox_flag(tmp_path):
    p = start(tmp_path, "soft", ["--no-sandbox"])
    try:
        core = child_named(p.pid, "vmm-core")
        serial = child_named(p.pid, "dev-serial")
        time.sleep(2)  # long past attaching: they would be sandboxed by now
        for pid in (core, serial):
            f = status_fields(pid)
            assert f["Seccomp"] == "0" and f["NoNewPrivs"] == "0"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
