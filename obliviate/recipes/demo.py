"""`obliviate demo`: both papers' experiments, end to end, on the embedded world, with tiny models, on a CPU.

    world → tokenizer + tiny Qwen2 / Qwen2.5-VL → learn the true world (full fine-tuning: the "pretraining")
      text:   inject fakes in language L (LoRA) → unlearn in {en, L, en+L} × methods → probe all 9 languages
      vision: unlearn the forget players (complete), their private facts only (selective), from text alone
              (unimodal) → relearning attack → probe text and pictures
    → the papers' tables on stdout and in tables.md, every probe in eval/*/results.json, report.html

A flat script over the public API (`build_world`, `build_tiny_model`, `Unlearner`, `Evaluator`, `write_report`):
the demo only chooses data subsets and sizes. Each subset is written as world/demo-*.jsonl, so any stage can be
rerun by hand with the CLI. Stages run in order, each announced with its number and timed (`StageLog`).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from obliviate.data.schema import LANGUAGES, Item, load_items, write_items
from obliviate.data.world import build_world
from obliviate.eval.evaluate import Evaluator
from obliviate.eval.options import EvalOptions
from obliviate.eval.report import write_report
from obliviate.eval.spread import combine
from obliviate.files import write_text
from obliviate.models.tiny import build_tiny_model, tokenizer_corpus
from obliviate.recipes import demo_tables
from obliviate.recipes.sizes import SIZES, DemoSize
from obliviate.train.options import MethodOptions
from obliviate.train.unlearner import Unlearner


@dataclass
class DemoResult:
    out: Path
    tables: str  # the printed tables (markdown)
    numbers: dict = field(default_factory=dict)
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    report: Path | None = None


class StageLog:
    """Announces each stage with its number, then says how long it took."""

    def __init__(self, total: int, echo: Callable[[str], None]):
        self.total, self.n, self.echo, self.done = total, 0, echo, []

    @contextlib.contextmanager
    def stage(self, what: str):
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {what} ...")
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        self.done.append((what, round(seconds, 1)))
        self.echo(f"[{self.n}/{self.total}] {what}: done in {seconds:.1f}s")


@dataclass(frozen=True)
class Setup:
    """What every stage shares: the demo folder and size, where the world is, and how jobs and probes run."""

    out: Path
    size_name: str
    size: DemoSize
    world: Path
    fake_language: str
    roles: dict  # player id -> "fake" | "forget" | "retain" | ...
    backend: str
    progress: bool

    def unlearner(self, model, **kw) -> Unlearner:
        return Unlearner(model, progress=self.progress, cache_dir=self.out / "cache", **kw)

    def subset(self, name: str, items: list[Item]) -> Path:
        """Write a subset as WORLD/demo-NAME.jsonl: beside the world's files, so its image paths stay valid."""
        path = self.world / f"demo-{name}.jsonl"
        write_items(path, items)
        return path

    def items(self, name: str) -> list[Item]:
        return load_items(self.world / f"{name}.jsonl")


