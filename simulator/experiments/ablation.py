"""The paper's ablations (``culturesim ablate``) on the same questions, with one loaded model.

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
answers at equal sample size (``culturesim.simulator.analysis.diversity``); the tables are
``culturesim.simulator.analysis.ablation``'s.
"""

from __future__ import annotations

from pathlib import Path

from culturesim.simulator.analysis.report import build_report
from culturesim.simulator.backends import get_backend
from culturesim.simulator.backends.base import Backend
from culturesim.simulator.participants import PlanSettings, canonical_plan
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import CONFIG_FILE
from culturesim.simulator.runner import simulate

__all__ = ["DEFAULT_PLANS", "run_ablation"]

DEFAULT_PLANS = "none,prompt,config,memory,all"


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
    backend: Backend | None = None,
) -> dict:
    """Run one folder per plan (``OUT/plan-<plan>``) and per language (``OUT/language-<lang>``) on the
    same questions with one loaded backend, resuming any that exist; return the report built in
    ``OUT/report`` (its ``ablation`` and ``language_ablation`` sections). ``backend``: an already
    loaded backend to use instead of building one from ``backend_name`` and ``model`` (its
    caller closes it)."""
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
    owned = backend is None
    if owned:
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
        if owned:
            backend.close()
    # The language runs ask the parallel questions that exist in each language: a subset, said in the report.
    return build_report(dirs, out / "report", bootstrap_samples=bootstrap, allow_mixed=True)
