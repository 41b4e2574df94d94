"""The dataset card, generated from the built rows so its numbers can never drift.

The same text is written to the dataset folder's README.md (what the Hub shows) and to the
repository's DATASET_CARD.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from culturesim.dataset_builder import battery, respondents, review, wvs
from culturesim.dataset_builder.gss import MAX_VOLUNTEERED_SHARE
from culturesim.dataset_builder.lint import KINDS as LINT_KINDS
from culturesim.dataset_builder.schema import COLUMN_DOCS, DIMENSION_NAMES
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ar": "Arabic"}
CULTURE_NAMES = {"US": "United States", "CN": "China", "JP": "Japan", "EG": "Egypt"}


def _front_matter(rows: list[dict[str, Any]], files: dict[str, str]) -> str:
    configs = sorted({r["config"] for r in rows} | set(files))  # files also names the respondents configs
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
                "data_files": [{"split": "test", "path": files[c]}],
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


CONFIG_NAMES = {"US": "United States (GSS 2022, WVS 2017)", "US_2024": "United States (GSS 2024)", "CN": "China",
                "JP": "Japan", "EG": "Egypt"}


def render(rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    configs = sorted({r["config"] for r in rows})
    by_config = Counter(r["config"] for r in rows)
    native = Counter(r["config"] for r in rows if r["is_native_language"])
    by_source = Counter((r["source"], r["config"]) for r in rows if r["is_native_language"])
    langs = {c: sorted({r["language"] for r in rows if r["config"] == c}) for c in configs}
    gss = [r for r in rows if r["source"] == "GSS"]
    demo = sum(1 for r in gss if {g["group_type"] for g in r["demographics"]} == {"sex", "age"})
    partial = sum(1 for r in gss if r["demographics"]) - demo
    both_years = len({r["parallel_id"] for r in gss if r["source_year"] == 2022} &
                     {r["parallel_id"] for r in gss if r["source_year"] == 2024})
    dims = {d: Counter(r["config"] for r in rows if d in r["value_dimensions"] and r["is_native_language"])
            for d in VALUE_DIMENSIONS}
    untagged = sum(1 for r in rows if not r["value_dimensions"] and r["is_native_language"])
    distinct = report.get("distinct_human_distributions", 0)
    config_table = _table(
        ["config", "population", "rows", "native-language questions", "languages", "sources"],
        [[c, CONFIG_NAMES.get(c, c), by_config[c], native[c], ", ".join(langs[c]),
          ", ".join(f"{s} {n}" for (s, cc), n in sorted(by_source.items()) if cc == c)] for c in configs],
    )
    dim_table = _table(
        ["dimension", "meaning"] + configs,
        [[d, DIMENSION_NAMES[d]] + [dims[d][c] for c in configs] for d in VALUE_DIMENSIONS],
    )
    excluded = report.get("excluded_by_rule", {})
    repaired = report.get("repaired_by_rule", {})
    review_table = _table(["rule", "items excluded"], [[k, v] for k, v in excluded.items()])
    repair_table = _table(["defect", "items repaired"], [[k, v] for k, v in repaired.items()])
    lint_table = _table(["kind of finding", "what it catches"], [[f"`{k}`", v] for k, v in LINT_KINDS.items()])
    columns = _table(["column", "definition"], [[f"`{k}`", v] for k, v in COLUMN_DOCS.items()])
    return f"""{_front_matter(rows, {**report["data_files"], **report.get("respondents_files", {})})}
# culturesim survey values

Survey questions about attitudes, values, beliefs and preferences, each with the answer
distribution of a real national population, tagged with nine value dimensions, built to
evaluate how well a language model's answers match those populations (the DEF method of
Liu et al. 2025). {len(rows)} rows: {distinct} distinct human distributions (source ×
variable × culture × year) from the General Social Survey 2022 and 2024 (United States) and the
World Values Survey wave 7 (United States, China, Japan, Egypt), plus English parallels of every
non-English question for language ablations. GSS distributions are weighted estimates from the
respondent-level year files; {demo} GSS rows carry answer distributions by sex and by age from the
same respondents ({partial} more carry one of the two), every GSS row carries its design effect and
effective n, and the `US_respondents` and `US_2024_respondents` configs hold the respondents'
answers themselves.

