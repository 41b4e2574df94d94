"""Personas drawn from real people: each simulated participant becomes one real survey respondent.

Why: DEF's participants differ by location only, so nothing about a run can be compared with the
humans by sex or age, and structure fidelity's sex x age spread (``metrics/cultural_alignment/
structure.py``) is unavailable for it. With ``culturesim simulate --personas respondents`` every
participant is assigned a respondent of the culture's respondents config (dataset 3.0:
``US_respondents`` = GSS 2022, ``US_2024_respondents`` = GSS 2024), drawn with probability
proportional to the survey weight, so the simulated population has the weighted sex x age
composition of the country's adults; the prompt states that person's sex and age group
(``a citizen from the United States (Ohio, Columbus), a woman aged 30 to 49``) and the run's
rows record them in ``persona`` (``sex``, ``age_group``, ``respondent_id``).

- **Only where real people are.** The WVS cultures (CN, JP, EG) have no respondent-level data in
  the dataset; ``load_persona_source`` refuses them in one line rather than invent people.
- **Reproducible and separate.** Participant ``p``'s respondent comes from
  ``random.Random(f"{seed}:{p}:respondent")``, a stream of its own: the location, memory cap and
  generation config drawn from ``f"{seed}:{p}"`` (``culturesim.simulator.participants``) are the
  same with or without personas, so a persona run differs from its plan's run by this alone.
- **Draws are with replacement**, independent of the location (the respondents config holds no
  region): the location keeps following the census, sex and age the survey's weights.
- **Unknown stays unknown.** A respondent whose sex or age group the survey did not record keeps
  it null; the prompt states what is known (``a woman``, ``a person aged 18 to 29``) or, with
  neither, the location alone.
- **English only.** The demographic phrase is English, as are the US configs' questions; another
  template language is refused (``Respondent.phrase``).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

__all__ = [
    "AGE_PHRASES",
    "PERSONAS_VERSION",
    "PERSONA_SOURCES",
    "PersonaSource",
    "Respondent",
    "SEX_PHRASES",
    "check_persona_plan",
    "load_persona_source",
    "persona_rng",
]

PERSONA_SOURCES = ("respondents",)
"""What ``--personas`` accepts (``none``, the default, is no source)."""
PERSONAS_VERSION = "1.0"
"""Bump whenever the draw or the demographic phrase changes; recorded in config.json's ``personas``."""
WEIGHT_COLUMN = "weight"
"""The respondents config's cross-section weight (GSS ``wtssps``): the draw's probabilities."""

SEX_PHRASES = {"female": "a woman", "male": "a man"}
"""How the prompt names a respondent's sex (the respondents config's spelling -> English)."""
AGE_PHRASES = {"18-29": "aged 18 to 29", "30-49": "aged 30 to 49", "50+": "aged 50 or older"}
"""How the prompt names a respondent's age group."""


@dataclass(frozen=True)
class Respondent:
    """One real respondent a participant stands for: who they are, as the survey recorded it."""

    respondent_id: str
    """``gss2022.<id>``: the respondents config's id, so the participant can be traced to the person."""
    sex: str | None
    """``female``, ``male`` or None (not recorded)."""
    age_group: str | None
    """``18-29``, ``30-49``, ``50+`` or None (not recorded)."""

    def phrase(self, language: str = "en") -> str | None:
        """``a woman aged 30 to 49``, ``a man``, ``a person aged 50 or older``; None when neither
        sex nor age is known. Raises ValueError for a template language other than English."""
        if language != "en":
            raise ValueError(f"personas from respondents state sex and age in English only; the question's template "
                             f"language is {language!r}: ask the English questions (--language en) or drop --personas")
        sex = SEX_PHRASES.get(self.sex or "")
        age = AGE_PHRASES.get(self.age_group or "")
        if sex is None and age is None:
            return None
        return f"{sex or 'a person'} {age}" if age else sex

    def to_dict(self) -> dict[str, Any]:
        """The persona fields a response row records (``culturesim.simulator.runfolder.PERSONA_FIELDS``)."""
        return {"respondent_id": self.respondent_id, "sex": self.sex, "age_group": self.age_group}


