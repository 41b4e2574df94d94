"""Speed of the cultural_alignment metric against a plain per-question scipy loop.

Scores N questions x P simulated participants (option counts 2..11, half of the questions
ordinal, one or two value dimensions each, sex and age distributions for every question),
given as plain Python lists the way the simulator hands them over. Ours and the naive way are
timed in the same run; the naive loop is timed on a random subsample of questions (and its
bootstraps on a few replicates) and extrapolated linearly, which each line says. The naive
floor is what one would write per question: 16 multinomial draws (as many as ours) from the human and from the
uniform distribution, each scored with scipy (ours is exact for KL and Wasserstein).

The bars from issue 23 and 24 (metric 3.0), one line each: 100,000 questions x 20 participants
scored by default (question bootstrap 1000, participant jackknife, worth-N) under 20 s of CPU
time; point estimates (bootstrap_samples=0: floors, the jackknife's bias-corrected KL, normalised
scores, worth-N) under 4 s; worth-N (the KL floor curve, the survey's noise and solving for n)
adding under 10 % to default scoring. CPU time is time.process_time, so that other jobs on a
shared machine matter less; the ratios compare CPU seconds of both ways. Each line also gives our wall clock (it grows with the load average,
printed; the metric runs BLAS on one thread).

    python benchmarks/bench_metric.py                # 100,000 x 20, 1000 question-bootstrap replicates
    python benchmarks/bench_metric.py --questions 20000 --naive-sample 500
    python benchmarks/bench_metric.py --points-only  # our point estimates alone (for profiling:
        # python -m cProfile -o /tmp/p.prof benchmarks/bench_metric.py --points-only)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS, compute_alignment  # noqa: E402
from culturesim.metrics.cultural_alignment.floors import kl_floor_curve  # noqa: E402
from culturesim.metrics.cultural_alignment.inputs import add_design, check_settings, prepare  # noqa: E402
from culturesim.metrics.cultural_alignment.worth import solve_worth, survey_noise  # noqa: E402

GROUPS = [("sex", "female"), ("sex", "male"), ("age", "18-29"), ("age", "30-49"), ("age", "50+")]


def make_inputs(n: int, participants: int, seed: int) -> dict:
    """Synthetic survey: human and group distributions ~ Dirichlet(1), each question's model
    preference ~ Dirichlet(0.5), participants' answers drawn from it."""
    rng = np.random.default_rng(seed)
    ks = rng.integers(2, 12, n)
    predictions: list = [None] * n
    references: list = [None] * n
    demographics: list = [None] * n
    for k in range(2, 12):
        idx = np.flatnonzero(ks == k)
        human = rng.dirichlet(np.ones(k), len(idx))
        model = rng.dirichlet(np.full(k, 0.5), len(idx))
        answers = (rng.random((len(idx), participants))[:, :, None] > np.cumsum(model, 1)[:, None, :-1]).sum(-1)
        groups = rng.dirichlet(np.ones(k), (len(idx), len(GROUPS)))
        for r, i in enumerate(idx.tolist()):
            predictions[i] = answers[r].tolist()
            references[i] = human[r].tolist()
            demographics[i] = [
                {"group_type": t, "group": g, "distribution": groups[r, s].tolist(), "n": 400, "year": 2022}
                for s, (t, g) in enumerate(GROUPS)
            ]
    return {
        "predictions": predictions,
        "references": references,
        "ordinal": (rng.random(n) < 0.5).tolist(),
        "value_dimensions": [
            [VALUE_DIMENSIONS[j] for j in rng.choice(9, int(rng.integers(1, 3)), replace=False)] for _ in range(n)
        ],
        "demographics": demographics,
        "question_ids": [f"bench.{i}" for i in range(n)],
        "human_n_effective": rng.integers(200, 1500, n).tolist(),
        "battery": [f"b{i // 8}" if i % 3 else None for i in range(n)],
    }


