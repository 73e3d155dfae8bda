"""Two runs on one output: the first holds it, every other is refused at once naming the holder, and nothing is
interleaved (issue 10: two unlearn runs on one --out both exited 0, metrics.jsonl held 60 interleaved rows, the
config came from one run and the adapter from the other)."""
import time

from click.testing import CliRunner

from obliviate.cli.main import cli
from tests.faults import names, run_cli


def test_a_second_run_on_a_busy_output_is_refused(toy_model, toy_data, tmp_path):
    ready, go = tmp_path / "ready", tmp_path / "go"
    out = tmp_path / "runs" / "same"
    args = ["--model", toy_model, "--forget", toy_data["forget"], "--out", out, "--steps", 3, "--batch-size", 4]
    first = run_cli(["unlearn", "--method", "ga", *args], tmp_path, fault="obliviate.train.loop:log_row:1:wait",
                    background=True, READY=str(ready), GO=str(go))
    try:
        deadline = time.time() + 300
        while not ready.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert ready.exists(), first.communicate()[1][-3000:]
        for method in ("npo", "ga"):  # the same job or another: refused while the first runs
            res = CliRunner().invoke(cli, ["unlearn", "--method", method, *map(str, args)], catch_exceptions=False)
            assert res.exit_code == 1
            assert f"same: in use by pid {first.pid} on " in res.output.strip().splitlines()[-1]
    finally:
        go.touch()
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3 and names(out.parent) == ["same"]
    res = CliRunner().invoke(cli, ["unlearn", "--method", "npo", *map(str, args)], catch_exceptions=False)
    assert res.exit_code == 1 and "holds a finished run; use --force" in res.output
