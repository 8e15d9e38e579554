"""The launcher's command line and vm.conf errors: one clear line, non-zero."""
from conftest import guest, run_launcher, write_conf


def one_line_error(r):
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_help_lists_commands_and_keys():
    r = run_launcher(["--help"])
    assert r.returncode == 0
    text = (r.stdout + r.stderr).decode()
    for word in ["run", "check", "-kernel", "-accel", "--flat", "memory", "debugcon"]:
        assert word in text, word


def test_version():
    r = run_launcher(["--version"])
    assert r.returncode == 0
    assert r.stdout.decode().strip()


def test_missing_conf_file_is_named(tmp_path):
    line = one_line_error(run_launcher(["run", tmp_path / "nope.conf"]))
    assert "nope.conf" in line


def test_missing_guest_file_is_named(tmp_path):
    conf = write_conf(tmp_path, vm={"flat": "absent.bin"})
    line = one_line_error(run_launcher(["run", conf]))
    assert "absent.bin" in line


def test_unknown_flag():
    line = one_line_error(run_launcher(["run", "--frobnicate"]))
    assert "--frobnicate" in line


def test_unknown_key_names_file_line_and_key(tmp_path):
    conf = tmp_path / "vm.conf"
    conf.write_text("[vm]\nflat = x.bin\ncolour = blue\n")
    line = one_line_error(run_launcher(["run", conf]))
    assert "vm.conf:3" in line and "colour" in line, line


def test_memory_out_of_range(tmp_path):
    conf = write_conf(tmp_path, vm={"flat": guest("s001"), "memory": "513G"})
    line = one_line_error(run_launcher(["run", conf]))
    assert "memory" in line, line


def test_bad_memory_flag():
    line = one_line_error(run_launcher(["run", "--flat", guest("s001"), "-m", "12Q"]))
    assert "12Q" in line, line


def test_engine_not_built_in():
    # WHP exists only in the Windows build.
    r = run_launcher(["run", "--flat", guest("s001"), "-accel", "whpx"])
    assert r.returncode != 0
    assert "whpx" in r.stderr.decode(), r.stderr.decode()


def test_unknown_engine():
    line = one_line_error(run_launcher(["run", "--flat", guest("s001"), "-accel", "vmx9"]))
    assert "vmx9" in line, line


def test_check_reports_each_engine_and_runs_s001():
    """`launcher check`: every built-in engine, available or why not, and
    s001 on each available one (the output of a bug report)."""
    r = run_launcher(["check"], timeout=30)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr.decode())
    assert out.startswith("minivm "), out
    engines = [line for line in out.splitlines() if line.startswith("engine ")]
    assert [e.split(":")[0] for e in engines] == ["engine kvm", "engine soft"], out
    available = sum(e.endswith(": available") for e in engines)
    assert available >= 1, out  # soft at least
    assert out.count("  s001: ok, printed \"Helo\" and halted") == available, out
    # x86-64: the soft engine translates (its executable memory maps here)
    assert "\n  JIT: yes, the default" in out, out


def test_check_takes_no_arguments():
    line = one_line_error(run_launcher(["check", "extra"]))
    assert "no arguments" in line
