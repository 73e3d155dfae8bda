"""Cells: what one run of a grid is (`Cell` and its job), where its files lie, and whether it already ran.

A cell is one node of the grid's graph: the world, a tiny model, one training run (learn / unlearn / relearn at one
combination of the axes its stage uses) or one evaluation. Paths in a cell are relative to the sweep folder OUT
(the files it builds) or absolute (files outside it). (A sweep folder still cannot move: adapters record the
absolute path of the model they were trained on.)

Bookkeeping, beside the run folders and never inside them (the run folder belongs to `Unlearner` / `Evaluator`):

    OUT/cells/ID.cell.json    the cell as the worker runs it (written before it starts)
    OUT/cells/ID.done.json    completion marker: the cell's digest, seconds, when and where it finished
    OUT/cells/ID.error.json   the last failure: the error and its traceback
    OUT/cells/ID.log          the worker's output
    OUT/cells/ID.lock         held (flock) while a process runs the cell

A cell is *done* when its marker carries the cell's current digest (a hash of its job, its inputs and the digests of
the cells it builds on) and its output exists; the folder's mere presence proves nothing.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from obliviate.files import write_text
from obliviate.train.checkpoint import PREFIX

CELLS = "cells"


@dataclass(frozen=True)
class DataRef:
    """A data set as one cell uses it: the source file, the filters resolved for the cell's coordinates, and the
    file the job reads (the source itself when nothing is filtered, else a subset written under OUT/data/)."""

    name: str
    source: str
    select: dict[str, Any]
    path: str


@dataclass(frozen=True)
class WorldJob:
    """Build the embedded world (`WorldSpec` fields)."""

    spec: dict[str, Any]


@dataclass(frozen=True)
class ModelJob:
    """Build a tiny model; its tokenizer is trained on the questions and answers of `texts` (JSONL files)."""

    preset: str
    vision: bool
    seed: int
    vocab_size: int
    texts: tuple[str, ...]


@dataclass(frozen=True)
class TrainJob:
    """One `Unlearner` job: the base model and the adapter beneath, the data, and every option, resolved."""

    job: str
    base: str
    adapter: str | None
    data: DataRef | None = None
    documents: DataRef | None = None  # learn: plain-text documents, packed into blocks of block_size tokens
    forget: DataRef | None = None
    retain: DataRef | None = None
    method: str | None = None
    full: bool = False
    block_size: int | None = None
    text_only: bool = False
    retain_ratio: float | None = None
    reference: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # TrainOptions fields
    method_options: dict[str, Any] = field(default_factory=dict)  # MethodOptions fields
    lora: dict[str, Any] = field(default_factory=dict)  # LoraOptions fields


@dataclass(frozen=True)
class EvalJob:
    """One `Evaluator` run: a base model, the adapters on it (model name -> run folder), the probe data sets."""

    base: str
    base_name: str
    base_stage: str  # the stage (or [models] name) the base comes from
    adapters: dict[str, str]
    probes: dict[str, DataRef]
    score: bool = True
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # EvalOptions fields


JOB_TYPES = {"world": WorldJob, "model": ModelJob, "learn": TrainJob, "unlearn": TrainJob, "relearn": TrainJob,
             "eval": EvalJob}
Job = WorldJob | ModelJob | TrainJob | EvalJob


@dataclass(frozen=True)
class Cell:
    """One run of the grid. id: "world", "model/NAME", "STAGE" or "STAGE/axis-label_axis-label", "eval/NAME[/...]";
    stage: the stage, model or evaluation it comes from; coords: axis -> label; run_dir: its folder (under OUT);
    depends: the cells it builds on; digest: the hash that decides whether a finished cell is still this cell."""

    id: str
    stage: str
    kind: str
    coords: dict[str, str]
    run_dir: str
    depends: tuple[str, ...]
    job: Job
    digest: str = ""

    @property
    def output(self) -> str:
        """The folder a later cell builds on (or the file showing this cell's output is there)."""
        if isinstance(self.job, TrainJob):
            return f"{self.run_dir}/{'model' if self.job.full else 'adapter'}"
        return {"world": f"{self.run_dir}/world.json", "model": f"{self.run_dir}/config.json",
                "eval": f"{self.run_dir}/results.json"}[self.kind]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cell:
        job_type = JOB_TYPES[data["kind"]]
        job = {k: v for k, v in data["job"].items()}
        for f in fields(job_type):
            if f.name in ("data", "documents", "forget", "retain") and job.get(f.name) is not None:
                job[f.name] = DataRef(**job[f.name])
        if job_type is EvalJob:
            job["probes"] = {k: DataRef(**v) for k, v in job["probes"].items()}
        if job_type is ModelJob:
            job["texts"] = tuple(job["texts"])
        return cls(**{**data, "depends": tuple(data["depends"]), "job": job_type(**job)})


def resolve(out: Path, path: str) -> Path:
    """A cell path: relative ones lie under the sweep folder."""
    p = Path(path)
    return p if p.is_absolute() else out / p


def cell_file(out: Path, cell_id: str, suffix: str) -> Path:
    """OUT/cells/ID.SUFFIX (cell, done, error, log, lock)."""
    return out / CELLS / f"{cell_id}.{suffix}"


def write_cell(out: Path, cell: Cell) -> Path:
    path = cell_file(out, cell.id, "cell.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(cell.to_dict(), indent=1) + "\n")


def read_cell(out: Path, cell_id: str) -> Cell:
    return Cell.from_dict(json.loads(cell_file(out, cell_id, "cell.json").read_text(encoding="utf-8")))


def read_json(path: Path) -> dict | None:
    """A bookkeeping file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class CellStatus:
    """Where a cell stands before a run: done (finished with this digest), partial (started with this digest:
    resumes), todo (never started), stale (an evaluation whose inputs changed: it runs again) or changed (a training
    cell, the world or a model that exists with another digest or without a record: never overwritten)."""

    cell: Cell
    state: str
    detail: str = ""


def cell_status(out: Path, cell: Cell) -> CellStatus:
    done = read_json(cell_file(out, cell.id, "done.json"))
    started = read_json(cell_file(out, cell.id, "cell.json"))
    run_dir = out / cell.run_dir
    if done is not None and done.get("digest") == cell.digest and (out / cell.output).exists():
        return CellStatus(cell, "done", f"{done.get('seconds', 0):.1f}s")
    if started is not None and started.get("digest") == cell.digest:
        return CellStatus(cell, "partial", _progress(run_dir) if isinstance(cell.job, TrainJob) else "runs again")
    record = started or {}
    if cell.kind == "eval":
        return CellStatus(cell, "stale" if record or run_dir.exists() else "todo",
                          "inputs changed: evaluates again" if record else "")
    if record:
        return CellStatus(cell, "changed", f"ran with other settings ({', '.join(_differences(record, cell))}); "
                                           f"remove {run_dir} and {cell_file(out, cell.id, '*')} to run it again, "
                                           "or use another --out")
    if run_dir.exists() and any(run_dir.iterdir()):
        return CellStatus(cell, "changed", f"{run_dir} exists and was not made by this sweep")
    return CellStatus(cell, "todo")


def _progress(run_dir: Path) -> str:
    steps = sorted(p.name for p in run_dir.glob(f"{PREFIX}*"))
    return f"resumes from {steps[-1]}" if steps else "restarts (no checkpoint yet)"


def _differences(record: dict, cell: Cell) -> list[str]:
    """The job entries (one level deep) in which a recorded cell differs from `cell`; "inputs" when only the
    digest (the data, the model files or an earlier cell) differs."""
    new, old = cell.to_dict()["job"], record.get("job", {})
    out = []
    for key in sorted(set(new) | set(old)):
        a, b = new.get(key), old.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(key)
    return out or ["inputs"]
