"""The in-process llama.cpp backend on the embedded SmolLM2 GGUF (real generation, no mocks), and
the named-model resolution that assembles a GGUF from PyPI part packages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
