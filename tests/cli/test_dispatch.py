"""The `ifa-bench` entry point: argument errors exit 2 with one line and no traceback."""
import subprocess
import sys


from bench.cli import COMMANDS, main


def test_every_command_module_exposes_the_protocol():
    import importlib

    for name in COMMANDS:
        module = importlib.import_module(f"bench.commands.{name}")
        assert callable(module.add_arguments) and callable(module.run), name


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command 'frobnicate'" in err[0] and "did you mean" not in err[0]


def test_console_script_reports_usage_errors_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "measure", "--input", "axb"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
