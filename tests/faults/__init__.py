"""Faults on the tiny model (issue 10): SIGKILL at a chosen point, a full disk, two runs on one output. Each case
ends with exit != 0 and one line, leaves nothing that was not there, and the same command run again succeeds."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Runs the CLI with one function of the package replaced by one that SIGKILLs the process (or waits for a file)
# when called for the AT-th time: where the run stands when it dies is decided by the test, not by timing.
DRIVER = """
import importlib, os, signal, sys, time
module, name, at, action = os.environ["FAULT"].split(":")
target = importlib.import_module(module)
original = getattr(target, name)
calls = 0
def faulty(*args, **kwargs):
    global calls
    calls += 1
    if calls == int(at):
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        open(os.environ["READY"], "w").close()
        while not os.path.exists(os.environ["GO"]):
            time.sleep(0.05)
    return original(*args, **kwargs)
setattr(target, name, faulty)
from obliviate.cli.main import cli
cli(sys.argv[1:])
"""


def run_cli(args, cwd, *, fault: str | None = None, background=False, **env):
    """`obliviate ARGS` in a subprocess (FAULT = "module:function:call:kill|wait")."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **env}
    if fault is not None:
        full_env["FAULT"] = fault
    cmd = [sys.executable, "-c", DRIVER if fault else "from obliviate.cli.main import cli; cli()",
           *[str(a) for a in args]]
    if background:
        return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600)


def last_line(result) -> str:
    return result.stderr.strip().replace("\r", "\n").splitlines()[-1]


def fill(disk, kib_left: int):
    """Fill the 2 MiB `small_disk` so that about `kib_left` KiB stay free."""
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * (2048 - kib_left) * 1024)


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
