"""Shared helpers for the simulator tests: a small dataset folder built from the real sources.

The questions are real GSS 2022 and WVS-7 China items (wording, options, codes and human
distributions read from ../shared/sources), written with the dataset's own Arrow schema, so
the simulator is tested on the record it will meet, independently of the full build.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataset_builder.schema import SCHEMA

REPO = Path(__file__).resolve().parent.parent
# ../shared/sources beside the checkout (a git worktree one level deeper also finds it).
SOURCES = next((p for p in (REPO.parent / "shared" / "sources", REPO.parent.parent / "shared" / "sources") if p.is_dir()),
               REPO.parent / "shared" / "sources")
GSS_VARIABLES = ("fefam", "cappun", "grass", "natspac", "helpful")
NON_SUBSTANTIVE = {"iap", "don't know", "no answer", "skipped on web", "not available in this year", "Total",
                   "dk, na, iap", "refused"}
DIMENSIONS = {"fefam": ["EVI", "TDI"], "cappun": ["PDI"], "grass": ["IVR", "EVI"], "natspac": ["LTO"], "helpful": ["IDV"]}


def _gss_rows() -> list[dict]:
    rows = []
    wanted = set(GSS_VARIABLES)
    with open(SOURCES / "gss" / "gss_variables_2018_2024.jsonl", encoding="utf-8") as fh:
        for line in fh:
            v = json.loads(line)
            if v["variable"] not in wanted:
                continue
            counts = v["counts_by_year"]["2022"]
            values = [(c, label) for c, label in v["values"] if label not in NON_SUBSTANTIVE]
            n = sum(counts[label] for _, label in values)
            rows.append({
                "id": f"gss2022.{v['variable']}.en", "culture": "US", "language": "en", "is_native_language": True,
                "source": "GSS", "source_year": 2022, "source_variable": v["variable"],
                "question": " ".join(v["question"].split()),
                "options": [label[:1].upper() + label[1:] for _, label in values],
                "option_codes": [int(c) for c, _ in values],
                "question_type": "single_choice", "ordinal": len(values) == 2 or v["variable"] in ("fefam", "helpful"),
                "human_distribution": [counts[label] / n for _, label in values], "human_n": n,
                "value_dimensions": DIMENSIONS[v["variable"]], "value_dimension_rationale": "test fixture",
                "topic": next(f for f in v["families"] if f != "Core") if len(v["families"]) > 1 else "Core",
                "demographics": [], "parallel_id": f"gss.{v['variable']}", "repairs": [],
            })
    order = {name: i for i, name in enumerate(GSS_VARIABLES)}
    return sorted(rows, key=lambda r: order[r["source_variable"]])


def _wvs_cn_rows(qids: tuple[str, ...] = ("Q1", "Q2", "Q3")) -> list[dict]:
    data = json.loads((SOURCES / "wvs7" / "wvs7_CN_aggregates.json").read_text(encoding="utf-8"))
    rows = []
    for e in data["examples"]:
        if e["id"] not in qids:
            continue
        options = [o.split(".", 1)[1].strip() for o in e["options"]]
        codes = [int(o.split(".", 1)[0]) for o in e["options"]]
        dist = [float(e["distribution"].get(str(c), 0.0)) for c in codes]
        total = sum(dist)
        rows.append({
            "id": f"wvs7.CN.{e['id']}.zh", "culture": "CN", "language": "zh", "is_native_language": True,
            "source": "WVS", "source_year": 2018, "source_variable": e["id"], "question": e["question_text"],
            "options": options, "option_codes": codes, "question_type": "single_choice", "ordinal": True,
            "human_distribution": [x / total for x in dist], "human_n": 3036, "value_dimensions": ["TDI"],
            "value_dimension_rationale": "test fixture", "topic": e["topic"], "demographics": [],
            "parallel_id": f"wvs7.{e['id']}", "repairs": [],
        })
    return rows


@lru_cache(maxsize=None)
def _tables() -> dict[str, pa.Table]:
    return {"US": pa.Table.from_pylist(_gss_rows(), schema=SCHEMA), "CN": pa.Table.from_pylist(_wvs_cn_rows(), schema=SCHEMA)}


def build_fixture_dataset(folder: str | os.PathLike) -> Path:
    """Write ``folder/data/{US,CN}.parquet`` (5 GSS items, 3 WVS China items) and return ``folder``."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for culture, table in _tables().items():
        pq.write_table(table, folder / "data" / f"{culture}.parquet")
    return folder
