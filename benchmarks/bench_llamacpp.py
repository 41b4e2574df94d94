"""Is decoding participants together through llama.cpp worth it?

Equal work on the embedded SmolLM2-135M GGUF, ``--threads`` CPU threads (default 2): ``--participants``
DEF-style prompts (the paper's template, a different location each) each generate exactly
``--new-tokens`` tokens (end of generation suppressed), sampling at temperature 1, top_p 1:

(a) our ``LlamaCppBackend``: one context, shared prompt prefix, one ``llama_decode`` per step for
    every participant (``culturesim.simulator.backends.llamacpp_decoding``);
(b) llama.cpp one participant at a time: ``Llama.create_chat_completion`` in a loop, same GGUF
    (top_k 0 and min_p 0 so it samples the same distribution; EOS banned by ``logit_bias``);
(c) culturesim's ``TransformersBackend`` (float32 de-quantised weights, batched decoding loop).

Prints one line per figure and the ratios. Each side runs once after a warm-up; on a machine
shared with other jobs the figures move with the load (printed before and after).

Second workload, ``--workload memory`` (what DEF's memory plan asks of the backend): ``--participants``
participants x ``--steps`` questions, one ``generate`` call per step; each participant's prompt is
its memory (earlier requests and answers, ``culturesim.simulator.memory`` with the paper's random cap
and deletions) plus the new question with its persona, and each answer is exactly ``--new-tokens``
tokens (a fixed answer text goes into memory, so every side evaluates the same prompts):

(a) our backend keeping each participant's KV cache between calls (``reuse=True``, the default);
(b) our backend evaluating every prompt afresh (``reuse=False``);
(c) llama.cpp one participant at a time, step by step (``Llama.create_chat_completion``; it reuses
    the prefix its previous call left, i.e. the previous participant's).

``--ubatch`` and ``--threads-batch`` set llama.cpp's physical batch and prompt threads for ours (the
batching parameters tried for the equal-work line).

Measured (2 cores shared with a running study, load average 3.3-4.4; SmolLM2-135M Q4_1, 2 threads):

- memory, 6 participants x 6 questions x 24 tokens, 2 interleaved rounds: kept 21.32 tokens/s,
  afresh 13.10, llama.cpp one at a time 18.12: kept / afresh 1.63x, kept / llama.cpp 1.18x; prompt
  tokens evaluated 3,410 of 9,751 kept vs 4,446 afresh (the afresh side already shares each
  step's common prefix).
- equal work, 16 x 64 tokens, three runs: 1.85x, 1.84x (default n_ubatch) and 1.56x (n_ubatch 128);
  ours moved 53-58 tokens/s, the ratio with the one-at-a-time side's noise. An earlier run 2.03x.
  n_ubatch and prompt threads do not move it: the prompts are ~60 tokens, decoding dominates.

Run: python -m benchmarks.bench_llamacpp  (about 2-4 minutes on 2 free cores);
     python -m benchmarks.bench_llamacpp --workload memory --participants 10 --steps 15 --new-tokens 24
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before llama.cpp and torch start their thread pools

from culturesim.simulator.backends.llamacpp_backend import LlamaCppBackend  # noqa: E402
from culturesim.simulator.types import GenerationConfig, GenerationRequest  # noqa: E402

PLACES = ["Texas, Austin", "Ohio, Columbus", "California, Fresno", "New York, Buffalo", "Georgia, Atlanta",
          "Oregon, Salem", "Maine, Portland", "Iowa, Des Moines", "Utah, Provo", "Florida, Tampa",
          "Nevada, Reno", "Idaho, Boise", "Kansas, Wichita", "Alaska, Juneau", "Vermont, Burlington",
          "Hawaii, Hilo"]
QUESTION = ("It is much better for everyone involved if the man is the achiever outside the home and the woman "
            "takes care of the home and family.\n1. Strongly agree\n2. Agree\n3. Disagree\n4. Strongly disagree")


def messages(i: int) -> list[dict[str, str]]:
    place = PLACES[i % len(PLACES)]
    text = (f"I want you to act as a citizen from the United States, {place}. You should obtain an answer from 4 "
            "choices. You should tell me the answer in the format 'Answer:' and explain afterward using "
            f"'Explanation:'. Request: {QUESTION}")
    return [{"role": "user", "content": text}]


def _timed(backend, participants: int, new_tokens: int) -> tuple[int, float]:
    """Tokens generated and seconds taken for ``participants`` sampled requests of exactly
    ``new_tokens`` tokens each (after a two-request warm-up), the same work for every backend."""
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True,
                              temperature=1.0, top_p=1.0)
    requests = [GenerationRequest(messages=tuple(messages(i)), config=config, key=str(i)) for i in range(participants)]
    try:
        backend.generate(requests[:2])  # warm-up
        start = time.perf_counter()
        results = backend.generate(requests)
        elapsed = time.perf_counter() - start
    finally:
        backend.close()
    return sum(r.output_tokens for r in results), elapsed


def bench_ours(participants: int, new_tokens: int, threads: int, ubatch: int | None = None,
               threads_batch: int | None = None) -> tuple[int, float]:
    return _timed(LlamaCppBackend(n_threads=threads, batch_size=participants, seed=0, n_ubatch=ubatch,
                                  n_threads_batch=threads_batch), participants, new_tokens)


def bench_loop(participants: int, new_tokens: int, threads: int) -> tuple[int, float]:
    import llama_cpp

    probe = LlamaCppBackend(n_threads=1, batch_size=1)
    path, eog = str(probe.path), [t for t in range(probe.llm.n_vocab())
                                  if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(probe.llm.model), t)]
    probe.close()
    llm = llama_cpp.Llama(path, n_ctx=512, n_threads=threads, n_threads_batch=threads, seed=0, verbose=False)
    ban = {t: -1e9 for t in eog}

    def one(i: int) -> int:
        out = llm.create_chat_completion(messages(i), max_tokens=new_tokens, temperature=1.0, top_p=1.0, top_k=0,
                                         min_p=0.0, logit_bias=ban)
        return out["usage"]["completion_tokens"]

    try:
        one(0)  # warm-up
        start = time.perf_counter()
        tokens = sum(one(i) for i in range(participants))
        elapsed = time.perf_counter() - start
    finally:
        llm.close()
    return tokens, elapsed


def bench_transformers(participants: int, new_tokens: int, threads: int) -> tuple[int, float]:
    import torch

    from culturesim.simulator.backends.transformers_backend import TransformersBackend

    torch.set_num_threads(threads)
    return _timed(TransformersBackend(batch_size=participants, seed=0), participants, new_tokens)


STATEMENTS = ["Hard work brings a better life in the long run.", "Most people can be trusted.",
              "The government should reduce differences in income.", "Religion is very important in my life.",
              "Men make better political leaders than women do.", "Competition is good for people.",
              "It is justifiable to avoid paying a fare on public transport.", "Science makes our lives healthier.",
              "Homosexual couples are as good parents as other couples.", "Having a strong leader is a good way of "
              "governing this country.", "Private ownership of business should be increased.",
              "Children should be taught obedience at home.", "Protecting the environment should be given priority, "
              "even if it causes slower economic growth.", "Immigrants fill useful jobs in the workforce.",
              "Divorce can be justified."]
OPTIONS = ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]


def memory_workload(participants: int, steps: int, seed: int = 0):
    """Per step, every participant's messages (memory + persona question), as DEF's memory plan
    builds them, with a fixed answer remembered after each step (same prompts for every side)."""
    import random

    from culturesim.simulator.memory import Memory, memory_rng

    memories = [Memory(cap=random.Random(f"{seed}:{p}").randint(1, 15)) for p in range(participants)]
    for step in range(steps):
        statement = STATEMENTS[step % len(STATEMENTS)]
        batch = []
        for p in range(participants):
            order = random.Random(f"{seed}:{p}:{step}").sample(OPTIONS, len(OPTIONS))
            request = f"{statement}\n" + "\n".join(f"{i}. {o}" for i, o in enumerate(order, 1))
            place = PLACES[p % len(PLACES)]
            text = (f"I want you to act as a citizen from the United States ({place}). You should obtain an answer "
                    "from 4 choices. You should tell me the answer in the format 'Answer:' and explain afterward "
                    f"using 'Explanation:'. Request: {request}")
            batch.append(memories[p].messages() + [{"role": "user", "content": text}])
        yield batch
        for p in range(participants):
            memories[p].update(request, f"Answer: 2. {OPTIONS[1]}\nExplanation: I think that is mostly right, "
                               "from what I have seen where I live.", memory_rng(seed, p, step))


def _memory_ours(args, reuse: bool) -> tuple[int, float, dict[str, int]]:
    backend = LlamaCppBackend(model=args.model, n_threads=args.threads, batch_size=max(args.participants, 1), seed=0,
                              reuse=reuse, n_ubatch=args.ubatch, n_threads_batch=args.threads_batch)
    config = GenerationConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=True,
                              temperature=1.0, top_p=1.0)
    tokens = 0
    try:
        start = time.perf_counter()
        for step, batch in enumerate(memory_workload(args.participants, args.steps)):
            results = backend.generate([GenerationRequest(messages=tuple(m), config=config, key=f"{p}:{step}")
                                        for p, m in enumerate(batch)])
            tokens += sum(r.output_tokens for r in results)
        elapsed = time.perf_counter() - start
        stats = backend.reuse_stats.as_dict()
    finally:
        backend.close()
    return tokens, elapsed, stats


def _memory_loop(args) -> tuple[int, float, dict[str, int]]:
    import llama_cpp

    probe = LlamaCppBackend(model=args.model, n_threads=1, batch_size=1)
    vocab = llama_cpp.llama_model_get_vocab(probe.llm.model)
    path, eog = str(probe.path), [t for t in range(probe.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    probe.close()
    llm = llama_cpp.Llama(path, n_ctx=8192, n_threads=args.threads, n_threads_batch=args.threads, seed=0,
                          verbose=False)
    ban = {t: -1e9 for t in eog}
    tokens = prompt = 0
    try:
        start = time.perf_counter()
        for batch in memory_workload(args.participants, args.steps):
            for messages_ in batch:
                out = llm.create_chat_completion(messages_, max_tokens=args.new_tokens, temperature=1.0, top_p=1.0,
                                                 top_k=0, min_p=0.0, logit_bias=ban)
                tokens += out["usage"]["completion_tokens"]
                prompt += out["usage"]["prompt_tokens"]
        elapsed = time.perf_counter() - start
    finally:
        llm.close()
    return tokens, elapsed, {"prompt_tokens": prompt}


def memory_main(args) -> None:
    """The three sides interleaved, ``--rounds`` times (the machine's load drifts between runs of a
    minute or more); the ratios are of the summed times, the same work on every side."""
    print(f"memory workload: {args.participants} participants x {args.steps} questions, {args.new_tokens} new tokens "
          f"each, model {args.model}, {args.threads} threads, {args.rounds} interleaved rounds", flush=True)
    sides = (("ours, KV kept between calls", lambda: _memory_ours(args, True)),
             ("ours, every prompt afresh", lambda: _memory_ours(args, False)),
             ("llama.cpp one participant at a time", lambda: _memory_loop(args)))
    totals = {name: [0, 0.0] for name, _ in sides}
    for round_ in range(args.rounds):
        for name, run in sides:
            tokens, seconds, stats = run()
            totals[name][0] += tokens
            totals[name][1] += seconds
            detail = ", ".join(f"{k} {v}" for k, v in stats.items())
            print(f"round {round_ + 1}: {name}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.2f} tokens/s "
                  f"({detail}); load {os.getloadavg()[0]:.2f}", flush=True)
    figures = {name: tokens / seconds for name, (tokens, seconds) in totals.items()}
    for name, rate in figures.items():
        print(f"{name}: {rate:.2f} tokens/s over {args.rounds} rounds")
    ours = figures["ours, KV kept between calls"]
    print(f"ratio kept / afresh: {ours / figures['ours, every prompt afresh']:.2f}x")
    print(f"ratio kept / llama.cpp one at a time: {ours / figures['llama.cpp one participant at a time']:.2f}x")


def equal_main(args) -> None:
    figures = {}
    for name, run in (("llamacpp backend, batched", bench_ours),
                      ("llama.cpp one at a time (Llama.create_chat_completion loop)", bench_loop),
                      ("transformers backend, batched", bench_transformers)):
        if name.startswith("transformers") and args.skip_transformers:
            continue
        tokens, seconds = run(args.participants, args.new_tokens, args.threads) if run is not bench_ours \
            else run(args.participants, args.new_tokens, args.threads, args.ubatch, args.threads_batch)
        figures[name] = tokens / seconds
        print(f"{name}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tokens/s", flush=True)
    ours = figures["llamacpp backend, batched"]
    print(f"ratio llamacpp batched / llama.cpp one at a time: {ours / figures['llama.cpp one at a time (Llama.create_chat_completion loop)']:.2f}x (goal >= 2x)")
    if "transformers backend, batched" in figures:
        print(f"ratio llamacpp batched / transformers batched: {ours / figures['transformers backend, batched']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["equal", "memory"], default="equal")
    parser.add_argument("--participants", type=int, default=16)
    parser.add_argument("--steps", type=int, default=15, help="memory workload: questions per participant")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--threads-batch", type=int, default=None, help="ours: prompt-evaluation threads")
    parser.add_argument("--ubatch", type=int, default=None, help="ours: llama.cpp's physical batch (n_ubatch)")
    parser.add_argument("--model", default="smollm2-135m", help="memory workload: --model of the llamacpp backend")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="memory workload: interleaved repetitions")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.workload == "memory":
        memory_main(args)
    else:
        equal_main(args)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
