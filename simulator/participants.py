"""Simulated survey participants: who each one is (location, generation config, memory cap).

Why: the DEF method gets a realistic *distribution* of answers out of one model by asking it
as many different people. A participant's persona is drawn from
``random.Random(f"{seed}:{participant_id}")`` with every draw made in a fixed order whatever
the plan, and the plan only decides which drawn attributes are switched on. So participant 3
lives in the same state under ``prompt`` as under ``all``, runs are reproducible item by
item, and each plan changes exactly its own modification.

Plans (``parse_plan``):

- ``none``: the paper's template, default generation config, no memory;
- ``prompt``: a location (region, city) is appended to the country in the template;
- ``config``: generation parameters sampled per participant within ``PlanSettings`` ranges;
- ``memory``: earlier questions and answers are kept as chat turns (``culturesim.simulator.memory``);
- any ``+`` combination of the three, e.g. ``prompt+memory``; ``all`` (= DEF) is all three;
- ``cao`` and ``ccsv``: the baselines (``culturesim.simulator.baselines``), default config, no memory.

Locations come from ``simulator/locations/<CULTURE>.json`` (curated: regions of the country
with a city each and census population weights, source and year in the file) and are drawn
with probability proportional to population, so a sample looks like the country.

Beside the plan, a run may draw each participant's person from real respondents
(``personas=``, ``culturesim simulate --personas respondents``; ``culturesim.simulator.personas``):
a DEF participant then also has a sex and an age group, stated in its prompt and recorded in its
persona. That draw has its own random stream, so every other attribute stays what it was.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from culturesim.simulator.personas import PersonaSource, Respondent, check_persona_plan
from culturesim.simulator.types import GenerationConfig

__all__ = [
    "BASELINE_PLANS",
    "DIVERSITY_MODIFICATIONS",
    "Location",
    "Participant",
    "PlanSettings",
    "available_countries",
    "canonical_plan",
    "country_name",
    "default_generation",
    "load_locations",
    "make_participant",
    "make_participants",
    "parse_plan",
    "plan_names",
    "sample_location",
]

LOCATIONS_DIR = Path(__file__).resolve().parent / "locations"
DIVERSITY_MODIFICATIONS = ("prompt", "config", "memory")
BASELINE_PLANS = ("cao", "ccsv")


# --------------------------------------------------------------------------------------
# Plans and their settings
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSettings:
    """The ranges a plan samples from. Defaults marked *paper* are the DEF paper's.

    The paper fixes temperature 1 and top_p 1; our default ranges around them
    (``temperature_range=(0.7, 1.3)``, ``top_p_range=(0.9, 1.0)``) give the config
    modification more than the beam count to vary. Pass ``(1.0, 1.0)`` for both to get the
    paper's setting exactly.
    """

    max_beams: int = 5
    """*paper*: num_beams is drawn uniformly from 1..max_beams (config plan)."""
    max_memory: int = 15
    """*paper*: each participant's memory cap is drawn uniformly from 1..max_memory (memory plan)."""
    do_sample_prob: float = 1.0
    """*paper* (do_sample true): probability that a participant samples (else greedy/beam search)."""
    temperature_range: tuple[float, float] = (0.7, 1.3)
    """Ours (paper: 1.0): temperature drawn uniformly from this closed range (config plan)."""
    top_p_range: tuple[float, float] = (0.9, 1.0)
    """Ours (paper: 1.0): top_p drawn uniformly from this closed range (config plan)."""
    shuffle_options: bool = True
    """Shuffle answer options per participant (all plans; numeric scales are never shuffled).
    ``culturesim ablate`` keeps the source order unless asked: shuffling is a diversity source of
    its own, not one of the paper's modifications (see ``culturesim.simulator.analysis.ablation``)."""
    ccsv_critiques: int = 3
    """CCSV: critiques sampled per initial answer (the "collective" critique)."""
    ccsv_revisions: int = 3
    """CCSV: revised answers sampled from the collective critique (the voting candidates)."""
    ccsv_votes: int = 3
    """CCSV: self-votes over the revisions; the majority wins (ties: lowest candidate number)."""

    def __post_init__(self) -> None:
        if self.max_beams < 1:
            raise ValueError(f"max_beams={self.max_beams!r} must be >= 1 (1 disables beam search)")
        if self.max_memory < 1:
            raise ValueError(f"max_memory={self.max_memory!r} must be >= 1")
        if not 0.0 <= self.do_sample_prob <= 1.0:
            raise ValueError(f"do_sample_prob={self.do_sample_prob!r} must be in [0, 1]")
        lo, hi = self.temperature_range
        if not 0.0 < lo <= hi:
            raise ValueError(f"temperature_range={self.temperature_range!r} must be (lo, hi) with 0 < lo <= hi")
        lo, hi = self.top_p_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"top_p_range={self.top_p_range!r} must be (lo, hi) with 0 < lo <= hi <= 1")
        for name in ("ccsv_critiques", "ccsv_revisions", "ccsv_votes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_beams": self.max_beams,
            "max_memory": self.max_memory,
            "do_sample_prob": self.do_sample_prob,
            "temperature_range": list(self.temperature_range),
            "top_p_range": list(self.top_p_range),
            "shuffle_options": self.shuffle_options,
            "ccsv_critiques": self.ccsv_critiques,
            "ccsv_revisions": self.ccsv_revisions,
            "ccsv_votes": self.ccsv_votes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlanSettings":
        data = dict(data)
        for key in ("temperature_range", "top_p_range"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def plan_names() -> list[str]:
    """Every plan name accepted by ``parse_plan`` in its canonical spelling."""
    combos = ["none", "prompt", "config", "memory", "prompt+config", "prompt+memory", "config+memory", "all"]
    return combos + list(BASELINE_PLANS)


def parse_plan(plan: str) -> tuple[str, frozenset[str]]:
    """``(kind, modifications)``: kind is ``def``, ``cao`` or ``ccsv``.

    >>> parse_plan("memory+prompt")
    ('def', frozenset({'memory', 'prompt'}))
    >>> parse_plan("all")[1] == frozenset({"prompt", "config", "memory"})
    True
    """
    name = plan.strip().lower()
    if name in BASELINE_PLANS:
        return name, frozenset()
    if name == "none":
        return "def", frozenset()
    if name in ("all", "def"):
        return "def", frozenset(DIVERSITY_MODIFICATIONS)
    parts = [p.strip() for p in name.split("+")]
    bad = [p for p in parts if p not in DIVERSITY_MODIFICATIONS]
    if not parts or bad or len(set(parts)) != len(parts):
        raise ValueError(
            f"Unknown plan {plan!r}. Choose none, all (= DEF), a '+' combination of "
            f"{', '.join(DIVERSITY_MODIFICATIONS)} (e.g. prompt+memory), or a baseline: {', '.join(BASELINE_PLANS)}."
        )
    return "def", frozenset(parts)


def canonical_plan(plan: str) -> str:
    """The plan's canonical name: ``memory+prompt`` -> ``prompt+memory``, ``def`` -> ``all``."""
    kind, mods = parse_plan(plan)
    if kind != "def":
        return kind
    if not mods:
        return "none"
    if mods == frozenset(DIVERSITY_MODIFICATIONS):
        return "all"
    return "+".join(m for m in DIVERSITY_MODIFICATIONS if m in mods)


# --------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A region of a country (state, province, prefecture, governorate) and a city in it."""

    region: dict[str, str]
    """Region name by language code (always ``en``; the country's language where curated)."""
    city: dict[str, str] | None
    """City name by language, or None where the region is itself the city (Beijing, Tokyo)."""
    population: int

    def name(self, language: str = "en") -> str:
        return self.region.get(language) or self.region["en"]

    def label(self, language: str = "en") -> str:
        """``"Texas, Houston"``, ``"广东省，广州市"``; the region alone when the city repeats it."""
        region = self.name(language)
        city = (self.city.get(language) or self.city["en"]) if self.city else None
        if not city or city == region:
            return region
        return f"{region}{'，' if language == 'zh' else '、' if language == 'ja' else '، ' if language == 'ar' else ', '}{city}"

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region["en"], "city": self.city["en"] if self.city else None, "names": {
            "region": dict(self.region), "city": dict(self.city) if self.city else None}}


@lru_cache(maxsize=None)
def _load(country: str) -> dict[str, Any]:
    path = LOCATIONS_DIR / f"{country}.json"
    if not path.exists():
        raise ValueError(
            f"No curated locations for country {country!r}. Available: {', '.join(available_countries())}. "
            f"Add {path} (regions with city and population) to simulate it with the prompt plan."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def available_countries() -> list[str]:
    return sorted(p.stem for p in LOCATIONS_DIR.glob("*.json"))


def load_locations(country: str) -> tuple[Location, ...]:
    """The curated regions of ``country`` (ISO alpha-2), with population weights."""
    data = _load(country)
    return tuple(Location(dict(r["name"]), dict(r["city"]) if r["city"] else None, int(r["population"]))
                 for r in data["regions"])


def country_name(country: str, language: str = "en") -> str:
    """How the template names the country: ``the United States``, ``中国``; the code itself if unknown."""
    try:
        names = _load(country)["names"]
    except ValueError:
        return country
    return names.get(language) or names["en"]


def sample_location(country: str, rng: random.Random) -> Location:
    """One region drawn with probability proportional to its population (one ``rng.random()``)."""
    locations = load_locations(country)
    return rng.choices(locations, weights=[loc.population for loc in locations], k=1)[0]


# --------------------------------------------------------------------------------------
# Participants
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """One simulated respondent: the modifications its plan switched on, and nothing else."""

    participant_id: int
    country: str
    location: Location | None
    """Set only with the prompt modification."""
    generation: GenerationConfig
    """Sampled with the config modification; the paper's defaults otherwise."""
    memory_cap: int | None
    """Set only with the memory modification."""
    drawn: dict[str, Any] = field(default_factory=dict, compare=False)
    """Every drawn attribute, switched on or not (for the record)."""
    respondent: Respondent | None = None
    """The real respondent this participant stands for (only with a persona source)."""

    def location_label(self, language: str = "en") -> str | None:
        return self.location.label(language) if self.location else None

    def demographics(self, language: str = "en") -> str | None:
        """The phrase the prompt states after the country (``a woman aged 30 to 49``), or None."""
        return self.respondent.phrase(language) if self.respondent else None

    def persona(self) -> dict[str, Any]:
        """What a response row records about the participant (keys: ``runfolder.PERSONA_FIELDS``);
        the respondent's fields only when the run draws personas from respondents."""
        out: dict[str, Any] = {
            "location": self.location.to_dict() if self.location else None,
            "memory_cap": self.memory_cap,
        }
        if self.respondent is not None:
            out.update(self.respondent.to_dict())
        return out


def default_generation(max_new_tokens: int = 512) -> GenerationConfig:
    """The paper's generation defaults: sampling at temperature 1, top_p 1, one beam."""
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0, top_p=1.0, num_beams=1)


def make_participant(
    participant_id: int,
    country: str,
    plan: str = "all",
    seed: int = 0,
    settings: PlanSettings | None = None,
    max_new_tokens: int = 512,
    personas: PersonaSource | None = None,
) -> Participant:
    """Draw participant ``participant_id``'s persona from ``random.Random(f"{seed}:{participant_id}")``.

    Draw order (fixed, whatever the plan): location, memory cap, num_beams, do_sample,
    temperature, top_p. The plan then keeps only its modifications. With ``personas`` (DEF plans
    only) the participant is also a respondent drawn by weight from its own stream.
    """
    settings = settings or PlanSettings()
    kind, mods = parse_plan(plan)
    if personas is not None:
        check_persona_plan(kind)
    rng = random.Random(f"{seed}:{participant_id}")
    try:
        location = sample_location(country, rng)
    except ValueError:
        if "prompt" in mods:
            raise
        location = None
        rng.random()  # keep the draw sequence identical for countries without a location list
    memory_cap = rng.randint(1, settings.max_memory)
    num_beams = rng.randint(1, settings.max_beams)
    do_sample = rng.random() < settings.do_sample_prob
    temperature = round(rng.uniform(*settings.temperature_range), 4)
    top_p = round(rng.uniform(*settings.top_p_range), 4)
    drawn = {
        "location": location.to_dict() if location else None,
        "memory_cap": memory_cap,
        "num_beams": num_beams,
        "do_sample": do_sample,
        "temperature": temperature,
        "top_p": top_p,
    }
    if "config" in mods:
        generation = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=top_p if do_sample else None,
            num_beams=num_beams,
        )
    else:
        generation = default_generation(max_new_tokens)
    return Participant(
        participant_id=participant_id,
        country=country,
        location=location if "prompt" in mods else None,
        generation=generation,
        memory_cap=memory_cap if "memory" in mods else None,
        drawn=drawn,
        respondent=personas.draw(seed, participant_id) if personas is not None else None,
    )


def make_participants(
    count: int,
    country: str,
    plan: str = "all",
    seed: int = 0,
    settings: PlanSettings | None = None,
    max_new_tokens: int = 512,
    ids: list[int] | None = None,
    personas: PersonaSource | None = None,
) -> list[Participant]:
    """Participants ``0..count-1`` (or the given ``ids``, e.g. one shard's)."""
    if count < 1:
        raise ValueError(f"participants={count!r} must be >= 1")
    wanted = list(range(count)) if ids is None else list(ids)
    return [make_participant(pid, country, plan, seed, settings, max_new_tokens, personas) for pid in wanted]
