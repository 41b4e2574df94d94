"""The Space's Results tab: the results table as a sortable table with intervals, and a figure.

The table is built from real run folders scored by the real metric: references (no model, fast)
and, for the browser test, one SmolLM2 log-prob run. The frame and figure functions are checked
without a browser; the tab itself in headless Chromium against ``culturesim space launch`` (slow),
with a screenshot in tests/artifacts/space_results_tab.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturesim.simulator.analysis.figures import layout_problems
from culturesim.simulator.analysis.results_table import add_run, read_table
from culturesim.simulator.experiments.references import write_reference
from culturesim.simulator.questions import load_questions
from culturesim.space.common import ALL
from culturesim.space.leaderboard import (DEFAULT_SCORE, display_frame, leaderboard_figure, leaderboard_frame, leaderboard_note,
                                          score_choices, slice_choices)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
REFERENCES = ("uniform", "modal", "humans-20")


def _references(root: Path, table: Path) -> list[dict]:
    for culture, language in (("US", "en"), ("CN", "zh")):
        qs = load_questions(culture=culture, language=language, limit=6)
        for name in REFERENCES:
            add_run(write_reference(root / name / f"{culture}-{language}", qs, name, participants=10), table,
                    bootstrap_samples=30)
    return read_table(table)


@pytest.fixture(scope="module")
def reference_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    root = tmp_path_factory.mktemp("refs")
    return _references(root, root / "t.jsonl")


def test_frame_sorts_best_first_with_intervals(reference_rows) -> None:
    frame = leaderboard_frame(reference_rows)
    assert len(frame) == len(reference_rows) == 6
    assert list(frame.columns[:9]) == ["kind", "model", "plan", "estimator", "culture", "language", DEFAULT_SCORE,
                                       "ci low", "ci high"]
    # worth N and its interval; not the count of questions it is over (n_worth)
    assert [c for c in frame.columns if "worth" in c] == ["worth_n", "worth_n interval"]
    values = list(frame[DEFAULT_SCORE])
    assert values == sorted(values, reverse=True)  # normalised: higher is better
    assert (frame["ci low"] <= frame[DEFAULT_SCORE] + 1e-9).all() and (frame[DEFAULT_SCORE] <= frame["ci high"] + 1e-9).all()
    js = leaderboard_frame(reference_rows, "js_mean", "US en")
    assert len(js) == 3 and list(js["js_mean"]) == sorted(js["js_mean"])  # a divergence: lower is better
    assert DEFAULT_SCORE == score_choices(reference_rows)[0] and "js_mean" in score_choices(reference_rows)
    assert slice_choices(reference_rows) == [ALL, "CN zh", "US en"]
    assert "6 rows" in leaderboard_note(reference_rows)
    assert "No results yet" in leaderboard_note([])


def test_figure_draws_a_panel_per_slice(reference_rows) -> None:
    fig = leaderboard_figure(reference_rows)
    assert [ax.get_title() for ax in fig.axes] == ["CN zh", "US en"]
    assert not layout_problems(fig)
    assert leaderboard_figure(reference_rows, "no-such-score") is None


@pytest.mark.slow
def test_results_tab_in_a_browser(tmp_path: Path) -> None:
    from katan import free_port, stop_process, watch
    from playwright.sync_api import sync_playwright

    from culturesim.simulator.cli import main as cli

    table = tmp_path / "t.jsonl"
    rows = _references(tmp_path / "refs", table)
    run = tmp_path / "logprob"
    assert cli(["simulate", "--estimator", "logprob", "--plan", "none", "--questions", "6", "--participants", "2",
                "--seed", "0", "--out", str(run), "--no-progress"]) == 0
    add_run(run, table, bootstrap_samples=30)
    rows = read_table(table)
    port = free_port()
    env = {**os.environ, "CULTURESIM_RESULTS_TABLE": str(table), "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "culturesim.simulator.cli", "space", "launch", "--host",
                                 "127.0.0.1", "--port", str(port), "--runs-dir", str(tmp_path / "runs")],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    watch("the Space (culturesim space launch)", proc, log_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                          "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.monotonic() + 180
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                    time.sleep(1)
            page.get_by_role("tab", name="Results").click()
            page.wait_for_selector("#board-table [role=grid]", timeout=60_000)
            grid = page.locator("#board-table [role=grid]").first
            assert int(grid.get_attribute("aria-rowcount")) - 1 == len(rows) == 7
            text = page.locator("#board-table").inner_text()
            assert "smollm2-135m" in text and "reference:humans-20" in text and "ci low" in text
            note = page.locator("#board-note").inner_text()
            assert "7 rows: 1 model(s) (smollm2-135m)" in note
            # the whole note shows: the glossary's <stat> placeholders are not swallowed as HTML tags
            assert "n_normalised_<stat>" in note and note.rstrip().endswith("Click a column header to sort."), note
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "space_results_tab.png"), full_page=True)
            page.wait_for_selector("#board-plot img", timeout=60_000)
            assert page.locator("#board-plot img").first.evaluate("i => i.naturalWidth") > 100
            page.screenshot(path=str(ARTIFACTS / "space_results_tab.png"), full_page=True)
            # one slice: the US rows only
            page.locator("#board-slice input").click()
            page.get_by_role("option", name="US en").click()
            deadline = time.monotonic() + 30
            while int(page.locator("#board-table [role=grid]").first.get_attribute("aria-rowcount")) - 1 != 4:
                assert time.monotonic() < deadline, page.locator("#board-table").inner_text()
                page.wait_for_timeout(250)
            page.screenshot(path=str(ARTIFACTS / "space_results_tab_us.png"), full_page=True)
            browser.close()
    finally:
        stop_process(proc, grace_s=20, kill_wait_s=None)


def test_worth_n_within_the_survey_noise_reads_infinite() -> None:
    """The metric gives no worth_n but worth_n_infinite when a run is within the survey's own noise: the
    table shows infinity there (it sorts above every finite n), not an empty cell."""
    row = {"kind": "reference", "model": "reference:humans-100", "plan": "humans-100", "estimator": "sampling",
           "culture": "US", "language": "en", "dataset_version": "3.0", "metric_version": "3.0.0",
           "scores": {"normalised_kl": 1.0, "normalised_kl_ci_low": 0.99, "normalised_kl_ci_high": 1.01,
                      "worth_n": None, "worth_n_infinite": True, "worth_n_ci_low": 316.2, "worth_n_ci_high": None}}
    finite = {**row, "model": "m", "kind": "model", "scores": {**row["scores"], "worth_n": 2.2, "worth_n_infinite": False,
                                                               "worth_n_ci_low": 1.5, "worth_n_ci_high": 2.9}}
    frame = leaderboard_frame([row, finite])
    by_model = frame.set_index("model")
    assert by_model.loc["reference:humans-100", "worth_n"] == float("inf")
    assert by_model.loc["reference:humans-100", "worth_n interval"] == "[316, ∞]"
    assert by_model.loc["m", "worth_n"] == 2.2
    # what the browser gets: the Dataframe's JSON has no infinity (it showed an empty cell), so the text
    shown = display_frame(frame).set_index("model")
    assert shown.loc["reference:humans-100", "worth_n"] == "∞" and shown.loc["m", "worth_n"] == 2.2


def test_figure_draws_a_point_just_outside_its_interval() -> None:
    """A percentile bootstrap interval need not hold its point: a run scored on one question had
    normalised_kl 0.0015863793846 with both ends 0.0015863793625, and the figure (the Results tab's
    and the study summary's) died on matplotlib's negative error bar."""
    import matplotlib.pyplot as plt

    row = {"kind": "model", "model": "m", "plan": "none", "estimator": "verbalized", "culture": "CN", "language": "zh",
           "scores": {DEFAULT_SCORE: 0.001586379384605218, f"{DEFAULT_SCORE}_ci_low": 0.0015863793624965818,
                      f"{DEFAULT_SCORE}_ci_high": 0.0015863793624965818}}
    fig = leaderboard_figure([row, {**row, "plan": "all", "scores": {DEFAULT_SCORE: 0.2, f"{DEFAULT_SCORE}_ci_low": 0.25,
                                                                       f"{DEFAULT_SCORE}_ci_high": 0.4}}])
    assert fig is not None and len(fig.axes[0].get_yticks()) == 2
    plt.close(fig)
