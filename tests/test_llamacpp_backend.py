"""The in-process llama.cpp backend on the embedded SmolLM2 GGUF (real generation, no mocks), and
the named-model resolution that assembles a GGUF from PyPI part packages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from culturesim.simulator.backends import available_backends
from culturesim.simulator.backends.gguf_models import QWEN_CODER_1_5B, PartedModel, assemble, installed_part, resolve_gguf
from culturesim.simulator.backends.llamacpp_backend import LlamaCppBackend
from culturesim.simulator.backends.llamacpp_decoding import SequenceSpec, pick_token
from culturesim.simulator.cli import main as cli_main
from culturesim.simulator.types import GenerationConfig, GenerationRequest
from test_logprob import DIVORCE, FEFAM, GOD

PROMPTS = ["What is the capital of France?", "Name three colours.", "Do you agree that hard work pays off?",
           "What is 2+2?"]
GREEDY = GenerationConfig(max_new_tokens=12, do_sample=False)


def request(text: str, config: GenerationConfig = GREEDY, key: str = "") -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), config=config, key=key or text)


@pytest.fixture(scope="module")
def llama() -> LlamaCppBackend:
    backend = LlamaCppBackend(n_threads=2, batch_size=8)
    yield backend
    backend.close()


def test_registered_and_described(llama):
    assert "llamacpp" in available_backends()
    info = llama.describe()
    assert info["backend"] == "llamacpp" and info["model"] == "smollm2-135m"
    assert "num_beams" not in info["supported_params"] and "refused" in info["beam_search"]
    assert {"temperature", "top_p", "seed", "do_sample", "max_new_tokens"} <= set(info["supported_params"])


@pytest.mark.slow
def test_prompt_is_token_for_token_the_transformers_prompt(llama):
    from transformers import AutoTokenizer

    from culturesim.simulator.backends.transformers_backend import render_chat
    from culturesim.simulator.embedded import embedded_model_path

    folder, name = embedded_model_path()
    hf = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    messages = [{"role": "user", "content": "I want you to act as a citizen from the United States, Texas. Answer: 12"}]
    text, special = render_chat(hf, messages)
    assert llama.tokenizer.render(messages) == (text, special)
    assert llama.tokenizer(text, add_special_tokens=special)["input_ids"] == hf(text, add_special_tokens=special)["input_ids"]


@pytest.mark.slow
def test_batched_greedy_equals_one_at_a_time(llama):
    requests = [request(p) for p in PROMPTS]
    batched = llama.generate(requests)
    alone = [llama.generate([r])[0] for r in requests]
    assert all(r.error is None and r.text for r in batched)
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.output_tokens for r in batched] == [r.output_tokens for r in alone]


@pytest.mark.slow
def test_seeds_reproduce_whatever_shares_the_chunk(llama):
    sampled = GenerationConfig(max_new_tokens=12, do_sample=True, temperature=1.0, top_p=1.0, seed=7)
    alone = llama.generate([request(PROMPTS[0], sampled, key="p1")])[0].text
    crowded = llama.generate([request(p, sampled, key=f"k{i}") for i, p in enumerate(PROMPTS[1:])]
                             + [request(PROMPTS[0], sampled, key="p1")])[-1].text
    assert alone == crowded
    draws = {llama.generate([request(PROMPTS[0], dataclasses.replace(sampled, seed=s), key="p1")])[0].text
             for s in range(8, 12)}
    assert len(draws | {alone}) > 1  # different seeds give different samples


@pytest.mark.slow
def test_temperature_and_top_p_limits_are_greedy(llama):
    greedy = llama.generate([request(PROMPTS[1])])[0].text
    for config in (GenerationConfig(max_new_tokens=12, do_sample=True, temperature=1e-4, seed=1),
                   GenerationConfig(max_new_tokens=12, do_sample=True, temperature=0.0, seed=1),
                   GenerationConfig(max_new_tokens=12, do_sample=True, temperature=1.5, top_p=1e-6, seed=1)):
        assert llama.generate([request(PROMPTS[1], config)])[0].text == greedy, config


def test_pick_token_follows_temperature_top_p_and_bans():
    logits = np.log(np.array([0.5, 0.3, 0.2, 1e-9], dtype=np.float32))
    spec = SequenceSpec(prompt=[0], max_new_tokens=1, sample=True, top_p=0.6, rng=np.random.default_rng(0))
    draws = np.array([pick_token(logits, spec) for _ in range(4000)])
    assert set(draws) == {0, 1}  # the nucleus reaching 0.6: tokens 0 and 1
    assert abs((draws == 0).mean() - 0.5 / 0.8) < 0.03
    hot = SequenceSpec(prompt=[0], max_new_tokens=1, sample=True, temperature=100.0, rng=np.random.default_rng(0))
    flat = np.array([pick_token(logits[:3], hot) for _ in range(3000)])
    assert all(abs((flat == k).mean() - 1 / 3) < 0.04 for k in range(3))
    greedy = SequenceSpec(prompt=[0], max_new_tokens=1)
    assert pick_token(logits, greedy) == 0 and pick_token(logits, greedy, banned=np.array([0])) == 1


def test_beams_are_refused_in_one_line(llama):
    [result] = llama.generate([request("Hi", GenerationConfig(max_new_tokens=4, num_beams=3))])
    assert result.error is not None and "num_beams=3" in result.error and "num_beams=1" in result.error
    assert "\n" not in result.error


def test_min_new_tokens_and_top_logprobs(llama):
    config = GenerationConfig(max_new_tokens=6, min_new_tokens=6, do_sample=False, top_logprobs=3)
    [result] = llama.generate([request("What is 2+2?", config)])
    assert result.output_tokens == 6 and len(result.logprobs) == 6
    first = result.logprobs[0]
    assert len(first["top"]) == 3 and first["top"][0][1] >= first["top"][1][1] and first["logprob"] <= 0


@pytest.mark.slow
def test_cli_simulate_writes_rows_and_records_the_backend(tmp_path):
    out = tmp_path / "run"
    args = ["simulate", "--backend", "llamacpp", "--questions", "2", "--participants", "3", "--plan", "all",
            "--max-new-tokens", "16", "--seed", "1", "--no-progress", "--out", str(out)]
    assert cli_main(args) == 0
    rows = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["raw_text"] for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["backend"]["backend"] == "llamacpp" and "refused" in config["backend"]["beam_search"]


@pytest.mark.slow
def test_logprob_estimator_agrees_with_transformers(llama, tmp_path):
    from culturesim.simulator.backends.transformers_backend import TransformersBackend
    from culturesim.simulator.estimators.logprob import logprob_distributions

    hf = TransformersBackend()
    try:
        exact = logprob_distributions(hf, [FEFAM, DIVORCE, GOD])
    finally:
        hf.close()
    ours = logprob_distributions(llama, [FEFAM, DIVORCE, GOD])
    for a, b in zip(ours, exact):
        # Same Q4_1 weights; llama.cpp quantises activations to 8 bits and keeps the KV cache in
        # float16, transformers runs float32: measured differences up to 0.028 (mass: 0.038).
        assert np.abs(np.array(a["distribution"]) - np.array(b["distribution"])).max() < 0.05, (a, b)
        assert a["mass_on_options"] == pytest.approx(b["mass_on_options"], abs=0.06)

    # The command line path: --estimator logprob --backend llamacpp reads the options exactly, in-process.
    out = tmp_path / "llamacpp"
    assert cli_main(["simulate", "--backend", "llamacpp", "--estimator", "logprob", "--plan", "none",
                     "--questions", "2", "--participants", "2", "--seed", "3", "--no-progress", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {r["parse_method"] for r in rows} == {"logprob-local"}
    for row in rows:
        assert sum(row["distribution"]) == pytest.approx(1.0)


# ---------------------------------------------------------------- KV cache kept between calls

PERSONA = ("I want you to act as a citizen from the United States, Ohio, Columbus. You should obtain an answer from 4 "
           "choices. You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'.")
QUESTIONS = ["Is hard work the way to success?\n1. Yes\n2. Mostly\n3. Rarely\n4. No",
             "Should the government reduce income differences?\n1. Strongly agree\n2. Agree\n3. Disagree\n4. Strongly disagree",
             "How important is God in your life?\n1. Very\n2. Rather\n3. Not very\n4. Not at all",
             "Do you trust most people?\n1. Yes\n2. Mostly\n3. Rarely\n4. No"]


def memory_run(backend: LlamaCppBackend, participants: int, steps: int, config: GenerationConfig) -> list[list[str]]:
    """DEF-memory-shaped requests: each participant's prompt is its conversation so far (earlier
    questions and the model's answers) plus the next question, one generate call per step."""
    history: list[list[dict[str, str]]] = [[] for _ in range(participants)]
    texts: list[list[str]] = []
    for step in range(steps):
        requests = [GenerationRequest(messages=tuple(history[p] + [{"role": "user", "content":
                                                                      f"{PERSONA} Participant {p}. {QUESTIONS[step]}"}]),
                                      config=config, key=f"{p}:{step}") for p in range(participants)]
        results = backend.generate(requests)
        assert all(r.error is None for r in results), [r.error for r in results]
        for p, r in enumerate(results):
            history[p] += [{"role": "user", "content": QUESTIONS[step]}, {"role": "assistant", "content": r.text}]
        texts.append([r.text for r in results])
    return texts


