"""WVS-7 adapter: per-country aggregates -> questions, with every known defect detected.

The aggregate files come from a third-party benchmark and carry defects (see
../shared/sources/README.md). Each check below either repairs an item from the codebook /
question metadata by question id, or excludes it; both are recorded as ``Issue`` objects
that the build report lists, so nothing passes silently.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesim.dataset_builder.lint import RESIDUAL_RE

COUNTRIES: dict[str, str] = {"US": "en", "CN": "zh", "JP": "ja", "EG": "ar"}
COUNTRY_NAMES = {"US": "United States", "CN": "China", "JP": "Japan", "EG": "Egypt"}
# Unweighted national sample sizes of WVS wave 7 (WVS-7 documentation, v5/v6 release):
# the aggregates carry shares only, so this is the respondent base behind each item before
# item non-response. Documented in the card as an upper bound.
SAMPLE_SIZES = {"US": 2596, "CN": 3036, "JP": 1353, "EG": 1200}
SURVEY_YEARS = {"US": 2017, "CN": 2018, "JP": 2019, "EG": 2018}

#: Curated list batteries (see WvsSources.list_question); read by default so every reader gets the questions.
BATTERIES_FILE = Path(__file__).resolve().parent / "curation" / "wvs_batteries.yaml"

SUM_TOLERANCE = 0.02  # shares summing within this of 1 differ by rounding only
MIN_MASS = 0.6  # below this the distribution is truncated, not just missing DK/NA
# A 10-point scale reduced to two codes: when the two codes carry the sample (minus DK/NA) the source
# cut the scale in two; when they carry little, it kept only the scale's end points. Both are excluded
# (see adapt_item); the threshold only words the reason.
COLLAPSE_MIN_MASS = 0.7
#: The words of the build report's reason for a scale kept only at its end points (the card counts by them).
_ENDPOINTS_ONLY = "only the scale's end points were kept"
# Identical non-trivial distributions for one question in two countries mean one file copied
# the other's record (seen: the JP justifiability items inside the US file).
DUPLICATE_MAX_SHARE = 0.9

_OPTION_RE = re.compile(r"^\s*(\d+)\s*[.．、)]\s*(.*)$")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass
class Issue:
    """One detected defect and what was done about it."""

    item: str
    kind: str
    action: str  # "repaired" or "excluded"
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"item": self.item, "kind": self.kind, "action": self.action, "detail": self.detail}


@dataclass
class WvsItem:
    """One clean WVS question for one country, in its native language (maybe also English)."""

    country: str
    qid: str
    language: str
    question: str
    options: list[str]
    codes: list[int]
    distribution: list[float]
    ordinal: bool
    question_type: str
    category: str
    source_topic: str
    english_question: str | None = None
    english_options: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    #: Share of the national sample behind ``distribution``: the source's shares summed (below 1 where
    #: don't know / no answer were dropped), times the kept share when residual answers were dropped.
    substantive_share: float = 1.0


def detect_script_language(text: str) -> str:
    """Which of en/zh/ja/ar a text is written in, by script (enough for these four)."""
    text = unicodedata.normalize("NFKC", text)
    if _KANA.search(text):
        return "ja"
    if _ARABIC.search(text):
        return "ar"
    if _HAN.search(text):
        return "zh"
    return "en"


def parse_option(option: str) -> tuple[int, str] | None:
    m = _OPTION_RE.match(unicodedata.normalize("NFKC", option))
    if not m:
        return None
    return int(m.group(1)), m.group(2).strip()


def _clean_label(label: str) -> str:
    label = label.strip()
    return label[:1].upper() + label[1:] if label else label


@dataclass
class WvsSources:
    aggregates: dict[str, list[dict[str, Any]]]
    codebook: dict[str, Any]
    metadata: dict[str, Any]
    english: dict[str, Any]
    native: dict[str, Any] = field(default_factory=dict)
    #: List questions the source split into one yes/no question per listed thing (curation/wvs_batteries.yaml).
    batteries: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path, english_overrides: str | Path | None = None,
             native_overrides: str | Path | None = None, batteries: str | Path | None = BATTERIES_FILE) -> "WvsSources":
        folder = Path(folder)
        aggregates = {}
        for country in COUNTRIES:
            with open(folder / f"wvs7_{country}_aggregates.json", encoding="utf-8") as fh:
                aggregates[country] = json.load(fh)["examples"]
        with open(folder / "wvs7_codebook.json", encoding="utf-8") as fh:
            codebook = json.load(fh)
        with open(folder / "wvs7_question_metadata.json", encoding="utf-8") as fh:
            metadata = json.load(fh)
        english: dict[str, Any] = {}
        if english_overrides and Path(english_overrides).exists():
            import yaml

            with open(english_overrides, encoding="utf-8") as fh:
                english = yaml.safe_load(fh) or {}
        native: dict[str, Any] = {}
        if native_overrides and Path(native_overrides).exists():
            import yaml

            with open(native_overrides, encoding="utf-8") as fh:
                native = yaml.safe_load(fh) or {}
        lists: dict[str, Any] = {}
        if batteries and Path(batteries).exists():
            import yaml

            with open(batteries, encoding="utf-8") as fh:
                lists = yaml.safe_load(fh) or {}
        return cls(aggregates, codebook, metadata, english, native, lists)

    def list_question(self, qid: str, language: str) -> tuple[str, str] | None:
        """(question, reason) for an item of a curated list battery in ``language``; None for other items.

        The question names the whole list, the number a respondent could choose and the item, as the
        questionnaire asked it (see curation/wvs_batteries.yaml).
        """
        for name, battery in self.batteries.items():
            items = battery.get("items") or {}
            if qid not in items:
                continue
            try:
                stem, sep = battery["stem"][language], battery["separator"][language]
                listed = sep.join(str(labels[language]) for labels in items.values())
                return stem.format(list=listed, item=items[qid][language]), str(battery["reason"]).strip()
            except KeyError as missing:
                raise ValueError(f"wvs_batteries.yaml: battery {name!r} lacks {missing} for {qid} in {language!r}; "
                                 "give every item and the stem in en, zh, ja and ar") from None
        return None

    def codebook_choices(self, qid: str) -> dict[int, str]:
        choices = (self.codebook.get(qid) or {}).get("choices") or {}
        return {int(k): v for k, v in choices.items() if not k.startswith("-")}

    def us_english(self, qid: str, codes: list[int]) -> tuple[str, list[str]] | None:
        """The US file's own English wording of a question, when it is in English and has these codes."""
        for raw in self.aggregates.get("US", []):
            if raw.get("id") != qid:
                continue
            parsed = [parse_option(o) for o in raw.get("options") or []]
            text = raw.get("question_text") or ""
            if any(p is None for p in parsed) or detect_script_language(text + " ".join(raw["options"])) != "en":
                return None
            by_code = {p[0]: p[1] for p in parsed}  # type: ignore[index]
            if sorted(by_code) != sorted(codes):
                return None
            return text.strip(), [_clean_label(by_code[c]) for c in codes]
        return None

    def scale(self, qid: str) -> tuple[int, int] | None:
        meta = self.metadata.get(qid) or {}
        lo, hi = meta.get("answer_scale_min"), meta.get("answer_scale_max")
        if lo in ("", None) or hi in ("", None):
            return None
        return int(lo), int(hi)


