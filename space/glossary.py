"""What the page's numbers and abbreviations mean: the report's glossary, shown by the Space.

Why no text of its own: the report and the page name the same statistics, value dimensions,
insensitivity checks and answer statuses, so both read ``culturesim.simulator.analysis.glossary`` (whose
metric lines come from the metric's ``OUTPUT_GLOSSARY``). Only what is about the page itself
(why the embedded model parses badly, what the bias panels count) is written here.
"""

from __future__ import annotations

from culturesim.simulator.analysis import glossary as shared

STATUSES = {t.term: t.meaning.removeprefix("status: ") for t in shared.GLOSSARY if t.group == "status"}
"""Answer status -> its meaning (the responses table and the notes under the scores)."""

EMBEDDED_PARSE_NOTE = (
    "**Why so many replies do not parse:** the embedded SmolLM2-135M is tiny (135M parameters). It often lists "
    "the options back instead of choosing one, writes off-topic text with no `Answer:`, or names two options for a "
    "single-choice question, so about half of its replies with the default settings carry no readable single "
    "answer and are left out of the scores (statuses above). Short replies (48 new tokens by default) are also cut "
    "before the answer now and then. A bigger model parses far better."
)

BIAS_NOTE = (
    "**Preference bias**: for each question, which group's answers (female, male; ages 18-29, 30-49, 50+) the "
    "model's preferred option is most typical of, counted separately for questions where the model's top option "
    "matches the humans' and where it does not. Only the GSS (US) questions have answers by sex and age."
)

STRUCTURE_NOTE = (
    "**Structure fidelity**: whether the simulated participants' answers hang together like real people's (the "
    "correlations between ordinal questions, from each participant's answers across questions), beside the "
    "yardstick: the same statistic for random samples of as many real respondents (GSS respondents configs). Only "
    "runs whose questions are in a respondents config, read by sampling, have it; the sex x age spread needs "
    "personas with a sex and an age group."
)


def glossary_markdown() -> str:
    """The glossary the page shows under the results: the report's terms, then the bias and structure panels' reading."""
    return (shared.glossary_markdown(shared.glossary(metric_terms=shared.METRIC_TERMS)) + "\n\n" + BIAS_NOTE + "\n\n"
            + STRUCTURE_NOTE)
