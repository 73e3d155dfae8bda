"""The fork server of local workers: `python -m obliviate.sweep.zygote` imports torch, transformers and obliviate's
jobs once, then forks one child per cell it is asked for, so a cell starts in milliseconds instead of the ~8 s a
fresh interpreter spends importing them on a 2-core machine.

Protocol, one JSON object per line: on stdin {"id", "out", "cell", "env", "log"} runs a cell; on stdout {"id",
"status"} reports its exit status (negative: killed by that signal, as `subprocess` reports it). The child takes
the sweep's environment, writes its output to the cell's log and sets its thread count before the cell runs. The
server never runs a tensor operation (a fork after OpenMP has started threads is not safe), ignores Ctrl-C (it
reaches the cells and the sweep directly) and ends when its stdin closes and its last child has ended.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import traceback

PRELOAD = ("torch", "transformers", "peft", "obliviate.sweep.worker", "obliviate.train.unlearner",
           "obliviate.eval.evaluate", "obliviate.data.world")


def serve() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: dict[int, int] = {}  # pid -> request id
    stdin, buffer, reading = sys.stdin.fileno(), b"", True
    while reading or children:
        ready, _, _ = select.select([stdin] if reading else [], [], [], 0.05)
        if ready:
            chunk = os.read(stdin, 1 << 16)
            reading = bool(chunk)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                children[fork_cell(request)] = request["id"]
        reap(children)


def reap(children: dict[int, int]) -> None:
    """Report every child that has ended."""
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        report = {"id": children.pop(pid), "status": os.waitstatus_to_exitcode(status)}
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


def fork_cell(request: dict) -> int:
    """Fork a child that runs the cell and exits with the worker's status; the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        _redirect(request["log"])
        if "OMP_NUM_THREADS" in request["env"]:
            import torch

            torch.set_num_threads(int(request["env"]["OMP_NUM_THREADS"]))
        from obliviate.sweep.worker import main

        status = main([request["out"], request["cell"]])
    except BaseException:  # noqa: BLE001 - the child reports every failure through its exit status
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _redirect(log: str) -> None:
    """stdout and stderr to the cell's log (appended), stdin from /dev/null."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)


if __name__ == "__main__":
    serve()
