"""``culturesim dataset build``: raw sources -> reviewed, tagged, validated Hub-ready folder.

Output: ``README.md`` (the dataset card with YAML ``configs``, one per culture, split
``test``), ``data/<CONFIG>-<content hash>.parquet`` and ``build_report.json`` (every excluded or repaired
item with its reason). The same sources give byte-identical parquet files on any machine: derived
floats are stored rounded to ``FLOAT_DIGITS`` significant digits, because the last bits of a sum
depend on the machine's summation order (SIMD width, BLAS), and 12 digits sit far below any
sampling error in the data.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from culturesim.dataset_builder import battery, card, gss, gss_text, lint, microdata, respondents, universe, wvs
from culturesim.dataset_builder.review import (
    DIMENSIONS_FILE,
    GSS_TEXT_FILE,
    LINT_ALLOW_FILE,
    REVIEW_FILE,
    WVS_ENGLISH_FILE,
    WVS_NATIVE_FILE,
    CurationError,
    is_numeric_scale,
    is_ordinal,
    load_constructs,
    wording_review,
    load_review,
    load_yaml_file,
    load_tags,
)
from culturesim.dataset_builder.schema import SCHEMA, data_file_name
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "dataset"
DEFAULT_SOURCES = REPO_ROOT.parent / "shared" / "sources"
BUILDER_VERSION = "3.0"
#: Significant digits kept for every float written (see the module docstring).
FLOAT_DIGITS = 12


class ValidationError(ValueError):
    """The built rows break the dataset contract."""


def _clean_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _capitalise(label: str) -> str:
    label = label.strip()
    return label[:1].upper() + label[1:]


# Codebook shorthand in GSS answer labels, written out in the respondent's voice.
_SHORTHAND = [
    (re.compile(r"\s*\((?:phone mode only|vol\.?)[^)]*\)?\s*$"), ""),  # volunteered-only marker of the codebook
    (re.compile(r"^yes, respondent does$"), "yes, I do"),
    (re.compile(r"^yes, respondent belongs$"), "yes, I belong"),
    (re.compile(r"\bneither r nor spouse or partner does\b"), "neither I nor my spouse or partner does"),
    (re.compile(r"\bneither i nor spouse or partner does\b"), "neither I nor my spouse or partner does"),
    (re.compile(r"\bthan fair share\b"), "than my fair share"),
    (re.compile(r"\broughly fair share\b"), "roughly my fair share"),
    (re.compile(r"\bi\b"), "I"),
    (re.compile(r"\bi'"), "I'"),
    (re.compile(r"\bu\.s\."), "U.S."),
    (re.compile(r"^r does\b"), "I do"),
    (re.compile(r"^r is\b"), "I am"),
    (re.compile(r"^r has\b"), "I have"),
    (re.compile(r"\bneither r nor\b"), "neither I nor"),
    (re.compile(r"\br would\b"), "I would"),
    (re.compile(r"\br\b"), "I"),
    (re.compile(r"\bafrican-american\b"), "African-American"),
    (re.compile(r"\bamerican\b"), "American"),
    (re.compile(r"\bchristian\b"), "Christian"),
    (re.compile(r"\bgod\b"), "God"),
    (re.compile(r"\bdemocrat\b"), "Democrat"),
    (re.compile(r"\brepublican\b"), "Republican"),
    (re.compile(r"\bblack\b"), "Black"),  # the GSS's own usage since 2021
]


def _option_text(label: str) -> str:
    """A GSS answer label in sentence case, codebook shorthand written out."""
    text = label.strip()
    for pattern, repl in _SHORTHAND:
        text = pattern.sub(repl, text)
    return _capitalise(text)


NONSUBSTANTIVE_LABELS = ("don't know", "no answer", "skipped on web", "can't choose", "refused", "uncodeable")


def nonsubstantive_share(var: gss.GssVariable) -> float | None:
    """Share of those asked who gave no substantive answer, from the documentation's counts.

    The year files code don't know, no answer, refused and skipped as plain NA (indistinguishable
    from not asked), so the unweighted tabulation is the only source: non-substantive labels over
    substantive plus non-substantive answers. None when the tabulation lists no such label.
    """
    counts = (var.raw.get("counts_by_year") or {}).get(var.year) or {}
    present = [lbl for lbl in NONSUBSTANTIVE_LABELS if lbl in counts]
    if not present:
        return None
    ns = sum(int(counts[lbl] or 0) for lbl in present)
    asked = ns + sum(var.counts)
    return ns / asked if asked else None


def _report(report: dict, kind: str, item: str, stage: str, rule: str, reason: str) -> None:
    report[kind].append({"item": item, "stage": stage, "rule": rule, "reason": reason})


def gss_rows(sources: Path, review: dict, tags: dict, report: dict, year: str = gss.YEAR) -> list[dict[str, Any]]:
    """One row per reviewed GSS variable of ``year``, estimated from that year's microdata."""
    repairs: dict[str, str] = {}
    prefix = f"gss{year}"
    kept, excluded = gss.candidates(sources / "gss" / "gss_variables_2018_2024.jsonl", repairs, year)
    for var, (rule, detail) in sorted(excluded.items()):
        _report(report, "excluded", f"{prefix}.{var}", "rule", rule, detail)
    missing = sorted(v for v in kept if f"gss:{v}" not in review)
    if missing:
        raise CurationError(
            f"{len(missing)} GSS {year} candidates have no review decision in {REVIEW_FILE.name}: {missing[:20]}"
        )
    text_overrides = load_yaml_file(GSS_TEXT_FILE)
    batteries = battery.BatteryRules.load()
    frame = microdata.read_year_file(sources / "gss" / f"gss{year}.rds")
    masks = microdata.group_masks(frame)
    panel = respondents.Panel.from_frame(frame, int(year))
    constructs, universe_of, cells = load_constructs(), universe.load_universes(), universe.design_cells(frame)
    rows = []
    for var_name in sorted(kept):
        var = kept[var_name]
        item = f"{prefix}.{var_name}"
        decision = review[f"gss:{var_name}"]
        if decision["decision"] == "exclude":
            _report(report, "excluded", item, "review", decision.get("rule", "curated"), decision["reason"])
            continue
        if var_name not in frame.columns:
            _report(report, "excluded", item, "microdata", "not_in_microdata",
                    f"the variable is documented for {year} but is not a column of gss{year}.rds")
            continue
        row_repairs: list[str] = []
        if var_name in repairs:
            _report(report, "repaired", item, "repair", "mode_only_option", repairs[var_name])
            row_repairs.append(f"mode_only_option: {repairs[var_name]}")
        column = frame[var_name].to_numpy(dtype=float)
        present = ~np.isnan(column)
        check = microdata.check_codes(column[present], var.codes, var.counts)
        if check.action == "excluded":
            _report(report, "excluded", item, "microdata", "code_mismatch", check.detail)
            continue
        if check.action == "repaired":
            column = column + check.shift
            _report(report, "repaired", item, "microdata", "code_shift", check.detail)
            row_repairs.append(f"code_shift: {check.detail}")
        tag = tags.get(f"gss:{var_name}")
        if tag is None:
            raise CurationError(f"GSS item {var_name!r} is included but has no entry 'gss:{var_name}' in {DIMENSIONS_FILE.name}")
        override = text_overrides.get(var_name) or {}
        if override.get("options") and len(override["options"]) != len(var.options):
            raise CurationError(f"{GSS_TEXT_FILE.name}: {var_name} gives {len(override['options'])} options for {len(var.options)} codes")
        options = [_option_text(o) for o in (override.get("options") or var.options)]
        if override:
            _report(report, "repaired", item, "repair", "curated_text", override["reason"])
            row_repairs.append(f"curated_text: {override['reason']}")
        if override.get("question"):
            question = _clean_text(override["question"])
        elif not var.question.strip():
            _report(report, "excluded", item, "review", "no_question_text",
                    f"the documentation has no question text, only the label {var.label!r}, and the wording the "
                    "respondents heard is not in the sources")
            continue
        else:
            question, text_rules = gss_text.normalise(_clean_text(var.question or var.label), len(var.question))
            if text_rules:
                detail = f"questionnaire text normalised by rule ({', '.join(text_rules)})"
                _report(report, "repaired", item, "repair", "questionnaire_text", detail)
                row_repairs.append(f"questionnaire_text: {detail}")
        codes = list(var.codes)
        numeric = is_numeric_scale(var.options)
        ordinal = numeric or is_ordinal(var.options)
        if override.get("ordinal") is not None:
            ordinal = bool(override["ordinal"])
        labels = list(var.options)  # the documentation's labels, aligned with options and codes
        residual = [i for i, o in enumerate(options) if ordinal and lint.is_residual(o)]
        if residual:
            dropped = [options[i] for i in residual]
            detail = (f"residual answer(s) {dropped} outside the ordered scale dropped; the distribution is "
                      "renormalised over the scale's answers")
            _report(report, "repaired", item, "repair", "residual_answer", detail)
            row_repairs.append(f"residual_answer: {detail}")
            keep = [i for i in range(len(options)) if i not in residual]
            options, codes, labels = [options[i] for i in keep], [codes[i] for i in keep], [labels[i] for i in keep]
        answered = np.isin(column, codes)
        if answered.sum() < gss.MIN_RESPONDENTS:
            _report(report, "excluded", item, "microdata", "too_few_respondents",
                    f"{int(answered.sum())} substantive answers among the weighted {year} cross-section")
            continue
        # No non-substantive option (refused, don't know), and no volunteered or residual answer nobody
        # gave this year (a phone-only answer the web form did not show): no respondent could choose it
        # as a position. A point of the asked scale that nobody chose stays (share 0): dropping it would
        # misstate the question ("rate from 0 to 10" with options 1 to 10).
        unused = [i for i, c in enumerate(codes)
                  if gss.not_offered(var_name, labels[i])
                  or (not (column == c).any() and gss.MODE_ONLY_LABEL.search(labels[i]))]
        if unused:
            detail = (f"non-substantive or unused option(s) {[options[i] for i in unused]} removed (their answers "
                      f"count in volunteered_share)")
            _report(report, "repaired", item, "repair", "nonsubstantive_option", detail)
            row_repairs.append(f"nonsubstantive_option: {detail}")
            keep = [i for i in range(len(codes)) if i not in unused]
            options, codes, labels = [options[i] for i in keep], [codes[i] for i in keep], [labels[i] for i in keep]
            answered = np.isin(column, codes)
        construct = constructs.get(var_name)
        if construct is None:
            raise CurationError(f"GSS item {var_name!r} is included but has no class in construct.yaml; classify it "
                                f"by the rule in review.CONSTRUCT_RULE")
        if not construct.scored:
            _report(report, "excluded", item, "construct", "not_an_attitude", f"{construct.kind}: {construct.reason}")
            continue
        volunteered = gss.volunteered_share(var, labels)
        if volunteered is not None and volunteered > gss.MAX_VOLUNTEERED_SHARE:
            _report(report, "excluded", item, "options", "volunteered_share",
                    f"{volunteered:.1%} of those asked answered outside the options {options} (volunteered, don't "
                    f"know, no answer, refused, can't choose); above {gss.MAX_VOLUNTEERED_SHARE:.0%}")
            continue
        universe_rates = universe.check(item, frame, cells, answered, nonsubstantive_share(var) or 0.0,
                                        universe_of.get(var_name))
        if var_name in universe_of:
            report.setdefault("universe", []).append(
                {"item": f"{item}.en", "universe": universe_of[var_name].sentence, **universe_rates})
        answers = column[answered].astype(int)
        weight_name = microdata.item_weight(frame, answered, item)
        weights = panel.weights[weight_name][answered]
        shares = microdata.weighted_shares(answers, weights, codes)
        deff = microdata.design_effect(weights)
        index = np.full(len(column), -1, dtype=np.int8)
        index[answered] = microdata.positions(answers, codes)
        group_masks = [(t, g, m[answered]) for t, g, m in masks]
        topic = next((f for f in var.families if f != "Core"), var.families[0] if var.families else "General")
        rows.append(
            {
                "id": f"{item}.en",
                "culture": "US",
                "config": "US" if year == gss.YEAR else f"US_{year}",
                "language": "en",
                "is_native_language": True,
                "source": "GSS",
                "source_year": int(year),
                "source_variable": var_name,
                "question": question,
                "options": options,
                "option_codes": codes,
                "question_type": "scale" if numeric else "single_choice",
                "ordinal": ordinal,
                "human_distribution": (shares / shares.sum()).tolist(),
                "human_n": int(answered.sum()),
                "human_nonsubstantive_share": nonsubstantive_share(var),
                "value_dimensions": list(tag.dimensions),
                "value_dimension_rationale": tag.rationale,
                "topic": topic,
                "demographics": microdata.demographics(answers, weights, group_masks, codes, int(year)),
                "parallel_id": f"gss.{var_name}",
                "battery": batteries.gss(var_name, var.families, f"gss.{var_name}"),
                "repairs": row_repairs,
                "construct": construct.kind,
                "universe": universe_of[var_name].sentence if var_name in universe_of else None,
                "volunteered_share": volunteered,
                "design_effect": deff,
                "human_n_effective": int(answered.sum()) / deff,
                "respondents_weight": weight_name,
                respondents.PRIVATE_KEY: respondents.ItemAnswers(panel, index, weight_name),
            }
        )
    return rows


