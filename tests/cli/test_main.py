"""The `obliviate` group itself: file-system errors as one line, and OpenMP threads that sleep when idle."""
import os
import subprocess
import sys

from obliviate.cli.main import os_error_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_os_error_line():
    assert os_error_line(OSError(28, "No space left on device", "runs/a/metrics.jsonl")) == \
        "runs/a/metrics.jsonl: No space left on device"
    assert os_error_line(FileNotFoundError("m: no such model directory")) == "m: no such model directory"


def policy(**env) -> str:
    code = "import obliviate.cli, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env={**base, "PYTHONPATH": ROOT, **env}, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_the_command_line_sets_a_passive_openmp_wait_policy_unless_one_is_set():
    """Issue 10: with OpenMP's default spinning, training and generation ran 5-30x slower whenever another process
    was busy on the same cores."""
    assert policy() == "PASSIVE"
    assert policy(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
