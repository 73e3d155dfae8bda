"""Where cells run: N local processes at a time (`LocalWorkers`), or Ray tasks (`RayWorkers`). Both return a
`concurrent.futures.Future` per cell whose result is the worker process's exit status, so the sweep's scheduling
loop is the same for both.

Every cell runs in a fresh process (`obliviate.sweep.worker`, output appended to OUT/cells/ID.log): a crash or a kill
takes down one cell, memory (GPU memory too) is returned after each, and on the CPU the process has exactly one
OpenMP thread, so results do not depend on how many run side by side. Locally the process is forked from a server
that imported torch, transformers and obliviate's jobs once (`multiprocessing`'s forkserver with `PRELOAD`): a
fresh interpreter spends about 8 s importing them on a 2-core machine, a fork a few milliseconds; the child takes
the sweep's current environment before it runs. A Ray task starts a fresh interpreter (`run_worker_process`: `python
-m obliviate.sweep.worker OUT CELL_ID`), as a cluster node has no server of ours. Locally each worker slot owns one
GPU when there are GPUs (CUDA_VISIBLE_DEVICES, set before CUDA starts); a Ray task asks for one GPU on a cluster
that has them (Ray sets CUDA_VISIBLE_DEVICES) and one CPU otherwise.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from obliviate.sweep.cells import cell_file

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding obliviate/ (installed or a checkout)
CPU_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
PRELOAD = ["obliviate.sweep.worker", "obliviate.train.unlearner", "obliviate.eval.evaluate", "obliviate.data.world"]


def cell_env(gpu: str | None) -> dict[str, str]:
    """The environment a cell runs in: this process's, with the package importable, the GPU slot's device and, on
    the CPU, one thread."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # no weight-loading bars in the cell's log
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if not _sees_gpu(env):
        env.update(CPU_ENV)
    return env


def _log(out: str, cell_id: str) -> Path:
    log = cell_file(Path(out), cell_id, "log")
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def run_worker_process(out: str, cell_id: str, gpu: str | None = None) -> int:
    """Run one cell in a new Python interpreter and return its exit status (negative: killed by that signal).
    gpu: the device it may see (None: whatever this process sees)."""
    with open(_log(out, cell_id), "ab") as f:
        return subprocess.run([sys.executable, "-m", "obliviate.sweep.worker", out, cell_id], env=cell_env(gpu),
                              stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode


def run_forked(context, out: str, cell_id: str, gpu: str | None = None) -> int:
    """Run one cell in a process forked from the preloaded server; its exit status, as `run_worker_process`."""
    process = context.Process(target=_forked_cell, args=(out, cell_id, cell_env(gpu), str(_log(out, cell_id))),
                              name=f"cell {cell_id}")
    process.start()
    process.join()
    return process.exitcode


def _forked_cell(out: str, cell_id: str, env: dict[str, str], log: str) -> None:
    """The forked child: output to the cell's log, the sweep's environment, its thread count, then the cell."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    if "OMP_NUM_THREADS" in env:
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    from obliviate.sweep.worker import main

    sys.exit(main([out, cell_id]))


def forkserver():
    """multiprocessing's forkserver context, its server importing `PRELOAD` once (started on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _sees_gpu(env: dict) -> bool:
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return visible.strip() not in ("", "-1")
    return gpu_count() > 0


def gpu_count() -> int:
    """CUDA devices this process may use (torch asks the driver without creating a CUDA context)."""
    import torch

    return torch.cuda.device_count()


class LocalWorkers:
    """Up to `workers` cells at a time on this machine; with GPUs, slot i runs its cells on GPU i."""

    def __init__(self, workers: int):
        gpus = gpu_count()
        if gpus and workers > gpus:
            raise ValueError(f"--workers {workers}: this machine has {gpus} GPU(s); one worker per GPU")
        self.slots: queue.Queue = queue.Queue()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d.strip() for d in visible.split(",")] if visible else [str(i) for i in range(gpus)]
        for i in range(workers):
            self.slots.put(ids[i] if gpus else None)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep-worker")
        self.context = forkserver()
        self.capacity = workers
        self.where = f"{workers} local worker{'s' if workers > 1 else ''}" + (f" on {workers} GPUs" if gpus else
                                                                              " (CPU, 1 thread each)")

    def submit(self, out: Path, cell_id: str) -> Future:
        return self.pool.submit(self._run, str(out), cell_id)

    def _run(self, out: str, cell_id: str) -> int:
        gpu = self.slots.get()
        try:
            return run_forked(self.context, out, cell_id, gpu)
        finally:
            self.slots.put(gpu)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class RayWorkers:
    """Cells as Ray tasks. address: "local" starts a Ray instance here (with `workers` CPUs), anything else is
    passed to `ray.init` (e.g. "auto" or "ray://HEAD:10001"). Cluster nodes need obliviate installed and the sweep
    folder at the same path (a shared file system)."""

    def __init__(self, address: str, *, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs Ray: pip install 'obliviate[ray]'") from None
        self.ray = ray
        local = address == "local"  # a local instance inherits this process's environment (PYTHONPATH too)
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, num_cpus=workers if local else None, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self.task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=2)(run_worker_process)
        self.capacity = gpus or int(resources.get("CPU", 1))
        self.where = f"Ray at {address} ({int(resources.get('CPU', 0))} CPUs, {gpus} GPUs)"

    def submit(self, out: Path, cell_id: str) -> Future:
        return self.task.remote(str(out), cell_id).future()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
