"""Every figure of the shared figure module is drawn and measured: no text leaves the canvas,
no two texts overlap (matplotlib's own text extents), colour scales are shared, undefined
values are drawn as such. The PNGs are also written to tests/artifacts/figures/ to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from culturesim.simulator.analysis import figures

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "figures"
LONG = "SmolLM2-135M-Instruct · all · US en"
OTHER = "Llama-3.1-8B-Instruct · none · US en"


def _dimension_stats(n_questions: int, mean: float) -> dict:
    one = n_questions == 1
    return {"n_questions": n_questions, "kl_mean": mean, "kl_ci_low": None if one else mean * 0.6,
            "kl_ci_high": None if one else mean * 1.4, "js_mean": mean / 4, "js_ci_low": None if one else mean / 5,
            "js_ci_high": None if one else mean / 3}


def _figures():
    per_dim = {LONG: {"EVI": _dimension_stats(2, 0.74), "IDV": _dimension_stats(1, 2.38),
                      "UAI": _dimension_stats(4, 1.4), "USI": _dimension_stats(3, 1.0)},
               OTHER: {"EVI": _dimension_stats(3, 0.5), "IDV": _dimension_stats(2, 1.1), "USI": _dimension_stats(5, 0.7)}}
    # US and JP nearly on top of each other, the model far out at the edge (the picture).
    projection = {"points": {"US (human, WVS)": (0.37, 0.68), "JP (human, WVS)": (0.62, 0.63),
                             "CN (human, WVS)": (-0.1, 1.4), "EG (human, WVS)": (-3.0, -1.0), LONG: (2.1, -1.68),
                             OTHER: (2.05, -1.6)},
                  "explained_variance_ratio": [0.56, 0.27]}
    humans = [k for k in projection["points"] if "human" in k]
    bias = {"matched": {"USI": {"female": 0, "male": 0.5, "18-29": 0, "30-49": 0, "50+": 0.5}},
            "mismatched": {"LTO": {"female": 0, "male": 1, "18-29": 1, "30-49": 0, "50+": 0},
                           "USI": {"female": 0, "male": 1.5, "18-29": 0, "30-49": 0, "50+": 0.5}}}
    cell = lambda rate, decided: {"rate": rate, "decided": decided}  # noqa: E731
    radar_one = {LONG: {"IU": cell(0.87, 76), "QC": cell(0.26, 35), "RP": cell(0.0, 24), "CV": cell(1.0, 1),
                        "FF": cell(None, 0), "IR": cell(0.41, 34)}}
    radar_two = {**radar_one, OTHER: {d: cell(0.2, 10) for d in figures.INSENSITIVITY_DIMENSIONS}}
    return {
        "dimension_kl": figures.dimension_bars(per_dim, "kl"),
        "dimension_js_one_run": figures.dimension_bars({LONG: per_dim[LONG]}, "js"),
        "question_kl": figures.question_distribution({LONG: [0.1, 1.2, 2.5, 4.0], OTHER: [0.2, 0.3]},
                                                     {"survey's own noise": [0.01, 0.02, 0.015]}),
        "culture_map": figures.culture_map(projection, humans),
        "bias": figures.bias_heatmaps(bias, f"Preference bias: {LONG}"),
        "bias_empty": figures.bias_heatmaps({"matched": {}, "mismatched": {}}),
        "insensitivity_one": figures.insensitivity_radar(radar_one),
        "insensitivity_two": figures.insensitivity_radar(radar_two),
        "ablation": figures.ablation_bars({"none": 2.3, "prompt": 2.4, "config": 2.5, "memory": 2.6, "all": 2.6},
                                          {"none": 0.0, "prompt": 4.3, "config": 8.7, "memory": 13.0, "all": 13.0}),
    }


@pytest.fixture(scope="module")
def drawn():
    figs = _figures()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        fig.savefig(ARTIFACTS / f"{name}.png")
    yield figs
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


@pytest.mark.parametrize("name", list(_figures()))
def test_no_text_is_clipped_or_overlaps(drawn, name):
    assert figures.layout_problems(drawn[name]) == []


def test_layout_check_catches_clipping_and_overlap():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title far too long to fit on a figure this narrow, so it is clipped")
    ax.text(0.5, 0.5, "one", transform=ax.transAxes)
    ax.text(0.5, 0.5, "two", transform=ax.transAxes)
    problems = figures.layout_problems(fig)
    plt.close(fig)
    assert any("leaves the canvas" in p for p in problems)
    assert any("'one' overlaps 'two'" in p for p in problems)


def test_bias_panels_share_one_stated_colour_scale(drawn):
    fig = drawn["bias"]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    assert {im.get_clim() for im in images} == {(0.0, 1.5)}  # 0 to the largest count of either panel
    colour_bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("questions")]
    assert len(colour_bars) == 1 and "one scale for both panels" in colour_bars[0].get_ylabel()
    # Cell numbers are readable: large, and white on the darkest cells.
    cells = [t for ax in fig.axes for t in ax.texts if t.get_text() in {"0", "0.5", "1", "1.5"}]
    assert cells and min(t.get_fontsize() for t in cells) >= 9
    dark = [t for t in cells if t.get_text() == "1.5"]
    assert dark and all(t.get_color() == "white" for t in dark)


def test_radar_shows_undefined_as_undefined(drawn):
    ax = drawn["insensitivity_one"].axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[figures.INSENSITIVITY_DIMENSIONS.index("FF")] == "FF\nn/a"
    assert labels[figures.INSENSITIVITY_DIMENSIONS.index("CV")] == "CV\nn=1"
    line = ax.get_lines()[0]
    thetas = np.round(np.asarray(line.get_xdata()), 6).tolist()
    ff_angle = round(2 * np.pi * figures.INSENSITIVITY_DIMENSIONS.index("FF") / 6, 6)
    assert ff_angle not in thetas and np.isfinite(line.get_ydata()).all()  # joined, not broken, not zero
    # The radial tick labels sit between two dimensions' lines, on none of them.
    assert ax.get_rlabel_position() % 60 != 0


def test_one_question_dimension_is_marked(drawn):
    ax = drawn["dimension_js_one_run"].axes[0]
    assert "IDV\nn=1" in [t.get_text() for t in ax.get_xticklabels()]
    assert any(p.get_hatch() == "///" for p in ax.patches)
