"""Numbers over several runs (seeds): per cell the mean, the spread and the range, as pure functions.

    spread([0.75, 0.8, 0.7])                    Spread(mean=0.75, std=0.05, min=0.7, max=0.8, n=3), to rounding
    combine([run0, run1, run2])                 the runs' numbers (nested dicts / tuples / lists of numbers, as the
                                                demo tables return them) with a Spread at every number
    combine_tables([t0, t1, t2])                one table whose cells are Spreads (`SpreadTable`, a views.Table)

std is the sample standard deviation (n − 1 in the denominator; 0 for a single run). A cell that is None in some
runs (no probe fell in it) is summarised over the runs that have it, and its `n` says how many; None in every run
stays None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from obliviate.eval.views import Table


@dataclass(frozen=True)
class Spread:
    """One cell over runs: mean, sample standard deviation, minimum, maximum, and how many runs had a value."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    def format(self, *, scale: float = 1.0, digits: int = 1, show_range: bool = False) -> str:
        """"75.0 ± 5.0" (scale=100), or with `show_range` "75.0 ± 5.0 (70.0–80.0)"; one run: just "75.0"."""
        f = lambda x: f"{scale * x:.{digits}f}"  # noqa: E731
        text = f(self.mean) if self.n == 1 else f"{f(self.mean)} ± {f(self.std)}"
        return f"{text} ({f(self.min)}–{f(self.max)})" if show_range and self.n > 1 else text


def spread(values: Sequence[float | None]) -> Spread | None:
    """The Spread of the numbers among `values` (None entries skipped); None when there is none."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0
    return Spread(mean, math.sqrt(var), min(xs), max(xs), len(xs))


def combine(runs: Sequence[Any]) -> Any:
    """Combine runs of the same shape: dicts by key (the union of keys, in first-seen order), tuples and lists
    element by element (equal lengths), numbers (bool counts as 0/1) into a `Spread`, None skipped. A number in
    one run facing a dict or list in another is a ValueError."""
    if not runs:
        raise ValueError("combine: no runs")
    present = [r for r in runs if r is not None]
    if not present:
        return None
    if all(isinstance(r, dict) for r in present):
        keys = list(dict.fromkeys(k for r in present for k in r))
        return {k: combine([r.get(k) for r in present]) for k in keys}
    if all(isinstance(r, (tuple, list)) for r in present):
        if len({len(r) for r in present}) != 1:
            raise ValueError(f"combine: sequences of different lengths {sorted({len(r) for r in present})}")
        parts = [combine([r[i] for r in present]) for i in range(len(present[0]))]
        return tuple(parts) if isinstance(present[0], tuple) else parts
    if all(isinstance(r, (int, float)) for r in present):
        return spread(present)
    raise ValueError(f"combine: runs differ in shape ({', '.join(sorted({type(r).__name__ for r in present}))})")


@dataclass
class SpreadTable(Table):
    """A views.Table over several runs: `values[i][j]` is the Spread of cell (rows[i], cols[j]) (None where no run
    has it), `counts[i][j]` its rows summed over the runs, `runs` how many tables were combined."""

    runs: int = 0


def combine_tables(tables: Sequence[Table]) -> SpreadTable:
    """One table per run (the same view: title and metric) -> a SpreadTable over the union of rows and columns,
    in first-seen order."""
    if not tables:
        raise ValueError("combine_tables: no tables")
    first = tables[0]
    other = next((t for t in tables if (t.title, t.metric) != (first.title, first.metric)), None)
    if other is not None:
        raise ValueError(f"combine_tables: tables differ: {first.title!r} ({first.metric}) vs {other.title!r} "
                         f"({other.metric})")
    rows = list(dict.fromkeys(r for t in tables for r in t.rows))
    cols = list(dict.fromkeys(c for t in tables for c in t.cols))
    cells, counts = {}, {}
    for t in tables:
        for i, r in enumerate(t.rows):
            for j, c in enumerate(t.cols):
                cells.setdefault((r, c), []).append(t.values[i][j])
                counts[r, c] = counts.get((r, c), 0) + t.counts[i][j]
    values = [[spread(cells.get((r, c), [])) for c in cols] for r in rows]
    return SpreadTable(first.title, first.metric, first.row_name, first.col_name, rows, cols, values,
                       [[counts.get((r, c), 0) for c in cols] for r in rows], runs=len(tables))
