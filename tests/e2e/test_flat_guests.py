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
def test_rep_outsb_prints_helo_through_debugcon(tmp_path, engine):
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("outs16")},
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


BAD_INPUT_OUTPUT = b"rdmsr: #GP\nwrmsr: #GP\nirq to APIC 127: raised\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_input_faults_or_is_dropped_never_hangs(tmp_path, engine):
    """An MSR nobody has faults (#GP) in the guest; an IOAPIC entry aimed at
    a LAPIC that does not exist drops its interrupt, and KVM says so once."""
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("badinput64"),
                                    "flat-mode": "long"})
    r = run_launcher(["run", conf])
    err = r.stderr.decode()
    assert r.stdout == BAD_INPUT_OUTPUT, err
    assert r.returncode == 0, err
    if engine == "kvm":
        assert err.count("APIC 127") == 1, err


@pytest.mark.parametrize("engine", ENGINES)
def test_level_interrupt_fires_again_after_each_eoi(tmp_path, engine):
    """The EOI of a level-triggered vector reaches the IOAPIC (on KVM: the
    EOI exit for a vector its GSI routes attribute to the IOAPIC)."""
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("level64"),
                                    "flat-mode": "long"})
    r = run_launcher(["run", conf])
    assert r.stdout == b"level irq: 5 deliveries\n", r.stderr.decode()
    assert r.returncode == 0, r.stderr.decode()


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


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("memory,expected", [("3136M", b"high ram: ok\n"),
                                             ("256M", b"high ram: not there\n")])
def test_ram_beyond_3g_is_at_4g(tmp_path, engine, memory, expected):
    """3 GiB + 64 MiB: the last 64 MiB sit at 4 GiB, above the MMIO hole
    (guest RAM is a sparse shared object: this costs what the guest touches)."""
    conf = write_conf(tmp_path, vm={"engine": engine, "flat": guest("high64"),
                                    "flat-mode": "long", "memory": memory})
    r = run_launcher(["run", conf])
    assert r.stdout == expected, r.stderr.decode()
    assert r.returncode == 0, r.stderr.decode()


def test_memory_beyond_the_host_is_refused(tmp_path):
    conf = write_conf(tmp_path, vm={"engine": "soft", "flat": guest("s001"),
                                    "memory": "512G"})
    r = run_launcher(["run", conf])
    assert r.returncode == 1
    assert b"this host has" in r.stderr and b"RAM and swap" in r.stderr, r.stderr.decode()
