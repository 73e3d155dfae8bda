"""Reference log-probs, computed once and cached on disk.

NPO and the DPO family compare the policy's log-probs with a frozen reference's. The reference never changes during
a run, so instead of running a deep-copied reference model every step (open-unlearning's way: twice the weights in
memory and one more forward per step), obliviate computes each example's reference log-probs once — with the new
adapter disabled, or with a separate `--reference` model — and stores them under a key made of the model's files,
the adapter stack and the token ids of the data. A rerun (another method, another seed, a resumed run) reads them
back. Several processes (sweep workers, Ray tasks) share one cache: `cache_lock(key)` makes the first compute an
entry while the others wait and then read it, and every entry is written atomically (a reader sees all of it or
nothing, and two writers of one entry leave one complete file).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from obliviate.files import atomic_file, cache_root, fingerprint
from obliviate.locks import file_lock
from obliviate.models.encode import collate
from obliviate.models.logprobs import IGNORE, token_logps


def default_cache_dir() -> Path:
    return cache_root() / "reference"


def examples_fingerprint(examples) -> str:
    """Identity of encoded examples: their token ids, targets and image pixels."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.input_ids.numpy().tobytes())
        h.update(ex.targets.numpy().tobytes())
        if getattr(ex, "pixel_values", None) is not None:
            h.update(ex.pixel_values.float().numpy().tobytes())
    return h.hexdigest()[:20]


@torch.no_grad()
def compute_reference(model, examples, *, pad_id: int, batch_size: int = 16, device=None) -> list[torch.Tensor]:
    """Each example's reference log-probs at its target positions, in order: a list of (n_targets_i,) tensors.

    `model` is the reference as it should be evaluated (the caller disables the adapter or passes another model).
    """
    out = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id=pad_id)
        batch = {k: (v.to(device) if torch.is_tensor(v) and device is not None else v) for k, v in batch.items()}
        logp = token_logps(model, batch)  # (B, T)
        keep = batch["targets"] != IGNORE
        out.extend(logp[i][keep[i]].cpu() for i in range(logp.shape[0]))
    return out


def cache_key(model_folders: list, examples, dtype: torch.dtype) -> str:
    """The cache key of one reference pass: the reference's model/adapter folders, the examples, the dtype."""
    return "-".join([fingerprint(*model_folders), examples_fingerprint(examples), str(dtype).split(".")[-1]])


def cache_lock(key: str, *, cache_dir: str | Path | None = None):
    """A lock on one cache entry (`locks.file_lock` on KEY.lock): hold it to look an entry up and, when missing,
    compute and store it, so that processes needing the same entry compute it once."""
    return file_lock(Path(cache_dir or default_cache_dir()) / f"{key}.lock")


def load_cached(key: str, *, cache_dir: str | Path | None = None) -> list[torch.Tensor] | None:
    """The reference log-probs stored under `key`, or None."""
    path = Path(cache_dir or default_cache_dir()) / f"{key}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def store_cached(key: str, values: list[torch.Tensor], *, cache_dir: str | Path | None = None) -> Path:
    """Store reference log-probs under `key` atomically (a concurrent reader sees all of them or none)."""
    folder = Path(cache_dir or default_cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.pt"
    with atomic_file(path) as f:
        torch.save(values, f)
    return path


def scatter_reference(refs: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Place per-example reference log-probs back at the target positions of a collated batch: (B, T) float32."""
    out = torch.zeros(targets.shape, dtype=torch.float32)
    keep = (targets != IGNORE).cpu()
    for i, ref in enumerate(refs):
        out[i, keep[i]] = ref
    return out.to(targets.device)