def run_demo(out: str | Path, *, size: str = "quick", fake_language: str = "fr", seed: int = 0,
             backend: str = "auto", echo: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Run the whole demo into `out` (created; an existing non-empty folder is refused)."""
    s = _check(size, fake_language)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log = StageLog(10, echo)
    t_start = time.perf_counter()
    world = out / "world"
    with log.stage(f"build the world ({s.players} players, 9 languages, fakes in {fake_language})"):
        summary = build_world(world, seed=seed, players=s.players, fake_language=fake_language,
                              fake_players=s.fake_players, forget_players=s.forget_players,
                              train_variants=s.train_variants)
    setup = Setup(out, size, s, world, fake_language, {p["id"]: p["role"] for p in summary["players"]}, backend, progress)
    with log.stage("train the tokenizer, build tiny Qwen2 and Qwen2.5-VL"):
        texts = tokenizer_corpus([it for f in ("learn", "inject", "probes") for it in setup.items(f)])
        text_model = build_tiny_model(out / "models" / "text", texts=texts, preset=s.text_preset, seed=seed)
        vl_model = build_tiny_model(out / "models" / "vl", texts=texts, preset=s.vl_preset, vision=True, seed=seed)
    echo(f"    text model {text_model.n_params:,} parameters, vision-language {vl_model.n_params:,}, "
         f"vocabulary {text_model.vocab_size}")
    text_result, runs = misinformation_experiment(setup, text_model.path, log)
    vl_result, vl_runs, pairs = offside_experiment(setup, vl_model.path, log)
    return write_outputs(setup, text_result, runs, vl_result, vl_runs, pairs, log, seed=seed,
                         seconds=time.perf_counter() - t_start, echo=echo)


def _check(size: str, fake_language: str) -> DemoSize:
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    if fake_language not in LANGUAGES or fake_language == "en":
        raise ValueError(f"--fake-language must be one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    return SIZES[size]


# -- Learn and Unlearn: multilingual misinformation ----------------------------------------------------------------

def misinformation_experiment(setup: Setup, model: Path, log: StageLog):
    """Pretrain on the true world, inject the fakes in L, unlearn in en / L / en+L with each method, probe every
    language. Returns (evaluation result, {run name: (method, unlearning set)})."""
    s, L, runs_dir = setup.size, setup.fake_language, setup.out / "runs" / "text"
    text_learn = setup.subset("text_learn", [it for it in setup.items("learn") if it.image is None
                                             and it.attribute in s.text_attributes])
    with log.stage(f"learn the true world in 9 languages (full fine-tuning, {s.pretrain.steps} steps)"):
        pretrained = setup.unlearner(model).learn(text_learn, out=runs_dir / "pretrain", full=True,
                                                  options=s.pretrain).model_dir
    with log.stage(f"inject the fakes in {L} (LoRA, {s.inject.steps} steps)"):
        injected = setup.unlearner(pretrained).learn(setup.world / "inject.jsonl", out=runs_dir / "inject",
                                                     options=s.inject).adapter
    forget_all = [it for it in setup.items("forget") if it.truth is not None and it.image is None]
    retain_all = [it for it in setup.items("retain") if it.image is None and it.attribute in s.text_attributes]
    runs: dict[str, tuple[str, str]] = {}
    with log.stage(f"unlearn in en / {L} / en+{L} with {', '.join(s.methods)} ({s.unlearn.steps} steps each, "
                   "+ NLL on retained players)"):
        for label, langs in {"en": ("en",), "L": (L,), "en+L": ("en", L)}.items():
            forget = setup.subset(f"forget_{label}", [it for it in forget_all if it.language in langs])
            retain = setup.subset(f"retain_{label}", [it for it in retain_all if it.language in langs])
            for method in s.methods:
                name = f"{method}-{label.replace('+', '_')}"
                setup.unlearner(pretrained, adapter=injected).unlearn(
                    forget, retain=retain, method=method, out=runs_dir / name,
                    options=replace(s.unlearn, lr=s.method_lr.get(method, s.unlearn.lr)),
                    method_options=MethodOptions(span="value"))
                runs[name] = (method, label.replace("L", L))
    probes = setup.items("probes")
    retain_players = sorted(p for p, r in setup.roles.items() if r == "retain")[: s.retain_probe_players]
    splits = {"misinfo": setup.subset("probe_misinfo", [it for it in probes if it.truth is not None
                                                        and it.image is None]),
              "retain": setup.subset("probe_retain", [it for it in probes if it.entity in retain_players
                                                      and it.image is None and it.attribute in s.text_attributes])}
    with log.stage("probe every language (greedy answers + log-prob scores)"):
        adapters = {"injected": injected, **{n: runs_dir / n for n in runs}}
        result = evaluate(setup, pretrained, adapters, splits, setup.out / "eval" / "text", backend=setup.backend,
                          fake_language=L)
    return result, runs


# -- OFFSIDE: vision-language --------------------------------------------------------------------------------------

def _vl(s: DemoSize, it: Item) -> bool:
    return it.language == "en" and it.attribute in s.vl_attributes


def offside_experiment(setup: Setup, model: Path, log: StageLog):
    """Pretrain the vision-language model, unlearn the forget players (complete, selective, unimodal), attack with
    relearning, probe text and pictures. Returns (evaluation result, {run: label}, {attacked run: its victim})."""
    s, runs_dir = setup.size, setup.out / "runs" / "vl"
    forget_players = {p for p, r in setup.roles.items() if r == "forget"}
    vl_learn = setup.subset("vl_learn", [it for it in setup.items("learn") if _vl(s, it)
                                         and setup.roles[it.entity] != "fake"])
    with log.stage(f"learn the players' pictures and facts (vision-language, {s.vl_pretrain.steps} steps)"):
        pretrained = setup.unlearner(model).learn(vl_learn, out=runs_dir / "pretrain", full=True,
                                                  options=s.vl_pretrain).model_dir
    forget_items = [it for it in setup.items("forget") if it.truth is None and _vl(s, it)
                    and it.entity in forget_players]
    vl_forget = setup.subset("vl_forget", forget_items)
    settings = [("complete", vl_forget, False),
                ("selective", setup.subset("vl_forget_private", [it for it in forget_items if it.kind == "private"]),
                 False),
                ("unimodal", vl_forget, True)]
    vl_retain = setup.subset("vl_retain", [it for it in setup.items("retain") if _vl(s, it)])
    vl_runs: dict[str, str] = {}
    with log.stage("unlearn the forget players: complete, selective (private only), unimodal (text only) with "
                   f"{', '.join(s.vl_methods)}"):
        for setting, forget, text_only in settings:
            for method in s.vl_methods if setting == "complete" else s.vl_methods[:1]:
                name = f"{setting}-{method}"
                setup.unlearner(pretrained).unlearn(forget, retain=vl_retain, method=method, text_only=text_only,
                                                    out=runs_dir / name, options=s.vl_unlearn,
                                                    method_options=MethodOptions(span="value"))
                vl_runs[name] = f"{method} ({setting}{', text-only' if text_only else ''})"
    relearn_items = [it for it in setup.items("relearn") if _vl(s, it)]
    vl_relearn = setup.subset("vl_relearn", relearn_items)
    pairs: dict[str, str] = {}
    with log.stage(f"relearning attack ({s.relearn.steps} steps on {len(relearn_items)} items)"):
        for name in [n for n in vl_runs if n.startswith("complete")]:
            setup.unlearner(pretrained, adapter=runs_dir / name).relearn(vl_relearn, out=runs_dir / f"{name}+relearn",
                                                                         options=s.relearn)
            pairs[f"{name}+relearn"] = name
            vl_runs[f"{name}+relearn"] = vl_runs[name] + " + relearn"
    splits = offside_probes(setup, forget_players)
    with log.stage("probe text and pictures (forget / retain / held-out)"):
        result = evaluate(setup, pretrained, {n: runs_dir / n for n in vl_runs}, splits, setup.out / "eval" / "vl",
                          backend="hf", relearn_pairs=pairs)
    return result, vl_runs, pairs


def offside_probes(setup: Setup, forget_players: set) -> dict[str, Path]:
    """forget / retain: the trained pictures and wordings; test: held-out picture variants and wordings."""
    s, probes = setup.size, setup.items("probes")
    retain_players = sorted(p for p, r in setup.roles.items() if r == "retain")[: s.retain_probe_players]
    original = [it for it in probes if _vl(s, it) and "_h" not in (it.image or "")]  # "_h": held-out variant
    return {"forget": setup.subset("vl_probe_forget", [it for it in original if it.entity in forget_players]),
            "retain": setup.subset("vl_probe_retain", [it for it in original if it.entity in retain_players]),
            "test": setup.subset("vl_probe_test", [it for it in setup.items("test") if _vl(s, it)
                                                   and it.entity in forget_players])}


def evaluate(setup: Setup, model: Path, adapters: dict, splits: dict, out: Path, *, backend, fake_language=None,
             relearn_pairs=None):
    """Every probe split answered and scored by the pretrained model and every adapter."""
    options = EvalOptions(backend=backend, cache_dir=setup.out / "cache", progress=setup.progress,
                          max_new_tokens=setup.size.max_new_tokens, fake_language=fake_language)
    ev = Evaluator(model, adapters=adapters, base_name="pretrained", options=options)
    try:
        return ev.run(splits, out=out, relearn_pairs=relearn_pairs)
    finally:
        ev.close()


# -- tables and report ---------------------------------------------------------------------------------------------

def write_outputs(setup: Setup, text_result, runs, vl_result, vl_runs, pairs, log: StageLog, *, seed: int,
                  seconds: float, echo) -> DemoResult:
    """The papers' tables (stdout, tables.md), the numbers (demo.json) and the HTML report."""
    out, L = setup.out, setup.fake_language
    numbers = {
        "misinformation": demo_tables.misinformation_numbers(text_result.rows, ["pretrained", "injected", *runs],
                                                             fake_language=L),
        "retain": demo_tables.retain_numbers(text_result.rows, ["pretrained", "injected", *runs]),
        "offside": demo_tables.offside_numbers(vl_result.rows, ["pretrained", *vl_runs]),
        "bounce_back": demo_tables.bounce_numbers(vl_result.rows, pairs),
        "labels": {"text": runs, "vision": vl_runs}, "stages": log.done, "size": asdict(setup.size),
        "fake_language": L, "seed": seed}
    tables = demo_markdown(numbers)
    report = write_report([text_result, vl_result], out / "report.html", title=f"obliviate demo ({setup.size_name})")
    log.done.append(("total", round(seconds, 1)))
    write_text(out / "tables.md", tables + "\n")
    write_text(out / "demo.json", json.dumps(numbers, indent=1, default=str) + "\n")
    echo("\n" + tables + "\n")
    echo(f"report: {report}   tables: {out / 'tables.md'}   total {seconds:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=log.done, report=report)


def demo_markdown(numbers: dict) -> str:
    """The demo's tables from its numbers: one run's, or several seeds' (`combine_seeds`)."""
    labels, L = numbers["labels"], numbers["fake_language"]
    return "\n\n".join([demo_tables.misinformation_markdown(numbers["misinformation"], labels["text"], fake_language=L),
                         demo_tables.retain_line(numbers["retain"]),
                         demo_tables.offside_markdown(numbers["offside"], labels["vision"]),
                         demo_tables.bounce_markdown(numbers["bounce_back"], labels["vision"])])


# -- several seeds ----------------------------------------------------------------------------------------------------

MEASURED = ("misinformation", "retain", "offside", "bounce_back")  # the numbers that vary with the seed


def combine_seeds(results: list[DemoResult]) -> dict:
    """The numbers of runs that differ only in their seed, with a `eval.spread.Spread` for every measured number."""
    first = results[0].numbers
    combined = {key: combine([r.numbers[key] for r in results]) for key in MEASURED}
    return {**combined, "labels": first["labels"], "fake_language": first["fake_language"],
            "size": first["size"], "seeds": [r.numbers["seed"] for r in results]}


def run_demo_seeds(out: str | Path, *, seeds: Sequence[int] = (0, 1, 2), echo: Callable[[str], None] = print,
                   **options) -> DemoResult:
    """`run_demo` once per seed into OUT/seed-N, then every table with mean ± sd over the seeds in OUT/tables.md
    and OUT/demo.json. `options`: those of `run_demo` (size, fake_language, backend, progress)."""
    out = Path(out)
    if len(set(seeds)) < 2:
        raise ValueError(f"--seeds needs at least two different seeds, got {list(seeds)}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose another --out")
    t0 = time.perf_counter()
    results = []
    for seed in seeds:
        echo(f"== seed {seed} ==")
        results.append(run_demo(out / f"seed-{seed}", seed=seed, echo=echo, **options))
    numbers = combine_seeds(results)
    title = f"Mean ± sample sd over seeds {', '.join(map(str, seeds))} (one run per seed: {out}/seed-N)"
    tables = title + "\n\n" + demo_markdown(numbers)
    write_text(out / "tables.md", tables + "\n")
    write_text(out / "demo.json", json.dumps(numbers, indent=1, default=lambda v: asdict(v)) + "\n")
    echo("\n" + tables + "\n")
    echo(f"tables: {out / 'tables.md'}   total {time.perf_counter() - t0:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=[st for r in results for st in r.stages])
