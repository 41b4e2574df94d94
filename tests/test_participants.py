"""Participants: curated locations drawn by population, reproducible personas, exact plans."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import chisquare

from culturesim.simulator.participants import (
    LOCATIONS_DIR,
    PlanSettings,
    available_countries,
    canonical_plan,
    country_name,
    default_generation,
    load_locations,
    make_participant,
    make_participants,
    parse_plan,
    plan_names,
    sample_location,
)

# Census totals the curated files must add up to (US exactly; others within 1 %).
CENSUS_TOTALS = {"US": 331_449_281, "CN": 1_409_778_724, "JP": 126_146_099, "EG": 94_798_827}
NATIVE = {"CN": "zh", "JP": "ja", "EG": "ar"}


def _raw(country: str) -> dict:
    return json.loads((LOCATIONS_DIR / f"{country}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("country", ["US", "CN", "JP", "EG"])
def test_curated_files_are_complete(country):
    data = _raw(country)
    assert data["source"] and data["year"] >= 2017
    regions = data["regions"]
    assert len(regions) == {"US": 51, "CN": 31, "JP": 47, "EG": 27}[country]
    assert len({r["name"]["en"] for r in regions}) == len(regions)
    assert all(r["population"] > 0 for r in regions)
    total = sum(r["population"] for r in regions)
    assert abs(total - CENSUS_TOTALS[country]) / CENSUS_TOTALS[country] < 0.01
    if country in NATIVE:
        lang = NATIVE[country]
        assert all(lang in r["name"] for r in regions)
        assert all(r["city"] is None or lang in r["city"] for r in regions)
        assert data["names"][lang]
    assert set(available_countries()) >= {"US", "CN", "JP", "EG"}


@pytest.mark.parametrize("country", ["US", "CN"])
def test_locations_follow_population_weights(country):
    # 20,000 participants (each with its own seeded RNG, as in a run) against the census shares.
    n = 20_000
    counts = Counter(make_participant(pid, country, "prompt", seed=11).location.name() for pid in range(n))
    regions = _raw(country)["regions"]
    total = sum(r["population"] for r in regions)
    observed = [counts.get(r["name"]["en"], 0) for r in regions]
    expected = [n * r["population"] / total for r in regions]
    assert sum(observed) == n
    stat, p = chisquare(observed, expected)
    assert p > 0.001, (stat, p)
    # The biggest region really is the most drawn (California ~12 %, Guangdong ~9 %).
    biggest = max(regions, key=lambda r: r["population"])["name"]["en"]
    assert counts.most_common(1)[0][0] == biggest


def test_persona_is_the_documented_seeded_draw():
    # Re-derive participant 3 of seed 7 by hand from random.Random("7:3") in the documented order.
    settings = PlanSettings()
    rng = random.Random("7:3")
    locations = load_locations("US")
    location = rng.choices(locations, weights=[x.population for x in locations], k=1)[0]
    cap = rng.randint(1, settings.max_memory)
    beams = rng.randint(1, settings.max_beams)
    do_sample = rng.random() < settings.do_sample_prob
    temperature = round(rng.uniform(*settings.temperature_range), 4)
    top_p = round(rng.uniform(*settings.top_p_range), 4)
    p = make_participant(3, "US", "all", seed=7, max_new_tokens=99)
    assert p.location == location
    assert p.memory_cap == cap
    assert (p.generation.num_beams, p.generation.do_sample) == (beams, do_sample)
    assert (p.generation.temperature, p.generation.top_p, p.generation.max_new_tokens) == (temperature, top_p, 99)
    assert make_participant(3, "US", "all", seed=7, max_new_tokens=99) == p
    assert make_participant(3, "US", "all", seed=8, max_new_tokens=99).drawn != p.drawn


@pytest.mark.parametrize("plan", ["none", "prompt", "config", "memory", "prompt+config", "prompt+memory",
                                  "config+memory", "all", "cao", "ccsv"])
def test_each_plan_switches_exactly_its_modifications(plan):
    kind, mods = parse_plan(plan)
    for pid in range(30):
        full = make_participant(pid, "CN", "all", seed=5)
        p = make_participant(pid, "CN", plan, seed=5)
        assert p.drawn == full.drawn  # the same person whatever the plan
        assert p.location == (full.location if "prompt" in mods else None)
        assert p.memory_cap == (full.memory_cap if "memory" in mods else None)
        assert p.generation == (full.generation if "config" in mods else default_generation())
    if kind != "def":
        assert mods == frozenset()


def test_config_ranges_are_respected_and_covered():
    settings = PlanSettings(max_beams=4, temperature_range=(0.5, 0.9), top_p_range=(0.8, 0.95), do_sample_prob=0.5)
    people = make_participants(2000, "JP", "config", seed=2, settings=settings)
    beams = Counter(p.generation.num_beams for p in people)
    assert set(beams) == {1, 2, 3, 4}
    samplers = [p for p in people if p.generation.do_sample]
    assert 0.45 < len(samplers) / len(people) < 0.55
    assert all(0.5 <= p.generation.temperature <= 0.9 and 0.8 <= p.generation.top_p <= 0.95 for p in samplers)
    # Greedy / beam-search participants send no sampling parameters.
    assert all(p.generation.temperature is None and p.generation.top_p is None for p in people if not p.generation.do_sample)
    caps = Counter(make_participant(i, "JP", "memory", seed=2, settings=PlanSettings(max_memory=3)).memory_cap
                   for i in range(3000))
    assert set(caps) == {1, 2, 3} and min(caps.values()) > 900


def test_paper_defaults():
    s = PlanSettings()
    assert (s.max_beams, s.max_memory, s.do_sample_prob) == (5, 15, 1.0)
    g = default_generation()
    assert (g.max_new_tokens, g.do_sample, g.temperature, g.top_p, g.num_beams) == (512, True, 1.0, 1.0, 1)


def test_plan_names_and_errors():
    assert canonical_plan("memory+prompt") == "prompt+memory"
    assert canonical_plan("prompt+config+memory") == "all"
    assert all(canonical_plan(p) == p for p in plan_names())
    with pytest.raises(ValueError, match="Unknown plan 'prompts'.*prompt\\+memory"):
        parse_plan("prompts")
    with pytest.raises(ValueError, match="Unknown plan"):
        parse_plan("prompt+prompt")
    with pytest.raises(ValueError, match="temperature_range"):
        PlanSettings(temperature_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="max_beams"):
        PlanSettings(max_beams=0)


def test_location_labels_in_each_language():
    by_name = {loc.name(): loc for loc in load_locations("CN")}
    assert by_name["Guangdong"].label("zh") == "广东省，广州市"
    assert by_name["Guangdong"].label("en") == "Guangdong, Guangzhou"
    assert by_name["Beijing"].label("zh") == "北京市"  # a municipality is its own city
    eg = {loc.name(): loc for loc in load_locations("EG")}
    assert eg["Cairo"].label("en") == "Cairo"
    assert eg["Sharqia"].label("ar") == "الشرقية، الزقازيق"
    jp = {loc.name(): loc for loc in load_locations("JP")}
    assert jp["Osaka"].label("ja") == "大阪府、大阪市"
    assert country_name("US") == "the United States" and country_name("CN", "zh") == "中国"


def test_unknown_country_needs_locations_only_for_the_prompt_plan():
    with pytest.raises(ValueError, match="No curated locations for country 'FR'"):
        make_participant(0, "FR", "prompt")
    p = make_participant(0, "FR", "config+memory", seed=1)
    assert p.location is None and p.memory_cap is not None
    with pytest.raises(ValueError, match="No curated locations"):
        sample_location("FR", random.Random(0))


def test_locations_dir_is_packaged():
    assert Path(LOCATIONS_DIR).is_dir()
