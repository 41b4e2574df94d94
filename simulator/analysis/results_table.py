"""The results table: one scored run per line, a file anyone can add to and the Space shows.

Why a file of rows: every number culturesim publishes about a model should come from a run
folder scored by the one scorer (``culturesim.simulator.analysis.scoring.score_run``, i.e. the
``cultural_alignment`` metric), with what the model was (size, quantisation, backend, hardware)
beside it, so a reader can compare models, plans and estimators and anyone can add a run with
``culturesim results add RUN_DIR``. The file is JSON lines (``space/leaderboard.jsonl`` by
default, shipped with the Space): one object per row, the columns of ``COLUMNS``. The headline
numbers sit in one ``scores`` object copied from the metric's output as it is (every scalar it
reports, nested blocks flattened with dots), so a new metric version's numbers (worth N
respondents, structure fidelity, new intervals) arrive without a change here.

A row's identity is ``KEY``: model x plan x estimator x culture x language x dataset version x
metric version. ``add_run`` refuses a second row with the same key, and a row whose dataset or
metric version differs from the rows already in the table (numbers of two metric versions side
by side would not compare): a new version starts a new table.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from culturesim.metrics.cultural_alignment import METRIC_VERSION
from culturesim.simulator.analysis.scoring import run_estimator, score_run
from culturesim.simulator.questions import DEFAULT_DATASET_DIR
from culturesim.simulator.runfolder import CONFIG_FILE, load_run_config, recorded_versions, write_atomic

__all__ = [
    "COLUMNS",
    "DEFAULT_TABLE",
    "KEY",
    "add_run",
    "check_addable",
    "dataset_folder_version",
    "dataset_version",
    "describe_hardware",
    "headline_scores",
    "interval_of",
    "read_table",
    "result_row",
    "row_key",
]

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "space" / "leaderboard.jsonl"
"""The table that ships with the repository and the Space."""

COLUMNS: dict[str, str] = {
    "model": "model name as the run records it (e.g. smollm2-135m, qwen2.5-coder-1.5b), or reference:<kind>",
    "plan": "diversity plan (all = DEF, none, prompt, config, memory, cao, ccsv; +personas when the participants "
            "were real respondents, simulate --personas) or the reference's kind",
    "estimator": "how answers were read: sampling, logprob, verbalized, or reference",
    "culture": "ISO alpha-2 of the population compared with",
    "language": "ISO 639-1 of the questions (several joined with +)",
    "dataset_version": "version of the dataset the questions and human distributions come from",
    "metric_version": "version of the cultural_alignment metric that scored the run",
    "kind": "model (a language model's run) or reference (uniform, modal, a sample of real respondents)",
    "reference": "for a reference: what it is and where its answers come from; null for a model",
    "model_parameters": "parameters of the model, where known",
    "quantisation": "weights as run (e.g. Q4_K_M GGUF; float32 from a Q4_1 GGUF)",
    "backend": "culturesim backend that ran it (transformers, llamacpp, openai, anthropic, none)",
    "hardware": "the machine: CPU model and CPUs, or the torch device",
    "threads": "CPU threads the backend used, where recorded",
    "participants": "simulated participants (for a human sample: respondents)",
    "questions": "questions scored (with at least one valid answer)",
    "questions_asked": "questions asked",
    "parse_rate": "share of responses that gave a valid answer",
    "scores": "the metric's headline numbers: every scalar of its output, nested blocks as a.b keys "
              "(intervals as <stat>_ci_low/_ci_high)",
    "versions": "every version the run records (prompt, parser, runner, ...) and the metric's",
    "run": "the run folder, relative to the table's folder where it lies below the repository",
    "study": "the study it belongs to (culturesim study), or null",
    "added_at": "when the row was added (UTC)",
}
KEY = ("model", "plan", "estimator", "culture", "language", "dataset_version", "metric_version")
"""The columns that identify a row: a second row with the same values is refused."""

_DETAIL_KEYS = frozenset({"settings"})
"""Metric output blocks that are settings, not results (per_* blocks are per-item detail)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def headline_scores(metric: Mapping[str, Any] | None, depth: int = 3) -> dict[str, Any]:
    """Every scalar of the metric's output (numbers, strings, booleans, nulls), nested dicts
    flattened to ``block.key`` up to ``depth`` levels; lists, ``per_*`` blocks (per question,
    per value dimension) and the settings block are left out: they stay in the run's scores.json."""
    out: dict[str, Any] = {}

    def walk(prefix: str, block: Mapping[str, Any], level: int) -> None:
        for key, value in block.items():
            if level == 0 and (key in _DETAIL_KEYS or str(key).startswith("per_")):
                continue
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                if level + 1 < depth:
                    walk(name + ".", value, level + 1)
            elif value is None or isinstance(value, (bool, int, float, str)):
                out[name] = value
    walk("", metric or {}, 0)
    return out


