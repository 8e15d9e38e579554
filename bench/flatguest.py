"""Helpers shared by the benchmarks that run one flat binary under both
minivm (--flat) and QEMU.

QEMU has no --flat: its pc machine starts at the reset vector, so it gets a
64 KiB BIOS of HLT bytes whose reset vector jumps to 0000:0000, the guest is
loaded at 0 with the loader device, and the guest ends the run by writing
QEMU's isa-debug-exit port 0xf4 (unowned under minivm: logged once, then the
guest's HLT ends the run there).
"""
import os
import struct


def patched(src, offset, fmt, value, tmp):
    """A copy of the guest at src with value packed at offset (struct fmt)."""
    data = bytearray(open(src, "rb").read())
    struct.pack_into(fmt, data, offset, value)
    path = os.path.join(tmp, f"{os.path.basename(src)}.{value}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def jmp0_bios(tmp):
    """Write the reset-vector BIOS into tmp; return its path."""
    path = os.path.join(tmp, "jmp0.bios")
    image = bytearray(b"\xf4" * 65536)
    image[0xFFF0:0xFFF5] = b"\xea\x00\x00\x00\x00"  # jmp 0000:0000
    with open(path, "wb") as f:
        f.write(image)
    return path


def qemu_flat_cmd(bios, guest, accel, memory="256M"):
    """QEMU's command line for a flat real-mode guest; add the output
    device(s).  isa-debug-exit makes QEMU exit with status 1 for a 0 write."""
    return ["qemu-system-x86_64", "-M", "pc", "-accel", accel, "-m", memory,
            "-bios", bios, "-display", "none", "-nodefaults", "-no-reboot",
            "-device", f"loader,file={guest},addr=0x0,force-raw=on",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
