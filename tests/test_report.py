"""The report end to end: real runs of the embedded model, report.json vs report.html, a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.questions import load_questions
from culturesim.simulator.analysis.report import build_report, fmt
from culturesim.simulator.analysis.scoring import score_run
from culturesim.simulator.runner import simulate

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
FAST = PlanSettings(max_beams=1)  # beams are slow on a CPU; the plan still varies temperature and top_p


@pytest.fixture(scope="module")
def model(embedded_backend):
    return embedded_backend(seed=0)  # get_backend("transformers", seed=0) on the session's loaded model


@pytest.fixture(scope="module")
def questions():
    us = load_questions("US")
    gss = [q for q in us if q.source == "GSS" and q.demographics and q.value_dimensions][:3]
    wvs = [q for q in us if q.source == "WVS" and q.value_dimensions][:3]
    return gss + wvs


@pytest.fixture(scope="module")
def runs(model, questions, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    dirs = []
    for plan in ("none", "all"):
        simulate(base / plan, questions, model, plan=plan, participants=4, seed=3, settings=FAST,
                 max_new_tokens=40, progress=False)
        dirs.append(base / plan)
    return dirs


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, build_report(runs, out, bootstrap_samples=200)


@pytest.mark.slow
def test_report_numbers(report, runs):
    out, rep = report
    saved = json.loads((out / "report.json").read_text())
    assert saved["runs"][0]["overall"] == rep["runs"][0]["overall"]
    for run, run_dir in zip(saved["runs"], runs):
        assert not (run_dir / "scores.json").exists()  # a report writes nothing into the runs it reads
        scores = score_run(run_dir, bootstrap_samples=0, write=False)
        assert run["overall"]["kl_mean"] == scores["metric"]["kl_mean"]  # the metric's numbers, not a copy of its maths
        assert set(run["insensitivity"]["summary"]) == {"IU", "QC", "RP", "CV", "FF", "IR"}
    # The diversity ablation: each plan's distinct answers per question and its gain over `none`.
    plans = saved["ablation"]["plans"]
    assert set(plans) == {"none", "all"}
    assert plans["all"]["gain_over_none_pct"] == pytest.approx(
        (plans["all"]["distinct_answers_mean"] / plans["none"]["distinct_answers_mean"] - 1) * 100)
    cmap = saved["culture_map"]
    assert {"US (human, WVS)", "CN (human, WVS)", "JP (human, WVS)", "EG (human, WVS)"} <= set(cmap["points"])
    assert "human_ceiling" not in saved  # 3.0: the yardsticks replace the split-half ceiling
    for run in saved["runs"]:
        assert run["worth_n"].startswith("Worth N respondents")
        assert {"floor_kl_mean", "survey_noise_kl_mean", "kl_bc_mean"} <= set(run["score_meaning"])
    for fig in saved["figures"].values():
        assert (out / fig).stat().st_size > 5000


@pytest.mark.slow
def test_html_numbers_match_json(report):
    out, rep = report
    page = (out / "report.html").read_text()
    for run in rep["runs"]:
        for key in ("kl_mean", "js_mean", "match_rate"):
            assert f"<td class=n>{fmt(run['overall'][key])}</td>" in page, key
        for dim, stats in run["per_dimension"].items():
            assert re.search(rf"<td>{dim}</td><td class=n>{stats['n_questions']}</td><td class=n>{re.escape(fmt(stats['kl_mean']))}</td>", page)
    for label, (x, y) in rep["culture_map"]["points"].items():
        assert f"<td class=n>{fmt(x)}</td><td class=n>{fmt(y)}</td>" in page


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report):
    from playwright.sync_api import sync_playwright

    out, rep = report
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((out / "report.html").resolve().as_uri())
            images = page.locator("img.figure")
            names = images.evaluate_all("els => els.map(e => e.dataset.figure)")
            assert sorted(names) == sorted(rep["figures"])
            sizes = images.evaluate_all("els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            assert all(done and w > 100 and h > 100 for done, w, h in sizes), sizes
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 10000
