"""The Python API, in vLLM's offline style: build once, lists in, keyword options, None = defaults.

    from obliviate import Unlearner
    base = Unlearner("models/tiny")
    injected = base.learn("world/inject.jsonl", out="runs/inject", steps=40)
    forgot = Unlearner("models/tiny", adapter=injected.adapter).unlearn(
        "world/forget.jsonl", retain="world/retain.jsonl", method="npo", out="runs/npo")
    attacked = Unlearner("models/tiny", adapter=forgot.adapter).relearn("world/relearn.jsonl", out="runs/re")

Every job loads the base model, merges the adapter stack beneath (see `adapters`), adds a fresh LoRA adapter (or
trains every weight with `full=True`), runs the loop in `train`, and writes a run folder:
config.json, metrics.jsonl, adapter/ (peft format + obliviate_adapter.json) or model/ (a whole HF directory).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from obliviate.models import adapters
from obliviate.train import reference as refcache
from obliviate.models.encode import collate, encode_items
from obliviate.models.logprobs import hidden_states
from obliviate.data.idk import idk_answer
from obliviate.models.load import load_model, load_processing
from obliviate.train.step import (METHODS, REFERENCE_METHODS, MethodOptions, Objective, Stream,
                                         adapter_off_hidden)
from obliviate.data.schema import Item, load_items
from obliviate.train.loop import TrainOptions, train, write_config

Data = str | Path | Sequence[Item]


@dataclass
class RunResult:
    """What a job wrote: the run folder, the adapter (or full model) it produced, and its per-step metrics."""

    run_dir: Path
    adapter: Path | None
    model_dir: Path | None
    metrics: list[dict]
    seconds: float


def _items(data: Data, root: str | Path | None) -> tuple[list[Item], Path | None]:
    """Items and the folder their image paths are relative to, from a JSONL path or a list."""
    if isinstance(data, (str, Path)):
        return load_items(data), Path(data).resolve().parent
    items = list(data)
    return items, (Path(root) if root is not None else None)


class Unlearner:
    """A base model (+ an optional adapter stack beneath every job), ready to learn, unlearn and relearn."""

    def __init__(self, model: str | Path, *, adapter: str | Path | None = None, reference: str | Path | None = None,
                 lora: adapters.LoraOptions | None = None, device: str | None = None, dtype: torch.dtype | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True):
        self.model_path = Path(model)
        self.stack = adapters.read_stack(model, _adapter_dir(adapter) if adapter is not None else None)
        self.reference_path = Path(reference) if reference is not None else None
        self.lora = lora or adapters.LoraOptions()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # bf16 on GPUs (what the fused kernels are tuned for); fp32 on the CPU, where bf16 matmuls are slow.
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.cache_dir = cache_dir
        self.progress = progress
        # Build once: tokenizer and image processor now (not the weights: every job loads its own copy, since
        # training changes it), and fail now on a model we cannot train.
        self.tokenizer, self.processor, self.is_vision = load_processing(self.stack.base)
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{self.model_path}: the tokenizer has no chat template; obliviate formats every item "
                             "as a chat turn (add `chat_template` to tokenizer_config.json)")

    # -- the three jobs -----------------------------------------------------------------------------------------

    def learn(self, data: Data, *, out: str | Path, full: bool = False, root: str | Path | None = None,
              options: TrainOptions | None = None, text_only: bool = False, resume: bool = False) -> RunResult:
        """Supervised fine-tuning on `data` (how facts and fakes get in): a LoRA adapter, or every weight."""
        items, root = self._select(data, root, "learn data", text_only)
        examples = self._encode(items, root)
        return self._run("learn", out, options or TrainOptions(), full=full, resume=resume,
                         make=lambda model, o: Objective("learn", MethodOptions(), data=self._stream(examples, o, 0)),
                         config={"data": _name(data), "full": full, "text_only": text_only})

    def relearn(self, data: Data, *, out: str | Path, root: str | Path | None = None,
                options: TrainOptions | None = None, text_only: bool = False, resume: bool = False) -> RunResult:
        """The relearning attack: fine-tune the unlearned model (this stack) on `data` under a fixed budget."""
        items, root = self._select(data, root, "relearn data", text_only)
        examples = self._encode(items, root)
        return self._run("relearn", out, options or TrainOptions(steps=20), full=False, resume=resume,
                         make=lambda model, o: Objective("learn", MethodOptions(), data=self._stream(examples, o, 0)),
                         config={"data": _name(data), "text_only": text_only})

    def unlearn(self, forget: Data, *, out: str | Path, method: str = "npo", retain: Data | None = None,
                retain_ratio: float | None = None, root: str | Path | None = None,
                method_options: MethodOptions | None = None, options: TrainOptions | None = None,
                text_only: bool = False, resume: bool = False) -> RunResult:
        """Make the model forget `forget` with `method`, optionally holding `retain` in place.

        `retain_ratio` = retain examples per forget example in each batch (OFFSIDE's GD uses 3); default 1.
        """
        m = method_options or MethodOptions()
        options = options or TrainOptions()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if retain_ratio is not None and retain is None:
            raise ValueError("--retain-ratio needs a retain set (--retain)")
        if (method == "graddiff" or m.retain_loss == "kl") and retain is None:
            raise ValueError(f"{'graddiff' if method == 'graddiff' else 'the KL retain term'} needs a retain set")
        if m.span not in ("answer", "value") or m.retain_loss not in ("nll", "kl"):
            raise ValueError(f"span must be answer|value and retain_loss nll|kl, got {m.span!r}, {m.retain_loss!r}")
        f_items, f_root = self._select(forget, root, "forget set", text_only)
        chosen_answers = self._preferred(f_items, method, forget)
        forget_ex = self._encode(f_items, f_root)
        chosen_ex = self._encode(f_items, f_root, answers=chosen_answers) if chosen_answers else None
        retain_ex = None
        if retain is not None:
            r_items, r_root = self._select(retain, root, "retain set", text_only)
            retain_ex = self._encode(r_items, r_root)
        retain_bs = max(1, round(options.batch_size * (retain_ratio or 1.0)))

        def make(model, o: TrainOptions) -> Objective:
            refs = chosen_refs = None
            if method in REFERENCE_METHODS:
                refs = self._reference(model, forget_ex)
                chosen_refs = self._reference(model, chosen_ex) if chosen_ex is not None else None
            ref_hidden = None
            if retain_ex is not None and m.retain_loss == "kl":
                ref_hidden = self._kl_reference(model)
            return Objective(
                method, m, forget=self._stream(forget_ex, o, 1, refs=refs),
                chosen=self._stream(chosen_ex, o, 1, refs=chosen_refs) if chosen_ex is not None else None,
                retain=(Stream(retain_ex, self._collate, retain_bs, seed=o.seed, stream=2)
                        if retain_ex is not None else None),
                reference=ref_hidden)

        return self._run("unlearn", out, options, full=False, resume=resume, make=make,
                         config={"forget": _name(forget), "retain": _name(retain), "method": method,
                                 "retain_ratio": retain_ratio, "method_options": m, "text_only": text_only,
                                 "reference": str(self.reference_path) if self.reference_path else None})

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _load(self):
        loaded = load_model(self.stack.base, dtype=self.dtype, device=self.device)
        loaded.model = adapters.merge_parents(loaded.model, self.stack.parents)
        return loaded

    def _select(self, data: Data, root, what: str, text_only: bool) -> tuple[list[Item], Path | None]:
        items, root = _items(data, root)
        if text_only:  # OFFSIDE's unimodal setting: unlearn from text alone, probe with images later
            items = [it for it in items if it.image is None]
        if not items:
            raise ValueError(f"{_name(data) or what}: the {what} is empty"
                             + (" after dropping image items (--text-only)" if text_only else ""))
        if not self.is_vision and any(it.image is not None for it in items):
            bad = next(it for it in items if it.image is not None)
            raise ValueError(f"{_name(data) or what}: record {bad.id} has an image but {self.model_path} is a "
                             "text-only model (use --text-only to drop image items)")
        return items, root

    def _preferred(self, items: list[Item], method: str, source) -> list[str] | None:
        """The preferred answers of the DPO family, aligned with `items`; None for other methods."""
        if method == "idkpo":
            return [idk_answer(it.language) for it in items]
        if method != "corrective":
            return None
        out = []
        for it in items:
            if it.truth is None or it.value is None:
                raise ValueError(f"{_name(source)}: record {it.id} has no truth/value; corrective PO replaces the "
                                 "fake `value` in the answer with the `truth`")
            out.append(it.answer.replace(it.value, it.truth))
        return out

    def _encode(self, items, root, answers=None):
        return encode_items(items, self.tokenizer, root=root, processor=self.processor, answers=answers)

    def _collate(self, examples):
        return collate(examples, pad_id=self.tokenizer.pad_token_id)

    def _stream(self, examples, o: TrainOptions, stream: int, refs=None) -> Stream:
        return Stream(examples, self._collate, o.batch_size, seed=o.seed, stream=stream, refs=refs)

    def _reference(self, model, examples) -> list[torch.Tensor]:
        """Reference log-probs of `examples`, from the disk cache or computed once now."""
        key = "-".join([refcache.files_fingerprint(self.stack.base, *self.stack.parents, self.reference_path),
                        refcache.examples_fingerprint(examples), str(self.dtype).split(".")[-1]])

        def compute():
            if self.reference_path is not None:
                ref = load_model(self.reference_path, dtype=self.dtype, device=self.device).model
                return refcache.compute_reference(ref, examples, self._collate, device=self.device)
            with model.disable_adapter():
                return refcache.compute_reference(model, examples, self._collate, device=self.device)

        refs, self.last_reference_cached = refcache.cached_reference(key, compute, cache_dir=self.cache_dir)
        return refs

    def _kl_reference(self, model):
        if self.reference_path is None:
            return adapter_off_hidden(model)
        ref = load_model(self.reference_path, dtype=self.dtype, device=self.device).model
        return lambda batch: hidden_states(ref, batch)

    def _run(self, job: str, out, options: TrainOptions, *, full: bool, resume: bool, make, config) -> RunResult:
        run_dir = Path(out)
        if run_dir.exists() and not resume and any(run_dir.iterdir()):
            raise FileExistsError(f"{run_dir}: run folder exists and is not empty (use --resume or another --out)")
        t0 = time.perf_counter()
        torch.manual_seed(options.seed)
        loaded = self._load()  # merging the adapter stack fails here on an adapter made for another model
        run_dir.mkdir(parents=True, exist_ok=True)
        model = loaded.model
        if full:
            for name, p in model.named_parameters():  # the vision tower stays frozen (DESIGN §5, OFFSIDE)
                p.requires_grad_("visual" not in name)
            trainable = lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}  # noqa: E731
            load_trainable = lambda t: model.load_state_dict(t)  # noqa: E731
        else:
            model = adapters.add_trainable_lora(model, self.lora)
            trainable = lambda: adapters.adapter_tensors(model)  # noqa: E731
            load_trainable = lambda t: adapters.load_adapter_tensors(model, t)  # noqa: E731
        objective = make(model, options)
        write_config(run_dir, job, model=self.stack.base, parents=list(self.stack.parents), lora=self.lora,
                     options=options, device=str(self.device), dtype=str(self.dtype), **config)
        history = train(model, objective, options, run_dir, trainable=trainable, load_trainable=load_trainable,
                        vocab_size=len(self.tokenizer), device=self.device, resume=resume, desc=job,
                        progress=self.progress)
        adapter_dir = model_dir = None
        if full:
            model_dir = _atomic_dir(run_dir / "model", lambda d: self._save_full(model, d))
        else:
            adapter_dir = _atomic_dir(run_dir / "adapter", lambda d: self._save_adapter(model, d))
        for ckpt in run_dir.glob("ckpt-*"):  # the run is complete: its final output supersedes them
            shutil.rmtree(ckpt)
        return RunResult(run_dir, adapter_dir, model_dir, history, time.perf_counter() - t0)

    def _save_adapter(self, model, d: Path) -> None:
        model.save_pretrained(d, safe_serialization=True)
        adapters.write_stack(d, self.stack)

    def _save_full(self, model, d: Path) -> None:
        model.save_pretrained(d, safe_serialization=True)
        self.tokenizer.save_pretrained(d)
        for name in ("preprocessor_config.json", "generation_config.json"):
            if (self.model_path / name).is_file() and not (d / name).is_file():
                shutil.copy(self.model_path / name, d / name)


def _adapter_dir(path) -> Path:
    """An adapter folder, or a run folder holding one in adapter/."""
    path = Path(path)
    return path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path


def _atomic_dir(final: Path, write) -> Path:
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _name(data) -> str | None:
    return str(data) if isinstance(data, (str, Path)) else (None if data is None else f"<{len(data)} items>")

