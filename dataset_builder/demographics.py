"""Answer distributions by sex and age group from the GSS panel microdata.

The DEF paper's preference-bias analysis asks which demographic group a model's preferred
answer is most typical of. The 2022 tabulation has no breakdowns, so they come from the
respondent-level 2016/2018/2020 panel, weighted with ``wtssall``, from the most recent year
in which the variable was asked; each group records that year and its unweighted n.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

AGE_GROUPS: tuple[tuple[str, int, int], ...] = (("18-29", 18, 29), ("30-49", 30, 49), ("50+", 50, 200))
SEX_GROUPS: dict[int, str] = {1: "male", 2: "female"}
WEIGHT = "wtssall"
MIN_GROUP_N = 30  # fewer answers than this give no usable group distribution


class PanelDemographics:
    """Weighted group distributions for any variable of the panel file."""

    def __init__(self, path: str | Path) -> None:
        self.frame = pd.read_parquet(path)
        missing = {"year", "sex", "age", WEIGHT} - set(self.frame.columns)
        if missing:
            raise ValueError(f"{path} lacks the columns {sorted(missing)} needed for demographic breakdowns")

    def has(self, variable: str) -> bool:
        return variable in self.frame.columns and self.frame[variable].notna().any()

    def groups(self, variable: str, codes: list[int]) -> list[dict[str, Any]]:
        """[{group_type, group, year, n, distribution}] over ``codes``, or [] when not asked."""
        if variable not in self.frame.columns:
            return []
        df = self.frame[list(dict.fromkeys(["year", "sex", "age", WEIGHT, variable]))]
        df = df[df[variable].isin(codes)]
        if df.empty:
            return []
        year = int(df["year"].max())
        df = df[df["year"] == year]
        out: list[dict[str, Any]] = []
        selections: list[tuple[str, str, pd.Series]] = [
            ("sex", name, df["sex"] == code) for code, name in SEX_GROUPS.items()
        ]
        selections += [("age", name, df["age"].between(lo, hi)) for name, lo, hi in AGE_GROUPS]
        for group_type, group, mask in selections:
            part = df[mask]
            if len(part) < MIN_GROUP_N:
                continue
            weights = part.groupby(variable)[WEIGHT].sum()
            shares = np.array([float(weights.get(code, 0.0)) for code in codes])
            if shares.sum() <= 0:
                continue
            out.append(
                {
                    "group_type": group_type,
                    "group": group,
                    "year": year,
                    "n": int(len(part)),
                    "distribution": (shares / shares.sum()).tolist(),
                }
            )
        return out if len(out) == len(SEX_GROUPS) + len(AGE_GROUPS) else []
