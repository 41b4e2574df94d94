"""A study: many models x plans x estimators x cultures, each cell an ordinary run folder.

Why a driver: the comparisons culturesim exists for (DEF against Cao and CCSV, the estimators
against each other, the diversity ablation, a model against real respondents) only mean
something when every model answers the same items with the same participants, seed and
settings, and every number comes from the same scorer. A study spec (YAML or JSON, e.g.
``benchmarks/study.yaml``) lists it all once; ``run_study`` picks the items (seeded, once,
stored in ``OUT/study.json``, so a model added later gets the same items), writes the
references, runs each cell into ``OUT/<model>/<estimator>-<plan>/<culture>-<language>``
(the ablation's into ``OUT/<model>/ablation-<plan>/...``), and adds each finished cell to the
results table (``culturesim.simulator.analysis.results_table``).

Resumable: a finished cell (every row present, none failed) is skipped; an unfinished one is
resumed by the runner (rows written so far are kept); a killed study continues where it stopped
when started again with the same spec. Cheap to plan: before a model's cells run, each cell's
requests and token counts are printed, with a time estimate from two timed batches on the
loaded model (prompt tokens, then generated tokens).

Spec keys (``load_spec`` checks them and names a bad one): ``name``, ``out``, ``table`` (null:
none), ``seed``, ``participants``, ``max_new_tokens``, ``bootstrap_samples``, ``dataset_dir``,
``settings`` (``PlanSettings`` fields, e.g. ``max_beams``, ``ccsv_critiques``), ``models`` (each
``name``, ``backend``, optional ``model``, ``threads``, ``batch_size``), ``items`` (each
``culture``, ``languages``, ``n``: the same parallel items in every language, drawn evenly from
the culture's sources), ``runs`` (each ``estimator`` and ``plans``, optional ``participants``,
``max_new_tokens``, ``personas``: ``respondents`` makes every participant a real respondent, as
``simulate --personas respondents``, into ``<estimator>-<plan>-personas`` folders), ``ablation`` (``plans``, ``culture``, ``language``, ``n``: items drawn
from that item set; options in source order as in ``culturesim ablate``) and ``references``
(names for ``culturesim.simulator.experiments.references``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from culturesim.simulator.analysis.report import build_report
from culturesim.simulator.analysis.results_table import add_run, dataset_folder_version, describe_hardware, read_table
from culturesim.simulator.backends import available_backends, get_backend
from culturesim.simulator.backends.base import Backend
from culturesim.simulator.estimators.config import ESTIMATORS
from culturesim.simulator.estimators.run import check_plan, simulate_estimator
from culturesim.simulator.eta import format_seconds, memory_loads
from culturesim.simulator.experiments.references import check_reference, write_reference
from culturesim.simulator.participants import PlanSettings, canonical_plan, parse_plan
from culturesim.simulator.personas import PERSONA_SOURCES, check_persona_plan, load_persona_source
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import Question, load_questions
from culturesim.simulator.runfolder import CONFIG_FILE, RESPONSES_FILE, RunLock, Status, read_rows, write_atomic
from culturesim.simulator.runner import simulate
from culturesim.simulator.types import GenerationConfig, GenerationRequest

__all__ = ["Cell", "Estimate", "StudySpec", "load_spec", "plan_cells", "run_study", "select_items"]

STUDY_FILE = "study.json"


# --------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Folder and table name of the model (e.g. ``qwen2.5-coder-1.5b``)."""
    backend: str = "transformers"
    model: str | None = None
    """``--model`` of the backend (None: the embedded SmolLM2)."""
    threads: int | None = None
    """llamacpp: CPU threads (None: every CPU)."""
    batch_size: int | None = None


@dataclass(frozen=True)
class ItemSet:
    culture: str
    languages: tuple[str, ...]
    n: int


@dataclass(frozen=True)
class RunSpec:
    estimator: str
    plans: tuple[str, ...]
    participants: int | None = None
    max_new_tokens: int | None = None
    personas: str | None = None
    """``respondents``: participants drawn from real people (``culturesim.simulator.personas``)."""


