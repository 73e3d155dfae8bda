"""A run killed with SIGKILL and resumed ends with the same adapter tensors as an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unlearn_cmd(model, forget, retain, out, *extra):
    # NPO + KL retain + LoRA dropout: the run uses the data order, the cached reference and the RNG, all of
    # which a resume must restore exactly.
    return [sys.executable, "-m", "obliviate.cli.main", "unlearn", "--model", str(model), "--forget", str(forget),
            "--retain", str(retain), "--retain-loss", "kl", "--method", "npo", "--out", str(out), "--steps", "24",
            "--batch-size", "4", "--lr", "2e-3", "--lora-dropout", "0.1", "--warmup", "3", "--save-every", "3",
            *extra]


def env():
    return {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("kill_after", [1, 4])
def test_sigkill_then_resume_equals_uninterrupted(kill_after, toy_model, toy_data, tmp_path):
    cache = {"OBLIVIATE_CACHE": str(tmp_path / "cache")}
    args = (toy_model, toy_data["forget"], toy_data["retain"])
    subprocess.run(unlearn_cmd(*args, tmp_path / "whole"), env={**env(), **cache}, check=True, capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(unlearn_cmd(*args, run), env={**env(), **cache}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(run.glob("ckpt-*"))) < 1 or len((run / "metrics.jsonl").read_text().splitlines()) < 3 * kill_after:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "adapter").exists()
    done = subprocess.run(unlearn_cmd(*args, run, "--resume"), env={**env(), **cache}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

    whole = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    resumed = load_file(run / "adapter" / "adapter_model.safetensors")
    assert whole.keys() == resumed.keys() and whole
    for k in whole:
        assert (whole[k] == resumed[k]).all(), k
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 24  # one line per step, none twice
