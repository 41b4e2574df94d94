"""Argument types shared by the ``culturesim`` subcommands.

Why: a bad number should be refused by argparse itself, so the message names the option the
user typed (``argument --questions: 0 is not a whole number >= 1``) and exits 2, instead of
surfacing later from deep inside a library call in terms of an internal parameter
(``limit=0 must be >= 1``). One spelling per option across commands lives here too: a renamed
option keeps its old spelling as a hidden alias (``add_hidden_alias``).
"""

from __future__ import annotations

import argparse

__all__ = ["add_hidden_alias", "csv_list", "nonnegative_int", "positive_int"]


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number >= {low}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: questions, participants, beams, tokens)."""
    return _int(text, 1)


def nonnegative_int(text: str) -> int:
    """A whole number >= 0 (e.g. ``--bootstrap-samples 0``: no intervals)."""
    return _int(text, 0)


def csv_list(text: str) -> list[str]:
    """Comma-separated words, blanks dropped (``--plans none, all`` -> ``["none", "all"]``)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_hidden_alias(parser: argparse.ArgumentParser, old: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a spelling of the option stored in ``dest`` without listing it in
    ``--help`` (old scripts keep working; the help shows one spelling)."""
    parser.add_argument(old, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)
