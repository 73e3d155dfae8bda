"""Where cells run: N local processes at a time (`LocalWorkers`), or Ray tasks (`RayWorkers`). Both return a
`concurrent.futures.Future` per cell whose result is the worker process's exit status, so the sweep's scheduling
loop is the same for both.

Every cell runs in a fresh process (`obliviate.sweep.worker`, output appended to OUT/cells/ID.log): a crash or a kill
takes down one cell, memory (GPU memory too) is returned after each, and on the CPU the process has exactly one
OpenMP thread (or `threads`), so results do not depend on how many run side by side. Locally the process is
forked from a server that imported torch, transformers and obliviate's jobs once (`ForkServer`,
`obliviate.sweep.zygote`): a fresh interpreter spends about 8 s importing them on a 2-core machine, a fork a few
milliseconds; the child takes the sweep's current environment before it runs. A Ray task starts a fresh interpreter (`run_worker_process`: `python
-m obliviate.sweep.worker OUT CELL_ID`), as a cluster node has no server of ours. Locally each worker slot owns one
GPU when there are GPUs (CUDA_VISIBLE_DEVICES, set before CUDA starts); a Ray task asks for one GPU on a cluster
that has them (Ray sets CUDA_VISIBLE_DEVICES) and one CPU otherwise.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from obliviate.sweep.cells import cell_file

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding obliviate/ (installed or a checkout)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cell_env(gpu: str | None, threads: int = 1) -> dict[str, str]:
    """The environment a cell runs in: this process's, with the package importable, the GPU slot's device and, on
    the CPU, `threads` threads."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # no weight-loading bars in the cell's log
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if not _sees_gpu(env):
        env.update({var: str(threads) for var in THREAD_VARS}, TOKENIZERS_PARALLELISM="false")
    return env


def cpu_count() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _log(out: str, cell_id: str) -> Path:
    log = cell_file(Path(out), cell_id, "log")
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def run_worker_process(out: str, cell_id: str, gpu: str | None = None, threads: int = 1) -> int:
    """Run one cell in a new Python interpreter and return its exit status (negative: killed by that signal).
    gpu: the device it may see (None: whatever this process sees); threads: on the CPU."""
    with open(_log(out, cell_id), "ab") as f:
        return subprocess.run([sys.executable, "-m", "obliviate.sweep.worker", out, cell_id],
                              env=cell_env(gpu, threads),
                              stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode


class ForkServer:
    """A client of `obliviate.sweep.zygote`: a server process started with `env` that imported the jobs once and
    forks a child per cell. `run` blocks until the cell's process ends and returns its exit status."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen([sys.executable, "-m", "obliviate.sweep.zygote"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()
        self.waiting: dict[int, Future] = {}
        self.n, self.gone = 0, False
        threading.Thread(target=self._read, name="sweep-fork-server", daemon=True).start()

    def run(self, out: str, cell_id: str, env: dict[str, str]) -> int:
        ended: Future = Future()
        with self.lock:
            request = {"id": self.n + 1, "out": out, "cell": cell_id, "env": env, "log": str(_log(out, cell_id))}
            try:
                if self.gone:
                    raise BrokenPipeError
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            except BrokenPipeError:
                raise RuntimeError(self._ended()) from None
            self.n += 1
            self.waiting[self.n] = ended
        return ended.result()

    def _read(self) -> None:
        for line in self.process.stdout:
            report = json.loads(line)
            with self.lock:
                ended = self.waiting.pop(report["id"])
            ended.set_result(report["status"])
        with self.lock:  # the server is gone: nothing it was running will report
            self.gone = True
            for ended in self.waiting.values():
                ended.set_exception(RuntimeError(self._ended()))
            self.waiting.clear()

    def _ended(self) -> str:
        return f"the sweep's fork server ended (status {self.process.wait()})"

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except BrokenPipeError:  # the server is gone already
            pass
        self.process.wait()


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
    """Up to `workers` cells at a time on this machine; with GPUs, slot i runs its cells on GPU i, else each cell
    has `threads` CPU threads."""

    def __init__(self, workers: int, threads: int = 1):
        gpus = gpu_count()
        if gpus and workers > gpus:
            raise ValueError(f"--workers {workers}: this machine has {gpus} GPU(s); one worker per GPU")
        self.slots: queue.Queue = queue.Queue()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d.strip() for d in visible.split(",")] if visible else [str(i) for i in range(gpus)]
        for i in range(workers):
            self.slots.put(ids[i] if gpus else None)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep-worker")
        self.server = ForkServer(cell_env(None, threads))
        self.capacity, self.threads = workers, threads
        per = f"{threads} thread{'s' if threads > 1 else ''} each"
        self.where = f"{workers} local worker{'s' if workers > 1 else ''}" + (f" on {workers} GPUs" if gpus else
                                                                              f" (CPU, {per})")

    def submit(self, out: Path, cell_id: str) -> Future:
        return self.pool.submit(self._run, str(out), cell_id)

    def _run(self, out: str, cell_id: str) -> int:
        gpu = self.slots.get()
        try:
            return self.server.run(out, cell_id, cell_env(gpu, self.threads))
        finally:
            self.slots.put(gpu)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.server.close()


class RayWorkers:
    """Cells as Ray tasks. address: "local" starts a Ray instance here (with `workers` CPUs), anything else is
    passed to `ray.init` (e.g. "auto" or "ray://HEAD:10001"). Cluster nodes need obliviate installed and the sweep
    folder at the same path (a shared file system)."""

    def __init__(self, address: str, *, workers: int | None = None, threads: int = 1):
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs Ray: pip install 'obliviate[ray]'") from None
        self.ray = ray
        local = address == "local"  # a local instance inherits this process's environment (PYTHONPATH too)
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, num_cpus=workers * threads if local and workers else None,
                     include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self.task = ray.remote(num_cpus=1 if gpus else threads, num_gpus=1 if gpus else 0,
                               max_retries=2)(run_worker_process)
        self.threads = threads
        self.capacity = gpus or max(1, int(resources.get("CPU", 1)) // threads)
        self.where = f"Ray at {address} ({int(resources.get('CPU', 0))} CPUs, {gpus} GPUs)"

    def submit(self, out: Path, cell_id: str) -> Future:
        return self.task.remote(str(out), cell_id, None, self.threads).future()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
