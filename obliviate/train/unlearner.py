"""The Python API in vLLM's offline style: build once, lists in, keyword options with defaults in the signatures.

    >>> from obliviate import TrainOptions, Unlearner
    >>> injected = Unlearner(model).learn(inject_file, out=runs / "inject", options=TrainOptions(steps=2))
    >>> forgot = Unlearner(model, adapter=injected.adapter).unlearn(
    ...     forget_file, retain=retain_file, method="npo", out=runs / "npo", options=TrainOptions(steps=2))
    >>> attacked = Unlearner(model, adapter=forgot.adapter).relearn(
    ...     relearn_file, out=runs / "attack", options=TrainOptions(steps=2))
    >>> [len(r.metrics) for r in (injected, forgot, attacked)]
    [2, 2, 2]

(tests/train/test_unlearner.py runs this example.) Every job is written straight through: load the base model and
merge the adapter stack beneath (see `models.adapters`), add a fresh LoRA adapter (or train every weight with
`full=True`), compute reference log-probs once where the method needs them, run the loop (`loop.train`), and save
a run folder: config.json, metrics.jsonl, adapter/ (peft format + obliviate_adapter.json) or model/ (a whole
Hugging Face directory).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from obliviate.data.idk import idk_answer
from obliviate.data.schema import Item, load_items
from obliviate.files import adapter_dir, atomic_dir, default_device, default_dtype
from obliviate.models import adapters
from obliviate.models.encode import encode_items
from obliviate.models.load import load_model, load_processing
from obliviate.train import reference
from obliviate.train.checkpoint import PREFIX
from obliviate.train.loop import TrainOptions, train, write_config
from obliviate.train.step import METHODS, REFERENCE_METHODS, MethodOptions
from obliviate.train.stream import Stream, Streams

Data = str | Path | Sequence[Item]


@dataclass
class RunResult:
    """What a job wrote: the run folder, the adapter (or full model) it produced, and its per-step metrics."""

    run_dir: Path
    adapter: Path | None
    model_dir: Path | None
    metrics: list[dict]
    seconds: float
    reference_cached: bool | None = None  # unlearn: whether the reference log-probs came from the cache


def _items(data: Data, root: str | Path | None) -> tuple[list[Item], Path | None]:
    """Items and the folder their image paths are relative to, from a JSONL path or a list."""
    if isinstance(data, (str, Path)):
        return load_items(data), Path(data).resolve().parent
    items = list(data)
    return items, (Path(root) if root is not None else None)


class Unlearner:
    """A base model (+ an optional adapter stack beneath every job), ready to learn, unlearn and relearn."""

    def __init__(self, model: str | Path, *, adapter: str | Path | None = None, reference: str | Path | None = None,
                 lora: adapters.LoraOptions = adapters.LoraOptions(), device: str | None = None,
                 dtype: torch.dtype | None = None, cache_dir: str | Path | None = None, progress: bool = True):
        self.model_path = Path(model)
        self.stack = adapters.read_stack(model, adapter_dir(adapter) if adapter is not None else None)
        self.reference_path = Path(reference) if reference is not None else None
        self.lora = lora
        self.device = default_device(device)
        self.dtype = default_dtype(self.device, dtype)
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
              options: TrainOptions = TrainOptions(), text_only: bool = False, resume: bool = False) -> RunResult:
        """Supervised fine-tuning on `data` (how facts and fakes get in): a LoRA adapter, or every weight."""
        t0 = time.perf_counter()
        items, root = self._select(data, root, "learn data", text_only)
        examples = self._encode(items, root)
        run_dir = _run_folder(out, resume)
        model = self._policy(options.seed, full=full)
        run_dir.mkdir(parents=True, exist_ok=True)
        streams = Streams(forget=self._stream(examples, options, 0))
        write_config(run_dir, "learn", **self._config(options), data=_name(data), full=full, text_only=text_only)
        history = train(model, streams, "nll", MethodOptions(), options, run_dir, full=full, device=self.device,
                        vocab_size=len(self.tokenizer), resume=resume, desc="learn", progress=self.progress)
        return self._save(model, run_dir, history, t0, full=full)

    def relearn(self, data: Data, *, out: str | Path, root: str | Path | None = None,
                options: TrainOptions = TrainOptions(steps=20), text_only: bool = False,
                resume: bool = False) -> RunResult:
        """The relearning attack: fine-tune the unlearned model (this stack) on `data` under a fixed budget."""
        t0 = time.perf_counter()
        items, root = self._select(data, root, "relearn data", text_only)
        examples = self._encode(items, root)
        run_dir = _run_folder(out, resume)
        model = self._policy(options.seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        streams = Streams(forget=self._stream(examples, options, 0))
        write_config(run_dir, "relearn", **self._config(options), data=_name(data), text_only=text_only)
        history = train(model, streams, "nll", MethodOptions(), options, run_dir, full=False, device=self.device,
                        vocab_size=len(self.tokenizer), resume=resume, desc="relearn", progress=self.progress)
        return self._save(model, run_dir, history, t0)

    def unlearn(self, forget: Data, *, out: str | Path, method: str = "npo", retain: Data | None = None,
                retain_ratio: float | None = None, root: str | Path | None = None,
                method_options: MethodOptions = MethodOptions(), options: TrainOptions = TrainOptions(),
                text_only: bool = False, resume: bool = False) -> RunResult:
        """Make the model forget `forget` with `method`, optionally holding `retain` in place.

        `retain_ratio` = retain examples per forget example in each batch (OFFSIDE's GD uses 3); default 1.
        """
        t0 = time.perf_counter()
        m = method_options
        _check_method(method, m, retain, retain_ratio)
        f_items, f_root = self._select(forget, root, "forget set", text_only)
        chosen_answers = self._preferred(f_items, method, forget)
        forget_ex = self._encode(f_items, f_root)
        chosen_ex = self._encode(f_items, f_root, answers=chosen_answers) if chosen_answers else None
        retain_ex = None
        if retain is not None:
            retain_ex = self._encode(*self._select(retain, root, "retain set", text_only))
        run_dir = _run_folder(out, resume)
        model = self._policy(options.seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        refs = chosen_refs = cached = None
        if method in REFERENCE_METHODS:
            refs, cached = self._reference(model, forget_ex)
            chosen_refs = self._reference(model, chosen_ex)[0] if chosen_ex is not None else None
        kl_reference = self._kl_reference(model) if retain_ex is not None and m.retain_loss == "kl" else None
        retain_bs = max(1, round(options.batch_size * (retain_ratio or 1.0)))
        streams = Streams(
            forget=self._stream(forget_ex, options, 1, refs=refs),
            chosen=self._stream(chosen_ex, options, 1, refs=chosen_refs) if chosen_ex is not None else None,
            retain=self._stream(retain_ex, options, 2, batch_size=retain_bs) if retain_ex is not None else None)
        write_config(run_dir, "unlearn", **self._config(options), forget=_name(forget), retain=_name(retain),
                     method=method, retain_ratio=retain_ratio, method_options=m, text_only=text_only,
                     reference=str(self.reference_path) if self.reference_path else None)
        history = train(model, streams, method, m, options, run_dir, full=False, device=self.device,
                        vocab_size=len(self.tokenizer), kl_reference=kl_reference, resume=resume, desc="unlearn",
                        progress=self.progress)
        return self._save(model, run_dir, history, t0, reference_cached=cached)

    # -- plumbing, in the order the jobs call it ----------------------------------------------------------------

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

    def _policy(self, seed: int, *, full: bool = False):
        """The model a job trains: base + the stack beneath merged, then a fresh LoRA adapter (its initialisation
        seeded by `seed`), or every weight but the vision tower's with `full`."""
        torch.manual_seed(seed)
        loaded = load_model(self.stack.base, dtype=self.dtype, device=self.device)
        model = adapters.merge_parents(loaded.model, self.stack.parents)  # fails on an adapter for another model
        if not full:
            return adapters.add_trainable_lora(model, self.lora)
        for name, p in model.named_parameters():  # the vision tower stays frozen (as in OFFSIDE)
            p.requires_grad_("visual" not in name)
        return model

    def _reference(self, model, examples) -> tuple[list[torch.Tensor], bool]:
        """(reference log-probs of `examples`, whether they came from the disk cache); computed once otherwise."""
        key = reference.cache_key([self.stack.base, *self.stack.parents, self.reference_path], examples, self.dtype)
        with reference.cache_lock(key, cache_dir=self.cache_dir):  # another process computing it: wait, then read
            refs = reference.load_cached(key, cache_dir=self.cache_dir)
            if refs is not None:
                return refs, True
            pad_id = self.tokenizer.pad_token_id
            if self.reference_path is not None:
                ref_model = load_model(self.reference_path, dtype=self.dtype, device=self.device).model
                refs = reference.compute_reference(ref_model, examples, pad_id=pad_id, device=self.device)
            else:
                with model.disable_adapter():
                    refs = reference.compute_reference(model, examples, pad_id=pad_id, device=self.device)
            reference.store_cached(key, refs, cache_dir=self.cache_dir)
        return refs, False

    def _kl_reference(self, model):
        """What the KL retain term compares with: the policy itself (its adapter is switched off for the reference
        pass), or the `--reference` model."""
        if self.reference_path is None:
            return model
        return load_model(self.reference_path, dtype=self.dtype, device=self.device).model

    def _stream(self, examples, o: TrainOptions, number: int, *, refs=None, batch_size: int | None = None):
        return Stream(examples, batch_size or o.batch_size, self.tokenizer.pad_token_id, seed=o.seed, number=number,
                      refs=refs)

    def _config(self, options: TrainOptions) -> dict:
        return dict(model=self.stack.base, parents=list(self.stack.parents), lora=self.lora, options=options,
                    device=str(self.device), dtype=str(self.dtype))

    def _save(self, model, run_dir: Path, history, t0: float, *, full: bool = False,
              reference_cached: bool | None = None) -> RunResult:
        """Write the run's output (adapter/ or model/) atomically, then drop its checkpoints."""
        if full:
            with atomic_dir(run_dir / "model") as d:
                model.save_pretrained(d, safe_serialization=True)
                self.tokenizer.save_pretrained(d)
                for name in ("preprocessor_config.json", "generation_config.json"):
                    if (self.model_path / name).is_file() and not (d / name).is_file():
                        shutil.copy(self.model_path / name, d / name)
        else:
            with atomic_dir(run_dir / "adapter") as d:
                model.save_pretrained(d, safe_serialization=True)
                adapters.write_stack(d, self.stack)
        for ckpt in run_dir.glob(f"{PREFIX}*"):  # the run is complete: its final output supersedes them
            shutil.rmtree(ckpt)
        return RunResult(run_dir, None if full else run_dir / "adapter", run_dir / "model" if full else None,
                         history, time.perf_counter() - t0, reference_cached)


def _check_method(method: str, m: MethodOptions, retain, retain_ratio) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if retain_ratio is not None and retain is None:
        raise ValueError("--retain-ratio needs a retain set (--retain)")
    if (method == "graddiff" or m.retain_loss == "kl") and retain is None:
        raise ValueError(f"{'graddiff' if method == 'graddiff' else 'the KL retain term'} needs a retain set")
    if m.span not in ("answer", "value") or m.retain_loss not in ("nll", "kl"):
        raise ValueError(f"span must be answer|value and retain_loss nll|kl, got {m.span!r}, {m.retain_loss!r}")


def _run_folder(out, resume: bool) -> Path:
    run_dir = Path(out)
    if run_dir.exists() and not resume and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir}: run folder exists and is not empty (use --resume or another --out)")
    return run_dir


def _name(data) -> str | None:
    return str(data) if isinstance(data, (str, Path)) else (None if data is None else f"<{len(data)} items>")
