"""The human noise ceiling: how far two random halves of the real population disagree.

A model cannot be expected to match a population more closely than the population matches
itself under sampling noise. For each GSS question in the panel microdata, respondents of the
most recent year are split at random into two halves, each half's weighted answer distribution
is formed, and the halves are scored against each other with the metric module -- the same
divergences the models get. Repeated ``repeats`` times and averaged per question.

Halves hold about half the panel respondents of that year, so the ceiling is an upper bound
on the noise in a full 2022 sample (which is larger): a conservative reference, stated as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset_builder.demographics import WEIGHT
from simulator.questions import Question

CEILING_VERSION = "1.0"
DEFAULT_PANEL = Path(__file__).resolve().parents[3] / "shared" / "sources" / "gss" / "gss_panel_2016_2018_2020.parquet"


def _weighted_distribution(codes: np.ndarray, weights: np.ndarray, option_codes: Sequence[int]) -> np.ndarray:
    shares = np.array([weights[codes == c].sum() for c in option_codes], dtype=float)
    total = shares.sum()
    return shares / total if total > 0 else np.full(len(option_codes), 1 / len(option_codes))


def split_half_distributions(
    questions: Sequence[Question], panel_path: str | Path = DEFAULT_PANEL, repeats: int = 20, seed: int = 0
) -> list[dict[str, Any]]:
    """Pairs of half-sample distributions per question: [{id, year, n, halves: [(a, b), ...]}]."""
    panel_path = Path(panel_path)
    if not panel_path.exists():
        raise FileNotFoundError(f"GSS panel microdata not found at {panel_path}; pass panel_path (../shared/sources/gss).")
    wanted = [q for q in questions if q.source == "GSS" and q.source_variable]
    frame = pd.read_parquet(panel_path)
    rng = np.random.default_rng(seed)
    out = []
    for q in wanted:
        if q.source_variable not in frame.columns:
            continue
        df = frame[list(dict.fromkeys(["year", WEIGHT, q.source_variable]))]
        df = df[df[q.source_variable].isin(q.option_codes)]
        if len(df) < 100:
            continue
        year = int(df["year"].max())
        df = df[df["year"] == year]
        codes = df[q.source_variable].to_numpy()
        weights = df[WEIGHT].to_numpy(dtype=float)
        halves = []
        for _ in range(repeats):
            mask = np.zeros(len(df), dtype=bool)
            mask[rng.permutation(len(df))[: len(df) // 2]] = True
            halves.append((_weighted_distribution(codes[mask], weights[mask], q.option_codes),
                           _weighted_distribution(codes[~mask], weights[~mask], q.option_codes)))
        out.append({"id": q.id, "year": year, "n": int(len(df)), "ordinal": q.ordinal,
                    "value_dimensions": list(q.value_dimensions), "halves": halves})
    return out


def human_ceiling(
    questions: Sequence[Question], panel_path: str | Path = DEFAULT_PANEL, repeats: int = 20, seed: int = 0,
    zero_policy: str = "smoothing",
) -> dict[str, Any]:
    """Per-question and mean split-half divergences, scored by the metric module."""
    from metrics.cultural_alignment import compute_alignment

    pairs = split_half_distributions(questions, panel_path, repeats, seed)
    if not pairs:
        return {"version": CEILING_VERSION, "n_questions": 0, "per_question": []}
    per_question = []
    for item in pairs:
        a = [h[0].tolist() for h in item["halves"]]
        b = [h[1].tolist() for h in item["halves"]]
        scores = compute_alignment(probabilities=a, references=b, ordinal=[item["ordinal"]] * len(a),
                                   zero_policy=zero_policy, bootstrap_samples=0, return_per_question=True)
        rows = scores["per_question"]
        entry = {"id": item["id"], "year": item["year"], "n": item["n"],
                 "kl": float(np.mean([r["kl"] for r in rows])), "js": float(np.mean([r["js"] for r in rows]))}
        if item["ordinal"]:
            entry["wasserstein"] = float(np.mean([r["wasserstein"] for r in rows]))
        per_question.append(entry)
    result: dict[str, Any] = {
        "version": CEILING_VERSION,
        "method": f"split-half of GSS panel respondents (weighted, {repeats} random splits per question, seed {seed})",
        "n_questions": len(per_question),
        "kl_mean": float(np.mean([p["kl"] for p in per_question])),
        "js_mean": float(np.mean([p["js"] for p in per_question])),
        "per_question": per_question,
    }
    ordinal = [p["wasserstein"] for p in per_question if "wasserstein" in p]
    if ordinal:
        result["wasserstein_mean"] = float(np.mean(ordinal))
    return result