def naive_question(answers, q, ordinal, demo, eps=1e-3, weights=None):
    """One question the plain way: scipy per question, Python per group."""
    k = len(q)
    counts = np.bincount(answers, weights=weights, minlength=k)
    if counts.sum() == 0:
        return None
    p = counts / counts.sum()
    q = np.asarray(q)
    kl = entropy(p + eps, q + eps)
    js = jensenshannon(p, q, base=2)
    w = wasserstein_distance(np.arange(k), np.arange(k), p, q) / (k - 1) if ordinal else None
    top_p = np.flatnonzero(p >= p.max() - 1e-9)
    top_q = np.flatnonzero(q >= q.max() - 1e-9)
    match = len(np.intersect1d(top_p, top_q)) / (len(top_p) * len(top_q))
    preferred = {}
    for family in ("sex", "age"):
        shares = {d["group"]: sum(d["distribution"][o] for o in top_p) for d in demo if d["group_type"] == family}
        best = max(shares.values())
        winners = [g for g, s in shares.items() if s >= best - 1e-9]
        preferred[family] = winners[0] if len(winners) == 1 else "tie"
    return kl, js, w, match, entropy(p), len(set(answers)), preferred


def naive_loop(data: dict, sample: np.ndarray, weights=None) -> list:
    return [
        naive_question(data["predictions"][i], data["references"][i], data["ordinal"][i], data["demographics"][i],
                       weights=weights)
        for i in sample
    ]


def naive_floor(q, P, rng, draws=16):
    """The floor and uniform baseline of one question the plain way: scipy on sampled answers."""
    k = len(q)
    out = []
    for dist in (np.asarray(q), np.full(k, 1 / k)):
        total = np.zeros(3)
        for counts in rng.multinomial(P, dist, size=draws):
            p = counts / P
            total += (entropy(p + 1e-3, np.asarray(q) + 1e-3), jensenshannon(p, q, base=2),
                      wasserstein_distance(np.arange(k), np.arange(k), p, q) / (k - 1))
        out.append(total / draws)
    return out


def naive_question_bootstrap_replicate(values: dict, dims: list, ordinal: np.ndarray, rng) -> None:
    n = len(values["kl"])
    idx = rng.integers(0, n, n)
    for stat in ("kl", "js", "match"):
        values[stat][idx].mean()
    values["w"][idx[ordinal[idx]]].mean()
    for d in VALUE_DIMENSIONS:
        sel = idx[dims[d][idx]]
        for stat in ("kl", "js", "match"):
            values[stat][sel].mean()


