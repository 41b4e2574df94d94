"""What the CPU study found, as numbers with intervals: the README's "Results so far" comes from here.

    python benchmarks/study_summary.py [benchmarks/study.yaml]

Reads the results table the study writes (``space/leaderboard.jsonl``) and the study's run folders,
and prints markdown: the table of every finished cell and reference; DEF (``all``) against
``none``, Cao and CCSV question by question (paired difference of the bias-corrected KL); DEF's
diversity gain over ``none`` (distinct answers rarefied to the same number of parsed answers per
question, as the ablation report does); how far the estimators agree; worth N per model. Every
interval is the metric's ``paired_comparison`` (batteries resampled together). Writes the
results figure to ``benchmarks/study/results.png``. Cells not finished yet are left out and
listed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import spearmanr

from culturesim.metrics.cultural_alignment import paired_comparison
from culturesim.simulator.analysis.diversity import answer_counts, rarefied_distinct
from culturesim.simulator.analysis.results_table import read_table
from culturesim.simulator.experiments.study import cell_done, load_spec, plan_cells, study_items
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import RESPONSES_FILE, read_rows

REPO = Path(__file__).resolve().parent.parent
SCORE = "normalised_kl"


def _fmt(v: Any, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _ci(d: Mapping[str, Any], key: str, digits: int = 2) -> str:
    lo, hi = d.get(f"{key}_ci_low"), d.get(f"{key}_ci_high")
    return f"{_fmt(d.get(key), digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def _worth(s: Mapping[str, Any]) -> str:
    lo, hi = s.get("worth_n_ci_low"), s.get("worth_n_ci_high")
    interval = f"[{_fmt(lo, 1)}, {'∞' if hi is None else _fmt(hi, 1)}]" if lo is not None else ""
    if s.get("worth_n") is None and s.get("worth_n_infinite"):
        return f"∞ {interval}"
    return f"{_fmt(s.get('worth_n'), 1)} {interval}"


def _per_question(run: Path) -> dict[str, dict[str, Any]]:
    scores = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    return {q["id"]: q for q in scores["metric"].get("per_question") or []}


def _batteries(ids: Sequence[str], culture: str, language: str) -> list[str | None]:
    qs = {q.id: q for q in load_questions(culture=culture, language=language, ids=list(ids))}
    return [getattr(qs[i], "battery", None) if i in qs else None for i in ids]


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| model | plan | estimator | culture · language | worth N respondents [95% CI] | normalised KL [95% CI] | "
           "questions in it | distinct answers per question | parse rate | participants |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    order = sorted(rows, key=lambda r: (r.get("kind") == "reference", r["model"], r["culture"], r["language"],
                                        r["estimator"], r["plan"]))
    for r in order:
        s = r.get("scores") or {}
        name = r["model"] if r.get("kind") != "reference" else f"reference: {r['model'].removeprefix('reference:')}"
        plan = r["plan"] if r.get("kind") != "reference" else "–"
        out.append(f"| {name} | {plan} | {r['estimator'] if r.get('kind') != 'reference' else '–'} | "
                   f"{r['culture']} · {r['language']} | {_worth(s)} | {_ci(s, SCORE)} | "
                   f"{s.get('n_' + SCORE, 'n/a')} of {r.get('questions_asked') or r.get('questions')} | "
                   f"{_fmt(s.get('distinct_answers_mean'))} | {_fmt(r.get('parse_rate'))} | {r.get('participants')} |")
    return out


def _runs(rows: list[dict[str, Any]], base: Path) -> dict[tuple, Path]:
    return {(r["model"], r["estimator"], r["plan"], r["culture"], r["language"]): (base / r["run"]).resolve()
            for r in rows if r.get("kind") != "reference"}


def def_against_baselines(runs: dict[tuple, Path]) -> list[str]:
    out = ["| model | culture · language | DEF (all) minus | questions | KL difference [95% CI] | DEF lower on |",
           "| --- | --- | --- | --- | --- | --- |"]
    for (model, est, plan, culture, lang), path in sorted(runs.items()):
        if est != "sampling" or plan != "all":
            continue
        mine = _per_question(path)
        for other in ("none", "cao", "ccsv"):
            key = (model, "sampling", other, culture, lang)
            if key not in runs:
                continue
            theirs = _per_question(runs[key])
            ids = [i for i in mine if i in theirs]
            a = [mine[i].get("kl_bc", np.nan) for i in ids]
            b = [theirs[i].get("kl_bc", np.nan) for i in ids]
            r = paired_comparison(a, b, clusters=_batteries(ids, culture, lang))
            lower = sum(1 for x, y in zip(a, b) if x is not None and y is not None and np.isfinite(x) and np.isfinite(y)
                        and x < y)
            out.append(f"| {model} | {culture} · {lang} | {other} | {r['n_questions']} | {_ci(_as(r), 'estimate', 3)} | "
                       f"{lower} of {r['n_questions']} |")
    return out


def _as(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"estimate": r["estimate"], "estimate_ci_low": r["ci_low"], "estimate_ci_high": r["ci_high"]}


def _paired_diversity(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], culture: str,
                      language: str) -> tuple[dict[str, Any], dict[str, Any], float, float]:
    """Run a over run b, question by question: distinct answers rarefied to the smaller run's parsed
    answers on that question, and raw; each a paired ratio with its interval. Parse rates beside."""
    ca, cb = answer_counts(rows_a), answer_counts(rows_b)
    ids = [q for q in ca if q in cb and min(sum(ca[q].values()), sum(cb[q].values())) >= 2]
    m = {q: min(sum(ca[q].values()), sum(cb[q].values())) for q in ids}
    clusters = _batteries(ids, culture, language)
    rarefied = paired_comparison([rarefied_distinct(list(ca[q].values()), m[q]) for q in ids],
                                 [rarefied_distinct(list(cb[q].values()), m[q]) for q in ids],
                                 clusters=clusters, kind="ratio")
    raw = paired_comparison([len(ca[q]) for q in ids], [len(cb[q]) for q in ids], clusters=clusters, kind="ratio")
    pa = sum(x.get("status") == "ok" for x in rows_a) / max(len(rows_a), 1)
    pb = sum(x.get("status") == "ok" for x in rows_b) / max(len(rows_b), 1)
    return rarefied, raw, pa, pb


def diversity(runs: dict[tuple, Path]) -> list[str]:
    out = ["| model | culture · language | plan | questions | rarefied distinct answers, plan / none [95% CI] | "
           "parse rate plan / none |", "| --- | --- | --- | --- | --- | --- |"]
    for (model, est, plan, culture, lang), path in sorted(runs.items()):
        if est != "sampling" or plan == "none" or (model, est, "none", culture, lang) not in runs:
            continue
        r, _raw, pa, pb = _paired_diversity(read_rows(path / RESPONSES_FILE),
                                            read_rows(runs[(model, est, "none", culture, lang)] / RESPONSES_FILE),
                                            culture, lang)
        out.append(f"| {model} | {culture} · {lang} | {plan} | {r['n_questions']} | {_ci(_as(r), 'estimate')} | "
                   f"{pa:.2f} / {pb:.2f} |")
    return out


def _js(p: Sequence[float], q: Sequence[float]) -> float:
    return float(jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))


def estimators(runs: dict[tuple, Path]) -> list[str]:
    out = ["| model | culture · language | estimators | questions | JS distance between their distributions "
           "(mean) | each to humans (mean JS) | Spearman of per-question KL to humans |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    cells = sorted({(m, c, lang) for (m, _e, _p, c, lang) in runs})
    pairs = [(("logprob", "none"), ("sampling", "none")), (("logprob", "none"), ("verbalized", "none")),
             (("sampling", "none"), ("verbalized", "none"))]
    for model, culture, lang in cells:
        for (ea, pa), (eb, pb) in pairs:
            ka, kb = (model, ea, pa, culture, lang), (model, eb, pb, culture, lang)
            if ka not in runs or kb not in runs:
                continue
            qa, qb = _per_question(runs[ka]), _per_question(runs[kb])
            ids = [i for i in qa if i in qb]
            if len(ids) < 3:
                continue
            between = [_js(qa[i]["model_distribution"], qb[i]["model_distribution"]) for i in ids]
            to_h = [(qa[i]["js"], qb[i]["js"]) for i in ids]
            rho = spearmanr([qa[i]["kl"] for i in ids], [qb[i]["kl"] for i in ids]).statistic
            out.append(f"| {model} | {culture} · {lang} | {ea} / {eb} | {len(ids)} | {np.mean(between):.3f} | "
                       f"{np.mean([x for x, _ in to_h]):.3f} / {np.mean([y for _, y in to_h]):.3f} | {rho:.2f} |")
    return out


def ablation(spec: Any) -> list[str]:
    """The study's diversity ablation per model: each finished plan over ``none`` on the same items,
    question by question (paired ratios with intervals), raw and rarefied to the same number of parsed
    answers. Finished as the study itself judges it (``cell_done``)."""
    out = ["| model | plan | questions | distinct answers, plan / none [95% CI] | rarefied, plan / none [95% CI] | "
           "parse rate plan / none |", "| --- | --- | --- | --- | --- | --- |"]
    items = study_items(spec)
    done = {(c.model.name, c.plan): c for c in plan_cells(spec, items)
            if c.group == "ablation" and cell_done(c, len(items["ablation"]))}
    for model in sorted({m for m, _ in done}):
        base = done.get((model, "none"))
        if base is None:
            continue
        rows_none = read_rows(base.path / RESPONSES_FILE)
        for plan in ("prompt", "config", "memory", "all"):
            cell = done.get((model, plan))
            if cell is None:
                continue
            rarefied, raw, pa, pb = _paired_diversity(read_rows(cell.path / RESPONSES_FILE), rows_none, cell.culture,
                                                      cell.language)
            out.append(f"| {model} | {plan} | {raw['n_questions']} | {_ci(_as(raw), 'estimate')} | "
                       f"{_ci(_as(rarefied), 'estimate')} | {pa:.2f} / {pb:.2f} |")
    return out


def main(argv: Sequence[str]) -> int:
    spec = load_spec(argv[0] if argv else REPO / "benchmarks" / "study.yaml")
    rows = [r for r in read_table(spec.table)
            if spec.out.resolve() in (spec.table.parent / r["run"]).resolve().parents]
    runs = _runs(rows, spec.table.parent)
    versions = sorted({(r["dataset_version"], r["metric_version"]) for r in rows})
    print(f"Study {spec.name}: {len(rows)} rows of {spec.table.relative_to(REPO)}; dataset / metric versions "
          f"{', '.join(f'{d} / {m}' for d, m in versions)}\n")
    for title, lines in (("Table", table(rows)), ("DEF against the baselines (bias-corrected KL; negative: DEF closer "
                                                  "to the humans)", def_against_baselines(runs)),
                         ("Diversity (paper: +79.8 % distinct answers for all over none)", diversity(runs)),
                         ("Estimator agreement", estimators(runs)),
                         ("Diversity ablation (30 US items, options in source order; paper: all +79.8 %, memory "
                          "+76.5 %)", ablation(spec))):
        print(f"### {title}\n")
        print("\n".join(lines) if len(lines) > 2 else "(no finished pair of cells yet)")
        print()
    try:
        from culturesim.space.leaderboard import leaderboard_figure
        fig = leaderboard_figure(rows, score=SCORE)
        if fig is not None:
            fig.savefig(spec.out / "results.png")
            print(f"figure: {(spec.out / 'results.png').relative_to(REPO)}")
    except ImportError as exc:  # the Space's extra is not installed
        print(f"no figure ({exc}); pip install -e '.[space]'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
