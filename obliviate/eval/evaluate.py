"""The evaluation API: probe a base model and its adapters, score every probe, aggregate by the views, save JSON.

    from obliviate.eval.evaluate import Evaluator
    from obliviate.eval.options import EvalOptions
    ev = Evaluator("models/tiny", adapters={"inject": "runs/inject", "npo_en": "runs/npo_en"}, base_name="base",
                   options=EvalOptions(max_new_tokens=24))
    result = ev.run({"forget": "world/forget.jsonl", "retain": "world/retain.jsonl"}, out="runs/eval")
    result.tables[0]  # views.Table; result.rows: one rows.ProbeRow per probe × model

Per probe × model (a *row*), in this order of work:
1. generation (backend_vllm.py: vLLM multi-LoRA, or backend_hf.py: transformers), greedy, chat template: the open
   answer (at most `options.generation_limit` of its answer's token count), and for items with `options` also the
   multiple-choice answer (OFFSIDE's prompt and parser by default: choice.py);
2. text metrics against the item (text_metrics.py): correct = the answer contains the fact `value` (normalised,
   script-aware; None for items without one, whose measure is ROUGE-L recall), exact match, ROUGE-1/2/L F1,
   ROUGE-L recall and BLEU against `answer`; for misinformation items (`truth` set, `value` = the fake)
   says_fake / says_truth;
3. log-prob scores (scoring.py, transformers + the fused kernel): answer probability, truth ratio, value
   log-probs of fake and truth, MIA scores.
Aggregates are the tables of `views.all_views` (language, language group, modality, kind, split, bounce-back, MIA
AUC, forget quality); the HTML report rebuilds them from the rows.

What the views need about each adapter is read from its run folder (config.json, written by learn / unlearn /
relearn): the job, the method, the languages of its data (the unlearning language set), the fake-data language
(languages of the misinformation items an ancestor `learn` run injected) and which relearn run attacked which
unlearned adapter (its stack). Explicit options and arguments override all of it.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Sequence

import torch

from obliviate.data.schema import DataError, Item, load_items
from obliviate.eval import views
from obliviate.eval.backend import Request, choose_backend, is_vision_model, progress_bar, read_stacks
from obliviate.eval.backend_hf import HfBackend
from obliviate.eval.backend_vllm import VllmBackend
from obliviate.eval.choice import MC_MAX_NEW_TOKENS, mc_item
from obliviate.eval.options import MAX_NEW_TOKENS, EvalOptions, generation_limit
from obliviate.eval.report import render_report
from obliviate.eval.results import RESULTS, EvalResult, write_results
from obliviate.eval.rows import EvalMeta, ProbeScores, probe_row
from obliviate.eval.scoring import score_items
from obliviate.files import adapter_dir, check_int, default_device, fingerprint, versions, write_text
from obliviate.locks import new_folder
from obliviate.models.adapters import check_fits
from obliviate.models.encode import check_lengths, collate, encode_items, prompt_ids
from obliviate.models.load import load_processing, max_positions, meta_model
from obliviate.models.logprobs import verify_once

REPORT = "report.html"
NONMEMBER_SPLITS = ("holdout",)  # MIA non-members (never trained on), in order of preference
Probes = str | Path | Sequence[str | Path] | dict[str, str | Path]
Splits = dict[str, tuple[list[Item], Path]]  # split -> (items, the folder their image paths are relative to)
Key = tuple[str, str, str]  # (model, split, probe id)


def read_probes(probes: Probes, *, limit: int | None = None, text_only: bool = False) -> Splits:
    """split name -> (items, the folder their images are relative to). A path's split is its file stem ("forget"
    for forget.jsonl); a dict names them. `text_only`: drop the items with an image (as `unlearn --text-only`);
    `limit`: then the first N items of each file."""
    if isinstance(probes, (str, Path)):
        probes = [probes]
    named = dict(probes) if isinstance(probes, dict) else {}
    if not isinstance(probes, dict):
        for p in probes:
            stem = Path(p).name.split(".")[0]
            if stem in named:
                raise ValueError(f"two probe files are both named {stem!r} ({named[stem]}, {p}); name them "
                                 "NAME=PATH")
            named[stem] = p
    if not named:
        raise ValueError("no probe files")
    out = {}
    for split, path in named.items():
        items = load_items(path)
        if text_only:
            items = [it for it in items if it.image is None]
            if not items:
                raise ValueError(f"{path}: no probe left after dropping image items (--text-only)")
        out[split] = (items[:limit] if limit is not None else items, Path(path).resolve().parent)
    return out


def request_limits(requests: Sequence[Request], tokenizer, *, max_new_tokens: int | None = None) -> list[int]:
    """How many tokens each request may generate: `max_new_tokens` for all when given; else MC_MAX_NEW_TOKENS for a
    multiple-choice prompt (its id ends in "#mc") and `generation_limit` of its answer's token count otherwise."""
    if max_new_tokens is not None:
        return [max_new_tokens] * len(requests)
    answers = sorted({r.item.answer for r in requests})
    tokens = dict(zip(answers, tokenizer(answers, add_special_tokens=False).input_ids)) if answers else {}
    return [MC_MAX_NEW_TOKENS if r.item.id.endswith("#mc") else generation_limit(len(tokens[r.item.answer]))
            for r in requests]


