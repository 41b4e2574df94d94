"""The cultural variation map: populations and model runs as points in value space.

Each question tagged with a dimension has a curated polarity for it (+1: a higher answer
code means more of the dimension, -1: less, 0: not orderable). A distribution's position on
a question is its expected answer on a 0..1 scale (option rank / (k-1)), flipped when the
polarity is -1; a population's (or a run's) position on a dimension is the mean over the
dimension's questions. The positions of all entities are standardised and projected with PCA
into two axes, as in the DEF paper's culture map.

Only ``comparable`` questions enter (the dataset's flag: asked identically in all four cultures).
A culture placed by items the others never answered, or answered in another form, would differ on
the map by its questions, not its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from culturesim.simulator.questions import Question, dataset_cultures, load_questions
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS

POLARITY_FILE = Path(__file__).resolve().parents[2] / "dataset_builder" / "curation" / "polarity.yaml"


def load_polarity(path: str | Path = POLARITY_FILE) -> dict[str, dict[str, int]]:
    """{"gss:<variable>" | "wvs:<Q>": {dimension: -1|0|1}}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Polarity file {path} is missing; it is part of the repository.")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    for key, dims in data.items():
        for dim, sign in dims.items():
            if dim not in VALUE_DIMENSIONS or sign not in (-1, 0, 1):
                raise ValueError(f"{path}: {key} has {dim}: {sign}; dimensions are {VALUE_DIMENSIONS}, signs -1/0/1")
    return data


def polarity_key(question: Question) -> str:
    return f"{question.source.lower() if question.source != 'WVS' else 'wvs'}:{question.source_variable}"


def question_position(distribution: Sequence[float], sign: int) -> float:
    """Expected answer rank on 0..1, oriented so that 1 is 'more of the dimension'."""
    p = np.asarray(distribution, dtype=float)
    k = len(p)
    position = float(np.dot(p / p.sum(), np.arange(k) / (k - 1)))
    return position if sign > 0 else 1.0 - position


def dimension_positions(
    questions: Sequence[Question],
    distributions: Sequence[Sequence[float]],
    polarity: Mapping[str, Mapping[str, int]],
) -> dict[str, dict[str, float]]:
    """{dimension: {"position": mean, "n": questions used}} over oriented, ordinal questions."""
    if len(questions) != len(distributions):
        raise ValueError(f"{len(questions)} questions but {len(distributions)} distributions")
    sums: dict[str, list[float]] = {d: [] for d in VALUE_DIMENSIONS}
    for q, dist in zip(questions, distributions):
        signs = polarity.get(polarity_key(q), {})
        for dim in q.value_dimensions:
            sign = signs.get(dim, 0)
            if sign == 0 or not q.ordinal or len(dist) != q.num_options:
                continue
            sums[dim].append(question_position(dist, sign))
    return {d: {"position": float(np.mean(v)), "n": len(v)} for d, v in sums.items() if v}


def project(entities: Mapping[str, Mapping[str, float]], min_entities: int = 2) -> dict[str, Any]:
    """PCA of entities x dimensions into two axes.

    ``entities``: {label: {dimension: position}}. Dimensions missing for some entity are
    dropped (PCA needs a complete matrix); the result says which were used.
    """
    from sklearn.decomposition import PCA

    labels = list(entities)
    if len(labels) < min_entities:
        raise ValueError(f"The culture map needs at least {min_entities} entities, got {labels}")
    dims = [d for d in VALUE_DIMENSIONS if all(d in entities[label] for label in labels)]
    if len(dims) < 2:
        raise ValueError(f"Fewer than two dimensions are shared by all entities {labels}: {dims}")
    matrix = np.array([[entities[label][d] for d in dims] for label in labels])
    centred = matrix - matrix.mean(axis=0)
    scale = centred.std(axis=0)
    scale[scale == 0] = 1.0
    n_components = min(2, len(labels), len(dims))
    pca = PCA(n_components=n_components)
    coords = pca.fit_transform(centred / scale)
    if coords.shape[1] == 1:
        coords = np.hstack([coords, np.zeros((len(labels), 1))])
    return {
        "dimensions": dims,
        "explained_variance_ratio": [float(x) for x in pca.explained_variance_ratio_],
        "loadings": {d: [float(pca.components_[i][j]) for i in range(n_components)] for j, d in enumerate(dims)},
        "points": {label: [float(coords[i, 0]), float(coords[i, 1])] for i, label in enumerate(labels)},
    }


def culture_map_for_runs(runs: Sequence[dict[str, Any]], dataset_dir: Path | None) -> dict[str, Any] | None:
    """The culture map: every dataset culture's human WVS answers and each run (``label``,
    ``metric``, ``questions``) placed on the value dimensions, projected with PCA; on failure a
    dict with ``error``. The Space draws its map from this too."""
    polarity = load_polarity()
    entities: dict[str, dict[str, float]] = {}
    humans = []
    for culture in dataset_cultures(dataset_dir):
        qs = [q for q in load_questions(culture, dataset_dir=dataset_dir) if q.source == "WVS" and q.comparable]
        pos = dimension_positions(qs, [q.human_distribution for q in qs], polarity)
        if pos:
            label = f"{culture} (human, WVS)"
            entities[label] = {d: v["position"] for d, v in pos.items()}
            humans.append(label)
    run_positions = {}
    for run in runs:
        per_q = {p["id"]: p["model_distribution"] for p in run["metric"].get("per_question") or []}
        qs = [q for q in run["questions"] if q.id in per_q and q.comparable]
        pos = dimension_positions(qs, [per_q[q.id] for q in qs], polarity)
        run_positions[run["label"]] = pos
        if pos:
            entities[run["label"]] = {d: v["position"] for d, v in pos.items()}
    try:
        projection = project(entities)
    except ValueError as exc:
        return {"error": str(exc), "positions": {k: v for k, v in entities.items()}}
    projection["humans"] = humans
    projection["positions"] = entities
    projection["run_question_counts"] = {k: {d: v["n"] for d, v in p.items()} for k, p in run_positions.items()}
    return projection


def cross_culture_scores(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Runs of different cultures compared on the same items: each run's mean KL and JS over the
    comparable questions (by ``parallel_id``) that every run answered. None for runs of one culture.

    Why: each culture's overall numbers rest on its own question set (the US has hundreds of GSS items,
    the others about fifty WVS items), so side by side they compare tests, not cultures; on the shared
    comparable items the difference is the model's.
    """
    if len({run["config"].get("culture") for run in runs}) < 2:
        return None
    answered: list[dict[str, list[dict[str, Any]]]] = []
    for run in runs:
        per_q = {p["id"]: p for p in run["metric"].get("per_question") or []}
        by_item: dict[str, list[dict[str, Any]]] = {}
        for q in run["questions"]:
            if q.comparable and q.id in per_q:
                by_item.setdefault(q.parallel_id or q.source_variable, []).append(per_q[q.id])
        answered.append(by_item)
    shared = sorted(set.intersection(*(set(a) for a in answered))) if answered else []
    rows = []
    for run, by_item in zip(runs, answered):
        scored = [p for item in shared for p in by_item[item]]
        rows.append({"label": run["label"], "culture": run["config"].get("culture"), "n_questions": len(scored),
                     "kl_mean": float(np.mean([p["kl"] for p in scored])) if scored else None,
                     "js_mean": float(np.mean([p["js"] for p in scored])) if scored else None})
    return {"items": shared, "runs": rows}