@pytest.mark.slow
def test_reused_prefix_gives_the_logits_of_a_fresh_evaluation(llama):
    tok = llama.tokenizer
    first = [{"role": "user", "content": f"{PERSONA} {QUESTIONS[0]}"}]
    later = first + [{"role": "assistant", "content": "Answer: 2. Mostly"}, {"role": "user", "content": QUESTIONS[1]}]
    ids = [tok(tok.render(m)[0])["input_ids"] for m in (first, later)]
    fresh = LlamaCppBackend(n_threads=2, batch_size=2, reuse=False)
    try:
        expected = fresh.next_token_logprobs([ids[1]], 4)
        assert fresh.reuse_stats.kept == 0
    finally:
        fresh.close()
    before = llama.reuse_stats
    llama.next_token_logprobs([ids[0]], 1)
    got = llama.next_token_logprobs([ids[1]], 4)
    after = llama.reuse_stats
    assert after.kept - before.kept >= len(ids[0]) - 1  # the whole first prompt came from the cache
    assert after.evaluated - before.evaluated <= len(ids[0]) + len(ids[1]) - len(ids[0]) + 1
    assert np.abs(got - expected).max() < 1e-4  # measured: bit for bit equal on this machine


@pytest.mark.slow
def test_memory_shaped_requests_evaluate_fewer_prompt_tokens_and_answer_the_same():
    seeded = GenerationConfig(max_new_tokens=16, do_sample=True, temperature=1.0, top_p=0.95, seed=5)
    runs = {}
    for reuse in (True, False):
        backend = LlamaCppBackend(n_threads=2, batch_size=2, reuse=reuse, seed=3)
        try:
            runs[reuse] = (memory_run(backend, participants=2, steps=4, config=seeded), backend.reuse_stats)
        finally:
            backend.close()
    (texts, kept), (texts_fresh, fresh) = runs[True], runs[False]
    assert texts == texts_fresh  # same tokens: reuse changes no draw
    assert kept.prompt_tokens == fresh.prompt_tokens and fresh.kept == 0
    # Without reuse only the chunk's shared prefix (system turn, persona) is saved; with it every
    # step after the first continues each participant's previous prompt.
    # Measured: 935 of 1,502 prompt tokens evaluated with reuse, 1,263 without (4 short steps;
    # the saving grows with the conversation).
    assert kept.evaluated < 0.8 * fresh.evaluated and kept.kept > 0.25 * kept.prompt_tokens, (kept, fresh)


