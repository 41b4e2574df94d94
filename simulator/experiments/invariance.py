"""The invariance battery's runs (``culturesim invariance``): the same questions, plan and
participants under controlled changes of presentation, each an ordinary run folder made by the
runner's ``simulate`` (so generation, parsing and resuming are the runner's own).

Why apart from the numbers: the conditions (``plan_conditions``) and everything computed from
the folders (``analyse``, ``write_result``) live in ``culturesim.simulator.analysis.invariance``,
whose docstring says what each run is and what is reported; this module only runs them. Run
``i`` has seed ``seed + i``, so each condition is an independent replicate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturesim.simulator.analysis.invariance import Condition
from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.presentation import Paraphrases, Presentation
from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import CONFIG_FILE
from culturesim.simulator.runner import simulate

__all__ = ["run_battery"]


def run_battery(
    out: str | Path,
    questions: Sequence[Question],
    backend: Any,
    conditions: Sequence[Condition],
    plan: str = "none",
    participants: int = 20,
    seed: int = 0,
    settings: Any = None,
    max_new_tokens: int = 512,
    paraphrases: Paraphrases | None = None,
    progress: bool = True,
    selection: dict[str, Any] | None = None,
) -> list[Path]:
    """Run every condition into ``out/<name>`` (resuming any that exist) with the runner."""
    if any(c.paraphrases for c in conditions) and paraphrases is None:
        raise ValueError("The paraphrase perturbation needs --paraphrases DIR (written by `culturesim dataset expand`)")
    out = Path(out)
    settings = settings or PlanSettings()
    dirs = []
    for i, c in enumerate(conditions):
        run_dir = out / c.name
        presentation = Presentation(order=c.order, labels=c.labels, paraphrases=(
            dataclasses.replace(paraphrases, include_original=False) if c.paraphrases and paraphrases else None))
        run_settings = dataclasses.replace(settings, shuffle_options=c.order == "plan")
        simulate(run_dir, questions, backend, plan=plan, participants=participants, seed=seed + i,
                 settings=run_settings, max_new_tokens=max_new_tokens, resume=(run_dir / CONFIG_FILE).exists(),
                 progress=progress, selection={**(selection or {}), "invariance": c.name}, presentation=presentation)
        dirs.append(run_dir)
    return dirs