def run_info(adapter: str | Path | None) -> dict:
    """What an adapter's run folder says: job, method, data languages and modalities, misinformation languages."""
    if adapter is None:
        return {}
    a = adapter_dir(adapter)
    config = a.parent / "config.json"
    if a.name != "adapter" or not config.is_file():
        return {}
    try:
        cfg = json.loads(config.read_text())
    except json.JSONDecodeError:
        return {}
    info = {"job": cfg.get("job"), "method": cfg.get("method")}
    data = cfg.get("forget") if cfg.get("job") == "unlearn" else cfg.get("data")
    if data and Path(data).is_file():
        try:
            items = load_items(data)
        except DataError:
            return info
        if cfg.get("text_only"):
            items = [it for it in items if it.image is None]
        info["data_languages"] = sorted({it.language for it in items})
        info["data_modalities"] = sorted({"image" if it.image else "text" for it in items})
        info["fake_languages"] = sorted({it.language for it in items if it.truth is not None})
    return info


def describe_models(adapters: dict[str, Path], base_name: str | None,
                    stacks) -> tuple[dict[str, dict], str | None, dict[str, str]]:
    """Per-model metadata (`EvalMeta.models`), the inferred fake-data language, and the inferred relearn pairs."""
    models = {}
    if base_name is not None:
        models[base_name] = {"adapter": None, "stack": [], "job": "base"}
    by_path = {str(adapter_dir(p).resolve()): name for name, p in adapters.items()}
    fake: set[str] = set()
    pairs = {}
    for name, path in adapters.items():
        stack = list(stacks[name].parents)
        info = run_info(path)
        entry = {"adapter": str(adapter_dir(path)), "stack": stack, **info}
        if info.get("job") == "unlearn":
            entry["unlearn_languages"] = info.get("data_languages")
        for parent in stack:  # a learn run beneath (or this one) that injected misinformation: its language is L
            parent_info = run_info(parent)
            if parent_info.get("job") == "learn":
                fake.update(parent_info.get("fake_languages") or [])
        if info.get("job") == "relearn" and len(stack) >= 2 and stack[-2] in by_path:
            pairs[name] = by_path[stack[-2]]
        models[name] = entry
    return models, (fake.pop() if len(fake) == 1 else None), pairs


