"""The progress bar of a run: one for the sampling runner and the other estimators.

Why plain tqdm: the Space shows the simulator's own bars through ``gr.Progress(track_tqdm=True)``.
tqdm's own time-left assumes rows of equal cost; the runner puts ``culturesim.simulator.eta``'s
estimate in the postfix instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_progress"]


def run_progress(total: int, done: int, plan: str, enabled: bool) -> Any:
    """A tqdm bar over a run's ``total`` rows, ``done`` of them already on disk."""
    from tqdm import tqdm  # looked up per bar, as before: the plain tqdm gr.Progress(track_tqdm=True) follows

    return tqdm(total=total, initial=done, desc=f"simulate [{plan}]", unit="row", disable=not enabled,
                dynamic_ncols=True, smoothing=0.1, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
