"""What the page's numbers and abbreviations mean, in one place (the glossary the page shows).

Why a module: the scores table, the figures' notes, the responses table and the glossary
accordion all name the same statistics, value dimensions, insensitivity checks and answer
statuses; one text keeps them consistent.
"""

from __future__ import annotations

from simulator.analysis.insensitivity import DIMENSION_NAMES, RUBRIC
from simulator.analysis.insensitivity import DIMENSIONS as INSENSITIVITY_DIMENSIONS
from simulator.questions import VALUE_DIMENSIONS

DIMENSIONS = {
    "EVI": "emancipative values (Welzel): freedom of choice and equality",
    "IDV": "individualism vs collectivism (Hofstede)",
    "IVR": "indulgence vs restraint (Hofstede)",
    "LTO": "long-term vs short-term orientation (Hofstede)",
    "MAS": "masculinity vs femininity (Hofstede)",
    "PDI": "power distance: acceptance of unequal power (Hofstede)",
    "UAI": "uncertainty avoidance (Hofstede)",
    "TDI": "tradition (Schwartz)",
    "USI": "universalism (Schwartz)",
}
if set(DIMENSIONS) != set(VALUE_DIMENSIONS):  # the dataset's contract names them; keep the glossary complete
    raise RuntimeError(f"glossary dimensions {sorted(DIMENSIONS)} differ from the dataset's {VALUE_DIMENSIONS}")

STATISTICS = {
    "kl": "Kullback-Leibler divergence of the model's answer distribution from the humans' "
          "(smoothed for empty cells); 0 = identical, **lower is better**",
    "js": "Jensen-Shannon distance, 0 (identical) to 1 (no overlap); **lower is better**",
    "wasserstein": "for ordered options (scales): how far answers sit from the humans' along the scale, "
                   "0 to 1; **lower is better**",
    "match_rate": "share of questions where the model's most chosen option is the humans' most chosen; "
                  "**higher is better**",
    "normalised kl / js / wasserstein": "(D_uniform - D_model) / (D_uniform - D_floor): **1 = as close as a "
                                        "perfect simulator with this many participants can be, 0 = random "
                                        "answers, below 0 = worse than random**; higher is better",
    "floor": "the divergence a perfect simulator with this many participants scores by sampling noise alone: the "
             "best a run of this size can expect (a small run cannot reach 0)",
    "uniform": "the divergence of as many uniformly random answers; a model above it does worse than chance",
    "ceiling": "human split-half ceiling: the divergence between two random halves of the real respondents "
               "(where the dataset has microdata)",
    "distinct_answers_mean": "how many different options the simulated participants chose, per question "
                             "(diversity; the DEF method raises it)",
    "entropy_mean": "spread of the model's answers per question, in nats (human_entropy_mean: the humans')",
    "unanimous_share": "share of questions where every participant chose the same option",
}

INSENSITIVITY = {k: f"{DIMENSION_NAMES[k]}: {RUBRIC[k][0].lower()}{RUBRIC[k][1:]}" for k in INSENSITIVITY_DIMENSIONS}
"""The paper's six checks, worded as ``simulator.analysis.insensitivity`` decides them."""

STATUSES = {
    "ok": "an answer that maps to an option (counted)",
    "no_answer": "no option number or option text could be read from the reply (not counted)",
    "invalid_option": "the reply names an option number the question does not have (not counted)",
    "multiple_for_single": "several options for a single-choice question (not counted)",
    "number_text_disagree": "the option number and the option text name different options, e.g. \"1. No\" where 1 "
                            "is \"Yes\" (not counted; parser 1.0 called this multiple_for_single)",
    "refusal": "the model declined to answer (not counted)",
    "error": "the backend failed (network, key, limits); the reply is empty (not counted)",
}

EMBEDDED_PARSE_NOTE = (
    "**Why so many replies do not parse:** the embedded SmolLM2-135M is tiny (135M parameters). It often lists "
    "the options back instead of choosing one, writes off-topic text with no `Answer:`, or names two options for a "
    "single-choice question, so about half of its replies with the default settings carry no readable single "
    "answer and are left out of the scores (statuses above). Short replies (48 new tokens by default) are also cut "
    "before the answer now and then. A bigger model parses far better."
)


def glossary_markdown() -> str:
    """The glossary the page shows under the results."""
    lines = ["**Scores** (per question, then averaged; 95% bootstrap confidence intervals over questions "
             "and participants):"]
    lines += [f"- **{k}**: {v}" for k, v in STATISTICS.items()]
    lines += ["", "**Value dimensions** (which value a question is tagged with):"]
    lines += [f"- **{k}**: {v}" for k, v in DIMENSIONS.items()]
    lines += ["", "**Insensitivity radar** (share of replies flagged on the paper's six checks; lower is better):"]
    lines += [f"- **{k}**: {v}" for k, v in INSENSITIVITY.items()]
    lines += ["", "**Answer status** (the responses table):"]
    lines += [f"- **{k}**: {v}" for k, v in STATUSES.items()]
    lines += ["", "**Preference bias**: for each question, which group's answers (female, male; ages 18-29, "
              "30-49, 50+) the model's preferred option is most typical of, counted separately for questions "
              "where the model's top option matches the humans' and where it does not. Only the GSS (US) "
              "questions have answers by sex and age."]
    return "\n".join(lines)
