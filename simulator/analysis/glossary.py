"""Every abbreviation and measure the report (and the Space) shows, in one line each.

Why: a number nobody can read is not a result. The report ends with this glossary, the
Space shows it, and a test checks that every abbreviation on the report page is defined
here. Each entry says what the term means and, for a measure, which direction is better.
The metric module publishes definitions of its own outputs (``OUTPUT_GLOSSARY``); the
report names the metric keys it shows (``metric_terms``) and their lines are taken from there,
so a number is defined once, where it is computed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from culturesim.metrics.cultural_alignment import describe
from culturesim.metrics.cultural_alignment.structure import STRUCTURE_GLOSSARY
from culturesim.simulator.runfolder import Status

__all__ = ["GLOSSARY", "METRIC_TERMS", "Term", "glossary", "glossary_html", "glossary_markdown"]


@dataclass(frozen=True)
class Term:
    term: str
    meaning: str
    direction: str = ""
    """"lower is better", "higher is better", or empty where no direction applies."""
    group: str = "measure"


_LOWER, _HIGHER = "lower is better", "higher is better"
_CLOSER = "closer to the humans' value is better (judged against the yardstick)"

GLOSSARY: tuple[Term, ...] = (
    # Divergences and agreement
    Term("KL", "Kullback–Leibler divergence KL(model ‖ human) of one question's answer distributions, in nats; "
         "zero cells get an additive smoothing of 0.001 (the metric's default), so it is always finite", _LOWER),
    Term("JS", "Jensen–Shannon distance between the model and human distributions (base 2, from 0 to 1)", _LOWER),
    Term("Wasserstein", "1-Wasserstein (earth mover's) distance between the distributions over ordered options, "
         "divided by the number of steps so it runs from 0 to 1; ordinal questions only", _LOWER),
    Term("match rate", "share of questions where the model's most chosen option is the humans' most chosen one "
         "(ties share the credit)", _HIGHER),
    Term("CI", "95% percentile bootstrap confidence interval over questions (questions resampled); "
         "a mean over one question has none"),
    Term("CI low / CI high", "the lower and upper end of the 95% interval"),
    Term("bootstrap", "resampling the questions with replacement many times (--bootstrap-samples) to see how much "
         "a mean would move with other questions of the same kind"),
    Term("–", "undefined: no question where the number applies (e.g. Wasserstein with no ordinal question), "
         "or nothing decided"),
    Term("n/a", "not available: nothing to compute the number from"),
    # What the numbers rest on
    Term("parse rate", "share of responses the parser turned into an answer (status ok); only these are counted",
         _HIGHER, "support"),
    Term("parsed answers", "responses with status ok; a question's model distribution is made of these", "", "support"),
    Term("dropped question", "a question with no parsed answer: left out of every score", "", "support"),
    Term("non-ok share", "1 − parse rate: share of responses that gave no usable answer", _LOWER, "support"),
    *(Term(status.value, f"status: {status.meaning}", "", "status") for status in Status),
    # Diversity
    Term("distinct answers", "number of different options the simulated participants chose for a question, "
         "among parsed answers (mean over questions)", "higher = more diverse", "diversity"),
    Term("entropy", "Shannon entropy of the model's answer distribution, in nats (mean over questions)",
         "higher = more diverse", "diversity"),
    Term("unanimous share", "share of questions where every parsed answer is the same option", "lower = more diverse",
         "diversity"),
    Term("gain over none", "relative increase of distinct answers per question over the plan 'none', in %",
         "higher = more diverse", "diversity"),
    Term("rarefied distinct", "distinct answers counted among the same number of parsed answers per question in "
         "every plan, so plans that parse more are not favoured", "higher = more diverse", "diversity"),
    Term("parsed per question", "mean number of parsed answers per question", "", "diversity"),
    # Preference bias
    Term("matched / mismatched", "questions where the model's most chosen option is / is not the humans' most "
         "chosen one", "", "bias"),
    Term("bias count", "number of questions whose model-preferred option is most typical of a group (sex; age "
         "18–29, 30–49, 50+); a tie between groups gives each a share, hence halves (0.5, 1.5)", "", "bias"),
    Term("tie", "the model-preferred option is equally typical of two groups", "", "bias"),
    # Culture map
    Term("PC1 / PC2", "first and second principal components of the populations' and runs' positions on the "
         "value dimensions; the percentage is the share of variance each explains", "", "map"),
    Term("WVS", "World Values Survey, wave 7 (2017–2022)", "", "source"),
    Term("GSS", "General Social Survey (US), NORC", "", "source"),
    Term("US / CN / JP / EG", "ISO 3166 country codes: United States, China, Japan, Egypt", "", "source"),
    Term("AI", "artificial intelligence; an \"AI self-disclosure\" is a response saying it is an AI or a language "
         "model", "", "source"),
    Term("DEF", "the paper's diversity-enhanced framework: prompt, generation-config and memory modifications "
         "(plan 'all')", "", "source"),
    Term("P", "participants per question: the parsed answers a run's model distribution rests on; plug-in scores, "
         "their floors and the normalised JS and Wasserstein depend on it, so those compare only between runs of the "
         "same P (the report says when runs of different P are side by side); at P <= 2 a run is flagged", "",
         "yardstick"),
    Term("n_eff", "effective respondents behind a human distribution: respondents divided by the design effect of "
         "the survey weights (dataset 3.0 human_n_effective); the survey's own noise is computed from it", "",
         "yardstick"),
    Term("p-value", "permutation p-value: how often a lean this large would appear by chance", "", "bias"),
    Term("closer to", "the group whose answers the model's distributions are closer to", "", "bias"),
    # Structure fidelity (the lines are the metric's STRUCTURE_GLOSSARY: defined where computed)
    Term("constraint", STRUCTURE_GLOSSARY["constraint"], _CLOSER, "structure"),
    Term("PC1 share", STRUCTURE_GLOSSARY["pc1_share"], _CLOSER, "structure"),
    Term("RMSE", "root mean square error; here " + STRUCTURE_GLOSSARY["distance"], _LOWER, "structure"),
    Term("sex x age spread", STRUCTURE_GLOSSARY["group_spread"], _CLOSER, "structure"),
    Term("yardstick", STRUCTURE_GLOSSARY["<stat>_yardstick"] + "; its interval is the 95% range over those samples. "
         "Few participants make correlations noisy (mean |r| and the distance grow with noise): the yardstick shows "
         "how much, so a run is judged against it, not against the humans' value alone", "", "structure"),
    Term("weighted Spearman", "rank correlation of two questions among the people who answered both: each answer "
         "replaced by its weighted mid-rank, then the weighted Pearson correlation (survey weights for respondents, "
         "1 for participants)", "", "structure"),
    Term("LLM", "large language model", "", "source"),
    # Value dimensions
    Term("EVI", "emancipative values (Welzel)", "", "dimension"),
    Term("IDV", "individualism vs collectivism (Hofstede)", "", "dimension"),
    Term("IVR", "indulgence vs restraint (Hofstede)", "", "dimension"),
    Term("LTO", "long-term vs short-term orientation (Hofstede)", "", "dimension"),
    Term("MAS", "masculinity vs femininity (Hofstede)", "", "dimension"),
    Term("PDI", "power distance (Hofstede)", "", "dimension"),
    Term("UAI", "uncertainty avoidance (Hofstede)", "", "dimension"),
    Term("TDI", "tradition (Schwartz)", "", "dimension"),
    Term("USI", "universalism (Schwartz)", "", "dimension"),
    # Insensitivity (share of responses flagged; lower is better)
    Term("IU", "instruction understanding: the response ignores the requested 'Answer:' format or gives no usable "
         "option", _LOWER, "insensitivity"),
    Term("QC", "question-type capture: wrong number or range of choices (invalid option, several for one)",
         _LOWER, "insensitivity"),
    Term("RP", "role play: the response leaves the citizen role (AI self-disclosure, refusal)", _LOWER,
         "insensitivity"),
    Term("CV", "conflict in value expression: the answer contradicts its explanation, or the same participant "
         "answers parallel questions differently", _LOWER, "insensitivity"),
    Term("FF", "false facts: the explanation states something false about the world (only the optional judge "
         "decides it; n/a where nothing was decided)", _LOWER, "insensitivity"),
    Term("IR", "irrelevant output: off-topic text, repetition loops, content unrelated to the options", _LOWER,
         "insensitivity"),
    Term("flagged / decided / undecided", "responses flagged on a dimension / judged at all (by rule or judge) / "
         "left undecided; rate = flagged ÷ decided", "", "insensitivity"),
)


METRIC_TERMS = {
    "bias-corrected": "kl_bc_mean",
    "worth N respondents": "worth_n",
    "worth N interval": "worth_n_ci_low",
    "∞ (worth N)": "worth_n_infinite",
    "floor": "floor_kl_mean",
    "floor at P (yardstick)": "floor_kl_mean",
    "survey noise (yardstick)": "survey_noise_kl_mean",
    "uniform baseline": "uniform_kl_mean",
    "normalised score": "normalised_kl",
    "refusal channel": "refusals",
    "demographic gap": "demographic_gaps",
}
"""The metric outputs the report and the Space name, each defined by the metric's own line."""


