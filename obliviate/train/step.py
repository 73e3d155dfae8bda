"""What each job minimises, one micro-batch at a time.

An objective owns its encoded data streams and turns a micro-batch number into a scalar loss plus a few logged
numbers. Every log-prob comes from `token_logps` (the fused kernel); every formula lives in `losses`.

    learn / relearn   NLL of the answers
    ga                GA(forget)                                  [+ α·retain term]
    graddiff          GA(forget) + α·retain term                  (retain required)
    npo               NPO(forget; cached reference)               [+ α·retain term]
    simnpo            SimNPO(forget)                              [+ α·retain term]
    idkpo             DPO(chosen = "I don't know" in the item's language, rejected = forget answer)  [+ ...]
    corrective        DPO(chosen = answer with the true fact, rejected = answer with the fake)        [+ ...]

The retain term is NLL on the retain set, or KL(ref ‖ θ) per token when `retain_loss="kl"` (reference = adapter off).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from obliviate.train import losses
from obliviate.train.checkpoint import sample_indices
from obliviate.models.logprobs import hidden_states, token_kl, token_logps
from obliviate.train.reference import scatter_reference

METHODS = ("ga", "graddiff", "npo", "simnpo", "idkpo", "corrective")
REFERENCE_METHODS = ("npo", "idkpo", "corrective")
# Defaults from open-unlearning / OFFSIDE (DESIGN §3): β = 0.1 for NPO and the DPO family; SimNPO β = 4.5, δ = 0.
DEFAULT_BETA = {"npo": 0.1, "idkpo": 0.1, "corrective": 0.1, "simnpo": 4.5}


@dataclass(frozen=True)
class MethodOptions:
    """Loss hyper-parameters; None = the method's default."""

    beta: float | None = None
    alpha: float = 1.0  # weight of the retain term
    delta: float = 0.0  # SimNPO margin
    retain_loss: str = "nll"  # "nll" | "kl"
    span: str = "answer"  # forget loss over the whole "answer" or only the fact's tokens ("value")


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


class Stream:
    """Encoded examples sampled in seeded, resumable batches (see `sample_indices`)."""

    def __init__(self, examples, collate, batch_size: int, *, seed: int, stream: int, refs=None):
        self.examples, self.collate, self.batch_size = examples, collate, batch_size
        self.seed, self.stream, self.refs = seed, stream, refs

    def draw(self, k: int, device) -> tuple[dict, list[int]]:
        idx = sample_indices(len(self.examples), self.batch_size, k, seed=self.seed, stream=self.stream)
        batch = _to(self.collate([self.examples[i] for i in idx]), device)
        if self.refs is not None:
            batch["ref_logps"] = scatter_reference([self.refs[i] for i in idx], batch["targets"])
        return batch, idx


def span_mask(batch: dict, span: str) -> torch.Tensor:
    """The tokens a forget loss acts on: all answer tokens, or only the fact's (`value`) tokens where marked.

    Rows whose item has no `value` fall back to the whole answer, so mixed data still gets a loss on every row.
    """
    if span == "answer":
        return batch["loss_mask"]
    value = batch["value_mask"]
    has_value = value.sum(dim=1, keepdim=True) > 0  # (B, 1)
    return torch.where(has_value, value, batch["loss_mask"])


class Objective:
    """loss(k) for micro-batch k. `data` = the learn set; or `forget` (+ `chosen`, aligned with forget) + `retain`."""

    def __init__(self, method: str, options: MethodOptions, *, data: Stream | None = None,
                 forget: Stream | None = None, chosen: Stream | None = None, retain: Stream | None = None,
                 reference=None):
        self.method, self.options = method, options
        self.data, self.forget, self.chosen, self.retain = data, forget, chosen, retain
        self.beta = options.beta if options.beta is not None else DEFAULT_BETA.get(method)
        # KL retain term: a callable returning the reference's hidden states (adapter off, or another model).
        self.reference = reference

    def __call__(self, model, k: int, device) -> tuple[torch.Tensor, dict]:
        if self.method == "learn":
            batch, _ = self.data.draw(k, device)
            logp = token_logps(model, batch)  # (B, T)
            loss = losses.nll_loss(logp, batch["loss_mask"])
            return loss, {"loss": loss.item(), "tokens": int(batch["loss_mask"].sum())}
        fb, idx = self.forget.draw(k, device)
        mask = span_mask(fb, self.options.span)
        logp = token_logps(model, fb)  # (B, T)
        tokens = int(mask.sum())
        stats = {"forget_logp": float((logp.detach() * mask).sum() / mask.sum().clamp(min=1))}
        if self.method in ("ga", "graddiff"):
            loss = losses.ga_loss(logp, mask)
        elif self.method == "npo":
            loss = losses.npo_loss(logp, fb["ref_logps"], mask, beta=self.beta)
        elif self.method == "simnpo":
            loss = losses.simnpo_loss(logp, mask, beta=self.beta, delta=self.options.delta)
        else:  # the DPO family: the chosen batch holds the same items with the preferred answer
            cb = _to(self.chosen.collate([self.chosen.examples[i] for i in idx]), device)
            cb["ref_logps"] = scatter_reference([self.chosen.refs[i] for i in idx], cb["targets"])
            clogp = token_logps(model, cb)
            loss = losses.dpo_loss(clogp, cb["ref_logps"], cb["loss_mask"], logp, fb["ref_logps"], mask,
                                   beta=self.beta)
            tokens += int(cb["loss_mask"].sum())
        stats["forget_loss"] = loss.item()
        if self.retain is not None:
            rb, _ = self.retain.draw(k, device)
            if self.options.retain_loss == "kl":
                with torch.no_grad():
                    ref_h = self.reference(rb)  # (B, T, H)
                retain = losses.kl_retain_loss(token_kl(model, rb, ref_h, rb["loss_mask"]), rb["loss_mask"])
            else:
                retain = losses.nll_loss(token_logps(model, rb), rb["loss_mask"])
            stats["retain_loss"] = retain.item()
            loss = loss + self.options.alpha * retain
            tokens += int(rb["loss_mask"].sum())
        stats["loss"], stats["tokens"] = loss.item(), tokens
        return loss, stats


def adapter_off_hidden(model):
    """Reference hidden states from the same model with its trainable adapter disabled."""
    def reference(batch):
        ctx = model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
        with ctx:
            return hidden_states(model, batch)
    return reference
