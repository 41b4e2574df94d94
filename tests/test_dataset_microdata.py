"""GSS rows from the year-file microdata: weighted shares, breakdowns that mix back, code checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pyreadr
import pytest

from culturesim.dataset_builder import microdata
from culturesim.dataset_builder.build import gss_rows
from culturesim.dataset_builder.review import load_review, load_tags
from culturesim.simulator.questions import config_files

WEIGHTS = {"weight": "wtssps", "weight_nea": "wtssps_nea", "weight_next": "wtssps_next"}


@pytest.fixture(scope="module")
def frames(sources):
    out = {}
    for year in (2022, 2024):
        df = pyreadr.read_r(str(sources / "gss" / f"gss{year}.rds"))[None]
        out[year] = df[df.wtssps.notna()]
    return out


@pytest.fixture(scope="module")
def gss_rows_built(dataset_dir):
    rows = []
    for config in ("US", "US_2024"):
        rows += [r for r in pq.read_table(config_files(dataset_dir)[config]).to_pylist() if r["source"] == "GSS"]
    return rows


def test_cross_section_is_the_weighted_rows(frames):
    assert len(frames[2022]) == 3544 and len(frames[2024]) == 3309


def test_every_distribution_is_the_weighted_share_recomputed_independently(frames, gss_rows_built):
    for r in gss_rows_built:
        df = frames[r["source_year"]]
        col = df[r["source_variable"]]
        shift = next((int(x.split("by ")[-1].split(",")[0]) for x in r["repairs"] if x.startswith("code_shift")), 0)
        col = col + shift
        answered = df[col.isin(r["option_codes"])]
        # The cross-section weight, or the sub-sample's own for an item asked only there.
        weight = answered[WEIGHTS[r["respondents_weight"]]]
        weights = np.array([weight[col[answered.index] == c].sum() for c in r["option_codes"]])
        assert r["human_n"] == len(answered), r["id"]
        np.testing.assert_allclose(r["human_distribution"], weights / weights.sum(), atol=1e-12, err_msg=r["id"])


def test_groups_mix_back_to_the_overall_distribution(frames, gss_rows_built):
    """The bar: for every row the groups' weighted mixture equals the overall distribution within 1e-6
    (over respondents whose sex or age is known) -- checked against the microdata, not the builder's numbers."""
    complete = 0
    for r in gss_rows_built:
        df = frames[r["source_year"]]
        col = df[r["source_variable"]]
        shift = next((int(x.split("by ")[-1].split(",")[0]) for x in r["repairs"] if x.startswith("code_shift")), 0)
        answered = df[(col + shift).isin(r["option_codes"])]
        codes = (answered[r["source_variable"]] + shift).to_numpy()
        families = {"sex": answered.sex.isin([1, 2]), "age": answered.age.notna() & (answered.age >= 18)}
        groups = {(g["group_type"], g["group"]): g for g in r["demographics"]}
        full = 0
        for family, known in families.items():
            members = [g for (t, _), g in groups.items() if t == family]
            if len(members) != (2 if family == "sex" else 3):
                # A group under the minimum n is left out on its own, with the reason documented.
                assert all(g["n"] >= microdata.MIN_GROUP_N for g in members)
                continue
            full += 1
            w = answered[WEIGHTS[r["respondents_weight"]]][known].to_numpy()
            c = codes[known.to_numpy()]
            truth = np.array([w[c == k].sum() for k in r["option_codes"]]) / w.sum()
            mixture = sum(g["weight_share"] * np.array(g["distribution"]) for g in members)
            assert np.max(np.abs(mixture - truth)) < 1e-6, (r["id"], family)
            assert sum(g["n"] for g in members) == int(known.sum()), (r["id"], family)
        complete += full == 2
    assert complete >= 0.95 * len(gss_rows_built)


def test_fefam_2022_weighted_spot_check(gss_rows_built):
    fefam = next(r for r in gss_rows_built if r["id"] == "gss2022.fefam.en")
    assert [round(x, 4) for x in fefam["human_distribution"]] == [0.0615, 0.1892, 0.4371, 0.3121]
    assert fefam["human_n"] == 2348
    # Non-substantive share from the documentation's counts: 25 don't know + 1 no answer + 2 skipped.
    assert fefam["human_nonsubstantive_share"] == pytest.approx(28 / (2348 + 28))


def test_2024_rows_share_parallel_ids_with_2022(gss_rows_built):
    by_year = {}
    for r in gss_rows_built:
        by_year.setdefault(r["source_year"], {})[r["parallel_id"]] = r
    shared = set(by_year[2022]) & set(by_year[2024])
    assert len(shared) >= 100
    assert by_year[2024]["gss.fefam"]["id"] == "gss2024.fefam.en"
    assert by_year[2024]["gss.fefam"]["human_n"] == 167 + 492 + 899 + 604


def test_shifted_and_unknown_codes_are_caught(frames, sources):
    df = frames[2022]
    record = next(json.loads(line) for line in open(sources / "gss" / "gss_variables_2018_2024.jsonl")
                  if json.loads(line)["variable"] == "attend")
    codes = [c for c, _ in record["values"]]
    counts = [record["counts_by_year"]["2022"][lbl] for _, lbl in record["values"]]
    values = df.attend.dropna().to_numpy()
    assert microdata.check_codes(values, codes, counts).action == "ok"
    shifted = microdata.check_codes(values + 1, codes, counts)  # the 2020 panel's coding: 1-9 for 0-8
    assert shifted.action == "repaired" and shifted.shift == -1
    unknown = values.copy()
    unknown[:50] = 42
    assert microdata.check_codes(unknown, codes, counts).action == "excluded"


def test_the_build_repairs_an_injected_shifted_column(frames, sources, tmp_path):
    """A year file whose `fepresch` column is shifted by one code (as the 2020 panel's `attend` was):
    the build shifts it back, says so, and the distribution is the unshifted one; a column with an
    undocumented code is excluded."""
    src = tmp_path / "sources"
    (src / "gss").mkdir(parents=True)
    shutil.copy(sources / "gss" / "gss_variables_2018_2024.jsonl", src / "gss")
    shutil.copy(sources / "gss" / "gss2024.rds", src / "gss")
    df = pyreadr.read_r(str(sources / "gss" / "gss2022.rds"))[None]
    # The columns the build reads: ids, weights, breakdowns, the random-design cells and the items.
    df = df[[c for c in df.columns if c in ("id", "sex", "age", "ballot", "form", "issp", "mode")
             or c.startswith("wtss") or c in ("fepresch", "fefam", "fechld")]]
    df["fepresch"] = df["fepresch"] + 1
    df.loc[df.index[df.fechld.notna()][:40], "fechld"] = 9
    pyreadr.write_rds(str(src / "gss" / "gss2022.rds"), df)
    report = {"excluded": [], "repaired": []}
    rows = {r["source_variable"]: r for r in gss_rows(src, load_review(), load_tags(), report, "2022")}
    assert set(rows) == {"fepresch", "fefam"}
    repaired = {e["item"]: e for e in report["repaired"] if e["rule"] == "code_shift"}
    assert "gss2022.fepresch" in repaired
    excluded = {e["item"]: e for e in report["excluded"] if e["rule"] == "code_mismatch"}
    assert "gss2022.fechld" in excluded and "[9]" in excluded["gss2022.fechld"]["reason"]
    real = frames[2022]
    answered = real[real.fepresch.isin(range(1, 5))]
    truth = np.array([answered.wtssps[answered.fepresch == c].sum() for c in range(1, 5)])
    np.testing.assert_allclose(rows["fepresch"]["human_distribution"], truth / truth.sum(), atol=1e-12)
