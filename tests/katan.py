"""A real llm-katan server on loopback, for testing the HTTP backends without mocks.

llm-katan (PyPI ``llm-katan``) speaks the OpenAI and Anthropic wire formats. Its ``echo``
backend answers instantly with the request's last user message and settings, and injects
faults on demand (echo backend only):

- ``error_rate=0.3``: each request fails with HTTP 500 with that probability;
- ``latency_ms=200``: every request sleeps that long (inside the server's
  ``max_concurrent`` slots, so keep ``max_concurrent`` high to let requests overlap);
- ``timeout_after=N``: after N requests (retries count), every request gets HTTP 504;
- ``rate_limit_after=N``: after N requests, HTTP 429;
- ``max_inflight=N``: HTTP 503 when more than N requests are being served at once;
- ``validate_keys=True``: check key values (the 401 message then echoes the wrong key).

Echo text: ``[echo] model=M host=H:PORT time=T messages=K max_tokens=X temperature=Y``, a
newline, then ``User: <last user message>``. Token counts are word counts.

Use ``start_katan(...)`` as a context manager, or the ``katan`` pytest fixture (a factory
that stops every server it started). Import the fixture into a test module with
``from katan import katan`` (pytest puts ``tests/`` on ``sys.path``; the name
``tests`` itself is taken by a package in site-packages).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = ["KatanServer", "death_notes", "finished", "free_port", "katan", "start_katan", "stop_process", "watch"]

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Server processes the tests started and have not stopped yet: (what it is, process, its log file).
_WATCHED: list[tuple[str, subprocess.Popen, Path]] = []
LOG_LINES = 25


def watch(name: str, process: subprocess.Popen, log_path: Path) -> None:
    """Remember a started server so that a failing test says whether it died, with what exit
    status and its last log lines (``death_notes``, added to the failure report by conftest.py),
    instead of only the client's "connection refused"."""
    _WATCHED.append((name, process, Path(log_path)))


def death_notes() -> list[str]:
    """For each watched server that has exited: its exit status and last ``LOG_LINES`` log lines."""
    notes = []
    for name, process, log_path in _WATCHED:
        status = process.poll()
        if status is None:
            continue
        why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        try:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_LINES:])
        except OSError as error:
            tail = f"(its log {log_path} is unreadable: {error})"
        notes.append(f"{name} (pid {process.pid}) died: {why}; last lines of {log_path}:\n{tail}")
    return notes


def finished(done: subprocess.CompletedProcess, what: str, lines: int = LOG_LINES) -> str:
    """Why a finished process failed, for an assertion message: its exit status and the last
    ``lines`` lines of its output (stderr after stdout)."""
    status = done.returncode
    why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
    output = "\n".join(((done.stdout or "") + "\n" + (done.stderr or "")).strip().splitlines()[-lines:])
    return f"{what} failed: {why}; its last lines:\n{output}"


def stop_process(process: subprocess.Popen, grace_s: float, kill_wait_s: float | None = 10) -> None:
    """Stop a server process the tests started: SIGTERM, and SIGKILL if it has not exited after
    ``grace_s``; a no-op when it already exited."""
    _WATCHED[:] = [w for w in _WATCHED if w[1] is not process]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=kill_wait_s)


class KatanServer:
    """One running llm-katan process; ``base_url`` is its root (``http://127.0.0.1:PORT``)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, model: str) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.model = model
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def openai_url(self) -> str:
        """What an OpenAI client takes as ``base_url`` (with ``/v1``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_url(self) -> str:
        """What an Anthropic client takes as ``base_url`` (the SDK appends ``/v1/messages``)."""
        return self.base_url

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 1 s); idempotent.

        uvicorn's graceful shutdown waits for requests still sleeping in ``latency_ms``;
        the echo backend holds no state worth that wait.
        """
        stop_process(self.process, grace_s=1, kill_wait_s=5)


def _flags(options: dict[str, object]) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        else:
            args += [flag, str(value)]
    return args


def _launch(port: int, model: str, log_path: Path, options: dict[str, object]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "llm_katan.cli",
        "--model", model, "--backend", "echo", "--host", "127.0.0.1", "--port", str(port),
        "--providers", "openai,anthropic", "--device", "cpu", "--stats-file", "", "--disable-dashboard",
        "--log-level", "warning", *_flags(options),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_KATAN_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    watch(f"llm-katan on port {port}", process, log_path)
    return process


def _wait_ready(server: KatanServer, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{server.base_url}/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def start_katan(model: str = "katan-echo", max_concurrent: int = 64, port: int | None = None,
                **options: object) -> Iterator[KatanServer]:
    """Run llm-katan's echo backend on a free loopback port (or ``port``: to bring a server
    back where clients expect it) until the block ends.

    Extra keyword arguments become flags (``error_rate=0.3`` -> ``--error-rate 0.3``;
    ``validate_keys=True`` -> ``--validate-keys``). Waits (at most 30 s) until ``/health``
    answers; raises RuntimeError with the server's log if it never does.
    """
    with tempfile.TemporaryDirectory(prefix="katan-") as tmp:
        log_path = Path(tmp) / "katan.log"
        for _ in range(3 if port is None else 1):  # another process may grab the free port between probe and bind
            chosen = free_port() if port is None else port
            server = KatanServer(
                _launch(chosen, model, log_path, {"max_concurrent": max_concurrent, **options}), chosen, log_path, model
            )
            try:
                if _wait_ready(server, time.monotonic() + READY_TIMEOUT_S):
                    break
            except BaseException:
                server.stop()
                raise
            server.stop()
        else:
            log_tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"llm-katan did not become ready in {READY_TIMEOUT_S:.0f} s; its log:\n{log_tail}")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def katan() -> Iterator[Callable[..., KatanServer]]:
    """A factory: ``katan(error_rate=0.3)`` starts a server; all are stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**options: object) -> KatanServer:
            return stack.enter_context(start_katan(**options))

        yield start
