"""What a scored row is: an attitude, value, belief or preference, asked as the respondents heard it.

The hand labels below were given by reading each item's question and options as a respondent
would, applying the written rule (``review.CONSTRUCT_RULE``, rendered in the card), without
looking at ``curation/construct.yaml``; the test checks the curated file agrees, and that the
build keeps behaviours, experiences and facts, non-substantive options, high volunteered shares
and contradictory duplicate prompts out of every config.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from culturesim.dataset_builder import gss
from culturesim.dataset_builder.build import collect
from culturesim.dataset_builder.review import CONSTRUCT_RULE, SCORED_CONSTRUCTS, load_constructs

HAND_LABELS = {
    # behaviours: what the respondent does or did
    "evidu": "behaviour", "if16who": "behaviour", "if20who": "behaviour", "whovote24": "behaviour",
    "docvst": "behaviour", "attend": "behaviour", "pray": "behaviour", "cvdart": "behaviour",
    "sexfreq": "behaviour", "pres20": "behaviour",
    # experiences: what happened to them, their own condition or job
    "slpprblm": "experience", "hvylift": "experience", "feeldown": "experience", "wkharsex": "experience",
    "myskills": "experience", "backpain": "experience",
    # facts about them or their household
    "ptnrsxbrth": "fact", "owngun": "fact", "rowngun": "fact", "broadband": "fact", "union1": "fact",
    "widowed": "fact", "famdif16": "fact",
    # scored
    "cappun": "attitude", "grass": "attitude", "conarmy": "attitude", "happy": "attitude", "hapmar": "attitude",
    "spkcom": "attitude", "satjob": "attitude", "proudhis": "attitude",
    "abany": "value", "homosex": "value", "fefam": "value", "obey": "value", "polviews": "value",
    "natspac": "preference", "natheal": "preference", "partyid": "preference", "eqwlth": "preference",
    "letin1a": "preference", "chldidel": "preference",
    "god": "belief", "postlife": "belief", "trust": "belief", "getahead": "belief", "racdif1": "belief",
}


def test_the_curated_classes_agree_with_the_hand_labels():
    constructs = load_constructs()
    disagree = {v: (label, constructs[v].kind) for v, label in HAND_LABELS.items() if constructs[v].kind != label}
    assert not disagree, f"hand label vs construct.yaml: {disagree}"
    assert len(HAND_LABELS) >= 40


def test_the_rule_names_every_class_once():
    assert [k for k, _ in CONSTRUCT_RULE] == ["behaviour", "experience", "fact", "value", "preference", "belief", "attitude"]


@pytest.fixture(scope="module")
def built(sources):
    return collect(sources)


def test_no_behaviour_experience_or_fact_is_in_a_scored_config(built):
    rows, report = built
    gss_rows = [r for r in rows if r["source"] == "GSS"]
    assert all(r["construct"] in SCORED_CONSTRUCTS for r in rows)
    present = {r["source_variable"] for r in gss_rows}
    unscored = {v for v, label in HAND_LABELS.items() if label not in SCORED_CONSTRUCTS}
    assert not present & unscored
    excluded = {e["item"].split(".")[1] for e in report["excluded"] if e["rule"] == "not_an_attitude"}
    assert {"evidu", "owngun", "if20who", "slpprblm"} <= excluded


def test_no_option_is_a_non_answer_or_never_chosen(built):
    rows, _ = built
    # A point of an ordered scale nobody chose stays (lifenow asks 0-10; nobody chose 0 in 2022): the
    # options are what the respondent saw. Any other never-chosen option would be a volunteered one.
    bad = [(r["id"], o) for r in rows if r["source"] == "GSS" for o, p in zip(r["options"], r["human_distribution"])
           if gss.NONSUBSTANTIVE_OPTION.search(o) or (p == 0 and not r["ordinal"])]
    assert not bad, bad[:10]


def test_volunteered_shares_are_columns_and_the_high_ones_are_out(built, sources):
    rows, report = built
    gss_rows = {r["id"]: r for r in rows if r["source"] == "GSS"}
    assert all(r["volunteered_share"] is not None and 0 <= r["volunteered_share"] <= gss.MAX_VOLUNTEERED_SHARE
               for r in gss_rows.values())
    # Golden from the documentation's 2022 tabulation: aged 643 good / 285 bad / 252 depends / 14 don't know /
    # 2 no answer, so (252 + 14 + 2) / 1196 = 0.2241 of those asked answered outside the options.
    out = {e["item"]: e["reason"] for e in report["excluded"] if e["rule"] == "volunteered_share"}
    assert "gss2022.aged" in out and out["gss2022.aged"].startswith("22.4%")
    # trust 2022: 303 / 794 / depends 101 / don't know 2: (101 + 2) / 1200 = 0.0858, kept with its share.
    assert gss_rows["gss2022.trust.en"]["volunteered_share"] == pytest.approx(103 / 1200, abs=1e-9)


def test_one_row_per_prompt_within_a_config(built):
    rows, _ = built
    targets: dict[tuple, set] = defaultdict(set)
    for r in rows:
        prompt = (r["config"], re.sub(r"\W+", " ", r["question"]).lower().strip(), tuple(o.lower() for o in r["options"]))
        targets[prompt].add(tuple(round(x, 6) for x in r["human_distribution"]))
    assert not [p for p, t in targets.items() if len(t) > 1]


def test_every_row_changed_in_3_0_is_read_by_hand_and_a_tenth_of_the_rest(built):
    from culturesim.dataset_builder.review import GSS_TEXT_FILE

    rows, report = built
    text = GSS_TEXT_FILE.read_text(encoding="utf-8")
    changed = set(re.findall(r"(?m)^([a-z0-9_]+):", text[text.index("# --- Dataset 3.0"):]))
    gss_ids = {r["id"]: r["source_variable"] for r in rows if r["source"] == "GSS"}
    reviewed = {e["item"] for e in report["wording_review"]["changed"]}
    assert {i for i, v in gss_ids.items() if v in changed} <= reviewed
    sample = {e["item"] for e in report["wording_review"]["sample"]}
    # sampled rows the review found defective were fixed, so they are in both lists
    assert len(sample) >= 0.1 * len(set(gss_ids) - (reviewed - sample)) - 1


def test_tag_rationales_name_the_construct_not_the_dataset(tmp_path):
    from culturesim.dataset_builder.review import CurationError, load_tags

    tags = load_tags()
    assert not [k for k, t in tags.items() if re.search(r"this dataset|the brief|as operationali[sz]ed", t.rationale)]
    bad = tmp_path / "tags.yaml"
    bad.write_text("gss:vaxsafe:\n  dimensions: [LTO]\n  rationale: trust in science, part of LTO as defined for this dataset\n")
    with pytest.raises(CurationError, match="as defined for this dataset"):
        load_tags(bad)


def test_lto_is_not_science_optimism_and_pdi_not_confidence_in_institutions():
    from culturesim.dataset_builder.review import load_tags

    tags = load_tags()
    lto = [t.rationale for t in tags.values() if "LTO" in t.dimensions]
    pdi = [t.rationale for t in tags.values() if "PDI" in t.dimensions]
    assert not [r for r in lto if "science optimism" in r.lower()]
    assert not [r for r in pdi if "confidence in institutions" in r.lower() or r.startswith("Confidence in")]
    for var in ("gss:scientgo", "gss:vaxsafe", "gss:conarmy", "gss:conlegis"):
        assert not {"LTO", "PDI"} & set(tags[var].dimensions), var