@dataclass(frozen=True)
class AblationSpec:
    plans: tuple[str, ...]
    culture: str
    language: str
    n: int


@dataclass(frozen=True)
class StudySpec:
    name: str
    out: Path
    models: tuple[ModelSpec, ...]
    items: tuple[ItemSet, ...]
    runs: tuple[RunSpec, ...]
    table: Path | None = None
    seed: int = 0
    participants: int = 10
    max_new_tokens: int = 32
    bootstrap_samples: int = 1000
    settings: dict[str, Any] = field(default_factory=dict)
    ablation: AblationSpec | None = None
    references: tuple[str, ...] = ()
    dataset_dir: Path | None = None


def _need(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] is None:
        raise ValueError(f"study spec: {where} needs {key!r}")
    return data[key]


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"study spec: {where} is {value!r}; give a whole number >= 1")
    return value


def _words(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"study spec: {where} is {value!r}; give a name or a list of names")
    return tuple(items)


def _unknown(data: dict[str, Any], known: Sequence[str], where: str) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise ValueError(f"study spec: {where} has unknown key(s) {', '.join(extra)}; known: {', '.join(known)}")


def load_spec(path: str | Path) -> StudySpec:
    """Read and check a study spec (YAML or JSON). Relative ``out``, ``table`` and ``dataset_dir``
    are relative to the spec's folder. Every mistake is a ValueError naming the key and the fix."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"study spec {path}: not YAML/JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"study spec {path}: expected a mapping of keys (name, out, models, items, runs, ...)")
    top = ("name", "out", "table", "seed", "participants", "max_new_tokens", "bootstrap_samples", "settings", "models",
           "items", "runs", "ablation", "references", "dataset_dir")
    _unknown(data, top, "the top level")
    base = path.resolve().parent

    def rel(value: Any) -> Path | None:
        return None if value is None else (base / str(value)).resolve()

    backends = available_backends()
    models = []
    for i, m in enumerate(_need(data, "models", "the top level") or []):
        where = f"models[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"study spec: {where} must be a mapping with name and backend")
        _unknown(m, ("name", "backend", "model", "threads", "batch_size"), where)
        spec = ModelSpec(name=str(_need(m, "name", where)), backend=str(m.get("backend", "transformers")),
                         model=m.get("model"), threads=m.get("threads"), batch_size=m.get("batch_size"))
        if spec.backend not in backends:
            raise ValueError(f"study spec: {where}.backend {spec.backend!r} is not one of {', '.join(backends)}")
        if spec.threads is not None and spec.backend != "llamacpp":
            raise ValueError(f"study spec: {where}.threads applies to the llamacpp backend only; drop it for "
                             f"{spec.backend}")
        for key in ("threads", "batch_size"):
            if getattr(spec, key) is not None:
                _count(getattr(spec, key), f"{where}.{key}")
        models.append(spec)
    if not models or len({m.name for m in models}) != len(models):
        raise ValueError("study spec: models must list at least one model, each with its own name")
    items = []
    for i, it in enumerate(_need(data, "items", "the top level") or []):
        where = f"items[{i}]"
        _unknown(it, ("culture", "languages", "n"), where)
        items.append(ItemSet(str(_need(it, "culture", where)), _words(_need(it, "languages", where), f"{where}.languages"),
                             _count(_need(it, "n", where), f"{where}.n")))
    if not items:
        raise ValueError("study spec: items must list at least one culture (culture, languages, n)")
    runs = []
    for i, r in enumerate(_need(data, "runs", "the top level") or []):
        where = f"runs[{i}]"
        _unknown(r, ("estimator", "plans", "participants", "max_new_tokens", "personas"), where)
        estimator = str(_need(r, "estimator", where))
        if estimator not in ESTIMATORS:
            raise ValueError(f"study spec: {where}.estimator {estimator!r} is not one of {', '.join(ESTIMATORS)}")
        plans = tuple(canonical_plan(p) for p in _words(_need(r, "plans", where), f"{where}.plans"))
        for plan in plans:
            check_plan(estimator, plan)
        personas = None if r.get("personas") in (None, "none") else str(r["personas"])
        if personas is not None:
            if personas not in PERSONA_SOURCES:
                raise ValueError(f"study spec: {where}.personas {personas!r} is not one of none, {', '.join(PERSONA_SOURCES)}")
            try:
                for plan in plans:
                    check_persona_plan(parse_plan(plan)[0], estimator)
                for it in items:
                    load_persona_source(personas, it.culture, rel(data.get("dataset_dir")))
            except ValueError as exc:
                raise ValueError(f"study spec: {where}.personas: {exc}") from None
        runs.append(RunSpec(estimator, plans,
                            _count(r["participants"], f"{where}.participants") if r.get("participants") else None,
                            _count(r["max_new_tokens"], f"{where}.max_new_tokens") if r.get("max_new_tokens") else None,
                            personas))
    cell_personas: dict[tuple[str, str], str | None] = {}
    for r in runs:
        for plan in r.plans:
            if cell_personas.setdefault((r.estimator, plan), r.personas) != r.personas:
                # the results table keys a row by model, plan, estimator, culture, language: two rows would clash
                raise ValueError(f"study spec: runs list {r.estimator} {plan} with and without personas; the results "
                                 "table cannot tell them apart yet: put one of them in another study")
    ablation = None
    if data.get("ablation"):
        a = data["ablation"]
        _unknown(a, ("plans", "culture", "language", "n"), "ablation")
        ablation = AblationSpec(tuple(canonical_plan(p) for p in _words(_need(a, "plans", "ablation"), "ablation.plans")),
                                str(_need(a, "culture", "ablation")), str(_need(a, "language", "ablation")),
                                _count(_need(a, "n", "ablation"), "ablation.n"))
        if not any(it.culture == ablation.culture and ablation.language in it.languages for it in items):
            raise ValueError(f"study spec: ablation asks for {ablation.culture} {ablation.language}, which no item set "
                             "lists; its items are drawn from that item set")
    references = _words(data["references"], "references") if data.get("references") else ()
    for name in references:
        check_reference(name)
    settings = dict(data.get("settings") or {})
    try:
        PlanSettings.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"study spec: settings: {exc}") from None
    return StudySpec(
        name=str(data.get("name") or path.stem), out=rel(_need(data, "out", "the top level")), models=tuple(models),
        items=tuple(items), runs=tuple(runs), table=rel(data.get("table")), seed=int(data.get("seed", 0)),
        participants=_count(data.get("participants", 10), "participants"),
        max_new_tokens=_count(data.get("max_new_tokens", 32), "max_new_tokens"),
        bootstrap_samples=int(data.get("bootstrap_samples", 1000)), settings=settings, ablation=ablation,
        references=references, dataset_dir=rel(data.get("dataset_dir")),
    )


# --------------------------------------------------------------------------------------
# Items and cells
# --------------------------------------------------------------------------------------


def _label(culture: str, language: str) -> str:
    return f"{culture}-{language}"


def select_items(spec: StudySpec) -> dict[str, list[str]]:
    """Per ``<culture>-<language>``, the question ids every model is asked, in dataset order.

    From the dataset's rows as they are (``load_questions``): for a culture, the parallel items
    present in every listed language, drawn with ``random.Random(f"{seed}:{culture}")`` evenly
    over its sources (GSS, WVS: each source in turn gives its next shuffled item). The ablation's
    items are a seeded draw from its item set's."""
    chosen: dict[str, list[str]] = {}
    for it in spec.items:
        pools = {lang: load_questions(culture=it.culture, language=lang, dataset_dir=spec.dataset_dir)
                 for lang in it.languages}
        shared = set.intersection(*({q.parallel_id or q.id for q in qs} for qs in pools.values()))
        first = [q for q in pools[it.languages[0]] if (q.parallel_id or q.id) in shared]
        if len(first) < it.n:
            raise ValueError(f"study spec: {it.culture} has {len(first)} items in every one of "
                             f"{', '.join(it.languages)}; ask for at most n: {len(first)}")
        rng = random.Random(f"{spec.seed}:{it.culture}")
        by_source: dict[str, list[Question]] = {}
        for q in first:
            by_source.setdefault(q.source or "", []).append(q)
        for group in by_source.values():
            rng.shuffle(group)
        picked: list[str] = []
        while len(picked) < it.n:
            for group in by_source.values():
                if group and len(picked) < it.n:
                    q = group.pop(0)
                    picked.append(q.parallel_id or q.id)
        keep = set(picked)
        for lang, qs in pools.items():
            chosen[_label(it.culture, lang)] = [q.id for q in qs if (q.parallel_id or q.id) in keep]
    if spec.ablation:
        chosen["ablation"] = _ablation_items(spec, chosen)
    return chosen


