"""The inspect_ai entry point: registers ``culturesim/us``, ``/us_2024``, ``/cn``, ``/jp``, ``/eg``.

pyproject.toml declares ``[project.entry-points.inspect_ai] culturesim =
"culturesim.simulator.harness.inspect_registry"``. inspect_ai loads the entry point whose *name* is the part
of a task name before the slash (``inspect eval culturesim/us`` loads ``culturesim``), then looks
the full name up in its registry. It would normally register a task as ``<top-level module>/<name>``
(here ``simulator/...``, since culturesim's code lives in the ``simulator`` package, or no prefix
at all in a source checkout), so each task below is registered under its full name: its factory's
``__module__`` is set to ``culturesim``, which no importable module bears, so inspect_ai adds no
prefix of its own and keeps the name given to ``@task``.
"""

from __future__ import annotations

from inspect_ai import Task, task

from culturesim.simulator.harness.inspect_task import DEFAULT_PARTICIPANTS, culturesim

CULTURES = ("US", "US_2024", "CN", "JP", "EG")
REGISTRY_PREFIX = "culturesim"


def _culture_task(culture: str):
    def factory(
        participants_per_question: int = DEFAULT_PARTICIPANTS,
        plan: str = "prompt+config",
        seed: int = 0,
        max_tokens: int = 512,
        dataset: str | None = None,
        revision: str | None = None,
        language: str | None = None,
    ) -> Task:
        return culturesim(culture, participants_per_question, plan, seed, max_tokens, None, dataset, revision, language)

    factory.__name__ = factory.__qualname__ = culture.lower()
    factory.__module__ = REGISTRY_PREFIX
    factory.__doc__ = f"culturesim: DEF participants of {culture} (one epoch each) scored against the real survey answers."
    return task(name=f"{REGISTRY_PREFIX}/{culture.lower()}")(factory)


us = _culture_task("US")
us_2024 = _culture_task("US_2024")
cn = _culture_task("CN")
jp = _culture_task("JP")
eg = _culture_task("EG")

__all__ = ["CULTURES", "cn", "eg", "jp", "us", "us_2024"]
