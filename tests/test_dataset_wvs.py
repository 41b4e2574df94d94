"""Dataset 3.0, WVS items: collapsed scales, list questions, one prompt per row, construct,
the ``comparable`` flag and its use by the culture map and the cross-culture table.

Golden values are computed here from the raw files (not through the builder) or by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from culturesim.dataset_builder import wvs
from culturesim.dataset_builder.review import DIMENSIONS_FILE, WVS_ENGLISH_FILE, WVS_NATIVE_FILE, load_constructs
from culturesim.dataset_builder.schema import SCHEMA
from culturesim.simulator.analysis.culture_map import (
    cross_culture_scores,
    culture_map_for_runs,
    question_position,
)
from culturesim.simulator.questions import Question


@pytest.fixture(scope="module")
def raw(sources: Path) -> dict:
    folder = sources / "wvs7"
    files = {c: json.loads((folder / f"wvs7_{c}_aggregates.json").read_text(encoding="utf-8"))["examples"]
             for c in wvs.COUNTRIES}
    meta = json.loads((folder / "wvs7_question_metadata.json").read_text(encoding="utf-8"))
    return {"files": files, "meta": meta}


@pytest.fixture(scope="module")
def adapted(sources: Path):
    src = wvs.WvsSources.read(sources / "wvs7", WVS_ENGLISH_FILE, WVS_NATIVE_FILE)
    return wvs.adapt_all(src)


def test_every_collapsed_ten_point_scale_is_excluded(raw, adapted) -> None:
    # Independently: a record whose metadata scale has 10 points but whose distribution has 2 codes.
    collapsed = set()
    for country, records in raw["files"].items():
        for rec in records:
            m = raw["meta"].get(rec["id"]) or {}
            if m.get("answer_scale_max") not in ("", None) and int(m["answer_scale_max"]) - int(m["answer_scale_min"]) >= 9 \
                    and len(rec["distribution"]) == 2:
                collapsed.add((country, rec["id"]))
    assert len(collapsed) == 113  # 24 US (16 of them the JP copies), 30 CN, 30 JP, 29 EG
    items, issues = adapted
    kept = {(i.country, i.qid) for i in items}
    assert not collapsed & kept
    handled = {(i.item.split(".")[1], i.item.split(".")[2]) for i in issues
               if i.kind in ("collapsed_scale", "wrong_language") and i.action == "excluded"}
    assert collapsed <= handled
    reason = next(i.detail for i in issues if i.item == "wvs7.CN.Q158" and i.kind == "collapsed_scale")
    assert "does not document" in reason and "0.98" in reason  # CN Q158: 0.06 + 0.92


def test_child_qualities_are_the_list_question_in_every_language(adapted) -> None:
    items, issues = adapted
    yes_no = {"zh": ["是", "否"], "ja": ["はい", "いいえ"], "ar": ["نعم", "لا"]}
    limit = {"zh": "最多可选五项", "ja": "5つまで", "ar": "خمس صفات"}
    seen = 0
    for item in items:
        if item.qid not in {f"Q{n}" for n in range(7, 18)}:
            continue
        seen += 1
        assert item.options == yes_no[item.language], (item.country, item.qid)
        assert item.english_options == ["Yes", "No"]  # the native options mean yes / no, so the English do
        assert limit[item.language] in item.question and "up to five" in item.english_question
        assert "obedience" in item.english_question  # the whole list of eleven is shown
    assert seen == 33  # Q7-Q17 in CN, JP and EG
    assert "list_question" in {i.kind for i in issues if i.item == "wvs7.JP.Q9"}


def test_one_row_per_prompt_and_no_show_card(adapted) -> None:
    items, _ = adapted
    for country in wvs.COUNTRIES:
        mine = [i for i in items if i.country == country]
        for texts in ([(i.question, tuple(i.options)) for i in mine], [(i.english_question, tuple(i.english_options))
                                                                       for i in mine if i.english_question]):
            questions = [q for q, _ in texts]
            twice = {q for q in questions if questions.count(q) > 1}
            assert not twice, (country, twice)
        for i in mine:
            assert "card" not in (i.english_question or "").lower(), (country, i.qid)
    us = {i.qid: i for i in items if i.country == "US"}
    assert us["Q174"].question.startswith("With which one") and us["Q175"].question.startswith("And with which")


def test_construct_of_a_hand_labelled_sample(raw) -> None:
    constructs = load_constructs(wvs.CONSTRUCT_FILE)
    in_sources = {rec["id"] for records in raw["files"].values() for rec in records}
    assert set(constructs) == in_sources  # every question in the sources has a class, no stray entry
    hand = {"Q171": "behaviour", "Q172": "behaviour", "Q221": "behaviour", "Q209": "behaviour", "Q200": "behaviour",
            "Q51": "experience", "Q47": "experience", "Q142": "experience", "Q1": "value", "Q17": "value",
            "Q182": "value", "Q165": "belief", "Q57": "belief", "Q42": "preference", "Q152": "preference",
            "Q46": "attitude", "Q45": "attitude"}
    assert {q: constructs[q].kind for q in hand} == hand
    assert not any(constructs[q].scored for q in ("Q171", "Q221", "Q51"))


def test_wvs_tag_rationales_name_their_construct() -> None:
    tags = {k: v for k, v in yaml.safe_load(DIMENSIONS_FILE.read_text(encoding="utf-8")).items() if k.startswith("wvs:")}
    for key, entry in tags.items():
        text = str(entry.get("rationale") or entry.get("none_reason"))
        assert "as defined for this dataset" not in text and "in the brief" not in text, key
    # Canonical Inglehart-Welzel traditional vs secular-rational items carry tradition.
    for q in ("Q27", "Q45", "Q17", "Q15", "Q6", "Q165"):
        assert "TDI" in tags[f"wvs:{q}"]["dimensions"] and "Inglehart" in tags[f"wvs:{q}"]["rationale"], q


def _row(culture: str, qid: str, question: str, options: list[str], language: str = "en") -> dict:
    return {"source": "WVS", "culture": culture, "language": language, "source_variable": qid, "question": question,
            "options": options, "option_codes": list(range(1, len(options) + 1))}


def test_comparable_questions_by_hand() -> None:
    same = [_row(c, "Q1", "How important is family?", ["Very", "Not"]) for c in wvs.COUNTRIES]
    other_options = [_row(c, "Q2", "Friends?", ["Yes", "No"]) for c in ("US", "CN", "JP")] + \
        [_row("EG", "Q2", "Friends?", ["Important", "Not mentioned"])]
    missing = [_row(c, "Q3", "Leisure?", ["Yes", "No"]) for c in ("US", "CN", "JP")]
    native_only = [_row("CN", "Q1", "家庭重要吗？", ["是", "否"], "zh")]  # native texts do not decide
    assert wvs.comparable_questions(same + other_options + missing + native_only) == {"Q1"}


def _question(culture: str, qid: str, dist: list[float], comparable: bool, language: str = "en") -> Question:
    return Question(id=f"wvs7.{culture}.{qid}.{language}", culture=culture, language=language, question=f"{qid}?",
                    options=("a", "b", "c"), option_codes=(1, 2, 3), question_type="single_choice", ordinal=True,
                    human_distribution=tuple(dist), human_n=100, value_dimensions=("IDV", "TDI"), source="WVS",
                    source_variable=qid, parallel_id=f"wvs7.{qid}", comparable=comparable)


def test_cross_culture_scores_use_shared_comparable_items_only() -> None:
    def run(culture, label, kl):  # kl: {qid: (kl, js)}
        qs = [_question(culture, q, [0.5, 0.3, 0.2], q in ("Q1", "Q2")) for q in kl]
        per = [{"id": q.id, "kl": kl[q.source_variable][0], "js": kl[q.source_variable][1]} for q in qs]
        return {"label": label, "config": {"culture": culture}, "questions": qs, "metric": {"per_question": per}}

    us = run("US", "us", {"Q1": (0.1, 0.2), "Q2": (0.3, 0.4), "Q9": (5.0, 0.9)})  # Q9 not comparable
    cn = run("CN", "cn", {"Q1": (0.5, 0.1), "Q3": (9.0, 0.9)})  # Q3 not comparable; Q2 not answered
    out = cross_culture_scores([us, cn])
    assert out["items"] == ["wvs7.Q1"]
    assert out["runs"] == [{"label": "us", "culture": "US", "n_questions": 1, "kl_mean": 0.1, "js_mean": 0.2},
                           {"label": "cn", "culture": "CN", "n_questions": 1, "kl_mean": 0.5, "js_mean": 0.1}]
    assert cross_culture_scores([us]) is None  # one culture: nothing to compare across


def test_culture_map_places_humans_and_runs_by_comparable_items_only(tmp_path: Path) -> None:
    # Q1 comparable (IDV +1, TDI -1 in polarity.yaml); Q6 tagged TDI too but not comparable here.
    dists = {"US": [0.7, 0.2, 0.1], "CN": [0.2, 0.3, 0.5]}
    data = tmp_path / "data"
    data.mkdir()
    for culture, dist in dists.items():
        rows = []
        for qid, comparable, d in (("Q1", True, dist), ("Q6", False, [0.0, 0.0, 1.0])):
            rows.append({"id": f"wvs7.{culture}.{qid}.en", "culture": culture, "language": "en",
                         "is_native_language": True, "source": "WVS", "source_year": 2018, "source_variable": qid,
                         "question": f"{qid}?", "options": ["a", "b", "c"], "option_codes": [1, 2, 3],
                         "question_type": "single_choice", "ordinal": True, "human_distribution": d, "human_n": 100,
                         "value_dimensions": ["IDV", "TDI"], "value_dimension_rationale": "test", "topic": "t",
                         "demographics": [], "parallel_id": f"wvs7.{qid}", "repairs": [], "comparable": comparable})
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), data / f"{culture}.parquet")
    q1, q6 = _question("US", "Q1", dists["US"], True), _question("US", "Q6", [0.0, 0.0, 1.0], False)
    run = {"label": "run", "questions": [q1, q6],
           "metric": {"per_question": [{"id": q1.id, "model_distribution": [0.1, 0.1, 0.8]},
                                       {"id": q6.id, "model_distribution": [1.0, 0.0, 0.0]}]}}
    projection = culture_map_for_runs([run], tmp_path)
    positions = projection["positions"]
    for culture, dist in dists.items():
        expected_idv = float(np.dot(dist, [0, 0.5, 1]))  # expected rank on 0..1, IDV polarity +1
        assert positions[f"{culture} (human, WVS)"]["IDV"] == pytest.approx(expected_idv)
        assert positions[f"{culture} (human, WVS)"]["TDI"] == pytest.approx(1 - expected_idv)
    assert positions["run"]["IDV"] == pytest.approx(question_position([0.1, 0.1, 0.8], 1))
    assert projection["run_question_counts"]["run"] == {"IDV": 1, "TDI": 1}  # Q6 left out