def wvs_rows(sources: Path, review: dict, tags: dict, report: dict) -> list[dict[str, Any]]:
    src = wvs.WvsSources.read(sources / "wvs7", WVS_ENGLISH_FILE, WVS_NATIVE_FILE)
    batteries = battery.BatteryRules.load()
    items, issues = wvs.adapt_all(src)
    constructs = load_constructs(wvs.CONSTRUCT_FILE)
    for issue in issues:
        entry = {"item": issue.item, "stage": "repair", "rule": issue.kind, "reason": issue.detail}
        report["excluded" if issue.action == "excluded" else "repaired"].append(entry)
    repairs_by_item: dict[str, list[str]] = {}
    for issue in issues:
        if issue.action == "repaired":
            repairs_by_item.setdefault(issue.item, []).append(f"{issue.kind}: {issue.detail}")
    rows = []
    for item in items:
        decision = review.get(f"wvs:{item.qid}")
        if decision is None:
            raise CurationError(f"WVS item {item.qid} has no review decision 'wvs:{item.qid}' in {REVIEW_FILE.name}")
        if decision["decision"] == "exclude":
            report["excluded"].append({"item": f"wvs7.{item.country}.{item.qid}", "stage": "review",
                                       "rule": "curated", "reason": decision["reason"]})
            continue
        construct = constructs.get(item.qid)
        if construct is None:
            raise CurationError(f"WVS item {item.qid} has no class in {wvs.CONSTRUCT_FILE.name}; classify it by the "
                                "rule in review.CONSTRUCT_RULE")
        if not construct.scored:
            report["excluded"].append({"item": f"wvs7.{item.country}.{item.qid}", "stage": "construct",
                                       "rule": "not_an_attitude", "reason": f"{construct.kind}: {construct.reason}"})
            continue
        tag = tags.get(f"wvs:{item.qid}")
        if tag is None:
            raise CurationError(f"WVS item {item.qid} has no entry 'wvs:{item.qid}' in {DIMENSIONS_FILE.name}")
        tag_key = f"wvs7.{item.country}.{item.qid}"
        base = {
            "culture": item.country,
            "source": "WVS",
            "source_year": wvs.SURVEY_YEARS[item.country],
            "source_variable": item.qid,
            "option_codes": item.codes,
            "question_type": item.question_type,
            "ordinal": item.ordinal,
            "human_distribution": item.distribution,
            "config": item.country,
            "human_n": int(round(wvs.SAMPLE_SIZES[item.country] * item.substantive_share)),
            "human_nonsubstantive_share": None,
            "value_dimensions": list(tag.dimensions),
            "value_dimension_rationale": tag.rationale,
            "topic": item.category,
            "demographics": [],
            "design_effect": None,  # the aggregates carry no weights or design information
            "human_n_effective": None,
            "respondents_weight": None,
            "parallel_id": f"wvs7.{item.qid}",
            "battery": batteries.wvs(item.qid, f"wvs7.{item.qid}"),
            "repairs": repairs_by_item.get(tag_key, []),
            "construct": construct.kind,
        }
        rows.append(
            {**base, "id": f"{tag_key}.{item.language}", "language": item.language, "is_native_language": True,
             "question": _clean_text(item.question), "options": item.options}
        )
        if item.language != "en":
            if item.english_question is None or item.english_options is None:
                raise ValidationError(f"{tag_key} has no English wording; every non-English item needs its parallel")
            rows.append(
                {**base, "id": f"{tag_key}.en", "language": "en", "is_native_language": False,
                 "question": _clean_text(item.english_question), "options": list(item.english_options)}
            )
    comparable = wvs.comparable_questions(rows)
    for row in rows:
        row["comparable"] = row["source_variable"] in comparable
    return rows


