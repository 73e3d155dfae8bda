"""SIGKILL at a chosen point of learn, world build and eval: nothing half-written is published, and the next run
of the same command removes what the killed one left and succeeds (issue 10: `world build` killed mid-way left a
`.world.*.tmp` folder that no rerun cleaned; a killed run left a partial run folder that blocked the rerun)."""
import signal

from tests.faults import names, run_cli


def test_learn_killed_mid_run(toy_model, toy_data, tmp_path):
    args = ["learn", "--model", toy_model, "--data", toy_data["forget"], "--out", "run", "--steps", 4,
            "--batch-size", 4]
    killed = run_cli(args, tmp_path, fault="obliviate.train.loop:log_row:2:kill")
    assert killed.returncode == -signal.SIGKILL
    assert "run" not in names(tmp_path) and any(n.startswith(".tmp-run.") for n in names(tmp_path))
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert names(tmp_path) == ["run"]
    assert names(tmp_path / "run") == ["adapter", "config.json", "done.json", "metrics.jsonl"]


def test_world_build_killed_mid_way(tmp_path):
    args = ["world", "build", "w", "--players", 8]
    killed = run_cli(args, tmp_path, fault="obliviate.data.world.build:_save:10:kill")
    assert killed.returncode == -signal.SIGKILL and "w" not in names(tmp_path)
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert names(tmp_path) == ["w"] and (tmp_path / "w" / "world.json").is_file()


def test_eval_killed_between_results_and_report(toy_model, toy_data, tmp_path):
    """results.json is written, report.html not yet: the folder must not appear half-written."""
    args = ["eval", "--model", toy_model, "--probes", toy_data["forget"], "--out", "ev", "--backend", "hf",
            "--limit", 2, "--max-new-tokens", 2, "--no-score", "--device", "cpu"]
    killed = run_cli(args, tmp_path, fault="obliviate.eval.evaluate:write_text:1:kill")
    assert killed.returncode == -signal.SIGKILL and "ev" not in names(tmp_path)
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert names(tmp_path) == ["ev"] and names(tmp_path / "ev") == ["report.html", "results.json"]
