"""`obliviate learn | unlearn | relearn` through click: every bad option or input ends in one line (`Error: ...`,
exit 1) before anything exists; a finished run is reported, not retrained (issue 10)."""
import pytest
from click.testing import CliRunner

from obliviate.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("extra,problem", [
    (("--lr", "nan"), "lr must be a finite number > 0, got nan"),
    (("--lr", "inf"), "lr must be a finite number > 0, got inf"),
    (("--lr", "-1"), "lr must be a finite number > 0, got -1.0"),
    (("--clip", "nan"), "clip must be a finite number > 0, got nan"),
    (("--steps", "0"), "steps must be an integer >= 1, got 0"),
    (("--steps", "-1"), "steps must be an integer >= 1, got -1"),
    (("--grad-accum", "0"), "grad_accum must be an integer >= 1, got 0"),
    (("--batch-size", "0"), "batch_size must be an integer >= 1, got 0"),
    (("--lora-dropout", "nan"), "lora dropout must be a finite number >= 0 and < 1, got nan"),
    (("--device", "tpu"), "device 'tpu' is not a device (cpu, cuda, cuda:N, mps)"),
])
def test_learn_options_end_in_one_line_before_the_run_folder(toy_model, toy_data, tmp_path, extra, problem):
    """Issue 10: these gave tracebacks, untrained or NaN adapters with exit 0, or a config.json left behind."""
    res = invoke("learn", "--model", toy_model, "--data", toy_data["forget"], "--out", tmp_path / "run", *extra)
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1] == f"Error: {problem}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra,problem", [
    (("--method", "npo", "--beta", "0"), "beta must be a finite number > 0, got 0.0"),
    (("--method", "simnpo", "--beta", "-1"), "beta must be a finite number > 0, got -1.0"),
    (("--alpha", "nan"), "alpha must be a finite number >= 0, got nan"),
    (("--retain-ratio", "0", "--retain", "{retain}"), "retain_ratio must be a finite number > 0, got 0.0"),
])
def test_unlearn_options_end_in_one_line(toy_model, toy_data, tmp_path, extra, problem):
    """Issue 10: NPO `--beta 0` raised ZeroDivisionError after the run folder existed."""
    extra = [str(toy_data["retain"]) if x == "{retain}" else x for x in extra]
    res = invoke("unlearn", "--model", toy_model, "--forget", toy_data["forget"], "--out", tmp_path / "run", *extra)
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1] == f"Error: {problem}"
    assert list(tmp_path.iterdir()) == []


def test_a_finished_run_is_reported_and_a_failed_one_can_be_rerun(toy_model, toy_data, tmp_path):
    args = ("learn", "--model", toy_model, "--data", toy_data["forget"], "--out", tmp_path / "run", "--steps", 2)
    assert invoke(*args, "--lr", "nan").exit_code == 1  # issue 10: this left config.json, refusing the rerun
    assert invoke(*args).exit_code == 0
    res = invoke(*args, "--resume")
    assert res.exit_code == 0 and "run: finished already (2 steps); nothing to do" in res.output
    res = invoke(*args)
    assert res.exit_code == 1 and "holds a finished run; use --force to replace it" in res.output
    assert invoke(*args, "--force").exit_code == 0


def test_file_system_errors_end_in_one_line(toy_model, toy_data, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    res = invoke("learn", "--model", toy_model, "--data", toy_data["forget"], "--out", tmp_path / "file.txt" / "run")
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == f"Error: {tmp_path / 'file.txt' / 'run'}: Not a directory"
