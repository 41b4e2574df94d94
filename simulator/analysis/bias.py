"""Preference bias by value dimension: which demographic group (sex; age 18-29, 30-49, 50+) the
model's preferred option is most typical of, counted per dimension.

Why its own module: the report's bias heatmaps and the Space's bias tab draw the same counts;
both read them from the metric's per-dimension ``bias_profile`` here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bias_by_dimension"]


def bias_by_dimension(metric: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """{matched|mismatched: {dimension: {group: count}}} from the metric's per-dimension profiles
    (what the bias heatmaps draw)."""
    out: dict[str, dict[str, dict[str, float]]] = {"matched": {}, "mismatched": {}}
    for dim, stats in (metric.get("per_dimension") or {}).items():
        profile = stats.get("bias_profile") or {}
        for kind in out:
            groups: dict[str, float] = {}
            for family in ("sex", "age"):
                for group, count in (profile.get(kind, {}).get(family) or {}).items():
                    if group != "tie":
                        groups[group] = float(count)
            # kept when some question of the dimension has sex/age data, even if none is of this
            # kind: zero matched questions is a count of 0, not "no demographic data"
            if any((profile.get("n") or {}).get(family, 0) for family in ("sex", "age")):
                out[kind][dim] = groups
    return out
