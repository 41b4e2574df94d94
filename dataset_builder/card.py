"""The dataset card, generated from the built rows so its numbers can never drift.

The same text is written to the dataset folder's README.md (what the Hub shows) and to the
repository's DATASET_CARD.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from dataset_builder.schema import COLUMN_DOCS, DIMENSION_NAMES, VALUE_DIMENSIONS

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ar": "Arabic"}
CULTURE_NAMES = {"US": "United States", "CN": "China", "JP": "Japan", "EG": "Egypt"}


def _front_matter(rows: list[dict[str, Any]]) -> str:
    configs = sorted({r["config"] for r in rows})
    meta = {
        "pretty_name": "culturesim survey values",
        "license": "other",
        "license_name": "gss-and-wvs-terms",
        "license_details": "GSS: free to use with citation (NORC). WVS-7: free for non-commercial research with citation.",
        "language": sorted({r["language"] for r in rows}),
        "task_categories": ["question-answering"],
        "tags": ["survey", "cultural-alignment", "values", "GSS", "World Values Survey", "DEF", "opinion"],
        "size_categories": ["1K<n<10K"],
        "configs": [
            {
                "config_name": c,
                "data_files": [{"split": "test", "path": f"data/{c}.parquet"}],
                **({"default": True} if c == "US" else {}),
            }
            for c in configs
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _table(header: list[str], body: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render(rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    cultures = sorted({r["culture"] for r in rows})
    by_culture = Counter(r["culture"] for r in rows)
    native = Counter(r["culture"] for r in rows if r["is_native_language"])
    by_source = Counter((r["source"], r["culture"]) for r in rows if r["is_native_language"])
    langs = {c: sorted({r["language"] for r in rows if r["culture"] == c}) for c in cultures}
    demo = sum(1 for r in rows if r["demographics"])
    dims = {d: Counter(r["culture"] for r in rows if d in r["value_dimensions"] and r["is_native_language"])
            for d in VALUE_DIMENSIONS}
    untagged = sum(1 for r in rows if not r["value_dimensions"] and r["is_native_language"])
    distinct = report.get("distinct_human_distributions", 0)
    culture_table = _table(
        ["config", "population", "rows", "native-language questions", "languages", "sources"],
        [[c, CULTURE_NAMES.get(c, c), by_culture[c], native[c], ", ".join(langs[c]),
          ", ".join(f"{s} {n}" for (s, cc), n in sorted(by_source.items()) if cc == c)] for c in cultures],
    )
    dim_table = _table(
        ["dimension", "meaning"] + cultures,
        [[d, DIMENSION_NAMES[d]] + [dims[d][c] for c in cultures] for d in VALUE_DIMENSIONS],
    )
    excluded = report.get("excluded_by_rule", {})
    repaired = report.get("repaired_by_rule", {})
    review_table = _table(["rule", "items excluded"], [[k, v] for k, v in excluded.items()])
    repair_table = _table(["defect", "items repaired"], [[k, v] for k, v in repaired.items()])
    columns = _table(["column", "definition"], [[f"`{k}`", v] for k, v in COLUMN_DOCS.items()])
    return f"""{_front_matter(rows)}
# culturesim survey values

Survey questions about attitudes, values, beliefs and preferences, each with the answer
distribution of a real national population, tagged with nine value dimensions, built to
evaluate how well a language model's answers match those populations (the DEF method of
Liu et al. 2025). {len(rows)} rows: {distinct} distinct human distributions (source ×
variable × culture) from the General Social Survey 2022 (United States) and the World Values
Survey wave 7 (United States, China, Japan, Egypt), plus English parallels of every non-English
question for language ablations. {demo} GSS questions carry answer distributions by sex and age.

Built by `culturesim dataset build` (builder version {report.get('builder_version')}) from the raw
files in `../shared/sources`; every exclusion and repair is listed in `build_report.json`.

## Usage

```python
from datasets import load_dataset

us = load_dataset("path/to/this/folder", "US", split="test")   # or the Hub repo id
row = us[0]
row["question"], row["options"], row["human_distribution"]
```

Score a model's answers with the companion metric:

```python
import evaluate

metric = evaluate.load("metrics/cultural_alignment")            # from a culturesim checkout
metric.compute(predictions=[[0, 1, 1]], references=[row["human_distribution"]])
```

or run the whole DEF simulation: `culturesim simulate --culture US --participants 20 --plan all --out run`.

## Configs and counts

One config per culture, one split (`test`).

{culture_table}

Questions per value dimension (native-language rows; English parallels repeat the same
items). {untagged} native-language rows carry no dimension, each with a stated reason.

{dim_table}

## Sources, citations and licences

- **General Social Survey** (NORC at the University of Chicago, NSF funded). Question wording,
  answer options and unweighted 2022 answer counts from the GSS documentation package `gssrdoc`
  (Kieran Healy, MIT licence, tabulating the GSS cumulative file 1972–2024 R1); sex and age
  breakdowns from the GSS 2020 panel microdata (R package `gssr`). Free to use with citation:
  Davern, M., Bautista, R., Freese, J., Herd, P., and Morgan, S. L. *General Social Survey
  1972–2024*. NORC, University of Chicago. gssdataexplorer.norc.org.
