"""The runner's time-left estimate follows steps that grow with the memory (simulator.eta)."""

from __future__ import annotations

import numpy as np
import pytest

from culturesim.simulator.eta import StepEta, format_seconds, memory_loads


def test_memory_loads_are_capped_per_participant():
    assert memory_loads(5, [2, 4]) == [0.0, 1.0, 2.0, 2.5, 3.0]
    assert memory_loads(3, []) == [0.0, 0.0, 0.0]


def test_growing_steps_are_predicted_where_a_rate_estimate_is_far_off():
    loads = memory_loads(10, [15, 15, 3, 8])
    true = [2.0 + 1.5 * x for x in loads]  # seconds per step: fixed cost + cost per memory entry
    rng = np.random.default_rng(0)
    eta = StepEta(loads)
    for step in range(3):
        eta.record(step, true[step] * (1 + rng.normal(0, 0.02)))
    left = sum(true[3:])
    naive = sum(true[:3]) / 3 * 7  # rows-per-second: every step like the mean so far
    assert eta.remaining() == pytest.approx(left, rel=0.1)
    assert naive < 0.6 * left  # what tqdm alone would have promised


def test_without_memory_it_is_the_mean_step_time():
    eta = StepEta(memory_loads(6, []))
    for step, t in enumerate([3.0, 5.0]):
        eta.record(step, t)
    assert eta.remaining() == pytest.approx(4.0 * 4)
    assert eta.remaining(done={5}) == pytest.approx(4.0 * 3)  # a resumed step costs nothing


def test_no_estimate_before_a_step_and_a_readable_format():
    assert StepEta([0.0, 1.0]).remaining() is None
    assert format_seconds(None) == "?" and format_seconds(75.4) == "01:15" and format_seconds(3725) == "1:02:05"
    with pytest.raises(ValueError, match="step=2"):
        StepEta([0.0, 1.0]).record(2, 1.0)


def test_observed_memory_lengths_scale_the_later_steps():
    caps = [15, 15, 15, 15]
    upper = memory_loads(10, caps)
    kept = 0.4  # cleaning keeps 40% of the answers (the rest had no "Answer:")
    true = [3.0 + 2.0 * kept * x for x in upper]
    eta = StepEta(upper)
    for step in range(3):
        eta.record(step, true[step], load=kept * upper[step])
    assert eta.load(7) == pytest.approx(kept * upper[7])
    assert eta.remaining() == pytest.approx(sum(true[3:]), rel=1e-6)
    blind = StepEta(upper)  # the upper bound alone: right here too, as the fit absorbs a constant share
    for step in range(3):
        blind.record(step, true[step])
    assert blind.remaining() == pytest.approx(sum(true[3:]), rel=1e-6)


def test_a_busier_machine_moves_the_estimate_through_the_cpu_share():
    upper = memory_loads(8, [15, 15])
    cpu = [4.0 + 1.0 * x for x in upper]  # CPU seconds per step: what the work costs
    eta = StepEta(upper)
    eta.record(0, cpu[0] / 1.0, cpu_seconds=cpu[0])  # alone on the machine: one CPU's worth
    eta.record(1, cpu[1] / 1.0, cpu_seconds=cpu[1])
    eta.record(2, cpu[2] / 0.25, cpu_seconds=cpu[2])  # then other jobs take three quarters
    eta.record(3, cpu[3] / 0.25, cpu_seconds=cpu[3])
    assert eta.remaining() == pytest.approx(sum(cpu[4:]) / 0.25, rel=1e-6)
    wall_only = StepEta(upper)  # a remote backend: hardly any CPU time, fitted on wall time
    for step in range(4):
        wall_only.record(step, 10.0 + step, cpu_seconds=0.01)
    assert wall_only.remaining() == pytest.approx(sum(10.0 + s for s in range(4, 8)), rel=1e-6)