def timed(fn, *args, **kwargs):
    """(wall-clock seconds, CPU seconds of this process, result)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, time.process_time() - cpu, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=1000, help="replicates of each bootstrap")
    parser.add_argument("--naive-sample", type=int, default=2000, help="questions the naive loop is timed on")
    parser.add_argument("--naive-floor-sample", type=int, default=200, help="questions the naive floors are timed on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points-only", action="store_true",
                        help="time our point estimates alone: no default scoring, worth-N part or naive loops")
    args = parser.parse_args()
    n, P, B = args.questions, args.participants, args.bootstrap
    data = make_inputs(n, P, args.seed)
    load_before = os.getloadavg()[0]
    print(f"# {n:,} questions x {P} participants, option counts 2..11, bootstrap {B} replicates; "
          f"{os.cpu_count()} CPUs, load average {load_before:.2f}")

    point = timed(compute_alignment, **data, bootstrap_samples=0)
    if args.points_only:
        print(f"point estimates (floors, baselines, jackknife bias-corrected KL, normalised scores, worth-N, demographic "
              f"gaps): ours {point[0]:.2f} s wall, {point[1]:.2f} s CPU (bar: under 4 s CPU: "
              f"{'PASS' if point[1] < 4.0 else 'FAIL'}); load average after {os.getloadavg()[0]:.2f}")
        return 0
    default = timed(compute_alignment, **data, bootstrap_samples=B)
    result = default[2]

    def worth_part() -> None:
        """What worth-N adds: the exact KL floor curve of every question, the survey's noise, n per question."""
        prepared = prepare(predictions=data["predictions"], references=data["references"], ordinal=data["ordinal"])
        add_design(prepared, data["battery"], data["human_n_effective"])
        settings = check_settings("smoothing", 1e-3, 0, 0.95, 0, 0)
        curve = kl_floor_curve(prepared, settings)
        survey_noise(prepared, curve)
        solve_worth(curve, np.full(n, 0.05))

    worth = timed(worth_part)
    rng = np.random.default_rng(args.seed + 1)
    m = min(args.naive_sample, n)
    sample = rng.choice(n, m, replace=False)
    scale = n / m
    naive = timed(naive_loop, data, sample)[1] * scale
    mf = min(args.naive_floor_sample, n)
    floor_sample = sample[:mf]
    naive_floors = timed(lambda: [naive_floor(data["references"][i], P, rng) for i in floor_sample])[1] * n / mf
    # the naive bootstrap's cost does not depend on the values, only on their number
    values = {"kl": rng.random(n), "js": rng.random(n), "match": rng.random(n), "w": rng.random(n)}
    ordinal = np.asarray(data["ordinal"])
    dims = {d: np.array([d in tags for tags in data["value_dimensions"]]) for d in VALUE_DIMENSIONS}
    reps = max(1, min(B, 20))
    naive_qboot = timed(
        lambda: [naive_question_bootstrap_replicate(values, dims, ordinal, rng) for _ in range(reps)]
    )[1] * B / reps
    # one participant-bootstrap replicate = the loop again with the participants re-weighted
    weights = np.bincount(rng.integers(0, P, P), minlength=P).astype(float)
    naive_one_pboot = timed(naive_loop, data, sample, weights)[1] * scale

    def line(what: str, ours: tuple, naive_cpu: float, how: str, bar: float | None = None) -> None:
        wall, cpu = ours[0], ours[1]
        verdict = f" (bar: under {bar:g} s CPU: {'PASS' if cpu < bar else 'FAIL'})" if bar is not None else ""
        print(f"{what}: ours {wall:.2f} s wall, {cpu:.2f} s CPU{verdict} | naive {naive_cpu:,.1f} s CPU ({how}) "
              f"| {naive_cpu / cpu:,.0f}x less CPU")

    line("point estimates (floors, baselines, jackknife bias-corrected KL, normalised scores, worth-N, demographic "
         "gaps)", point, naive + naive_floors, f"per-question scipy loop timed on {m:,} questions, x{scale:.4g}; scipy "
         f"floors timed on {mf:,}, x{n / mf:.4g}", bar=4.0)
    line(f"default scoring (question bootstrap {B}, participant jackknife, worth-N, gap resampling {B})", default,
         naive + naive_floors + naive_one_pboot * min(P, 100) + naive_qboot,
         f"as above + one re-weighted loop per jackknife group + numpy question bootstrap timed on {reps} replicates, "
         f"x{B / reps:g}", bar=20.0)
    share = worth[1] / default[1]
    print(f"worth-N (KL floor curve at {13} sizes, survey noise, n per question): ours {worth[0]:.2f} s wall, "
          f"{worth[1]:.2f} s CPU = {share:.1%} of default scoring (bar: under 10 %: {'PASS' if share < 0.10 else 'FAIL'})")
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    print(f"# worth N {fmt(result['worth_n'])}, kl_mean {fmt(result['kl_mean'])} (bias-corrected "
          f"{fmt(result['kl_bc_mean'])} [{fmt(result['kl_participant_ci_low'])}, {fmt(result['kl_participant_ci_high'])}]), "
          f"floor {fmt(result['floor_kl_mean'])}, normalised KL {fmt(result['normalised_kl'])}; "
          f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
