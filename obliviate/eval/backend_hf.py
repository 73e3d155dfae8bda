"""The transformers generation backend: greedy `generate`, batched with left padding, one model per below-stack group
(backend.py): base + the parents below are merged in memory once per group; the group's top adapters are loaded
unmerged into one `PeftModel` and switched with `set_adapter`. The same models serve log-prob scoring (`activate`).
"""
from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Iterator, Sequence

import torch

from obliviate.eval.backend import Backend, Generation, Request, below, progress_bar, stop_ids
from obliviate.eval.options import BATCH_SIZE, MAX_NEW_TOKENS
from obliviate.files import default_device, default_dtype
from obliviate.models import adapters as adapters_mod
from obliviate.models.encode import collate, prompt_ids
from obliviate.models.load import load_model


class HfBackend(Backend):
    """transformers `generate`: greedy, batched with left padding, one model per below-stack group. `device` and
    `dtype` None: `obliviate.files.default_device` / `default_dtype`."""

    def __init__(self, model: str | Path, adapters: dict[str, str | Path] | None = None, *,
                 max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = BATCH_SIZE,
                 dtype: torch.dtype | None = None, device: str | torch.device | None = None, progress: bool = False):
        super().__init__(model, adapters, max_new_tokens=max_new_tokens)
        self.device = default_device(device)
        self.dtype = default_dtype(self.device, dtype)
        self.batch_size = int(batch_size)
        self.progress = progress
        self._models: dict[tuple[str, ...], torch.nn.Module] = {}
        self._group_model(())  # load the base now: fail early, and get the tokenizer and processor
        self.stop_ids = stop_ids(self.tokenizer, self.model_path)

    def _group_model(self, group: tuple[str, ...]) -> torch.nn.Module:
        """base + `group` (a below-stack) merged, with every top adapter of the group loaded (unmerged) under its
        name."""
        if group in self._models:
            return self._models[group]
        loaded = load_model(self.stacks[None].base, dtype=self.dtype, device=self.device)
        self.tokenizer, self.processor = loaded.tokenizer, loaded.processor
        model = adapters_mod.merge_parents(loaded.model, group)
        tops = [n for n in self.stacks if n is not None and below(self.stacks, n) == group]
        if tops:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.stacks[tops[0]].parents[-1], adapter_name=tops[0],
                                              is_trainable=False)
            for name in tops[1:]:
                model.load_adapter(self.stacks[name].parents[-1], adapter_name=name, is_trainable=False)
            for name in tops:
                adapters_mod.check_placed(model, self.stacks[name].parents[-1], adapter_name=name)
        model.eval()
        self._models[group] = model
        return model

    @contextlib.contextmanager
    def activate(self, name: str | None) -> Iterator[torch.nn.Module]:
        """The model answering as adapter `name` (None: the base model, any adapter switched off)."""
        model = self._group_model(below(self.stacks, name))
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
        self.check_names(requests)
        max_new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        order = sorted(range(len(requests)), key=lambda i: (str(requests[i].adapter), requests[i].root is None))
        out: list[Generation | None] = [None] * len(requests)
        bar = progress_bar(len(requests), "generate (hf)", self.progress)
        by_name: dict[str | None, list[int]] = {}
        for i in order:
            by_name.setdefault(requests[i].adapter, []).append(i)
        for name, idx in by_name.items():
            examples = [ex for i in idx for ex in prompt_ids([requests[i].item], self.tokenizer,
                                                            root=requests[i].root, processor=self.processor)]
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