def _english_from_codebook(src: WvsSources, qid: str, codes: list[int]) -> tuple[str, list[str]] | None:
    """English wording for an item whose codes are the codebook's full code list."""
    meta = src.metadata.get(qid) or {}
    choices = src.codebook_choices(qid)
    if not meta.get("question") or not all(c in choices for c in codes):
        return None
    labels = [choices[c] for c in codes]
    if sum(1 for lbl in labels if lbl.strip().isdigit()) > 0:
        # A 1-10 scale: only the endpoints have words; the metadata wording explains them.
        labels = [lbl if not lbl.strip().isdigit() else lbl.strip() for lbl in labels]
    return meta["question"], [_clean_label(lbl) for lbl in labels]


def _english_override(src: WvsSources, qid: str, country: str) -> tuple[str, list[str]] | None:
    entry = src.english.get(qid) or {}
    per_country = entry.get(country) or entry.get("all")
    if not per_country:
        return None
    return per_country["question"], list(per_country["options"])


_SCALE_PREFIX = re.compile(r"^On a scale of (\d+) to (\d+), \d+ meaning '[^']*' and \d+ meaning '[^']*',\s*")
# Slips in the metadata's English wording, corrected (each is a grammar error, not a wording choice).
_GRAMMAR = [
    ("how much you trust", "how much do you trust"),
    ("how often you or your family have experienced", "how often have you or your family experienced"),
    ("if it in the near future", "if it were to happen in the near future"),
    ("how often you use", "how often do you use"),
    ("statement at it pertains", "statement as it pertains"),
    ("religious mean?", "religious means?"),
    ("how justifiable is death penalty?", "how justifiable is the death penalty?"),
    ("statement: nowadays", "statement: Nowadays"),
]
_TERMINAL_EN = tuple("?.!")


