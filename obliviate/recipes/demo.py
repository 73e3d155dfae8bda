"""`obliviate demo`: both papers' experiments, end to end, on the embedded world, with tiny models, on a CPU.

    world → tokenizer + tiny Qwen2 / Qwen2.5-VL → learn the true world (full fine-tuning: the "pretraining")
      text:   inject fakes in language L (LoRA) → unlearn in {en, L, en+L} × methods → probe all 9 languages
      vision: unlearn the forget players (complete), their private facts only (selective), from text alone
              (unimodal) → relearning attack → probe text and pictures
    → the papers' tables on stdout and in tables.md, every probe in eval/*/results.json, report.html

The experiment is a grid file shipped with the package (obliviate/recipes/grids/demo-SIZE.toml: the world, the
data subsets, the stages, the axes method × languages and setting × method), run through the sweep
(`obliviate.sweep.Sweep`): every stage is a cell in its own process, finished cells are skipped when the demo is
run again into the same folder, `workers` run cells side by side. This script only gives the grid its seed, L and
backend, then makes the papers' tables from the sweep's evaluations, naming the runs as the papers do.
`obliviate sweep obliviate/recipes/grids/demo-quick.toml --out DIR` runs the same cells.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from obliviate.data.schema import LANGUAGES
from obliviate.eval.report import write_report
from obliviate.eval.results import load_results
from obliviate.eval.spread import combine
from obliviate.files import write_text
from obliviate.recipes import demo_tables
from obliviate.recipes.sizes import grid_file
from obliviate.sweep.cells import Cell
from obliviate.sweep.grid import Grid
from obliviate.sweep.run import Sweep, SweepResult


@dataclass
class DemoResult:
    out: Path
    tables: str  # the printed tables (markdown)
    numbers: dict = field(default_factory=dict)
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    report: Path | None = None


def run_demo(out: str | Path, *, size: str = "quick", fake_language: str = "fr", seed: int = 0,
             backend: str = "auto", workers: int | None = None, threads: int | None = None,
             echo: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Run the demo's grid into `out` (created; a folder holding anything but this demo's sweep is refused, and a
    folder of this demo continues where it stopped), then write its tables and report. workers, threads: cells at
    a time and CPU threads per cell (None: `run_cells`' choice for the two experiments side by side)."""
    sweep = demo_sweep(size, fake_language, seed, backend)
    out = Path(out)
    check_folder(out, sweep.grid)
    result = run_cells(sweep, out, workers=workers, threads=threads, branches=2, progress=progress, echo=echo)
    return write_outputs(out, sweep, result, size=size, echo=echo)