def _ablation_items(spec: StudySpec, chosen: dict[str, list[str]]) -> list[str]:
    """The ablation's items: a seeded draw from its item set's (so an ablation added to a study
    that has run draws the same items as one planned from the start)."""
    a = spec.ablation
    pool = chosen[_label(a.culture, a.language)]
    if len(pool) < a.n:
        raise ValueError(f"study spec: ablation.n {a.n} is more than the {len(pool)} items of {a.culture} "
                         f"{a.language}; lower it or raise that item set's n")
    keep = set(random.Random(f"{spec.seed}:ablation").sample(pool, a.n))
    return [q for q in pool if q in keep]


@dataclass(frozen=True)
class Cell:
    """One run folder of the study."""

    path: Path
    group: str
    """``main``, ``ablation`` or ``reference``."""
    model: ModelSpec | None
    estimator: str
    plan: str
    culture: str
    language: str
    items_key: str
    participants: int
    max_new_tokens: int
    settings: PlanSettings
    personas: str | None = None
    """``respondents``: the cell's participants are real respondents (``RunSpec.personas``)."""

    @property
    def name(self) -> str:
        return str(self.path)


def plan_cells(spec: StudySpec, items: dict[str, list[str]]) -> list[Cell]:
    """Every cell of the study: references first (instant), then per model its main cells and
    its ablation, cheaper estimators first."""
    base = PlanSettings.from_dict(spec.settings)
    cells: list[Cell] = []
    labels = [(it.culture, lang) for it in spec.items for lang in it.languages]
    for name in spec.references:
        for culture, lang in labels:
            cells.append(Cell(spec.out / "references" / name / _label(culture, lang), "reference", None, "reference", name,
                              culture, lang, _label(culture, lang), spec.participants, 0, base))
    order = {"logprob": 0, "verbalized": 1, "sampling": 2}
    for model in spec.models:
        for run in sorted(spec.runs, key=lambda r: order.get(r.estimator, 3)):
            for plan in sorted(run.plans, key=lambda p: p == "ccsv"):
                for culture, lang in labels:
                    suffix = "-personas" if run.personas else ""
                    cells.append(Cell(spec.out / model.name / f"{run.estimator}-{plan.replace('+', '_')}{suffix}" /
                                      _label(culture, lang), "main", model, run.estimator, plan, culture, lang,
                                      _label(culture, lang), run.participants or spec.participants,
                                      run.max_new_tokens or spec.max_new_tokens, base, run.personas))
        if spec.ablation:
            a = spec.ablation
            unshuffled = dataclasses.replace(base, shuffle_options=False)
            for plan in a.plans:
                cells.append(Cell(spec.out / model.name / f"ablation-{plan.replace('+', '_')}" /
                                  _label(a.culture, a.language), "ablation", model, "sampling", plan, a.culture,
                                  a.language, "ablation", spec.participants, spec.max_new_tokens, unshuffled))
    return cells


