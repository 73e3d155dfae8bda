"""A run killed with SIGKILL and resumed ends with the same adapter tensors as an uninterrupted run.

The kill is deterministic: the run executes in a subprocess whose `save_checkpoint` sends SIGKILL to its own process
right after writing the checkpoint of a chosen step, so no timing decides where the run stands."""
import os
import signal
import subprocess
import sys

import pytest
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Runs the CLI with a save_checkpoint that kills the process once the checkpoint of step $KILL_AT_STEP is on disk.
DRIVER = """
import os, signal, sys
from obliviate.train import loop
save = loop.save_checkpoint
def save_then_die(run_dir, step, *args, **kwargs):
    path = save(run_dir, step, *args, **kwargs)
    if step == int(os.environ["KILL_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return path
loop.save_checkpoint = save_then_die
from obliviate.cli.main import cli
cli(sys.argv[1:])
"""


def unlearn_args(model, forget, retain, out, *extra):
    # NPO + KL retain + LoRA dropout: the run uses the data order, the cached reference and the RNG, all of
    # which a resume must restore exactly.
    return ["unlearn", "--model", str(model), "--forget", str(forget), "--retain", str(retain), "--retain-loss", "kl",
            "--method", "npo", "--out", str(out), "--steps", "24", "--batch-size", "4", "--lr", "2e-3",
            "--lora-dropout", "0.1", "--warmup", "3", "--save-every", "3", *extra]


def run(args, tmp_path, kill_at=0):
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "OBLIVIATE_CACHE": str(tmp_path / "cache"),
           "KILL_AT_STEP": str(kill_at)}
    return subprocess.run([sys.executable, "-c", DRIVER, *args], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("kill_at", [3, 12])
def test_sigkill_then_resume_equals_uninterrupted(kill_at, toy_model, toy_data, tmp_path):
    data = (toy_model, toy_data["forget"], toy_data["retain"])
    assert run(unlearn_args(*data, tmp_path / "whole"), tmp_path).returncode == 0
    killed = run(unlearn_args(*data, tmp_path / "killed"), tmp_path, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL
    run_dir = tmp_path / "killed"
    assert not (run_dir / "adapter").exists()
    assert [p.name for p in run_dir.glob("ckpt-*")] == [f"ckpt-{kill_at:07d}"]
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == kill_at
    done = run(unlearn_args(*data, run_dir, "--resume"), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]

    whole = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    resumed = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert whole.keys() == resumed.keys() and whole
    for k in whole:
        assert (whole[k] == resumed[k]).all(), k
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 24  # one line per step, none twice
