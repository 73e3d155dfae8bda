"""Where a job's micro-batches come from: seeded, resumable streams of encoded examples.

A `Stream` serves batch k of a shuffled, epoch-wise order that is a pure function of (seed, stream number, k), so
a resumed run needs only its step to stand where the killed one stood. A job has up to three streams, drawn
together into one `StepBatch` per micro-step:

    forget   the data the loss acts on: the learn set for learn / relearn, the forget set for unlearn; with the
             cached reference log-probs of its examples for NPO and the DPO family (`ref_logps`)
    chosen   DPO family only: the same items as the forget batch (same indices), with the preferred answer
    retain   the retain set; for the KL retain term it carries the reference's hidden states (`ref_hidden`)
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from obliviate.models.encode import Example, collate
from obliviate.models.logprobs import hidden_states
from obliviate.train.reference import scatter_reference


def sample_indices(n: int, batch_size: int, draw: int, *, seed: int, stream: int = 0) -> list[int]:
    """Indices of the `draw`-th batch of a shuffled, epoch-wise stream over `n` examples.

    Position p of the stream is element p % n of epoch p // n's permutation, and each permutation comes from its
    own generator seeded by (seed, stream, epoch): any batch can be recomputed without replaying the ones before.
    """
    out, cache = [], {}
    for p in range(draw * batch_size, (draw + 1) * batch_size):
        epoch = p // n
        if epoch not in cache:
            g = torch.Generator().manual_seed(seed * 1_000_003 + stream * 10_007 + epoch)
            cache[epoch] = torch.randperm(n, generator=g).tolist()
        out.append(cache[epoch][p % n])
    return out


@dataclass(frozen=True, eq=False)
class Stream:
    """Encoded examples served in seeded batches; `refs` holds each example's reference log-probs, if any."""

    examples: list[Example]
    batch_size: int
    pad_id: int
    seed: int
    number: int  # which stream of the job (0 learn, 1 forget/chosen, 2 retain): different numbers, different orders
    refs: list[torch.Tensor] | None = None

    def take(self, indices: list[int], device) -> dict:
        """The examples at `indices` as a padded batch on `device` (with `ref_logps` when the stream has refs)."""
        batch = collate([self.examples[i] for i in indices], pad_id=self.pad_id)
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        if self.refs is not None:
            batch["ref_logps"] = scatter_reference([self.refs[i] for i in indices], batch["targets"])
        return batch

    def draw(self, k: int, device) -> tuple[dict, list[int]]:
        """Batch k of the stream and the indices it holds."""
        indices = sample_indices(len(self.examples), self.batch_size, k, seed=self.seed, stream=self.number)
        return self.take(indices, device), indices


@dataclass(frozen=True, eq=False)
class Streams:
    """A job's data: see the module docstring."""

    forget: Stream
    chosen: Stream | None = None
    retain: Stream | None = None


@dataclass(frozen=True, eq=False)
class StepBatch:
    """One micro-step's batches (padded, on the device)."""

    forget: dict
    chosen: dict | None = None
    retain: dict | None = None


@torch.no_grad()
def reference_hidden(reference: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The KL reference's final hidden states (B, T, H): the policy with its trainable adapter switched off, or a
    separate reference model."""
    off = reference.disable_adapter() if hasattr(reference, "disable_adapter") else nullcontext()
    with off:
        return hidden_states(reference, batch)


def next_batch(streams: Streams, k: int, device, *, kl_reference: torch.nn.Module | None = None) -> StepBatch:
    """Micro-batch k of every stream of the job."""
    forget, indices = streams.forget.draw(k, device)
    chosen = streams.chosen.take(indices, device) if streams.chosen is not None else None
    retain = streams.retain.draw(k, device)[0] if streams.retain is not None else None
    if retain is not None and kl_reference is not None:
        retain["ref_hidden"] = reference_hidden(kl_reference, retain)
    return StepBatch(forget=forget, chosen=chosen, retain=retain)