def validate(rows: list[dict[str, Any]]) -> None:
    """Check the contract on every row; raise naming the row and the problem."""
    seen: set[str] = set()
    for row in rows:
        rid = row["id"]
        if rid in seen:
            raise ValidationError(f"duplicate id {rid!r}")
        seen.add(rid)
        dist, options = row["human_distribution"], row["options"]
        if len(dist) != len(options) or len(row["option_codes"]) != len(options):
            raise ValidationError(f"{rid}: {len(options)} options, {len(dist)} shares, {len(row['option_codes'])} codes")
        if any((not math.isfinite(x)) or x < 0 for x in dist) or abs(sum(dist) - 1) > 1e-6:
            raise ValidationError(f"{rid}: human_distribution {dist} is not a probability vector")
        if len(options) < 2 or any(not str(o).strip() for o in options):
            raise ValidationError(f"{rid}: options {options!r} need at least two non-empty texts")
        text = row["question"] + " " + " ".join(options)
        if wvs.detect_script_language(text) != row["language"]:
            raise ValidationError(f"{rid}: text is in {wvs.detect_script_language(text)!r}, language says {row['language']!r}")
        if set(row["value_dimensions"]) - set(VALUE_DIMENSIONS):
            raise ValidationError(f"{rid}: unknown value dimensions {row['value_dimensions']}")
        if not row["value_dimension_rationale"]:
            raise ValidationError(f"{rid}: no value-dimension rationale")
        for group in row["demographics"]:
            if len(group["distribution"]) != len(options) or abs(sum(group["distribution"]) - 1) > 1e-6:
                raise ValidationError(f"{rid}: demographic group {group['group']} has a bad distribution")


