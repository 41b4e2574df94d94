"""Secrets never reach a run folder, a log line or an error message.

Why here, at the bottom of the import drawing: ``config.json`` records the command that made a
run and ``.culturesim.writer`` the command that holds its lock, so masking credentials belongs to
the run folder's contract; the backends register the keys they are given (``remember_secret``,
through ``culturesim.simulator.backends.base.register_secret``) and mask their own errors and logs
with the same ``redact_secrets``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["recorded_command", "redact_argv", "redact_secrets", "remember_secret"]

_SECRETS: set[str] = set()
_URL_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/@\s'\"]+@")
_QUERY_SECRET = re.compile(r"([?&;](?:[^=&\s'\"]*?)(?:key|token|secret|password|passwd|auth|sig|signature|credential)"
                           r"[^=&\s'\"]*=)[^&#\s'\"]+", re.IGNORECASE)
_SECRET_FLAG = re.compile(r"--?[\w-]*(key|token|secret|password)", re.IGNORECASE)


def remember_secret(secret: str) -> None:
    """Mask ``secret`` in everything ``redact_secrets`` cleans from now on in this process."""
    _SECRETS.add(secret)


def redact_secrets(text: str) -> str:
    """``text`` with remembered secrets, URL user info and key-like query values masked."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _QUERY_SECRET.sub(r"\1***", text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """The command line as recorded: credentials in URLs and values of key/token flags masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        flag, eq, value = arg.partition("=")
        if _SECRET_FLAG.fullmatch(flag):
            if eq:
                out.append(f"{flag}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(redact_secrets(arg))  # URL user info, key-like query values, known keys
    return out


def recorded_command(program_name_only: bool = False) -> list[str]:
    """This process's command line, redacted; ``program_name_only`` shortens the program's path
    to its name (the lock's note)."""
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if program_name_only else list(sys.argv)
    return redact_argv(argv)
