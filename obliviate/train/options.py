"""The options of a training job, as plain frozen dataclasses (no torch here: the CLI builds them for --help).

`TrainOptions` is the optimisation (every job), `MethodOptions` the loss (unlearn); the method names and their
default β live beside them.
"""
from __future__ import annotations

from dataclasses import dataclass

from obliviate.files import check_int, check_real

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


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings; every job takes them as keyword options."""

    steps: int = 100
    lr: float = 1e-4  # LoRA; 1e-5..5e-5 for full fine-tuning
    warmup: int = 0
    schedule: str = "cosine"  # "cosine" | "constant"
    batch_size: int = 8
    grad_accum: int = 1
    clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    save_every: int = 0  # 0 = only at the end
    # A GA-type run diverges when the forget answers' mean per-token log-prob falls below −divergence·ln(V):
    # ln V is what a uniform guess gives, so 3× that means the model is no longer predicting, only collapsing.
    divergence: float = 3.0

    def __post_init__(self):
        """Constructing one validates it: a run must not start with settings that cannot train."""
        for name, minimum in (("steps", 1), ("batch_size", 1), ("grad_accum", 1), ("warmup", 0), ("seed", -2**63),
                              ("save_every", 0)):
            check_int(name, getattr(self, name), minimum=minimum)
        for name in ("lr", "clip", "divergence"):
            check_real(name, getattr(self, name), above=0)
        check_real("weight_decay", self.weight_decay, at_least=0)
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
