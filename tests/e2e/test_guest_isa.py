"""Instruction-set extensions in a real guest on the soft CPU, in one boot:
small programs of guest/tools (built with the host compiler) print the same
bytes in the guest as on the host.
- x87check: long double arithmetic in all rounding modes, libm's long double
  functions and printf("%Lf") - before the x87 was implemented, its first
  x87 instruction killed it with SIGILL.
- isacheck (static, -march=x86-64-v2): SSE4.2 string compares, CRC32,
  POPCNT, CMPXCHG16B, LAHF/SAHF, SSSE3, SSE4.1, MMX, glibc's string functions.
- isacheck-dyn: the same linked against the host's (Debian's) shared glibc,
  added with its libraries to a second initrd archive: its ld.so checks the
  x86-64 baseline (MMX included) and glibc picks SSE4.2/SSSE3 string
  functions by CPUID.
The guest's /proc/cpuinfo must list the x86-64-v2 flags and ld.so must call
x86-64-v2 supported."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import LAUNCHER, LINUX_BOOT_TIMEOUT, LINUX_GUEST_DIR, LINUX_INITRD, linux_args

pytestmark = pytest.mark.skipif(
    os.environ.get("MINIVM_GUEST") == "OFF",
    reason="built with -DMINIVM_GUEST=OFF: no Linux guest to boot")

TOOLS = LINUX_GUEST_DIR / "tools-bin"
DYN_TOOL = LINUX_GUEST_DIR / "tools-dyn" / "isacheck-dyn"
STATIC_TOOLS = ["x87check", "isacheck"]
V2_FLAGS = ["fpu", "mmx", "fxsr", "sse", "sse2", "pni", "ssse3", "cx16", "sse4_1", "sse4_2", "popcnt", "lahf_lm"]

SCRIPT = """#!/bin/sh
echo "==cpuinfo"
grep -m1 '^flags' /proc/cpuinfo
echo "==ld.so"
/lib64/ld-linux-x86-64.so.2 --help | grep x86-64-v
for t in x87check isacheck isacheck-dyn; do
  echo "==$t"
  $t || echo "==$t failed: $?"
done
echo "==end"
"""


def newc(entries):
    """An uncompressed cpio (newc) archive of (path, mode, data) entries;
    data None for a directory."""
    out = bytearray()

    def put(name, mode, data, ino):
        name_b = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08x" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (path, mode, data) in enumerate(entries, start=1000):
        put(path, mode | (0o040000 if data is None else 0o100000), data or b"", ino)
    put("TRAILER!!!", 0, b"", 0)
    return bytes(out)


def shared_libraries(program):
    """The paths ldd names for program: its libraries and its interpreter."""
    out = subprocess.run(["ldd", str(program)], check=True, capture_output=True, text=True).stdout
    paths = re.findall(r"(/\S+) \(0x", out)
    assert any("ld-linux" in p for p in paths) and any("libc.so" in p for p in paths), out
    return paths


def isa_initrd(directory):
    """The default initrd followed by an archive with isacheck-dyn, its
    libraries and the test script (Linux unpacks concatenated archives)."""
    files = [("usr/bin/isacheck-dyn", 0o755, DYN_TOOL.read_bytes()), ("isa.sh", 0o755, SCRIPT.encode())]
    for lib in shared_libraries(DYN_TOOL):
        files.append((lib.lstrip("/"), 0o755, Path(lib).resolve().read_bytes()))
    dirs = sorted({str(Path(p).parents[i]) for p, _, _ in files for i in range(len(Path(p).parents) - 1)})
    base = LINUX_INITRD.read_bytes()
    path = Path(directory) / "initrd-isa.img"
    path.write_bytes(base + b"\0" * (-len(base) % 4) + newc([(d, 0o755, None) for d in dirs] + files))
    return path


def guest_sections(kill_on_exit, initrd):
    """Boot with the ISA script; return {section: bytes} of its output."""
    args = linux_args(append="console=ttyS0 -- run sh /isa.sh")
    args[args.index("-initrd") + 1] = str(initrd)
    p = subprocess.Popen([str(LAUNCHER), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    kill_on_exit(p)
    out, err = p.communicate(timeout=LINUX_BOOT_TIMEOUT)
    assert p.returncode == 0, err.decode()
    out = out.replace(b"\r\n", b"\n")
    assert b"minivm: run exit 0" in out and b"==end" in out, out[-3000:]
    assert b"unimplemented instruction" not in err, err.decode()
    body = out[out.index(b"==cpuinfo\n"):out.index(b"==end")]
    sections = {}
    for part in body.split(b"==")[1:]:
        name, _, text = part.partition(b"\n")
        sections[name.decode()] = text
    return sections


def test_isa_programs_print_what_they_print_on_the_host(kill_on_exit, tmp_path):
    natives = {}
    for tool in STATIC_TOOLS:
        natives[tool] = subprocess.run([str(TOOLS / tool)], check=True, capture_output=True, timeout=60).stdout
    natives["isacheck-dyn"] = subprocess.run([str(DYN_TOOL)], check=True, capture_output=True, timeout=60).stdout
    assert natives["x87check"].count(b"\n") > 20  # the programs ran and printed their tables
    assert natives["isacheck"].count(b"\n") > 400 and natives["isacheck-dyn"] == natives["isacheck"]

    sections = guest_sections(kill_on_exit, isa_initrd(tmp_path))
    flags = sections["cpuinfo"].decode().split(":", 1)[1].split()
    assert not [f for f in V2_FLAGS if f not in flags], flags
    assert b"x86-64-v2 (supported, searched)" in sections["ld.so"], sections["ld.so"]
    for tool, native in natives.items():
        guest = sections[tool]
        assert native in guest, (tool, guest[-3000:])
