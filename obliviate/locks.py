"""Claiming output folders, and locks between processes.

Output folders. `folder_lock(path)` locks a path that may not exist yet (`flock` on a `.<name>.lock` file beside it,
which names its holder); a second process gets `FolderBusy` with the holder's pid, host and start time. The kernel
drops a dead process's lock, so a stale lock file is simply taken over. `new_folder(path)` = lock + `check_new` +
`atomic_dir` (files.py).

Locks between processes. `file_lock(path)` holds an exclusive `flock` on `path` (created, never deleted) while the
block runs: another process (a sweep worker, a Ray task) waits, or with `blocking=False` gets `Locked`. The kernel
drops the lock when its holder dies, so a killed process never leaves a stale lock behind.

Like files.py, this module imports no torch.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from obliviate.files import HOST, FolderBusy, _umask, as_os_error, atomic_dir, check_new, make_parents, remove_empty


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text())
        return f"pid {info['pid']} on {info['host']} since {info['started']} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def folder_lock(path: str | Path) -> Iterator[None]:
    """Hold the exclusive lock on `path` for the block, or raise `FolderBusy` naming the process that holds it."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        except OSError as err:  # named after what is locked, not the lock file
            raise OSError(err.errno, err.strerror, str(path)) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(f"{path}: in use by {_holder(lock)}; wait for it or choose another output") from None
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break  # still the file at that name (not one its last holder unlinked meanwhile)
        os.close(fd)
    try:
        info = {"pid": os.getpid(), "host": HOST, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]}
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
        except OSError as err:
            raise as_os_error(err, path) from err
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


@contextlib.contextmanager
def new_folder(path: str | Path, *, replace: bool = False, marker: str | None = None,
               flag: str = "--force") -> Iterator[Path]:
    """Claim `path` as a new folder (`folder_lock`, `check_new`) and yield a temporary sibling to fill, which
    becomes `path` when the block ends without error (`atomic_dir`). Folders made above it go again on failure."""
    path = Path(path)
    made = make_parents(path)
    try:
        with folder_lock(path):
            check_new(path, replace=replace, marker=marker, flag=flag)
            with atomic_dir(path) as tmp:
                yield tmp
    except BaseException:
        remove_empty(made)
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
