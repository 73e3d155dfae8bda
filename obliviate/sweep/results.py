"""A sweep's results: one table over every evaluation, the grid's axes as columns, and pivots of it.

OUT/results.jsonl holds one `ResultRow` per evaluated model × probe split × probe language × modality × kind: the
model's cell, its stage and its coordinates (one column per axis, null where its stage does not use the axis), the
probe slice (with the language group en / L / high / low), and for each metric its mean and the number of probes it
was measured on. Means over any coarser slice are exact from these (weighted by the counts).

`pivot` makes a table of one metric with any column as rows and any other as columns: each model's mean over the
probes in a cell, then the mean ± sample standard deviation over the models that fall in it — over the seeds, and
over any other axis neither pivoted nor fixed with `where` (the table says which). A model without the row axis
(the pretrained base, an injection run) is listed under its stage's name.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

from obliviate.eval import views
from obliviate.eval.views import markdown
from obliviate.eval.results import load_results
from obliviate.files import write_text
from obliviate.sweep.cells import Cell
from obliviate.sweep.grid import Grid

TABLE = "results.jsonl"
SLICE = ("split", "language", "group", "modality", "kind")
PERCENT = ("correct", "exact", "says_fake", "says_truth", "mc_correct")  # shown in %
METRICS = ("correct", "says_fake", "says_truth", "mc_correct") + tuple(
    m for m in views.ROW_METRICS if m not in ("correct", "says_fake", "says_truth", "mc_correct"))


@dataclass(frozen=True)
class ResultRow:
    """One model's results on one slice of the probes (see the module docstring)."""

    eval: str
    model: str
    stage: str
    coords: dict[str, str | None]
    split: str
    language: str
    group: str
    modality: str
    kind: str
    n: int
    means: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def column(self, name: str) -> str | None:
        """A column's value: an axis label, or a slice / identity field."""
        return self.coords[name] if name in self.coords else getattr(self, name)

    def to_dict(self) -> dict:
        """The flat JSON line: axes as columns, then `metric` and `n_metric` for each metric."""
        out = {"eval": self.eval, "model": self.model, "stage": self.stage, **self.coords,
               **{k: getattr(self, k) for k in SLICE}, "n": self.n}
        for m, v in self.means.items():
            out[m], out[f"n_{m}"] = v, self.counts[m]
        return out

    @classmethod
    def from_dict(cls, data: dict, axes: Sequence[str]) -> ResultRow:
        means = {m: data[m] for m in METRICS if m in data}
        return cls(eval=data["eval"], model=data["model"], stage=data["stage"],
                   coords={a: data.get(a) for a in axes}, **{k: data[k] for k in SLICE}, n=data["n"],
                   means=means, counts={m: data[f"n_{m}"] for m in means})


def eval_rows(out: Path, cell: Cell, cells: dict[str, Cell], axes: Sequence[str]) -> list[ResultRow]:
    """The rows of one finished evaluation cell: its probe rows summed per model and slice."""
    result = load_results(out / cell.run_dir)
    fake = result.meta.fake_language
    sums: dict[tuple, dict[str, list[float]]] = {}
    for r in result.rows:
        key = (r.model, r.split, r.language, views.language_group(r.language, fake), r.modality, r.kind)
        acc = sums.setdefault(key, {"": [0.0, 0]})
        acc[""][1] += 1
        for m in METRICS:
            v = getattr(r, m)
            if v is not None:
                slot = acc.setdefault(m, [0.0, 0])
                slot[0] += float(v)
                slot[1] += 1
    rows = []
    for (model, *slice_), acc in sums.items():
        if model == cell.job.base_name:  # the base: at the evaluation's coordinates (those of its base run)
            coords, stage = cell.coords, cell.job.base_stage
        else:
            coords, stage = cells[model].coords, cells[model].stage
        coords = {a: coords.get(a) for a in axes}
        rows.append(ResultRow(cell.stage, model, stage, coords, *slice_, n=acc[""][1],
                              means={m: s / c for m, (s, c) in acc.items() if m},
                              counts={m: c for m, (_, c) in acc.items() if m}))
    return rows


