"""One cell, in its own process: `python -m obliviate.sweep.worker OUT CELL_ID`.

The process reads OUT/cells/CELL_ID.cell.json, holds the cell's lock (a second process on the same cell stops at
once), runs the cell through the public API — `build_world`, `build_tiny_model`, `Unlearner` (always with
`resume=True`: a killed run continues from its last checkpoint), `Evaluator` — and writes the completion marker,
or the error file with the traceback. Its exit status: 0 done, 1 failed, 3 the cell is locked by another process.
Local workers and Ray tasks both start this process (`executor.run_worker_process`), so a cell runs the same way
on either, down to the thread count.
"""
from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from pathlib import Path

from obliviate.files import atomic_dir, write_text
from obliviate.locks import Locked, file_lock
from obliviate.sweep.cells import Cell, cell_file, read_cell, read_json, resolve
from obliviate.sweep.select import materialize


def run_world(out: Path, cell: Cell) -> None:
    from obliviate.data.world import build_world

    build_world(out / cell.run_dir, force=True, **cell.job.spec)  # force: only an unfinished world of ours is there


def run_model(out: Path, cell: Cell) -> None:
    from obliviate.data.schema import load_items
    from obliviate.models.tiny import build_tiny_model, tokenizer_corpus

    job = cell.job
    texts = tokenizer_corpus([it for path in job.texts for it in load_items(resolve(out, path))])
    with atomic_dir(out / cell.run_dir) as tmp:
        build_tiny_model(tmp, texts=texts, preset=job.preset, vision=job.vision, seed=job.seed,
                         vocab_size=job.vocab_size)


def run_train(out: Path, cell: Cell) -> None:
    from obliviate.models.options import LoraOptions
    from obliviate.train.options import TrainOptions
    from obliviate.train.options import MethodOptions
    from obliviate.train.unlearner import Unlearner

    job = cell.job
    lora = LoraOptions(**{k: tuple(v) if k == "targets" else v for k, v in job.lora.items()})
    unlearner = Unlearner(resolve(out, job.base), adapter=resolve(out, job.adapter) if job.adapter else None,
                          reference=resolve(out, job.reference) if job.reference else None, lora=lora,
                          cache_dir=out / "cache", progress=False)
    options, run_dir = TrainOptions(**job.train), out / cell.run_dir
    if job.job == "learn":
        packing = {} if job.block_size is None else {"block_size": job.block_size}  # else learn's default
        unlearner.learn(materialize(out, job.data) if job.data else None, out=run_dir, full=job.full,
                        documents=materialize(out, job.documents) if job.documents else None, options=options,
                        text_only=job.text_only, resume=True, **packing)
    elif job.job == "relearn":
        unlearner.relearn(materialize(out, job.data), out=run_dir, options=options, text_only=job.text_only,
                          resume=True)
    else:
        unlearner.unlearn(materialize(out, job.forget), out=run_dir, method=job.method,
                          retain=materialize(out, job.retain) if job.retain else None,
                          retain_ratio=job.retain_ratio, method_options=MethodOptions(**job.method_options),
                          options=options, text_only=job.text_only, resume=True)


def run_eval(out: Path, cell: Cell) -> None:
    from obliviate.eval.evaluate import Evaluator
    from obliviate.eval.options import EvalOptions
    from obliviate.eval.report import write_report

    job = cell.job
    probes = {split: materialize(out, ref) for split, ref in job.probes.items()}
    options = EvalOptions(**job.options, cache_dir=out / "cache", progress=False)
    evaluator = Evaluator(resolve(out, job.base), adapters={n: resolve(out, p) for n, p in job.adapters.items()},
                          base_name=job.base_name, options=options)
    try:
        result = evaluator.run(probes, out=out / cell.run_dir, limit=job.limit, score=job.score)
    finally:
        evaluator.close()
    write_report([result], out / cell.run_dir / "report.html", title=f"obliviate sweep: {cell.id}")


RUNNERS = {"world": run_world, "model": run_model, "learn": run_train, "unlearn": run_train, "relearn": run_train,
           "eval": run_eval}


def run_cell(out: Path, cell: Cell) -> int:
    """Run `cell` (its lock held) and write its marker or its error; the exit status (see the module)."""
    done = read_json(cell_file(out, cell.id, "done.json"))
    if done is not None and done.get("digest") == cell.digest and (out / cell.output).exists():
        return 0  # finished meanwhile (a retried task)
    cell_file(out, cell.id, "error.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        RUNNERS[cell.kind](out, cell)
    except Exception as err:  # noqa: BLE001 - every failure of a cell is reported, and the sweep goes on
        trace = traceback.format_exc()
        print(trace, file=sys.stderr, flush=True)
        write_text(cell_file(out, cell.id, "error.json"),
                   json.dumps({"error": f"{type(err).__name__}: {err}", "traceback": trace}, indent=1) + "\n")
        return 1
    marker = {"digest": cell.digest, "seconds": round(time.perf_counter() - t0, 2),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node()}
    write_text(cell_file(out, cell.id, "done.json"), json.dumps(marker, indent=1) + "\n")
    return 0


def main(argv: list[str]) -> int:
    out, cell_id = Path(argv[0]), argv[1]
    cell = read_cell(out, cell_id)
    try:
        with file_lock(cell_file(out, cell_id, "lock"), blocking=False):
            return run_cell(out, cell)
    except Locked:
        print(f"{cell_id}: another process is running this cell", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