def full_english_question(src: "WvsSources", qid: str, n_options: int, labelled: bool) -> str | None:
    """The metadata's full English question, without its generated scale preamble when the options say it."""
    text = ((src.metadata.get(qid) or {}).get("question") or "").strip()
    if not text:
        return None
    m = _SCALE_PREFIX.match(text)
    if m and (labelled or int(m.group(2)) - int(m.group(1)) + 1 != n_options):
        text = text[m.end():]
    for wrong, right in _GRAMMAR:
        text = text.replace(wrong, right)
    return text[:1].upper() + text[1:]


def english_wording(src: "WvsSources", qid: str, country: str,
                    codes: list[int]) -> tuple[tuple[str, list[str]] | None, str | None]:
    """(English question and options, what was repaired) for one item.

    A curated override wins (its reason is the repair note, so the build report shows it). Otherwise
    the US file's own English, unless its question is a fragment (a battery item without its stem,
    no closing punctuation) -- then the metadata's full question -- and unless its options repeat
    one another (Q143 "A good deal" twice) -- then the codebook's labels.
    """
    listed = src.list_question(qid, "en")
    if listed:
        options = next(b["options"]["en"] for b in src.batteries.values() if qid in (b.get("items") or {}))
        if len(options) != len(codes):
            raise ValueError(f"wvs_batteries.yaml: {qid} has {len(codes)} codes but English options {options}")
        if not all(isinstance(o, str) for o in options):
            raise ValueError(f"wvs_batteries.yaml: options {options!r} must be quoted strings (YAML reads Yes/No as booleans)")
        return (listed[0], list(options)), f"list question restored: {listed[1]}"
    override = _english_override(src, qid, country)
    if override:
        reason = str((src.english.get(qid) or {}).get("note") or "").strip()
        if not reason:
            raise ValueError(f"wvs_english.yaml: {qid} has a curated wording but no 'note' saying why; add one")
        return override, f"curated English wording: {reason}"
    us = src.us_english(qid, codes)
    fallback = _english_from_codebook(src, qid, codes)
    if us is None and fallback is None:
        return None, None
    question, options = us or fallback  # type: ignore[misc]
    notes = []
    labelled = not any(o.strip().isdigit() for o in options)
    full = full_english_question(src, qid, len(codes), labelled)
    if full and (not question.rstrip().endswith(_TERMINAL_EN) or len(question.split()) < 4 or
                 _SCALE_PREFIX.match(question)):
        notes.append(f"English question {question!r} is a fragment: the full question from the WVS metadata is used")
        question = full
    if len({o.lower() for o in options}) != len(options):
        choices = src.codebook_choices(qid)
        if all(c in choices for c in codes):
            notes.append(f"English options {options} repeat one another: the codebook's labels are used")
            options = [_clean_label(choices[c]) for c in codes]
    options = [_clean_label(o) for o in options]
    question = question.strip()
    question = question[:1].upper() + question[1:]
    return (question, options), ("; ".join(notes) or None)


