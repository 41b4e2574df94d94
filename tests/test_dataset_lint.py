"""The lint inside the build: one bad row of each kind makes the build refuse, and says why."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from culturesim.dataset_builder import gss_text, lint
from culturesim.dataset_builder.build import collect, finish
from culturesim.dataset_builder.review import LINT_ALLOW_FILE, load_yaml_file

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(sources):
    """The rows and report the real sources give (before lint and writing)."""
    return collect(sources)


def _copy(row):
    """A deep copy that shares the year file's respondent panel (the builder checks one config is one wave
    by identity of that object, so the injected rows must keep pointing at it)."""
    private = row.get("_respondents")
    panel = getattr(private, "panel", None)
    return copy.deepcopy(row, {id(panel): panel} if panel is not None else None)


def _row(rows, rid):
    return _copy(next(r for r in rows if r["id"] == rid))


def _bad_rows(rows):
    """kind -> a real row damaged the way the source files damage rows."""
    fefam = _row(rows, "gss2022.fefam.en")
    cn = _row(rows, "wvs7.CN.Q1.zh")
    bad = {}
    r = _copy(fefam)
    r["question"] = r["question"] + " READ EACH ITEM; CODE ONE FOR EACH."
    bad["instruction"] = r
    r = _copy(fefam)
    r["question"] = "Which of the following best applies to the sharing of household work between you and your spousepartfill?"
    bad["placeholder"] = r
    r = _copy(_row(rows, "gss2022.fechld.en"))
    r["question"] = fefam["question"]
    bad["duplicate_text"] = r
    r = _copy(fefam)
    r["question"] = "NUMBER OF COWORKER DEATHS."
    bad["label_as_question"] = r
    r = _copy(fefam)
    r["question"] = "Do you think they should, or should not, try their best to help their grandchild financially? Pleas"
    bad["truncated"] = r
    r = _copy(fefam)
    r["options"] = ["A good deal", "A good deal", "Not much", "Not at all"]
    bad["option_mismatch"] = r
    r = _copy(fefam)
    r["options"] = ["R does much more than fair share"] + r["options"][1:]
    bad["option_shorthand"] = r
    r = _copy(cn)
    r["question"] = "您是否认为“勤奋（Hard Work）”是孩子应该在家里学习的重要品质之一？"
    bad["foreign_script"] = r
    r = _copy(fefam)
    r["options"] = r["options"][:3] + ["Other"]
    bad["residual_in_scale"] = r
    # The kinds dataset 2.0 let through (issue 22), each as it was in a 2.0 row.
    r = _copy(fefam)
    r["question"] = "Please consider the following positions and select the options that come closest to your own opinion.) " + r["question"]
    bad["unbalanced_parentheses"] = r
    r = _copy(fefam)
    r["question"] = 'Do you happen to have in your home any guns or revolvers? "Is it a pistol, shotgun, rifle, or what? [Coded if Pistol]."'
    r["question"] = r["question"].replace("[", "(").replace("]", ")")
    bad["coding_note"] = r
    r = _copy(fefam)
    r["question"] = "Would you use this card and tell me which answer comes closest to how often you spend a social evening with relatives?"
    bad["card_reference"] = r
    r = _copy(fefam)
    r["options"] = ["More often", "At the same rate", "Less often", "I not attending these activities"]
    bad["option_grammar"] = r
    r = _copy(fefam)
    r["question"] = "In the November election for President, do you think you will probably vote for Donald Trump, Kamala Harris, someone else?"
    r["options"] = ["Donald trump", "Kamala harris", "Someone else", "Probably not vote"]
    bad["name_case"] = r
    r = _copy(fefam)
    r["question"] = "Please consider the following positions and select the options that come closest to your own opinion. Senior executive of a large company."
    bad["missing_question"] = r
    r = _copy(fefam)
    r["question"] = ("Some people think that the government should do everything possible to improve the standard of living "
                     "of all poor Americans. Where would you place yourself on this scale, or haven't you have up your mind on this?")
    bad["interviewer_text"] = r
    r = _copy(fefam)
    r["question"] = ("Are you currently — married, widowed, divorced, separated, or have you never been married? "
                     "Do you agree that it is much better for everyone if the man earns the money?")
    bad["appended_question"] = r
    r = _row(rows, "gss2022.fechld.en")  # another item's answers under fefam's prompt (options in another order)
    r["question"], r["options"] = fefam["question"], list(reversed(fefam["options"]))
    bad["duplicate_prompt"] = r
    assert set(bad) == set(lint.KINDS)
    return bad


def test_the_committed_dataset_is_lint_clean(built):
    rows, _ = built
    assert lint.lint(rows, load_yaml_file(LINT_ALLOW_FILE)) == []


@pytest.mark.parametrize("kind", sorted(lint.KINDS))
def test_the_build_refuses_one_bad_row_of_each_kind(built, tmp_path, kind):
    rows, report = built
    bad = _bad_rows(rows)[kind]
    rows = [r for r in rows if r["id"] != bad["id"]] + [bad]
    out = tmp_path / "ds"
    with pytest.raises(lint.LintError) as err:
        finish(rows, copy.deepcopy(report), out)
    assert kind in str(err.value)
    saved = json.loads((out / "build_report.json").read_text())
    assert {f["kind"] for f in saved["lint_findings"] if f["row"] == bad["id"]} >= {kind}
    assert not (out / "data").exists() and not (out / "README.md").exists()  # nothing half-built


def test_a_curated_allowance_needs_the_exact_variables(built):
    rows, _ = built
    a, b = _row(rows, "gss2022.fefam.en"), _row(rows, "gss2022.fechld.en")
    b["question"] = a["question"]
    b["options"] = ["Agree a lot", "Agree a little", "Disagree a little", "Disagree a lot"]  # not the same prompt
    assert {f.kind for f in lint.lint([a, b])} == {"duplicate_text"}
    allow = {"same_text": {"test": {"variables": ["fefam", "fechld"], "reason": "test"}}}
    assert lint.lint([a, b], allow) == []


def test_questionnaire_rules_on_real_texts(sources):
    records = {json.loads(line)["variable"]: json.loads(line)
               for line in open(sources / "gss" / "gss_variables_2018_2024.jsonl", encoding="utf-8")}
    text, rules = gss_text.normalise(records["coneduc"]["question"])
    assert "READ EACH ITEM" not in text and text.endswith('"Education."') and "battery_item" in rules
    text, _ = gss_text.normalise(records["natarms"]["question"])
    assert text.endswith("about the right amount on the military, armaments and defense?"), text
    assert "(ITEM)" not in text and "First" not in text
    text, _ = gss_text.normalise(records["sharehhw"]["question"])
    assert text.endswith("between you and your spouse or partner?")
    text, _ = gss_text.normalise(records["spkath"]["question"])
    assert "(city/town/community)" not in text and "in your community" in text
    # A text cut by the export's field limit is not closed by rule: the lint must see it.
    text, rules = gss_text.normalise(records["eldfnce"]["question"])
    assert text.endswith("Pleas") and "closing_punctuation" not in rules


@pytest.mark.slow
def test_cli_build_stops_on_a_finding(tmp_path, sources):
    """Real CLI, real sources with one damaged questionnaire text: exit 2, one-line error, findings saved."""
    copy_dir = tmp_path / "sources"
    (copy_dir / "gss").mkdir(parents=True)
    for name in ("gss2022.rds", "gss2024.rds"):
        (copy_dir / "gss" / name).symlink_to(sources / "gss" / name)
    (copy_dir / "wvs7").symlink_to(sources / "wvs7")
    lines = (sources / "gss" / "gss_variables_2018_2024.jsonl").read_text(encoding="utf-8").splitlines()
    damaged = []
    for line in lines:
        rec = json.loads(line)
        if rec["variable"] == "fefam":
            rec["question"] = "We're very sorry. Who would that be?"
            rec["label"] = "damaged"
        if rec["variable"] == "fechld":
            rec["question"] = "We're very sorry. Who would that be?"
        damaged.append(json.dumps(rec))
    (copy_dir / "gss" / "gss_variables_2018_2024.jsonl").write_text("\n".join(damaged) + "\n", encoding="utf-8")
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "dataset", "build", "--sources", str(copy_dir),
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("culturesim: error: lint:")
    findings = json.loads((out / "build_report.json").read_text())["lint_findings"]
    assert {(f["row"], f["kind"]) for f in findings} >= {("gss2022.fefam.en", "duplicate_text"),
                                                         ("gss2022.fechld.en", "duplicate_text")}


def test_every_row_named_in_the_review_is_fixed_or_excluded_with_a_reason(dataset_dir):
    """The rows the dataset-2.0 review named: each is excluded or repaired in build_report.json, with a reason."""
    report = json.loads((dataset_dir / "build_report.json").read_text())
    handled: dict[str, set[str]] = {}
    for entry in report["excluded"] + report["repaired"]:
        assert entry["reason"].strip(), entry
        handled.setdefault(entry["item"], set()).add(entry["rule"])
    excluded = {e["item"] for e in report["excluded"]}
    brv = ["brv16grand", "brv16oth", "brv16par", "brv16sib", "brv16sp", "brv5child", "brv5grand", "brv5oth",
           "brv5par", "brv5sib", "brv5sp"]
    labels = ["brv16gmanum", "brv16gpanum", "brv5cowknum", "brv5cuznum", "brv5dadnum", "brv5momnum"]
    scope = ["ownstock", "unemp", "hyperten", "hivtest2", "hivtest2_0622", "racdif1x", "racdif2x", "racdif3x", "racdif4x"]
    for var in brv + labels + scope:
        assert f"gss2022.{var}" in excluded, var
    for var in ("obey", "thnkself", "workhard", "helpoth", "popular", "eldfnce", "bible", "god"):
        assert "curated_text" in handled[f"gss2022.{var}"], var
    for var in ("sharehhw", "coneduc", "natarms", "trustman", "absingle"):
        assert "questionnaire_text" in handled[f"gss2022.{var}"], var
    for var in ("chldidel", "homosex", "getahead"):
        assert "residual_answer" in handled[f"gss2022.{var}"], var
    for country in ("US", "CN", "JP", "EG"):
        assert "residual_answer" in handled[f"wvs7.{country}.Q221"]
        assert "english_wording" in handled[f"wvs7.{country}.Q143"]
    for country in ("CN", "JP", "EG"):
        for q in ("Q51", "Q53", "Q54", "Q55"):
            assert "native_stem" in handled[f"wvs7.{country}.{q}"], (country, q)
    for q in ("Q58", "Q62", "Q139", "Q140", "Q142"):  # fragments without a stem in the English short forms
        assert "english_wording" in handled[f"wvs7.US.{q}"], q
    for q in ("Q7", "Q9", "Q17"):  # "On a scale of 1 to 2" over Important / Not mentioned
        assert "english_wording" in handled[f"wvs7.CN.{q}"], q
