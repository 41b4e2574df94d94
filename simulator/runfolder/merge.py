"""Join the shards of a run into one run folder (``culturesim merge SHARD_DIRS... --out DIR``).

Why: ``--shard K/N`` lets N machines (or N vLLM clients) each run a slice of the
participants; the report and the scorer want one folder. Merging checks that the shards are
parts of the SAME run (identical configs apart from the shard keys), that together they are
exactly shards 1..N, and that the rows are complete and without duplicates, so a merged run is
indistinguishable from an unsharded one to every later step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from culturesim.simulator.runfolder.files import (
    RunLock,
    config_differences,
    holds_anything,
    load_run_config,
    read_rows,
    write_atomic,
    write_config,
    write_rows,
)
from culturesim.simulator.runfolder.schema import CONFIG_FILE, QUESTIONS_FILE, RESPONSES_FILE, Status

__all__ = ["SHARD_KEYS", "merge_runs"]

log = logging.getLogger(__name__)

SHARD_KEYS = frozenset({"shard", "participant_ids", "created_at", "command"})
"""Keys of config.json in which the shards of one run differ."""


def _strip(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in SHARD_KEYS}


def merge_runs(shard_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """Merge shard run folders into ``out_dir`` (new or empty); return it."""
    dirs = [Path(d) for d in shard_dirs]
    if not dirs:
        raise ValueError("Give at least one shard folder to merge")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; merge into a new folder")
    if holds_anything(out):
        raise ValueError(f"--out {out} is not empty; merge into a new folder")
    configs = []
    for d in dirs:
        if not (d / CONFIG_FILE).exists():
            raise ValueError(f"{d} has no {CONFIG_FILE}; it is not a culturesim run folder")
        configs.append(load_run_config(d))
    base = _strip(configs[0])
    for d, cfg in zip(dirs[1:], configs[1:]):
        diff = config_differences(base, _strip(cfg))
        if diff:
            raise ValueError(f"{d} is not a shard of the same run as {dirs[0]}: differing keys {', '.join(diff)}")
    shards = [c.get("shard") for c in configs]
    if any(s is None for s in shards):
        unsharded = [str(d) for d, s in zip(dirs, shards) if s is None]
        raise ValueError(f"Not a shard (run without --shard): {', '.join(unsharded)}")
    n = shards[0]["n"]
    ks = sorted(s["k"] for s in shards)
    if any(s["n"] != n for s in shards) or ks != list(range(1, n + 1)):
        raise ValueError(f"Shards must be exactly 1..{n} of {n}, each once; got {', '.join(f'{k}/{n}' for k in ks)}")

    participants = base["participants"]
    questions = base["question_ids"]
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for d, cfg in zip(dirs, configs):
        allowed = set(cfg["participant_ids"])
        for row in read_rows(d / RESPONSES_FILE):
            key = (row["participant_id"], row["question_id"])
            if row["participant_id"] not in allowed:
                raise ValueError(f"{d}: participant {key[0]} does not belong to shard {cfg['shard']['k']}/{n}")
            if key in rows:
                raise ValueError(f"Duplicate row for participant {key[0]}, question {key[1]!r} (in {d})")
            rows[key] = row
    missing = [(p, q) for q in questions for p in range(participants) if (p, q) not in rows]
    if missing:
        examples = ", ".join(f"participant {p} x {q}" for p, q in missing[:5])
        raise ValueError(
            f"The shards are incomplete: {len(missing)} of {participants * len(questions)} rows missing (e.g. {examples}). "
            "Resume the unfinished shards with --resume, then merge again."
        )
    failed = sorted({str(d) for d, cfg in zip(dirs, configs) for r in read_rows(d / RESPONSES_FILE)
                     if r["status"] == Status.ERROR})
    if failed:
        raise ValueError(f"Shards {', '.join(failed)} hold rows whose requests failed (status error): resume them with "
                         "--resume (which asks those again), then merge again.")

    with RunLock(out):
        _write_merged(out, dirs, configs, rows, questions, participants)
    return out


def _write_merged(out: Path, dirs: list[Path], configs: list[dict[str, Any]], rows: dict[tuple[int, str], dict[str, Any]],
                  questions: list[str], participants: int) -> None:
    """Rows and questions first, config.json last: a folder without it is an unfinished merge."""
    merged = dict(configs[0])
    merged["shard"] = None
    merged["participant_ids"] = list(range(participants))
    merged["merged_from"] = [{"dir": str(d.resolve()), "shard": c["shard"], "created_at": c.get("created_at")}
                             for d, c in sorted(zip(dirs, configs), key=lambda x: x[1]["shard"]["k"])]
    questions_text = (dirs[0] / QUESTIONS_FILE).read_text(encoding="utf-8") if (dirs[0] / QUESTIONS_FILE).exists() else ""
    write_atomic(out / QUESTIONS_FILE, questions_text)
    ordered = [rows[(p, q)] for q in questions for p in range(participants)]
    write_rows(out, ordered)
    write_config(out, merged)
    log.info("merged %d shards into %s: %d rows", len(dirs), out, len(ordered))