def interval_of(scores: Mapping[str, Any], name: str) -> tuple[Any, Any]:
    """The interval the metric gives for ``name``: ``<name>_ci_low/high``, or for ``<x>_mean``
    the ``<x>_ci_low/high`` pair; (None, None) without one."""
    for base in (name, name.removesuffix("_mean")):
        lo, hi = scores.get(f"{base}_ci_low"), scores.get(f"{base}_ci_high")
        if lo is not None or hi is not None:
            return lo, hi
    return None, None


def dataset_folder_version(dataset_dir: str | Path | None = None) -> str:
    """The version of a built dataset folder (its ``build_report.json``: ``dataset_version``, else
    ``builder_version``), or ``unknown``."""
    report = Path(dataset_dir or DEFAULT_DATASET_DIR) / "build_report.json"
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    return str(data.get("dataset_version") or data.get("builder_version") or "unknown")


def dataset_version(config: Mapping[str, Any]) -> str:
    """The dataset version a run's questions come from: the version its config records
    (``dataset_version``, or ``question_selection.dataset_version`` as the study writes it when
    the run starts), else that of the dataset folder it names (or the default one) now."""
    recorded = recorded_versions(config).get("dataset")
    selection = config.get("question_selection") or {}
    if recorded or selection.get("dataset_version"):
        return str(recorded or selection["dataset_version"])
    return dataset_folder_version(selection.get("dataset_dir"))


def describe_hardware() -> str:
    """This machine in a few words: CPU model and the CPUs this process may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cpus} CPUs"


def _quantisation(info: Mapping[str, Any]) -> str | None:
    """How the weights ran, from the backend's own description (no guessing from names)."""
    quant = info.get("quantization") or info.get("quantisation")
    gguf = info.get("gguf_file") or (Path(str(info["gguf_path"])).name if info.get("gguf_path") else None)
    dtype = info.get("dtype")
    if quant and quant != "none":
        return f"{quant}" + (f" ({gguf})" if gguf and str(quant) not in str(gguf) else "")
    if dtype and gguf:
        return f"{dtype} (dequantised from {gguf})"
    return dtype or gguf


def _relative(run_dir: Path, table: Path) -> str:
    try:
        return os.path.relpath(run_dir.resolve(), table.resolve().parent)
    except ValueError:  # another drive (Windows)
        return str(run_dir.resolve())


def result_row(run_dir: str | Path, scores: Mapping[str, Any], table: str | Path = DEFAULT_TABLE,
               hardware: str | None = None, study: str | None = None) -> dict[str, Any]:
    """One table row from a run folder and its ``score_run`` output: the metric's headline numbers,
    and those of any other block the scorer adds beside it (e.g. ``structure``), prefixed by its name."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    run = scores.get("run") or {}
    info = config.get("backend") or {}
    reference = config.get("reference")
    responses = scores.get("responses") or {}
    versions = dict(run.get("versions") or {})
    metric = scores.get("metric") or {}
    metric_version = str(metric.get("metric_version") or versions.get("metric_version") or "unknown")
    languages = run.get("languages") or config.get("languages") or []
    estimator = run.get("estimator") or "sampling"
    backend = info.get("backend") if isinstance(info, Mapping) else None
    return {
        "model": run.get("model") or config.get("model") or "unknown",
        # a run whose participants are real respondents (--personas) is not the same plan's plain run
        "plan": (plan := run.get("plan") or config.get("plan")) and plan + ("+personas" if config.get("personas") else ""),
        "estimator": estimator,
        "culture": run.get("culture") or config.get("culture"),
        "language": "+".join(languages),
        "dataset_version": dataset_version(config),
        "metric_version": metric_version,
        "kind": "reference" if reference else "model",
        "reference": (reference or {}).get("description") if reference else None,
        "model_parameters": info.get("num_parameters") if isinstance(info, Mapping) else None,
        "quantisation": _quantisation(info) if isinstance(info, Mapping) else None,
        "backend": backend or "none",
        "hardware": "none (written, not generated)" if reference else (hardware or _hardware_of(info)),
        "threads": info.get("n_threads") if isinstance(info, Mapping) else None,
        "participants": config.get("participants"),
        "questions": responses.get("questions_scored"),
        "questions_asked": len(config.get("question_ids") or []),
        "parse_rate": responses.get("parse_rate"),
        "scores": {**headline_scores(metric), **{f"{name}.{k}": v for name, block in scores.items()
                                                 if name not in ("run", "responses", "metric") and isinstance(block, Mapping)
                                                 for k, v in headline_scores(block).items()}},
        "versions": versions,
        "run": _relative(run_dir, Path(table)),
        "study": study,
        "added_at": _now(),
    }


def _hardware_of(info: Mapping[str, Any]) -> str:
    device = str(info.get("device") or "cpu")
    return describe_hardware() if device == "cpu" else f"{device} ({describe_hardware()})"


def row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in KEY)


def read_table(path: str | Path = DEFAULT_TABLE) -> list[dict[str, Any]]:
    """The table's rows in file order; a missing file is an empty table. A line that is not a
    JSON object is an error naming the file and line (the table is data people edit by hand)."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise ValueError(f"--table {path} is a folder; give the results file (e.g. {path / 'leaderboard.jsonl'})")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: not JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(row, dict) or any(k not in row for k in KEY):
            missing = [k for k in KEY if not isinstance(row, dict) or k not in row]
            raise ValueError(f"{path}, line {number}: not a results row (missing {', '.join(missing)}); fix or "
                             "remove that line")
        rows.append(row)
    return rows