class Evaluator:
    """A base model and named adapters, ready to answer and score probe sets: built once, then `run` on any number
    of them (the offline style of vLLM's `LLM`).

    adapters: name -> adapter folder (or a run folder holding one). base_name: also evaluate the base model under
    this name (default: only when no adapter is given, as "base"). options: how to generate and score (`EvalOptions`).
    """

    def __init__(self, model: str | Path, *, adapters: dict[str, str | Path] | None = None,
                 base_name: str | None = None, options: EvalOptions = EvalOptions()):
        self.model_path = Path(model)
        self.adapters = {name: Path(p) for name, p in (adapters or {}).items()}
        if base_name is None and not self.adapters:
            base_name = "base"
        if base_name is not None and base_name in self.adapters:
            raise ValueError(f"--base-name {base_name!r} is also an adapter name")
        self.base_name = base_name
        self.options = options
        self.backend_kind = choose_backend(options.backend)
        default_device(options.device)  # fail now on a device that is not there
        self.tokenizer = load_processing(self.model_path)[0]  # checks the model folder's files, too
        self.max_positions = max_positions(self.model_path)
        self._hf: HfBackend | None = None
        stacks = read_stacks(self.model_path, self.adapters)
        meta = meta_model(self.model_path) if self.adapters else None
        for adapter in dict.fromkeys(p for stack in stacks.values() for p in stack.parents):
            check_fits(meta, adapter)  # another model's adapter: one line now, not a traceback when loaded
        self.models, inferred_fake, self.relearn_pairs = describe_models(self.adapters, base_name, stacks)
        self.fake_language = options.fake_language or inferred_fake
        if options.reference is not None and options.reference not in self.models:
            raise ValueError(f"reference model {options.reference!r} is not among {', '.join(self.models)}")

    def _hf_backend(self) -> HfBackend:
        if self._hf is None:
            o = self.options
            self._hf = HfBackend(self.model_path, self.adapters, batch_size=o.batch_size, dtype=o.dtype,
                                 device=o.device, progress=o.progress)
        return self._hf

    def _adapter(self, name: str) -> str | None:
        return None if name == self.base_name else name

    def _check(self, splits: Splits) -> None:
        vision = is_vision_model(self.model_path)
        for split, (items, _) in splits.items():
            for it in items:
                if it.image is not None and not vision:
                    raise ValueError(f"{split}: record {it.id} has an image but {self.model_path} is a text-only "
                                     "model (use --text-only to drop image items)")
                if it.options:
                    mc_item(it, style=self.options.mc_style)  # raises on more than 4 options
            check_lengths(prompt_ids(items, self.tokenizer, images=False), self.max_positions, source=split,
                          extra=self.options.max_new_tokens or MAX_NEW_TOKENS)
            check_lengths(encode_items(items, self.tokenizer, images=False), self.max_positions, source=split)

    def generate(self, splits: Splits) -> dict[Key, str]:
        """(model, split, probe id or id#mc) -> generation, all models and probes in one backend call per
        generation limit."""
        keys, requests = [], []
        for name in self.models:
            for split, (items, root) in splits.items():
                for it in items:
                    keys.append((name, split, it.id))
                    requests.append(Request(self._adapter(name), it, root))
                    if it.options:
                        keys.append((name, split, f"{it.id}#mc"))
                        requests.append(Request(self._adapter(name), mc_item(it, style=self.options.mc_style),
                                                root))
        if self.backend_kind == "hf":
            texts = self._generate(self._hf_backend(), requests)
        else:
            o = self.options
            with VllmBackend(self.model_path, self.adapters, cache_dir=o.cache_dir, progress=o.progress) as backend:
                texts = self._generate(backend, requests)
        return dict(zip(keys, texts))

    def _generate(self, backend, requests: list[Request]) -> list[str]:
        """Generate `requests` in one backend call per distinct limit (`request_limits`)."""
        limits = request_limits(requests, backend.tokenizer, max_new_tokens=self.options.max_new_tokens)
        texts: list[str] = [""] * len(requests)
        for limit in sorted(set(limits)):
            idx = [i for i, n in enumerate(limits) if n == limit]
            for i, text in zip(idx, backend.generate([requests[i] for i in idx], max_new_tokens=limit)):
                texts[i] = text
        return texts

    def score(self, splits: Splits) -> dict[Key, ProbeScores]:
        """(model, split, probe id) -> log-prob scores (scoring.score_items)."""
        hf = self._hf_backend()
        self._verify_logprobs(hf, splits)
        out = {}
        total = len(self.models) * sum(len(items) for items, _ in splits.values())
        bar = progress_bar(total, "score", self.options.progress)
        for name in self.models:
            with hf.activate(self._adapter(name)) as model:
                for split, (items, root) in splits.items():
                    for it, sc in zip(items, score_items(model, hf.tokenizer, items, root=root,
                                                         processor=hf.processor, device=hf.device,
                                                         batch_size=self.options.batch_size,
                                                         mia=self.options.mia)):
                        out[name, split, it.id] = sc
                    bar.update(len(items))
        bar.close()
        return out

    def _verify_logprobs(self, hf: HfBackend, splits: Splits) -> None:
        """The fused scores equal the base model's own log-probs (once per model and dtype)."""
        items, root = next(iter(splits.values()))
        examples = encode_items(items[:2], hf.tokenizer, root=root, processor=hf.processor)
        batch = {k: (v.to(hf.device) if torch.is_tensor(v) else v)
                 for k, v in collate(examples, pad_id=hf.tokenizer.pad_token_id).items()}
        with hf.activate(self._adapter(next(iter(self.models)))) as model:  # a model scored anyway
            verify_once(model, batch, key=f"{fingerprint(self.model_path)}-{str(hf.dtype).split('.')[-1]}")

    def run(self, probes: Probes, *, out: str | Path | None = None, overwrite: bool = False, report: bool = False,
            limit: int | None = None, score: bool = True, mia: tuple[str, str] | None = None,
            relearn_pairs: dict[str, str] | None = None) -> EvalResult:
        """Answer and score every probe with every model; aggregate; when `out` is given, write the folder `out`
        (results.json, and report.html with `report`) as one transaction (`files.new_folder`: locked, complete or
        absent; an existing results folder is replaced only with `overwrite`). limit: the first N probes of each
        file. mia: (member split, non-member split) for MIA AUC (default: forget vs holdout when both are present).
        relearn_pairs: {relearned: unlearned} (default: read from the runs)."""
        t0 = time.perf_counter()
        if limit is not None:
            check_int("limit", limit, minimum=1)
        splits = read_probes(probes, limit=limit, text_only=self.options.text_only)
        self._check(splits)
        with (new_folder(out, replace=overwrite, marker=RESULTS, flag="--overwrite") if out is not None
              else contextlib.nullcontext()) as folder:
            gens = self.generate(splits)
            scores = self.score(splits) if score else {}
            rows = [probe_row(name, split, it, gens[name, split, it.id], gens.get((name, split, f"{it.id}#mc")),
                              scores.get((name, split, it.id), ProbeScores()), mc_style=self.options.mc_style)
                    for name in self.models for split, (items, _) in splits.items() for it in items]
            meta = self._meta(splits, mia, relearn_pairs, t0)
            result = EvalResult(rows=rows, meta=meta, tables=views.all_views(rows, meta))
            if folder is not None:
                write_results(result, folder)
                result.path = Path(out) / RESULTS
                if report:
                    write_text(folder / REPORT, render_report(result))
        return result

    def _meta(self, splits: Splits, mia: tuple[str, str] | None, relearn_pairs: dict[str, str] | None,
              t0: float) -> EvalMeta:
        if mia is None:
            holdout = next((s for s in NONMEMBER_SPLITS if s in splits), None)
            mia = ("forget", holdout) if "forget" in splits and holdout else None
        return EvalMeta(
            model=str(self.model_path), backend=self.backend_kind, models=self.models,
            probes={s: str(root) for s, (_, root) in splits.items()},
            n_probes={s: len(items) for s, (items, _) in splits.items()},
            max_new_tokens=self.options.max_new_tokens, mc_style=self.options.mc_style,
            text_only=self.options.text_only, fake_language=self.fake_language,
            relearn_pairs=relearn_pairs if relearn_pairs is not None else self.relearn_pairs,
            mia=list(mia) if mia else None, reference=self.options.reference, versions=versions("vllm"),
            date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.perf_counter() - t0, 3))

    def close(self) -> None:
        if self._hf is not None:
            self._hf.close()
            self._hf = None