_LATIN_GLOSS = re.compile(r"[（(]\s*[A-Za-z][A-Za-z ,'-]*[）)]")
_NATIVE_TERMINAL = tuple("?？。！!.؟:：」』”\"")


def _repair_native(src: "WvsSources", tag: str, qid: str, language: str, question: str, issues: list[Issue]) -> str:
    """Curated native stems, English glosses in zh/ja text, closing punctuation of battery items."""
    listed = src.list_question(qid, language)
    if listed:
        issues.append(Issue(tag, "list_question", "repaired", listed[1]))
        return listed[0]
    entry = src.native.get(qid) or {}
    if entry.get(language):
        issues.append(Issue(tag, "native_stem", "repaired", str(entry.get("reason", "")).strip()))
        return str(entry[language]).strip()
    if language in ("zh", "ja") and _LATIN_GLOSS.search(question):
        gloss = _LATIN_GLOSS.search(question).group(0)
        issues.append(Issue(tag, "latin_gloss", "repaired",
                            f"English gloss {gloss!r} left by the machine translation removed"))
        question = _LATIN_GLOSS.sub("", question)
    if not question.rstrip().endswith(_NATIVE_TERMINAL):
        if language == "ar":
            mark = "؟" if re.match(r"^(هل|كم|ما|إلى أي مدى|كيف|أي)", question) else "."
        elif question.rstrip().endswith(("か", "吗", "呢")):
            mark = "？"
        else:
            mark = "。"
        issues.append(Issue(tag, "closing_punctuation", "repaired",
                            f"the battery item ends without punctuation: {mark!r} added"))
        question = question.rstrip() + mark
    return question


def collapsed_scale_reason(scale: tuple[int, int], dist: dict[int, float]) -> str:
    """Why a 10-point scale the source reduced to two codes cannot be asked (the build report's words)."""
    codes, mass = sorted(dist), sum(dist.values())
    if mass < COLLAPSE_MIN_MASS:
        return (f"{scale[0]}-{scale[1]} scale reduced to codes {codes} carrying only {mass:.2f} of respondents: "
                f"{_ENDPOINTS_ONLY}, the middle is lost and no source holds it")
    return (f"{scale[0]}-{scale[1]} scale cut in two by the source (codes {codes}, {mass:.2f} of respondents) at a "
            "point it does not document; the full scale is in no source file, and a two-way question that "
            "states its cut cannot be written without knowing the cut")


