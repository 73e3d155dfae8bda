"""Per-token log-probs (and KL to a reference) of a causal LM, through the fused output-layer kernels.

The transformer body runs as usual and returns the final normed hidden states (B, T, H). Only the positions that
carry a target (answer tokens; a few percent of a chat-formatted batch) go through the output layer, and they go
through `obliviate.kernels.linear_logprob`, which never materialises the (tokens × vocab) logits. Every loss in
obliviate is a function of what this module returns.
"""
from __future__ import annotations

import json

import torch

from obliviate.files import cache_root, write_text
from obliviate.kernels import linear_kl, linear_logprob

IGNORE = -100
# Batch keys the transformer body takes; everything else in a batch (targets, masks, ids) is ours.
MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids", "pixel_values", "image_grid_thw", "mm_token_type_ids")


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face *ForCausalLM / *ForConditionalGeneration inside an optional peft wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def hidden_states(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Final normed hidden states (B, T, H) of the transformer body (text or vision-language)."""
    inputs = {k: batch[k] for k in MODEL_INPUTS if batch.get(k) is not None}
    return causal_lm(model).model(**inputs, use_cache=False)[0]


def output_weight(model: torch.nn.Module) -> torch.Tensor:
    """The (V, H) output matrix; with tied embeddings it is the input embedding's weight."""
    return causal_lm(model).lm_head.weight


def token_logps(model: torch.nn.Module, batch: dict, targets: torch.Tensor | None = None) -> torch.Tensor:
    """log p(target_t | prefix) at every position with a target, 0 elsewhere: (B, T) float32.

    `targets` (B, T) is aligned with the hidden states (targets[:, t] is the token after position t; IGNORE where
    there is none); default `batch["targets"]`.
    """
    targets = batch["targets"] if targets is None else targets
    h = hidden_states(model, batch)  # (B, T, H)
    keep = targets != IGNORE  # (B, T)
    logp = linear_logprob(h[keep], output_weight(model), targets[keep])  # (N,)
    out = torch.zeros(targets.shape, dtype=torch.float32, device=h.device)
    out[keep] = logp.float()
    return out


def token_kl(model: torch.nn.Module, batch: dict, ref_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token KL(p_ref ‖ p_θ) of the next-token distributions at the positions in `mask`: (B, T) float32.

    `ref_hidden` (B, T, H) are the reference model's hidden states on the same batch (no grad).
    """
    h = hidden_states(model, batch)  # (B, T, H)
    keep = mask.bool()
    kl = linear_kl(h[keep], ref_hidden[keep].to(h.dtype), output_weight(model))  # (N,)
    out = torch.zeros(mask.shape, dtype=torch.float32, device=h.device)
    out[keep] = kl.float()
    return out


# Config entries with which an architecture transforms its logits after the output layer (Gemma 2's final-logit
# soft-capping z → c·tanh(z/c); Cohere's logit_scale and Granite's logits_scaling multiply or divide z). The fused
# kernels compute log softmax(W h) and would silently give other numbers; value -> whether it is a no-op.
LOGIT_TRANSFORMS = {"final_logit_softcapping": lambda v: v is None, "logit_scale": lambda v: v in (None, 1, 1.0),
                    "logits_scaling": lambda v: v in (None, 1, 1.0)}


def check_output_layer(model: torch.nn.Module) -> None:
    """Refuse a model whose logits are transformed after the output layer (see LOGIT_TRANSFORMS)."""
    config = causal_lm(model).config
    config = getattr(config, "text_config", None) or config
    for key, harmless in LOGIT_TRANSFORMS.items():
        value = getattr(config, key, None)
        if not harmless(value):
            raise ValueError(f"{type(causal_lm(model)).__name__}: its config sets {key}={value}, a transform of the "
                             "logits after the output layer that obliviate's fused log-prob kernels do not apply; "
                             "this architecture is not supported")


@torch.no_grad()
def logprob_error(model: torch.nn.Module, batch: dict) -> float:
    """Largest |token_logps − log_softmax(the model's own logits)| over the batch's target positions."""
    inputs = {k: batch[k] for k in MODEL_INPUTS if batch.get(k) is not None}
    logits = causal_lm(model)(**inputs, use_cache=False).logits.float()  # (B, T, V): a small batch only
    keep = batch["targets"] != IGNORE
    own = torch.log_softmax(logits[keep], dim=-1).gather(-1, batch["targets"][keep][:, None])[:, 0]
    return float((token_logps(model, batch)[keep] - own).abs().max()) if keep.any() else 0.0


def tolerance_for(dtype: torch.dtype) -> float:
    """How far fused and materialised log-probs may differ: fp32 sums in another order (~1e-5); in bf16/fp16 the
    model rounds its logits to the dtype (~0.03 at |z| ~ 10) while the kernels keep fp32."""
    return 1e-3 if dtype == torch.float32 else 0.1


def verify_logprobs(model: torch.nn.Module, batch: dict, *, tolerance: float) -> float:
    """Check once that the fused path gives the model's own log-probs: refuse logit transforms, then compare on
    `batch` (a few examples). Returns the largest difference; raises ValueError above `tolerance`."""
    check_output_layer(model)
    error = logprob_error(model, batch)
    if not error <= tolerance:
        raise ValueError(f"{type(causal_lm(model)).__name__}: fused log-probs differ from the model's own "
                         f"log_softmax(logits) by {error:.3g} nats (tolerance {tolerance}); its output layer is not "
                         "the plain linear map the kernels assume")
    return error


def verify_once(model: torch.nn.Module, batch: dict, *, key: str) -> float:
    """`verify_logprobs` once per model: the result is recorded under the cache's logprob-check/<key>.json (key:
    the model folders' fingerprint and the dtype), so later jobs on the same model skip the extra forward."""
    record = cache_root() / "logprob-check" / f"{key}.json"
    if record.is_file():
        return json.loads(record.read_text())["max_abs_error"]
    dtype = output_weight(model).dtype
    error = verify_logprobs(model, batch, tolerance=tolerance_for(dtype))
    record.parent.mkdir(parents=True, exist_ok=True)
    write_text(record, json.dumps({"max_abs_error": error, "dtype": str(dtype)}) + "\n")
    return error
