"""The sweep API: build once from a grid file, then look at its cells or run them (vLLM's offline style).

    from obliviate.sweep import Sweep
    sweep = Sweep("grid.toml")
    for s in sweep.status("out"):                    # what --dry-run prints
        print(s.state, s.cell.id)
    result = sweep.run("out", workers=2)             # or ray="local" / ray="ray://head:10001"
    print(result.failed, result.table)

`run` skips finished cells, resumes started ones, runs every other cell once the cells it builds on are done (up to
`workers` at a time, or as Ray tasks), reports each cell in one line (done, failed with its error, blocked behind a
failure, skipped) under an overall bar with an ETA, and at the end writes OUT/results.jsonl from the evaluations.
A failed cell stops only the cells that build on it.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from obliviate.files import write_text
from obliviate.sweep.cells import Cell, CellStatus, cell_file, cell_status, read_json, write_cell
from obliviate.sweep.grid import Grid, load_grid
from obliviate.sweep.plan import plan_cells

PLAN = "sweep.json"
RUNNABLE = ("todo", "partial", "stale")


@dataclass(frozen=True)
class CellOutcome:
    """How a cell ended in this run: done, skipped (finished before), failed, blocked (a cell it builds on did
    not finish) or changed (exists with other settings: not run)."""

    cell: Cell
    state: str
    seconds: float = 0.0
    error: str = ""


@dataclass
class SweepResult:
    """Every cell's outcome, the results table (None without a finished evaluation) and the wall-clock time."""

    out: Path
    outcomes: list[CellOutcome]
    table: Path | None
    seconds: float
    where: str = ""
    failed: list[CellOutcome] = field(default_factory=list)  # failed, blocked or changed


class Sweep:
    """A grid, read and checked once (`grid.load_grid`); `status` and `run` take the sweep folder."""

    def __init__(self, grid: str | Path | Grid, *, vars: dict | None = None):
        """grid: a grid file (or a loaded `Grid`); vars: values for some of its [vars] (`--set NAME=VALUE`)."""
        if isinstance(grid, Grid) and vars:
            raise ValueError("vars apply when a grid file is read: pass its path")
        self.grid = grid if isinstance(grid, Grid) else load_grid(grid, vars=vars)
        self.cells = plan_cells(self.grid)

    def status(self, out: str | Path) -> list[CellStatus]:
        """Every cell and where it stands in `out` (done, partial, todo, stale, changed); runs nothing."""
        return [cell_status(Path(out), c) for c in self.cells]

    def run(self, out: str | Path, *, workers: int = 1, threads: int = 1, ray: str | None = None,
            progress: bool = True, echo: Callable[[str], None] = print) -> SweepResult:
        """Run what is not done; see the module docstring. workers: local processes at a time (one per GPU when
        there are GPUs), or the cells at a time of a local Ray instance. threads: CPU threads per cell (results
        depend on it through the order of float sums, never on workers). ray: None (local processes), "local", or
        an address for `ray.init`."""
        from obliviate.sweep.executor import LocalWorkers, RayWorkers

        if workers < 1 or threads < 1:
            raise ValueError("workers and threads must be at least 1")
        out = Path(out).resolve()
        t0 = time.perf_counter()
        statuses = self.status(out)
        out.mkdir(parents=True, exist_ok=True)
        self._write_plan(out)
        executor = (RayWorkers(ray, workers=workers, threads=threads) if ray is not None
                    else LocalWorkers(workers, threads))
        echo(f"sweep {self.grid.name}: {len(self.cells)} cells in {out}, {executor.where}")
        try:
            outcomes = _Scheduler(out, statuses, executor, progress, echo).run()
        finally:
            executor.close()
        table = self._write_table(out, outcomes, echo)
        failed = [o for o in outcomes if o.state in ("failed", "blocked", "changed")]
        return SweepResult(out, outcomes, table, time.perf_counter() - t0, executor.where, failed)

    def _write_table(self, out: Path, outcomes: list[CellOutcome], echo) -> Path | None:
        """OUT/results.jsonl from the evaluations finished now; an older table is removed when none is."""
        from obliviate.sweep.results import TABLE, write_table

        finished = [o.cell for o in outcomes if o.cell.kind == "eval" and o.state in ("done", "skipped")]
        if not finished:
            if (out / TABLE).is_file():
                (out / TABLE).unlink()
                echo(f"no evaluation finished: removed the older {out / TABLE}")
            return None
        table = write_table(out, finished, self.cells, self.grid)
        echo(f"results: {table}")
        return table

    def _write_plan(self, out: Path) -> None:
        """OUT/sweep.json: the grid file and its axes, and every cell (what `obliviate report` reads)."""
        plan = {"grid": str(self.grid.path), "name": self.grid.name, "vars": self.grid.vars,
                "axes": {a.name: list(a.labels) for a in self.grid.axes.values()},
                "cells": [{"id": c.id, "stage": c.stage, "kind": c.kind, "coords": c.coords, "run_dir": c.run_dir,
                           "depends": list(c.depends), "digest": c.digest} for c in self.cells]}
        write_text(out / PLAN, json.dumps(plan, indent=1) + "\n")
        write_text(out / "grid.toml", self.grid.path.read_text(encoding="utf-8"))


