"""The respondents configs: one row per GSS cross-section respondent, their answer to every item.

Why: the item rows hold marginals only. Structure fidelity (do a model's simulated people show
the correlations between items that real people show?) and personas drawn from real people need
the joint answers, and they must be the same answers, weights and respondents the item rows
were estimated from. So the builder records, while it forms each GSS row, which option each
cross-section respondent chose (``ItemAnswers``, kept on the row under ``PRIVATE_KEY``), and
this module turns the rows that survive every exclusion into one table per config
(``US`` -> ``US_respondents``, ``US_2024`` -> ``US_2024_respondents``):

- ``respondent_id`` (``gss2022.<year-file id>``), ``weight`` (``wtssps``), one column per
  sub-sample weight that some item needs (``weight_nea`` = ``wtssps_nea``, ``weight_next`` =
  ``wtssps_next``; null outside the sub-sample), ``sex`` and ``age_group`` (as in the
  ``demographics`` column, null when unknown);
- one int8 column per item, named by the item row's ``id``: the 0-based index into that row's
  ``options``, null when the respondent was not asked or gave no substantive answer.

The weighted marginal of each item column, with the weight column named by the item row's
``respondents_weight``, is the row's ``human_distribution`` (``check`` enforces it to 1e-9 before
anything is written). The files live in ``respondents/`` beside ``data/``: the item-row readers
(``config_files``) read ``data/`` only, so no reader mistakes a respondent for a question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from culturesim.dataset_builder import microdata
from culturesim.dataset_builder.schema import data_file_name, data_files_by_config

#: Where a GSS row keeps its ``ItemAnswers`` until ``finish`` strips it (never written).
PRIVATE_KEY = "_respondents"
SUFFIX = "_respondents"
FOLDER = "respondents"
#: Tolerance of the marginal check (the floats are sums of the same weights in another order).
MARGINAL_TOLERANCE = 1e-9
ANSWER_TYPE = pa.int8()  # at most 11 options (gss.MAX_OPTIONS)


class RespondentsError(ValueError):
    """The respondents table would not reproduce the item rows."""


@dataclass(frozen=True, eq=False)
class Panel:
    """The cross-section respondents of one year file, in year-file order.

    ``weights`` maps a respondents-config weight name to its values (NaN outside a sub-sample).
    """

    year: int
    respondent_id: tuple[str, ...]
    weights: dict[str, np.ndarray]
    sex: tuple[str | None, ...]
    age_group: tuple[str | None, ...]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, year: int) -> "Panel":
        if "id" not in frame.columns:
            raise RespondentsError(f"GSS {year} year file has no 'id' column; the respondents configs key on it")
        ids = frame["id"].to_numpy(dtype=float)
        if np.isnan(ids).any() or len(set(ids.tolist())) != len(ids) or (ids != np.round(ids)).any():
            raise RespondentsError(f"GSS {year}: respondent ids are not unique integers; check the year file")
        sex = tuple(microdata.SEX_GROUPS.get(int(s)) if s == s else None for s in frame["sex"].to_numpy(dtype=float))
        ages = frame["age"].to_numpy(dtype=float)
        groups = tuple(next((name for name, lo, hi in microdata.AGE_GROUPS if lo <= a <= hi), None) if a == a else None
                       for a in ages)
        weights = {name: frame[col].to_numpy(dtype=float) for name, col in microdata.weight_columns(frame).items()}
        return cls(year, tuple(f"gss{year}.{int(i)}" for i in ids), weights, sex, groups)


@dataclass(frozen=True, eq=False)
class ItemAnswers:
    """One GSS row's answers: ``index[i]`` is respondent i's option index, -1 for none."""

    panel: Panel
    index: np.ndarray
    weight: str


def item_columns(schema: pa.Schema) -> list[str]:
    """The item columns of a respondents table (every column but the id, weights, sex and age)."""
    return [n for n in schema.names if n not in ("respondent_id", "sex", "age_group") and n != microdata.CROSS_SECTION_WEIGHT
            and n not in microdata.SUBSAMPLE_WEIGHTS]


def config_name(item_config: str) -> str:
    """``US`` -> ``US_respondents``."""
    return f"{item_config}{SUFFIX}"


def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without the private answers (what is validated, linted and written)."""
    return [{k: v for k, v in row.items() if k != PRIVATE_KEY} for row in rows]


