"""The committed dataset meets the contract and the bar, and is what the builder makes today."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from culturesim.dataset_builder import wvs
from culturesim.dataset_builder.build import build
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS
from culturesim.simulator.questions import config_files

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rows(dataset_dir):
    out = []
    for path in sorted((dataset_dir / "data").glob("*.parquet")):
        out += pq.read_table(path).to_pylist()
    return out


def test_size_and_coverage(rows):
    """Dataset 3.0's floor: at least 300 scored attitude items for US (GSS 2022 + WVS), 150 for US_2024."""
    assert len(rows) >= 800
    assert {r["construct"] for r in rows} <= {"attitude", "value", "belief", "preference"}
    us = [r for r in rows if r["culture"] == "US" and r["source_year"] != 2024]
    assert len(us) >= 300
    us24 = [r for r in rows if r["source_year"] == 2024 and r["source"] == "GSS"]
    assert len(us24) >= 150
    assert sum(1 for r in us24 if {g["group_type"] for g in r["demographics"]} == {"sex", "age"}) >= 150
    distinct = {(r["source"], r["source_variable"], r["culture"]) for r in rows}
    assert len(distinct) >= 500
    assert {"US", "CN", "JP", "EG"} <= {r["culture"] for r in rows}


def test_every_cn_question_in_chinese_and_english(rows):
    cn = [r for r in rows if r["culture"] == "CN"]
    by_var = {}
    for r in cn:
        by_var.setdefault(r["source_variable"], set()).add(r["language"])
    assert by_var and all(langs == {"zh", "en"} for langs in by_var.values())


def test_parallel_rows_share_distribution(rows):
    by_key = {}
    for r in rows:
        if r["source"] == "WVS":
            by_key.setdefault((r["culture"], r["parallel_id"]), []).append(r)
    for group in by_key.values():
        assert len({tuple(r["human_distribution"]) for r in group}) == 1
        assert len({len(r["options"]) for r in group}) == 1


def test_value_dimension_coverage(rows):
    native = [r for r in rows if r["is_native_language"]]
    for dim in VALUE_DIMENSIONS:
        us = sum(1 for r in native if r["culture"] == "US" and dim in r["value_dimensions"])
        cn = sum(1 for r in native if r["culture"] == "CN" and dim in r["value_dimensions"])
        # 3.0 tags only where the literature supports it: LTO lost "science optimism" (US 8 items), and
        # CN has 54 WVS items, with 2 to 20 per dimension. Per-dimension scores carry their own intervals.
        assert us >= 8, (dim, us)
        assert cn >= 2, (dim, cn)
    for r in rows:
        assert r["value_dimension_rationale"].strip(), r["id"]


def test_demographics(rows):
    gss = [r for r in rows if r["source"] == "GSS"]
    for year in (2022, 2024):
        wave = [r for r in gss if r["source_year"] == year]
        complete = [r for r in wave if {g["group_type"] for g in r["demographics"]} == {"sex", "age"}]
        assert len(complete) >= 0.95 * len(wave), (year, len(complete), len(wave))
        for r in wave:
            groups = [(g["group_type"], g["group"]) for g in r["demographics"]]
            assert len(groups) == len(set(groups))
            assert set(groups) <= {("sex", "female"), ("sex", "male"), ("age", "18-29"), ("age", "30-49"), ("age", "50+")}
            assert all(g["year"] == year and g["n"] >= 30 for g in r["demographics"]), r["id"]
            assert sum(g["n"] for g in r["demographics"] if g["group_type"] == "sex") <= r["human_n"]
    assert all(not r["demographics"] for r in rows if r["source"] == "WVS")


def test_contract_on_every_row(rows):
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        dist = r["human_distribution"]
        assert len(dist) == len(r["options"]) == len(r["option_codes"]), r["id"]
        assert abs(sum(dist) - 1) <= 1e-6 and min(dist) >= 0, r["id"]
        assert r["question_type"] in ("single_choice", "multiple_choice", "scale")
        lang = wvs.detect_script_language(r["question"] + " " + " ".join(r["options"]))
        assert lang == r["language"], (r["id"], lang)
        assert r["human_n"] >= 200


def test_spot_checks(rows):
    by_id = {r["id"]: r for r in rows}
    fefam = by_id["gss2022.fefam.en"]
    assert fefam["human_n"] == 2348
    assert fefam["options"] == ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]
    # The weighted (wtssps) shares; the unweighted counts would give 0.0579 / 0.1861 / 0.4259 / 0.3301.
    assert [round(x, 4) for x in fefam["human_distribution"]] == [0.0615, 0.1892, 0.4371, 0.3121]
    cn = by_id["wvs7.CN.Q1.zh"]
    assert cn["question"] == "在您的生活中，家庭有多重要？"
    assert cn["human_distribution"] == pytest.approx([0.86 / 0.99, 0.13 / 0.99, 0, 0])
    assert by_id["wvs7.CN.Q1.en"]["options"][0] == "Very important"
    assert "wvs7.US.Q182.en" not in by_id  # the JP record copied into the US file
    # WVS human_n is the effective n: national n x the share the source's shares cover (JP Q175: 0.62).
    assert by_id["wvs7.JP.Q175.ja"]["human_n"] == round(wvs.SAMPLE_SIZES["JP"] * 0.62)
    assert by_id["wvs7.CN.Q1.zh"]["human_n"] == round(wvs.SAMPLE_SIZES["CN"] * 0.99)


