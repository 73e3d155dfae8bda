"""Running grids end to end on the CPU: 4 unlearning cells of the toy model and an evaluation.

- `--workers 1` runs every cell, writes the results table, and a rerun recomputes nothing;
- a local Ray instance with 2 CPUs gives bit-identical adapters;
- a worker SIGKILLed mid-cell (deterministically, by tests/sweep/killhook.py) fails only its cell and the
  evaluation behind it; the rerun (2 workers) skips the finished cells, resumes the killed one from its checkpoint
  and ends with the same adapters as the uninterrupted run;
- a failing cell is reported with its error while the others finish.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

from obliviate.cli.main import cli
from obliviate.sweep.run import Sweep
from tests.sweep.grids import toy_grid, write_grid

ROOT = Path(__file__).resolve().parents[2]
UNLEARN = [f"unlearn/method-{m}_seed-{s}" for m in ("ga", "npo") for s in (0, 1)]


def adapters(out: Path) -> dict[str, dict]:
    return {c: load_file(out / "runs" / c / "adapter" / "adapter_model.safetensors") for c in UNLEARN
            if (out / "runs" / c / "adapter").is_dir()}


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for cell in a:
        assert a[cell].keys() == b[cell].keys() and a[cell]
        for k in a[cell]:
            assert (a[cell][k] == b[cell][k]).all(), (cell, k)


@pytest.fixture(scope="module")
def grid(toy_model, toy_data, tmp_path_factory):
    return write_grid(tmp_path_factory.mktemp("grid"), toy_grid(toy_model, toy_data, steps=4))


@pytest.fixture(scope="module")
def sequential(grid, tmp_path_factory):
    """The grid run with one local worker: (sweep folder, result)."""
    out = tmp_path_factory.mktemp("seq") / "out"
    lines = []
    result = Sweep(grid).run(out, workers=1, progress=False, echo=lines.append)
    return out, result, lines


def test_dry_run_lists_the_cells(grid, tmp_path):
    res = CliRunner().invoke(cli, ["sweep", str(grid), "--out", str(tmp_path / "out"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert [line.split()[:2] for line in res.output.splitlines()[:5]] == [["todo", c] for c in UNLEARN] + [
        ["todo", "eval/toy"]]
    assert res.output.splitlines()[-1] == "5 cells: 5 todo" and not (tmp_path / "out").exists()


def test_set_gives_a_grid_variable_another_value(tmp_path):
    from obliviate.recipes.sizes import grid_file

    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sweep", str(grid_file("tiny")), "--out", str(out), "--dry-run", "--set",
                                   "seed=1", "--set", "fake_language=de"])
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "23 cells: 23 todo", res.output
    res = CliRunner().invoke(cli, ["sweep", str(grid_file("tiny")), "--out", str(out), "--set", "sede=1"])
    assert res.exit_code == 1 and "--set: 'sede' is not a variable of this grid" in res.output
    for option in ("--workers", "--threads"):
        res = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(out), option, "0"])
        assert res.exit_code == 2 and "0 is not in the range x>=1" in res.output, res.output
    assert not out.exists()


def test_one_worker_runs_every_cell_once(grid, sequential):
    out, result, lines = sequential
    assert [(o.cell.id, o.state) for o in result.outcomes] == [(c, "done") for c in UNLEARN + ["eval/toy"]]
    assert not result.failed and result.table == out / "results.jsonl"
    assert lines[1].startswith("[1/5] done    unlearn/method-ga_seed-0  ")
    res = CliRunner().invoke(cli, ["report", str(out), "--rows", "method", "--cols", "seed"])
    table = [[c.strip() for c in line.split("|")[1:-1]] for line in res.output.splitlines() if line.startswith("|")]
    assert res.exit_code == 0 and table[0] == ["method", "toy", "0", "1"], res.output  # the base: under its name
    assert [r[0] for r in table[2:]] == ["toy", "ga", "npo"] and table[3][1] == "–"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "runs" in p.parts}
    again = Sweep(grid).run(out, workers=1, progress=False, echo=lambda line: None)
    assert {o.state for o in again.outcomes} == {"skipped"}
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "runs" in p.parts}


def test_local_ray_gives_identical_adapters(grid, sequential, tmp_path):
    pytest.importorskip("ray")
    result = Sweep(grid).run(tmp_path / "out", workers=2, ray="local", progress=False, echo=lambda line: None)
    assert not result.failed, [(o.cell.id, o.state, o.error) for o in result.failed]
    assert result.where.startswith("Ray at local (2 CPUs"), result.where
    assert_identical(adapters(sequential[0]), adapters(tmp_path / "out"))


def sweep_cli(grid, out, tmp_path, *args, **env):
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("killhook.py"), hook / "sitecustomize.py")
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "OBLIVIATE_CACHE": str(tmp_path / "cache"),
           **env}
    return subprocess.run([sys.executable, "-m", "obliviate.cli.main", "sweep", str(grid), "--out", str(out),
                           "--no-progress", *args], env=env, capture_output=True, text=True)


def test_killed_worker_then_rerun_completes_without_recomputing(grid, sequential, tmp_path):
    out, token = tmp_path / "out", tmp_path / "killed"
    first = sweep_cli(grid, out, tmp_path, KILL_TOKEN=str(token), KILL_AT_STEP="2")
    assert first.returncode == 1 and token.exists(), first.stdout + first.stderr
    assert "failed  unlearn/method-ga_seed-0  worker killed by SIGKILL" in first.stdout
    assert "blocked eval/toy  unlearn/method-ga_seed-0 failed" in first.stdout
    killed = out / "runs" / UNLEARN[0]
    assert sorted(p.name for p in killed.iterdir()) == ["ckpt-0000002", "config.json", "metrics.jsonl"]
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for c in UNLEARN[1:]
                for p in (out / "runs" / c).rglob("*") if p.is_file()}
    dry = CliRunner().invoke(cli, ["sweep", str(grid), "--out", str(out), "--dry-run"])
    assert "partial  unlearn/method-ga_seed-0" in dry.output and "resumes from ckpt-0000002" in dry.output

    saves = tmp_path / "saves.log"
    second = sweep_cli(grid, out, tmp_path, "--workers", "2", SAVES_LOG=str(saves))
    assert second.returncode == 0, second.stdout + second.stderr
    assert sorted(line.split()[2] for line in second.stdout.splitlines() if "skipped" in line) == UNLEARN[1:]
    assert saves.read_text().split() == [str(killed), "3"]  # resumed at step 2: only step 3 was saved again
    assert finished == {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished}
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 4
    assert_identical(adapters(sequential[0]), adapters(out))


def test_a_failed_cell_is_reported_and_the_others_go_on(toy_model, toy_data, tmp_path):
    extra = 'when.method.npo = { forget = "nothing" }\n'
    text = toy_grid(toy_model, toy_data, steps=1, extra=extra).replace(
        'seed = [0, 1]', 'seed = [0]').replace(
        '[axes]', f'nothing = {{ file = "{toy_data["forget"]}", languages = ["zh"] }}\n\n[axes]')
    lines = []
    result = Sweep(write_grid(tmp_path, text)).run(tmp_path / "out", progress=False, echo=lines.append)
    states = {o.cell.id: o.state for o in result.outcomes}
    assert states == {"unlearn/method-ga_seed-0": "done", "unlearn/method-npo_seed-0": "failed", "eval/toy": "blocked"}
    failed = next(line for line in lines if "] failed " in line)
    assert "ValueError: data set 'nothing': no item of" in failed and "(log: " in failed
    assert "Traceback" in (tmp_path / "out/cells/unlearn/method-npo_seed-0.log").read_text()