@pytest.mark.slow
def test_least_recently_used_slot_is_evicted_and_growth_keeps_the_caches():
    backend = LlamaCppBackend(n_threads=2, batch_size=1, cache_slots=2)
    say = GenerationConfig(max_new_tokens=2, do_sample=False)


    def prompt(who: str, padding: int = 0) -> tuple[dict[str, str], ...]:
        text = f"{PERSONA} I am {who}. " + "I live in a small town. " * padding + QUESTIONS[0]
        return ({"role": "user", "content": text},)

    def ask(who: str, padding: int = 0) -> tuple[int, int, int]:
        """(kept, copied, evicted) prompt tokens of one request of participant ``who``."""
        before = backend.reuse_stats
        [result] = backend.generate([GenerationRequest(messages=prompt(who, padding), config=say, key=who)])
        assert result.error is None
        after = backend.reuse_stats
        return after.kept - before.kept, after.copied - before.copied, after.evicted - before.evicted

    def whole(who: str, padding: int = 0) -> int:
        """Tokens a repeated request keeps when its slot is intact: all but the last."""
        return len(backend.tokenizer(backend.tokenizer.render(prompt(who, padding))[0])["input_ids"]) - 1

    try:
        assert ask("Ann") == (0, 0, 0)
        # Bob shares Ann's persona: copied from her slot into the empty one, hers left whole.
        kept, copied, evicted = ask("Bob")
        assert kept == 0 and copied > 40 and evicted == 0
        assert ask("Ann")[0] == whole("Ann") and ask("Bob")[0] == whole("Bob")  # each continues its own slot
        # No slot is empty: Cid takes the least recently used (Ann's), keeping the persona they share.
        assert ask("Cid")[0] > 40
        assert ask("Bob")[0] == whole("Bob")
        assert 40 < ask("Ann")[0] < whole("Ann")  # her slot was cut where Cid's prompt differs
        # A stranger sharing only the chat template's system turn evicts the least recently used slot (Bob's).
        [r] = backend.generate([GenerationRequest(messages=({"role": "user", "content": "Hello there!"},),
                                                  config=say, key="x")])
        assert r.error is None and backend.reuse_stats.evicted >= 1
        assert ask("Ann")[0] == whole("Ann")
        # A prompt longer than the slots grows the context; the slots move over, not evaluated again.
        cells = backend.context.n_ctx_seq
        assert whole("Ann", padding=120) > cells
        kept, _, _ = ask("Ann", padding=120)
        assert backend.context.n_ctx_seq > cells and kept > 40
        assert ask("Ann", padding=120)[0] == whole("Ann", padding=120)
    finally:
        backend.close()


