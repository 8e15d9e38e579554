"""Shared helpers for the end-to-end tests.

Every test runs the real launcher, which starts the real vmm-core and device
processes talking over real nng sockets.  ctest passes the build's locations in
MINIVM_BIN and MINIVM_GUESTS; running pytest by hand needs the same variables.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

BIN = Path(os.environ.get("MINIVM_BIN", "build/bin"))
GUESTS = Path(os.environ.get("MINIVM_GUESTS", "build/guests"))
LAUNCHER = BIN / "launcher"


def write_conf(directory, vm=None, serial=None):
    """Write a vm.conf with the given [vm] and [serial] keys; return its path."""
    lines = ["[vm]"]
    lines += [f"{k} = {v}" for k, v in (vm or {}).items()]
    lines += ["[serial]"]
    lines += [f"{k} = {v}" for k, v in (serial or {}).items()]
    path = Path(directory) / "vm.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def guest(name):
    path = GUESTS / f"{name}.bin"
    assert path.exists(), f"test guest {path} was not built"
    return path


def run_launcher(args, timeout=120, stdin=subprocess.DEVNULL):
    """Run the launcher to completion with pipes; return CompletedProcess."""
    return subprocess.run([str(LAUNCHER), *map(str, args)], stdin=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def children(pid):
    """PIDs of the direct children of pid (Linux /proc)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def process_name(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def child_named(pid, name, timeout=30):
    """Wait until pid has a child process called name; return its PID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kid in children(pid):
            if process_name(kid) == name:
                return kid
        time.sleep(0.05)
    raise AssertionError(f"no child process {name!r} of {pid} within {timeout}s")


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def kill_on_exit():
    """Processes registered here are killed when the test ends, pass or fail."""
    procs = []
    yield procs.append
    for p in procs:
        # Started with start_new_session=True: the group holds its children too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if hasattr(p, "poll"):      # subprocess.Popen
            p.wait()
        else:                       # pexpect.spawn
            p.close(force=True)


# Engines every flat test guest runs on, with the same expected results.  KVM
# must be usable on CI machines (it is, as PVM, on ours): a missing /dev/kvm
# fails the KVM cases instead of skipping them, so the suite cannot pass
# without really running them.
ENGINES = ["kvm", "soft"]