def select_cells(cells: Sequence[Cell], out: Path, patterns: Sequence[str]) -> list[Cell]:
    """The references and the model cells matching ``patterns`` (fnmatch globs on the cell's name
    relative to the study folder), model cells ordered by the first pattern they match. A pattern
    that matches nothing is a ValueError listing the cell names, since a typo would otherwise run
    nothing for hours without a word."""
    names = {c.path: c.path.relative_to(out).as_posix() for c in cells}
    rank: dict[Path, int] = {}
    for i, pattern in enumerate(patterns):
        hits = [c for c in cells if c.model is not None and fnmatch.fnmatchcase(names[c.path], pattern)]
        if not hits:
            known = ", ".join(names[c.path] for c in cells if c.model is not None)
            raise ValueError(f"--cells {pattern!r} matches no cell of the study; its cells are: {known}")
        for c in hits:
            rank.setdefault(c.path, i)
    picked = [c for c in cells if c.model is None or c.path in rank]
    return sorted(picked, key=lambda c: -1 if c.model is None else rank[c.path])


def cell_done(cell: Cell, n_questions: int) -> bool:
    """Finished: config written, a row for every participant x question, none failed."""
    if not (cell.path / CONFIG_FILE).is_file():
        return False
    if cell.group == "reference":
        return True
    rows = read_rows(cell.path / RESPONSES_FILE)
    return len(rows) >= cell.participants * n_questions and not any(r["status"] == Status.ERROR for r in rows)