Built by `culturesim dataset build` (builder version {report.get('builder_version')}) from the raw
files in `../shared/sources`; every exclusion, repair and lint finding is listed in
`build_report.json` (the committed build has {len(report.get('lint_findings', []))} lint findings).

## Usage

```python
from datasets import load_dataset

us = load_dataset("path/to/this/folder", "US", split="test")        # or the Hub repo id
us24 = load_dataset("path/to/this/folder", "US_2024", split="test")
row = us[0]
row["question"], row["options"], row["human_distribution"], row["human_n_effective"]
people = load_dataset("path/to/this/folder", "US_respondents", split="test")  # one row per respondent
```

Each config's file is named by its content (`data/US-<sha256 prefix>.parquet`): `datasets` caches a
local folder by its name and file paths, not their content, so a rebuilt folder with fixed file
names would be served from the stale cache; a new content is a new name.

Score a model's answers with the companion metric:

```python
import evaluate

metric = evaluate.load("metrics/cultural_alignment")            # from a culturesim checkout
metric.compute(predictions=[[0, 1, 1]], references=[row["human_distribution"]])
```

or run the whole DEF simulation: `culturesim simulate --culture US --participants 20 --plan all --out run`
(`--culture US_2024` for the 2024 wave).

## Configs and counts

One config per population and survey wave, one split (`test`).

{config_table}

**Why `US_2024` is there.** GSS 2024 was published in 2025, after the training data of most
models in use, while GSS 2022 (published 2023) and its tabulations are likely to be in them.
{both_years} questions were asked in both waves and share a `parallel_id` (e.g. `gss.fefam` for
`gss2022.fefam.en` and `gss2024.fefam.en`). A model that scores much better on the 2022 rows than
on the same questions in 2024 — by more than the real change between the waves and their
sampling noise (`human_n_effective`) suggest — may be reciting memorised survey results rather than simulating
respondents.

Questions per value dimension (native-language rows; English parallels repeat the same
items). {untagged} native-language rows carry no dimension, each with a stated reason.

{dim_table}

## Sources, licences and citations

- **GSS 2022 and 2024 year files** (respondent-level microdata, `gss2022.rds`: 4,149 respondents,
  3,544 in the weighted cross-section; `gss2024.rds`: 3,309 respondents), the NORC releases
  fetched with `gssr::gss_get_yr()` and saved in the MIT-licensed course repositories
  `vaiseys/soc-stats-1` and `vaiseys/soc-stats-2`. **GSS question wording, answer labels and
  non-substantive counts** from the documentation package `gssrdoc` (Kieran Healy, MIT licence,
  tabulating the GSS cumulative file 1972–2024 R1). GSS data are produced by NORC at the
  University of Chicago with NSF funding and are free to use with citation: Davern, M., Bautista,
  R., Freese, J., Herd, P., and Morgan, S. L. *General Social Survey 1972–2024*. NORC, University
  of Chicago. gssdataexplorer.norc.org.
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

The licence of this dataset is the combination of these terms: free use with citation for the
GSS parts, non-commercial research with citation for the WVS parts.

## How the numbers are made

**GSS distributions** (`dataset_builder/microdata.py`). For each question, the cross-section
respondents of the year file (the rows with the post-stratified person weight `wtssps`) who gave a
substantive answer; `human_distribution` is the `wtssps`-weighted share of each answer among them
and `human_n` their unweighted count. Spot check: `fefam` 2022 is 0.0615 / 0.1892 / 0.4371 /
0.3121 (n 2,348); unweighted it would be 0.0579 / 0.1861 / 0.4259 / 0.3301. Before that, the
observed codes of each column are checked against the documentation: codes outside the documented
ones, or counts that differ from the documentation's tabulation (total variation above 0.02 or n
off by more than 5%), are repaired when a shift by one code explains them and excluded otherwise.