- **World Values Survey wave 7** (2017–2022). Per-country aggregated answer shares from a public
  benchmark repository (world-values-survey-datasets); codebook and question metadata from the
  WorldValuesBench project. Free for non-commercial research with citation: Haerpfer, C.,
  Inglehart, R., Moreno, A., Welzel, C., Kizilova, K., Diez-Medrano J., Lagos, M., Norris, P.,
  Ponarin, E. & Puranen, B. (eds.). 2022. *World Values Survey: Round Seven – Country-Pooled
  Datafile Version 6.0*. Madrid & Vienna: JD Systems Institute & WVSA Secretariat.
  doi:10.14281/18241.24
- Method: Liu et al. (2025). Towards realistic evaluation of cultural value alignment in large
  language models: Diversity enhancement for survey response simulation. *Information
  Processing & Management* 62(4), 104099.

## How items were selected, reviewed, repaired and tagged

**Human distributions.** Only substantive answers count: the GSS labels *iap*, *don't know*,
*no answer*, *skipped on web*, *can't choose*, *refused* and *not available in this year* are
dropped and the rest renormalised; `human_n` is the number of substantive answers.

**Rules in code** (`dataset_builder/gss.py`): a GSS variable must have been asked in 2022, have
2–11 substantive options, at least 200 substantive answers, every option present in the
tabulation, and belong to no module that holds no attitudes (paradata, interviewer items,
sampling and weights, household roster, vocabulary test). Of near-duplicate mode variants of one item
(suffixes `nv`, `v`, `g`, `_next`, `_exp`: web, grid, follow-on and experimental versions) the base form
is kept; wording versions (`x`, `y`, split-ballot wording experiments asked of different respondents)
are distinct questions and are kept.

**Curated review** (`dataset_builder/curation/review.yaml`): every remaining GSS candidate
and every WVS question was read and given a decision with a written reason. Attitudes, values,
beliefs, preferences and subjective evaluations are kept, and so are self-reported behaviours and
experiences (religious and political practice, work and health experiences, lifestyle), which a
simulated participant answers like any other survey item; demographics, household rosters,
factual or knowledge tests, paradata, interviewer ratings and further near-duplicates are
excluded. Where the documentation lacks the wording a respondent saw, it is supplied from the
questionnaire in `curation/gss_text.yaml` and the row says so in `repairs`.

{review_table}

**Repairs** (`dataset_builder/wvs.py`): every defect kind of the WVS aggregates is detected.
Items written in another country's language whose shares equal that country's record are
copies and are excluded; records whose distribution repeats another country's exactly (with no
answer above 90%) are excluded as copies; 10-point scales reduced to their two endpoints
(little of the sample left) are excluded, while scales the source dichotomised (two codes
carrying the sample) are kept as two-option items with the source's labels and a curated
English wording (`curation/wvs_english.yaml`); option lists that disagree with the distribution
codes are repaired from the codebook when the difference is an unlabelled zero share and
excluded otherwise; shares are renormalised when they sum to 0.6–1.02 (rounding, or don't
know / no answer dropped by the source) and the item excluded otherwise; topic labels in mixed
languages are replaced by the WVS category. Each repaired row lists its repairs in `repairs`.

{repair_table}

**Value dimensions** (`dataset_builder/curation/value_dimensions.yaml`): one curated entry per
source variable, with a one-line rationale naming the construct of the literature it measures:
Welzel's emancipative values (autonomy, equality, choice, voice), Hofstede's and Minkov's
WVS-based indices (IDV, IVR, LTO, MAS, PDI, UAI) and Schwartz's tradition and universalism.
Tags were assigned by reading each item, not by keyword matching.

## Columns

{columns}

## What the data can and cannot show

- It shows how a population answered fixed questions in one survey year; it does not show why,
  and a model matching a distribution is not evidence of shared reasoning.
- WVS shares come rounded to 0.01 from a third-party aggregation; `human_n` for WVS is the
  national sample size, not the item's respondent count. Dichotomised WVS scales lose the
  original 10-point resolution.
- Sex and age distributions exist only for GSS items, from the 2016/2018/2020 panel (weighted
  with `wtssall`), i.e. from an earlier year than the 2022 marginals; the year is recorded per
  group. WVS items have no demographic breakdowns here.
- Value-dimension tags are a curated judgement: useful to aggregate, not a validated scale.
- Compared with the DEF paper's 1,153-question release, this dataset lacks the CGSS 2018,
  Chinese Social Survey, Pew American Trends Panel and Ipsos / USA Today-Ipsos items (not
  redistributable); China, Japan and Egypt are covered only by WVS items, and no WVS item has
  demographic breakdowns.
"""
