"""The dataset record (the contract in ../shared/DESIGN.md) as one explicit Arrow schema.

Writing every parquet file with this schema keeps types stable across configs, makes
``datasets`` infer the same Features everywhere, and makes the build byte-deterministic.
"""

from __future__ import annotations

import pyarrow as pa

VALUE_DIMENSIONS = ("EVI", "IDV", "IVR", "LTO", "MAS", "PDI", "UAI", "TDI", "USI")
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
        ("value_dimensions", pa.list_(pa.string())),
        ("value_dimension_rationale", pa.string()),
        ("topic", pa.string()),
        ("demographics", pa.list_(DEMOGRAPHIC)),
        ("parallel_id", pa.string()),
        ("repairs", pa.list_(pa.string())),
        ("human_ceiling_kl", pa.float64()),
        ("human_ceiling_js", pa.float64()),
        ("human_ceiling_wasserstein", pa.float64()),
        ("human_ceiling_kl_sd", pa.float64()),
        ("human_ceiling_js_sd", pa.float64()),
        ("human_ceiling_wasserstein_sd", pa.float64()),
    ]
)

COLUMN_DOCS: dict[str, str] = {
    "id": "Stable unique id: `gss2022.<variable>.en` or `wvs7.<country>.<Q>.<language>`.",
    "culture": "ISO 3166-1 alpha-2 code of the population whose answers `human_distribution` holds.",
    "language": "ISO 639-1 code of the language of `question` and `options`.",
    "is_native_language": "True when `language` is the language the population was surveyed in; False for the English parallel rows of non-English cultures (language ablation).",
    "source": "`GSS` (General Social Survey, NORC) or `WVS` (World Values Survey wave 7).",
    "source_year": "Year of the human answers (GSS: 2022; WVS: the country's fieldwork year).",
    "source_variable": "The source's variable name (GSS mnemonic such as `fefam`, WVS `Q29`).",
    "question": "The question as put to the model.",
    "options": "Answer texts in the source order (ascending source code).",
    "option_codes": "The source's numeric code for each option, aligned with `options`.",
    "question_type": "`single_choice`, `multiple_choice` or `scale` (numbered points with only the ends labelled).",
    "ordinal": "Whether the options are ordered (scales, agree/disagree); ordinal questions also get a Wasserstein distance.",
    "human_distribution": "Share of respondents choosing each option, over substantive answers only; sums to 1 (1e-6).",
    "human_n": "Respondents behind the distribution (unweighted). GSS: substantive answers in 2022. WVS: national sample size (item non-response is not in the source).",
    "value_dimensions": "Subset of EVI IDV IVR LTO MAS PDI UAI TDI USI (see the tagging section); empty only with a stated reason.",
    "value_dimension_rationale": "One line saying what construct of the literature the item measures (or why it has no tag).",
    "topic": "Source topic: the GSS module or the WVS category (English).",
    "demographics": "GSS only: weighted answer distributions by sex (female, male) and age (18-29, 30-49, 50+) from the GSS panel microdata, with the year they come from and the group's unweighted n; empty where the source has none.",
    "parallel_id": "Shared by the same question across cultures and languages (`wvs7.Q29`, `gss.fefam`).",
    "repairs": "What the builder repaired in this item's source record (empty when nothing).",
}