class _Scheduler:
    """Submits every runnable cell once the cells it builds on are done, and reports each as it ends."""

    def __init__(self, out: Path, statuses: list[CellStatus], executor, progress: bool, echo):
        self.out, self.executor, self.echo = out, executor, echo
        self.outcomes: dict[str, CellOutcome] = {}
        self.pending = [s.cell for s in statuses if s.state in RUNNABLE]
        self.n, self.k, self.bar = len(statuses), 0, None
        for s in statuses:
            if s.state == "done":
                self.report(CellOutcome(s.cell, "skipped", error=f"finished before ({s.detail})"))
            elif s.state == "changed":
                self.report(CellOutcome(s.cell, "changed", error=s.detail))
        if progress and self.pending:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(self.pending), unit="cell", dynamic_ncols=True, desc="sweep")

    def run(self) -> list[CellOutcome]:
        running: dict[cf.Future, tuple[Cell, float]] = {}
        while self.pending or running:
            for cell in list(self.pending):
                deps = [self.outcomes.get(d) for d in cell.depends]
                if any(o is not None and o.state not in ("done", "skipped") for o in deps):
                    self.pending.remove(cell)
                    bad = next(o for o in deps if o is not None and o.state not in ("done", "skipped"))
                    self.report(CellOutcome(cell, "blocked", error=f"{bad.cell.id} {bad.state}"))
                elif all(o is not None for o in deps) and len(running) < self.executor.capacity:
                    self.pending.remove(cell)
                    write_cell(self.out, cell)
                    running[self.executor.submit(self.out, cell.id)] = (cell, time.perf_counter())
            if not running:
                if self.pending:  # cannot happen: cells are in dependency order
                    raise RuntimeError(f"sweep: {self.pending[0].id} waits on {self.pending[0].depends}")
                break
            if self.bar is not None:
                self.bar.set_postfix_str(f"running {', '.join(c.id for c, _ in running.values())}"[:80])
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                cell, t0 = running.pop(future)
                self.report(self._outcome(cell, future, time.perf_counter() - t0))
        if self.bar is not None:
            self.bar.close()
        return list(self.outcomes.values())

    def _outcome(self, cell: Cell, future: cf.Future, seconds: float) -> CellOutcome:
        try:
            code = future.result()
        except Exception as err:  # noqa: BLE001 - e.g. a Ray task lost with its node
            return CellOutcome(cell, "failed", seconds, f"{type(err).__name__}: {err}")
        done = read_json(cell_file(self.out, cell.id, "done.json"))
        if code == 0 and done is not None and done.get("digest") == cell.digest:
            return CellOutcome(cell, "done", seconds)
        error = read_json(cell_file(self.out, cell.id, "error.json"))
        if code == 3:
            message = "another process is running this cell"
        elif error is not None and code == 1:
            message = error["error"]
        elif code < 0:
            message = f"worker killed by {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
        else:
            message = f"worker exited with status {code}"
        return CellOutcome(cell, "failed", seconds, message)

    def report(self, outcome: CellOutcome) -> None:
        self.outcomes[outcome.cell.id] = outcome
        self.k += 1
        line = f"[{self.k}/{self.n}] {outcome.state:<7} {outcome.cell.id}"
        if outcome.state == "done":
            line += f"  {outcome.seconds:.1f}s"
        elif outcome.error:
            line += f"  {outcome.error.splitlines()[0]}"
        if outcome.state == "failed":
            line += f"  (log: {cell_file(self.out, outcome.cell.id, 'log')})"
        if self.bar is None:
            self.echo(line)
            return
        with self.bar.external_write_mode():
            self.echo(line)
        self.bar.update(1)