# --------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A cell's cost: requests, prompt and generated tokens (upper bound: answers may stop early)
    and, once the model is timed, seconds."""

    requests: int
    input_tokens: float
    output_tokens: int
    seconds: float | None = None

    def line(self) -> str:
        time_text = f", about {format_seconds(self.seconds)}" if self.seconds is not None else ""
        return (f"{self.requests} requests, ~{self.input_tokens:,.0f} prompt tokens, <= {self.output_tokens:,} "
                f"generated tokens{time_text}")


@dataclass(frozen=True)
class Timing:
    """Seconds per prompt token and per generated token on the loaded model, at the study's batch."""

    per_input: float
    per_output: float
    chars_per_token: float


def _prompt_chars(questions: Sequence[Question]) -> float:
    return sum(len(render_question(q, q.culture).text) for q in questions) / max(len(questions), 1)


def estimate(cell: Cell, questions: Sequence[Question], timing: Timing | None, chars_per_token: float) -> Estimate:
    """Requests and tokens of ``cell`` from its plan: CCSV asks ``1 + critiques + revisions + votes``
    times, no votes over one revision (later stages carry earlier answers); memory grows each prompt
    by the mean memory held (``eta.memory_loads``); ``logprob`` generates nothing."""
    s = cell.settings
    kind, mods = parse_plan(cell.plan)
    votes = s.ccsv_votes if s.ccsv_revisions > 1 else 0  # one revision: nothing to vote on (baselines.run_ccsv)
    stages = 1 + s.ccsv_critiques + s.ccsv_revisions + votes if kind == "ccsv" else 1
    requests = cell.participants * len(questions) * stages
    prompt = _prompt_chars(questions) / chars_per_token
    per_request = prompt
    if "memory" in mods:
        loads = memory_loads(len(questions), list(range(1, s.max_memory + 1)))
        per_request = prompt + sum(loads) / max(len(loads), 1) * (prompt + cell.max_new_tokens)
    if kind == "ccsv":
        per_request = prompt + 2 * cell.max_new_tokens
    output = 0 if cell.estimator == "logprob" else requests * cell.max_new_tokens
    inputs = requests * per_request
    seconds = None if timing is None else inputs * timing.per_input + output * timing.per_output
    return Estimate(requests, inputs, output, seconds)


