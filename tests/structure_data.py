"""The respondents data the structure tests compute on: the dataset's respondents config when the
built dataset has it, else the same columns built here from the GSS year file.

The column contract is dataset 3.0's ``US_respondents``: ``respondent_id``, ``weight``, ``sex``
("female"/"male"/None), ``age_group`` ("18-29"/"30-49"/"50+"/None) and one nullable int column per
scored item, named by the item id, holding the 0-based option index (null when not asked or no
substantive answer). The fallback reads the year file the builder reads, with the item rows'
``source_variable`` and ``option_codes``, so both give the same matrix.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SOURCES = Path("/work/shared/sources")
DATASET = Path(__file__).resolve().parent.parent / "dataset_builder" / "dataset" / "data"
RESPONDENTS = DATASET.parent / "respondents"
AGE_GROUPS = (("18-29", 18, 29), ("30-49", 30, 49), ("50+", 50, 200))


@functools.lru_cache(maxsize=2)
def respondents_frame(config: str = "US") -> pd.DataFrame:
    """The respondents of ``config`` (``US`` = GSS 2022, ``US_2024``) in the column contract."""
    built = sorted(RESPONDENTS.glob(f"{config}_respondents-*.parquet"))
    if built:
        return pq.read_table(built[-1]).to_pandas()
    import pyreadr

    items = items_frame(config)
    year = int(items["source_year"].iloc[0])
    path = SOURCES / "gss" / f"gss{year}.rds"
    frame = next(iter(pyreadr.read_r(str(path)).values()))
    frame = frame[frame["wtssps"].notna()].reset_index(drop=True)
    age = frame["age"].to_numpy(dtype=float)
    age_group = np.full(len(frame), None, dtype=object)
    for name, lo, hi in AGE_GROUPS:
        age_group[(age >= lo) & (age <= hi)] = name
    sex = frame["sex"].map({2.0: "female", 1.0: "male"}).astype(object)
    columns = {"respondent_id": frame["id"].astype("int64"), "weight": frame["wtssps"].astype(float),
               "sex": sex.where(sex.notna(), None), "age_group": age_group}
    for row in items.itertuples():
        values = frame[row.source_variable].to_numpy(dtype=float)
        shift = next((int(m.group(1)) for r in row.repairs for m in [re.search(r"shifted back by ([+-]\d+)", r)] if m), 0)
        if shift:
            values = values + shift
        codes = np.asarray(row.option_codes, dtype=float)
        index = np.full(len(values), -1, dtype=np.int64)
        for i, code in enumerate(codes):
            index[values == code] = i
        columns[row.id] = pd.array(np.where(index >= 0, index, 0), dtype="Int64")
        columns[row.id][index < 0] = pd.NA
    return pd.DataFrame(columns)


@functools.lru_cache(maxsize=2)
def items_frame(config: str = "US") -> pd.DataFrame:
    """The GSS item rows of ``config`` (the ones the respondents config has columns for)."""
    (path,) = DATASET.glob(f"{config}-*.parquet")
    items = pq.read_table(path).to_pandas()
    return items[items["source"] == "GSS"].reset_index(drop=True)


def matrix(frame: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """The answers of ``ids`` as an int matrix, -1 where null."""
    return np.column_stack([frame[i].fillna(-1).to_numpy(dtype=np.int64) for i in ids])
