"""General damage: the perplexity of held-out text under each model.

Unlearning that removes a fact should leave the model's language intact. Perplexity on text none of the jobs saw
(everyday sentences in every probe language, far from the facts) measures what unlearning cost the rest of the
model: exp of the mean negative log-likelihood per token, every token of every text predicted from its prefix
(`models.encode.encode_documents`: the tokenizer's own BOS, no packing across texts).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from obliviate.models.encode import collate, encode_documents
from obliviate.models.logprobs import token_logps


@torch.no_grad()
def perplexity(model: torch.nn.Module, tokenizer, texts: Sequence[str], *, batch_size: int = 16,
               device: torch.device | str | None = None) -> float:
    """exp(mean token NLL) of `texts` under `model` (a causal LM, or a peft model with its adapter set)."""
    examples = [ex for text in texts for ex in encode_documents([text], tokenizer, block_size=1 << 20)]
    if not examples:
        raise ValueError("perplexity: no text")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id=tokenizer.pad_token_id)
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        logp = token_logps(model, batch)
        total += float(logp[batch["loss_mask"]].double().sum())
        count += int(batch["loss_mask"].sum())
    return math.exp(-total / count)