def time_model(backend: Backend, questions: Sequence[Question], batch: int, max_new_tokens: int, seed: int) -> Timing:
    """Two timed batches of ``batch`` DEF prompts: one new token (prompt cost), then
    ``max_new_tokens`` (plus generation cost). The two batches open with different words, since a
    backend that keeps its KV cache between calls (llamacpp) would otherwise find the second
    batch's prompts already evaluated and time generation as free."""
    qs = [questions[i % len(questions)] for i in range(batch)]
    texts = [render_question(q, q.culture).text for q in qs]

    def run(tokens: int, opening: str) -> tuple[float, int, int]:
        requests = [GenerationRequest(messages=({"role": "user", "content": f"{opening}\n\n{t}"},),
                                      config=GenerationConfig(max_new_tokens=tokens, seed=seed + i), key=f"timing:{i}")
                    for i, t in enumerate(texts)]
        started = time.perf_counter()
        results = backend.generate(requests)
        return (time.perf_counter() - started, sum(r.input_tokens for r in results),
                sum(r.output_tokens for r in results))

    first = "Timing, first pass."
    t1, n_in, _ = run(1, first)
    t2, n_in2, n_out = run(max_new_tokens, "Second timing pass.")
    n_in = max(n_in, 1)
    prompt_cost = t1 * n_in2 / n_in
    return Timing(per_input=t1 / n_in, per_output=max(t2 - prompt_cost, 0.0) / max(n_out, 1),
                  chars_per_token=sum(len(f"{first}\n\n{t}") for t in texts) / n_in)


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def _study_record(spec: StudySpec, items: dict[str, list[str]]) -> dict[str, Any]:
    return {"name": spec.name, "seed": spec.seed, "items": items,
            "item_sets": [dataclasses.asdict(it) for it in spec.items],
            "ablation": dataclasses.asdict(spec.ablation) if spec.ablation else None}


def study_items(spec: StudySpec) -> dict[str, list[str]]:
    """The items of the study: those recorded in ``OUT/study.json`` when it exists (a model
    added later gets the same items), else a fresh seeded selection. A spec whose item sets or
    seed changed is refused: its items would differ from the cells already run."""
    record = spec.out / STUDY_FILE
    fresh = _study_record(spec, {})
    if record.is_file():
        old = json.loads(record.read_text(encoding="utf-8"))
        if old.get("ablation") is None and spec.ablation is not None and "ablation" not in old["items"]:
            # An ablation added to a study that has run: its items come from the recorded ones (the
            # run records them in study.json when it starts).
            old["items"]["ablation"] = _ablation_items(spec, old["items"])
            old["ablation"] = json.loads(json.dumps(fresh["ablation"]))
        for key in ("seed", "item_sets", "ablation"):
            if json.loads(json.dumps(fresh[key])) != old.get(key):
                raise ValueError(f"{record} was made with {key} {old.get(key)!r}; the spec now says {fresh[key]!r}. "
                                 "Restore the spec, or give the study a new out folder")
        return old["items"]
    return select_items(spec)


def _questions(spec: StudySpec, items: dict[str, list[str]], cell: Cell) -> list[Question]:
    wanted = items[cell.items_key]
    qs = {q.id: q for q in load_questions(culture=cell.culture, language=cell.language, ids=wanted,
                                          dataset_dir=spec.dataset_dir)}
    missing = [i for i in wanted if i not in qs]
    if missing:
        raise ValueError(f"the study's items {missing[:3]} are not in the dataset any more; give the study a new out "
                         "folder to select items again")
    return [qs[i] for i in wanted]


def _backend_kwargs(model: ModelSpec, seed: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"seed": seed}
    if model.model:
        kwargs["model"] = model.model
    if model.threads:
        kwargs["n_threads"] = model.threads
    if model.batch_size:
        kwargs["batch_size"] = model.batch_size
    return kwargs


