"""The ``culturesim`` command: one entry point, one subcommand per job.

``DESCRIPTION`` is what ``culturesim --help`` opens with: what the tool does, in plain text.

Each subcommand lives in its own module of this package (``simulate``, ``score``, ``report``,
``dataset_build``, ``space_launch``, ...) exposing ``add_arguments(parser)`` and
``main(args) -> int``: those modules only parse arguments and call library functions; the
library defines no command line. This file only wires them, importing a module when its
command is used, so ``culturesim --help`` stays fast and a broken optional part cannot break
the rest. ``python -m culturesim.simulator.cli`` runs the same ``main`` (``__main__.py``).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback
from typing import NoReturn

from culturesim.simulator.backends.base import SecretFilter

DESCRIPTION = (
    "culturesim measures how well a language model's values match real survey populations "
    "(GSS, World Values Survey), the way the DEF paper does (Liu et al. 2025): it runs the model "
    "as many simulated survey participants, turns their answers into a distribution per question, "
    "and compares it with how real respondents answered. Typical use: culturesim simulate "
    "(writes a run folder), culturesim score (its numbers), culturesim report (an HTML report)."
)
EPILOG = "Run culturesim COMMAND --help for a command's options."

# command path -> (module, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("dataset", "build"): ("culturesim.simulator.cli.dataset_build", "build the Hub-ready dataset folder from ../shared/sources"),
    ("dataset", "publish"): ("culturesim.simulator.cli.dataset_publish", "upload a built dataset folder to the Hugging Face Hub"),
    ("dataset", "expand"): ("culturesim.simulator.cli.dataset_expand", "rephrase each question with an LLM, reviewed in code (a paraphrases config)"),
    ("simulate",): ("culturesim.simulator.cli.simulate", "run a model as many simulated survey participants (DEF)"),
    ("merge",): ("culturesim.simulator.cli.merge", "join the shards of a run split with --shard K/N"),
    ("score",): ("culturesim.simulator.cli.score", "score a run's responses against the human distributions"),
    ("report",): ("culturesim.simulator.cli.report", "the paper's analyses for one or more runs, as HTML, JSON and PNG"),
    ("ablate",): ("culturesim.simulator.cli.ablate", "diversity-plan and language ablations on the same questions"),
    ("study",): ("culturesim.simulator.cli.study", "run or continue a study (models x plans x estimators x cultures, resumable)"),
    ("results",): ("culturesim.simulator.cli.results", "the results table: add a scored run, or show the table"),
    ("invariance",): ("culturesim.simulator.cli.invariance", "how far answers move under option order, labels, reversal, paraphrase"),
    ("harness-path",): ("culturesim.simulator.cli.harness_path", "print the lm-evaluation-harness task folder (lm_eval --include_path)"),
    ("metric", "publish"): ("culturesim.simulator.cli.metric_publish", "upload the evaluate metric module as a Hugging Face Space"),
    ("space", "launch"): ("culturesim.simulator.cli.space_launch", "launch the Gradio Space locally"),
    ("space", "publish"): ("culturesim.simulator.cli.space_publish", "upload the Space folder to the Hugging Face Hub"),
}

GROUP_HELP = {
    "dataset": "build or publish the survey dataset (questions with human answer distributions)",
    "metric": "publish the evaluate metric module",
    "space": "launch or publish the Gradio app (culturesim space alone launches it)",
}


# Exit statuses: 0 done; 2 a user error (bad argument, unusable folder, unreachable server),
# nothing to resume; 3 the run ended with failed rows that `--resume` asks again; 1 a bug.
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_BUG = 1


class Parser(argparse.ArgumentParser):
    """argparse with the one error format of every culturesim failure: a single line
    ``culturesim: error: ...`` naming the option and where to read about it, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"culturesim: error: {message} (see: {self.prog} --help)\n")


def command_word(argv: list[str]) -> str | None:
    """The subcommand in ``argv``: the first word that is not a top-level option (``-v``)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="culturesim", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages, and show the traceback of a failure")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    wanted = command_word(argv)
    for path, (module_name, help_text) in COMMANDS.items():
        if len(path) == 1:
            sub = top.add_parser(path[0], help=help_text)
        else:
            if path[0] not in groups:
                group_parser = top.add_parser(path[0], help=GROUP_HELP.get(path[0], f"{path[0]} commands"))
                groups[path[0]] = group_parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            sub = groups[path[0]].add_parser(path[1], help=help_text)
        sub.set_defaults(_module=module_name)
        # Only the chosen command's module is imported to add its arguments.
        if wanted == path[0]:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


_OS_FIXES = {
    errno.ENOSPC: "free space on that file system, or write somewhere else",
    errno.EDQUOT: "free space within your quota, or write somewhere else",
    errno.EACCES: "choose a location you may write to, or fix its permissions",
    errno.EPERM: "choose a location you may write to, or fix its permissions",
    errno.EROFS: "the file system is read-only: choose a location on a writable one",
    errno.ENOTDIR: "a file stands where a folder is needed: choose another path",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.ENOENT: "check the path",
}


def describe_error(exc: BaseException) -> str:
    """The one line a user sees for ``exc``. Our own errors already name the value and the fix;
    an operating-system error gets its file and a fix from its errno."""
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES and str(exc).startswith("[Errno"):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}: {_OS_FIXES[exc.errno]}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "anthropic", "filelock")
"""One line per HTTP request or lock is -v material; their warnings and errors still show."""


def _logging_for_command(verbose: bool) -> tuple[list[tuple[logging.Handler, logging.Filter]], dict[str, int]]:
    """Every log line passes the secret filter (keys in URLs, registered API keys); the chatty
    libraries are quiet without -v. Returns what to undo (``main`` may run inside a process
    that goes on, e.g. a test or a notebook)."""
    added = []
    for handler in logging.getLogger().handlers:
        f = SecretFilter()
        handler.addFilter(f)
        added.append((handler, f))
    levels = {}
    if not verbose:
        for name in QUIET_LOGGERS:
            levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.WARNING)
    return added, levels


def _restore_logging(added: list[tuple[logging.Handler, logging.Filter]], levels: dict[str, int]) -> None:
    for handler, f in added:
        handler.removeFilter(f)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `culturesim space` alone launches the Space.
    word = command_word(argv)
    if word == "space" and "-h" not in argv and "--help" not in argv:
        at = argv.index("space")
        if at + 1 == len(argv) or argv[at + 1].startswith("-"):
            argv.insert(at + 1, "launch")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args._argv = list(argv)  # as typed: what a "continue with ..." hint repeats
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    undo = _logging_for_command(args.verbose)
    try:
        module = importlib.import_module(args._module)
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("culturesim: interrupted (a run folder keeps every finished row: continue with --resume)",
              file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        # ModuleNotFoundError, FileNotFoundError, PermissionError, NotADirectoryError and
        # disk-full errors are OSError/ImportError-likes: all user-fixable, all one line.
        if args.verbose:
            traceback.print_exc()
        print(f"culturesim: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"culturesim: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback with -v
        if args.verbose:
            traceback.print_exc()
        print(f"culturesim: error: unexpected {type(exc).__name__}: {describe_error(exc)} (a bug in culturesim; "
              "run again with -v for the traceback and report it)", file=sys.stderr)
        return EXIT_BUG
    finally:
        _restore_logging(*undo)