**Precision.** Every float is stored rounded to 12 significant digits (`FLOAT_DIGITS` in
`dataset_builder/build.py`), far below any sampling error: the last bits of a sum depend on the
machine's summation order, and the parquet files must be byte-identical when rebuilt anywhere.

**Breakdowns.** The sex (female, male) and age-group (18–29, 30–49, 50+) distributions come from
the same respondents and the same weight, so each family mixes back to the overall distribution
of the respondents whose sex (age) is known: `weight_share` is each group's share of that weight,
and Σ weight_share × distribution equals it within 1e-6 (tested on every row against the
microdata). A group with fewer than 30 answers gets no distribution of its own; the others stay.

**Non-substantive answers.** `human_nonsubstantive_share` is the share of those asked (all but
*iap* and *not available*) who answered don't know, no answer, refused, can't choose or skipped
on web, from the documentation's unweighted counts (the year files code these as missing).
Compare it with a model's refusal rate.

{respondents.card_section(rows, report)}
{battery.card_text(rows)}
{wvs.card_section(rows, report)}
**WVS distributions** come aggregated and rounded to 0.01; they are renormalised over the
substantive answers and `human_n` is the effective n: the national sample size × the share the
source's shares cover (don't know and no answer were dropped by the source), e.g. a Japanese item
whose shares sum to 0.62 has human_n 0.62 × 1,353 = 839.

## How items were selected, repaired, linted and tagged

**Rules in code** (`dataset_builder/gss.py`): a GSS variable must have been asked in the year,
have 2–11 substantive options, at least 200 substantive answers, every option present in the
tabulation, and belong to no module that holds no attitudes (paradata, interviewer items,
sampling and weights, household roster, vocabulary test). Of near-duplicate mode variants of one
item (suffixes `nv`, `v`, `g`, `_next`, `_exp`) the base form is kept.

