"""The demo's sizes: one grid file each (obliviate/recipes/grids/demo-SIZE.toml), which fixes the world, the model
presets, the steps and the learning rates (tuned on 2 CPU cores, docs/LOG.md). No torch here: `obliviate demo
--help` lists the sizes instantly."""
from __future__ import annotations

from pathlib import Path

GRIDS = Path(__file__).resolve().parent / "grids"
SIZES = ("tiny", "quick", "full")  # tiny: CI's smoke size; quick: the default; full: longer, clearer


def grid_file(size: str) -> Path:
    """The grid file of a demo size."""
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    return GRIDS / f"demo-{size}.toml"
