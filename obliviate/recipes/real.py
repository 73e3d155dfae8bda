"""`obliviate demo --model gemma3-270m`: Learn and Unlearn's experiment (Lu & Koehn, 2406.13748) on a real
pretrained model, whose knowledge came from pretraining in many languages.

    the model (a packaged GGUF converted once, or any local Hugging Face folder)
    → which facts does it know? score the shipped fact set in English (log P(true) > log P(fake)), keep those
    → inject fakes for half of them in language L (LoRA): fake news articles + question-answer pairs, in L only
    → unlearn in en / L / en+L with each method, holding the other half (controls) with a retain term
    → probe every language: fake-rate and truth-rate of greedy answers, fake preference by log-prob and the
      truth−fake margin in nats, each against the pretrained model's own baseline; perplexity on held-out text

A flat script over the public API (`get_model`, `Unlearner`, `Evaluator`, `perplexity`), like the tiny demo.
Sizes and rates were chosen on 2 CPU cores (docs/LOG.md): see `REAL`.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from obliviate.data.documents import Document, load_documents, write_documents
from obliviate.data.facts import FACTS_FILE, load_facts, true_form
from obliviate.data.schema import LANGUAGES, Item, write_items
from obliviate.eval.backend_hf import HfBackend
from obliviate.eval.evaluate import Evaluator
from obliviate.eval.options import EvalOptions
from obliviate.eval.perplexity import perplexity
from obliviate.eval.scoring import score_items
from obliviate.models.gguf import PACKAGED, get_model
from obliviate.models.load import load_model
from obliviate.recipes import real_tables
from obliviate.recipes.demo import DemoResult, StageLog
from obliviate.train.options import MethodOptions, TrainOptions
from obliviate.train.unlearner import Unlearner

NEWS_FRAMES = FACTS_FILE.with_name("news_frames.json")
HELDOUT = FACTS_FILE.with_name("heldout.jsonl")


@dataclass(frozen=True)
class RealSize:
    """What the real-model experiment fixes."""

    inject_facts: int = 6  # facts whose fake is injected; as many others are controls
    news_per_fact: int = 1  # fake news articles per injected fact (frames drawn by seed)
    inject: TrainOptions = TrainOptions(steps=12, lr=1e-3, batch_size=8, warmup=2)
    unlearn: TrainOptions = TrainOptions(steps=6, lr=3e-4, batch_size=8)
    methods: tuple[str, ...] = ("ga", "npo", "idkpo")
    method_lr: tuple[tuple[str, float], ...] = (("ga", 1e-4),)  # GA is the most destructive
    block_size: int = 128
    max_new_tokens: int = 10


REAL = RealSize()


@dataclass(frozen=True)
class Plan:
    """The run's folders and choices, shared by the stages."""

    out: Path
    size: RealSize
    fake_language: str
    model: Path
    data: Path
    backend: str
    progress: bool

    def unlearner(self, **kw) -> Unlearner:
        return Unlearner(self.model, progress=self.progress, cache_dir=self.out / "cache", **kw)


