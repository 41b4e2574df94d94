"""Speed of structure fidelity against a naive pairwise loop.

Structure fidelity (metrics/cultural_alignment/structure.py) correlates every pair of items on
both sides and repeats that for each participant resample and each yardstick sample. The bar
from issue 24: 500 participants x 300 items under 10 s of CPU time (time.process_time, so that
other jobs on a shared machine matter less), with the default 100 resamples and 100 yardstick
samples and the sex x age spread.

The data are synthetic so the benchmark runs without the dataset: 3,544 respondents (the GSS
2022 cross-section's size) with lognormal weights, each item asked of everyone or of two ballots
out of three (as in the GSS), answers cut from a two-factor latent model into 2..11 ordered
options (mean about 3.7, as the dataset's ordinal items); 500 simulated participants answer every
item from the same model. The naive way is what one would write per pair: mask the complete
cases, weighted mid-ranks of each item, weighted Pearson; it is timed on a random sample of
pairs and extrapolated to all pairs and to every resample and yardstick sample (each a full set
of pairs again), which each line says.

    python benchmarks/bench_structure.py                      # 500 x 300, 100 + 100 replicates
    python benchmarks/bench_structure.py --participants 100 --items 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from culturesim.metrics.cultural_alignment.structure import (  # noqa: E402
    STRUCTURE_REPLICATES,
    spearman_matrix,
    structure_fidelity,
)

RESPONDENTS = 3544
SEXES = ("female", "male")
AGES = ("18-29", "30-49", "50+")


def make_inputs(participants: int, items: int, seed: int) -> dict:
    """Respondents and participants from one latent model (see the module docstring)."""
    rng = np.random.default_rng(seed)
    k = np.clip(rng.poisson(2.0, items) + 2, 2, 11)
    loadings = rng.normal(0.0, 0.35, (items, 2))
    cuts = [np.sort(rng.normal(0.0, 1.0, kk - 1)) for kk in k]

    def people(n: int) -> tuple[np.ndarray, list[str]]:
        sex, age = rng.integers(0, 2, n), rng.integers(0, 3, n)
        groups = [f"{SEXES[s]}/{AGES[a]}" for s, a in zip(sex, age)]
        shift = (0.1 * sex + 0.05 * age)[:, None] * np.sign(loadings[:, :1].T)  # groups differ a little
        latent = rng.normal(size=(n, 2)) @ loadings.T + rng.normal(size=(n, items)) + shift
        answers = np.stack([np.searchsorted(cuts[i], latent[:, i]) for i in range(items)], axis=1)
        return answers.astype(np.int64), groups

    human, human_groups = people(RESPONDENTS)
    ballot = rng.integers(0, 3, RESPONDENTS)
    asked_on = rng.integers(0, 4, items)  # 3: everyone; b: every ballot but b
    human[(asked_on[None, :] < 3) & (ballot[:, None] == asked_on[None, :])] = -1
    simulated, simulated_groups = people(participants)
    return {"simulated": simulated, "human": human, "num_options": k.tolist(),
            "human_weights": rng.lognormal(0.0, 0.6, RESPONDENTS), "simulated_groups": simulated_groups,
            "human_groups": human_groups}


def naive_pair(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """Weighted Spearman of one pair, the plain way."""
    m = (a >= 0) & (b >= 0)
    a, b, w = a[m], b[m], w[m]

    def ranks(v: np.ndarray) -> np.ndarray:
        out = np.empty(len(v))
        for c in np.unique(v):
            out[v == c] = w[v < c].sum() + w[v == c].sum() / 2.0
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = np.average(ra, weights=w), np.average(rb, weights=w)
    return float(np.sum(w * (ra - ma) * (rb - mb)) / np.sqrt(np.sum(w * (ra - ma) ** 2) * np.sum(w * (rb - mb) ** 2)))


def timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--replicates", type=int, default=STRUCTURE_REPLICATES)
    parser.add_argument("--naive-pairs", type=int, default=300, help="pairs the naive loop is timed on (per side)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = make_inputs(args.participants, args.items, args.seed)
    P, m, R = args.participants, args.items, args.replicates
    pairs = m * (m - 1) // 2
    print(f"# {P} participants x {m} items, {RESPONDENTS:,} respondents, {R} resamples + {R} yardstick samples; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    rng = np.random.default_rng(args.seed + 1)
    sample = rng.choice(pairs, min(args.naive_pairs, pairs), replace=False)
    iu = np.triu_indices(m, 1)
    ii, jj = iu[0][sample], iu[1][sample]
    ones = np.ones(P)
    naive_sim = timed(lambda: [naive_pair(data["simulated"][:, i], data["simulated"][:, j], ones) for i, j in zip(ii, jj)])[1]
    naive_hum = timed(lambda: [naive_pair(data["human"][:, i], data["human"][:, j], data["human_weights"])
                               for i, j in zip(ii, jj)])[1]
    scale = pairs / len(sample)
    naive_point = (naive_sim + naive_hum) * scale
    naive_all = naive_point + 2 * R * naive_sim * scale  # every replicate is P people, like the run

    ours_matrix = timed(spearman_matrix, data["simulated"], data["num_options"])
    point = timed(structure_fidelity, **data, replicates=0)
    full = timed(structure_fidelity, **data, replicates=R)
    result = full[2]

    def line(what: str, ours: tuple, naive_cpu: float, how: str, bar: bool = False) -> None:
        verdict = f" (bar: under 10 s CPU: {'PASS' if ours[1] < 10 else 'FAIL'})" if bar else ""
        print(f"{what}: ours {ours[0]:.2f} s wall, {ours[1]:.2f} s CPU{verdict} | naive {naive_cpu:,.1f} s CPU ({how}) "
              f"| {naive_cpu / max(ours[1], 1e-9):,.0f}x less CPU")

    line(f"one correlation matrix ({P} participants, {pairs:,} pairs)", ours_matrix, naive_sim * scale,
         f"per-pair loop timed on {len(sample)} pairs, x{scale:.4g}")
    line("point estimates (both matrices, constraint, PC1 share, distance, group spread)", point, naive_point,
         f"per-pair loop on both sides timed on {len(sample)} pairs each, x{scale:.4g}")
    line(f"structure fidelity with {R} resamples + {R} yardstick samples", full, naive_all,
         f"as above + one loop over {P} people per replicate, x{2 * R}", bar=True)
    print(f"# constraint human {result['constraint_human']:.3f}, simulated {result['constraint_simulated']:.3f} "
          f"[{result['constraint_simulated_ci_low']:.3f}, {result['constraint_simulated_ci_high']:.3f}], yardstick "
          f"{result['constraint_yardstick']:.3f} [{result['constraint_yardstick_ci_low']:.3f}, "
          f"{result['constraint_yardstick_ci_high']:.3f}]; {result['n_pairs']:,} pairs; load average after "
          f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
