"""A job's run folder as a transaction: claimed under a lock, written where no one mistakes it for a finished run,
and either complete (with its completion marker) or as it was before.

A run folder holds config.json (the job, its model, the content hashes of its data and every option), metrics.jsonl,
the output (adapter/ or model/) and, once finished, `done.json`: that marker, not the presence of files, says a run is
finished. What a job does with the folder `out`, decided under `locks.folder_lock(out)`:

    out                                  job                    --resume                     --force
    missing or empty                     new run                new run                      new run
    finished (done.json)                 refused                "finished", nothing to do    replaced on success
    unfinished (config.json, no marker)  refused                continued, if model, data    replaced
                                                                and options are the same
    anything else                        refused                refused                      refused

A new run without checkpoints is written into a temporary sibling that is renamed to `out` on success
(`files.atomic_dir`), so a failure or a SIGKILL leaves nothing (temporaries of dead processes are removed by the
next run). A run that checkpoints (`save_every` > 0) is written in `out` itself, so that a killed run can be
resumed; on a failure before its first checkpoint it is removed again (and a folder it was to replace restored),
after it the folder stays, unfinished, with its last good checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from obliviate.files import atomic_dir, clean_stale_temporaries, make_parents, remove_empty, set_aside, write_text
from obliviate.locks import folder_lock
from obliviate.train.checkpoint import PREFIX, latest_checkpoint

CONFIG = "config.json"
DONE = "done.json"
# Config entries a resumed run may change: names of data files (their content hashes must match), the device,
# how often checkpoints are written.
FREE_TO_CHANGE = ("data", "forget", "retain", "device", "options.save_every")


@dataclass(frozen=True)
class RunFolder:
    """`path`: the run folder named by the user; `work`: where this run writes (`path`, or a temporary sibling
    renamed to it on success); `resume`: continue from the checkpoints in `work`; `finished`: a finished run was
    asked to resume, there is nothing to do."""

    path: Path
    work: Path
    resume: bool = False
    finished: bool = False


def plain_config(job: str, **config) -> dict:
    """config.json's content: the job and every option, JSON-ready (dataclasses as dicts, paths as strings)."""
    def plain(v):
        if hasattr(v, "__dataclass_fields__"):
            return asdict(v)
        return str(v) if isinstance(v, Path) else v
    return json.loads(json.dumps({"job": job, **{k: plain(v) for k, v in config.items()}}, default=str))


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(saved: dict, wanted: dict) -> list[str]:
    """The entries (other than FREE_TO_CHANGE) in which two configs differ, as "key: saved -> wanted"."""
    a, b = _flat(saved), _flat(wanted)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in FREE_TO_CHANGE and a.get(k) != b.get(k)]


def read_config(path: Path) -> dict:
    """A run folder's config.json."""
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path / CONFIG}: unreadable run configuration ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path / CONFIG}: not a run configuration (a JSON object)")
    return config


def decide(out: str | Path, config: dict, *, resume: bool, force: bool) -> str:
    """What a job does with `out` (see the module docstring): "new", "replace", "resume" or "finished"; raises
    when the job must not touch it. Reads only; `open_run` decides again under the lock."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith(".tmp-")):
        return "new"
    if not (out / CONFIG).is_file():
        raise FileExistsError(f"{out}: exists, is not empty and is not a run folder (no {CONFIG}); choose another "
                              "--out")
    if force:
        return "replace"
    finished = (out / DONE).is_file()
    if not resume:
        what = "a finished run" if finished else "an unfinished run (continue it with --resume)"
        raise FileExistsError(f"{out}: holds {what}; use --force to replace it, or another --out")
    changed = differences(read_config(out), config)
    if changed:
        raise ValueError(f"{out}: cannot {'resume' if not finished else 'report'} this run with another model, data "
                         f"or options ({'; '.join(changed[:4])}); use --force to start it anew")
    return "finished" if finished else "resume"


@contextlib.contextmanager
def open_run(out: str | Path, config: dict, *, resume: bool = False, force: bool = False,
             checkpoints: bool = False) -> Iterator[RunFolder]:
    """Claim run folder `out` for a job whose configuration is `config` (`plain_config`); yield where to write.
    On success the completion marker is written and the checkpoints dropped; on failure see the module docstring."""
    out = Path(out)
    made = make_parents(out)
    try:
        with folder_lock(out):
            clean_stale_temporaries(out.parent)
            if out.is_dir():
                clean_stale_temporaries(out)
            action = decide(out, config, resume=resume, force=force)
            if action == "finished":
                yield RunFolder(out, out, finished=True)
            elif action == "resume":
                yield RunFolder(out, out, resume=True)
                _finish(out)
            elif checkpoints:
                with _in_place(out, config, replace=action == "replace") as run:
                    yield run
            else:
                with atomic_dir(out) as work:
                    write_text(work / CONFIG, json.dumps(config, indent=2) + "\n")
                    yield RunFolder(out, work)
                    _finish(work)
    except BaseException:
        remove_empty(made)
        raise


def _finish(work: Path) -> None:
    """Mark the run finished; its final output supersedes the checkpoints."""
    write_text(work / DONE, json.dumps({"finished": True}) + "\n")
    for ckpt in work.glob(f"{PREFIX}*"):
        shutil.rmtree(ckpt)


@contextlib.contextmanager
def _in_place(out: Path, config: dict, *, replace: bool) -> Iterator[RunFolder]:
    """A new checkpointing run written in `out` itself; a folder it replaces is set aside until it succeeds."""
    old = set_aside(out) if replace else None
    created = not out.exists()
    out.mkdir(exist_ok=True)
    try:
        write_text(out / CONFIG, json.dumps(config, indent=2) + "\n")
        yield RunFolder(out, out)
        _finish(out)
    except BaseException:
        if latest_checkpoint(out) is None:  # nothing to resume from: leave things as they were
            if created or old is not None:
                shutil.rmtree(out, ignore_errors=True)
            else:
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            if old is not None:
                old.rename(out)
                old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
