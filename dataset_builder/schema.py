"""The dataset record (the contract in ../shared/DESIGN.md) as one explicit Arrow schema.

Writing every parquet file with this schema keeps types stable across configs, makes
``datasets`` infer the same Features everywhere, and makes the build byte-deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS  # the one definition: the metric scores by it

DIMENSION_NAMES = {
    "EVI": "emancipative values (Welzel)",
    "IDV": "individualism vs collectivism (Hofstede)",
    "IVR": "indulgence vs restraint (Hofstede/Minkov)",
    "LTO": "long-term orientation (Hofstede/Minkov)",
    "MAS": "masculinity vs femininity (Hofstede)",
    "PDI": "power distance (Hofstede)",
    "UAI": "uncertainty avoidance (Hofstede)",
    "TDI": "tradition (Schwartz)",
    "USI": "universalism (Schwartz)",
}

DEMOGRAPHIC = pa.struct(
    [
        ("group_type", pa.string()),
        ("group", pa.string()),
        ("year", pa.int32()),
        ("n", pa.int32()),
        ("weight_share", pa.float64()),
        ("distribution", pa.list_(pa.float64())),
    ]
)

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("culture", pa.string()),
        ("language", pa.string()),
        ("is_native_language", pa.bool_()),
        ("source", pa.string()),
        ("source_year", pa.int32()),
        ("source_variable", pa.string()),
        ("question", pa.string()),
        ("options", pa.list_(pa.string())),
        ("option_codes", pa.list_(pa.int32())),
        ("question_type", pa.string()),
        ("ordinal", pa.bool_()),
        ("human_distribution", pa.list_(pa.float64())),
        ("human_n", pa.int32()),
        ("human_nonsubstantive_share", pa.float64()),
        ("volunteered_share", pa.float64()),
        ("value_dimensions", pa.list_(pa.string())),
        ("value_dimension_rationale", pa.string()),
        ("construct", pa.string()),
        ("universe", pa.string()),
        ("topic", pa.string()),
        ("demographics", pa.list_(DEMOGRAPHIC)),
        ("parallel_id", pa.string()),
        ("comparable", pa.bool_()),
        ("repairs", pa.list_(pa.string())),
        ("design_effect", pa.float64()),
        ("human_n_effective", pa.float64()),
        ("respondents_weight", pa.string()),
        ("battery", pa.string()),
    ]
)

COLUMN_DOCS: dict[str, str] = {
    "id": "Stable unique id: `gss2022.<variable>.en`, `gss2024.<variable>.en` or `wvs7.<country>.<Q>.<language>`.",
    "culture": "ISO 3166-1 alpha-2 code of the population whose answers `human_distribution` holds.",
    "language": "ISO 639-1 code of the language of `question` and `options`.",
    "is_native_language": "True when `language` is the language the population was surveyed in; False for the English parallel rows of non-English cultures (language ablation).",
    "source": "`GSS` (General Social Survey, NORC) or `WVS` (World Values Survey wave 7).",
    "source_year": "Year of the human answers (GSS: 2022 in config `US`, 2024 in config `US_2024`; WVS: the country's fieldwork year).",
    "source_variable": "The source's variable name (GSS mnemonic such as `fefam`, WVS `Q29`).",
    "question": "The question as put to the model.",
    "options": "Answer texts in the source order (ascending source code).",
    "option_codes": "The source's numeric code for each option, aligned with `options`.",
    "question_type": "`single_choice`, `multiple_choice` or `scale` (numbered points with only the ends labelled).",
    "ordinal": "Whether the options are ordered (scales, agree/disagree); ordinal questions also get a Wasserstein distance.",
    "human_distribution": "Share of respondents choosing each option, over substantive answers only; sums to 1 (1e-6). GSS: weighted with the post-stratified person weight `wtssps` of the year file, or for an item asked only in a 2022 sub-sample with that sub-sample's weight (see `respondents_weight`). WVS: the source's aggregated shares, renormalised.",
    "human_n": "Respondents behind the distribution (unweighted). GSS: the weighted cross-section respondents of the year file who gave a substantive answer. WVS: the effective n, national sample size x the share of it the source's shares cover (don't know and no answer were dropped by the source), rounded.",
    "value_dimensions": "Subset of EVI IDV IVR LTO MAS PDI UAI TDI USI (see the tagging section); empty only with a stated reason.",
    "value_dimension_rationale": "One line saying what construct of the literature the item measures (or why it has no tag).",
    "construct": "What the item measures: `attitude`, `value`, `belief` or `preference`, decided by the written rule in the card (section Construct); behaviours, experiences and facts are not in any config.",
    "universe": "GSS: who was asked, when the question was put only to a sub-population (e.g. `You have a paid job.`, `You are married.`): one sentence the simulator adds to the prompt so the simulated participant is one of those whose answers make `human_distribution`. Null when the question was asked of everyone (random split ballots and forms count as everyone).",
    "volunteered_share": "GSS: share of those asked whose answer is not among `options` and was removed from `human_distribution`: volunteered answers (e.g. 'depends'), don't know, no answer, refused, can't choose, skipped on web; from the documentation's unweighted counts for the year. Rows above 0.15 are excluded (the card says why). Null for WVS (the source dropped them).",
    "topic": "Source topic: the GSS module or the WVS category (English).",
    "demographics": "GSS only: answer distributions by sex (female, male) and age (18-29, 30-49, 50+) from the same respondents and weight as `human_distribution`, each with its year, unweighted `n` and `weight_share` (the group's share of the weight of the respondents whose sex, or age, is known, so sum(weight_share x distribution) over a family is their overall distribution). A group with fewer than 30 answers is left out on its own. Empty for WVS.",
    "parallel_id": "Shared by the same question across cultures, languages and survey years (`wvs7.Q29`; `gss.fefam` for both the 2022 and the 2024 row).",
    "comparable": "True for WVS items asked identically in all four cultures (US, CN, JP, EG): each culture has the item, with one English question, one option list and one code list. The culture map and cross-culture comparisons use only these; False for every other row (all GSS rows).",
    "repairs": "What the builder repaired in this item's source record (empty when nothing).",
    "human_nonsubstantive_share": "GSS: share of those asked who gave no substantive answer (don't know, no answer, refused, skipped on web, can't choose), from the documentation's unweighted counts for the year (the year files code these as missing). Null for WVS (the source dropped them).",
    "design_effect": "GSS: Kish's design effect of the weights of the respondents behind `human_distribution`, n·Σw²/(Σw)² over those `human_n` respondents with the weight named by `respondents_weight` (1 = equal weights). The weighting part only: the year files carry no usable strata or cluster codes, so clustering would add to it. Null for WVS (the aggregated sources give no weights or design effect).",
    "human_n_effective": "GSS: `human_n` / `design_effect`, the size of a simple random sample as precise as this weighted estimate; what the metric uses for the human sampling noise. Null for WVS (no design effect in the sources; `human_n` is there an upper bound).",
    "battery": "The questionnaire block the item belongs to (never null), for intervals that resample blocks together: a curated GSS battery (`gss.abortion`, `gss.natspend`, `gss.confidence`, ...), a GSS module asked as one block (`gss.qwl` Quality of Working Life, `gss.nea_arts`, `gss.next`, each ISSP module such as `gss.issp_digital_societies`), or a WVS-7 questionnaire battery (`wvs7.Q1-Q6` importance in life, `wvs7.Q64-Q89` confidence, `wvs7.Q177-Q195` justifiability); an item in no block is its own battery, named by its `parallel_id`. Rules in `curation/battery.yaml`.",
    "respondents_weight": "GSS: the weight column of the respondents config (`US_respondents` for 2022, `US_2024_respondents` for 2024) that reproduces `human_distribution` from the item's column there: `weight` (`wtssps`, the cross-section), or, for the GSS 2022 items asked only in a random sub-sample (the NEA arts module, the GSS Next items), `weight_nea` (`wtssps_nea`) or `weight_next` (`wtssps_next`), NORC's weights for those sub-samples; the distribution, breakdowns and design effect use that weight. Null for WVS.",
}


DATA_FILE_HASH_CHARS = 12


def data_file_name(config: str, payload: bytes) -> str:
    """``<CONFIG>-<sha256 prefix of the file>.parquet``: the file name changes with its content.

    Why: ``datasets.load_dataset`` on a local folder keys its cache on the folder's name and the
    data files' relative paths, not their content (huggingface/datasets#2956), so a rebuilt
    ``data/US.parquet`` -- or another folder of the same name -- is served from the stale cache.
    A name that carries the content's hash makes every new content a new cache entry.
    """
    import hashlib

    return f"{config}-{hashlib.sha256(payload).hexdigest()[:DATA_FILE_HASH_CHARS]}.parquet"


def config_of_data_file(name: str) -> str | None:
    """The config a data file holds: ``US-3f2a…parquet`` -> ``US``; a plain ``US.parquet`` (small
    hand-made folders) -> ``US``; anything else -> None."""
    if not name.endswith(".parquet"):
        return None
    stem = name[: -len(".parquet")]
    config, sep, digest = stem.rpartition("-")
    if sep and len(digest) == DATA_FILE_HASH_CHARS and all(c in "0123456789abcdef" for c in digest):
        return config
    return stem


def data_files_by_config(folder: str | Path, error: type[ValueError] = ValueError) -> dict[str, Path]:
    """Config name -> its parquet file among ``folder``'s ``*.parquet`` (item rows in ``data/``, the
    respondents tables in ``respondents/``). Two files for one config is an ``error``: a stale file
    left beside a rebuilt one would otherwise be read silently."""
    folder = Path(folder)
    files: dict[str, Path] = {}
    for path in sorted(folder.glob("*.parquet")):
        config = config_of_data_file(path.name)
        if config is None:
            continue
        if config in files:
            raise error(f"{folder} holds two files for config {config!r} ({files[config].name}, {path.name}); "
                        "rebuild the folder with `culturesim dataset build` or delete the stale one.")
        files[config] = path
    return files