def write_parquet(rows: list[dict[str, Any]], out: Path) -> dict[str, str]:
    """One zstd parquet file per config, named by its content (``schema.data_file_name``);
    returns config -> path relative to ``out`` (what the card's ``configs`` list)."""
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.parquet"):
        old.unlink()
    files = {}
    for config in sorted({r["config"] for r in rows}):
        part = sorted((r for r in rows if r["config"] == config), key=lambda r: r["id"])
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), sink, compression="zstd", write_statistics=False)
        payload = sink.getvalue().to_pybytes()
        name = data_file_name(config, payload)
        (data / name).write_bytes(payload)
        files[config] = f"data/{name}"
    return files


def collect(sources: Path = DEFAULT_SOURCES) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every row the sources give after the rules, the review and the repairs; and the report so far."""
    sources = Path(sources)
    if not (sources / "gss").is_dir() or not (sources / "wvs7").is_dir():
        raise FileNotFoundError(f"Sources not found at {sources}: expected gss/ and wvs7/ (see ../shared/sources/README.md)")
    report: dict[str, Any] = {"builder_version": BUILDER_VERSION, "excluded": [], "repaired": []}
    review, tags = load_review(), load_tags()
    rows = [r for year in gss.YEARS for r in gss_rows(sources, review, tags, report, year)]
    rows += wvs_rows(sources, review, tags, report)
    report["wording_review"] = wording_review({r["id"] for r in rows})
    for row in rows:  # GSS items are asked in the US only: never comparable across the four cultures
        row.setdefault("comparable", False)
    return rows, report


def machine_independent(value: Any) -> Any:
    """``value`` with every float (in nested lists and dicts too) rounded to ``FLOAT_DIGITS``
    significant digits, so the written bytes do not depend on the machine's summation order."""
    if isinstance(value, float):
        return float(f"{value:.{FLOAT_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: machine_independent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [machine_independent(v) for v in value]
    return value


def finish(rows: list[dict[str, Any]], report: dict[str, Any], out: Path = DEFAULT_OUT,
           card_copy: Path | None = None) -> dict[str, Any]:
    """Validate and lint ``rows``; write the folder, or only build_report.json and raise on a finding."""
    out = Path(out)
    rows = [machine_independent(row) for row in rows]
    respondent_tables = respondents.tables(rows)
    rows = respondents.strip(rows)
    out.mkdir(parents=True, exist_ok=True)
    validate(rows)
    findings = lint.lint(rows, load_yaml_file(LINT_ALLOW_FILE))
    report["lint_findings"] = [f.to_dict() for f in findings]
    report["lint_findings_by_kind"] = dict(sorted(Counter(f.kind for f in findings).items()))
    report["excluded"].sort(key=lambda e: (e["item"], e["rule"]))
    report["repaired"].sort(key=lambda e: (e["item"], e["rule"]))
    report["excluded_by_rule"] = dict(sorted(Counter(e["rule"] for e in report["excluded"]).items()))
    report["repaired_by_rule"] = dict(sorted(Counter(e["rule"] for e in report["repaired"]).items()))
    if findings:
        _write_report(report, out)
        raise lint.LintError(findings)
    report["data_files"] = write_parquet(rows, out)
    report["respondents_files"] = respondents.write(respondent_tables, out)
    report["batteries_per_config"] = battery.summary(rows)
    report["respondents_per_config"] = {c: {"respondents": t.num_rows, "items": len(respondents.item_columns(t.schema))}
                                        for c, t in sorted(respondent_tables.items())}
    report["rows_per_config"] = dict(sorted(Counter(r["config"] for r in rows).items()))
    report["rows"] = len(rows)
    report["distinct_human_distributions"] = len({(r["source"], r["source_variable"], r["culture"], r["source_year"])
                                                  for r in rows})
    _write_report(report, out)
    text = card.render(rows, report)
    (out / "README.md").write_text(text, encoding="utf-8")
    if card_copy is not None:
        Path(card_copy).write_text(text, encoding="utf-8")
    return report


def _write_report(report: dict[str, Any], out: Path) -> None:
    with open(out / "build_report.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.write("\n")


def build(sources: Path = DEFAULT_SOURCES, out: Path = DEFAULT_OUT, card_copy: Path | None = None) -> dict[str, Any]:
    """Build the dataset folder; return the build report. Raises ``LintError`` on any lint finding."""
    started = time.perf_counter()
    rows, report = collect(sources)
    report = finish(rows, report, out, card_copy)
    log.info("built %d rows (%s) in %.1fs -> %s", len(rows), report["rows_per_config"], time.perf_counter() - started, out)
    return report
