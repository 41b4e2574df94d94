"""The respondents configs: the same people, answers and weights as the item rows.

Golden values come straight from the year files with pandas (never from the builder's numbers):
the weighted marginal of every item column is the item row's distribution, each answer is the
year file's code placed in the row's options, and the weights, sex and age groups are the year
file's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadr
import pytest

from culturesim.dataset_builder import microdata, respondents
from culturesim.simulator.questions import config_files

YEAR_WEIGHTS = {"weight": "wtssps", "weight_nea": "wtssps_nea", "weight_next": "wtssps_next"}


@pytest.fixture(scope="module")
def frames(sources):
    out = {}
    for year in (2022, 2024):
        df = pyreadr.read_r(str(sources / "gss" / f"gss{year}.rds"))[None]
        out[year] = df[df.wtssps.notna()].reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def built(dataset_dir):
    """{config: (respondents DataFrame, the config's GSS item rows by id)}."""
    files = respondents.respondents_files(dataset_dir)
    out = {}
    for config, year in (("US", 2022), ("US_2024", 2024)):
        rows = [r for r in pq.read_table(config_files(dataset_dir)[config]).to_pylist() if r["source"] == "GSS"]
        out[config] = (pd.read_parquet(files[f"{config}_respondents"]), {r["id"]: r for r in rows}, year)
    return out


def _shift(row):
    return next((int(x.split("by ")[-1].split(",")[0]) for x in row["repairs"] if x.startswith("code_shift")), 0)


def test_item_columns_are_the_scored_gss_items(built):
    for config, (people, items, _) in built.items():
        fixed = ["respondent_id", "weight"] + [w for w in ("weight_nea", "weight_next") if w in people] + ["sex", "age_group"]
        assert list(people.columns[: len(fixed)]) == fixed, config
        assert list(people.columns[len(fixed):]) == sorted(items), config
        assert people.respondent_id.is_unique


def test_weighted_marginals_equal_the_item_distributions(built):
    for config, (people, items, _) in built.items():
        for item_id, row in items.items():
            answer = people[item_id].dropna()
            weight = people[row["respondents_weight"]][answer.index]
            assert weight.notna().all(), item_id
            shares = weight.groupby(answer).sum().reindex(range(len(row["options"])), fill_value=0.0)
            np.testing.assert_allclose(shares / shares.sum(), row["human_distribution"], atol=1e-9, rtol=0,
                                       err_msg=item_id)
            assert len(answer) == row["human_n"], item_id


def test_people_and_answers_are_the_year_files(built, frames):
    for config, (people, items, year) in built.items():
        df = frames[year]
        assert people.respondent_id.tolist() == [f"gss{year}.{int(i)}" for i in df.id]
        for name in ("weight", "weight_nea", "weight_next"):
            if name in people:
                np.testing.assert_array_equal(people[name].to_numpy(), df[YEAR_WEIGHTS[name]].to_numpy())
        sex = df.sex.map({1.0: "male", 2.0: "female"})
        assert people.sex.fillna("-").tolist() == sex.fillna("-").tolist()
        age = pd.cut(df.age, [17, 29, 49, 200], labels=["18-29", "30-49", "50+"]).astype(object)
        assert people.age_group.fillna("-").tolist() == age.fillna("-").tolist()
        for item_id, row in items.items():
            codes = df[row["source_variable"]] + _shift(row)
            expected = codes.map({c: i for i, c in enumerate(row["option_codes"])})
            got = people[item_id]
            assert (got.isna() == expected.isna()).all(), item_id
            assert (got.dropna().astype(int) == expected.dropna().astype(int)).all(), item_id


def test_subsample_items_use_their_subsample_weight(built, frames):
    """An item whose every respondent lies in the NEA or the GSS Next sub-sample of 2022 was asked
    only there: its row uses that sub-sample's weight (the smaller sub-sample if in both); every
    other item the cross-section weight. Decided here from the year file's columns alone."""
    _, items, _ = built["US"]
    df = frames[2022]
    sizes = {"weight_nea": int(df.wtssps_nea.notna().sum()), "weight_next": int(df.wtssps_next.notna().sum())}
    subsample_rows = []
    for row in items.values():
        asked = (df[row["source_variable"]] + _shift(row)).isin(row["option_codes"])
        inside = [w for w in sizes if (asked <= df[YEAR_WEIGHTS[w]].notna()).all()]
        expected = min(inside, key=sizes.get) if inside else "weight"
        assert row["respondents_weight"] == expected, row["id"]
        if expected != "weight":
            subsample_rows.append(row)
    assert subsample_rows  # the GSS Next items (vaxsafe, scientgo, ...) in the build of this writing
    for row in subsample_rows:
        answered = df[df[row["source_variable"]].isin(row["option_codes"])]
        for weight, equal in ((YEAR_WEIGHTS[row["respondents_weight"]], True), ("wtssps", False)):
            w = answered.groupby(row["source_variable"])[weight].sum().reindex(row["option_codes"], fill_value=0)
            assert np.allclose(w / w.sum(), row["human_distribution"], atol=1e-9) is equal, (row["id"], weight)


def test_design_effect_is_kish_from_the_year_file(built, frames):
    medians = {}
    for config, (_, items, year) in built.items():
        df, deffs = frames[year], []
        for row in items.values():
            answered = (df[row["source_variable"]] + _shift(row)).isin(row["option_codes"])
            w = df[YEAR_WEIGHTS[row["respondents_weight"]]][answered].to_numpy()
            deff = len(w) * (w ** 2).sum() / w.sum() ** 2
            assert row["design_effect"] == pytest.approx(deff, rel=1e-10), row["id"]
            assert row["human_n_effective"] == pytest.approx(len(w) / deff, rel=1e-10), row["id"]
            deffs.append(deff)
        medians[year] = float(np.median(deffs))
    # The issue measured 2.59 (2022) and 1.96 (2024) from the weights alone.
    assert 2.3 < medians[2022] < 2.9 and 1.8 < medians[2024] < 2.1, medians


def test_wvs_rows_have_no_design_effect(dataset_dir):
    rows = pq.read_table(config_files(dataset_dir)["CN"]).to_pylist()
    assert rows and all(r["design_effect"] is None and r["human_n_effective"] is None
                        and r["respondents_weight"] is None for r in rows)


def test_load_dataset_reads_the_respondents_configs(dataset_dir, tmp_path):
    from datasets import load_dataset

    people = load_dataset(str(dataset_dir), "US_2024_respondents", split="test", cache_dir=str(tmp_path))
    assert len(people) == 3309 and people.features["gss2024.fefam.en"].dtype == "int8"


def test_a_marginal_that_disagrees_stops_the_build(frames):
    df = frames[2024]
    panel = respondents.Panel.from_frame(df, 2024)
    answered = df.fefam.isin([1, 2, 3, 4]).to_numpy()
    index = np.where(answered, df.fefam.fillna(0).to_numpy() - 1, -1).astype(np.int8)
    w = df.wtssps[answered].groupby(df.fefam[answered]).sum()
    row = {"id": "gss2024.fefam.en", "options": ["a", "b", "c", "d"], "human_n": int(answered.sum()),
           "human_distribution": (w / w.sum()).tolist()}
    respondents.check(row, respondents.ItemAnswers(panel, index, "weight"))
    bad = dict(row, human_distribution=[*row["human_distribution"][:2], row["human_distribution"][2] + 1e-6,
                                        row["human_distribution"][3] - 1e-6])
    with pytest.raises(respondents.RespondentsError, match="gss2024.fefam.en.*differs"):
        respondents.check(bad, respondents.ItemAnswers(panel, index, "weight"))


def test_design_effect_and_item_weight_rules(frames):
    assert microdata.design_effect(np.ones(10)) == pytest.approx(1.0)
    assert microdata.design_effect(np.array([1.0, 3.0])) == pytest.approx(2 * 10 / 16)
    with pytest.raises(microdata.MicrodataError, match="positive finite"):
        microdata.design_effect(np.array([1.0, np.nan]))
    df = frames[2022]
    nea, nxt = df.wtssps_nea.notna().to_numpy(), df.wtssps_next.notna().to_numpy()
    assert microdata.item_weight(df, nea & ~nxt, "x") == "weight_nea"
    assert microdata.item_weight(df, nxt & ~nea, "x") == "weight_next"
    assert microdata.item_weight(df, nea | nxt, "x") == "weight"
    # Inside both sub-samples: the smaller one (NEA, 843 respondents, against Next's 1,235).
    assert microdata.item_weight(df, nea & nxt, "x") == "weight_nea"
    assert microdata.item_weight(frames[2024], np.ones(len(frames[2024]), bool), "x") == "weight"


def test_two_files_for_one_config_are_refused_in_data_and_respondents(tmp_path):
    """A stale file beside a rebuilt one is never read silently, item rows or respondents alike."""
    for folder, name in (("data", "US"), ("respondents", "US_respondents")):
        (tmp_path / folder).mkdir()
        for digest in ("a" * 12, "b" * 12):
            (tmp_path / folder / f"{name}-{digest}.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="holds two files for config 'US'"):
        config_files(tmp_path)
    with pytest.raises(respondents.RespondentsError, match="holds two files for config 'US_respondents'"):
        respondents.respondents_files(tmp_path)
