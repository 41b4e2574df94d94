"""What do the logprob and verbalized estimators cost per question, against DEF sampling?

Same model (the embedded SmolLM2-135M on CPU unless --model), same questions, same number of
participants, one process: each estimator runs as `culturesim simulate` would
(``culturesim.simulator.runner.simulate`` for DEF sampling with plan ``all``, ``simulate_estimator`` for
``logprob`` and ``verbalized`` with plan ``none``) into a temporary run folder, and the
tokens (prompt + generated, as the rows record them) and seconds per question are compared
as ratios within this run. CPU seconds are given too: on a shared machine they move less than
wall time. The run order rotates (sampling, logprob, verbalized, then the reverse) over
``--rounds`` so machine load does not favour one side; figures add up over rounds.

Run: python -m benchmarks.bench_estimators  (about 4 minutes on 2 free cores with the defaults;
--questions 3 --participants 4 --new-tokens 32 for a quick look).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, as simulator/__init__ does

from culturesim.simulator.backends import get_backend  # noqa: E402
from culturesim.simulator.estimators.run import simulate_estimator  # noqa: E402
from culturesim.simulator.participants import PlanSettings  # noqa: E402
from culturesim.simulator.questions import load_questions  # noqa: E402
from culturesim.simulator.runfolder import read_rows  # noqa: E402
from culturesim.simulator.runner import simulate  # noqa: E402

ESTIMATORS = ("sampling", "logprob", "verbalized")


def run_one(estimator: str, out: Path, questions, backend, participants: int, new_tokens: int, seed: int,
            settings: PlanSettings) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, tokens, ok rows) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    if estimator == "sampling":
        simulate(out, questions, backend, plan="all", participants=participants, seed=seed, settings=settings,
                 max_new_tokens=new_tokens, progress=False)
    else:
        simulate_estimator(out, questions, backend, estimator, plan="none", participants=participants, seed=seed,
                           settings=settings, max_new_tokens=new_tokens, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = read_rows(out / "responses.jsonl")
    tokens = sum(int(r["tokens"]["input"]) + int(r["tokens"]["output"]) for r in rows)
    return wall, cpu, tokens, sum(r["status"] == "ok" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64, help="max new tokens for sampling and verbalized")
    parser.add_argument("--max-beams", type=int, default=2, help="DEF config plan: beams in 1..max")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the three runs, alternating their order")
    parser.add_argument("--model", default=None, help="transformers model (default: the embedded SmolLM2-135M)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.questions, args.participants, args.new_tokens, args.rounds) < 1:
        parser.error("--questions, --participants, --new-tokens and --rounds must be >= 1")
    questions = load_questions("US", limit=args.questions)
    kwargs = {"seed": args.seed, **({"model": args.model} if args.model else {})}
    started = time.perf_counter()
    backend = get_backend("transformers", **kwargs)
    settings = PlanSettings(max_beams=args.max_beams)
    totals = {e: [0.0, 0.0, 0, 0] for e in ESTIMATORS}
    print(f"setup: {backend.model_id}, {len(questions)} questions x {args.participants} participants, sampling plan all "
          f"(beams up to {args.max_beams}) and verbalized with {args.new_tokens} new tokens, logprob plan none; "
          f"{args.rounds} round(s); loaded in {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-estimators-") as tmp:
            for r in range(args.rounds):
                order = ESTIMATORS if r % 2 == 0 else tuple(reversed(ESTIMATORS))
                for estimator in order:
                    figures = run_one(estimator, Path(tmp) / f"{estimator}-{r}", questions, backend,
                                      args.participants, args.new_tokens, args.seed, settings)
                    totals[estimator] = [a + b for a, b in zip(totals[estimator], figures)]
    finally:
        backend.close()
    n = len(questions) * args.rounds
    per = {e: (t[0] / n, t[1] / n, t[2] / n) for e, t in totals.items()}
    for e in ESTIMATORS:
        wall, cpu, tokens = per[e]
        ok = totals[e][3] / (n * args.participants)
        print(f"{e}: {wall:.2f} s/question wall, {cpu:.2f} s/question CPU, {tokens:.0f} tokens/question, ok share {ok:.2f}")
    base = per["sampling"]
    for e in ("logprob", "verbalized"):
        wall, cpu, tokens = per[e]
        print(f"{e} / DEF sampling: {wall / base[0]:.3f}x seconds (wall), {cpu / base[1]:.3f}x seconds (CPU), "
              f"{tokens / base[2]:.3f}x tokens per question")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
