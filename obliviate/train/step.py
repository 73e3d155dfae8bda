"""What one micro-step minimises: `loss_step(model, batch, method, options)` over a table of loss functions.

    nll          learn / relearn: NLL of the answers
    ga           GA(forget)                                                   [+ α·retain term]
    graddiff     GA(forget) + α·retain term                                   (retain required)
    npo          NPO(forget; cached reference log-probs)                      [+ α·retain term]
    simnpo       SimNPO(forget)                                               [+ α·retain term]
    idkpo        DPO(chosen = "I don't know" in the item's language, rejected = forget answer)   [+ ...]
    corrective   DPO(chosen = answer with the true fact, rejected = answer with the fake)        [+ ...]

The retain term is NLL on the retain batch, or the per-token KL(ref ‖ θ) with `retain_loss="kl"` (the batch then
carries the reference's hidden states, see `stream.next_batch`). Every log-prob comes from `token_logps` (the
fused kernel); every formula lives in `losses`. Statistics stay tensors: the loop reads them once per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.files import check_real
from obliviate.models.logprobs import token_kl, token_logps
from obliviate.train import losses
from obliviate.train.stream import StepBatch

METHODS = ("ga", "graddiff", "npo", "simnpo", "idkpo", "corrective")
REFERENCE_METHODS = ("npo", "idkpo", "corrective")  # methods whose loss compares with reference log-probs
PREFERENCE_METHODS = ("idkpo", "corrective")  # the DPO family: a chosen answer per forget item
# Defaults from open-unlearning and OFFSIDE: β = 0.1 for NPO and the DPO family; SimNPO β = 4.5, δ = 0.
DEFAULT_BETA = {"npo": 0.1, "idkpo": 0.1, "corrective": 0.1, "simnpo": 4.5}


@dataclass(frozen=True)
class MethodOptions:
    """Loss hyper-parameters."""

    beta: float | None = None  # None = the method's DEFAULT_BETA
    alpha: float = 1.0  # weight of the retain term
    delta: float = 0.0  # SimNPO margin
    retain_loss: str = "nll"  # "nll" | "kl"
    span: str = "answer"  # forget loss over the whole "answer" or only the fact's tokens ("value")

    def __post_init__(self):
        """Constructing one validates it (β = 0 would divide by zero, a NaN weight poison every step)."""
        if self.beta is not None:
            check_real("beta", self.beta, above=0)
        check_real("alpha", self.alpha, at_least=0)
        check_real("delta", self.delta)
        if self.retain_loss not in ("nll", "kl") or self.span not in ("answer", "value"):
            raise ValueError(f"span must be answer|value and retain_loss nll|kl, got {self.span!r}, "
                             f"{self.retain_loss!r}")

    def beta_for(self, method: str) -> float:
        return self.beta if self.beta is not None else DEFAULT_BETA[method]


@dataclass(frozen=True, eq=False)
class ForgetTerms:
    """The policy's log-probs on one micro-step's forget batch (and chosen batch), with what the losses compare."""

    logp: torch.Tensor  # (B, T) log-probs of the forget (or learn) answers
    mask: torch.Tensor  # (B, T) tokens the loss acts on
    ref: torch.Tensor | None  # (B, T) reference log-probs of the same tokens (NPO, DPO)
    chosen_logp: torch.Tensor | None = None  # (B, T') DPO family: the preferred answers
    chosen_ref: torch.Tensor | None = None
    chosen_mask: torch.Tensor | None = None


def _nll(t: ForgetTerms, o: MethodOptions, method: str) -> torch.Tensor:
    return losses.nll_loss(t.logp, t.mask)


def _ga(t: ForgetTerms, o: MethodOptions, method: str) -> torch.Tensor:
    return losses.ga_loss(t.logp, t.mask)


def _npo(t: ForgetTerms, o: MethodOptions, method: str) -> torch.Tensor:
    return losses.npo_loss(t.logp, t.ref, t.mask, beta=o.beta_for(method))


def _simnpo(t: ForgetTerms, o: MethodOptions, method: str) -> torch.Tensor:
    return losses.simnpo_loss(t.logp, t.mask, beta=o.beta_for(method), delta=o.delta)


def _dpo(t: ForgetTerms, o: MethodOptions, method: str) -> torch.Tensor:
    return losses.dpo_loss(t.chosen_logp, t.chosen_ref, t.chosen_mask, t.logp, t.ref, t.mask,
                           beta=o.beta_for(method))


LOSSES = {"nll": _nll, "ga": _ga, "graddiff": _ga, "npo": _npo, "simnpo": _simnpo, "idkpo": _dpo, "corrective": _dpo}


def span_mask(batch: dict, span: str) -> torch.Tensor:
    """The tokens a forget loss acts on: all answer tokens, or only the fact's (`value`) tokens where marked.

    Rows whose item has no `value` fall back to the whole answer, so mixed data still gets a loss on every row.
    """
    if span == "answer":
        return batch["loss_mask"]
    value = batch["value_mask"]
    has_value = value.sum(dim=1, keepdim=True) > 0  # (B, 1)
    return torch.where(has_value, value, batch["loss_mask"])


def retain_loss(model, retain: dict, options: MethodOptions) -> torch.Tensor:
    """NLL of the retain answers, or the mean per-token KL(ref ‖ θ) against `retain["ref_hidden"]`."""
    mask = retain["loss_mask"]
    if options.retain_loss == "kl":
        return losses.kl_retain_loss(token_kl(model, retain, retain["ref_hidden"], mask), mask)
    return losses.nll_loss(token_logps(model, retain), mask)


def loss_step(model, batch: StepBatch, method: str, options: MethodOptions) -> tuple[torch.Tensor, dict]:
    """(loss to minimise, statistics as 0-d tensors) of one micro-batch; "nll" trains, the METHODS unlearn."""
    forget = batch.forget
    mask = forget["loss_mask"] if method == "nll" else span_mask(forget, options.span)
    terms = ForgetTerms(logp=token_logps(model, forget), mask=mask, ref=forget.get("ref_logps"))
    tokens = mask.sum()
    if method in PREFERENCE_METHODS:
        chosen = batch.chosen
        terms = ForgetTerms(terms.logp, mask, terms.ref, chosen_logp=token_logps(model, chosen),
                            chosen_ref=chosen["ref_logps"], chosen_mask=chosen["loss_mask"])
    loss = LOSSES[method](terms, options, method)
    if method == "nll":
        return loss, {"loss": loss.detach(), "tokens": tokens}
    stats = {"forget_logp": (terms.logp.detach() * mask).sum() / mask.sum().clamp(min=1)}
    if terms.chosen_mask is not None:
        tokens = tokens + terms.chosen_mask.sum()
    stats["forget_loss"] = loss.detach()
    if batch.retain is not None:
        retain = retain_loss(model, batch.retain, options)
        stats["retain_loss"] = retain.detach()
        loss = loss + options.alpha * retain
        tokens = tokens + batch.retain["loss_mask"].sum()
    stats["loss"], stats["tokens"] = loss.detach(), tokens
    return loss, stats
