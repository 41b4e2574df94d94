"""The command line wires every subcommand and fails with clear messages."""

import subprocess
import sys

from simulator.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for path in COMMANDS:
        assert path[0] in out


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "simulate" in proc.stdout
