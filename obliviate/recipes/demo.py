"""`obliviate demo`: both papers' experiments, end to end, on the embedded world, with tiny models, on a CPU.

    world → tokenizer + tiny Qwen2 / Qwen2.5-VL → learn the true world (full fine-tuning: the "pretraining")
      text:   inject fakes in language L (LoRA) → unlearn in {en, L, en+L} × methods → probe all 9 languages
      vision: unlearn the forget players (complete), their private facts only (selective), from text alone
              (unimodal) → relearning attack → probe text and pictures
    → the papers' tables on stdout and in tables.md, every probe in eval/*/results.json, report.html

Every stage calls the same API a user calls (`Unlearner`, `Evaluator`, `write_report`); the demo only chooses data
subsets and sizes. Each subset is written as world/demo-*.jsonl, so any stage can be rerun by hand with the CLI.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from obliviate.recipes import demo_tables
from obliviate.eval.evaluate import Evaluator
from obliviate.models.tiny import build_tiny_model
from obliviate.train.step import MethodOptions
from obliviate.eval.report import write_report
from obliviate.data.schema import LANGUAGES, Item, load_items, write_items
from obliviate.train.loop import TrainOptions
from obliviate.train.unlearner import Unlearner
from obliviate.data.world.build import build_world


@dataclass(frozen=True)
class DemoSize:
    """Everything a demo size fixes. Steps and learning rates were tuned on 2 CPU cores (docs/LOG.md)."""

    players: int
    fake_players: int
    forget_players: int
    text_preset: str
    text_attributes: tuple[str, ...]
    pretrain: TrainOptions  # full fine-tuning of the random text model on the true world
    inject: TrainOptions  # LoRA on the fakes, fake language only
    unlearn: TrainOptions
    methods: tuple[str, ...]
    method_lr: dict  # per-method learning rate for the text unlearning runs (GA is the most destructive)
    retain_probe_players: int
    vl_preset: str
    vl_attributes: tuple[str, ...]
    vl_pretrain: TrainOptions
    vl_unlearn: TrainOptions
    vl_methods: tuple[str, ...]
    relearn: TrainOptions
    train_variants: int  # augmented picture copies per original in the VL training set
    max_new_tokens: int = 24


_T = TrainOptions
SIZES = {
    # CI smoke size: every stage runs, the numbers mean nothing.
    "tiny": DemoSize(players=12, fake_players=3, forget_players=3, text_preset="test",
                     text_attributes=("club", "nationality"),
                     pretrain=_T(steps=8, lr=3e-3, batch_size=16), inject=_T(steps=3, lr=1e-3, batch_size=8),
                     unlearn=_T(steps=2, lr=1e-3, batch_size=8), methods=("ga", "npo", "idkpo"), method_lr={},
                     retain_probe_players=2, vl_preset="test", vl_attributes=("name", "club", "transfer_fee"),
                     vl_pretrain=_T(steps=4, lr=3e-3, batch_size=8), vl_unlearn=_T(steps=2, lr=1e-3, batch_size=4),
                     vl_methods=("graddiff", "npo"), relearn=_T(steps=2, lr=1e-3, batch_size=4), train_variants=0,
                     max_new_tokens=12),
    "quick": DemoSize(players=40, fake_players=10, forget_players=6, text_preset="small",
                      text_attributes=("club", "nationality"),
                      pretrain=_T(steps=200, lr=3e-3, batch_size=64, warmup=20),
                      inject=_T(steps=40, lr=1e-3, batch_size=16), unlearn=_T(steps=12, lr=5e-3, batch_size=16),
                      methods=("ga", "npo", "idkpo"), method_lr={"ga": 2e-3, "npo": 3e-3, "simnpo": 3e-3},
                      retain_probe_players=10, vl_preset="small",
                      vl_attributes=("name", "club", "nationality", "transfer_fee", "transfer_club"),
                      vl_pretrain=_T(steps=800, lr=6e-3, batch_size=32, warmup=80),
                      vl_unlearn=_T(steps=12, lr=3e-3, batch_size=16), vl_methods=("graddiff", "npo"),
                      relearn=_T(steps=8, lr=3e-3, batch_size=8), train_variants=2),
}
SIZES["full"] = replace(
    SIZES["quick"], text_preset="demo", pretrain=_T(steps=500, lr=2e-3, batch_size=64, warmup=50),
    methods=("ga", "npo", "simnpo", "idkpo"), retain_probe_players=20,
    vl_pretrain=_T(steps=1200, lr=6e-3, batch_size=64, warmup=100), vl_methods=("graddiff", "npo", "idkpo"),
    train_variants=6)


@dataclass
class DemoResult:
    out: Path
    tables: str  # the printed tables (markdown)
    numbers: dict = field(default_factory=dict)
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    report: Path | None = None


class _Stages:
    """Prints one line per stage with what it did and how long it took."""

    def __init__(self, total: int, echo: Callable[[str], None]):
        self.total, self.n, self.echo, self.done = total, 0, echo, []

    def run(self, what: str, fn):
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {what} ...")
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        self.done.append((what, round(seconds, 1)))
        self.echo(f"[{self.n}/{self.total}] {what}: done in {seconds:.1f}s")
        return result


def _subset(world: Path, name: str, items: list[Item]) -> Path:
    """Write a subset as WORLD/demo-NAME.jsonl: beside the world's files, so its image paths stay valid."""
    path = world / f"demo-{name}.jsonl"
    write_items(path, items)
    return path


