"""What an evaluation can be asked to do: the options of `Evaluator` (and of `obliviate eval`, flag for flag), in
one frozen dataclass whose field defaults are the defaults, checked when one is made. No torch at import: the
command line reads it to build its options."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from obliviate.files import check_int

if TYPE_CHECKING:
    import torch

BACKENDS = ("auto", "vllm", "hf")
MAX_NEW_TOKENS = 32
BATCH_SIZE = 32


@dataclass(frozen=True)
class EvalOptions:
    """How an `Evaluator` generates and scores, and what its views assume.

    backend: "auto" (vLLM when it imports and the model is text-only; a vision-language model through vLLM on CUDA
        only), "vllm" or "hf" (transformers).
    device, dtype: where and in which precision transformers runs (generation with "hf", and all log-prob
        scoring); None: `obliviate.files.default_device` / `default_dtype`. vLLM chooses its own dtype.
    max_new_tokens: the generation length limit.
    batch_size: the transformers batch size, for generation and for scoring.
    cache_dir: where vLLM's merged base models and zero adapters are cached; None: `cache_root()/merged`.
    progress: progress bars on stderr.
    fake_language: the fake-data language L of the views; None: read from the adapters' run folders.
    reference: the retain-only model (one of the evaluated names) for TOFU's forget quality; None: no such table.
    """

    backend: str = "auto"
    device: str | None = None
    dtype: torch.dtype | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    batch_size: int = BATCH_SIZE
    cache_dir: str | Path | None = None
    progress: bool = True
    fake_language: str | None = None
    reference: str | None = None

    def __post_init__(self):
        """Constructing one checks the numbers (backend and device are checked where they are resolved:
        `backend.choose_backend`, `files.default_device`)."""
        check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
