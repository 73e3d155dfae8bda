"""scripts/venv.sh: two calls at once install one after the other, not into one .venv over each other (the README's
two commands started together broke each other's pip install, 2026-12-02)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Stands in for .venv/bin/python: logs each call's start and end, with the caller's pid, and takes a moment.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "start $PPID $*" >> "$(dirname "$0")/../../calls.log"
sleep 0.3
echo "end $PPID" >> "$(dirname "$0")/../../calls.log"
"""


@pytest.mark.skipif(shutil.which("flock") is None, reason="the lock needs util-linux's flock")
def test_two_venv_calls_at_once_install_once_and_in_turn(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv.sh", tmp_path / "scripts" / "venv.sh")
    (tmp_path / "setup.py").write_text("# a project\n")
    (tmp_path / "obliviate").mkdir()
    (tmp_path / "obliviate" / "VERSION").write_text("0\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls = [subprocess.Popen(["bash", "scripts/venv.sh", "test"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    assert [c.wait(timeout=60) for c in calls] == [0, 0], [c.stderr.read() for c in calls]
    log = (tmp_path / "calls.log").read_text().splitlines()
    starts = [line for line in log if line.startswith("start")]
    assert len(starts) == 3 and "install -q -e .[test]" in starts[-1], log  # pip, torch, the project: once
    assert len({line.split()[1] for line in log}) == 1, log  # all from one of the two calls
    assert all(a.startswith("start") and b == f"end {a.split()[1]}" for a, b in zip(log[::2], log[1::2])), log