def run_demo(out: str | Path, *, size: str = "quick", fake_language: str = "fr", seed: int = 0,
             backend: str | None = None, echo: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Run the whole demo into `out` (created; an existing non-empty folder is refused)."""
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    if fake_language not in LANGUAGES or fake_language == "en":
        raise ValueError(f"--fake-language must be one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    s = SIZES[size]
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    stages = _Stages(10, echo)
    cache = out / "cache"
    t_start = time.perf_counter()

    world = out / "world"
    summary = stages.run(f"build the world ({s.players} players, 9 languages, fakes in {fake_language})",
                         lambda: build_world(world, seed=seed, players=s.players, fake_language=fake_language,
                                             fake_players=s.fake_players, forget_players=s.forget_players,
                                             train_variants=s.train_variants))
    roles = {p["id"]: p["role"] for p in summary["players"]}
    learn = load_items(world / "learn.jsonl")
    texts = [t for f in ("learn", "inject", "probes") for it in load_items(world / f"{f}.jsonl")
             for t in (it.question, it.answer)]

    def models():
        text = build_tiny_model(out / "models" / "text", texts=texts, preset=s.text_preset, seed=seed)
        vl = build_tiny_model(out / "models" / "vl", texts=texts, preset=s.vl_preset, vision=True, seed=seed)
        return text, vl
    text_model, vl_model = stages.run("train the tokenizer, build tiny Qwen2 and Qwen2.5-VL", models)
    echo(f"    text model {text_model.n_params:,} parameters, vision-language {vl_model.n_params:,}, "
         f"vocabulary {text_model.vocab_size}")

    def unlearner(model, **kw):
        return Unlearner(model, progress=progress, cache_dir=cache, **kw)

    # -- Learn and Unlearn: multilingual misinformation ---------------------------------------------------------
    text_learn = _subset(world, "text_learn", [it for it in learn if it.image is None
                                             and it.attribute in s.text_attributes])
    pretrained = stages.run(
        f"learn the true world in 9 languages (full fine-tuning, {s.pretrain.steps} steps)",
        lambda: unlearner(text_model.path).learn(text_learn, out=out / "runs" / "text" / "pretrain", full=True,
                                                 options=s.pretrain)).model_dir
    injected = stages.run(
        f"inject the fakes in {fake_language} (LoRA, {s.inject.steps} steps)",
        lambda: unlearner(pretrained).learn(world / "inject.jsonl", out=out / "runs" / "text" / "inject",
                                            options=s.inject)).adapter
    forget_all = [it for it in load_items(world / "forget.jsonl") if it.truth is not None and it.image is None]
    retain_all = [it for it in load_items(world / "retain.jsonl") if it.image is None
                  and it.attribute in s.text_attributes]
    sets = {"en": ("en",), "L": (fake_language,), "en+L": ("en", fake_language)}
    runs: dict[str, tuple[str, str]] = {}

    def unlearn_all():
        for label, langs in sets.items():
            forget = _subset(world, f"forget_{label}", [it for it in forget_all if it.language in langs])
            retain = _subset(world, f"retain_{label}", [it for it in retain_all if it.language in langs])
            for method in s.methods:
                name = f"{method}-{label.replace('+', '_')}"
                unlearner(pretrained, adapter=injected).unlearn(
                    forget, retain=retain, method=method, out=out / "runs" / "text" / name,
                    options=replace(s.unlearn, lr=s.method_lr.get(method, s.unlearn.lr)),
                    method_options=MethodOptions(span="value"))
                runs[name] = (method, label.replace("L", fake_language))
    stages.run(f"unlearn in en / {fake_language} / en+{fake_language} with {', '.join(s.methods)} "
               f"({s.unlearn.steps} steps each, + NLL on retained players)", unlearn_all)

    probes = load_items(world / "probes.jsonl")
    retain_players = sorted(p for p, r in roles.items() if r == "retain")[: s.retain_probe_players]
    misinfo_probes = _subset(world, "probe_misinfo", [it for it in probes if it.truth is not None
                                                    and it.image is None])
    retain_probes = _subset(world, "probe_retain", [it for it in probes if it.entity in retain_players
                                                  and it.image is None and it.attribute in s.text_attributes])

    def evaluate_text():
        adapters = {"injected": injected, **{n: out / "runs" / "text" / n for n in runs}}
        ev = Evaluator(pretrained, adapters=adapters, base_name="pretrained", backend=backend, cache_dir=cache,
                       progress=progress, max_new_tokens=s.max_new_tokens, fake_language=fake_language)
        try:
            return ev.run({"misinfo": misinfo_probes, "retain": retain_probes}, out=out / "eval" / "text")
        finally:
            ev.close()
    text_result = stages.run("probe every language (greedy answers + log-prob scores)", evaluate_text)

    # -- OFFSIDE: vision-language ----------------------------------------------------------------------------------
    forget_players = {p for p, r in roles.items() if r == "forget"}
    vl = lambda it: it.language == "en" and it.attribute in s.vl_attributes  # noqa: E731
    vl_learn = _subset(world, "vl_learn", [it for it in learn if vl(it) and roles[it.entity] != "fake"])
    vl_pretrained = stages.run(
        f"learn the players' pictures and facts (vision-language, {s.vl_pretrain.steps} steps)",
        lambda: unlearner(vl_model.path).learn(vl_learn, out=out / "runs" / "vl" / "pretrain", full=True,
                                               options=s.vl_pretrain)).model_dir
    vl_forget_items = [it for it in load_items(world / "forget.jsonl") if it.truth is None and vl(it)
                       and it.entity in forget_players]
    vl_forget = _subset(world, "vl_forget", vl_forget_items)
    vl_forget_private = _subset(world, "vl_forget_private", [it for it in vl_forget_items if it.kind == "private"])
    vl_retain = _subset(world, "vl_retain", [it for it in load_items(world / "retain.jsonl") if vl(it)])
    vl_relearn_items = [it for it in load_items(world / "relearn.jsonl") if vl(it)]
    vl_relearn = _subset(world, "vl_relearn", vl_relearn_items)
    vl_runs: dict[str, str] = {}
    pairs: dict[str, str] = {}

    def unlearn_vl():
        settings = [("complete", vl_forget, False), ("selective", vl_forget_private, False),
                    ("unimodal", vl_forget, True)]
        for setting, forget, text_only in settings:
            for method in s.vl_methods if setting == "complete" else s.vl_methods[:1]:
                name = f"{setting}-{method}"
                unlearner(vl_pretrained).unlearn(forget, retain=vl_retain, method=method, text_only=text_only,
                                                 out=out / "runs" / "vl" / name, options=s.vl_unlearn,
                                                 method_options=MethodOptions(span="value"))
                vl_runs[name] = f"{method} ({setting}{', text-only' if text_only else ''})"
    stages.run(f"unlearn the forget players: complete, selective (private only), unimodal (text only) with "
               f"{', '.join(s.vl_methods)}", unlearn_vl)

    def relearn_all():
        for name in [n for n in vl_runs if n.startswith("complete")]:
            attacked = f"{name}+relearn"
            unlearner(vl_pretrained, adapter=out / "runs" / "vl" / name).relearn(
                vl_relearn, out=out / "runs" / "vl" / attacked, options=s.relearn)
            pairs[attacked] = name
            vl_runs[attacked] = vl_runs[name] + " + relearn"
    stages.run(f"relearning attack ({s.relearn.steps} steps on {len(vl_relearn_items)} items)", relearn_all)

    retain_vl_players = sorted(p for p, r in roles.items() if r == "retain")[: s.retain_probe_players]
    test_items = load_items(world / "test.jsonl")

    def evaluate_vl():
        original = lambda it: "_h" not in (it.image or "")  # noqa: E731  (held-out variants are the test split)
        splits = {
            "forget": _subset(world, "vl_probe_forget", [it for it in probes if vl(it) and original(it)
                                                         and it.entity in forget_players]),
            "retain": _subset(world, "vl_probe_retain", [it for it in probes if vl(it) and original(it)
                                                         and it.entity in retain_vl_players]),
            "test": _subset(world, "vl_probe_test", [it for it in test_items if vl(it)
                                                     and it.entity in forget_players]),
        }
        adapters = {n: out / "runs" / "vl" / n for n in vl_runs}
        ev = Evaluator(vl_pretrained, adapters=adapters, base_name="pretrained", backend="hf", cache_dir=cache,
                       progress=progress, max_new_tokens=s.max_new_tokens)
        try:
            return ev.run(splits, out=out / "eval" / "vl", relearn_pairs=pairs)
        finally:
            ev.close()
    vl_result = stages.run("probe text and pictures (forget / retain / held-out)", evaluate_vl)

    # -- tables and report ----------------------------------------------------------------------------------------
    mis_md, mis_numbers = demo_tables.misinformation_table(text_result.rows, runs, fake_language=fake_language,
                                                           baselines=["pretrained", "injected"])
    off_md, off_numbers = demo_tables.offside_table(vl_result.rows, vl_runs, baselines=["pretrained"])
    bb_md, bb_numbers = demo_tables.bounce_table(vl_result.rows, pairs, vl_runs)
    tables = "\n\n".join([mis_md, demo_tables.retain_line(text_result.rows, ["pretrained", "injected", *runs]),
                          off_md, bb_md])
    report = write_report([text_result, vl_result], out / "report.html", title=f"obliviate demo ({size})")
    seconds = time.perf_counter() - t_start
    stages.done.append(("total", round(seconds, 1)))
    (out / "tables.md").write_text(tables + "\n")
    numbers = {"misinformation": mis_numbers, "offside": {f"{m}|{mod}": v for (m, mod), v in off_numbers.items()},
               "bounce_back": {f"{m}|{mod}": v for (m, mod), v in bb_numbers.items()}, "stages": stages.done,
               "size": asdict(s), "fake_language": fake_language, "seed": seed}
    (out / "demo.json").write_text(json.dumps(numbers, indent=1, default=str) + "\n")
    echo("\n" + tables + "\n")
    echo(f"report: {report}   tables: {out / 'tables.md'}   total {seconds:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=stages.done, report=report)
