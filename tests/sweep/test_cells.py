"""Cell bookkeeping: a cell is done only when its marker carries its digest and its output exists; a started cell
resumes; a cell that ran with other settings, or a folder the sweep did not make, is never taken over."""
import json
from dataclasses import replace

from obliviate.sweep.cells import Cell, EvalJob, TrainJob, cell_file, cell_status, read_cell, write_cell


def cell(**changes):
    job = TrainJob(job="learn", base="models/m", adapter=None, train={"steps": 3, "lr": 1e-3})
    return replace(Cell("learn/seed-0", "learn", "learn", {"seed": "0"}, "runs/learn/seed-0", (), job, "d1"),
                   **changes)


def mark_done(out, c, digest=None):
    cell_file(out, c.id, "done.json").write_text(json.dumps({"digest": digest or c.digest, "seconds": 1.5}))


def test_cell_file_round_trip(tmp_path):
    c = cell()
    write_cell(tmp_path, c)
    assert read_cell(tmp_path, c.id) == c


def test_states(tmp_path):
    c = cell()
    assert cell_status(tmp_path, c).state == "todo"
    write_cell(tmp_path, c)
    run = tmp_path / c.run_dir
    (run / "ckpt-0000002").mkdir(parents=True)
    status = cell_status(tmp_path, c)
    assert (status.state, status.detail) == ("partial", "resumes from ckpt-0000002")
    mark_done(tmp_path, c)
    assert cell_status(tmp_path, c).state == "partial"  # a marker without the output proves nothing
    (run / "adapter").mkdir()
    assert cell_status(tmp_path, c).state == "done"
    other = replace(c, digest="d2", job=replace(c.job, train={"steps": 3, "lr": 2e-3}))
    status = cell_status(tmp_path, other)
    assert status.state == "changed" and "train.lr" in status.detail and "another --out" in status.detail


def test_foreign_folder_is_not_taken_over(tmp_path):
    c = cell()
    (tmp_path / c.run_dir).mkdir(parents=True)
    assert cell_status(tmp_path, c).state == "todo"  # empty: fine
    (tmp_path / c.run_dir / "notes.txt").write_text("mine")
    status = cell_status(tmp_path, c)
    assert status.state == "changed" and "not made by this sweep" in status.detail


def test_an_evaluation_with_new_inputs_runs_again(tmp_path):
    job = EvalJob(base="m", base_name="base", base_stage="m", adapters={}, probes={})
    ev = Cell("eval/x", "x", "eval", {}, "eval/x", (), job, "e1")
    write_cell(tmp_path, ev)
    (tmp_path / "eval/x").mkdir(parents=True)
    (tmp_path / "eval/x/results.json").write_text("{}")
    mark_done(tmp_path, ev)
    assert cell_status(tmp_path, ev).state == "done"
    assert cell_status(tmp_path, replace(ev, digest="e2")).state == "stale"