def persona_rng(seed: int, participant_id: int) -> random.Random:
    """The stream participant ``participant_id``'s respondent is drawn from (apart from its other draws)."""
    return random.Random(f"{seed}:{participant_id}:respondent")


@dataclass(frozen=True, eq=False)
class PersonaSource:
    """The respondents of one respondents config, ready to be drawn by weight."""

    config: str
    """``US_respondents``, ``US_2024_respondents``."""
    file: Path
    respondents: tuple[Respondent, ...]
    """Those with a positive weight, in file order."""
    cumulative: tuple[float, ...]
    """Running sum of their weights (the draw bisects it)."""

    def draw(self, seed: int, participant_id: int) -> Respondent:
        """Participant ``participant_id``'s respondent: one ``rng.random()`` of ``persona_rng``,
        each respondent with probability weight / total weight."""
        u = persona_rng(seed, participant_id).random() * self.cumulative[-1]
        return self.respondents[min(bisect_right(self.cumulative, u), len(self.respondents) - 1)]

    def to_dict(self) -> dict[str, Any]:
        """config.json's ``personas`` entry (the file name carries the config's content hash, so a
        resume against a rebuilt dataset is refused)."""
        return {"source": "respondents", "version": PERSONAS_VERSION, "config": self.config, "file": self.file.name,
                "respondents": len(self.respondents), "weight": WEIGHT_COLUMN}


@lru_cache(maxsize=8)
def _read(path: str) -> PersonaSource:
    import pyarrow.parquet as pq

    from culturesim.dataset_builder.schema import config_of_data_file

    table = pq.read_table(path, columns=["respondent_id", WEIGHT_COLUMN, "sex", "age_group"]).to_pylist()
    kept = [r for r in table if r[WEIGHT_COLUMN] is not None and r[WEIGHT_COLUMN] > 0]
    if not kept:
        raise ValueError(f"{path}: no respondent has a positive {WEIGHT_COLUMN!r}; rebuild the dataset "
                         "(`culturesim dataset build`)")
    people = tuple(Respondent(str(r["respondent_id"]), r["sex"], r["age_group"]) for r in kept)
    return PersonaSource(str(config_of_data_file(Path(path).name)), Path(path), people,
                         tuple(accumulate(float(r[WEIGHT_COLUMN]) for r in kept)))


def load_persona_source(name: str | None, culture: str, dataset_dir: str | Path | None = None) -> PersonaSource | None:
    """The persona source ``--personas NAME`` asks for, for questions of ``culture``; None for
    ``none``/None. Raises ValueError (one line: the value and the fix) for an unknown name or a
    culture without a respondents config."""
    if name is None or name == "none":
        return None
    if name not in PERSONA_SOURCES:
        raise ValueError(f"--personas {name!r} is not known; choose none or {', '.join(PERSONA_SOURCES)}")
    from culturesim.dataset_builder.respondents import SUFFIX, respondents_files
    from culturesim.simulator.questions import DEFAULT_DATASET_DIR

    folder = Path(dataset_dir or DEFAULT_DATASET_DIR)
    files = respondents_files(folder)
    wanted = f"{culture}{SUFFIX}"
    if wanted not in files:
        have = ", ".join(sorted(c.removesuffix(SUFFIX) for c in files)) or "none"
        raise ValueError(f"--personas respondents: culture {culture} has no respondents config in {folder / 'respondents'} "
                         f"(cultures with one: {have}; the WVS cultures have no respondent-level data); use one of "
                         "those cultures or drop --personas")
    return _read(str(files[wanted].resolve()))


def check_persona_plan(plan_kind: str, estimator: str = "sampling") -> None:
    """Personas change who a DEF participant is; refuse where there is no such participant."""
    if plan_kind != "def":
        raise ValueError(f"--personas applies to the DEF plans (none, prompt, ..., all), not the {plan_kind} baseline, "
                         "whose prompts ask for the average person or critique one answer")
    if estimator != "sampling":
        raise ValueError(f"--personas works with --estimator sampling only, not {estimator!r} (that estimator reads "
                         "one distribution per question, not participants)")
