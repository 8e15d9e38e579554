"""The nested arm64 rig, seen from the build host: run.sh boots an L1 arm64
Linux under QEMU with the cross-built minivm; its /init runs the checks
with KVM (s003, then an arm64 Linux guest with the network) and ends with
"N passed, N failed", which this test parses (run.sh prints one itself when
L1 wedges or the rig's timeout passes)."""
import os
import re
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# /dev/kvm; s003's output, its status, its diagnosis, no sandbox stop; the
# Linux guest's init marker, nproc = 2, output on hvc0, the DHCP lease,
# dev-serial restarted under the guest, poweroff -> 0, no sandbox stop.
EXPECTED_CHECKS = 12


def test_nested_arm64_kvm():
    build = os.environ["MINIVM_BUILD"]
    start = time.monotonic()
    run = subprocess.run(["sh", os.path.join(HERE, "run.sh"), build],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=960, check=False)
    out = run.stdout.decode(errors="replace")
    print(out)
    print(f"nested arm64 rig: {time.monotonic() - start:.1f} s")
    summary = re.findall(r"^(\d+) passed, (\d+) failed\r?$", out, re.M)
    assert summary, "L1 printed no 'N passed, N failed' line (boot failed or timed out)"
    passed, failed = map(int, summary[-1])
    assert (passed, failed) == (EXPECTED_CHECKS, 0), \
        [line for line in out.splitlines() if line.startswith("FAIL")]
