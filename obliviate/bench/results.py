"""Tidy benchmark rows: one JSON object per (kernel, provider, shape, dtype, metric), appended to a JSONL file.

Columns: kernel, provider, shape, dtype, metric, median, p20, p80, device, versions, date. A metric measured once
(peak memory) has median = p20 = p80; one that could not be measured (out of memory) has them null.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

import torch

import obliviate
from obliviate import files

COLUMNS = ("kernel", "provider", "shape", "dtype", "metric", "median", "p20", "p80", "device", "versions", "date")


def default_results_path() -> Path:
    """benchmarks/results.jsonl in the source checkout that holds this package, else in the working directory."""
    root = Path(obliviate.__file__).resolve().parents[1]
    return (root if (root / "setup.py").exists() else Path.cwd()) / "benchmarks" / "results.jsonl"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} ({torch.get_num_threads()} threads)"


def versions() -> dict:
    """`files.versions` with Liger-Kernel (a benchmark provider) and the CUDA runtime torch was built for."""
    out = files.versions("liger_kernel")
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
    return out


def quantiles(samples) -> tuple[float, float, float]:
    """(median, p20, p80) of a non-empty sequence of numbers."""
    values = torch.tensor([float(s) for s in samples], dtype=torch.float64)
    q = torch.quantile(values, torch.tensor([0.5, 0.2, 0.8], dtype=torch.float64))
    return float(q[0]), float(q[1]), float(q[2])


def row(*, kernel, provider, shape, dtype, metric, samples, device, env_versions, date) -> dict:
    """One tidy row; samples: a sequence of measurements, a single number, or None (not measured)."""
    if samples is None:
        med = p20 = p80 = None
    elif isinstance(samples, (int, float)):
        med = p20 = p80 = float(samples)
    else:
        med, p20, p80 = quantiles(samples)
    return {"kernel": kernel, "provider": provider, "shape": shape, "dtype": dtype, "metric": metric,
            "median": med, "p20": p20, "p80": p80, "device": device, "versions": env_versions, "date": date}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def append_rows(rows, path=None) -> Path:
    """Append rows (dicts with COLUMNS) to a JSONL file, creating its folder; returns the path."""
    path = Path(path) if path is not None else default_results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for r in rows:
            missing = [c for c in COLUMNS if c not in r]
            if missing:
                raise ValueError(f"benchmark row lacks {missing}: {r}")
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def read_rows(path) -> list[dict]:
    """All rows of a JSONL results file."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