def adapt_item(src: WvsSources, country: str, raw: dict[str, Any], issues: list[Issue]) -> WvsItem | None:
    """Check one aggregate record; repair or exclude (recording an Issue); return the clean item."""
    qid = raw.get("id") or f"Q{raw.get('question_id')}"
    tag = f"wvs7.{country}.{qid}"
    native = COUNTRIES[country]
    meta = src.metadata.get(qid)
    if not meta:
        if qid not in src.codebook:
            issues.append(Issue(tag, "unknown_question", "excluded", f"{qid} is in neither the metadata nor the codebook"))
            return None
        # Postmaterialist first choices (Q152-Q156) and Q42 are in the codebook only: nominal items.
        meta = {"question": src.codebook[qid]["question"], "category": "Postmaterialist Index" if qid != "Q42" else
                "Political Culture and Political Regimes", "answer_data_type": "non_ordinal"}

    parsed = [parse_option(o) for o in raw.get("options") or []]
    if not parsed or any(p is None for p in parsed):
        issues.append(Issue(tag, "unparseable_options", "excluded", f"options {raw.get('options')!r} are not 'N. text'"))
        return None
    opt_codes = [p[0] for p in parsed]  # type: ignore[index]
    opt_texts = {p[0]: p[1] for p in parsed}  # type: ignore[index]
    dist = {int(k): float(v) for k, v in (raw.get("distribution") or {}).items()}
    if any(v < 0 or v != v for v in dist.values()):
        issues.append(Issue(tag, "invalid_share", "excluded", f"negative or NaN share in {dist}"))
        return None
    choices = src.codebook_choices(qid)
    scale = src.scale(qid)
    notes: list[str] = []

    # Defect: a 10-point scale collapsed to two codes. Respondents answered on the full scale; the
    # source kept either its two end points or a two-way split at a point it does not document, and
    # no source file holds the scale's other points. A truthful two-way question would have to state
    # the cut (1-5 vs 6-10, or 1 vs 2-10, ...), which nothing in the sources tells, so the item goes.
    collapsed = scale is not None and scale[1] - scale[0] + 1 >= 10 and len(dist) == 2
    if collapsed:
        issues.append(Issue(tag, "collapsed_scale", "excluded", collapsed_scale_reason(scale, dist)))
        return None

    # Defect: options and distribution codes disagree.
    if set(dist) != set(opt_codes):
        extra = sorted(set(dist) - set(opt_codes))
        missing = sorted(set(opt_codes) - set(dist))
        if extra and all(dist[c] == 0 for c in extra) and not any(c in choices for c in extra):
            for c in extra:
                del dist[c]
            issues.append(Issue(tag, "option_count_mismatch", "repaired",
                                f"distribution code(s) {extra} have share 0 and no codebook label: dropped"))
        elif not extra and missing and sum(dist.values()) >= 1 - SUM_TOLERANCE:
            for c in missing:
                dist[c] = 0.0
            issues.append(Issue(tag, "option_count_mismatch", "repaired",
                                f"option code(s) {missing} absent from a complete distribution: share 0"))
        else:
            issues.append(Issue(tag, "option_count_mismatch", "excluded",
                                f"{len(opt_codes)} options {opt_codes} but distribution codes {sorted(dist)} "
                                f"(mass {sum(dist.values()):.2f}); cannot tell which shares belong to which answer"))
            return None

    # Defect: shares not summing to 1.
    mass = sum(dist.values())
    if mass > 1 + SUM_TOLERANCE:
        issues.append(Issue(tag, "bad_sum", "excluded", f"shares sum to {mass:.3f} > 1: inconsistent record"))
        return None
    if mass < MIN_MASS:
        issues.append(Issue(tag, "bad_sum", "excluded", f"shares sum to {mass:.3f}: most of the distribution is missing"))
        return None
    if abs(mass - 1) > 1e-9:
        reason = "rounding" if abs(mass - 1) <= SUM_TOLERANCE else "don't know / no answer dropped by the source"
        issues.append(Issue(tag, "bad_sum", "repaired", f"shares sum to {mass:.3f} ({reason}): renormalised"))

    codes = sorted(opt_codes, key=lambda c: opt_codes.index(c))
    # Source order: by code, so ordinal scales read low -> high whatever order the file lists.
    codes = sorted(codes)
    distribution = [dist[c] / mass for c in codes]
    options_native = [opt_texts[c] for c in codes]

    # Defect: topic label in another language / not the WVS category.
    category = meta.get("category") or ""
    source_topic = raw.get("topic") or ""
    if detect_script_language(source_topic) != "en" or source_topic.lower() not in category.lower():
        notes.append(f"topic {source_topic!r} replaced by WVS category {category!r}")
        issues.append(Issue(tag, "topic_label", "repaired",
                            f"source topic {source_topic!r} is not the WVS category: topic set to {category!r}"))

    question = (raw.get("question_text") or "").strip()
    text_lang = detect_script_language(question + " " + " ".join(options_native))
    english, english_note = english_wording(src, qid, country, codes)
    if english_note:
        issues.append(Issue(tag, "english_wording", "repaired", english_note))
    if text_lang != native:
        # Defect: item written in another language than the country's.
        if native == "en" and english:
            issues.append(Issue(tag, "wrong_language", "repaired",
                                f"text is in {text_lang!r}, not {native!r}: English wording taken from the "
                                "codebook / curated English file by question id"))
            question, options_native = english
        else:
            issues.append(Issue(tag, "wrong_language", "excluded",
                                f"text is in {text_lang!r}, not {native!r}, and no {native!r} wording exists to repair it"))
            return None
    if native != "en":
        question = _repair_native(src, tag, qid, native, question, issues)
    if native == "en":
        if english:
            question, options_native = english
        english = (question, options_native)
    if english and len(english[1]) != len(codes):
        issues.append(Issue(tag, "english_mismatch", "excluded",
                            f"English wording has {len(english[1])} options for {len(codes)} codes"))
        english = None

    ordinal = meta.get("answer_data_type") == "ordinal"
    residual_mass = 1.0
    residual_source = english[1] if english else options_native
    residual = [i for i, o in enumerate(residual_source) if ordinal and RESIDUAL_RE.match(o.strip())]
    if residual:
        dropped = [residual_source[i] for i in residual]
        keep = [i for i in range(len(codes)) if i not in residual]
        mass = sum(distribution[i] for i in keep)
        codes = [codes[i] for i in keep]
        distribution = [distribution[i] / mass for i in keep]
        options_native = [options_native[i] for i in keep]
        if english:
            english = (english[0], [english[1][i] for i in keep])
        residual_mass = mass
        issues.append(Issue(tag, "residual_answer", "repaired",
                            f"residual answer(s) {dropped} outside the ordered scale dropped; shares renormalised "
                            f"over the scale ({mass:.3f} of the answers)"))
    numeric_scale = all(t.strip().isdigit() or t == options_native[0] or t == options_native[-1] for t in options_native) and len(codes) >= 7
    return WvsItem(
        country=country,
        qid=qid,
        language=native,
        question=question,
        options=options_native,
        codes=codes,
        distribution=distribution,
        ordinal=ordinal,
        question_type="scale" if numeric_scale else "single_choice",
        category=category,
        source_topic=source_topic,
        english_question=english[0] if english else None,
        english_options=english[1] if english else None,
        notes=notes,
        substantive_share=min(1.0, sum(dist.values())) * residual_mass,
    )