@pytest.mark.slow
def test_resume_with_an_empty_cache_writes_the_uninterrupted_rows(tmp_path):
    """DEF's memory plan through the runner: a run whose backend kept every participant's cache
    across steps, and the same run cut mid-step and resumed on a fresh backend (empty cache),
    write the same rows."""
    from culturesim.simulator.cli import build_parser
    from culturesim.simulator.cli.simulate import main as runner_main
    from culturesim.simulator.runfolder import RESPONSES_FILE, read_rows

    argv = ["simulate", "--backend", "llamacpp", "--culture", "US", "--questions", "3", "--participants", "3",
            "--plan", "all", "--seed", "4", "--max-new-tokens", "16", "--no-progress"]

    def run(out: Path, *extra: str) -> list[dict]:
        backend = LlamaCppBackend(n_threads=2, batch_size=16, seed=4)
        try:
            args = build_parser(argv + ["--out", str(out), *extra]).parse_args(argv + ["--out", str(out), *extra])
            assert runner_main(args, backend=backend) == 0
        finally:
            backend.close()
        return [{k: v for k, v in r.items() if k != "timing"} for r in read_rows(out / RESPONSES_FILE)]

    reference = run(tmp_path / "whole")
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)
    lines = (cut / RESPONSES_FILE).read_bytes().splitlines(keepends=True)
    (cut / RESPONSES_FILE).write_bytes(b"".join(lines[:4]))  # step 0 and one row of step 1
    assert len(reference) == 9 and run(cut, "--resume") == reference


# ---------------------------------------------------------------- named models from part packages


def fake_model(folder: Path, contents: list[bytes]) -> tuple[PartedModel, dict[int, Path]]:
    paths = {}
    for i, data in enumerate(contents, start=1):
        path = folder / f"fakeparts_part{i}" / "data" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths[i] = path
    model = PartedModel(
        name="fake-model", file_name="fake.gguf", package="fakeparts_part{i}", part_file="data/part{i:02d}.bin",
        version="0.2.0", part_sizes=tuple(len(c) for c in contents),
        part_sha256=tuple(hashlib.sha256(c).hexdigest() for c in contents),
        sha256=hashlib.sha256(b"".join(contents)).hexdigest())
    return model, paths


