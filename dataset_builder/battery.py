"""The ``battery`` column: which questionnaire block each item belongs to.

Why: items of one block share a stem, a scale and a moment in the interview, so the errors of a
model and the sampling errors of the humans are correlated within it; an interval that resamples
items one by one treats 19 justifiability items as 19 independent pieces of evidence. The metric
resamples batteries instead. The mapping is curated in ``curation/battery.yaml`` (rules: a GSS
battery's explicit variables, then GSS topic modules, then battery prefixes; WVS Q-number
ranges of the master questionnaire); an item no rule claims is its own battery, named by its
``parallel_id`` so a question's languages and survey years share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BATTERY_FILE = Path(__file__).resolve().parent / "curation" / "battery.yaml"
_QID = re.compile(r"Q(\d+)")


class BatteryError(ValueError):
    """The battery curation file is malformed or contradicts itself."""


@dataclass(frozen=True)
class BatteryRules:
    """The parsed rules: GSS variable -> battery, prefixes, modules; WVS ranges; names."""

    variables: dict[str, str]
    prefixes: list[tuple[str, str]]
    modules: list[tuple[str, str]]
    ranges: list[tuple[int, int, str]]
    names: dict[str, str]

    @classmethod
    def load(cls, path: Path = BATTERY_FILE) -> "BatteryRules":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if set(data) - {"gss", "wvs"}:
            raise BatteryError(f"{path.name}: unknown top-level keys {sorted(set(data) - {'gss', 'wvs'})}; use gss and wvs")
        gss, wvs = data.get("gss") or {}, data.get("wvs") or {}
        variables: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        names: dict[str, str] = {}
        for battery, spec in (gss.get("batteries") or {}).items():
            extra = set(spec) - {"name", "variables", "prefixes"}
            if extra or not spec.get("name") or not (spec.get("variables") or spec.get("prefixes")):
                raise BatteryError(f"{path.name}: battery {battery!r} needs a name and variables or prefixes "
                                   f"(and nothing else; got {sorted(spec)})")
            names[battery] = spec["name"]
            for var in spec.get("variables") or []:
                if var in variables:
                    raise BatteryError(f"{path.name}: variable {var!r} is in {variables[var]!r} and {battery!r}; "
                                       "an item belongs to one battery")
                variables[var] = battery
            prefixes += [(p, battery) for p in spec.get("prefixes") or []]
        modules = [(m, b) for m, b in (gss.get("modules") or {}).items()]
        for module, battery in modules:
            names.setdefault(battery, f"GSS module: {module}")
        ranges = []
        for spec in wvs.get("ranges") or []:
            first, last, battery = int(spec["first"]), int(spec["last"]), spec["battery"]
            if first > last or battery != f"wvs7.Q{first}-Q{last}":
                raise BatteryError(f"{path.name}: WVS range {spec} must read first <= last and be named "
                                   f"wvs7.Q<first>-Q<last>")
            if any(not (last < a or first > b) for a, b, _ in ranges):
                raise BatteryError(f"{path.name}: WVS range {battery} overlaps another range")
            ranges.append((first, last, battery))
            names[battery] = spec["name"]
        return cls(variables, prefixes, modules, ranges, names)

    def gss(self, variable: str, families: list[str], parallel_id: str) -> str:
        """The battery of a GSS variable with the documentation's ``families``."""
        if variable in self.variables:
            return self.variables[variable]
        for module, battery in self.modules:
            if module in families:
                return battery
        for prefix, battery in self.prefixes:
            if variable.startswith(prefix):
                return battery
        return parallel_id

    def wvs(self, qid: str, parallel_id: str) -> str:
        """The battery of a WVS question (``Q177``)."""
        m = _QID.fullmatch(qid)
        if m is None:
            raise BatteryError(f"WVS question id {qid!r} is not Q<number>")
        number = int(m.group(1))
        return next((b for first, last, b in self.ranges if first <= number <= last), parallel_id)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per config: how many batteries, how many of them singletons, and the largest (id, items)."""
    out: dict[str, Any] = {}
    for config in sorted({r["config"] for r in rows}):
        sizes: dict[str, int] = {}
        for r in rows:
            if r["config"] == config and r["is_native_language"]:
                sizes[r["battery"]] = sizes.get(r["battery"], 0) + 1
        largest = max(sorted(sizes), key=lambda b: sizes[b])
        out[config] = {"batteries": len(sizes), "singletons": sum(1 for n in sizes.values() if n == 1),
                       "largest": largest, "largest_items": sizes[largest]}
    return out


def card_text(rows: list[dict[str, Any]]) -> str:
    """The card's paragraph on batteries, with the built counts."""
    stats = summary(rows)
    lines = "; ".join(f"{c}: {s['batteries']} batteries ({s['singletons']} single items), largest "
                      f"`{s['largest']}` with {s['largest_items']} items" for c, s in stats.items())
    return f"""**Batteries.** `battery` names the questionnaire block of each item, so intervals resample
blocks together (items of one block share a stem, a scale and a moment of the interview, and
their errors are correlated). GSS: curated batteries (`gss.abortion`, `gss.natspend`,
`gss.confidence`, `gss.civil_liberties`, ...), and GSS modules asked as one block (`gss.qwl` the
Quality of Working Life, `gss.nea_arts`, `gss.next`, each ISSP module); WVS: the batteries of the
WVS-7 master questionnaire (`wvs7.Q1-Q6` importance in life, `wvs7.Q64-Q89` confidence,
`wvs7.Q177-Q195` justifiability, ...). An item in no block is its own battery, named by its
`parallel_id`. Rules and names in `curation/battery.yaml`. Counts over native-language rows:
{lines}.
"""
