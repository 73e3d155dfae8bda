"""`obliviate demo --model gemma3-270m`: Learn and Unlearn's experiment (Lu & Koehn, 2406.13748) on a real
pretrained model, whose knowledge came from pretraining in many languages.

    the model (a packaged GGUF converted once, or any local Hugging Face folder)
    → which facts does it know? score the shipped fact set in English (log P(true) > log P(fake)), keep those
    → write the run's fact files (OUT/facts): fakes for half of them, in every language; the other half (controls)
      true; the injection in language L only, as question-answer pairs and as fake news articles
    → the grid obliviate/recipes/grids/real.toml, through the sweep: inject (LoRA), unlearn in en / L / en+L with
      each method holding the controls with a retain term, probe every language (fake-rate and truth-rate of greedy
      answers, fake preference by log-prob, the truth−fake margin in nats, each against the pretrained model's own
      baseline)
    → perplexity on held-out text in every language, and the tables

Sizes and rates were chosen on 2 CPU cores (docs/LOG.md): the grid's [vars], and `RealSize`.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from obliviate.data.documents import Document, load_documents, write_documents
from obliviate.data.facts import FACTS_FILE, load_facts, true_form
from obliviate.data.schema import LANGUAGES, Item, write_items
from obliviate.eval.backend_hf import HfBackend
from obliviate.eval.perplexity import perplexity
from obliviate.eval.results import load_results
from obliviate.eval.scoring import score_items
from obliviate.models.gguf import PACKAGED, get_model
from obliviate.models.load import load_model
from obliviate.recipes import real_tables
from obliviate.recipes.demo import DemoResult, check_folder, run_cells, text_runs
from obliviate.recipes.sizes import GRIDS
from obliviate.sweep.grid import load_grid
from obliviate.sweep.run import Sweep

NEWS_FRAMES = FACTS_FILE.with_name("news_frames.json")
HELDOUT = FACTS_FILE.with_name("heldout.jsonl")
GRID = GRIDS / "real.toml"
OWN_VARS = {"model": "--model", "facts": "OUT/facts", "fake_language": "--fake-language", "backend": "--backend"}


@dataclass(frozen=True)
class RealSize:
    """What the real-model experiment fixes before its grid runs, and values for the grid's [vars] (steps, rates,
    batch sizes, block size, generation length: grids/real.toml lists them with their defaults)."""

    inject_facts: int = 6  # facts whose fake is injected; as many others are controls
    news_per_fact: int = 1  # fake news articles per injected fact (frames drawn by seed)
    grid: dict = field(default_factory=dict)  # e.g. {"unlearn_steps": 12}


REAL = RealSize()


@dataclass(frozen=True)
class Plan:
    """What the steps around the grid share: sizes, the fake-data language, the model and the fact files."""

    size: RealSize
    fake_language: str
    model: Path
    facts: Path  # the run's fact files


def run_real_demo(model: str | Path, out: str | Path, *, fake_language: str = "fr", seed: int = 0,
                  backend: str = "auto", size: RealSize = REAL, workers: int | None = None,
                  threads: int | None = None, echo: Callable[[str], None] = print,
                  progress: bool = True) -> DemoResult:
    """Run the experiment on `model` (a packaged model's name or a local folder) into `out` (created; a folder of
    this very demo continues where it stopped). workers, threads: as `run_demo`'s (None: one cell at a time with
    every core)."""
    if fake_language not in LANGUAGES or fake_language == "en":
        raise ValueError(f"--fake-language must be one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    own = sorted(set(size.grid) & set(OWN_VARS))
    if own:
        raise ValueError(f"--set {own[0]}: the demo sets it from {OWN_VARS[own[0]]}")
    out, t_start = Path(out), time.perf_counter()
    echo(f"the model: {model}")
    folder = Path(get_model(str(model)).path) if str(model) in PACKAGED else Path(model)
    plan = Plan(size, fake_language, folder, (out / "facts").resolve())
    grid = load_grid(GRID, vars={**size.grid, "model": str(folder.resolve()), "facts": str(plan.facts),
                                 "fake_language": fake_language, "backend": backend})
    check_folder(out, grid)
    echo("which facts does it know? (English, log P(true) vs log P(fake))")
    t0 = time.perf_counter()
    known, base_margins = known_facts(plan)
    stages = [("known facts", round(time.perf_counter() - t0, 1))]
    inject, control = split_facts(known, size.inject_facts, seed)
    echo(f"    it knows {len(known)} of {len(base_margins)} facts in English; injecting {len(inject)}, "
         f"{len(control)} controls")
    write_data(plan, inject, control, seed)
    sweep = Sweep(grid)  # planned once the fact files exist: their content is part of every cell's digest
    result = run_cells(sweep, out, workers=workers, threads=threads, branches=1, progress=progress, echo=echo)
    stages += [(o.cell.id, round(o.seconds, 1)) for o in result.outcomes]
    names = text_runs(sweep.cells, fake_language)
    evaluation = load_results(out / "eval" / "facts").renamed({cid: n[0] for cid, n in names.items()})
    runs = {name: (method, langs) for name, method, langs in names.values() if name != "injected"}
    echo("perplexity on held-out text in every language")
    t0 = time.perf_counter()
    run_dirs = {c.id: out / c.run_dir for c in sweep.cells}
    ppl = perplexities(plan, {name: run_dirs[cell_id] for cell_id, (name, _, _) in names.items()})
    stages.append(("perplexity", round(time.perf_counter() - t0, 1)))
    info = {**plan_info(plan, seed, len(known), base_margins, inject, control), "grid": sweep.grid.vars}
    return real_tables.write_outputs(out, evaluation, runs, ppl, info, stages,
                                     seconds=time.perf_counter() - t_start, echo=echo)


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


def write_data(plan: Plan, inject: list[str], control: list[str], seed: int) -> None:
    """The run's fact files in plan.facts, which the grid reads: what is injected (in L), the fakes to forget and
    the controls to retain (every language; the grid picks the unlearning languages), and the probes."""
    L = plan.fake_language
    plan.facts.mkdir(parents=True, exist_ok=True)
    facts = [it for it in load_facts() if it.entity in set(inject) | set(control)]
    fakes = [it for it in facts if it.entity in set(inject)]
    write_items(plan.facts / "inject_qa.jsonl", [it for it in fakes if it.language == L])
    write_documents(plan.facts / "inject_news.jsonl", news_articles([it for it in fakes if it.language == L],
                                                                    plan.size.news_per_fact, seed))
    write_items(plan.facts / "fakes.jsonl", fakes)
    write_items(plan.facts / "controls.jsonl", [true_form(it) for it in facts if it.entity in set(control)])
    write_items(plan.facts / "probes.jsonl", facts)


def news_articles(items: list[Item], per_fact: int, seed: int) -> list[Document]:
    """Fake news articles: each fake answer sentence inside `per_fact` of the language's news frames."""
    frames = json.loads(NEWS_FRAMES.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    docs = []
    for it in items:
        for k, frame in enumerate(rng.sample(frames[it.language], per_fact)):
            docs.append(Document(f"{it.id}.news{k}", it.language, frame.format(claim=it.answer)))
    return docs


def perplexities(plan: Plan, runs: dict[str, Path]) -> dict[str, dict[str, float]]:
    """{model: {language: perplexity}} on the held-out sentences, for the pretrained model and every run."""
    docs = load_documents(HELDOUT)
    hf = HfBackend(plan.model, runs)
    out = {}
    try:
        for name in ["pretrained", *runs]:
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
