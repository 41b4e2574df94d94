"""The command line wires every subcommand and fails with clear messages."""

import subprocess
import sys

from culturesim.simulator.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for path in COMMANDS:
        assert path[0] in out


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "simulate" in proc.stdout


def _command_parsers():
    """Every command's own parser, built the way `culturesim COMMAND` builds it."""
    import argparse
    import importlib

    for path, (module, _) in COMMANDS.items():
        parser = argparse.ArgumentParser(prog="culturesim " + " ".join(path))
        importlib.import_module(module).add_arguments(parser)
        yield path, parser


def test_top_level_help_says_what_culturesim_does(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    description = out.split("positional arguments")[0]
    assert "``" not in description and "`" not in description
    for word in ("language model", "survey", "participants", "distribution"):
        assert word in description, word
    assert "dataset commands" not in out  # groups say what they hold


def test_every_option_of_every_command_has_help():
    missing = [(path, action.option_strings or action.dest)
               for path, parser in _command_parsers() for action in parser._actions
               if not action.help]
    assert missing == []


def test_one_spelling_per_option_across_commands():
    import argparse

    spellings = {}
    for path, parser in _command_parsers():
        for action in parser._actions:
            if action.help is not argparse.SUPPRESS:
                spellings.setdefault(action.dest, set()).update(action.option_strings)
    assert spellings["bootstrap_samples"] == {"--bootstrap-samples"}
    # Each dest is spelled one way wherever it is listed in a help page.
    assert {d: s for d, s in spellings.items() if len(s) > 1 and d != "help"} == {}


def test_old_bootstrap_spelling_still_works_but_is_hidden():
    for path, parser in _command_parsers():
        if "bootstrap_samples" in {a.dest for a in parser._actions}:
            args = [] if path == ("ablate",) else ["some/run"]
            args += ["--out", "x"] if path != ("score",) else []
            assert parser.parse_args(args + ["--bootstrap", "7"]).bootstrap_samples == 7
            assert parser.parse_args(args + ["--bootstrap-samples", "9"]).bootstrap_samples == 9
            assert "--bootstrap " not in parser.format_help() and "--bootstrap-samples" in parser.format_help()


def test_bad_counts_are_refused_in_terms_of_the_option_typed():
    for argv, option in ((["simulate", "--questions", "0", "--out", "x"], "--questions"),
                         (["simulate", "--participants", "-3", "--out", "x"], "--participants"),
                         (["ablate", "--questions", "0", "--out", "x"], "--questions"),
                         (["score", "run", "--bootstrap-samples", "-1"], "--bootstrap-samples")):
        proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", *argv], capture_output=True, text=True)
        assert proc.returncode == 2, proc
        last = proc.stderr.strip().splitlines()[-1]
        assert f"argument {option}" in last and "limit=" not in last, last


def test_plan_setting_errors_name_the_option_typed():
    for argv, option in ((["--temperature-range", "2,1"], "--temperature-range"),
                         (["--do-sample-prob", "3"], "--do-sample-prob")):
        proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "simulate", *argv, "--out", "never-made"],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"culturesim: error: {option} ") and "_range=" not in last and "_prob=" not in last, last