def copied_records(src: WvsSources) -> dict[tuple[str, str], str]:
    """{(country, qid): other country} for records whose distribution repeats another country's."""
    seen: dict[tuple[str, tuple[tuple[str, float], ...]], list[str]] = {}
    for country, records in src.aggregates.items():
        for raw in records:
            dist = raw.get("distribution") or {}
            # Two-way splits rounded to 0.01 coincide by chance too often to prove a copy.
            if len(dist) < 3 or max(dist.values()) >= DUPLICATE_MAX_SHARE:
                continue
            key = (raw.get("id"), tuple(sorted((k, round(float(v), 4)) for k, v in dist.items())))
            seen.setdefault(key, []).append(country)
    copied = {}
    for (qid, _), countries in seen.items():
        for country in countries if len(countries) > 1 else []:
            copied[(country, qid)] = "/".join(c for c in countries if c != country)
    # A record written in another country's language whose shares equal that country's record
    # is a copy even when the answer is near-unanimous.
    by_language = {lang: country for country, lang in COUNTRIES.items()}
    for country, records in src.aggregates.items():
        for raw in records:
            lang = detect_script_language((raw.get("question_text") or "") + " ".join(raw.get("options") or []))
            other = by_language.get(lang)
            if other is None or other == country:
                continue
            twin = next((r for r in src.aggregates[other] if r.get("id") == raw.get("id")), None)
            if twin is not None and twin.get("distribution") == raw.get("distribution"):
                copied[(country, raw.get("id"))] = other
    return copied


def adapt_all(src: WvsSources) -> tuple[list[WvsItem], list[Issue]]:
    issues: list[Issue] = []
    items = []
    copied = copied_records(src)
    for country, records in src.aggregates.items():
        for raw in records:
            other = copied.get((country, raw.get("id")))
            lang = detect_script_language((raw.get("question_text") or "") + " ".join(raw.get("options") or []))
            if other and lang != COUNTRIES[country]:
                issues.append(Issue(f"wvs7.{country}.{raw.get('id')}", "wrong_language", "excluded",
                                    f"text is in {lang!r}, not {COUNTRIES[country]!r}, and its shares equal the {other} "
                                    "record: it is the other country's item copied in, and this country's answers "
                                    "are not in the source"))
                continue
            if other:
                issues.append(Issue(f"wvs7.{country}.{raw.get('id')}", "copied_record", "excluded",
                                    f"distribution identical to the {other} record of the same question: the file "
                                    "copies another country's answers, so whose answers they are is unknown"))
                continue
            item = adapt_item(src, country, raw, issues)
            if item is not None:
                items.append(item)
    return items, issues


