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
MAX_NEW_TOKENS = 32       # the least a probe may generate (and the fixed limit before answers set it)
MAX_NEW_TOKENS_CAP = 256  # the most
BATCH_SIZE = 32
MC_STYLES = ("offside", "lenient")  # eval.choice's multiple-choice prompts and parsers


def generation_limit(answer_tokens: int) -> int:
    """How many tokens a probe whose answer has `answer_tokens` tokens may generate: twice the answer, rounded up
    to a multiple of MAX_NEW_TOKENS, within [MAX_NEW_TOKENS, MAX_NEW_TOKENS_CAP] (2 -> 32, 20 -> 64, 200 -> 256).
    Twice: a right answer worded differently may be longer; the rounding keeps the number of distinct limits (one
    generation call each) small."""
    step = MAX_NEW_TOKENS
    return min(MAX_NEW_TOKENS_CAP, max(step, -(-2 * answer_tokens // step) * step))


@dataclass(frozen=True)
class EvalOptions:
    """How an `Evaluator` generates and scores, and what its views assume.

    backend: "auto" (vLLM on CUDA when it imports; on the CPU transformers, the faster as measured:
        `backend.choose_backend`), "vllm" or "hf" (transformers).
    device, dtype: where and in which precision transformers runs (generation with "hf", and all log-prob
        scoring); None: `obliviate.files.default_device` / `default_dtype`. vLLM chooses its own dtype.
    max_new_tokens: the generation length limit for every probe; None: per probe, from its answer's length
        (`generation_limit`), and OFFSIDE's 32 for the multiple-choice prompts.
    batch_size: the transformers batch size, for generation and for scoring.
    cache_dir: where vLLM's merged base models and zero adapters are cached; None: `cache_root()/merged`.
    progress: progress bars on stderr.
    fake_language: the fake-data language L of the views; None: read from the adapters' run folders.
    reference: the retain-only model (one of the evaluated names) for TOFU's forget quality; None: no such table.
    mc_style: the multiple-choice prompt and parser (`eval.choice`): "offside" (OFFSIDE's own) or "lenient".
    text_only: drop the probes that have an image (OFFSIDE's unimodal setting, as `unlearn --text-only`), so a
        text-only model can answer a probe file that also holds picture probes.
    mia: compute the membership-inference scores (LOSS, zlib, Min-K%, Min-K%++); False skips them and Min-K%++'s
        pass over the whole vocabulary, the costly part of scoring with a large vocabulary.
    """

    backend: str = "auto"
    device: str | None = None
    dtype: torch.dtype | None = None
    max_new_tokens: int | None = None
    batch_size: int = BATCH_SIZE
    cache_dir: str | Path | None = None
    progress: bool = True
    fake_language: str | None = None
    reference: str | None = None
    mc_style: str = "offside"
    text_only: bool = False
    mia: bool = True

    def __post_init__(self):
        """Constructing one checks it (backend and device are checked where they are resolved:
        `backend.choose_backend`, `files.default_device`)."""
        if self.mc_style not in MC_STYLES:
            raise ValueError(f"unknown multiple-choice style {self.mc_style!r} (styles: {', '.join(MC_STYLES)})")
        if self.max_new_tokens is not None:
            check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
