"""How much faster is batching simulated participants than asking them one at a time?

Same model (the embedded SmolLM2-135M on CPU), same DEF-style prompts (the paper's template with a
per-participant location), same per-participant generation configs, same run:

(a) DEF config sampling as the simulator draws it (num_beams 1..5, sampling, temperature
    0.7-1.3, top_p 0.9-1.0): our batched ``TransformersBackend`` (one decoding loop for all
    participants, ``culturesim.simulator.backends.decoding``) vs a naive loop calling ``model.generate``
    once per participant with that participant's settings.
(b) the same with num_beams=1 for everyone (per-participant temperature and top_p only).
(c) the option log-probability estimator vs DEF sampling on the same questions: seconds and
    tokens per question.

Every participant generates exactly ``--new-tokens`` tokens (min_new_tokens = max_new_tokens), so
tokens/s compare equal work. With beams, "generated tokens" counts the returned answer's tokens
(the beams' extra candidates are the method's cost, paid by both sides). The naive and batched
runs alternate question by question so both see the same machine load.

Run: python -m benchmarks.bench_generation  (about 5 minutes on 2 free cores; --questions 2 for
more questions in (b) and (c), --threads 1 on a machine shared with other jobs).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
from collections import Counter

# Before torch loads (as simulator/__init__.py does): spinning OpenMP threads slow torch down
# many times on a shared or small CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from culturesim.simulator.backends.transformers_backend import TransformersBackend, render_chat  # noqa: E402
from culturesim.simulator.estimators.logprob import logprob_distributions  # noqa: E402
from culturesim.simulator.questions import Question  # noqa: E402
from culturesim.simulator.types import GenerationConfig, GenerationRequest  # noqa: E402

TEMPLATE = (
    "I want you to act as a citizen from {country}. You should obtain an answer from {n} choices. You should "
    "tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. Request: {question}"
)
LOCATIONS = [
    "California, Los Angeles", "Texas, Houston", "Florida, Miami", "New York, New York City",
    "Pennsylvania, Philadelphia", "Illinois, Chicago", "Ohio, Columbus", "Georgia, Atlanta",
    "North Carolina, Charlotte", "Michigan, Detroit", "Arizona, Phoenix", "Washington, Seattle",
    "Massachusetts, Boston", "Tennessee, Nashville", "Colorado, Denver", "Minnesota, Minneapolis",
]


def _question(qid: str, text: str, options: list[str]) -> Question:
    n = len(options)
    return Question(
        id=qid, culture="US", language="en", question=text, options=tuple(options),
        option_codes=tuple(range(1, n + 1)), question_type="scale", ordinal=True,
        human_distribution=tuple([1 / n] * n), human_n=0,
    )


# GSS 2022 wordings (fefam, abany, natenvir, cappun).
QUESTIONS = [
    _question("gss.fefam", "It is much better for everyone involved if the man is the achiever outside the home "
              "and the woman takes care of the home and family.",
              ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]),
    _question("gss.abany", "Please tell me whether or not you think it should be possible for a pregnant woman to "
              "obtain a legal abortion if the woman wants it for any reason.", ["Yes", "No"]),
    _question("gss.natenvir", "We are faced with many problems in this country. Are we spending too much, too "
              "little, or about the right amount on improving and protecting the environment?",
              ["Too little", "About right", "Too much"]),
    _question("gss.cappun", "Do you favor or oppose the death penalty for persons convicted of murder?",
              ["Favor", "Oppose"]),
]


def def_prompt(question: Question, location: str | None) -> list[dict[str, str]]:
    country = "the United States" + (f", {location}" if location else "")
    options = "\n".join(f"{k}. {o}" for k, o in enumerate(question.options, start=1))
    text = TEMPLATE.format(country=country, n=question.num_options, question=question.question)
    return [{"role": "user", "content": f"{text}\n{options}"}]


def participant_configs(n: int, new_tokens: int, seed: int, beams: bool) -> list[GenerationConfig]:
    """DEF config sampling with the simulator's default ranges (simulator.participants.PlanSettings)."""
    configs = []
    for p in range(n):
        rng = random.Random(f"{seed}:{p}")
        configs.append(
            GenerationConfig(
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                num_beams=rng.randint(1, 5) if beams else 1,
                do_sample=True,
                temperature=round(rng.uniform(0.7, 1.3), 4),
                top_p=round(rng.uniform(0.9, 1.0), 4),
            )
        )
    return configs


