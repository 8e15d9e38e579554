"""ttyS0 input typed while the guest prints without pause (issue 7's lost
edge).  The core raises and lowers IRQ 4 itself (THRE from its THR
writes, acknowledges, the receive ring) and dev-serial raises it for
input; IRQ 4 is edge-triggered, so if the two ever leave the line high
after the guest's 8250 handler read IIR = "no interrupt", no later cause
makes an edge and the guest waits forever: output stops, input is never
read.  A merge of the core's THRE raise hung exactly so (e2e_net: long
command lines echoed while the guest printed).  Here a background loop
prints lines to the console while the host types lines into `cat`, echo
on; every typed line must arrive, and the guest must still answer."""
import hashlib
import os
import random
import threading
import time

import pexpect
import pytest

from conftest import PROMPT
from conftest import shell_run as run

pytestmark = pytest.mark.skipif(
    os.environ.get("MINIVM_GUEST") == "OFF",
    reason="built with -DMINIVM_GUEST=OFF: no Linux guest to boot")

TYPED_LINES = 400
# Seconds the printing guest may stay silent, and take to answer once typing
# has ended: generous for a loaded host; a guest with a lost edge never
# prints or answers again.
ANSWER_TIMEOUT = 120
TICK = "tick-tock-" * 6


class Typist(threading.Thread):
    """Types each line as a person pasting in bursts would: a few lines,
    then a pause, so input keeps arriving while the guest prints."""

    def __init__(self, fd, lines):
        super().__init__(daemon=True)
        self.fd, self.lines, self.typed = fd, lines, 0

    def run(self):
        rng = random.Random(7)
        try:
            for i, line in enumerate(self.lines):
                os.write(self.fd, (line + "\n").encode())
                self.typed = i + 1
                if i % 4 == 3:
                    time.sleep(rng.uniform(0.0, 0.03))
            os.write(self.fd, b"\x04")  # Ctrl-D at a line's start: cat ends
        except OSError:
            pass  # the guest is gone: the test has failed already


def drain_while_typing(child, typist):
    """Read the guest's output (so that the terminal never blocks it) until
    the typist is done.  The guest prints without pause: silence for
    ANSWER_TIMEOUT means it hangs."""
    while typist.is_alive():
        try:
            child.read_nonblocking(65536, timeout=ANSWER_TIMEOUT)
        except pexpect.TIMEOUT:
            pytest.fail(f"the guest stopped printing with {typist.typed} of "
                        f"{len(typist.lines)} lines typed")


def test_typing_while_the_guest_prints(linux_shell):
    shell = linux_shell()
    rng = random.Random(3)
    lines = ["typed-%04d-" % n + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                         for _ in range(50)) for n in range(TYPED_LINES)]
    shell.sendline(f"(while :; do echo {TICK}; done) & cat > /tmp/typed")
    shell.expect(TICK)
    typist = Typist(shell.child_fd, lines)
    typist.start()
    drain_while_typing(shell, typist)
    # Still printing: the guest takes the next command, ends the loop and
    # answers.  A guest whose IRQ 4 lost its edge answers nothing.
    shell.sendline("kill %1; wait; echo 'answ''ered'")
    shell.expect("answered", timeout=ANSWER_TIMEOUT)
    shell.expect(PROMPT, timeout=ANSWER_TIMEOUT)
    typed = "".join(line + "\n" for line in lines)
    got = run(shell, "wc -l < /tmp/typed; sha256sum /tmp/typed", timeout=ANSWER_TIMEOUT)
    count, digest = got.split("\n")[0].strip(), got.split("\n")[-1].split()[0]
    assert count == str(TYPED_LINES)
    assert digest == hashlib.sha256(typed.encode()).hexdigest()
