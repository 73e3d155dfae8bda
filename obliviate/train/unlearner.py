"""The Python API in vLLM's offline style: build once, lists in, keyword options with defaults in the signatures.

    >>> from obliviate import TrainOptions, Unlearner
    >>> injected = Unlearner(model).learn(inject_file, out=runs / "inject", options=TrainOptions(steps=2))
    >>> forgot = Unlearner(model, adapter=injected.adapter).unlearn(
    ...     forget_file, retain=retain_file, method="npo", out=runs / "npo", options=TrainOptions(steps=2))
    >>> attacked = Unlearner(model, adapter=forgot.adapter).relearn(
    ...     relearn_file, out=runs / "attack", options=TrainOptions(steps=2))
    >>> [len(r.metrics) for r in (injected, forgot, attacked)]
    [2, 2, 2]

(tests/train/test_unlearner.py runs this example.) Every job is written straight through: check its data (and
lengths) and what `out` holds, load the base model and merge the adapter stack beneath (see `models.adapters`), add
a fresh LoRA adapter (or train every weight with `full=True`), compute reference log-probs once where the method
needs them, then claim the run folder (`run_folder.open_run`: locked, written as a transaction), run the loop
(`loop.train`) and save into it: config.json, metrics.jsonl, adapter/ (peft format + obliviate_adapter.json) or
model/ (a whole Hugging Face directory), done.json.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from obliviate.data.documents import Document, load_documents
from obliviate.data.idk import idk_answer
from obliviate.data.schema import Item, load_items
from obliviate.files import adapter_dir, atomic_dir, check_int, check_real, default_device, default_dtype, fingerprint
from obliviate.models import adapters
from obliviate.models.encode import check_lengths, collate, encode_documents, encode_items, is_plain
from obliviate.models.load import load_model, load_processing, max_positions
from obliviate.models.logprobs import verify_once
from obliviate.train import reference
from obliviate.train.checkpoint import latest_checkpoint
from obliviate.train.loop import Diverged, train
from obliviate.train.options import METHODS, REFERENCE_METHODS, MethodOptions, TrainOptions
from obliviate.train.reference import examples_fingerprint
from obliviate.train.run_folder import decide, open_run, plain_config
from obliviate.train.stream import Stream, Streams

Data = str | Path | Sequence[Item]
Docs = str | Path | Sequence[Document]


@dataclass
class RunResult:
    """What a job wrote: the run folder, the adapter (or full model) it produced, and its per-step metrics."""

    run_dir: Path
    adapter: Path | None
    model_dir: Path | None
    metrics: list[dict]
    seconds: float
    reference_cached: bool | None = None  # unlearn: whether the reference log-probs came from the cache
    finished_before: bool = False  # resumed a run that had finished: nothing was trained


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
        if self.reference_path is not None:
            load_processing(self.reference_path)  # fail now on a reference that is no model folder
        self.lora = lora
        self.device = default_device(device)
        self.dtype = default_dtype(self.device, dtype)
        self.cache_dir = cache_dir
        self.progress = progress
        # Build once: tokenizer and image processor now (not the weights: every job loads its own copy, since
        # training changes it), and fail now on a model we cannot train.
        self.tokenizer, self.processor, self.is_vision = load_processing(self.stack.base)
        self.max_positions = max_positions(self.stack.base)

    # -- the three jobs -----------------------------------------------------------------------------------------
    # Each validates everything (options, data, lengths, the run folder's state, the model and its adapters)
    # before `_run` claims the run folder (train/run_folder.py: locked, a transaction, resumable only as itself).

    def learn(self, data: Data | None = None, *, out: str | Path, documents: Docs | None = None,
              block_size: int = 256, full: bool = False, root: str | Path | None = None,
              options: TrainOptions = TrainOptions(), text_only: bool = False, resume: bool = False,
              force: bool = False) -> RunResult:
        """Supervised fine-tuning on `data` (question-answer items) and/or `documents` (plain text, packed into
        blocks of `block_size` tokens): how facts and fakes get in. A LoRA adapter, or every weight with `full`."""
        t0 = time.perf_counter()
        examples = []
        if data is not None:
            items, root = self._select(data, root, "learn data", text_only)
            examples += self._encode(items, root, data)
        if documents is not None:
            examples += self._documents(documents, block_size)
        if not examples:
            raise ValueError("learn needs data (question-answer items) or documents")
        config = self._config("learn", options, data=_name(data), documents=_name(documents), block_size=block_size,
                              hashes={"data": examples_fingerprint(examples)}, full=full, text_only=text_only)
        if decide(out, config, resume=resume, force=force) == "finished":
            return _finished(out, t0)
        model = self._policy(options.seed, full=full)
        self._verify(model, examples)
        streams = Streams(forget=self._stream(examples, options, 0))
        return self._run(model, streams, "nll", MethodOptions(), options, out, config, resume=resume, force=force,
                         full=full, desc="learn", t0=t0)

    def relearn(self, data: Data, *, out: str | Path, root: str | Path | None = None,
                options: TrainOptions = TrainOptions(steps=20), text_only: bool = False, resume: bool = False,
                force: bool = False) -> RunResult:
        """The relearning attack: fine-tune the unlearned model (this stack) on `data` under a fixed budget."""
        t0 = time.perf_counter()
        items, root = self._select(data, root, "relearn data", text_only)
        examples = self._encode(items, root, data)
        config = self._config("relearn", options, data=_name(data),
                              hashes={"data": examples_fingerprint(examples)}, text_only=text_only)
        if decide(out, config, resume=resume, force=force) == "finished":
            return _finished(out, t0)
        model = self._policy(options.seed)
        self._verify(model, examples)
        streams = Streams(forget=self._stream(examples, options, 0))
        return self._run(model, streams, "nll", MethodOptions(), options, out, config, resume=resume, force=force,
                         desc="relearn", t0=t0)

    def unlearn(self, forget: Data, *, out: str | Path, method: str = "npo", retain: Data | None = None,
                retain_ratio: float | None = None, root: str | Path | None = None,
                method_options: MethodOptions = MethodOptions(), options: TrainOptions = TrainOptions(),
                text_only: bool = False, resume: bool = False, force: bool = False) -> RunResult:
        """Make the model forget `forget` with `method`, optionally holding `retain` in place.

        `retain_ratio` = retain examples per forget example in each batch (OFFSIDE's GD uses 3); default 1.
        """
        t0 = time.perf_counter()
        m = method_options
        _check_method(method, m, retain, retain_ratio)
        f_items, f_root = self._select(forget, root, "forget set", text_only)
        chosen_answers = self._preferred(f_items, method, forget)
        forget_ex = self._encode(f_items, f_root, forget)
        chosen_ex = self._encode(f_items, f_root, forget, answers=chosen_answers) if chosen_answers else None
        retain_ex = None
        if retain is not None:
            retain_ex = self._encode(*self._select(retain, root, "retain set", text_only), retain)
        config = self._config("unlearn", options, forget=_name(forget), retain=_name(retain), method=method,
                              retain_ratio=retain_ratio, method_options=m, text_only=text_only,
                              reference=str(self.reference_path.resolve()) if self.reference_path else None,
                              hashes={"forget": examples_fingerprint(forget_ex),
                                      "retain": examples_fingerprint(retain_ex) if retain_ex else None})
        if decide(out, config, resume=resume, force=force) == "finished":
            return _finished(out, t0)
        model = self._policy(options.seed)
        self._verify(model, forget_ex)
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
        return self._run(model, streams, method, m, options, out, config, resume=resume, force=force,
                         kl_reference=kl_reference, desc="unlearn", t0=t0, reference_cached=cached)

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

    def _documents(self, documents: Docs, block_size: int) -> list:
        """Plain documents packed into blocks (`encode.encode_documents`); text models only."""
        check_int("block_size", block_size, minimum=2)
        if self.is_vision:
            raise ValueError(f"{self.model_path}: plain documents train text models only")
        docs = load_documents(documents) if isinstance(documents, (str, Path)) else list(documents)
        if not docs:
            raise ValueError(f"{_name(documents)}: no documents")
        examples = encode_documents([d.text for d in docs], self.tokenizer, block_size=block_size)
        check_lengths(examples, self.max_positions, source=_name(documents))
        return examples

    def _encode(self, items, root, source: Data, answers=None):
        """Encode items; refuse (never truncate: the answer is what trains) one longer than the model takes."""
        examples = encode_items(items, self.tokenizer, root=root, processor=self.processor, answers=answers)
        check_lengths(examples, self.max_positions, source=_name(source) or "data")
        return examples

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

    def _verify(self, model, examples) -> None:
        """The fused log-probs equal the model's own on two examples (once per model and dtype; see
        `logprobs.verify_once`)."""
        batch = collate(examples[:2], pad_id=self.tokenizer.pad_token_id)
        batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        key = f"{fingerprint(self.stack.base, *self.stack.parents)}-{str(self.dtype).split('.')[-1]}"
        with model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext():
            verify_once(model, batch, key=key)

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

    def _config(self, job: str, options: TrainOptions, **extra) -> dict:
        """config.json: the job, the model (its folders' fingerprint), the data's content hashes, every option."""
        return plain_config(job, model=self.stack.base, parents=list(self.stack.parents),
                            model_files=fingerprint(self.stack.base, *self.stack.parents), lora=self.lora,
                            options=options, device=str(self.device), dtype=str(self.dtype),
                            prompt_format="plain" if is_plain(self.tokenizer) else "chat", **extra)

    def _run(self, model, streams: Streams, method: str, method_options: MethodOptions, options: TrainOptions,
             out, config: dict, *, resume: bool, force: bool, t0: float, desc: str, full: bool = False,
             kl_reference=None, reference_cached: bool | None = None) -> RunResult:
        """Claim the run folder, train, and save the output into it; a divergence says what it kept."""
        with open_run(out, config, resume=resume, force=force, checkpoints=options.save_every > 0) as run:
            if run.finished:  # finished by a concurrent run while this one loaded the model
                return _finished(out, t0)
            try:
                history = train(model, streams, method, method_options, options, run.work, full=full,
                                device=self.device, vocab_size=len(self.tokenizer), kl_reference=kl_reference,
                                resume=run.resume, desc=desc, progress=self.progress)
            except Diverged as err:
                kept = latest_checkpoint(run.work)
                raise Diverged(f"{run.path}: {err}; " + (f"last good checkpoint kept in {kept}" if kept else
                                                         "nothing written (--save-every N keeps checkpoints)")) from None
            self._save(model, run.work, full=full)
        return RunResult(run.path, None if full else run.path / "adapter", run.path / "model" if full else None,
                         history, time.perf_counter() - t0, reference_cached)

    def _save(self, model, work: Path, *, full: bool = False) -> None:
        """Write the run's output (adapter/ or model/) atomically into the run's folder."""
        if full:
            with atomic_dir(work / "model") as d:
                model.save_pretrained(d, safe_serialization=True)
                self.tokenizer.save_pretrained(d)
                for name in ("preprocessor_config.json", "generation_config.json"):
                    if (self.model_path / name).is_file() and not (d / name).is_file():
                        shutil.copy(self.model_path / name, d / name)
        else:
            with atomic_dir(work / "adapter") as d:
                model.save_pretrained(d, safe_serialization=True)
                adapters.write_stack(d, self.stack)


def _finished(out, t0: float) -> RunResult:
    """The result of a run that had finished before (resumed: nothing to do)."""
    out = Path(out)
    lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").is_file() else []
    return RunResult(out, out / "adapter" if (out / "adapter").is_dir() else None,
                     out / "model" if (out / "model").is_dir() else None, [json.loads(x) for x in lines],
                     time.perf_counter() - t0, finished_before=True)


def _check_method(method: str, m: MethodOptions, retain, retain_ratio) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if retain_ratio is not None and retain is None:
        raise ValueError("--retain-ratio needs a retain set (--retain)")
    if retain_ratio is not None:
        check_real("retain_ratio", retain_ratio, above=0)
    if (method == "graddiff" or m.retain_loss == "kl") and retain is None:
        raise ValueError(f"{'graddiff' if method == 'graddiff' else 'the KL retain term'} needs a retain set")


def _name(data) -> str | None:
    return str(data) if isinstance(data, (str, Path)) else (None if data is None else f"<{len(data)} items>")
