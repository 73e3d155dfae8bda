"""Experiment grids: `obliviate sweep GRID --out DIR` runs every cell of a grid file, resumable, on local worker
processes or a Ray cluster, then evaluates every adapter of each base in one pass and writes one results table.

    grid.py      the grid file (TOML) -> Grid          plan.py      Grid -> cells, in dependency order, with digests
    check.py     what a grid may say (keys, types)     cells.py     Cell and its job, bookkeeping files, status
    select.py    data subsets of a data set's filters  worker.py    one cell in its own process
    executor.py  local worker processes, Ray tasks     run.py       Sweep: the API (status, run)
    results.py   OUT/results.jsonl and its pivots (mean ± sd over seeds)
"""
