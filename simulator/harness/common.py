"""What both harness integrations share: the DEF prompt with its option labels.

Why one place: the lm-evaluation-harness task, the inspect_ai task and the agreement check
against ``culturesim.simulator.estimators.logprob`` must put exactly the same text before the model, or their numbers
stop being comparable. The text itself comes from ``culturesim.simulator.prompts.render_question`` (the
DEF template, versioned there); this module only fixes the harness choices: options in source
order unless a participant shuffles them, the question's own culture as [COUNTRY], and the
answer label of the template's language as the prefix the option number follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from culturesim.simulator.prompts import answer_labels, render_question
from culturesim.simulator.questions import DEFAULT_DATASET_DIR, Question
# embedded_model_folder: the converted transformers folder of the embedded model (also what the
# transformers backend loads); re-exported here, where the harness tests and `harness-path` find it.
from culturesim.simulator.embedded import EMBEDDED_HF_DIR_ENV, embedded_model_folder

HARNESS_INSTALL = 'pip install "culturesim[harness]"'
"""The extra that brings lm-eval and inspect-ai (neither is needed by culturesim itself)."""

LM_EVAL_TASK_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
"""The folder to pass to ``lm_eval --include_path`` (printed by ``culturesim harness-path``)."""


def load_records(culture: str, dataset: str | None = None, revision: str | None = None,
                 language: str | None = None) -> Any:
    """The ``culture`` config of the culturesim dataset (split ``test``) as a ``datasets.Dataset``.

    ``culture`` names the config (``US``, ``US_2024``, ``CN``, ``JP``, ``EG``); ``dataset``: a local
    dataset folder or a Hub id (default: the folder shipped with culturesim); ``revision``: a Hub
    revision. ``language`` None keeps the native-language rows (as ``load_questions`` does), else
    the rows in that language (``en``: the English parallels). Both harnesses read their
    questions through this.
    """
    rows = _config_rows(culture, dataset, revision)
    if language is None:
        if "is_native_language" in rows.column_names:
            rows = rows.filter(lambda r: r["is_native_language"] is not False)
    else:
        rows = rows.filter(lambda r: r["language"] == language)
    if len(rows) == 0:
        raise ValueError(f"Config {culture!r} of {dataset or DEFAULT_DATASET_DIR} has no rows in language {language!r}.")
    return rows


def _config_rows(culture: str, dataset: str | None, revision: str | None) -> Any:
    import datasets

    source = Path(dataset) if dataset else DEFAULT_DATASET_DIR
    if not source.is_dir():
        return datasets.load_dataset(str(dataset), culture, split="test", revision=revision)
    # A local folder is read straight from the parquet files its card maps the config to: datasets'
    # cache of a local folder can outlive a rebuild of those files (seen after a `git merge` that
    # rewrote data/US.parquet: the old questions came back, then a split-size check failed).
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    card = (source / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---", 2)[1]) if card.startswith("---") else {}
    configs = {c["config_name"]: c for c in front.get("configs") or []}
    if culture not in configs:
        raise ValueError(f"{source} has no config {culture!r}; its card lists {sorted(configs)}.")
    files = [f["path"] for f in configs[culture]["data_files"] if f.get("split") == "test"]
    paths = [p for pattern in files for p in sorted(source.glob(pattern))]
    if not paths:
        raise FileNotFoundError(f"{source}: config {culture!r} names {files}, which match no file.")
    return datasets.Dataset(pa.concat_tables([pq.read_table(p) for p in paths]))


def option_labels(question: Question) -> list[str]:
    """The number shown before each option, in source order (``1``..``k``; 0..10 scales keep
    their own numbers): what the model is expected to write after the answer label."""
    return [str(n) for n in render_question(question, question.culture).numbers]


def def_logprob_prompt(question: Question) -> tuple[list[dict[str, str]], list[str]]:
    """The DEF user message (options in source order, no location) and the option labels.

    This is a ``culturesim.simulator.estimators.logprob`` prompt builder, so a culturesim log-prob run and the
    lm-eval task read the same prompt: ``logprob_distributions(model, questions,
    prompt_builder=def_logprob_prompt)``.
    """
    rendered = render_question(question, question.culture)
    return [{"role": "user", "content": rendered.text}], [str(n) for n in rendered.numbers]


def answer_prefix(question: Question) -> str:
    """``Answer:`` (``答案：`` for Chinese, ``回答：`` for Japanese): the reply's prefill."""
    return answer_labels(question.language)[0]


__all__ = [
    "EMBEDDED_HF_DIR_ENV",
    "HARNESS_INSTALL",
    "LM_EVAL_TASK_DIR",
    "answer_prefix",
    "def_logprob_prompt",
    "embedded_model_folder",
    "load_records",
    "option_labels",
]