def test_parts_assemble_once_into_the_cache(tmp_path):
    contents = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 10]
    model, paths = fake_model(tmp_path / "site", contents)
    cache = tmp_path / "cache"
    target = assemble(model, cache, locate=lambda m, i: paths[i])
    assert target == cache / "fake.gguf" and target.read_bytes() == b"".join(contents)
    # Later resolutions reuse the verified file without reading the parts.
    assert assemble(model, cache, locate=lambda m, i: None) == target


def test_a_missing_part_names_the_package_to_install(tmp_path):
    model, paths = fake_model(tmp_path / "site", [b"x" * 8, b"y" * 8, b"z" * 8])
    with pytest.raises(ValueError) as err:
        assemble(model, tmp_path / "cache", locate=lambda m, i: None if i == 2 else paths[i])
    message = str(err.value)
    assert "fakeparts-part2==0.2.0" in message and "pip install" in message and "\n" not in message
    assert not list((tmp_path / "cache").glob("*"))


def test_a_truncated_or_altered_part_is_named(tmp_path):
    model, paths = fake_model(tmp_path / "site", [b"x" * 8, b"y" * 8, b"z" * 8])
    paths[3].write_bytes(b"z" * 5)
    with pytest.raises(ValueError) as err:
        assemble(model, tmp_path / "cache", locate=lambda m, i: paths[i])
    assert str(paths[3]) in str(err.value) and "5 bytes, expected 8" in str(err.value) and "\n" not in str(err.value)
    paths[3].write_bytes(b"z" * 7 + b"!")  # same size, other bytes
    with pytest.raises(ValueError) as err:
        assemble(model, tmp_path / "cache", locate=lambda m, i: paths[i])
    assert str(paths[3]) in str(err.value) and "sha256" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "fake.gguf").exists() and not list((tmp_path / "cache").glob("*.part"))


def test_resolve_gguf_refuses_what_is_not_a_gguf_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="is a folder; the llamacpp backend needs a .gguf file; it holds m.gguf"):
        resolve_gguf(str(tmp_path))
    with pytest.raises(ValueError, match="is no such file; give a .gguf file or a named model .*qwen2.5-coder-1.5b"):
        resolve_gguf(str(tmp_path / "nope.gguf"))
    assert resolve_gguf(str(tmp_path / "m.gguf")) == tmp_path / "m.gguf"


@pytest.mark.slow
def test_the_real_qwen_model_resolves_and_answers(monkeypatch):
    """The second model, from its 22 registry packages (installed by the test: model_parts.py)."""
    from model_parts import qwen_parts_dir

    monkeypatch.syspath_prepend(str(qwen_parts_dir()))
    assert all(installed_part(QWEN_CODER_1_5B, i) is not None for i in range(1, 23))
    backend = LlamaCppBackend(model="qwen2.5-coder-1.5b", n_threads=2, batch_size=2)
    try:
        assert backend.path.stat().st_size == QWEN_CODER_1_5B.size == 1_117_320_768
        [result] = backend.generate([request("What is the capital of France? One word.",
                                             GenerationConfig(max_new_tokens=8, do_sample=False))])
    finally:
        backend.close()
    assert result.error is None and "Paris" in result.text


def test_the_study_estimate_times_generation_on_a_backend_that_keeps_its_cache(llama) -> None:
    # The KV cache kept between calls must not make the second timing batch's prompt free (it
    # did: generation was timed at 1e9 tok/s and every cell's estimate left it out).
    from culturesim.simulator.experiments.study import time_model
    from culturesim.simulator.questions import load_questions

    questions = load_questions(culture="US", language="en")[:3]
    timing = time_model(llama, questions, batch=3, max_new_tokens=6, seed=0)
    assert timing.per_input > 0
    assert 1 / timing.per_output < 10_000  # tok/s: a real rate, not a division by nearly zero
