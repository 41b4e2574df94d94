"""A server the tests started that dies is reported with its exit status and last log lines
(``katan.watch``/``death_notes``, added to a failing test's report by conftest.py), and a failed
one-shot process (a harness run) by ``katan.finished``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from katan import death_notes, finished, stop_process, watch


def _start(tmp_path: Path, code: str) -> tuple[subprocess.Popen, Path]:
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    watch("a test server", process, log_path)
    return process, log_path


def test_a_server_that_exits_is_reported_with_status_and_last_lines(tmp_path: Path) -> None:
    process, _ = _start(tmp_path, "import sys\nfor i in range(40): print(f'line {i}')\nsys.exit(3)")
    process.wait(timeout=60)
    [note] = [n for n in death_notes() if f"pid {process.pid}" in n]
    assert "exit status 3" in note and "line 39" in note and "line 14" not in note  # the last 25 lines
    stop_process(process, grace_s=1)
    assert not [n for n in death_notes() if f"pid {process.pid}" in n]  # stopped by the test: forgotten


def test_a_killed_server_names_the_signal_and_a_live_one_is_not_reported(tmp_path: Path) -> None:
    process, log_path = _start(tmp_path, "import time\nprint('serving', flush=True)\ntime.sleep(60)")
    deadline = time.monotonic() + 60
    while "serving" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [n for n in death_notes() if f"pid {process.pid}" in n]
    process.send_signal(signal.SIGKILL)  # e.g. the kernel killing llama.cpp on an illegal instruction
    process.wait(timeout=60)
    [note] = [n for n in death_notes() if f"pid {process.pid}" in n]
    assert "killed by signal 9" in note and "serving" in note
    stop_process(process, grace_s=1)


def test_a_failed_run_names_its_exit_status_and_output() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys; print('out'); sys.exit('bad thing')"],
                          capture_output=True, text=True, timeout=60)
    message = finished(done, "lm_eval")
    assert message.startswith("lm_eval failed: exit status 1;") and "out" in message and "bad thing" in message
