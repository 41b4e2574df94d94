"""``culturesim ablate``: the paper's ablations on the same questions, with one loaded model.

Diversity ablation: one run per plan (default ``none,prompt,config,memory,all``) on the same
questions, participants and seed; the report gives each plan's distinct answers per question
and its gain over ``none`` (the paper: +79.8% for all three modifications, +76.5% for memory
alone). Language ablation (``--languages zh,en``): the same culture's parallel questions asked
in its native language and in English. Each sub-run is an ordinary run folder, so an
interrupted ablation resumes where it stopped.

Options in source order (``--shuffle`` to shuffle): ``culturesim simulate`` shuffles the
options per participant in every plan to average out position bias, but shuffling is not one
of the paper's three modifications (prompt/location, generation config, memory), and it is a
source of diversity of its own: a model that answers by position (SmolLM2-135M picks the
first listed option far more than any other) gives near-uniform answers over the source
options under any plan once each participant sees its own order, ``none`` included. The
baseline then is already about as diverse as its parsed answers allow, and the ablation
measures the shuffle rather than the modifications. Measured on the embedded model (20
participants, 10 WVS questions, 96 new tokens, beams up to 2, seed 0; 62% of ``none``'s
parsed answers pick the first listed option, against 31% if positions were chosen evenly):
in source order ``none`` 2.30 and ``all`` 2.60 distinct answers per question (+13.0%);
with shuffling ``none`` 2.80 and ``all`` 2.90 (+3.6%). Holding the option
order fixed, as the paper's template lists the options, leaves ``none`` what the paper's
``none`` is (the plain template at the default sampling config), and each plan still switches
exactly its own modification. The report records the setting (``ablation.shuffle_options``).

Because a count of distinct answers grows with the number of answers counted and the plans
parse at different rates, the report also gives each plan's parse rate and its distinct
answers at equal sample size (``culturesim.simulator.analysis.diversity``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from culturesim.simulator.analysis.report import build_report, fmt
from culturesim.simulator.argtypes import add_hidden_alias, nonnegative_int, positive_int

DEFAULT_PLANS = "none,prompt,config,memory,all"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run_ablation(
    out: Path,
    backend_name: str,
    model: str | None,
    culture: str,
    plans: list[str],
    languages: list[str] | None,
    n_questions: int | None,
    participants: int,
    seed: int,
    max_new_tokens: int,
    dimensions: list[str] | None = None,
    bootstrap: int = 1000,
    progress: bool = True,
    max_beams: int | None = None,
    wvs_only: bool = False,
    shuffle: bool = False,
) -> dict:
    from culturesim.simulator.backends import get_backend
    from culturesim.simulator.participants import PlanSettings, canonical_plan
    from culturesim.simulator.questions import load_questions
    from culturesim.simulator.runner import CONFIG_FILE, simulate

    for plan in plans:
        canonical_plan(plan)
    jobs: list[tuple[str, str, list]] = []
    base = load_questions(culture=culture, limit=None, value_dimensions=dimensions)
    if wvs_only:
        base = [q for q in base if q.source == "WVS"]
    settings = PlanSettings(shuffle_options=shuffle, **({"max_beams": max_beams} if max_beams else {}))
    if n_questions:
        base = base[:n_questions]
    for plan in plans:
        jobs.append((f"plan-{plan.replace('+', '_')}", plan, base))
    if languages:
        parallel = {q.parallel_id for q in base}
        for lang in languages:
            qs = [q for q in load_questions(culture=culture, language=lang) if q.parallel_id in parallel]
            if not qs:
                raise ValueError(f"Culture {culture!r} has none of these questions in language {lang!r}")
            jobs.append((f"language-{lang}", plans[-1], qs))
    kwargs = {"seed": seed}
    if model:
        kwargs["model"] = model
    backend = get_backend(backend_name, **kwargs) if backend_name == "transformers" else get_backend(backend_name, model=model)
    dirs = []
    try:
        for name, plan, qs in jobs:
            run_dir = out / name
            simulate(run_dir, qs, backend, plan=plan, participants=participants, seed=seed, settings=settings,
                     max_new_tokens=max_new_tokens, resume=(run_dir / CONFIG_FILE).exists(), progress=progress,
                     selection={"culture": culture, "ablation": name})
            dirs.append(run_dir)
    finally:
        backend.close()
    # The language runs ask the parallel questions that exist in each language: a subset, said in the report.
    return build_report(dirs, out / "report", bootstrap_samples=bootstrap, allow_mixed=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="transformers", help="model backend (default: transformers)")
    parser.add_argument("--model", default=None, help="model id or path (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--culture", default="US", help="ISO alpha-2 culture whose questions are asked (default: US)")
    parser.add_argument("--plans", type=_csv, default=_csv(DEFAULT_PLANS), help=f"plans to compare (default {DEFAULT_PLANS})")
    parser.add_argument("--languages", type=_csv, default=None,
                        help="also run the language ablation in these languages, e.g. zh,en (plan: the last of --plans)")
    parser.add_argument("--questions", type=positive_int, default=None, metavar="N",
                        help="first N questions of the culture (default: all)")
    parser.add_argument("--dimensions", type=_csv, default=None, help="restrict to these value dimensions")
    parser.add_argument("--wvs-only", action="store_true", help="only the culture's WVS questions")
    parser.add_argument("--max-beams", type=positive_int, default=None,
                        help="config plan: beams in 1..N (default: the paper's 5)")
    parser.add_argument("--shuffle", action="store_true",
                        help="shuffle options per participant in every plan (default: source order; see the module docstring)")
    parser.add_argument("--participants", type=positive_int, default=20,
                        help="simulated participants per plan (default and paper: 20)")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed shared by every plan, so plans differ only by their modifications (default: 0)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=512,
                        help="generated tokens per answer (default and paper: 512)")
    parser.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                        help="bootstrap replicates for the report's confidence intervals (0: none; default: 1000)")
    add_hidden_alias(parser, "--bootstrap", "bootstrap_samples", type=nonnegative_int)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for one run folder per plan (and language) and the report in OUT/report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    report = run_ablation(args.out, args.backend, args.model, args.culture, args.plans, args.languages, args.questions,
                          args.participants, args.seed, args.max_new_tokens, args.dimensions, args.bootstrap_samples,
                          progress=not args.no_progress, max_beams=args.max_beams, wvs_only=args.wvs_only,
                          shuffle=args.shuffle)
    ablation = report.get("ablation") or {}
    for plan, row in (ablation.get("plans") or {}).items():
        print(f"{plan}: distinct answers {fmt(row['distinct_answers_mean'])}, gain over none "
              f"{fmt(row['gain_over_none_pct'], 1)}%; parse rate {fmt(row['parse_rate'])}; rarefied distinct "
              f"{fmt(row['rarefied_distinct_mean'])} (m={fmt(ablation['rarefied_m_mean'], 2)}), gain "
              f"{fmt(row['rarefied_gain_over_none_pct'], 1)}%; questions ahead/behind/level "
              f"{row['questions_ahead']}/{row['questions_behind']}/{row['questions_level']}")
    if report.get("language_ablation"):
        print(json.dumps(report["language_ablation"], indent=1))
    print(f"report: {args.out / 'report' / 'report.html'}")
    return 0