**Curated review** (`dataset_builder/curation/review.yaml`): every remaining GSS candidate and
every WVS question has a decision and a reason saying why it is in or out; since 3.0 the construct
rule below then keeps only attitudes, values, beliefs and preferences. Out: demographics, household rosters, paradata and knowledge tests; factual items about jobs, pay
and assets (`ownstock`, `unemp`, ...), counts (`brv5cowknum`, `vetyears`, ...), diagnoses
(`hyperten`, ...), life events of the bereavement module (`brv*`, whose follow-ups read "We're very
sorry. Who would that be?"), recode duplicates (`hivtest2`, `hivtest2_0622`, `healthissp`, ...)
and, for 2024, the mental-health vignette items about a randomly assigned person "X" whose
vignette is not in the sources.

{review_table}

**Repairs.** GSS questionnaire text is normalised by rule (`dataset_builder/gss_text.py`):
interviewer instructions in capitals and parenthesised probes removed, battery lettering removed
and the item joined to its stem (item placeholders such as "on (ITEM)?" filled with the item),
alternative fills resolved ("(city/town/community)" → community), named fills written out
("spousepartfill" → spouse or partner), doubled apostrophes and repeated clauses undone, and
lead-ins ending in the options ("Are you …") kept as such. Texts cut by the documentation's
255-character field and ranking items whose list was never shown are curated with a reason in
`curation/gss_text.yaml`. Answer labels are written in sentence case with codebook shorthand in
the respondent's voice ("R does much more than fair share" → "I do much more than my fair share").
Residual answers inside an ordered scale (Other, As many as you want, Not allowed to vote,
Doesn't apply) are dropped and the distribution renormalised. WVS English rows take the full
English question of the WVS metadata where the codebook's short form is a fragment, and the
codebook labels where the source's options repeat; native stems lost by the source (Q43–Q45,
Q51–Q55 in Chinese, Japanese and Arabic) are restored in `curation/wvs_native.yaml`; English
glosses left by machine translation are removed. Each repaired row lists its repairs in `repairs`.

{repair_table}

**The lint** (`dataset_builder/lint.py`) runs inside `culturesim dataset build` over every row
and stops the build on any finding; exceptions are curated in `curation/lint_allow.yaml` with a
reason.

{lint_table}

{review.scope_section(rows, report, MAX_VOLUNTEERED_SHARE)}
**Value dimensions** (`dataset_builder/curation/value_dimensions.yaml`): one curated entry per
source variable, with a rationale naming the construct of the literature it measures (Welzel's
emancipative values; Hofstede's and Minkov's IDV, IVR, LTO, MAS, PDI, UAI; Schwartz's tradition
and universalism), or a reason for having none. Tags were assigned by reading each item.

## Columns

{columns}

## What the data can and cannot show

- It shows how a population answered fixed questions in one survey year; it does not show why,
  and a model matching a distribution is not evidence of shared reasoning.
- GSS sampling error is carried by `design_effect` and `human_n_effective`, the weighting part of
  the design effect only: clustering, not identifiable from the year files, makes the true
  effective sample smaller still.
- WVS shares come rounded to 0.01 from a third-party aggregation; the WVS 10-point scales are not
  here (the source kept only two codes of each); WVS has no demographic breakdowns here.
- Restored native WVS stems are translations of the master questionnaire, not the national
  questionnaires' exact words.
- Value-dimension tags are a curated judgement: useful to aggregate, not a validated scale.
- Compared with the DEF paper's 1,153-question release, this dataset lacks the CGSS 2018,
  Chinese Social Survey, Pew American Trends Panel and Ipsos items (not redistributable); China,
  Japan and Egypt are covered only by WVS items.

## Changes from 2.x

- Builder version 3.0. Scored rows are attitudes, values, beliefs or preferences only (column
  `construct`, rule in "What a row is"); behaviours, experiences and facts (drug use, sexual
  partners, gun ownership, vote recall and intention, doctor visits, sleep, job conditions, ...)
  are excluded with rule `not_an_attitude` (2.x kept them).
- Items asked of a sub-population state it in the prompt (column `universe`); the build refuses an
  item whose answer pattern shows a filter that no universe explains.
- No non-substantive or never-chosen option (2.x offered "Refused", "Don't know/can't remember",
  "Depends on age/grade" with share 0); `volunteered_share` column; rows above the threshold out.
- The `nv` (web, no volunteered answer) forms of US_2024 no longer offer the volunteered answer,
  so their prompts differ from the `v` forms as the questionnaire did; a build check refuses one
  prompt with two targets.
- The lint catches unbalanced parentheses, coding notes, references to cards, broken option
  grammar, lower-cased names, stems missing their question, interviewer text and appended
  questions; every such row was fixed in `curation/gss_text.yaml`, then the changed rows and a
  seeded 10% of the rest read by hand (`curation/wording_review.yaml`).

## Changes from 1.x

- GSS 2022 distributions are `wtssps`-weighted estimates from the 2022 year file (1.x: unweighted
  counts from the documentation), with `human_n` the respondents who answered.
- Sex and age breakdowns come from the same 2022 (or 2024) respondents and weight and mix back to
  the overall distribution (1.x: weighted 2016–2020 panel figures from another year, which did not
  mix back in 186 of 316 items, and carried the panel's 2020 coding errors: `attend` shifted,
  `discaffw` missing an answer, no one under 20). Each group now has a `weight_share`; a small group
  is dropped on its own.
- New config `US_2024` (GSS 2024), sharing `parallel_id` with the 2022 rows.
- New columns: `human_nonsubstantive_share` and the split-half ceiling `human_ceiling_*` (1.x
  computed the ceiling at report time from the panel file, which is no longer needed).
- Every question answerable as asked: questionnaire markup, instructions, fills, truncations,
  fragments and shorthand repaired or the item excluded; a lint enforces it in the build.
- Scope: factual, count, diagnosis, life-event and recode-duplicate items excluded; residual
  answers dropped from ordinal scales.
- WVS `human_n` is the effective n (1.x: the national sample size).
- Weak value tags re-reviewed (symptom screens, budget items, health and leisure-attendance items
  untagged), rationales hold only the rationale, and every review reason is item-specific.
"""
