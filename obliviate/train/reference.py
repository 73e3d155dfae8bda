"""Reference log-probs, computed once and cached on disk.

NPO and the DPO family compare the policy's log-probs with a frozen reference's. The reference never changes during
a run, so instead of running a deep-copied reference model every step (open-unlearning's way: twice the weights in
memory and one more forward per step), obliviate computes each example's reference log-probs once — with the new
adapter disabled, or with a separate `--reference` model — and stores them under a key made of the model's files,
the adapter stack and the token ids of the data. A rerun (another method, another seed, a resumed run) reads them
back.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from obliviate.models.logprobs import IGNORE, token_logps


def default_cache_dir() -> Path:
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate")) / "reference"


def files_fingerprint(*dirs: str | Path | None) -> str:
    """Identity of model/adapter folders: every file's name, size and modification time (not a content hash:
    hashing 15 GB of 7B weights would cost more than the reference pass it saves)."""
    h = hashlib.sha256()
    for d in dirs:
        if d is None:
            continue
        d = Path(d).resolve()
        h.update(str(d).encode())
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(d)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


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
def compute_reference(model, examples, collate, *, batch_size: int = 16, device=None) -> list[torch.Tensor]:
    """Each example's reference log-probs at its target positions, in order: a list of (n_targets_i,) tensors.

    `model` is the reference as it should be evaluated (the caller disables the adapter or passes another model).
    """
    out = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size])
        batch = {k: (v.to(device) if torch.is_tensor(v) and device is not None else v) for k, v in batch.items()}
        logp = token_logps(model, batch)  # (B, T)
        keep = batch["targets"] != IGNORE
        out.extend(logp[i][keep[i]].cpu() for i in range(logp.shape[0]))
    return out


def cached_reference(key: str, compute, *, cache_dir: str | Path | None = None) -> tuple[list[torch.Tensor], bool]:
    """Load the reference log-probs stored under `key`, or `compute()` and store them atomically.

    Returns (log-probs, whether they came from the cache).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{key}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True), True
    values = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(values, tmp)
    os.replace(tmp, path)
    return values, False


def scatter_reference(refs: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Place per-example reference log-probs back at the target positions of a collated batch: (B, T) float32."""
    out = torch.zeros(targets.shape, dtype=torch.float32)
    keep = (targets != IGNORE).cpu()
    for i, ref in enumerate(refs):
        out[i, keep[i]] = ref
    return out.to(targets.device)
