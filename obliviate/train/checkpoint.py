"""Checkpoints that survive SIGKILL at any moment.

A checkpoint is a folder `ckpt-<step>` holding the trainable tensors, the optimizer and scheduler states, every
RNG state and the step. It is written under a temporary name and renamed into place (`files.atomic_dir`), so a
folder named `ckpt-*` is always complete; older ones are deleted only after the new one exists. The data order is
a pure function of (seed, step) (see `stream.sample_indices`), so the step alone says where the data stream stands.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from obliviate.files import atomic_dir
from obliviate.models import adapters

PREFIX = "ckpt-"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_tensors(model, *, full: bool) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: the trainable adapter's tensors, or every weight of a fully fine-tuned model."""
    if full:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    return adapters.adapter_tensors(model)


def load_trainable_tensors(model, tensors: dict[str, torch.Tensor], *, full: bool) -> None:
    if full:
        model.load_state_dict(tensors)
    else:
        adapters.load_adapter_tensors(model, tensors)


def save_checkpoint(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], optimizer, scheduler,
                    *, keep: int = 1) -> Path:
    """Write `ckpt-<step>` atomically; keep the newest `keep` checkpoints."""
    final = run_dir / f"{PREFIX}{step:07d}"
    with atomic_dir(final) as tmp:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, tmp / "trainable.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
                   tmp / "state.pt")
        (tmp / "step.json").write_text(json.dumps({"step": step}))
    for old in sorted(run_dir.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(Path(run_dir).glob(f"{PREFIX}*"))
    return found[-1] if found else None


def load_checkpoint(path: Path, optimizer, scheduler) -> tuple[int, dict[str, torch.Tensor]]:
    """Restore optimizer, scheduler and RNG states; return (step, trainable tensors)."""
    state = torch.load(path / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    step = json.loads((path / "step.json").read_text())["step"]
    return step, load_file(path / "trainable.safetensors")