def tables(rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """Respondents config name -> its table, for every config whose rows carry answers.

    Items are the config's rows that carry ``ItemAnswers`` (the GSS rows that passed every
    exclusion), in id order; respondents in year-file order. Raises ``RespondentsError`` if a
    config mixes year files or an item's weighted marginal is not its ``human_distribution``.
    """
    by_config: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(PRIVATE_KEY) is not None:
            by_config.setdefault(row["config"], []).append(row)
    return {config_name(c): _table(c, sorted(items, key=lambda r: r["id"])) for c, items in sorted(by_config.items())}


def _table(config: str, items: list[dict[str, Any]]) -> pa.Table:
    panel = items[0][PRIVATE_KEY].panel
    if any(r[PRIVATE_KEY].panel is not panel for r in items):
        raise RespondentsError(f"config {config!r} mixes answers from two year files; one config is one wave")
    for row in items:
        check(row, row[PRIVATE_KEY])
    used = {r[PRIVATE_KEY].weight for r in items}
    weight_names = [microdata.CROSS_SECTION_WEIGHT] + sorted(used - {microdata.CROSS_SECTION_WEIGHT})
    fields = [pa.field("respondent_id", pa.string(), nullable=False)]
    fields += [pa.field(w, pa.float64()) for w in weight_names]
    fields += [pa.field("sex", pa.string()), pa.field("age_group", pa.string())]
    fields += [pa.field(r["id"], ANSWER_TYPE) for r in items]
    columns: list[pa.Array] = [pa.array(panel.respondent_id, pa.string())]
    columns += [pa.array(panel.weights[w], pa.float64(), from_pandas=True) for w in weight_names]
    columns += [pa.array(panel.sex, pa.string()), pa.array(panel.age_group, pa.string())]
    for row in items:
        index = row[PRIVATE_KEY].index
        columns.append(pa.array(index, ANSWER_TYPE, mask=index < 0))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def check(row: dict[str, Any], answers: ItemAnswers) -> None:
    """The answers' weighted marginal must be the row's distribution and their count ``human_n``."""
    index = answers.index
    weights = answers.panel.weights[answers.weight]
    given = index >= 0
    k = len(row["options"])
    if len(index) != len(weights) or (index >= k).any() or np.isnan(weights[given]).any():
        raise RespondentsError(f"{row['id']}: answers do not fit {k} options or fall outside the weight "
                               f"{answers.weight!r}; the builder's item_weight and positions disagree")
    shares = np.bincount(index[given], weights=weights[given], minlength=k)
    marginal = shares / shares.sum()
    gap = float(np.max(np.abs(marginal - np.asarray(row["human_distribution"]))))
    if gap > MARGINAL_TOLERANCE or int(given.sum()) != row["human_n"]:
        raise RespondentsError(f"{row['id']}: respondents' marginal differs from human_distribution by {gap:.2e} "
                               f"(n {int(given.sum())} vs human_n {row['human_n']}); rebuild both from one pass")


def write(tables_by_config: dict[str, pa.Table], out: Path) -> dict[str, str]:
    """One zstd parquet file per respondents config in ``out/respondents/``, named by content;
    returns config -> path relative to ``out`` (what the card's ``configs`` list). Stale files go."""
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    files = {}
    for config, table in sorted(tables_by_config.items()):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd", write_statistics=False)
        payload = sink.getvalue().to_pybytes()
        name = data_file_name(config, payload)
        (folder / name).write_bytes(payload)
        files[config] = f"{FOLDER}/{name}"
    if not files:
        folder.rmdir()
    return files


def respondents_files(dataset_dir: str | Path) -> dict[str, Path]:
    """Respondents config name -> its parquet file in a built dataset folder."""
    return data_files_by_config(Path(dataset_dir) / FOLDER, RespondentsError)


#: The respondents configs' fixed columns (the item columns follow, one per item row id).
COLUMN_DOCS: dict[str, str] = {
    "respondent_id": "`gss<year>.<id>`: the year file's respondent id, unique within the config.",
    "weight": "The cross-section weight `wtssps` (post-stratified person weight), the weight of every item row whose `respondents_weight` is `weight`.",
    "weight_nea": "GSS 2022 only: `wtssps_nea`, NORC's weight for the random sub-sample asked the NEA arts module; null outside it.",
    "weight_next": "GSS 2022 only: `wtssps_next`, NORC's weight for the random sub-sample asked the GSS Next items; null outside it.",
    "sex": "`female`, `male`, or null when the year file has no sex (the groups of the `demographics` column).",
    "age_group": "`18-29`, `30-49`, `50+`, or null when the age is unknown (the groups of the `demographics` column).",
    "<item id>": "One int8 column per scored GSS item of the wave, named by the item row's `id` (e.g. `gss2022.fefam.en`), in id order: the 0-based index into that row's `options`, null when the respondent was not asked or gave no substantive answer.",
}


def card_section(rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    """The card's text on design effects and the respondents configs, with the built numbers."""
    gss_rows = [r for r in rows if r.get("design_effect") is not None]
    years = sorted({r["source_year"] for r in gss_rows})
    deff = {y: np.array([r["design_effect"] for r in gss_rows if r["source_year"] == y]) for y in years}
    deff_text = "; ".join(f"{y}: median {np.median(d):.2f} (range {d.min():.2f}–{d.max():.2f}, {len(d)} items)"
                          for y, d in deff.items())
    by_weight: dict[str, int] = {}
    for r in gss_rows:
        by_weight[r["respondents_weight"]] = by_weight.get(r["respondents_weight"], 0) + 1
    sub = ", ".join(f"{n} `{w}`" for w, n in sorted(by_weight.items()) if w != microdata.CROSS_SECTION_WEIGHT)
    per_config = report.get("respondents_per_config", {})
    config_lines = "\n".join(f"- `{c}`: {v['respondents']:,} respondents × {v['items']} items"
                             for c, v in sorted(per_config.items()))
    columns = "\n".join(f"| `{k}` | {v} |" for k, v in COLUMN_DOCS.items())
    return f"""**Design effect and effective n.** Every GSS row carries `design_effect`, Kish's
n·Σw²/(Σw)² over the weights of the `human_n` respondents behind it, and `human_n_effective` =
`human_n` / `design_effect`, the size of a simple random sample as precise as the weighted
estimate ({deff_text}). It is the weighting part of the design effect only: the year files hold
no usable strata or cluster codes, so clustering would make the true effective sample smaller
still. The metric draws the human sampling noise from `human_n_effective`; this replaces the
split-half `human_ceiling_*` columns of 2.x. WVS rows have both null: the aggregated sources give
neither weights nor a design effect (`human_n` is there an upper bound on the information).

**Sub-sample weights.** Some GSS 2022 items were asked only of a random sub-sample of the
cross-section, the NEA arts module and the GSS Next items, and NORC ships a weight for each
(`wtssps_nea`, `wtssps_next`) that post-stratifies that sub-sample to the population. An item
whose every respondent lies in one such sub-sample is weighted with that sub-sample's weight (its
distribution, breakdowns and design effect; 2.x used `wtssps` for them): {sub or 'none'}; the
column `respondents_weight` names the weight of each row.

**Respondents configs.** `US_respondents` (GSS 2022) and `US_2024_respondents` (GSS 2024) hold one
row per cross-section respondent and one column per scored GSS item of that wave, the same
respondents, answers and weights the item rows were estimated from; for every item column the
weighted share of each option, with the weight column that the item row's `respondents_weight`
names, is the row's `human_distribution` (checked to 1e-9 by the build). They are for structure
fidelity (correlations between items) and personas drawn from real people. The files sit in
`respondents/`, apart from the question configs in `data/`.

{config_lines}

```python
people = load_dataset("path/to/this/folder", "US_respondents", split="test").to_pandas()
item = "gss2022.fefam.en"   # an item row's id; its options are that row's options
people.groupby(item)["weight"].sum() / people.loc[people[item].notna(), "weight"].sum()
```

| column | definition |
| --- | --- |
{columns}
"""
