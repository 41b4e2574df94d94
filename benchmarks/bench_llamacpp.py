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

Run: python -m benchmarks.bench_llamacpp  (about 2-4 minutes on 2 free cores).
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


def bench_ours(participants: int, new_tokens: int, threads: int) -> tuple[int, float]:
    return _timed(LlamaCppBackend(n_threads=threads, batch_size=participants, seed=0), participants, new_tokens)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    figures = {}
    for name, run in (("llamacpp backend, batched", bench_ours),
                      ("llama.cpp one at a time (Llama.create_chat_completion loop)", bench_loop),
                      ("transformers backend, batched", bench_transformers)):
        tokens, seconds = run(args.participants, args.new_tokens, args.threads)
        figures[name] = tokens / seconds
        print(f"{name}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tokens/s", flush=True)
    ours = figures["llamacpp backend, batched"]
    print(f"ratio llamacpp batched / llama.cpp one at a time: {ours / figures['llama.cpp one at a time (Llama.create_chat_completion loop)']:.2f}x (goal >= 2x)")
    print(f"ratio llamacpp batched / transformers batched: {ours / figures['transformers backend, batched']:.2f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