def _add_to_table(spec: StudySpec, cell: Cell, say: Callable[[str], None]) -> None:
    """Add a finished cell to the table unless its row is there (ablation cells stay out: their
    plans share keys with the main cells; their numbers are the ablation report's)."""
    if spec.table is None or cell.group == "ablation":
        return
    try:
        row = add_run(cell.path, spec.table, bootstrap_samples=spec.bootstrap_samples, seed=spec.seed,
                      hardware=None if cell.group == "reference" else describe_hardware(), study=spec.name)
    except ValueError as exc:
        if "already holds a row" in str(exc) and any(
                Path(spec.table.parent / r.get("run", "")).resolve() == cell.path.resolve() for r in read_table(spec.table)):
            return  # added by an earlier pass of this study
        say(f"  not added to {spec.table}: {exc}")
        return
    score = row["scores"].get("normalised_js")
    say(f"  added to {spec.table}" + (f" (normalised JS {score:.3f})" if isinstance(score, float) else "")
        + ("" if row["scores"] else f" without scores: no valid answer (parse rate {row['parse_rate']})"))


def run_study(spec: StudySpec, plan_only: bool = False, progress: bool = False,
              say: Callable[[str], None] = print, models: Sequence[str] | None = None,
              estimate_only: bool = False, only: Sequence[str] | None = None) -> list[Cell]:
    """Run (or continue) the study; return its cells. ``plan_only``: select the items, print each
    cell's requests and tokens, run nothing. ``estimate_only``: also load and time each model and
    print each cell's time, run nothing. ``models``: only these model names. ``only``: only the model
    cells whose name (``<model>/<estimator>-<plan>/<culture>-<language>``) matches one of these glob
    patterns, run in the patterns' order, so a short session spends its time on the cells that
    matter most; the references are always written."""
    if models:
        unknown = sorted(set(models) - {m.name for m in spec.models})
        if unknown:
            raise ValueError(f"--models {', '.join(unknown)}: not in the spec; its models are "
                             f"{', '.join(m.name for m in spec.models)}")
    if spec.table is not None:
        read_table(spec.table)  # a damaged table fails now, not after hours of runs
    items = study_items(spec)
    cells = plan_cells(spec, items)
    cells = [c for c in cells if c.model is None or not models or c.model.name in models]
    if only:
        cells = select_cells(cells, spec.out, only)
    # Looking (plan, estimate) at a study whose record is up to date writes nothing, so it needs no lock:
    # it works while the study runs. Anything else records the items and holds the folder.
    record = json.dumps(_study_record(spec, items), ensure_ascii=False, indent=1) + "\n"
    recorded = spec.out / STUDY_FILE
    looking = (plan_only or estimate_only) and recorded.is_file() and recorded.read_text(encoding="utf-8") == record
    spec.out.mkdir(parents=True, exist_ok=True)
    with contextlib.nullcontext() if looking else RunLock(spec.out):
        if not looking:
            write_atomic(recorded, record)
        say(f"study {spec.name}: {len(cells)} cells in {spec.out}; items: "
            + ", ".join(f"{k} {len(v)}" for k, v in items.items()) + f"; hardware: {describe_hardware()}")
        questions = {c.path: _questions(spec, items, c) for c in cells}
        done = {c.path for c in cells if cell_done(c, len(questions[c.path]))}
        if plan_only:
            chars = 1.0  # no tokenizer loaded: counts below are prompt characters
            for c in cells:
                if c.group != "reference":
                    e = estimate(c, questions[c.path], None, chars)
                    say(f"{'done ' if c.path in done else ''}{c.path.relative_to(spec.out)}: {e.requests} requests, "
                        f"~{e.input_tokens:,.0f} prompt characters, <= {e.output_tokens:,} generated tokens")
            return cells
        for c in cells:
            if c.group == "reference" and not estimate_only:
                if c.path not in done:
                    selection = {"study": spec.name, "items": c.items_key,
                                 "dataset_version": dataset_folder_version(spec.dataset_dir)}
                    write_reference(c.path, questions[c.path], c.plan, participants=c.participants, seed=spec.seed,
                                    dataset_dir=spec.dataset_dir, selection=selection)
                    say(f"reference {c.path.relative_to(spec.out)} written")
                _add_to_table(spec, c, say)
        for model in spec.models:
            mine = [c for c in cells if c.model == model]
            todo = [c for c in mine if c.path not in done]
            for c in mine:
                if c.path in done and not estimate_only:
                    _add_to_table(spec, c, say)
            if not todo:
                continue
            say(f"model {model.name}: loading ({model.backend}{', ' + model.model if model.model else ''})")
            backend = get_backend(model.backend, **_backend_kwargs(model, spec.seed))
            try:
                _run_model(spec, model, backend, todo, questions, say, progress, estimate_only)
            finally:
                backend.close()
        if estimate_only:
            return cells
        _ablation_reports(spec, [c for c in cells if c.group == "ablation"], questions, say)
    return cells


