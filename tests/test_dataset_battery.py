"""The battery column: every item in its questionnaire block, by the curated rules."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from culturesim.dataset_builder import battery
from culturesim.simulator.questions import config_files


@pytest.fixture(scope="module")
def rows(dataset_dir):
    out = []
    for config, path in config_files(dataset_dir).items():
        out += [dict(r, config=config) for r in pq.read_table(path).to_pylist() if "battery" in r]
    return out


@pytest.fixture(scope="module")
def families(sources):
    out = {}
    with open(sources / "gss" / "gss_variables_2018_2024.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out[rec["variable"]] = rec.get("families") or []
    return out


def test_every_row_has_a_battery_shared_by_its_parallels(rows):
    assert rows and all(r["battery"] for r in rows)
    by_parallel = {}
    for r in rows:
        by_parallel.setdefault(r["parallel_id"], set()).add(r["battery"])
    assert all(len(b) == 1 for b in by_parallel.values()), {p: b for p, b in by_parallel.items() if len(b) > 1}


def test_gss_modules_and_named_batteries(rows, families):
    gss = {(r["source_year"], r["source_variable"]): r["battery"] for r in rows if r["source"] == "GSS"}
    for (year, var), b in gss.items():
        fam = families[var]
        if "Quality of Working Life" in fam:
            assert b == "gss.qwl", var
        if "NEA" in fam:
            assert b == "gss.nea_arts", var
        if "ISSP Digital Societies" in fam:
            assert b == "gss.issp_digital_societies", var
        if var in ("abany", "abrape", "absingle"):
            assert b == "gss.abortion", var
        if var.startswith("nat"):
            assert b == "gss.natspend", var
        if var in ("confed", "conarmy", "consci"):
            assert b == "gss.confidence", var
        if var in ("spkath", "colcom", "librac"):
            assert b == "gss.civil_liberties", var
    # Module first, prefix last: GSS Next's confidence-in-vaccine item is not in the confidence battery.
    if (2022, "conpharvacy") in gss:
        assert gss[(2022, "conpharvacy")] == "gss.next"
    # An item in no block is its own battery, named by its parallel id.
    assert gss.get((2022, "happy"), "gss.happy") == "gss.happy"
    assert gss.get((2022, "fefam"), "gss.women_roles") == "gss.women_roles"


def test_wvs_batteries_follow_the_questionnaire(rows):
    wvs = {r["source_variable"]: r["battery"] for r in rows if r["source"] == "WVS"}
    expect = {"Q1": "wvs7.Q1-Q6", "Q6": "wvs7.Q1-Q6", "Q58": "wvs7.Q58-Q63", "Q165": "wvs7.Q165-Q168",
              "Q46": "wvs7.Q46", "Q57": "wvs7.Q57"}
    for q, b in expect.items():
        if q in wvs:
            assert wvs[q] == b, q
    for q, b in wvs.items():
        n = int(q[1:])
        if 64 <= n <= 89:
            assert b == "wvs7.Q64-Q89", q
        if 177 <= n <= 195:
            assert b == "wvs7.Q177-Q195", q


def test_batteries_group_items(rows):
    sizes = Counter((r["config"], r["battery"]) for r in rows if r["is_native_language"])
    us = {b: n for (c, b), n in sizes.items() if c == "US"}
    assert max(us.values()) >= 20  # the Quality of Working Life block
    assert sum(1 for n in us.values() if n > 1) >= 15


def test_rules_refuse_contradictions(tmp_path):
    path = tmp_path / "battery.yaml"
    path.write_text("gss:\n  batteries:\n    gss.a: {name: a, variables: [x]}\n    gss.b: {name: b, variables: [x]}\n")
    with pytest.raises(battery.BatteryError, match="'x' is in 'gss.a' and 'gss.b'"):
        battery.BatteryRules.load(path)
    path.write_text("wvs:\n  ranges:\n    - {battery: wvs7.Q1-Q6, first: 1, last: 6, name: a}\n"
                    "    - {battery: wvs7.Q5-Q9, first: 5, last: 9, name: b}\n")
    with pytest.raises(battery.BatteryError, match="overlaps"):
        battery.BatteryRules.load(path)
    rules = battery.BatteryRules.load()
    assert rules.gss("abany", ["Core", "Abortion"], "gss.abany") == "gss.abortion"
    assert rules.gss("abmoral", ["GSS Next"], "gss.abmoral") == "gss.next"
    assert rules.gss("natsoc", ["Aged"], "gss.natsoc") == "gss.natspend"
    assert rules.gss("happy", ["Core", "Happiness"], "gss.happy") == "gss.happy"
    assert rules.wvs("Q180", "wvs7.Q180") == "wvs7.Q177-Q195"
    assert rules.wvs("Q49", "wvs7.Q49") == "wvs7.Q49"