def check_addable(row: Mapping[str, Any], rows: list[dict[str, Any]], table: str | Path) -> None:
    """Raise ValueError when ``row`` duplicates a row's key or its versions differ from the table's."""
    key = row_key(row)
    for old in rows:
        if row_key(old) == key:
            what = ", ".join(f"{k} {v}" for k, v in zip(KEY, key))
            raise ValueError(f"{table} already holds a row for {what} (run {old.get('run')}); remove that line first "
                             "to replace it, or add to another --table")
    for name in ("dataset_version", "metric_version"):
        held = sorted({str(r.get(name)) for r in rows})
        if held and str(row.get(name)) not in held:
            raise ValueError(f"{table} holds {name.replace('_', ' ')} {', '.join(held)} rows; this run scores as "
                             f"{row.get(name)}. Numbers of two versions do not compare: add it to a new table "
                             f"(--table PATH) or rescore the table's runs with this version")


def add_run(run_dir: str | Path, table: str | Path = DEFAULT_TABLE, bootstrap_samples: int = 1000, seed: int = 0,
            hardware: str | None = None, study: str | None = None) -> dict[str, Any]:
    """Score ``run_dir`` with the metric (writing its scores.json) and append its row to
    ``table``; refuse a duplicate key or a version the table does not hold. Returns the row. A run
    where no question got a valid answer is a result too: its row has a parse rate and no scores."""
    table = Path(table)
    rows = read_table(table)
    config = load_run_config(run_dir)
    # the key as scoring will give it, checked first: a refused run is not scored for nothing
    early = {"run": {"model": config.get("model"), "plan": config.get("plan"), "estimator": run_estimator(config),
                     "culture": config.get("culture"), "languages": config.get("languages"),
                     "versions": {"metric_version": METRIC_VERSION}}}
    check_addable(result_row(run_dir, early, table, hardware=hardware, study=study), rows, table)
    scores = score_run(run_dir, bootstrap_samples=bootstrap_samples, seed=seed)
    row = result_row(run_dir, scores, table, hardware=hardware, study=study)
    check_addable(row, rows, table)
    table.parent.mkdir(parents=True, exist_ok=True)
    with table.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return row


def rescore_table(table: str | Path = DEFAULT_TABLE, bootstrap_samples: int = 1000, seed: int = 0,
                  say: Callable[[str], None] = lambda line: None) -> list[dict[str, Any]]:
    """Score every row's run folder again with this metric and rewrite ``table`` in one atomic
    replace: after a metric version change the table's numbers must all come from one version,
    and its runs are still on disk. A row keeps its hardware, study and place in the file. A run
    folder that is gone is an error naming it before anything is written. Returns the new rows."""
    table = Path(table)
    rows = read_table(table)
    base = table.resolve().parent
    folders = []
    for number, row in enumerate(rows, 1):
        folder = Path(row.get("run") or "")
        folder = folder if folder.is_absolute() else base / folder
        if not (folder / CONFIG_FILE).is_file():
            raise ValueError(f"{table}, row {number} ({', '.join(str(v) for v in row_key(row))}): its run folder "
                             f"{folder} is gone; restore it or remove that line, then rescore")
        folders.append(folder)
    new_rows = []
    for row, folder in zip(rows, folders):
        scores = score_run(folder, bootstrap_samples=bootstrap_samples, seed=seed)
        new = result_row(folder, scores, table, hardware=row.get("hardware"), study=row.get("study"))
        new_rows.append(new)
        say(f"rescored {new['run']}: metric {row.get('metric_version')} -> {new['metric_version']}")
    keys = [row_key(r) for r in new_rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{table}: two rows rescore to the same key; nothing was written")
    write_atomic(table, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new_rows))
    return new_rows
