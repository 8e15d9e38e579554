"""The test guests (tests/guests/*.S) through vmm-core -> ipc -> dev-serial."""
import pytest

from conftest import ENGINES, guest, run_launcher, write_conf


@pytest.mark.parametrize("engine", ENGINES)
def test_s001_prints_helo_through_debugcon(tmp_path, engine):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("s001")},
                      serial={"debugcon": "0xf1"})
    r = run_launcher(["run", conf])
    assert r.stdout == b"Helo\n", r.stderr.decode()
    assert r.returncode == 0, r.stderr.decode()


@pytest.mark.parametrize("engine", ENGINES)
def test_long_mode_guest_prints_through_uart(tmp_path, engine):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("uart64"),
                                    "flat-mode": "long"})
    r = run_launcher(["run", conf])
    assert r.stdout == b"Hello from long mode via the 16550\n", r.stderr.decode()
    assert r.returncode == 0, r.stderr.decode()


@pytest.mark.parametrize("engine", ENGINES)
def test_mmio_guest_reaches_mmio_uart_and_unowned_reads_all_ones(tmp_path, engine):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("mmio64"),
                                    "flat-mode": "long"},
                      serial={"mmio-uart": "0xd0000000"})
    r = run_launcher(["run", conf])
    out = r.stdout.decode()
    assert "unowned mmio read: ffffffff" in out, (out, r.stderr.decode())
    assert out.splitlines()[0].strip(), "nothing printed through the MMIO UART"
    assert r.returncode == 0, r.stderr.decode()
    # The unowned access is logged, once.
    assert r.stderr.decode().count("0xd0100000") == 1, r.stderr.decode()


@pytest.mark.parametrize("engine", ENGINES)
def test_triple_fault_exits_nonzero_with_diagnosis(tmp_path, engine):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("triple")})
    r = run_launcher(["run", conf])
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "triple fault" in err.lower(), err
    assert "rip" in err.lower(), err


def test_flags_without_conf_file(tmp_path):
    r = run_launcher(["run", "--flat", guest("s001"), "-accel", "kvm",
                      "--debugcon", "0xf1"])
    assert r.stdout == b"Helo\n", r.stderr.decode()
    assert r.returncode == 0


def test_command_line_overrides_conf(tmp_path):
    # The file names another guest; --flat replaces it.
    conf = write_conf(tmp_path, vm={"engine": "kvm", "flat": guest("uart64")},
                      serial={"debugcon": "0xf1"})
    r = run_launcher(["run", conf, "--flat", guest("s001")])
    assert r.stdout == b"Helo\n", r.stderr.decode()
    assert r.returncode == 0
