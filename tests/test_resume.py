"""A run killed with SIGKILL resumes to exactly the rows of an uninterrupted seeded run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturesim.simulator.cli import build_parser
from culturesim.simulator.cli.simulate import main as runner_main
from culturesim.simulator.runfolder import RESPONSES_FILE, read_rows

REPO = Path(__file__).resolve().parent.parent
ARGS = ["simulate", "--culture", "US", "--questions", "3", "--participants", "3", "--plan", "all", "--seed", "21",
        "--max-new-tokens", "16", "--max-beams", "2", "--batch-size", "16", "--no-progress"]


def _args(out: Path, *extra: str):
    argv = ARGS + ["--out", str(out), *extra]
    return build_parser(argv).parse_args(argv)


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timing"} for r in rows]


@pytest.fixture(scope="module")
def model(embedded_backend):
    # The same backend arguments the command line builds (seed, batch size), on the session's loaded model.
    return embedded_backend(seed=21, batch_size=16)


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "uninterrupted"
    assert runner_main(_args(out), backend=model) == 0
    rows = read_rows(out / RESPONSES_FILE)
    assert len(rows) == 9
    return out, rows


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_rows(model, reference, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.simulator.cli", *ARGS, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    responses = out / RESPONSES_FILE
    deadline = time.monotonic() + 600  # a shared 2-core machine took 165 s to the first rows
    try:
        # Kill as soon as the first rows are on disk (the first of three steps).
        while time.monotonic() < deadline and proc.poll() is None:
            if responses.exists() and responses.stat().st_size > 0:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_rows(responses)
    assert 0 < len(before) < 9, len(before)

    assert runner_main(_args(out, "--resume"), backend=model) == 0
    after = read_rows(responses)
    keys = [(r["participant_id"], r["question_id"]) for r in after]
    assert len(keys) == len(set(keys)) == 9  # no duplicate, no gap
    assert after[:len(before)] == before  # completed rows kept as they were
    assert _comparable(after) == _comparable(reference[1])


@pytest.mark.slow
def test_killed_mid_line_and_mid_step_resumes_exactly(model, reference, tmp_path):
    # A kill while writing the fifth row: step 0 complete, step 1 with one complete row and half
    # of the next. Resume drops the half line, regenerates step 1 as the same batch, writes 2 rows.
    src, rows = reference
    out = tmp_path / "cut"
    shutil.copytree(src, out)
    lines = (out / RESPONSES_FILE).read_bytes().splitlines(keepends=True)
    (out / RESPONSES_FILE).write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    assert runner_main(_args(out, "--resume"), backend=model) == 0
    resumed = read_rows(out / RESPONSES_FILE)
    assert (out / RESPONSES_FILE).read_bytes().startswith(b"".join(lines[:4]))
    assert _comparable(resumed) == _comparable(rows)


@pytest.mark.slow
def test_resume_with_other_arguments_names_the_differences(reference):
    src, _ = reference
    argv = [a if a != "21" else "22" for a in ARGS] + ["--out", str(src), "--resume"]
    with pytest.raises(ValueError, match="differing keys: .*seed"):
        runner_main(build_parser(argv).parse_args(argv))  # refused before any model is loaded
    config = json.loads((src / "config.json").read_text())
    assert config["seed"] == 21


@pytest.mark.slow
def test_a_run_started_from_the_gguf_resumes_from_the_converted_folder(model, reference, tmp_path):
    # backend.loaded_from records where the embedded weights were read from (the converted folder
    # or the GGUF: bit-identical logits); a run started one way must resume the other.
    src, rows = reference
    out = tmp_path / "from-gguf"
    shutil.copytree(src, out)
    config = json.loads((out / "config.json").read_text())
    assert config["backend"]["loaded_from"]
    config["backend"]["loaded_from"] = None
    (out / "config.json").write_text(json.dumps(config))
    assert runner_main(_args(out, "--resume"), backend=model) == 0
    assert _comparable(read_rows(out / RESPONSES_FILE)) == _comparable(rows)