def _run_model(spec: StudySpec, model: ModelSpec, backend: Backend, todo: list[Cell],
               questions: dict[Path, list[Question]], say: Callable[[str], None], progress: bool,
               estimate_only: bool = False) -> None:
    sample = questions[todo[0].path]
    timing = time_model(backend, sample, todo[0].participants, spec.max_new_tokens, spec.seed)
    say(f"model {model.name}: {1 / max(timing.per_input, 1e-9):.0f} prompt tok/s, "
        f"{1 / max(timing.per_output, 1e-9):.1f} generated tok/s at batch {todo[0].participants}")
    estimates = {c.path: estimate(c, questions[c.path], timing, timing.chars_per_token) for c in todo}
    total = sum(e.seconds or 0.0 for e in estimates.values())
    for c in todo:
        say(f"  {c.path.relative_to(spec.out)}: {estimates[c.path].line()}")
    say(f"model {model.name}: {len(todo)} cells to run, about {format_seconds(total)} in all")
    if estimate_only:
        return
    for i, c in enumerate(todo, 1):
        qs = questions[c.path]
        started = time.perf_counter()
        say(f"[{i}/{len(todo)}] {c.path.relative_to(spec.out)} ({estimates[c.path].line()})")
        resume = (c.path / CONFIG_FILE).is_file()
        selection = {"culture": c.culture, "language": c.language, "study": spec.name, "items": c.items_key,
                     "dataset_dir": str(spec.dataset_dir) if spec.dataset_dir else None,
                     "dataset_version": dataset_folder_version(spec.dataset_dir)}
        common = dict(plan=c.plan, participants=c.participants, seed=spec.seed, settings=c.settings,
                      max_new_tokens=c.max_new_tokens, resume=resume, progress=progress, selection=selection)
        try:
            if c.estimator == "sampling":
                personas = load_persona_source(c.personas, c.culture, spec.dataset_dir)
                summary = simulate(c.path, qs, backend, **common,
                                   **({"personas": personas} if personas is not None else {}))
            else:
                summary = simulate_estimator(c.path, qs, backend, estimator=c.estimator, **common)
        except ValueError as exc:
            raise ValueError(f"cell {c.path}: {exc}") from None
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
        say(f"  done in {format_seconds(time.perf_counter() - started)}: {counts}")
        if cell_done(c, len(qs)):
            _add_to_table(spec, c, say)
        else:
            say(f"  unfinished (failed rows): run the study again to ask them again")


def _ablation_reports(spec: StudySpec, cells: list[Cell], questions: dict[Path, list[Question]],
                      say: Callable[[str], None]) -> None:
    """Per model, the ablation report (diversity per plan, gain over none) once its cells are done."""
    by_model: dict[str, list[Cell]] = {}
    for c in cells:
        by_model.setdefault(c.model.name if c.model else "", []).append(c)
    for name, mine in by_model.items():
        out = spec.out / name / "ablation-report"
        if (out / "report.json").is_file() or not all(cell_done(c, len(questions[c.path])) for c in mine):
            continue
        report = build_report([c.path for c in mine], out, bootstrap_samples=spec.bootstrap_samples, allow_mixed=True)
        for plan, row in ((report.get("ablation") or {}).get("plans") or {}).items():
            say(f"ablation {name} {plan}: distinct answers {row.get('distinct_answers_mean')}, gain over none "
                f"{row.get('gain_over_none_pct')}%")
