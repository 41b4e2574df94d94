"""Time left in a run whose steps grow more expensive as it goes.

Why: with the memory modification every participant's prompt carries its earlier questions
and answers, so question 10 costs far more than question 1 and a rows-per-second estimate
(tqdm's) promises far too little time left early on (9.5 minutes shown at 10% of the README
demo, which then took 14.8). Here a step's cost is modelled as ``a + b * load``, where
``load`` is the mean number of memory entries the participants carry into that step
(``min(step, cap)`` per participant is an upper bound, as cleaning drops entries; the runner
passes the observed mean memory length of each step, and later steps are scaled by the share
kept so far). ``a`` and ``b`` (both >= 0) are fitted by least squares to the
steps timed so far, and the remaining steps' costs are summed. Without memory every load is 0
and this is the mean step time times the steps left.

On a shared machine a step's wall time also depends on how many other jobs run (the README
demo's steps took 88 s, rose to 296 s and fell back to 151 s while the load average moved
between 13 and 20; a fit on those wall times predicted 572 s for the last step). For a local model the fit is therefore made on the process's CPU time per step,
and the predicted CPU seconds are divided by the CPU share the process got over its last two
steps; a remote backend (little CPU time) is fitted on wall time.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StepEta", "memory_loads", "format_seconds"]


def memory_loads(steps: int, caps: Sequence[int | None]) -> list[float]:
    """Per step, the mean number of memory entries a participant brings to it (0 without memory)."""
    if not caps:
        return [0.0] * steps
    return [sum(min(s, c) for c in caps if c) / len(caps) for s in range(steps)]


class StepEta:
    """Fit step time = a + b * load on the steps timed so far; predict the rest.

    ``loads`` are the modelled loads per step (``memory_loads``: an upper bound). A step
    recorded with its observed load (the participants' mean memory length as it started)
    uses that instead, and later steps' loads are the upper bound scaled by the share
    observed at the latest such step (memory cleaning keeps only answers with an ``Answer:``).
    """

    def __init__(self, loads: Sequence[float]) -> None:
        self.loads = [float(x) for x in loads]
        self.timed: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.observed: dict[int, float] = {}

    def record(self, step: int, seconds: float, load: float | None = None, cpu_seconds: float | None = None) -> None:
        """``seconds``: the step's wall time; ``cpu_seconds``: the CPU time this process spent on
        it (all threads), which does not change when other jobs share the machine."""
        if not 0 <= step < len(self.loads):
            raise ValueError(f"step={step} is outside 0..{len(self.loads) - 1}")
        self.timed[step] = float(seconds)
        if cpu_seconds is not None:
            self.cpu[step] = float(cpu_seconds)
        if load is not None:
            self.observed[step] = float(load)

    def load(self, step: int) -> float:
        """The load of ``step``: observed, or the upper bound scaled by the share kept so far."""
        if step in self.observed:
            return self.observed[step]
        bounded = [s for s in self.observed if self.loads[s] > 0]
        if not bounded:
            return self.loads[step]
        last = max(bounded)
        return self.loads[step] * min(1.0, self.observed[last] / self.loads[last])

    def _fit(self, times: dict[int, float]) -> tuple[float, float]:
        xs = [self.load(s) for s in times]
        ts = list(times.values())
        n = len(ts)
        mean_x, mean_t = sum(xs) / n, sum(ts) / n
        var = sum((x - mean_x) ** 2 for x in xs)
        b = sum((x - mean_x) * (t - mean_t) for x, t in zip(xs, ts)) / var if var > 0 else 0.0
        b = max(b, 0.0)
        a = mean_t - b * mean_x
        if a < 0:  # keep both non-negative: a line through the origin
            a, b = 0.0, sum(x * t for x, t in zip(xs, ts)) / max(sum(x * x for x in xs), 1e-12)
        return a, b

    def remaining(self, done: set[int] | None = None) -> float | None:
        """Seconds the steps not yet timed (nor in ``done``) will take; None before any step is timed."""
        if not self.timed:
            return None
        skip = set(self.timed) | (done or set())
        left = [s for s in range(len(self.loads)) if s not in skip]
        if self.cpu.keys() == self.timed.keys() and sum(self.cpu.values()) >= 0.05 * sum(self.timed.values()):
            # Compute-bound (a local model): predict CPU seconds, then divide by the share of a
            # CPU the process got over its last two steps, so other jobs starting or stopping
            # on a shared machine move the estimate at once instead of skewing the fit.
            a, b = self._fit(self.cpu)
            recent = sorted(self.timed)[-2:]
            share = sum(self.cpu[s] for s in recent) / max(sum(self.timed[s] for s in recent), 1e-9)
            return sum(a + b * self.load(s) for s in left) / max(share, 1e-3)
        a, b = self._fit(self.timed)
        return sum(a + b * self.load(s) for s in left)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