def naive_generate(backend: TransformersBackend, request: GenerationRequest) -> int:
    """One participant, one plain ``model.generate`` call with its own settings; returns new tokens."""
    config = request.config
    text, special = render_chat(backend.tokenizer, request.messages)
    inputs = backend.tokenizer(text, add_special_tokens=special, return_tensors="pt")
    with torch.inference_mode():
        output = backend.model.generate(
            **inputs,
            max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens,
            num_beams=config.num_beams,
            do_sample=config.do_sample,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=0,
            pad_token_id=backend.tokenizer.pad_token_id,
        )
    return int(output.shape[1] - inputs["input_ids"].shape[1])


def run_case(backend, questions, configs, label):
    batched_s = naive_s = 0.0
    batched_tokens = naive_tokens = processed_tokens = 0
    for question in questions:
        requests = [
            GenerationRequest(messages=tuple(def_prompt(question, LOCATIONS[p % len(LOCATIONS)])), config=c,
                              key=f"p{p}:{question.id}")
            for p, c in enumerate(configs)
        ]
        started = time.perf_counter()
        for request in requests:
            naive_tokens += naive_generate(backend, request)
        naive_s += time.perf_counter() - started
        started = time.perf_counter()
        results = backend.generate(requests)
        batched_s += time.perf_counter() - started
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(f"batched generation failed: {errors[0]}")
        batched_tokens += sum(r.output_tokens for r in results)
        processed_tokens += sum(r.input_tokens + r.output_tokens for r in results)
    b_rate, n_rate = batched_tokens / batched_s, naive_tokens / naive_s
    print(f"{label} batched backend: {b_rate:.1f} generated tokens/s ({batched_tokens} tokens in {batched_s:.1f} s)")
    print(f"{label} naive one-participant loop: {n_rate:.1f} generated tokens/s ({naive_tokens} tokens in {naive_s:.1f} s)")
    print(f"{label} speed-up batched/naive: {b_rate / n_rate:.2f}x")
    return batched_s, processed_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=16)
    parser.add_argument("--questions", type=int, default=1, help=f"questions for (b) and (c), 1..{len(QUESTIONS)}")
    parser.add_argument("--beam-questions", type=int, default=1, help="questions for (a), the slowest case")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-beams", action="store_true", help="only cases (b) and (c)")
    args = parser.parse_args()
    for name in ("questions", "beam_questions"):
        if not 1 <= getattr(args, name) <= len(QUESTIONS):
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be between 1 and {len(QUESTIONS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    questions = QUESTIONS[: args.questions]

    started = time.perf_counter()
    backend = TransformersBackend(batch_size=args.participants, seed=args.seed)
    print(
        f"setup: {backend.model_id} on {backend.plan.device} ({backend.plan.dtype}, {torch.get_num_threads()} threads), "
        f"loaded in {time.perf_counter() - started:.1f} s; {args.participants} participants, "
        f"{args.new_tokens} new tokens each (min = max)"
    )

    if not args.skip_beams:
        configs = participant_configs(args.participants, args.new_tokens, args.seed, beams=True)
        beams = dict(sorted(Counter(c.num_beams for c in configs).items()))
        beam_questions = QUESTIONS[: args.beam_questions]
        print(f"(a) DEF config sampling, {len(beam_questions)} question(s): participants per num_beams {beams}; "
              f"{sum(c.num_beams for c in configs)} decoding rows in one loop (beams, temperature, top_p per request)")
        run_case(backend, beam_questions, configs, "(a)")

    configs = participant_configs(args.participants, args.new_tokens, args.seed, beams=False)
    print(f"(b) sampling only (num_beams=1, per-participant temperature/top_p), {len(questions)} question(s): "
          "all participants in one decoding loop")
    sampled_s, sampled_tokens = run_case(backend, questions, configs, "(b)")

    results = logprob_distributions(backend, questions, prompt_builder=lambda q: def_prompt(q, None))
    lp_s = sum(r["seconds"] for r in results) / len(questions)
    lp_tokens = sum(r["tokens_in"] for r in results) / len(questions)
    def_s, def_tokens = sampled_s / len(questions), sampled_tokens / len(questions)
    print(f"(c) log-prob estimator: {lp_s:.2f} s/question, {lp_tokens:.0f} tokens/question (1 forward pass)")
    print(f"(c) DEF sampling, case (b) batched, {args.participants} participants x {args.new_tokens} new tokens: "
          f"{def_s:.2f} s/question, {def_tokens:.0f} tokens/question (prompt + generated)")
    print(f"(c) DEF sampling / log-prob: {def_s / lp_s:.0f}x seconds, {def_tokens / lp_tokens:.0f}x tokens per question")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
