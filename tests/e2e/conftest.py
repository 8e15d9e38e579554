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

import pexpect
import pytest

BIN = Path(os.environ.get("MINIVM_BIN", "build/bin"))
GUESTS = Path(os.environ.get("MINIVM_GUESTS", "build/guests"))
LAUNCHER = BIN / "launcher"

# The default Linux guest (guest/build-guest.sh), built into MINIVM_BUILD/guest
# when the CMake option MINIVM_GUEST is on.
LINUX_GUEST_DIR = Path(os.environ.get("MINIVM_BUILD", "build")) / "guest"
LINUX_KERNEL = LINUX_GUEST_DIR / "bzImage"
LINUX_INITRD = LINUX_GUEST_DIR / "initrd.img"
LINUX_BOOT_TIMEOUT = 300  # seconds to the shell under emulation, with margin
PROMPT = "# "             # ash also sends ESC[6n after it: never anchor


@pytest.fixture(scope="session", autouse=True)
def private_kernel_cache(tmp_path_factory):
    """vmm-core keeps the unpacked kernel in the user's cache (kernel_cache.h):
    the tests' runs keep theirs in a directory of their own, so that they
    neither depend on nor fill the cache of whoever runs them."""
    saved = os.environ.get("MINIVM_CACHE_DIR")
    os.environ["MINIVM_CACHE_DIR"] = str(tmp_path_factory.mktemp("kernel-cache"))
    yield
    if saved is None:
        del os.environ["MINIVM_CACHE_DIR"]
    else:
        os.environ["MINIVM_CACHE_DIR"] = saved


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


def linux_args(extra_args=(), append="console=ttyS0"):
    """The launcher's arguments for the default Linux guest on the soft engine."""
    assert LINUX_KERNEL.exists() and LINUX_INITRD.exists(), f"no guest in {LINUX_GUEST_DIR}"
    return ["run", "-accel", "soft", "-m", "256M", "-kernel", str(LINUX_KERNEL),
            "-initrd", str(LINUX_INITRD), "-append", append, *map(str, extra_args)]


def boot_linux(extra_args=(), append="console=ttyS0"):
    """Start the default Linux guest with the soft engine plus extra_args;
    return the pexpect child once the shell prompt is there."""
    child = pexpect.spawn(str(LAUNCHER), linux_args(extra_args, append),
                          timeout=LINUX_BOOT_TIMEOUT, encoding="utf-8",
                          codec_errors="replace", dimensions=(24, 200))
    child.expect("minivm: init ready")
    child.expect(PROMPT)
    return child


def shell_run(child, command, timeout=120):
    """Run a shell command; return its output.  What precedes the next
    prompt is the echoed command line, the output, and the prompt's "/ "."""
    child.sendline(command)
    child.expect(PROMPT, timeout=timeout)
    lines = child.before.replace("\r", "").split("\n")
    return "\n".join(lines[1:-1]).strip()


@pytest.fixture
def linux_shell():
    """A function booting the default Linux guest with extra launcher flags
    (and optionally another kernel command line): it returns the pexpect
    child at the shell prompt.  Every guest it started is killed when the
    test ends.  E.g. linux_shell(["-smp", "2"]) or
    linux_shell(["-console", "hvc0"], append="console=hvc0")."""
    children = []

    def start(extra_args=(), append="console=ttyS0"):
        child = boot_linux(extra_args, append)
        children.append(child)
        return child
    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


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