def demo_sweep(size: str, fake_language: str, seed: int, backend: str) -> Sweep:
    """The demo's grid of this size, given its seed, L and backend."""
    if fake_language not in LANGUAGES or fake_language == "en":
        raise ValueError(f"--fake-language must be one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    return Sweep(grid_file(size), vars={"seed": seed, "fake_language": fake_language, "backend": backend})


def run_cells(sweep: Sweep, out: Path, *, workers: int | None, threads: int | None, branches: int, progress: bool,
              echo) -> SweepResult:
    """Run a demo's sweep; a cell that did not finish ends the demo with its error. workers and threads, where
    not given: as many workers as the grid has independent `branches` (at most one per GPU, or per CPU core), the
    cores shared among them."""
    from obliviate.sweep.executor import cpu_count, gpu_count

    if workers is None:
        workers = max(1, min(branches, gpu_count() or cpu_count()))
    if threads is None:
        threads = max(1, cpu_count() // workers)
    result = sweep.run(out, workers=workers, threads=threads, progress=progress, echo=echo)
    if result.failed:
        first = result.failed[0]
        raise RuntimeError(f"demo: {len(result.failed)} cell(s) did not finish; {first.cell.id} {first.state}: "
                           f"{first.error} (rerun the same command to continue)")
    return result


def check_folder(out: Path, grid: Grid) -> None:
    """An empty or new folder, or one holding this very demo (same grid, same variables): anything else is refused."""
    if not out.exists() or not any(out.iterdir()):
        return
    plan = out / "sweep.json"
    ours = plan.is_file() and {k: v for k, v in json.loads(plan.read_text(encoding="utf-8")).items()
                               if k in ("name", "vars")} == {"name": grid.name, "vars": grid.vars}
    if not ours:
        raise FileExistsError(f"{out}: exists and is not empty (and is not this demo's folder); choose another --out")


def check_seeds_folder(out: Path, grids: dict[str, Grid]) -> None:
    """A new or empty folder, or one holding only these seeds' demos ({folder name: grid}, each `check_folder`'s
    kind) and their combined tables: anything else is refused."""
    if not out.exists() or not any(out.iterdir()):
        return
    stray = sorted(p.name for p in out.iterdir() if p.name not in {*grids, "tables.md", "demo.json"})
    if stray:
        raise FileExistsError(f"{out}: holds {stray[0]}, which is not one of this demo's seeds "
                              f"({', '.join(grids)}); choose another --out")
    for name, grid in grids.items():
        check_folder(out / name, grid)


# -- the papers' names for the grid's runs ----------------------------------------------------------------------------

def text_runs(cells: Sequence[Cell], fake_language: str) -> dict[str, tuple[str, str, str]]:
    """{cell id: (run name, method, unlearning set)} of the text experiment, in the papers' order (language set,
    then method): "ga-en_L" unlearned in "en+fr". The injection run is "injected"."""
    unlearn = [c for c in cells if c.stage == "unlearn"]
    langs = list(dict.fromkeys(c.coords["langs"] for c in unlearn))
    runs = {c.id: ("injected", "–", "–") for c in cells if c.stage == "inject"}
    for c in sorted(unlearn, key=lambda c: langs.index(c.coords["langs"])):  # stable: methods keep their order
        label = c.coords["langs"]
        runs[c.id] = (f"{c.coords['method']}-{label.replace('+', '_')}", c.coords["method"],
                      label.replace("L", fake_language))
    return runs


def vision_runs(cells: Sequence[Cell]) -> dict[str, tuple[str, str]]:
    """{cell id: (run name, label)} of the vision-language experiment: "complete-npo" is "npo (complete)",
    its relearning attack "complete-npo+relearn"."""
    runs = {}
    for c in cells:
        if c.stage in ("vl_unlearn", "vl_relearn"):
            setting, method = c.coords["setting"], c.coords["vl_method"]
            label = f"{method} ({setting}{', text-only' if c.job.text_only else ''})"
            relearn = c.stage == "vl_relearn"
            runs[c.id] = (f"{setting}-{method}" + ("+relearn" if relearn else ""), label + (" + relearn" if relearn
                                                                                           else ""))
    return dict(sorted(runs.items(), key=lambda kv: kv[1][0].endswith("+relearn")))


# -- tables and report ---------------------------------------------------------------------------------------------

def write_outputs(out: Path, sweep: Sweep, result: SweepResult, *, size: str, echo) -> DemoResult:
    """The papers' tables (stdout, tables.md), the numbers (demo.json) and the HTML report, from the sweep's two
    evaluations (OUT/eval/text, OUT/eval/vl) with the runs renamed as the papers name them."""
    L = sweep.grid.vars["fake_language"]
    text, vision = text_runs(sweep.cells, L), vision_runs(sweep.cells)
    text_result = load_results(out / "eval" / "text").renamed({cid: r[0] for cid, r in text.items()})
    vl_result = load_results(out / "eval" / "vl").renamed({cid: r[0] for cid, r in vision.items()})
    runs = {name: (method, langs) for name, method, langs in text.values() if name != "injected"}
    vl_runs = {name: label for name, label in vision.values()}
    pairs = vl_result.meta.relearn_pairs
    stages = [(o.cell.id, round(o.seconds, 1)) for o in result.outcomes] + [("total", round(result.seconds, 1))]
    numbers = {
        "misinformation": demo_tables.misinformation_numbers(text_result.rows, ["pretrained", "injected", *runs],
                                                             fake_language=L),
        "retain": demo_tables.retain_numbers(text_result.rows, ["pretrained", "injected", *runs]),
        "offside": demo_tables.offside_numbers(vl_result.rows, ["pretrained", *vl_runs]),
        "bounce_back": demo_tables.bounce_numbers(vl_result.rows, {r: pairs[r] for r in vl_runs if r in pairs}),
        "labels": {"text": runs, "vision": vl_runs}, "stages": stages, "size": size, "grid": sweep.grid.name,
        "world": sweep.grid.world, "fake_language": L, "seed": sweep.grid.vars["seed"]}
    tables = demo_markdown(numbers)
    report = write_report([text_result, vl_result], out / "report.html", title=f"obliviate demo ({size})")
    write_text(out / "tables.md", tables + "\n")
    write_text(out / "demo.json", json.dumps(numbers, indent=1, default=str) + "\n")
    echo("\n" + tables + "\n")
    echo(f"report: {report}   tables: {out / 'tables.md'}   total {result.seconds:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=stages, report=report)


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


def run_demo_seeds(out: str | Path, *, seeds: Sequence[int] = (0, 1, 2), size: str = "quick",
                   fake_language: str = "fr", backend: str = "auto", workers: int | None = None,
                   threads: int | None = None, echo: Callable[[str], None] = print,
                   progress: bool = True) -> DemoResult:
    """`run_demo` once per seed into OUT/seed-N, then every table with mean ± sd over the seeds in OUT/tables.md
    and OUT/demo.json. A folder of these seeds' demos (same size, L and backend) continues where it stopped; one
    holding anything else is refused before any seed runs."""
    out = Path(out)
    if len(set(seeds)) < 2:
        raise ValueError(f"--seeds needs at least two different seeds, got {list(seeds)}")
    grids = {f"seed-{seed}": demo_sweep(size, fake_language, seed, backend).grid for seed in seeds}
    check_seeds_folder(out, grids)
    t0 = time.perf_counter()
    results = []
    for seed in seeds:
        echo(f"== seed {seed} ==")
        results.append(run_demo(out / f"seed-{seed}", size=size, fake_language=fake_language, seed=seed,
                                backend=backend, workers=workers, threads=threads, echo=echo, progress=progress))
    numbers = combine_seeds(results)
    title = f"Mean ± sample sd over seeds {', '.join(map(str, seeds))} (one run per seed: {out}/seed-N)"
    tables = title + "\n\n" + demo_markdown(numbers)
    write_text(out / "tables.md", tables + "\n")
    write_text(out / "demo.json", json.dumps(numbers, indent=1, default=lambda v: asdict(v)) + "\n")
    echo("\n" + tables + "\n")
    echo(f"tables: {out / 'tables.md'}   total {time.perf_counter() - t0:.0f}s")
    return DemoResult(out=out, tables=tables, numbers=numbers, stages=[st for r in results for st in r.stages])
