"""Per-token log-probs (and KL to a reference) of a causal LM, through the fused output-layer kernels.

The transformer body runs as usual and returns the final normed hidden states (B, T, H). Only the positions that
carry a target (answer tokens; a few percent of a chat-formatted batch) go through the output layer, and they go
through `obliviate.kernels.linear_logprob`, which never materialises the (tokens × vocab) logits. Every loss in
obliviate is a function of what this module returns.
"""
from __future__ import annotations

import torch

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