#: The construct of every WVS question (classes and reasons as review.load_constructs reads them).
CONSTRUCT_FILE = Path(__file__).resolve().parent / "curation" / "wvs_construct.yaml"


def comparable_questions(rows: list[dict[str, Any]]) -> set[str]:
    """WVS question ids asked identically in all four cultures: present in each, with one English
    question, one option list and one code list (the US row, the others' English parallels).

    Why: per-culture scores over different items compare different tests; a cross-culture comparison
    is fair only on the items every culture answered in the same form. The English wording stands for
    the question because every native text is a translation of the same master questionnaire.
    """
    forms: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
    for row in rows:
        if row["source"] != "WVS" or row["language"] != "en":
            continue
        form = (row["question"], tuple(row["options"]), tuple(row["option_codes"]))
        forms.setdefault(row["source_variable"], {}).setdefault(row["culture"], set()).add(form)
    return {qid for qid, by_culture in forms.items()
            if set(by_culture) == set(COUNTRIES) and len(set().union(*by_culture.values())) == 1}



def card_section(rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    """The card's WVS paragraph: what happened to the 10-point scales, which items are comparable,
    and per culture how many items are scored, so a reader sees what each culture's score rests on."""
    wvs_rows = [r for r in rows if r["source"] == "WVS" and r["is_native_language"]]
    comparable = sorted({r["source_variable"] for r in wvs_rows if r.get("comparable")}, key=lambda q: int(q[1:]))
    excluded = [e for e in report.get("excluded", []) if e["item"].startswith("wvs7.")]

    def country_of(entry: dict[str, Any]) -> str:
        return entry["item"].split(".")[1]

    collapsed = [e for e in excluded if e["rule"] == "collapsed_scale"]
    ends = [e for e in collapsed if _ENDPOINTS_ONLY in e["reason"]]
    cut = [e for e in collapsed if _ENDPOINTS_ONLY not in e["reason"]]
    construct_out = [e for e in excluded if e["rule"] == "not_an_attitude"]
    lines = ["| culture | scored items | comparable | 10-point scales cut in two | scale end points only | "
             "behaviour, experience or fact |", "|---|---|---|---|---|---|"]
    for country in COUNTRIES:
        mine = [r for r in wvs_rows if r["culture"] == country]
        lines.append(f"| {country} | {len(mine)} | {sum(1 for r in mine if r.get('comparable'))} | "
                     f"{sum(1 for e in cut if country_of(e) == country)} | "
                     f"{sum(1 for e in ends if country_of(e) == country)} | "
                     f"{sum(1 for e in construct_out if country_of(e) == country)} |")
    table = "\n".join(lines)
    return f"""**WVS items.** Respondents answered WVS 10-point scales (life satisfaction, the
justifiability battery, science and technology, importance of God, the economic values Q106–Q110)
on all ten points; the aggregated source kept either the two end points or a two-way split at a
point it does not document, and no source file holds the other points. None could be recovered,
and a truthful two-way question would have to state the cut, so all {len(collapsed)} such
records are excluded with their reason (`collapsed_scale`): {len(cut)} cut in two, {len(ends)}
with the end points only. The child-qualities list (Q7–Q17: choose up to five of eleven) is asked as
that list question in every language, with yes/no options meaning the same in the English parallel.
Behaviours, experiences and facts (religious attendance, prayer, voting, political action, media
use, deprivation, neighbourhood conditions, worries about one's own job) are excluded by the
construct rule (`curation/wvs_construct.yaml`). WVS "Hard to say" (Q122–Q129) and "Don't mind"
(Q43–Q45) are answer categories the questionnaire offered, not non-answers, and stay.

**Comparable items.** `comparable` is true for the {len(comparable)} WVS items asked identically
(one question, one option list) in all four cultures; the culture map and the report's cross-culture
table use only these: {", ".join(comparable)}.

{table}
"""
