"""Experiments: what runs the simulator repeatedly on the same questions and reads the results.

``run_ablation`` (``culturesim ablate``) runs one folder per diversity plan and per language and
reports them; ``run_battery`` (``culturesim invariance``) runs the invariance battery's
conditions. Each sub-run is an ordinary run folder, so an interrupted experiment resumes where it
stopped; the numbers are computed by ``culturesim.simulator.analysis`` from the folders.
"""

from culturesim.simulator.experiments.ablation import DEFAULT_PLANS, run_ablation
from culturesim.simulator.experiments.invariance import run_battery

__all__ = ["DEFAULT_PLANS", "run_ablation", "run_battery"]
