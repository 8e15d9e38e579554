"""The bytes guest/tools/devwrite.c writes, for the host side of benchmarks
and tests (bench/console/run.py, tests/e2e/test_guest_tools.py): 64-byte
printable lines, line n (from 0) is n mod 10^8 as 8 digits, a space,
TAIL and a newline; the last line is cut at the byte count."""

TAIL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01"
LINE = 64
# The first bytes of every payload: where it starts in a console's output.
START = b"00000000 " + TAIL[:16]


def pattern(nbytes):
    lines = (nbytes + LINE - 1) // LINE
    return b"".join(b"%08d " % (n % 100000000) + TAIL + b"\n" for n in range(lines))[:nbytes]
