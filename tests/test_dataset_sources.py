"""The adapters on the real raw sources: hand-checked rows and every defect kind caught."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from culturesim.dataset_builder import gss, wvs
from culturesim.dataset_builder import microdata
from culturesim.dataset_builder.review import is_numeric_scale, is_ordinal


def test_gss_fefam_counts_hand_checked(sources):
    variables = {v.variable: v for v in gss.read_variables(sources / "gss" / "gss_variables_2018_2024.jsonl")}
    fefam = variables["fefam"]
    assert fefam.options == ["strongly agree", "agree", "disagree", "strongly disagree"]
    assert fefam.counts == [136, 437, 1000, 775]
    assert fefam.n == 2348


def test_gss_unlabelled_scale_points_are_restored(sources):
    variables = {v.variable: v for v in gss.read_variables(sources / "gss" / "gss_variables_2018_2024.jsonl")}
    helppoor = variables["helppoor"]
    # The documentation labels only codes 1, 3 and 5; the tabulation keys 2 and 4 by number.
    assert helppoor.codes == [1, 2, 3, 4, 5]
    assert helppoor.options == ["government should help", "2", "agree with both", "4", "people should care for themselves"]
    assert helppoor.counts == [652, 270, 922, 236, 242]


def test_gss_phone_only_options_are_removed(sources):
    kept, _ = gss.candidates(sources / "gss" / "gss_variables_2018_2024.jsonl", repairs := {})
    premarsx = kept["premarsx"]
    assert "other" not in premarsx.options and len(premarsx.options) == 4
    assert "premarsx" in repairs


def test_gss_non_substantive_labels_are_dropped(sources):
    path = sources / "gss" / "gss_variables_2018_2024.jsonl"
    raw = next(json.loads(line) for line in open(path) if json.loads(line)["variable"] == "fefam")
    counts = raw["counts_by_year"]["2022"]
    assert counts["Total"] > 2348  # iap / don't know / no answer are in the total ...
    variables = {v.variable: v for v in gss.read_variables(path)}
    assert sum(variables["fefam"].counts) == 2348  # ... but not in the distribution


def test_gss_rules(sources):
    kept, excluded = gss.candidates(sources / "gss" / "gss_variables_2018_2024.jsonl")
    assert "fefam" in kept
    assert excluded["hrs2"][0] == "too_many_options"  # open numeric item: every hour count is a point
    # Mode variants: the base form stays, the web / grid / no-volunteer versions go.
    assert "abany" in kept and excluded["abanyg"][0] == "mode_variant"
    assert "fair" in kept and excluded["fairnv"][0] == "mode_variant"
    # Wording versions are distinct questions asked of other respondents ("welfare" vs "assistance to the poor").
    assert "natfare" in kept and "natfarey" in kept
    rules = {rule for rule, _ in excluded.values()}
    assert {"too_few_respondents", "mode_variant", "excluded_family", "too_many_options"} <= rules
    for var, (rule, detail) in excluded.items():
        if rule == "mode_variant":
            kept_name = detail.rsplit("kept ", 1)[1].strip("')")
            assert kept_name in kept, (var, detail)
    assert all(v.n >= gss.MIN_RESPONDENTS for v in kept.values())


def test_gss_demographics_match_an_independent_weighted_count(sources):
    import pyreadr

    frame = microdata.read_year_file(sources / "gss" / "gss2022.rds")
    assert len(frame) == 3544  # the cross-section: rows with a wtssps weight
    answered = frame.fefam.isin([1, 2, 3, 4]).to_numpy()
    codes, weights = frame.fefam.to_numpy()[answered].astype(int), frame.wtssps.to_numpy()[answered]
    masks = [(t, g, m[answered]) for t, g, m in microdata.group_masks(frame)]
    groups = {g["group"]: g for g in microdata.demographics(codes, weights, masks, [1, 2, 3, 4], 2022)}
    assert set(groups) == {"female", "male", "18-29", "30-49", "50+"}
    df = pyreadr.read_r(str(sources / "gss" / "gss2022.rds"))[None]
    df = df[df.wtssps.notna() & df.fefam.isin([1, 2, 3, 4]) & (df.sex == 2)]
    expected = np.array([df.wtssps[df.fefam == c].sum() for c in (1, 2, 3, 4)]) / df.wtssps.sum()
    assert groups["female"]["year"] == 2022
    assert groups["female"]["n"] == len(df)
    np.testing.assert_allclose(groups["female"]["distribution"], expected, atol=1e-12)


def test_ordinal_and_scale_detection():
    assert is_ordinal(["strongly agree", "agree", "disagree", "strongly disagree"])
    assert is_ordinal(["too little", "about right", "too much"])
    assert not is_ordinal(["protestant", "catholic", "jewish", "none", "other"])
    assert is_numeric_scale(["strongly agree", "2", "3", "4", "5", "6", "strongly disagree"])
    assert not is_numeric_scale(["yes", "no"])


@pytest.fixture(scope="module")
def wvs_sources(sources):
    from culturesim.dataset_builder.review import WVS_ENGLISH_FILE

    return wvs.WvsSources.read(sources / "wvs7", WVS_ENGLISH_FILE)


@pytest.fixture(scope="module")
def wvs_result(wvs_sources):
    return wvs.adapt_all(wvs_sources)


def _issues(result, kind):
    return {i.item: i for i in result[1] if i.kind == kind}


def test_wvs_japanese_items_in_us_file_are_caught(wvs_result):
    wrong = _issues(wvs_result, "wrong_language")
    us_wrong = {k for k in wrong if k.startswith("wvs7.US.")}
    assert len(us_wrong) == 16
    assert all(wrong[k].action == "excluded" for k in us_wrong)
    items = {(i.country, i.qid) for i in wvs_result[0]}
    assert ("US", "Q182") not in items
    # The JP original is not taken for a copy: it is judged on its own (and goes as a collapsed scale).
    assert {i.kind for i in wvs_result[1] if i.item == "wvs7.JP.Q177"} == {"collapsed_scale"}


def test_wvs_collapsed_scale(wvs_result):
    collapsed = _issues(wvs_result, "collapsed_scale")
    assert collapsed["wvs7.US.Q164"].action == "excluded"  # only codes 1 and 10, 0.55 of the sample
    # A two-way split carrying the sample, cut at a point the source does not document: excluded too
    # (tests/test_dataset_wvs.py checks every collapsed scale).
    assert collapsed["wvs7.CN.Q164"].action == "excluded"
    assert ("CN", "Q164") not in {(i.country, i.qid) for i in wvs_result[0]}


def test_wvs_option_count_mismatch(wvs_result):
    mismatch = _issues(wvs_result, "option_count_mismatch")
    assert mismatch["wvs7.US.Q171"].action == "excluded"  # 7 options, 4 codes
    assert mismatch["wvs7.US.Q45"].action == "repaired"  # zero-share code 4 with no codebook label
    q45 = next(i for i in wvs_result[0] if i.country == "US" and i.qid == "Q45")
    assert q45.codes == [1, 2, 3] and abs(sum(q45.distribution) - 1) < 1e-12


def test_wvs_sums_and_topics(wvs_result):
    sums = _issues(wvs_result, "bad_sum")
    assert sums["wvs7.US.Q121"].action == "excluded"  # shares sum to 1.24
    assert all(abs(sum(i.distribution) - 1) < 1e-9 for i in wvs_result[0])
    cn_q1 = next(i for i in wvs_result[0] if i.country == "CN" and i.qid == "Q1")
    # Hand check: source shares 0.86, 0.13, 0.0, 0.0 renormalised by 0.99.
    np.testing.assert_allclose(cn_q1.distribution, [0.86 / 0.99, 0.13 / 0.99, 0, 0])
    assert cn_q1.category == "Social Values, Norms, Stereotypes"
    assert "wvs7.CN.Q1" in _issues(wvs_result, "topic_label")


def _inject(wvs_sources, country, record):
    src = copy.deepcopy(wvs_sources)
    src.aggregates[country] = [r for r in src.aggregates[country] if r["id"] != record["id"]] + [record]
    return wvs.adapt_all(src)


def test_injected_defects_never_pass_silently(wvs_sources):
    base = copy.deepcopy(next(r for r in wvs_sources.aggregates["US"] if r["id"] == "Q1"))
    cases = {
        "wrong_language": {**base, "question_text": "家族はあなたの人生でどのくらい重要ですか？",
                           "options": ["1. 非常に重要", "2. やや重要", "3. あまり重要でない", "4. 全く重要でない"],
                           "distribution": {"1": 0.5, "2": 0.3, "3": 0.1, "4": 0.1}},
        "option_count_mismatch": {**base, "distribution": {"1": 0.5, "2": 0.3, "3": 0.2}, "options": base["options"][:2]},
        "bad_sum": {**base, "distribution": {"1": 0.9, "2": 0.3, "3": 0.1, "4": 0.1}},
    }
    for kind, record in cases.items():
        items, issues = _inject(wvs_sources, "US", record)
        found = [i for i in issues if i.item == "wvs7.US.Q1" and i.kind == kind]
        assert found, (kind, [i for i in issues if i.item == "wvs7.US.Q1"])
        if kind == "wrong_language":
            # Not a copy of another country's record: repaired from the English wording by question id.
            assert found[0].action == "repaired"
            item = next(i for i in items if (i.country, i.qid) == ("US", "Q1"))
            assert wvs.detect_script_language(item.question + " ".join(item.options)) == "en"
            assert item.options[0] == "Very important"
        else:
            assert found[0].action == "excluded"
            assert ("US", "Q1") not in {(i.country, i.qid) for i in items}


def test_language_detection():
    assert wvs.detect_script_language("How important is family?") == "en"
    assert wvs.detect_script_language("在您的生活中，家庭有多重要？") == "zh"
    assert wvs.detect_script_language("家族はあなたの人生でどのくらい重要ですか") == "ja"
    assert wvs.detect_script_language("هل الله مهم في حياتك؟") == "ar"