def write_table(out: Path, evals: Sequence[Cell], cells: Sequence[Cell], grid: Grid) -> Path:
    """OUT/results.jsonl from the finished evaluation cells `evals` (`cells`: every cell of the grid)."""
    by_id = {c.id: c for c in cells}
    rows = [row for c in evals for row in eval_rows(out, c, by_id, list(grid.axes))]
    return write_text(out / TABLE, "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows))


def load_table(out: str | Path) -> tuple[list[ResultRow], list[str]]:
    """(rows of OUT/results.jsonl, the grid's axes) of a sweep folder."""
    out = Path(out)
    plan_path, table = out / "sweep.json", out / TABLE
    if not plan_path.is_file():
        raise FileNotFoundError(f"{out}: not a sweep folder (no sweep.json)")
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no results yet (the sweep's evaluations have not finished)")
    axes = list(json.loads(plan_path.read_text(encoding="utf-8"))["axes"])
    rows = [ResultRow.from_dict(json.loads(line), axes) for line in table.read_text(encoding="utf-8").splitlines()]
    return rows, axes


@dataclass(frozen=True)
class Pivot:
    """One metric by two columns: per cell the mean, the spread (sample standard deviation, None for one model)
    and the number of models; `pooled`: the axes that vary inside cells (averaged over), with their values."""

    metric: str
    row_by: str
    col_by: str
    rows: list[str]
    cols: list[str]
    mean: list[list[float | None]]
    spread: list[list[float | None]]
    n: list[list[int]]
    pooled: dict[str, list[str]]
    where: dict[str, str]

    def to_markdown(self) -> str:
        scale = 100.0 if self.metric in PERCENT else 1.0
        unit = " (%)" if scale == 100.0 else ""

        digits = 1 if scale == 100.0 else 3

        def cell(m, s):
            if m is None:
                return "–"
            return f"{scale * m:.{digits}f}" + (f" ± {scale * s:.{digits}f}" if s is not None else "")

        body = [[r] + [cell(m, s) for m, s in zip(ms, ss)] for r, ms, ss in zip(self.rows, self.mean, self.spread)]
        fixed = ", ".join(f"{k}={v}" for k, v in self.where.items())
        title = f"{self.metric}{unit} by {self.row_by} × {self.col_by}" + (f" ({fixed})" if fixed else "")
        counts = sorted({k for row in self.n for k in row if k})
        pooled = "; ".join(f"{a} ({', '.join(v)})" for a, v in self.pooled.items())
        note = f"mean ± sd over {pooled}; " if pooled else "one run per cell; "
        note += f"runs per cell: {', '.join(map(str, counts))}"
        return markdown(title, [self.row_by] + self.cols, body) + f"\n\n{note}"


def pivot(rows: Sequence[ResultRow], *, row_by: str, col_by: str, metric: str = "correct",
          where: Mapping[str, str] = MappingProxyType({})) -> Pivot:
    """`metric` with `row_by` values as rows and `col_by` values as columns (see the module docstring); `where`
    keeps only rows whose columns have these values (e.g. {"split": "forget"})."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    columns = [*(rows[0].coords if rows else ()), "eval", "model", "stage", *SLICE]
    for name in (row_by, col_by, *where):
        if name not in columns:
            raise ValueError(f"unknown column {name!r}; columns: {', '.join(columns)}")
    per_model: dict[tuple[str, str, str], list[float]] = {}  # (model, row, col) -> [sum, count]
    models: dict[str, ResultRow] = {}
    for r in rows:
        if metric not in r.means or any(str(r.column(k)) != v for k, v in where.items()):
            continue
        key = (r.model, _label(r, row_by), _label(r, col_by))
        acc = per_model.setdefault(key, [0.0, 0])
        acc[0] += r.means[metric] * r.counts[metric]
        acc[1] += r.counts[metric]
        models[r.model] = r
    row_labels = list(dict.fromkeys(k[1] for k in per_model))
    col_labels = list(dict.fromkeys(k[2] for k in per_model))
    values: dict[tuple[str, str], list[float]] = {}
    for (_, rl, cl), (s, c) in per_model.items():
        values.setdefault((rl, cl), []).append(s / c)
    pooled = _pooled(per_model, models, {row_by, col_by, *where})
    mean = [[statistics.fmean(values[rl, cl]) if (rl, cl) in values else None for cl in col_labels]
            for rl in row_labels]
    spread = [[statistics.stdev(values[rl, cl]) if len(values.get((rl, cl), ())) > 1 else None for cl in col_labels]
              for rl in row_labels]
    n = [[len(values.get((rl, cl), ())) for cl in col_labels] for rl in row_labels]
    return Pivot(metric, row_by, col_by, row_labels, col_labels, mean, spread, n, pooled, dict(where))


def _label(row: ResultRow, column: str) -> str:
    value = row.column(column)
    return row.stage if value is None else str(value)


def _pooled(per_model, models: dict[str, ResultRow], fixed: set[str]) -> dict[str, list[str]]:
    """Axes with more than one value among the models sharing a (row, col) cell."""
    seen: dict[tuple[str, str], dict[str, set]] = {}
    for model, rl, cl in per_model:
        for axis, value in models[model].coords.items():
            if axis not in fixed and value is not None:
                seen.setdefault((rl, cl), {}).setdefault(axis, set()).add(value)
    out: dict[str, set] = {}
    for axes in seen.values():
        for axis, values in axes.items():
            if len(values) > 1:
                out.setdefault(axis, set()).update(values)
    return {a: sorted(v) for a, v in out.items()}
