"""Where a transformers model comes from, checked before anything heavy is imported or loaded.

Why: loading a model takes seconds to minutes, and the libraries underneath fail late and
obscurely when the source is wrong (``Repo id must be in the form ...`` for a mistyped path,
23 s of silent Hub retries offline, ``cannot reshape array`` for a truncated GGUF file, a
``config.json`` error that names no file). ``resolve_model_source`` decides in milliseconds,
without torch, what ``--model`` means (the embedded model, a local folder, a local ``.gguf``
file, or a Hub id) and refuses a source that cannot work with the value and the fix; the
runner calls it before loading, and the transformers backend calls it again for API users.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from culturesim.simulator.embedded import EMBEDDED_MODEL, embedded_model_path

__all__ = ["ModelSource", "resolve_model_source", "hub_reachable"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` gets: ``source`` (a folder or a Hub id) and an optional GGUF file in it."""

    source: str
    gguf_file: str | None
    kind: str
    """``embedded``, ``local`` or ``hub``."""


def _check_config(folder: Path) -> None:
    path = folder / "config.json"
    if not path.is_file():
        return
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}): the model folder is damaged (a cut-off download?). "
            "Download the model again, or restore config.json."
        ) from None


_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""GGUF metadata value types -> their size in bytes (8 = string, 9 = array are read apart)."""


def _gguf_data_end(fh: Any) -> tuple[int, int]:
    """Parse a GGUF header (metadata and tensor table, not the weights); return (bytes the file
    must hold, tensors). Raises ValueError on a header that does not parse."""
    from gguf.constants import GGML_QUANT_SIZES  # a table; importing it loads no weights

    def read(n: int) -> bytes:
        data = fh.read(n)
        if len(data) != n:
            raise ValueError("the header ends early")
        return data

    def u32() -> int:
        return struct.unpack("<I", read(4))[0]

    def u64() -> int:
        return struct.unpack("<Q", read(8))[0]

    def string() -> str:
        return read(u64()).decode("utf-8", "replace")

    def skip(kind: int) -> None:
        if kind in _SCALARS:
            read(_SCALARS[kind])
        elif kind == 8:
            read(u64())
        elif kind == 9:
            item, count = u32(), u64()
            for _ in range(count):
                skip(item)
        else:
            raise ValueError(f"unknown metadata type {kind}")

    if read(4) != b"GGUF":
        raise ValueError("it does not start with 'GGUF'")
    version = u32()
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old")
    tensors, kvs = u64(), u64()
    alignment = 32
    for _ in range(kvs):
        key, kind = string(), u32()
        if key == "general.alignment" and kind == 4:
            alignment = u32()
        else:
            skip(kind)
    end = 0
    for _ in range(tensors):
        string()
        dims = [u64() for _ in range(u32())]
        ggml_type, offset = u32(), u64()
        block, type_size = GGML_QUANT_SIZES[ggml_type]
        elements = 1
        for d in dims:
            elements *= d
        end = max(end, offset + elements // block * type_size)
    start = fh.tell()
    start += (-start) % alignment
    return start + end, tensors


def check_gguf(path: Path) -> None:
    """Refuse a GGUF file whose header does not parse or that is shorter than its tensor table
    says (a cut-off download), in milliseconds, before transformers spends a minute on it."""
    try:
        with open(path, "rb") as fh:
            try:
                needed, tensors = _gguf_data_end(fh)
            except (ValueError, KeyError, struct.error, MemoryError, OverflowError) as exc:
                raise ValueError(f"--model {path} is not a readable GGUF file ({exc}); give a .gguf model file, a "
                                 "model folder or a Hub id, or download the file again") from None
    except OSError as exc:
        raise ValueError(f"--model {path}: cannot read the file ({exc.strerror}); check its permissions") from None
    size = path.stat().st_size
    if size < needed:
        raise ValueError(f"--model {path} is truncated: its {tensors} tensors need {needed:,} bytes but the file has "
                         f"{size:,} ({size / needed:.0%}); download it again")


def hub_reachable(endpoint: str | None = None, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the Hub endpoint opens within ``timeout_s``; else why not."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlsplit(endpoint or constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror:
        return f"{host} cannot be resolved (no network?)"
    except OSError as exc:
        return f"{host}:{port} cannot be reached ({exc.strerror or type(exc).__name__})"


def _in_cache(repo_id: str, gguf_file: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, gguf_file or "config.json")
    return isinstance(found, str)


def resolve_model_source(model: str, gguf_file: str | None = None) -> ModelSource:
    """Decide what ``model`` names and check that it can be loaded; raise ValueError naming the
    value and the fix when it cannot. A path to a ``.gguf`` file means its folder plus that file."""
    if model == EMBEDDED_MODEL:
        folder, name = embedded_model_path()
        check_gguf(Path(folder) / (gguf_file or name))
        return ModelSource(folder, gguf_file or name, "embedded")
    path = Path(os.path.expanduser(model))
    if path.exists():
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ValueError(f"--model {model} is a file but not a .gguf file; give a model folder (with "
                                 "config.json), a .gguf file, or a Hub id")
            check_gguf(path)
            return ModelSource(str(path.parent), path.name, "local")
        if gguf_file:
            check_gguf(path / gguf_file)
        elif not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f" It holds GGUF files: pass one of them as --model {path / ggufs[0]}." if ggufs else ""
            raise ValueError(f"--model {model}: the folder has no config.json, so it is not a transformers model "
                             f"folder.{hint}")
        _check_config(path)
        return ModelSource(str(path), gguf_file, "local")
    looks_like_path = model.startswith((".", "/", "~")) or model.lower().endswith(".gguf") or model.count("/") > 1 \
        or os.sep in model and not _HUB_ID.match(model)
    if looks_like_path or not _HUB_ID.match(model):
        raise ValueError(f"--model {model}: no such file or folder. Give an existing model folder or .gguf file, "
                         f"a Hugging Face Hub id (ORG/NAME), or leave --model unset for the embedded {EMBEDDED_MODEL}")
    if _in_cache(model, gguf_file):
        return ModelSource(model, gguf_file, "hub")
    why = hub_reachable()
    if why is not None:
        raise ValueError(
            f"--model {model}: not a local path, not in the local Hugging Face cache, and the Hub is unreachable "
            f"({why}). Download it where there is network (`hf download {model}`) and copy the cache "
            "(~/.cache/huggingface/hub), or give a local model folder"
        )
    return ModelSource(model, gguf_file, "hub")