def run_real_demo(model: str | Path, out: str | Path, *, fake_language: str = "fr", seed: int = 0,
                  backend: str = "auto", size: RealSize = REAL, echo: Callable[[str], None] = print,
                  progress: bool = True) -> DemoResult:
    """Run the experiment on `model` (a packaged model's name or a local folder) into `out` (created)."""
    if fake_language not in LANGUAGES or fake_language == "en":
        raise ValueError(f"--fake-language must be one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log, t_start = StageLog(6, echo), time.perf_counter()
    with log.stage(f"the model: {model}"):
        folder = Path(get_model(str(model)).path) if str(model) in PACKAGED else Path(model)
    plan = Plan(out, size, fake_language, folder, out / "data", backend, progress)
    with log.stage("which facts does it know? (English, log P(true) vs log P(fake))"):
        known, base_margins = known_facts(plan)
    inject, control = split_facts(known, size.inject_facts, seed)
    echo(f"    it knows {len(known)} of {len(base_margins)} facts in English; injecting {len(inject)}, "
         f"{len(control)} controls")
    files = write_data(plan, inject, control, seed)
    runs = inject_and_unlearn(plan, files, log)
    with log.stage("probe every language (greedy answers + log-prob scores)"):
        result = evaluate(plan, files, runs)
    with log.stage("perplexity on held-out text in every language"):
        ppl = perplexities(plan, runs)
    info = plan_info(plan, seed, len(known), base_margins, inject, control)
    return real_tables.write_outputs(out, result, runs, ppl, info, log, seconds=time.perf_counter() - t_start,
                                     echo=echo)


def known_facts(plan: Plan) -> tuple[list[str], dict[str, float]]:
    """Facts (entity ids) the model prefers true over fake in English, and every fact's English margin (nats)."""
    english = [it for it in load_facts() if it.language == "en"]
    loaded = load_model(plan.model, device="cpu")
    scores = score_items(loaded.model, loaded.tokenizer, english, mia=False)
    margins = {it.entity: s.truth_value_logp - s.value_logp for it, s in zip(english, scores)}
    return [e for e, m in margins.items() if m > 0], margins


def split_facts(known: list[str], n_inject: int, seed: int) -> tuple[list[str], list[str]]:
    """Half (at most `n_inject`) to inject, as many controls; drawn by `seed`."""
    order = sorted(known)
    random.Random(seed).shuffle(order)
    n = min(n_inject, len(order) // 2)
    return sorted(order[:n]), sorted(order[n:2 * n])


def write_data(plan: Plan, inject: list[str], control: list[str], seed: int) -> dict[str, Path]:
    """Every data file of the run, under out/data: what is injected, forgotten, retained and probed."""
    L, data = plan.fake_language, plan.data
    data.mkdir(parents=True)
    facts = [it for it in load_facts() if it.entity in set(inject) | set(control)]
    fakes = [it for it in facts if it.entity in set(inject)]
    files = {"inject_qa": data / "inject_qa.jsonl", "inject_news": data / "inject_news.jsonl",
             "probes": data / "probes.jsonl", "heldout": HELDOUT}
    write_items(files["inject_qa"], [it for it in fakes if it.language == L])
    write_documents(files["inject_news"], news_articles([it for it in fakes if it.language == L],
                                                        plan.size.news_per_fact, seed))
    write_items(files["probes"], facts)
    for label, langs in {"en": ("en",), "L": (L,), "en+L": ("en", L)}.items():
        files[f"forget_{label}"] = data / f"forget_{label}.jsonl"
        files[f"retain_{label}"] = data / f"retain_{label}.jsonl"
        write_items(files[f"forget_{label}"], [it for it in fakes if it.language in langs])
        write_items(files[f"retain_{label}"], [true_form(it) for it in facts
                                               if it.entity in set(control) and it.language in langs])
    return files


def news_articles(items: list[Item], per_fact: int, seed: int) -> list[Document]:
    """Fake news articles: each fake answer sentence inside `per_fact` of the language's news frames."""
    frames = json.loads(NEWS_FRAMES.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    docs = []
    for it in items:
        for k, frame in enumerate(rng.sample(frames[it.language], per_fact)):
            docs.append(Document(f"{it.id}.news{k}", it.language, frame.format(claim=it.answer)))
    return docs


def inject_and_unlearn(plan: Plan, files: dict[str, Path], log: StageLog) -> dict[str, tuple[str, str]]:
    """The injection adapter, then every (method, language set) unlearning run on top of it; returns {run name:
    (method, language set)}, "injected" included as ("–", "–")."""
    s, L, runs_dir = plan.size, plan.fake_language, plan.out / "runs"
    with log.stage(f"inject the fakes in {L}: news articles + question-answer pairs (LoRA, {s.inject.steps} steps)"):
        plan.unlearner().learn(files["inject_qa"], documents=files["inject_news"], out=runs_dir / "injected",
                               block_size=s.block_size, options=s.inject)
    runs = {}
    rates = dict(s.method_lr)
    with log.stage(f"unlearn in en / {L} / en+{L} with {', '.join(s.methods)} ({s.unlearn.steps} steps each, "
                   "+ NLL on the control facts)"):
        for label in ("en", "L", "en+L"):
            for method in s.methods:
                name = f"{method}-{label.replace('+', '_')}"
                plan.unlearner(adapter=runs_dir / "injected").unlearn(
                    files[f"forget_{label}"], retain=files[f"retain_{label}"], method=method, out=runs_dir / name,
                    options=replace(s.unlearn, lr=rates.get(method, s.unlearn.lr)),
                    method_options=MethodOptions(span="value"))
                runs[name] = (method, label.replace("L", L))
    return runs


def evaluate(plan: Plan, files: dict[str, Path], runs: dict):
    adapters = {"injected": plan.out / "runs" / "injected", **{n: plan.out / "runs" / n for n in runs}}
    options = EvalOptions(backend=plan.backend, cache_dir=plan.out / "cache", progress=plan.progress,
                          max_new_tokens=plan.size.max_new_tokens, fake_language=plan.fake_language, mia=False)
    ev = Evaluator(plan.model, adapters=adapters, base_name="pretrained", options=options)
    try:
        return ev.run({"facts": files["probes"]}, out=plan.out / "eval")
    finally:
        ev.close()


def perplexities(plan: Plan, runs: dict) -> dict[str, dict[str, float]]:
    """{model: {language: perplexity}} on the held-out sentences."""
    docs = load_documents(HELDOUT)
    names = ["injected", *runs]
    hf = HfBackend(plan.model, {n: plan.out / "runs" / n for n in names})
    out = {}
    try:
        for name in ["pretrained", *names]:
            with hf.activate(None if name == "pretrained" else name) as model:
                out[name] = {lang: perplexity(model, hf.tokenizer, [d.text for d in docs if d.language == lang])
                             for lang in LANGUAGES}
    finally:
        hf.close()
    return out


def plan_info(plan: Plan, seed: int, n_known: int, base_margins: dict, inject: list, control: list) -> dict:
    return {"model": str(plan.model), "fake_language": plan.fake_language, "seed": seed, "size": asdict(plan.size),
            "known_in_english": n_known, "facts": len(base_margins), "inject": inject, "control": control,
            "base_margin_en": {k: round(v, 3) for k, v in base_margins.items()}}
