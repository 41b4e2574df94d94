"""The Space's structure fidelity panel: a scored run's correlations between questions against the humans'.

Why a module: ``app.py`` only lays out components; what the panel says and draws is decided here
and tested without a browser. The numbers are the ``structure`` block ``score_run`` wrote (the
metric's ``structure_fidelity`` through ``culturesim.simulator.analysis.structure_report``); the
figure needs the two correlation matrices, which scores.json does not keep, so they are recomputed
without replicates (the point estimates are the same numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from culturesim.simulator.analysis.scoring import load_config, load_responses, load_run_questions
from culturesim.simulator.analysis.structure_report import STAT_LABELS, run_structure, structure_figure
from culturesim.metrics.cultural_alignment.structure import STRUCTURE_STATS

__all__ = ["STRUCTURE_TITLE", "structure_markdown", "structure_panel"]

STRUCTURE_TITLE = "Structure fidelity: correlations between questions"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def structure_markdown(structure: Mapping[str, Any] | None) -> str:
    """The panel's text: one table row per statistic (simulated with its interval, humans, the
    yardstick with its interval), what it rests on, and a line on how to read it."""
    if not structure:
        return f"**{STRUCTURE_TITLE}**: not computed for this run."
    if not structure.get("available"):
        return f"**{STRUCTURE_TITLE}**: not available: {structure.get('reason')}."
    s = structure
    lines = [
        f"**{STRUCTURE_TITLE}** over {s['n_pairs']} pairs of {s['n_items']} ordinal questions: {s['participants']} "
        f"participants against {s['respondents']} real respondents ({s['respondents_config']}). The yardstick is the "
        "same statistic for random samples of as many real respondents: a perfect simulator of this size lands inside "
        "its interval (few participants make correlations noisy; the yardstick shows how noisy).",
        "",
        "| statistic | simulated | 95% interval | humans | yardstick | yardstick 95% |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for stat in STRUCTURE_STATS:
        if s.get(f"{stat}_simulated") is None:
            continue
        lines.append(f"| {STAT_LABELS[stat]} | {_num(s[f'{stat}_simulated'])} | "
                     f"[{_num(s.get(f'{stat}_simulated_ci_low'))}, {_num(s.get(f'{stat}_simulated_ci_high'))}] | "
                     f"{'–' if stat == 'distance' else _num(s.get(f'{stat}_human'))} | {_num(s.get(f'{stat}_yardstick'))} | "
                     f"[{_num(s.get(f'{stat}_yardstick_ci_low'))}, {_num(s.get(f'{stat}_yardstick_ci_high'))}] |")
    if s.get("group_spread_note"):
        lines += ["", f"Sex x age spread {s['group_spread_note']}."]
    if s.get("unanimous_items"):
        lines += ["", f"Answered alike by every participant (no correlation): {', '.join(s['unanimous_items'])}."]
    return "\n".join(lines)


def structure_panel(run_dir: str | Path, scores: Mapping[str, Any]) -> tuple[str, Figure | None]:
    """(markdown, figure or None) for a scored run folder; the figure only where pairs were compared."""
    structure = scores.get("structure")
    text = structure_markdown(structure)
    if not structure or not structure.get("available") or not structure.get("n_pairs"):
        return text, None
    run_dir = Path(run_dir)
    matrices = run_structure(load_responses(run_dir), load_run_questions(run_dir), load_config(run_dir),
                             replicates=0, return_matrices=True)
    return text, structure_figure({**matrices, **structure}, STRUCTURE_TITLE)
