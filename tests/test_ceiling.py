"""The human split-half ceiling: stored in the dataset, read by the analysis without ../shared."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.stats import entropy

from culturesim.metrics.cultural_alignment import compute_alignment
from culturesim.simulator.analysis.ceiling import human_ceiling
from culturesim.simulator.questions import load_questions

REPO = Path(__file__).resolve().parent.parent


def _smoothed_kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-3) -> float:
    p, q = (p + eps) / (1 + len(p) * eps), (q + eps) / (1 + len(q) * eps)
    return float(entropy(p, q))


def test_every_gss_row_has_a_ceiling_and_wvs_none():
    for culture in ("US", "US_2024"):
        for q in load_questions(culture):
            if q.source == "GSS":
                c = q.human_ceiling
                assert c is not None and c["kl"] > 0 and c["js"] > 0 and c["kl_sd"] >= 0, q.id
                assert (c["wasserstein"] is not None) == q.ordinal, q.id
            else:
                assert q.human_ceiling is None, q.id


def test_stored_ceiling_matches_an_independent_split_half(sources):
    """Re-derive fefam's ceiling from the year file with our own splits and scipy's KL."""
    import pyreadr

    q = next(q for q in load_questions("US") if q.source_variable == "fefam")
    df = pyreadr.read_r(str(sources / "gss" / "gss2022.rds"))[None]
    df = df[df.wtssps.notna() & df.fefam.isin([1, 2, 3, 4])]
    codes, w = df.fefam.to_numpy().astype(int), df.wtssps.to_numpy()
    rng = np.random.default_rng(12345)
    kls = []
    for _ in range(400):
        a = np.zeros(len(codes), dtype=bool)
        a[rng.choice(len(codes), len(codes) // 2, replace=False)] = True
        pa = np.array([w[a & (codes == c)].sum() for c in (1, 2, 3, 4)])
        pb = np.array([w[~a & (codes == c)].sum() for c in (1, 2, 3, 4)])
        kls.append(_smoothed_kl(pa / pa.sum(), pb / pb.sum()))
    kls = np.array(kls)
    stored = q.human_ceiling
    # Two Monte Carlo estimates of the same expectation (100 and 400 splits): within 4 standard errors.
    se = kls.std(ddof=1) * np.sqrt(1 / 100 + 1 / 400)
    assert abs(stored["kl"] - kls.mean()) < 4 * se
    assert 0.5 < stored["kl_sd"] / kls.std(ddof=1) < 1.5


def test_ceiling_is_below_a_random_model():
    questions = [q for q in load_questions("US") if q.source == "GSS"][:60]
    ceiling = human_ceiling(questions)
    assert ceiling["n_questions"] == len(questions)
    rng = np.random.default_rng(0)
    random_model = [rng.dirichlet(np.ones(q.num_options)).tolist() for q in questions]
    scores = compute_alignment(probabilities=random_model, references=[list(q.human_distribution) for q in questions],
                               bootstrap_samples=0)
    assert ceiling["kl_mean"] < scores["kl_mean"] / 5
    assert ceiling["js_mean"] < scores["js_mean"]
    assert ceiling["kl_mean"] == np.mean([q.human_ceiling["kl"] for q in questions])


def test_ceiling_needs_no_shared_sources(tmp_path):
    """A fresh clone has no ../shared: the ceiling comes from the committed dataset alone."""
    clone = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("simulator", "metrics", "dataset_builder"):
        shutil.copytree(REPO / part, clone / "culturesim" / part, ignore=ignore)
    assert not (clone.parent / "shared").exists()
    code = ("import sys\n"  # the clone's copy, not the installed (editable) culturesim
            "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n"
            "from culturesim.simulator.questions import load_questions\n"
            "from culturesim.simulator.analysis.ceiling import human_ceiling\n"
            "assert load_questions.__module__ and sys.modules['culturesim.simulator.questions'].__file__.startswith(sys.argv[1])\n"
            "c = human_ceiling(load_questions('US'))\nprint(c['n_questions'], round(c['kl_mean'], 6))")
    proc = subprocess.run([sys.executable, "-c", code, str(clone)], cwd=clone, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(clone), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    n, kl = proc.stdout.split()
    gss = [q for q in load_questions("US") if q.source == "GSS"]
    assert int(n) == len(gss)
    assert abs(float(kl) - np.mean([q.human_ceiling["kl"] for q in gss])) < 1e-6