def glossary(extra: dict[str, str] | None = None, metric_terms: dict[str, str] | None = None) -> list[Term]:
    """The glossary, plus ``metric_terms`` (term -> metric output key: the line is the metric's
    own ``OUTPUT_GLOSSARY`` definition, via ``culturesim.metrics.cultural_alignment.describe``) and ``extra``
    (term -> meaning). A direction is read from the line ("lower is better", "higher is better")."""
    terms = list(GLOSSARY)
    merged: dict[str, str] = {}
    if metric_terms:
        for term, key in metric_terms.items():
            line = describe(key)
            if line:
                merged[term] = line
    merged.update(extra or {})
    known = {t.term for t in terms}
    for term, meaning in merged.items():
        if term not in known:
            direction = _LOWER if "lower is better" in meaning else _HIGHER if "higher is better" in meaning else ""
            terms.append(Term(term, meaning, direction, "metric"))
    return terms


def glossary_html(terms: list[Term] | None = None) -> str:
    rows = "".join(f"<tr><td><b>{html.escape(t.term)}</b></td><td>{html.escape(t.meaning)}</td>"
                   f"<td>{html.escape(t.direction)}</td></tr>" for t in (terms or glossary()))
    return ('<table class="glossary"><thead><tr><th>term</th><th>meaning</th><th>direction</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def glossary_markdown(terms: list[Term] | None = None) -> str:
    """The glossary as a Markdown table (the Space shows it)."""
    lines = ["| term | meaning | direction |", "| --- | --- | --- |"]
    lines += [f"| **{t.term}** | {t.meaning} | {t.direction} |" for t in (terms or glossary())]
    return "\n".join(lines)
