"""A full disk and a read-only one under every writer (in-process through click, which is what the command line
runs): exit 1, one line `Error: <path>: No space left on device`, nothing left on the disk but what was there,
and with room again the same command succeeds (issue 10: SafetensorError / OSError tracebacks, and config.json,
metrics.jsonl, .tmp-adapter/ left behind that blocked the rerun)."""
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from obliviate.cli.main import cli
from obliviate.data.schema import write_items
from tests import toy
from tests.data.importers import FIX
from tests.faults import fill, names


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fails_cleanly(res, disk, before):
    assert res.exit_code == 1, res.output[-3000:]
    last = res.output.strip().replace("\r", "\n").splitlines()[-1]
    assert last.startswith(f"Error: {disk}") and last.endswith(": No space left on device"), last
    assert "Traceback" not in res.output and names(disk) == before


@pytest.mark.parametrize("extra,room", [((), 60), (("--save-every", 1), 150), (("--full",), 400)])
def test_learn(toy_model, toy_data, small_disk, extra, room):
    fill(small_disk, room)
    args = ("learn", "--model", toy_model, "--data", toy_data["forget"], "--out", small_disk / "run", "--steps", 2,
            "--batch-size", 4, *extra)
    fails_cleanly(invoke(*args), small_disk, ["filler"])
    (small_disk / "filler").unlink()
    res = invoke(*args)
    assert res.exit_code == 0, res.output[-3000:]
    assert "done.json" in names(small_disk / "run")


def test_eval(toy_model, toy_data, small_disk):
    fill(small_disk, 8)
    args = ("eval", "--model", toy_model, "--probes", toy_data["forget"], "--out", small_disk / "ev", "--backend",
            "hf", "--limit", 4, "--max-new-tokens", 2, "--device", "cpu")
    fails_cleanly(invoke(*args), small_disk, ["filler"])
    (small_disk / "filler").unlink()
    assert invoke(*args).exit_code == 0 and names(small_disk / "ev") == ["report.html", "results.json"]


def test_world_build(small_disk):
    fails_cleanly(invoke("world", "build", small_disk / "w", "--players", 8), small_disk, [])


def test_import(small_disk, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIX / "offside", src)
    fill(small_disk, 1)
    fails_cleanly(invoke("import", "offside", src / "gen.json", small_disk / "o.jsonl"), small_disk, ["filler"])


def test_tiny_model(small_disk, tmp_path):
    write_items(tmp_path / "learn.jsonl", toy.text_items())
    fill(small_disk, 100)
    args = ("model", "tiny", small_disk / "m", "--world", tmp_path, "--preset", "test")
    fails_cleanly(invoke(*args), small_disk, ["filler"])


def test_read_only_output(toy_model, toy_data, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]).returncode != 0:
        pytest.skip("a read-only disk is a tmpfs mount, which needs root")
    try:
        res = invoke("learn", "--model", toy_model, "--data", toy_data["forget"], "--out", ro / "run")
        assert res.exit_code == 1
        assert res.output.strip().splitlines()[-1] == f"Error: {ro / 'run'}: Read-only file system"
    finally:
        subprocess.run(["umount", str(ro)], check=True)