def test_a_scale_point_nobody_chose_stays_an_option(rows, sources):
    """Options are what the respondent saw: a point of the asked scale with no answers keeps share 0
    (lifenow asks for 0 to 10 and nobody in 2022 chose 0); only volunteered or non-substantive answers
    nobody gave are dropped (tax's "r pays no income tax (vol.)")."""
    import json

    by_id = {r["id"]: r for r in rows}
    lifenow = by_id["gss2022.lifenow.en"]
    assert "0-10" in lifenow["question"]
    assert lifenow["option_codes"] == list(range(0, 11))
    assert lifenow["human_distribution"][0] == 0.0
    docs = {}
    with open(sources / "gss" / "gss_variables_2018_2024.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            docs[record["variable"]] = record
    assert docs["tax"]["counts_by_year"]["2022"]["r pays no income tax (vol.)"] == 0
    assert len(by_id["gss2022.tax.en"]["options"]) == 3
    for row in rows:
        if row["source"] == "GSS":
            assert all("(vol" not in o.lower() and "refused" not in o.lower() for o in row["options"]), row["id"]


def test_build_is_deterministic_and_matches_the_committed_dataset(tmp_path, sources, dataset_dir):
    first, second = tmp_path / "a", tmp_path / "b"
    report = build(sources, first)
    build(sources, second)
    committed = sorted(p.name for p in (dataset_dir / "data").glob("*.parquet"))
    assert committed == sorted(p.name for p in (first / "data").glob("*.parquet"))
    for name in committed:
        a = (first / "data" / name).read_bytes()
        assert a == (second / "data" / name).read_bytes()
        assert a == (dataset_dir / "data" / name).read_bytes(), f"{name} is stale: rerun `culturesim dataset build`"
    assert (first / "README.md").read_text() == (dataset_dir / "README.md").read_text()
    assert (REPO / "DATASET_CARD.md").read_text() == (dataset_dir / "README.md").read_text()
    saved = json.loads((dataset_dir / "build_report.json").read_text())
    assert saved["rows"] == report["rows"]
    kinds = Counter(e["rule"] for e in report["excluded"] + report["repaired"])
    for kind in ("wrong_language", "topic_label", "bad_sum", "collapsed_scale", "option_count_mismatch"):
        assert kinds[kind] > 0, kind
    assert all(e["reason"] for e in report["excluded"] + report["repaired"])


def test_load_dataset(dataset_dir):
    from datasets import load_dataset

    us = load_dataset(str(dataset_dir), "US", split="test")
    cn = load_dataset(str(dataset_dir), "CN", split="test")
    us24 = load_dataset(str(dataset_dir), "US_2024", split="test")
    assert len(us) >= 300 and len(cn) >= 80 and len(us24) >= 150
    assert set(us24["source_year"]) == {2024}
    assert set(us.features) >= {"id", "human_distribution", "demographics", "value_dimensions", "parallel_id",
                                "human_nonsubstantive_share", "battery", "human_n_effective", "design_effect"}
    assert not any(name.startswith("human_ceiling") for name in us.features)  # 3.0: no split-half ceiling


def test_cli_build(tmp_path, sources):
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "dataset", "build", "--out", str(out),
                           "--sources", str(sources)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert (out / "README.md").exists() and "US" in config_files(out)
    assert json.loads(proc.stdout)["rows"] >= 800


def test_publish_without_token_fails_clearly(tmp_path, dataset_dir):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "dataset", "publish", str(dataset_dir),
                           "--repo-id", "culturesim/test"], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode != 0
    assert "HF_TOKEN" in proc.stdout + proc.stderr


def test_publish_offline_fails_clearly(tmp_path, dataset_dir):
    # A real HTTP client against a loopback port nobody listens on: the network error path.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_TOKEN": "hf_secret_test_token_123", "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "dataset", "publish", str(dataset_dir),
                           "--repo-id", "culturesim/test"], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Hub" in out and "Traceback" not in out
    assert "hf_secret_test_token_123" not in out


def test_publish_refuses_a_non_dataset_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "dataset", "publish", str(tmp_path),
                           "--repo-id", "culturesim/test"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "not a built dataset folder" in proc.stderr


def test_load_dataset_sees_a_rebuilt_folder_not_a_stale_cache(tmp_path, dataset_dir):
    """datasets caches a local folder by its name and its files' relative paths, not their content
    (huggingface/datasets#2956): with fixed names a rebuilt folder, or another folder of the same
    name, came back from the cache with the old rows. Content-named data files make each content
    its own cache entry."""
    from culturesim.dataset_builder import card
    from culturesim.dataset_builder.build import write_parquet
    from datasets import load_dataset

    rows = [dict(r, config="US") for r in pq.read_table(config_files(dataset_dir)["US"]).to_pylist()[:5]]
    cache = str(tmp_path / "hf-cache")
    seen = []
    for folder, n in ((tmp_path / "a" / "dataset", 5), (tmp_path / "a" / "dataset", 3), (tmp_path / "b" / "dataset", 4)):
        files = write_parquet(rows[:n], folder)
        (folder / "README.md").write_text(card._front_matter(rows[:n], files), encoding="utf-8")
        seen.append([r["id"] for r in load_dataset(str(folder), "US", split="test", cache_dir=cache)])
    assert seen == [sorted(r["id"] for r in rows[:n]) for n in (5, 3, 4)]
